//! [`PageBrowser`]: the web pages as a browser without JavaScript uses them: it keeps
//! cookies, posts forms, and does not follow redirects (so tests see them).

use super::{PASSWORD, ResponseExt, SecondFactor, TestApp};
use crate::otp::{decode_qr_svg, oathtool};
use reqwest::{Client, Response, StatusCode};
use tessera_core::Clock;

pub struct PageBrowser {
    pub client: Client,
    base: String,
}

/// The value of the page's CSRF field.
pub fn csrf_field(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// Asserts the answer's status and that its page says `text`: the page.
pub async fn assert_page(response: Response, status: StatusCode, text: &str) -> String {
    assert_eq!(
        response.status(),
        status,
        "status of the page saying {text:?}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains(text), "{text:?} in {html}");
    html
}

/// The text of the `<p>` with `id`.
fn paragraph(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\"")).expect("the element");
    let body = &html[start..];
    let body = &body[body.find('>').unwrap() + 1..];
    body[..body.find("</p>").unwrap()].to_owned()
}

impl TestApp {
    /// A new browser, with no cookies yet.
    pub fn browser(&self) -> PageBrowser {
        PageBrowser {
            client: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: self.base.clone(),
        }
    }

    /// A new browser, signed in through the sign-in page.
    pub async fn browser_signed_in(&self, email: &str) -> PageBrowser {
        let b = self.browser();
        let response = b.sign_in(self, email, PASSWORD).await;
        assert_eq!(response.location(), "/", "signed in");
        b
    }

    /// A new browser that signed up Ada at `email` on the sign-up page, and is signed in.
    pub async fn browser_signed_up(&self, email: &str) -> PageBrowser {
        let b = self.browser();
        let response = b.sign_up("Acme", "Ada", email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        b
    }
}

impl PageBrowser {
    /// `GET path`: the answer itself.
    pub async fn open(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// `GET path`: the status and the page.
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self.open(path).await;
        (response.status(), response.text().await.unwrap())
    }

    /// Posts a form with exactly these fields.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form of the page `html`: its CSRF field, then `fields`.
    pub async fn submit(&self, html: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = csrf_field(html);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_form(path, &all).await
    }

    /// Opens `page` and posts its form to `path`.
    pub async fn fill_in(&self, page: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let (_, html) = self.get(page).await;
        self.submit(&html, path, fields).await
    }

    /// Fills in and posts the sign-up page's form.
    pub async fn sign_up(&self, team: &str, name: &str, email: &str, password: &str) -> Response {
        let fields = [
            ("account_name", team),
            ("name", name),
            ("email", email),
            ("password", password),
        ];
        self.fill_in("/signup", "/signup", &fields).await
    }

    /// Fills in and posts the sign-in page's form.
    pub async fn post_password(&self, email: &str, password: &str) -> Response {
        let fields = [("email", email), ("password", password)];
        self.fill_in("/login", "/login", &fields).await
    }

    /// Signs in on the login page with the password: where the sign-in leads.
    pub async fn password_sign_in(&self, email: &str) -> String {
        self.post_password(email, PASSWORD)
            .await
            .location()
            .to_owned()
    }

    /// Signs in on the pages; a browser the user has not verified yet is asked for the code
    /// emailed to them, which this reads from the mail and types in. The last response.
    pub async fn sign_in(&self, app: &TestApp, email: &str, password: &str) -> Response {
        let sent = app.device_codes_sent(email).await;
        let response = self.post_password(email, password).await;
        if response.status() != StatusCode::SEE_OTHER
            || response.location() != "/login/verify-device"
        {
            return response;
        }
        let (status, html) = self.get("/login/verify-device").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<h1>Verify your identity</h1>"));
        let code = app.device_code(email, sent + 1).await;
        self.submit(&html, "/login/verify-device", &[("code", &code)])
            .await
    }

    /// Signs out with the form on the page `html`.
    pub async fn sign_out(&self, html: &str) -> Response {
        self.submit(html, "/logout", &[]).await
    }

    /// Signs out of the pages, then in again with the password: where the sign-in leads.
    pub async fn sign_out_and_in(&self, email: &str) -> String {
        let (_, home) = self.get("/").await;
        self.sign_out(&home).await;
        self.password_sign_in(email).await
    }

    /// Sets up 2FA from the security page, checking the QR code holds the key shown and the
    /// downloaded codes are the ones shown.
    pub async fn enable_2fa(&self, app: &TestApp) -> Option<SecondFactor> {
        let (status, html) = self.get("/settings/security").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Two-factor authentication <span class=\"badge\">Off</span>"));
        let response = self.submit(&html, "/settings/security/setup", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let html = response.text().await.unwrap();
        let svg_start = html.find("<svg").unwrap();
        let svg_end = html[svg_start..].find("</svg>").unwrap() + svg_start + 6;
        let uri = decode_qr_svg(&html[svg_start..svg_end]);
        let secret = paragraph(&html, "secret").replace(' ', "");
        assert_eq!(secret.len(), 32, "{secret}");
        assert!(
            uri.contains(&format!("secret={secret}")),
            "the QR code holds the key shown"
        );
        let paper_key = paragraph(&html, "paper-key").replace(' ', "");
        assert_eq!(paper_key.len(), 64);
        let code = oathtool(&secret, app.clock.now())?;
        let response = self
            .submit(&html, "/settings/security/activate", &[("code", &code)])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let html = response.text().await.unwrap();
        assert!(html.contains("Two-factor authentication is on"));
        let recovery_codes: Vec<String> = html
            .split("<li><code>")
            .skip(1)
            .map(|s| s.split('<').next().unwrap().to_owned())
            .collect();
        assert_eq!(recovery_codes.len(), 10);
        self.check_codes_download(&html, &recovery_codes).await;
        app.clock.advance(30);
        Some(SecondFactor {
            secret,
            recovery_codes,
            paper_key,
        })
    }

    /// The download button of the page `html` returns `codes` as a file.
    async fn check_codes_download(&self, html: &str, codes: &[String]) {
        let content = codes.join(" ");
        let fields = [("kind", "recovery-codes"), ("content", content.as_str())];
        let response = self
            .submit(html, "/settings/security/download", &fields)
            .await;
        assert_eq!(
            response.headers()["content-disposition"],
            "attachment; filename=\"tessera-recovery-codes.txt\""
        );
        let file = response.text().await.unwrap();
        assert!(codes.iter().all(|c| file.lines().any(|l| l == c)));
    }
}
