//! The test app and what tests say with it.
//!
//! - this module: `spawn_app()`, the real application built by the same
//!   `Application::build` as `tessera serve`, on port 0 with a fresh database and a clock the
//!   test can move; its lifecycle; `assert_error`;
//! - [`api`]: one helper per endpoint of `/api/v1` (`app.login(..)`, `app.me(..)`), each
//!   answering the raw response, and [`ResponseExt::body`] for its JSON;
//! - [`flows`]: the steps many tests share (sign up and in, turn 2FA on, join a team);
//! - [`mail`]: the emails the app sent, and the codes and links in them;
//! - [`pages`]: a browser without JavaScript, for the web pages.

mod api;
mod flows;
mod mail;
mod pages;
pub mod process;

pub use api::{Api, ResponseExt};
pub use flows::{SecondFactor, Team, strings};
pub use pages::{PageBrowser, assert_page, csrf_field};

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
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

/// The running app: its [`Api`] (through `Deref`), its clock, database and mail.
pub struct TestApp {
    api: Api,
    pub clock: Arc<ManualClock>,
    pub backend: Backend,
    pub db: TestDatabase,
    /// Device codes answered so far through [`TestApp::verify_device`], by email.
    codes_answered: std::sync::Mutex<HashMap<String, usize>>,
    /// Where emails land when an SMTP server is configured (its Maildir's `new` folder).
    maildir: Option<std::path::PathBuf>,
    config: Config,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
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
    Some(spawn_app_with(backend, db, |_| {}).await)
}

/// The test app on `db`, with its configuration changed by `configure` before it starts.
pub async fn spawn_app_with(
    backend: Backend,
    db: TestDatabase,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = config_for(&db);
    // Deliver queued email promptly; retries are paced by the test's clock.
    config.mail.poll_interval_ms = 50;
    // Most tests need a user and make one through the API at once; the emailed link of
    // `verify` (the default) is tested on its own (`sign_up`) and by the browser tests.
    config.signup = tessera_core::sign_up::SignupMode::Open;
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = Arc::new(ManualClock(AtomicI64::new(start as i64)));
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut app = TestApp {
        api: Api::new(client),
        clock,
        backend,
        db,
        codes_answered: Default::default(),
        maildir: None,
        config,
        server: None,
    };
    configure(&mut app.config);
    app.start().await;
    app
}

impl TestApp {
    async fn start(&mut self) {
        let clock: Arc<dyn Clock> = self.clock.clone();
        let app = Application::build_with_clock(self.config.clone(), clock)
            .await
            .expect("the application builds");
        self.api.base = format!("http://{}", app.address());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await;
        });
        self.server = Some((stop, handle));
    }

    /// The API as a value of its own, for requests raced from spawned tasks.
    pub fn api(&self) -> Api {
        self.api.clone()
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

    /// Restarts sending email to `smtp_url` (where nothing may listen yet).
    pub async fn use_smtp_url(&mut self, smtp_url: String) {
        self.reconfigure(move |c| c.smtp_url = Some(smtp_url)).await;
    }

    /// Restarts with a changed configuration.
    pub async fn reconfigure(&mut self, change: impl FnOnce(&mut Config)) {
        self.stop().await;
        change(&mut self.config);
        self.start().await;
    }

    /// Builds the app again on this configuration without starting it: the error a start
    /// would end with, if any.
    pub async fn try_build(&self) -> Result<(), String> {
        let clock: Arc<dyn Clock> = self.clock.clone();
        Application::build_with_clock(self.config.clone(), clock)
            .await
            .map(drop)
            .map_err(|e| format!("{e:#}"))
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

    /// The `tessera` binary, run on the app's data folder and database.
    pub fn tessera(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
        command
            .env_clear()
            .env("TESSERA_DATA_DIR", self.db.data_dir())
            .env("TESSERA_DATABASE_URL", self.db.url());
        command
    }

    /// Runs `tessera admin ARGS` on the app's database: (success, stdout, stderr).
    pub fn admin(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.tessera().arg("admin").args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// Support turns a user's 2FA off: `tessera admin disable-2fa --email .. --reason ..`.
    pub fn admin_disable_2fa(&self, email: &str, reason: &str) -> (bool, String, String) {
        self.admin(&["disable-2fa", "--email", email, "--reason", reason])
    }

    /// A key file of a fresh master key in the app's data folder, named `name`.
    pub fn new_key_file(&self, name: &str) -> std::path::PathBuf {
        let path = self.db.data_dir().join(name);
        std::fs::write(&path, tessera_core::crypto::MasterKey::generate().to_hex()).unwrap();
        path
    }

    /// The use cases as another instance on the app's database would run them, on the
    /// test's clock (for what the server does on its own schedule, such as its sweeps).
    pub async fn core(&self) -> tessera_core::Tessera {
        let clock: Arc<dyn Clock> = self.clock.clone();
        let (store, keys) = tessera_server::open_store(&self.config, clock.now())
            .await
            .unwrap();
        let deps = tessera_server::build_deps(&self.config, &keys, store, clock);
        tessera_core::Tessera::new(deps.await.unwrap())
    }

    /// How many emails of this kind went to `to` (queued or sent): the outbox is written
    /// with the change that causes each, so this needs no waiting.
    pub async fn emails_of_kind(&self, to: &str, kind: &str) -> usize {
        let outbox = self.store().await.list_outbox(true, 1000).await.unwrap();
        outbox
            .iter()
            .filter(|e| e.kind == kind && e.recipient == to)
            .count()
    }

    /// Seals emails for the outbox exactly as the app does.
    pub fn mailer(&self) -> Mailer {
        Mailer::new(self.config.load_master_key().unwrap().sealer("outbox"))
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
