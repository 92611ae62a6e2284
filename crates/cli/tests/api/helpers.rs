//! `spawn_app()`: the real application, built by the same `Application::build` as
//! `tessera serve`, on port 0 with a fresh database and a clock the test can move.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tessera_core::mail::Mailer;
use tessera_core::store::Store;
use tessera_core::{Clock, Timestamp};
use tessera_server::{Application, Config};
use tessera_store::testing::{Backend, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery";

/// A clock that stands still until the test moves it.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.0.load(Ordering::SeqCst))
    }
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub backend: Backend,
    pub db: TestDatabase,
    /// Device tokens from email-code sign-ins, by email: later sign-ins send them.
    devices: std::sync::Mutex<HashMap<String, String>>,
    /// Device codes answered so far through [`TestApp::verify_device`], by email.
    codes_answered: std::sync::Mutex<HashMap<String, usize>>,
    /// Where emails land when an SMTP server is configured (its Maildir's `new` folder).
    maildir: Option<std::path::PathBuf>,
    config: Config,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

/// The configuration `tessera serve` would read from this environment.
pub fn config_for(db: &TestDatabase) -> Config {
    let env: HashMap<&str, String> = HashMap::from([
        ("TESSERA_BIND", "127.0.0.1:0".to_owned()),
        ("TESSERA_DATA_DIR", db.data_dir().display().to_string()),
        ("TESSERA_DATABASE_URL", db.url().to_owned()),
    ]);
    Config::from_sources(None, |k| env.get(k).cloned()).expect("test configuration")
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let db = TestDatabase::create(backend).await?;
    let mut config = config_for(&db);
    // Deliver queued email promptly; retries are paced by the test's clock.
    config.mail.poll_interval_ms = 50;
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = Arc::new(ManualClock(AtomicI64::new(start as i64)));
    let mut app = TestApp {
        base: String::new(),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        clock,
        backend,
        db,
        devices: Default::default(),
        codes_answered: Default::default(),
        maildir: None,
        config,
        server: None,
    };
    app.start().await;
    Some(app)
}

impl TestApp {
    async fn start(&mut self) {
        let clock: Arc<dyn Clock> = self.clock.clone();
        let app = Application::build_with_clock(self.config.clone(), clock)
            .await
            .expect("the application builds");
        self.base = format!("http://{}", app.address());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("the server runs");
        });
        self.server = Some((stop, handle));
    }

    /// Stops the server (as a process exit would) and starts a new one on the same database.
    pub async fn restart(&mut self) {
        self.reconfigure(|_| {}).await;
    }

    /// Restarts sending email through `sink`, where [`TestApp::mail_to`] then reads it.
    pub async fn use_smtp(&mut self, sink: &crate::smtp::SmtpSink) {
        let url = sink.url();
        self.maildir = Some(sink.maildir());
        self.reconfigure(move |c| c.smtp_url = Some(url)).await;
    }

    /// Restarts with a changed configuration.
    pub async fn reconfigure(&mut self, change: impl FnOnce(&mut Config)) {
        self.stop().await;
        change(&mut self.config);
        self.start().await;
    }

    /// Stops the server and its email worker; the database stays.
    pub async fn stop(&mut self) {
        if let Some((stop, handle)) = self.server.take() {
            let _ = stop.send(());
            handle.await.unwrap();
        }
    }

    /// A second connection to the app's database, as another instance would have.
    pub async fn store(&self) -> Arc<dyn Store> {
        tessera_store::connect(self.db.url()).await.unwrap()
    }

    /// Seals emails for the outbox exactly as the app does.
    pub fn mailer(&self) -> Mailer {
        Mailer::new(self.config.load_master_key().unwrap().sealer("outbox"))
    }

    /// Ten wrong passwords: locks the user's password sign-in (and emails them).
    pub async fn lock_out(&self, email: &str) {
        for _ in 0..10 {
            assert_eq!(self.login(email, "wrong password").await.status(), 401);
        }
        assert_eq!(self.login(email, PASSWORD).await.status(), 429);
    }

    /// The emails delivered to the mail folder (no SMTP configured) for `to`, oldest first;
    /// waits up to 30 s for at least `n` of them.
    pub async fn mail_to(&self, to: &str, n: usize) -> Vec<crate::smtp::Received> {
        let folder = self
            .maildir
            .clone()
            .unwrap_or_else(|| self.db.data_dir().join("mail"));
        for _ in 0..600 {
            let mut paths: Vec<_> = std::fs::read_dir(&folder)
                .map(|dir| dir.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            // The folder transport names files by the outbox id, a UUIDv7: by name is by
            // time. A Maildir's names do not sort by time within a second, so the time each
            // file was written decides first.
            paths.sort_by_key(|p| {
                let written = std::fs::metadata(p).and_then(|m| m.modified()).ok();
                (written, p.clone())
            });
            let found: Vec<_> = paths
                .iter()
                .filter(|p| self.maildir.is_some() || p.extension().is_some_and(|e| e == "eml"))
                .map(|p| crate::smtp::parse(&std::fs::read(p).unwrap()))
                .filter(|m| m.to == to)
                .collect();
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {n} emails to {to}");
    }

    /// Waits (up to 30 s) for an email to `to` whose text contains `needle`.
    pub async fn mail_containing(&self, to: &str, needle: &str) -> crate::smtp::Received {
        for _ in 0..600 {
            let found = self.mail_to(to, 0).await;
            if let Some(mail) = found.into_iter().find(|m| m.text.contains(needle)) {
                return mail;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no email to {to} containing {needle:?}");
    }

    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        let mut request = self.client.put(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.delete(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn signup(&self, email: &str) -> Value {
        let response = self
            .post(
                "/api/v1/signup",
                json!({"account_name": "Acme", "name": "Ada Lovelace", "email": email,
                       "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// Signs in from this test's "browser": with the device token of an earlier email-code
    /// sign-in of `email`, if there was one.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        let device = self.devices.lock().unwrap().get(email).cloned();
        self.post(
            "/api/v1/login",
            json!({"email": email, "password": password, "device_token": device}),
            None,
        )
        .await
    }

    /// How many device-verification emails `to` has received so far.
    pub async fn device_codes_sent(&self, to: &str) -> usize {
        self.mail_to(to, 0)
            .await
            .iter()
            .filter(|m| m.subject == "Verify your identity to proceed with the login")
            .count()
    }

    /// The code of the `n`-th device-verification email to `to`, waiting for it.
    pub async fn device_code(&self, to: &str, n: usize) -> String {
        for _ in 0..600 {
            let codes: Vec<String> = self
                .mail_to(to, 0)
                .await
                .into_iter()
                .filter(|m| m.subject == "Verify your identity to proceed with the login")
                .filter_map(|m| {
                    m.text
                        .lines()
                        .map(str::trim)
                        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                        .map(str::to_owned)
                })
                .collect();
            if codes.len() >= n {
                return codes[n - 1].clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no device code number {n} for {to}");
    }

    /// The next device code emailed to `email` that no test has answered through this
    /// method yet.
    pub async fn next_device_code(&self, email: &str) -> String {
        let n = {
            let mut answered = self.codes_answered.lock().unwrap();
            let n = answered.entry(email.to_owned()).or_default();
            *n += 1;
            *n
        };
        self.device_code(email, n).await
    }

    /// Answers a device challenge with the code emailed for it (the next device code to
    /// `email` this helper has not answered yet), and keeps the device token: the sign-in's
    /// answer.
    pub async fn verify_device(&self, email: &str, body: &Value) -> Value {
        let code = self.next_device_code(email).await;
        let response = self
            .post(
                "/api/v1/login/verify",
                json!({"challenge_token": body["challenge_token"], "code": code}),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["method_used"], "email_code", "{body}");
        let device = body["device_token"].as_str().unwrap().to_owned();
        self.devices
            .lock()
            .unwrap()
            .insert(email.to_owned(), device);
        body
    }

    /// Signs up `email` and signs in: the session token.
    pub async fn signed_in(&self, email: &str) -> String {
        self.signup(email).await;
        self.signed_in_again(email).await
    }

    /// Signs in an existing user (with the emailed code, the first time): the session token.
    pub async fn signed_in_again(&self, email: &str) -> String {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body: Value = response.json().await.unwrap();
        if body["status"] == "device_verification_required" {
            body = self.verify_device(email, &body).await;
        }
        body["session_token"].as_str().unwrap().to_owned()
    }
}

/// Asserts the documented error shape and code, and returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status for {code}");
    let body: Value = response.json().await.expect("errors are JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    body
}
