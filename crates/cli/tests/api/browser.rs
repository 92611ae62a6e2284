//! A real browser for the end-to-end tests: Debian's `chromium`, headless, driven through
//! `chromedriver` (WebDriver) with `fantoccini`. Each test gets its own driver and profile.
//!
//! Without chromium and chromedriver the tests fail under `CI` (which installs both) and are
//! skipped with a warning elsewhere. Screenshots go to `target/e2e-screenshots/`.

use crate::smtp::free_port;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

/// A command of a WebDriver extension under `/session/{id}/`: a POST of `body`, or a GET
/// when the body is null.
#[derive(Debug)]
struct WebDriverExtension {
    path: String,
    body: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebDriverExtension {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        if self.body.is_null() {
            (http::Method::GET, None)
        } else {
            (http::Method::POST, Some(self.body.to_string()))
        }
    }
}

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium window; the driver and profile go away with it.
pub struct Browser {
    pub client: Client,
    base: String,
    _driver: Driver,
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
}

/// Where screenshots are written: `<workspace>/target/e2e-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/e2e-screenshots")
        .to_path_buf()
}

/// chromedriver, leading a process group of its own: dropped, it is killed with the whole
/// group, the Chromium processes it started among them (killed alone, it leaves them running
/// past the test, as a test that fails never closes its session).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Browser {
    /// Starts a browser that resolves paths against `base` (the app's URL); `None` (with a
    /// warning) when chromium is missing outside CI.
    pub async fn start(base: &str) -> Option<Self> {
        if !Path::new(CHROMIUM).exists() || !Path::new(DRIVER).exists() {
            let why = format!(
                "the browser tests need {CHROMIUM} and {DRIVER} (apt-get install chromium \
                 chromium-driver); .ci/run installs them"
            );
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("warning: skipping a browser test: {why}");
            return None;
        }
        let port = free_port();
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map(Driver)
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-background-networking", "--disable-sync",
                    "--disable-component-update", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Self {
                        client,
                        base: base.to_owned(),
                        _driver: driver,
                        _profile: profile,
                        downloads,
                    });
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start: {last_error}");
    }

    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The path of the page shown now.
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// The element `css` selects, waiting (up to 5 s) while a page is still loading.
    pub async fn find(&self, css: &str) -> Element {
        let mut last = None;
        for _ in 0..50 {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return element,
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {css} on the page: {last:?}")
    }

    /// Marks the page shown now, so [`Browser::settle`] can tell when another replaced it.
    async fn mark(&self) {
        self.client
            .execute("window.__tesseraShown = true;", vec![])
            .await
            .unwrap();
    }

    /// Waits (up to 10 s) until the page marked by [`Browser::mark`] was replaced by one
    /// that has loaded.
    async fn settle(&self) {
        let check =
            "return window.__tesseraShown === undefined && document.readyState === 'complete';";
        for _ in 0..200 {
            let loaded = self.client.execute(check, vec![]).await.ok();
            if loaded.as_ref().and_then(|v| v.as_bool()) == Some(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no new page loaded after a click");
    }

    /// Types into the input whose label reads `label` (every input has one).
    pub async fn fill(&self, label: &str, text: &str) {
        let xpath = format!("//label[normalize-space()='{label}']");
        let label_element = self
            .client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no label {label:?}: {e}"));
        let id = label_element.attr("for").await.unwrap().expect("label for");
        let input = self.find(&format!("#{id}")).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// The button that reads `text`.
    async fn button(&self, text: &str) -> Element {
        let xpath = format!("//button[normalize-space()='{text}']");
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button {text:?}: {e}"))
    }

    /// Clicks the button that reads `text` and waits for the page it leads to.
    pub async fn press(&self, text: &str) {
        let button = self.button(text).await;
        self.mark().await;
        button.click().await.unwrap();
        self.settle().await;
    }

    /// Clicks the button that reads `text` and waits for the file `name` it downloads: its
    /// text. The page stays.
    pub async fn download(&self, text: &str, name: &str) -> String {
        self.button(text).await.click().await.unwrap();
        let path = self.downloads.path().join(name);
        // Chromium writes `<name>.crdownload`, with an empty `<name>` beside it, then
        // renames the one onto the other.
        let partial = self.downloads.path().join(format!("{name}.crdownload"));
        for _ in 0..100 {
            if let Ok(text) = std::fs::read_to_string(&path)
                && !text.is_empty()
                && !partial.exists()
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser did not download {name}");
    }

    /// Clicks the element `css` selects (a link or a button) and waits for the page it
    /// leads to.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.mark().await;
        element.click().await.unwrap();
        self.settle().await;
    }

    /// Clicks the element `css` selects (a checkbox, an option): the page stays.
    pub async fn check(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Types `keys` into the focused element, then waits for the page they lead to (they
    /// end with Enter).
    pub async fn type_and_submit(&self, keys: &str) {
        let focused = self.client.active_element().await.unwrap();
        self.mark().await;
        focused.send_keys(keys).await.unwrap();
        self.settle().await;
    }

    /// The visible text of the page (read again if the page changed under the read).
    pub async fn text(&self) -> String {
        for _ in 0..50 {
            if let Ok(text) = self.find("body").await.text().await {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page's text could not be read");
    }

    pub async fn html(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Saves a screenshot of the whole page as `target/e2e-screenshots/<name>.png`, after
    /// checking that every field on it has a label.
    pub async fn screenshot(&self, name: &str) {
        let unlabelled = self
            .client
            .execute(
                "return [...document.querySelectorAll(\
                   'input:not([type=hidden]), select, textarea')]\
                 .filter(e => !(e.id && document.querySelector(`label[for=\"${e.id}\"]`))\
                   && !e.getAttribute('aria-label'))\
                 .map(e => e.name || e.outerHTML);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(unlabelled, json!([]), "fields without a label on {name}");
        // Grow the window to the page's height so the picture shows all of it.
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(900)
            .clamp(600, 4000);
        let width = self
            .client
            .execute("return window.outerWidth;", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(1280);
        let _ = self
            .client
            .set_window_size(
                u32::try_from(width).unwrap_or(1280),
                u32::try_from(height).unwrap_or(900) + 120,
            )
            .await;
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// A phone-width window (and back with [`Browser::desktop`]).
    pub async fn phone(&self) {
        self.client.set_window_size(390, 844).await.unwrap();
    }

    pub async fn desktop(&self) {
        self.client.set_window_size(1280, 900).await.unwrap();
    }

    /// Adds a virtual authenticator through the WebDriver WebAuthn extension: a platform
    /// passkey (CTAP2, internal transport) that keeps resident keys and verifies its user,
    /// answering every request at once.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "isUserConsenting": true,
        });
        let answer = self
            .client
            .issue_cmd(WebDriverExtension {
                path: "webauthn/authenticator".to_owned(),
                body: options,
            })
            .await
            .expect("the driver adds a virtual authenticator");
        answer.as_str().unwrap_or_default().to_owned()
    }

    /// The credentials the virtual authenticator `id` holds.
    pub async fn virtual_credentials(&self, id: &str) -> Vec<serde_json::Value> {
        let path = format!("webauthn/authenticator/{id}/credentials");
        let answer = self
            .client
            .issue_cmd(WebDriverExtension {
                path,
                body: serde_json::Value::Null,
            })
            .await
            .expect("the driver lists the authenticator's credentials");
        answer.as_array().cloned().unwrap_or_default()
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
