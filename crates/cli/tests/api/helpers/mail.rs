//! The emails the app sent (to its mail folder, or to the SMTP server of
//! [`TestApp::use_smtp`]), and the codes and links tests read from them.

use super::TestApp;
use crate::smtp::Received;
use std::time::Duration;

const RESET_PATH: &str = "/password/reset/";
const DEVICE_CODE_SUBJECT: &str = "Verify your identity to proceed with the login";

/// Tries `found` every 50 ms for up to 30 s; panics with `what` if it never finds anything.
async fn wait_for<T>(
    what: impl FnOnce() -> String,
    mut found: impl AsyncFnMut() -> Option<T>,
) -> T {
    for _ in 0..600 {
        if let Some(value) = found().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{}", what());
}

impl TestApp {
    /// The emails delivered for `to`, oldest first; waits up to 30 s for at least `n` of
    /// them.
    pub async fn mail_to(&self, to: &str, n: usize) -> Vec<Received> {
        let expected = || format!("expected {n} emails to {to}");
        wait_for(expected, async || {
            let found: Vec<_> = self
                .delivered()
                .into_iter()
                .filter(|m| m.to == to)
                .collect();
            (found.len() >= n).then_some(found)
        })
        .await
    }

    /// Everything delivered so far, oldest first.
    fn delivered(&self) -> Vec<Received> {
        let folder = self
            .maildir
            .clone()
            .unwrap_or_else(|| self.db.data_dir().join("mail"));
        let paths: Vec<_> = std::fs::read_dir(&folder)
            .map(|dir| dir.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        let mut mail: Vec<Received> = paths
            .iter()
            .filter(|p| self.maildir.is_some() || p.extension().is_some_and(|e| e == "eml"))
            .map(|p| crate::smtp::parse(&std::fs::read(p).unwrap()))
            .collect();
        // In the order they were queued, not delivered: the outbox sends on several
        // connections at once, so two emails queued a moment apart may arrive the other way
        // round. Each Message-ID is `<outbox id@domain>`, a UUIDv7, which the server makes
        // in creation order.
        mail.sort_by(|a, b| a.message_id.cmp(&b.message_id));
        mail
    }

    /// Waits (up to 30 s) for an email to `to` whose text contains `needle`.
    pub async fn mail_containing(&self, to: &str, needle: &str) -> Received {
        let what = || format!("no email to {to} containing {needle:?}");
        wait_for(what, async || {
            let found = self.mail_to(to, 0).await;
            found.into_iter().find(|m| m.text.contains(needle))
        })
        .await
    }

    /// How many device-verification emails `to` has received so far.
    pub async fn device_codes_sent(&self, to: &str) -> usize {
        self.mail_to(to, 0)
            .await
            .iter()
            .filter(|m| m.subject == DEVICE_CODE_SUBJECT)
            .count()
    }

    /// The code of the `n`-th device-verification email to `to`, waiting for it.
    pub async fn device_code(&self, to: &str, n: usize) -> String {
        let what = || format!("no device code number {n} for {to}");
        wait_for(what, async || {
            let codes: Vec<String> = self
                .mail_to(to, 0)
                .await
                .into_iter()
                .filter(|m| m.subject == DEVICE_CODE_SUBJECT)
                .filter_map(|m| {
                    m.text
                        .lines()
                        .map(str::trim)
                        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                        .map(str::to_owned)
                })
                .collect();
            codes.get(n - 1).cloned()
        })
        .await
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

    /// How many invitations `to` has received so far.
    pub async fn invitations_sent(&self, to: &str) -> usize {
        self.mail_to(to, 0)
            .await
            .iter()
            .filter(|m| m.text.contains("/invitations/"))
            .count()
    }

    /// The token of the `nth` invitation emailed to `to` (read from the link in the email).
    pub async fn invitation_token(&self, to: &str, nth: usize) -> String {
        self.link_token(to, "/invitations/", nth).await
    }

    /// The token of the `nth` password reset link emailed to `to`.
    pub async fn reset_token(&self, to: &str, nth: usize) -> String {
        self.link_token(to, RESET_PATH, nth).await
    }

    /// The token after `path` in the link of the `nth` email to `to` that has one.
    async fn link_token(&self, to: &str, path: &str, nth: usize) -> String {
        let what = || format!("no link {path} number {nth} for {to}");
        let text = wait_for(what, async || {
            let found: Vec<_> = self
                .mail_to(to, 0)
                .await
                .into_iter()
                .filter(|m| m.text.contains(path))
                .collect();
            found.into_iter().nth(nth - 1).map(|m| m.text)
        })
        .await;
        let start = text.find(path).expect("a link") + path.len();
        text[start..]
            .split(|c: char| c.is_whitespace() || c == '>')
            .next()
            .unwrap()
            .to_owned()
    }

    /// How many sign-up links `to` has received so far.
    pub async fn signup_links_sent(&self, to: &str) -> usize {
        self.mail_to(to, 0)
            .await
            .iter()
            .filter(|m| m.text.contains("/signup/confirm/"))
            .count()
    }

    /// The token of the `nth` sign-up link (`/signup/confirm/…`) emailed to `to`.
    pub async fn signup_token(&self, to: &str, nth: usize) -> String {
        let what = || format!("no sign-up link number {nth} for {to}");
        let text = wait_for(what, async || {
            let found: Vec<_> = self
                .mail_to(to, 0)
                .await
                .into_iter()
                .filter(|m| m.text.contains("/signup/confirm/"))
                .collect();
            found.into_iter().nth(nth - 1).map(|m| m.text)
        })
        .await;
        let start = text.find("/signup/confirm/").expect("a link") + "/signup/confirm/".len();
        text[start..]
            .split(|c: char| c.is_whitespace() || c == '>')
            .next()
            .unwrap()
            .to_owned()
    }
}
