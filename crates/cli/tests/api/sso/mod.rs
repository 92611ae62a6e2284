//! Single sign-on (SPEC §12) against a real OpenID Connect provider: the npm package
//! `oidc-provider`, run by Node from `target/ci-node/` (installed there by `.ci/run`), with
//! our script `idp.mjs` (a static client, test accounts). Without Node or the package the
//! tests fail under `CI` and are skipped with a warning elsewhere.
//!
//! The provider's development login screens are driven over HTTP with the page browser's
//! cookie jar: Tessera's `/login/sso` → the provider → its login form (any password for a
//! known account) → back to `/login/sso/callback`.

mod settings;
mod sign_in;
mod two_factor;

use crate::helpers::{PageBrowser, ResponseExt, TestApp};
use crate::smtp::free_port;
use reqwest::{Response, StatusCode};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

/// The client the provider knows Tessera as.
pub const CLIENT_ID: &str = "tessera";
pub const CLIENT_SECRET: &str = "tessera-test-secret";

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-node")
}

/// A running identity provider, stopped when dropped.
pub struct Idp {
    pub issuer: String,
    child: Child,
    script: PathBuf,
}

impl Idp {
    /// Starts the provider for Tessera at `base` (its redirect URI is
    /// `{base}/login/sso/callback`); `None` (with a warning) without Node or `oidc-provider`
    /// outside CI.
    pub async fn start(base: &str) -> Option<Self> {
        let package = node_dir().join("node_modules/oidc-provider/package.json");
        let node = Command::new("node").arg("--version").output().await;
        if !package.exists() || !node.is_ok_and(|o| o.status.success()) {
            let why = format!(
                "the SSO tests need Node and the npm package oidc-provider in {} (.ci/run \
                 installs it: npm install --prefix target/ci-node oidc-provider@9.13.3)",
                node_dir().display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("warning: skipping an SSO test: {why}");
            return None;
        }
        let port = free_port();
        // ES modules find their packages beside them: the script runs from the install.
        let script = node_dir().join(format!("idp-{}-{port}.mjs", std::process::id()));
        std::fs::write(&script, include_str!("idp.mjs")).unwrap();
        let child = Command::new("node")
            .arg(&script)
            .arg(port.to_string())
            .arg(format!("{base}/login/sso/callback"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let mut idp = Self {
            issuer: format!("http://localhost:{port}"),
            child,
            script,
        };
        let discovery = format!("{}/.well-known/openid-configuration", idp.issuer);
        for _ in 0..200 {
            if let Some(status) = idp.child.try_wait().unwrap() {
                panic!("the identity provider exited: {status}");
            }
            if reqwest::get(&discovery)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Some(idp);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the identity provider did not start on port {port}");
    }

    /// Stops the provider now: it becomes unreachable.
    pub async fn stop(&mut self) {
        self.child.kill().await.unwrap();
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

/// A team at `acme.test` whose owner (`boss@acme.test`, with 2FA) connected the provider.
pub struct Connected {
    pub idp: Idp,
    pub owner: String,
}

/// Starts the provider and connects it to a new team: `None` where the tests are skipped.
pub async fn connected(app: &TestApp, jit: bool, mode: &str) -> Option<Connected> {
    let idp = Idp::start(&app.base).await?;
    let owner = app.owner_with_2fa("boss@acme.test").await;
    let response = app
        .put(
            "/api/v1/account/sso",
            json!({
                "issuer": idp.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "email_domains": ["acme.test"], "jit_provisioning": jit, "sso_two_factor": mode,
            }),
            Some(&owner),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.body().await
    );
    Some(Connected { idp, owner })
}

/// The provider's URL on the page `/login/sso` answers (the link `#continue`).
pub fn onward_url(page: &str) -> String {
    let marker = "id=\"continue\" href=\"";
    let link = &page[page.find(marker).expect("the onward link") + marker.len()..];
    let url = link.split('"').next().unwrap();
    url.replace("&#38;", "&").replace("&amp;", "&")
}

/// Where a redirect leads, as an absolute URL.
fn next_url(response: &Response) -> String {
    let location = response.location();
    if location.starts_with('/') {
        let url = response.url();
        format!(
            "{}://{}{location}",
            url.scheme(),
            url.host_str()
                .zip(url.port())
                .map_or(String::new(), |(h, p)| format!("{h}:{p}"))
        )
    } else {
        location.to_owned()
    }
}

impl PageBrowser {
    /// `GET url` (absolute) with this browser's cookies.
    pub async fn visit(&self, url: &str) -> Response {
        self.client.get(url).send().await.unwrap()
    }

    /// Starts "Sign in with SSO" for `email` and signs in at the provider as `login`: the
    /// callback URL the provider sends the browser back to (not opened yet).
    pub async fn at_provider(&self, app: &TestApp, email: &str, login: &str) -> String {
        let start = self
            .client
            .get(app.url("/login/sso"))
            .query(&[("email", email)])
            .send()
            .await
            .unwrap();
        // A page that goes on to the provider (a meta refresh, and a link).
        let page = crate::helpers::assert_page(start, StatusCode::OK, "id=\"continue\"").await;
        let authorization_url = onward_url(&page);
        assert!(page.contains("http-equiv=\"refresh\""), "{page}");
        // Through the provider: its login form when it does not know the browser yet, then
        // back towards Tessera.
        let mut response = self.visit(&authorization_url).await;
        for _ in 0..10 {
            let next = next_url(&response);
            if next.starts_with(&app.url("/login/sso/callback")) {
                return next;
            }
            let page = self.visit(&next).await;
            response = if page.status() == StatusCode::OK {
                self.client
                    .post(&next)
                    .form(&[("prompt", "login"), ("login", login), ("password", "any")])
                    .send()
                    .await
                    .unwrap()
            } else {
                page
            };
        }
        panic!("the provider never sent the browser back to Tessera");
    }

    /// The whole SSO sign-in as `login`: Tessera's answer to the callback.
    pub async fn sso(&self, app: &TestApp, email: &str, login: &str) -> Response {
        let callback = self.at_provider(app, email, login).await;
        self.visit(&callback).await
    }
}

/// The session token a response set in its cookie.
pub fn session_cookie(response: &Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("tessera_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

/// The kinds of the team's audit events, newest first.
pub async fn team_event_kinds(app: &TestApp, owner: &str) -> Vec<String> {
    let page = app.account_events(owner, "limit=100").await.body().await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}
