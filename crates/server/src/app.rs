//! Building and running the service: the same [`Application::build`] serves `tessera serve`
//! and the tests.

use crate::body::{self, BODY_LIMIT, BodyTimeout};
use crate::config::Config;
use crate::metrics::{ConnectionStats, Metrics};
use crate::pages::cookies::Cookies;
use crate::serve::{self, Limits};
use crate::state::AppState;
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
use tessera_core::crypto::{MasterKey, Token};
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
        let master_key = config.load_master_key()?;
        let store = tessera_store::connect(&config.database_url)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database {}",
                    tessera_store::redact(&config.database_url)
                )
            })?;
        let open_files = serve::raise_open_file_limit();
        let limits = Limits::new(&config.server, open_files);
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
            Arc::new(Mailer::new(master_key.sealer("outbox"))),
            Arc::clone(&clock),
            Arc::clone(&delivery),
        )?;
        let state = AppState {
            core: Tessera::new(build_deps(&config, &master_key, store, clock).await?),
            metrics: Arc::new(Metrics::new(delivery, Arc::clone(&connections))),
            csrf_key: Arc::new(master_key.derive("csrf")),
            cookies: Cookies::new(public_url.starts_with("https://")),
            metrics_token: config
                .metrics_token
                .as_deref()
                .map(|t| Token::from_client(t).hash()),
            trust_forwarded_for: config.trust_forwarded_for,
        };
        Ok(Self {
            listener,
            router: router(state, BodyTimeout(limits.header_timeout)),
            outbox,
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
        let worker = tokio::spawn(self.outbox.run(stopped));
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
    }
}

/// What the use cases are built from, as `serve` (the services) and `admin` (the operator's)
/// both need it.
pub async fn build_deps(
    config: &Config,
    master_key: &MasterKey,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Deps> {
    Ok(Deps {
        store,
        passwords: Passwords::new(&config.security).await?,
        clock,
        policy: config.security.clone(),
        mailer: Mailer::new(master_key.sealer("outbox")),
        totp_sealer: master_key.sealer("totp"),
        codes: CodeHasher::new(master_key.derive("codes")),
        issuer: config.issuer.clone(),
        signup: config.signup,
    })
}

/// Runs each request in a task of its own, so a client that disconnects cannot stop a
/// handler halfway: a counted attempt is always settled, a lock always recorded and mailed.
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
    match tokio::time::timeout(REQUEST_TIMEOUT, tokio::spawn(work)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            AppError::internal(anyhow::anyhow!("a request task failed: {e}")).into_response()
        }
        Err(_) => AppError::Timeout.into_response(),
    }
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

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

fn router(state: AppState, body_timeout: BodyTimeout) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .merge(pages::router())
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
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .with_state(state)
}
