//! Tessera as an OpenID Connect provider (SPEC §13), tested with a real relying party:
//! Python's authlib (`relying_party.py`, in the `target/ci-venv-oidc` virtualenv that
//! `.ci/run` makes) does discovery, builds the authorization request (PKCE S256, state,
//! nonce), exchanges the code, validates the ID token against the JWKS, reads userinfo and
//! refreshes. The test itself is the browser between the two: it follows the redirects with
//! a cookie jar through Tessera's sign-in pages, typing TOTP codes from oathtool.

mod browser;
mod flows;
mod refusals;
mod team;

use crate::helpers::{PASSWORD, PageBrowser, ResponseExt, SecondFactor, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use tessera_core::Clock;

/// Where every test client sends the browser back (never reached: the test reads the
/// redirect).
pub const REDIRECT_URI: &str = "https://app.example/callback";
pub const LOGGED_OUT_URI: &str = "https://app.example/logged-out";

/// A registered client.
pub struct Client {
    pub id: String,
    /// `"-"` for a public client.
    pub secret: String,
}

/// Registers a client with `tessera admin oidc-clients add` and `extra` options.
pub fn register(app: &TestApp, name: &str, extra: &[&str]) -> Client {
    register_at(app, name, REDIRECT_URI, extra)
}

/// [`register`] with another redirect URI.
pub fn register_at(app: &TestApp, name: &str, redirect_uri: &str, extra: &[&str]) -> Client {
    let mut args = vec![
        "oidc-clients",
        "add",
        "--name",
        name,
        "--redirect-uri",
        redirect_uri,
        "--post-logout-redirect-uri",
        LOGGED_OUT_URI,
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = app.admin(&args);
    assert!(ok, "{err}");
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
    };
    Client {
        id: line("client_id: ").expect("a client_id line"),
        secret: line("client_secret: ").unwrap_or_else(|| "-".to_owned()),
    }
}

/// The relying party's Python, or `None` (with a warning) outside CI when it is missing.
fn python() -> Option<PathBuf> {
    let python =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-venv-oidc/bin/python");
    if python.exists() {
        return Some(python);
    }
    let why = format!(
        "authlib is needed as the relying party ({} is missing); run .ci/run's \
         ensure_oidc_client",
        python.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("warning: skipping: {why}");
    None
}

/// The relying party (authlib) of one client.
pub struct Rp {
    python: PathBuf,
    issuer: String,
    pub client: Client,
    /// `client_secret_basic` or `client_secret_post`.
    auth: &'static str,
}

impl Rp {
    pub fn new(app: &TestApp, client: Client) -> Option<Self> {
        Some(Self {
            python: python()?,
            issuer: app.base.clone(),
            client,
            auth: "client_secret_basic",
        })
    }

    pub fn with_post_auth(mut self) -> Self {
        self.auth = "client_secret_post";
        self
    }

    async fn run(&self, args: Vec<String>) -> Value {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/oidc/relying_party.py");
        let out = tokio::process::Command::new(&self.python)
            .arg(script)
            .args(&args)
            // Tessera runs on plain HTTP in the tests.
            .env("AUTHLIB_INSECURE_TRANSPORT", "1")
            .env("TESSERA_RP_AUTH", self.auth)
            .output()
            .await
            .expect("the relying party runs");
        assert!(
            out.status.success(),
            "relying party {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the relying party prints JSON")
    }

    fn common(&self) -> Vec<String> {
        vec![
            self.issuer.clone(),
            self.client.id.clone(),
            self.client.secret.clone(),
        ]
    }

    /// Discovery and the authorization request: `{url, state, nonce, code_verifier}`.
    pub async fn start(&self, extra: &[&str]) -> Value {
        let mut args = vec!["start".to_owned()];
        args.extend(self.common());
        args.push(REDIRECT_URI.to_owned());
        args.extend(extra.iter().map(|s| s.to_string()));
        self.run(args).await
    }

    /// The code exchange and everything after it, at the test clock's `now`.
    pub async fn finish(&self, started: &Value, callback: &str, now: i64) -> Value {
        let mut args = vec!["finish".to_owned()];
        args.extend(self.common());
        args.extend([
            REDIRECT_URI.to_owned(),
            started.to_string(),
            callback.to_owned(),
            now.to_string(),
        ]);
        self.run(args).await
    }

    /// A refresh.
    pub async fn refresh(&self, refresh_token: &str) -> Value {
        let mut args = vec!["refresh".to_owned()];
        args.extend(self.common());
        args.push(refresh_token.to_owned());
        self.run(args).await
    }
}

/// The `Location` of an absolute URL's answer, which must be a redirect.
pub async fn redirected(browser: &PageBrowser, url: &str) -> String {
    let response = browser.client.get(url).send().await.unwrap();
    assert!(
        response.status().is_redirection(),
        "{url}: {}",
        response.status()
    );
    response.location().to_owned()
}

/// Follows the page that continues by itself back to the authorization request: where that
/// leads.
pub async fn continue_page(
    app: &TestApp,
    browser: &PageBrowser,
    response: reqwest::Response,
) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let start = html.find("url=").expect("a page that continues by itself") + 4;
    let next = html[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    assert!(next.starts_with("/oauth2/authorize?"), "{next}");
    redirected(browser, &app.url(&next)).await
}

/// The browser's part: from the application's authorization URL through Tessera's sign-in
/// (password, then a TOTP code from oathtool) back to the application: the callback URL.
pub async fn sign_in_through_tessera(
    app: &TestApp,
    browser: &PageBrowser,
    url: &str,
    email: &str,
    factor: &SecondFactor,
) -> String {
    let login = redirected(browser, url).await;
    assert!(login.starts_with("/login"), "{login}");
    let (_, html) = browser.get(&login).await;
    let response = browser
        .submit(&html, "/login", &[("email", email), ("password", PASSWORD)])
        .await;
    assert_eq!(response.location(), "/login/2fa");
    let (_, html) = browser.get("/login/2fa").await;
    let code = app.totp(factor);
    app.clock.advance(30);
    let response = browser
        .submit(&html, "/login/2fa", &[("code", &code)])
        .await;
    continue_page(app, browser, response).await
}

/// The value of `name` in a URL's query.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The test clock, as the relying party validates tokens against it.
pub fn now(app: &TestApp) -> i64 {
    app.clock.now().unix()
}
