//! A real nginx in front of an app, with `auth_request` to Tessera's gate (SPEC §11): the
//! configuration the README shows, run by the test with Debian's nginx (unprivileged paths,
//! its own prefix in a temporary folder, `daemon off`, free ports), in front of a small app
//! the test starts, which answers with the identity headers it received.
//!
//! Driven over HTTP (a browser without JavaScript, and API keys) on both backends, and in
//! Chromium on SQLite. Without nginx the tests fail under `CI` (which installs it) and are
//! skipped with a warning elsewhere.

use super::unknown_key;
use crate::browser::Browser;
use crate::helpers::{PASSWORD, ResponseExt, TestApp};
use crate::smtp::free_port;
use reqwest::StatusCode;
use std::path::Path;
use std::time::Duration;
use tessera_core::api_keys::{GrantCatalog, IpRule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

backend_tests!(
    behind_nginx_a_browser_signs_in_and_the_app_gets_who_it_is,
    behind_nginx_keys_pass_by_grant_address_and_revocation,
);

const NGINX: &str = "/usr/sbin/nginx";

/// The app behind the proxy: answers every request with its path and the `X-Tessera-*`
/// headers it got, as text (an HTML page, so a browser shows it).
struct EchoApp {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl EchoApp {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let mut lines = head.lines();
                    let path = lines
                        .next()
                        .and_then(|l| l.split(' ').nth(1))
                        .unwrap_or("?")
                        .to_owned();
                    let mut body = format!("app saw {path}\n");
                    for line in lines {
                        if line.to_ascii_lowercase().starts_with("x-tessera-") {
                            body.push_str(&line.to_ascii_lowercase());
                            body.push('\n');
                        }
                    }
                    let page = format!("<!doctype html><title>App</title><pre>{body}</pre>");
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{page}",
                        page.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { port, task }
    }
}

impl Drop for EchoApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// nginx with the README's configuration, in a folder of its own; stopped when dropped.
struct Nginx {
    port: u16,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// The README's nginx configuration, between its markers, with the test's addresses.
fn configuration(listen: u16, tessera: &str, app: u16) -> String {
    let readme = include_str!("../../../../../README.md");
    let start = readme
        .find("# nginx-gate-begin")
        .expect("the README's nginx example");
    let end = readme.find("# nginx-gate-end").expect("its end");
    readme[start..end]
        .replace("listen 80;", &format!("listen 127.0.0.1:{listen};"))
        .replace("http://tessera:8080", tessera)
        .replace("http://app:3000", &format!("http://127.0.0.1:{app}"))
}

impl Nginx {
    /// `None` (with a warning) when nginx is missing outside CI.
    async fn start(port: u16, tessera: &str, app: u16) -> Option<Self> {
        if !Path::new(NGINX).exists() {
            let why = format!(
                "the gate's proxy tests need {NGINX} (apt-get install nginx); .ci/run installs it"
            );
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("warning: skipping a test behind nginx: {why}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nerror_log {d}/error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{}\n}}\n",
            configuration(port, tessera, app)
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx starts");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(Self {
                    port,
                    _child: child,
                    _dir: dir,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        panic!("nginx did not start: {log}");
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// The app started, Tessera configured for the proxy, nginx in front.
async fn behind_nginx(app: &mut TestApp) -> Option<(EchoApp, Nginx)> {
    let echo = EchoApp::start().await;
    // nginx's port is picked first, so Tessera can allow it as a `return_to` origin.
    let port = free_port();
    app.reconfigure(|c| {
        c.trusted_proxies = vec![IpRule::parse("127.0.0.1").unwrap()];
        c.allowed_return_origins = vec![format!("http://127.0.0.1:{port}")];
        c.api_grants = GrantCatalog::new(["messages:send".to_owned()]).unwrap();
    })
    .await;
    let nginx = Nginx::start(port, &app.base, echo.port).await?;
    Some((echo, nginx))
}

async fn behind_nginx_a_browser_signs_in_and_the_app_gets_who_it_is(mut app: TestApp) {
    let Some((_echo, nginx)) = behind_nginx(&mut app).await else {
        return;
    };
    app.signed_up("ada@example.com").await;
    let b = app.browser();
    // Not signed in: nginx sends the browser to Tessera's sign-in page, to come back.
    let wanted = nginx.url("/reports?id=7");
    let response = b
        .client
        .get(&wanted)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let login = response.location().to_owned();
    let expected = format!(
        "{}/login?{}",
        app.base,
        serde_urlencoded::to_string([("return_to", &wanted)]).unwrap()
    );
    assert_eq!(login, expected);
    // An API client is told 401, not redirected.
    let api = reqwest::get(nginx.url("/reports")).await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    // Signing in on that page leads back to the app.
    let sent = app.device_codes_sent("ada@example.com").await;
    let (_, page) = b.get(login.strip_prefix(&app.base).unwrap()).await;
    let response = b
        .submit(
            &page,
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("return_to", &wanted),
            ],
        )
        .await;
    assert_eq!(response.location(), "/login/verify-device");
    let (_, html) = b.get("/login/verify-device").await;
    let code = app.device_code("ada@example.com", sent + 1).await;
    let response = b
        .submit(&html, "/login/verify-device", &[("code", &code)])
        .await;
    assert_eq!(response.location(), wanted);
    // The session cookie (host-wide) reaches the app through nginx; the app gets who it is,
    // and nothing the browser made up.
    let seen = b
        .client
        .get(&wanted)
        .header("x-tessera-email", "mallory@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), StatusCode::OK);
    let text = seen.text().await.unwrap();
    assert!(text.contains("app saw /reports?id=7"), "{text}");
    assert!(text.contains("x-tessera-email: ada@example.com"), "{text}");
    assert!(!text.contains("mallory"), "{text}");
    assert!(text.contains("x-tessera-auth: session"), "{text}");
    assert!(text.contains("x-tessera-role: owner"), "{text}");
}

async fn behind_nginx_keys_pass_by_grant_address_and_revocation(mut app: TestApp) {
    let Some((_echo, nginx)) = behind_nginx(&mut app).await else {
        return;
    };
    let owner = app.signed_in("owner@example.com").await;
    let (with_grant, _) = app.new_key(&owner, &["messages:send"], &[]).await;
    let (without, _) = app.new_key(&owner, &["users:read"], &[]).await;
    // A key allowed only from a second loopback address.
    let (pinned, _) = app
        .new_key(&owner, &["messages:send"], &["127.0.0.2"])
        .await;
    let (revoked, revoked_id) = app.new_key(&owner, &["messages:send"], &[]).await;
    let get = async |path: &str, key: &str, from: &str| {
        reqwest::Client::builder()
            .local_address(Some(from.parse().unwrap()))
            .build()
            .unwrap()
            .get(nginx.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    };
    // `/messages/` needs the grant `messages:send` (the README's second location).
    let ok = get("/messages/send", &with_grant, "127.0.0.1").await;
    assert_eq!(ok.status(), StatusCode::OK);
    let text = ok.text().await.unwrap();
    assert!(text.contains("x-tessera-auth: api_key"), "{text}");
    assert!(text.contains("x-tessera-grants: messages:send"), "{text}");
    assert_eq!(
        get("/messages/send", &without, "127.0.0.1").await.status(),
        StatusCode::FORBIDDEN
    );
    // Elsewhere any valid key passes.
    assert_eq!(
        get("/", &without, "127.0.0.1").await.status(),
        StatusCode::OK
    );
    // The pinned key: from its address through nginx's X-Forwarded-For, and not otherwise.
    assert_eq!(
        get("/messages/send", &pinned, "127.0.0.2").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get("/messages/send", &pinned, "127.0.0.1").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get("/", &revoked, "127.0.0.1").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.revoke_key(&owner, &revoked_id).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        get("/", &revoked, "127.0.0.1").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get("/", &unknown_key(), "127.0.0.1").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The refusal by address was Tessera's, with the client's address from nginx.
    let events = app
        .account_events(&owner, "")
        .await
        .body()
        .await
        .to_string();
    assert!(events.contains("ip_not_allowed"), "{events}");
}

/// In Chromium, on SQLite: the app's page, the sign-in page, back to the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_in_chromium() {
    let Some(mut app) = crate::helpers::spawn_app(tessera_store::testing::Backend::Sqlite).await
    else {
        return;
    };
    let Some((_echo, nginx)) = behind_nginx(&mut app).await else {
        return;
    };
    app.signed_up("ada@example.com").await;
    let Some(b) = Browser::start(&nginx.url("")).await else {
        return;
    };
    b.open("/dashboard?from=chromium").await;
    // Tessera's sign-in page, reached through nginx's redirect.
    b.find("#email").await;
    assert_eq!(b.path().await, "/login");
    b.screenshot("gate-sign-in").await;
    let sent = app.device_codes_sent("ada@example.com").await;
    b.fill("Email", "ada@example.com").await;
    b.fill("Password", PASSWORD).await;
    b.press("Sign in").await;
    let code = app.device_code("ada@example.com", sent + 1).await;
    b.fill("Code from the email", &code).await;
    b.press("Verify").await;
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.port(), Some(nginx.port), "back at the app: {url}");
    let text = b.text().await;
    assert!(text.contains("app saw /dashboard?from=chromium"), "{text}");
    assert!(text.contains("x-tessera-email: ada@example.com"), "{text}");
    b.screenshot("gate-app").await;
    // The page of keys: create one with a checkbox and an address, copy it, use it.
    b.client
        .goto(&format!("{}/account/api-keys", app.base))
        .await
        .unwrap();
    b.fill("Label", "Sender").await;
    b.check("input[value='messages:send']").await;
    b.fill("Allowed addresses", "127.0.0.1").await;
    b.press("Create key").await;
    assert!(b.text().await.contains("Copy it now"));
    b.screenshot("api-keys-created").await;
    let key = b
        .find("#created-key")
        .await
        .prop("value")
        .await
        .unwrap()
        .expect("the key");
    let sent = reqwest::Client::new()
        .get(nginx.url("/messages/new"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    assert!(
        sent.text()
            .await
            .unwrap()
            .contains("x-tessera-auth: api_key")
    );
    b.press("Revoke").await;
    assert!(b.text().await.contains("Key revoked"));
    b.screenshot("api-keys").await;
    let refused = reqwest::Client::new()
        .get(nginx.url("/messages/new"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    b.close().await;
}
