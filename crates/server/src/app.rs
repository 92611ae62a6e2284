//! Building and running the service: the same [`Application::build`] serves `tessera serve`
//! and the tests.

use crate::body::{self, BODY_LIMIT, BodyTimeout};
use crate::config::Config;
use crate::idp::OidcProvider;
use crate::metrics::{ConnectionStats, Metrics};
use crate::pages::cookies::Cookies;
use crate::return_to::ReturnOrigins;
use crate::serve::{self, Limits};
use crate::state::{AppState, Shared};
use crate::{api, error::AppError, metrics, pages};
use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::codes::CodeHasher;
use tessera_core::crypto::Token;
use tessera_core::factors::webauthn::RelyingParty;
use tessera_core::keys::Keys;
use tessera_core::mail::Mailer;
use tessera_core::mail::OutboxStore;
use tessera_core::password::Passwords;
use tessera_core::store::Store;
use tessera_core::{Clock, Timestamp};
use tessera_core::{Deps, Tessera};
use tessera_mail::{Brand, DeliveryStats, Outbox, OutboxConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Timestamp::from_unix(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    outbox: Outbox,
    housekeeper: Housekeeper,
    /// For the sweep of sign-ins left unfinished.
    core: Tessera,
    address: SocketAddr,
    public_url: String,
    limits: Limits,
    connections: Arc<ConnectionStats>,
}

impl Application {
    /// Opens storage (applying migrations), loads or creates the master key, binds the port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with another clock (tests move time forward).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        // Also with PostgreSQL: the data folder holds the master key and the mail folder.
        if config.data_dir.exists() {
            tessera_store::check_data_volume(&config.data_dir)?;
        }
        create_private_dir(&config.data_dir)?;
        let (store, keys) = open_store(&config, clock.now()).await?;
        let open_files = serve::raise_open_file_limit();
        let limits = Limits::new(&config.server, open_files, &config.trusted_proxies);
        tracing::info!(
            max_connections = limits.max_connections,
            max_connections_per_ip = limits.max_per_ip,
            open_files,
            header_timeout_secs = limits.header_timeout.as_secs(),
            "connection limits"
        );
        let listener = serve::listen(&config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let address = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{address}"));
        let delivery = Arc::new(DeliveryStats::default());
        let connections = Arc::new(ConnectionStats::default());
        let outbox = Outbox::new(
            OutboxConfig {
                smtp_url: config.smtp_url.clone(),
                folder: config.data_dir.join("mail"),
                from: config.mail_from.clone(),
                brand: Brand {
                    product: config.issuer.clone(),
                    public_url: public_url.clone(),
                },
                settings: config.mail.delivery(),
            },
            Arc::clone(&store) as Arc<dyn OutboxStore>,
            Arc::new(Mailer::new(keys.sealer("outbox"))),
            Arc::clone(&clock),
            Arc::clone(&delivery),
        )?;
        let housekeeper = Housekeeper {
            store: Arc::clone(&store),
            clock: Arc::clone(&clock),
            policy: config.security.clone(),
            every: Duration::from_secs(config.housekeeping_interval_secs),
        };
        let mut deps = build_deps(&config, &keys, store, clock).await?;
        deps.webauthn = relying_party(&public_url, &config.issuer);
        // The redirect URI names the address actually bound (`:0` picks one).
        deps.identity_provider = Arc::new(OidcProvider::new(&public_url)?);
        deps.public_url = public_url.clone();
        let core = Tessera::new(deps);
        let state = AppState::new(Shared {
            core: core.clone(),
            metrics: Arc::new(Metrics::new(
                delivery,
                keys.decrypt_failures(),
                Arc::clone(&connections),
            )),
            csrf_key: Arc::new(keys.csrf()),
            cookies: Cookies::new(public_url.starts_with("https://"))
                .with_session_domain(config.cookie_domain.clone()),
            metrics_token: config
                .metrics_token
                .as_deref()
                .map(|t| Token::from_client(t).hash()),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            return_origins: Arc::new(ReturnOrigins::new(
                &public_url,
                &config.allowed_return_origins,
            )),
            public_url: Arc::from(public_url.as_str()),
            sso_redirect_uri: format!("{public_url}/login/sso/callback"),
        });
        Ok(Self {
            listener,
            router: router(
                state,
                BodyTimeout(limits.header_timeout),
                &config.allowed_return_origins,
            ),
            outbox,
            housekeeper,
            core,
            address,
            public_url,
            limits,
            connections,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Serves, and delivers queued email, until `shutdown` completes; then finishes the
    /// requests in flight (within the shutdown grace period) and the email batch in hand.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let (stop, stopped) = watch::channel(false);
        let sweeper = tokio::spawn(sweep_unfinished(self.core, stopped.clone()));
        let worker = tokio::spawn(self.outbox.run(stopped.clone()));
        let housekeeping = tokio::spawn(self.housekeeper.run(stopped));
        serve::serve(
            self.listener,
            self.router,
            self.limits,
            self.connections,
            shutdown,
        )
        .await;
        let _ = stop.send(true);
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "the outbox worker stopped abnormally");
        }
        if let Err(e) = housekeeping.await {
            tracing::error!(error = %e, "housekeeping stopped abnormally");
        }
        if let Err(e) = sweeper.await {
            tracing::error!(error = %e, "the sweep of unfinished sign-ins stopped abnormally");
        }
    }
}

/// Deletes what has expired, every `every` (SPEC §14; see `tessera_core::housekeeping`). Each
/// instance runs it; the deletes are idempotent and bounded, so instances need no
/// coordination. The first run waits a random part of the interval, so instances started
/// together do not sweep in step.
struct Housekeeper {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policy: tessera_core::SecurityPolicy,
    every: Duration,
}

impl Housekeeper {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        if self.every.is_zero() {
            return;
        }
        let random = u64::from_le_bytes(tessera_core::crypto::random_bytes::<8>());
        let mut wait = self
            .every
            .mul_f64((random >> 11) as f64 / (1_u64 << 53) as f64);
        while !*stop.borrow() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => continue,
            }
            wait = self.every;
            let now = self.clock.now();
            let batch = tessera_core::housekeeping::BATCH;
            match tessera_core::housekeeping::run(&*self.store, &self.policy, now, batch).await {
                Ok(swept) => {
                    let deleted: Vec<String> = swept
                        .iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(sweep, n)| format!("{}={n}", sweep.as_str()))
                        .collect();
                    tracing::info!(deleted = %deleted.join(" "), "housekeeping done");
                }
                Err(e) => tracing::warn!(error = %e, "housekeeping failed; it runs again later"),
            }
        }
    }
}

/// How often expired sign-ins are looked for (SPEC §9: their users are alerted).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Ends expired two-factor challenges every [`SWEEP_EVERY`], alerting their users, until
/// `stopped` says so. With several instances each sweeps; the store tells about each
/// challenge once.
async fn sweep_unfinished(core: Tessera, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
        match core.second_step.sweep_unfinished().await {
            Ok(0) => {}
            Ok(ended) => tracing::info!(ended, "expired sign-ins ended"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep expired sign-ins"),
        }
    }
}

/// Opens the database (applying migrations) and checks the master key against it before
/// anything else reads or writes it: an instance with another key stops here, with one line
/// naming both fingerprints (SPEC §14).
pub async fn open_store(config: &Config, now: Timestamp) -> anyhow::Result<(Arc<dyn Store>, Keys)> {
    let ring = config.load_key_ring()?;
    let store = tessera_store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                tessera_store::redact(&config.database_url)
            )
        })?;
    let keys = tessera_core::keys::unlock(&*store, ring, now).await?;
    Ok((store, keys))
}

/// What the use cases are built from, as `serve` (the services) and `admin` (the operator's)
/// both need it.
pub async fn build_deps(
    config: &Config,
    keys: &Keys,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Deps> {
    Ok(Deps {
        store,
        passwords: Passwords::new(&config.security).await?,
        clock,
        policy: config.security.clone(),
        mailer: Mailer::new(keys.sealer("outbox")),
        totp_sealer: keys.sealer("totp"),
        codes: CodeHasher::new(keys.codes()),
        issuer: config.issuer.clone(),
        signup: config.signup,
        grants: config.api_grants.clone(),
        webauthn: config
            .public_url
            .as_deref()
            .and_then(|url| relying_party(url, &config.issuer)),
        sso_sealer: keys.sealer("sso"),
        identity_provider: Arc::new(OidcProvider::new(
            config
                .public_url
                .as_deref()
                .unwrap_or(&format!("http://{}", config.bind)),
        )?),
        signing_sealer: keys.sealer(tessera_core::keys::SIGNING_LABEL),
        public_url: config.public_url.clone().unwrap_or_default(),
    })
}

/// The WebAuthn relying party of `public_url` (SPEC §10), or `None`, logged, where there can
/// be none (an IP address other than loopback): security keys are then unavailable.
fn relying_party(public_url: &str, issuer: &str) -> Option<RelyingParty> {
    match RelyingParty::from_public_url(public_url, issuer) {
        Ok(rp) => {
            tracing::info!(rp_id = rp.id(), origin = %rp.origin(), "security keys and passkeys");
            Some(rp)
        }
        Err(why) => {
            tracing::warn!(reason = %why, "security keys and passkeys are not available");
            None
        }
    }
}

/// Runs each request (but the [`hot_read`]s) in a task of its own, so a client that
/// disconnects cannot stop a handler halfway: a counted attempt is always settled, a lock
/// always recorded and mailed.
/// A request that takes longer than [`REQUEST_TIMEOUT`] is answered `503 timeout` while its
/// task finishes in the background.
///
/// A request that PostgreSQL's lost connection failed before it wrote anything
/// (`tessera_store::retry`) runs once more, on a fresh connection, before it is answered.
async fn run_to_completion(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let is_hot_read = hot_read(&parts.method, parts.uri.path());
    // `body::read_whole` read it already: this only takes its one buffer.
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => return AppError::PayloadTooLarge.into_response(),
    };
    let again = (parts.clone(), bytes.clone(), next.clone());
    let first = axum::extract::Request::from_parts(parts, Body::from(bytes));
    let work = async move {
        let (response, verdict) = tessera_store::retry::watched(next.run(first)).await;
        // Only a request answered `unavailable` for it; one that got over the loss (a
        // failure it may ignore) stands.
        if verdict != tessera_store::retry::Verdict::SafeToRetry
            || response.status() != axum::http::StatusCode::SERVICE_UNAVAILABLE
        {
            return response;
        }
        tracing::warn!(
            status = response.status().as_u16(),
            "the database connection was lost under a request that had written nothing: \
             running it once more"
        );
        let (parts, bytes, next) = again;
        let request = axum::extract::Request::from_parts(parts, Body::from(bytes));
        tessera_store::retry::watched(next.run(request)).await.0
    };
    if is_hot_read {
        return tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| AppError::Timeout.into_response());
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, tokio::spawn(work)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            AppError::internal(anyhow::anyhow!("a request task failed: {e}")).into_response()
        }
        Err(_) => AppError::Timeout.into_response(),
    }
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The reads on every request of an app (SPEC §15: the gate, `/me`, health), which run in
/// their connection's task instead of one of their own (a task per request was a tenth of
/// the gate's CPU, most of it threads waking each other). A client leaving cuts nothing they
/// need finished: what they write is one statement at most (a session's or key's last use, a
/// refused key counted against its address), which is done or not.
fn hot_read(method: &axum::http::Method, path: &str) -> bool {
    (method == axum::http::Method::GET || method == axum::http::Method::HEAD)
        && (path == "/api/v1/me"
            || path == "/api/v1/health"
            || path == "/api/v1/gate"
            || path.starts_with("/api/v1/gate/"))
}

/// The data folder holds the database and the master key: only its owner may enter it
/// (0700), also when it already existed (SPEC §8: a `mkdir`, a volume, a package).
fn create_private_dir(path: &std::path::Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .with_context(|| format!("cannot create the data folder {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict the data folder {}", path.display()))?;
    }
    Ok(())
}

/// The pages' Content Security Policy. `form-action` also names the origins `return_to` may
/// lead to: browsers check it on every redirect after a form is sent, and signing in with
/// `return_to` ends in one to the app (SPEC §11).
fn content_security_policy(return_origins: &[String]) -> HeaderValue {
    let mut form_action = "'self'".to_owned();
    for origin in return_origins {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    // The origins were checked at start (scheme, host, port): always a valid value.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
    })
}

fn router(state: AppState, body_timeout: BodyTimeout, return_origins: &[String]) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .merge(pages::router())
        .merge(crate::oauth2::router())
        .route("/metrics", axum::routing::get(metrics::render))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed.into_response() })
        .layer(axum::middleware::from_fn(run_to_completion))
        .layer(axum::middleware::from_fn_with_state(
            body_timeout,
            body::read_whole,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("content-security-policy"),
            content_security_policy(return_origins),
        ))
        .with_state(state)
}
