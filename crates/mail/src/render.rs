//! The words of every email (SPEC §6): one [`Content`] per message (in `messages`), laid out
//! twice, as plain text and as HTML, by `templates/email.{txt,html}`.

use askama::Template;
use tessera_core::mail::OutgoingEmail;
use tessera_core::user_agent::browser_name;

mod messages;
#[cfg(test)]
mod tests;

/// What the emails say about the deployment.
#[derive(Clone, Debug)]
pub struct Brand {
    /// The product name shown to users (`TESSERA_ISSUER`).
    pub product: String,
    /// Base of every link (`TESSERA_PUBLIC_URL`), without a trailing slash.
    pub public_url: String,
}

/// A rendered email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("an email template failed to render: {0}")]
pub struct RenderError(#[from] askama::Error);

/// The message-specific part of an email.
struct Content {
    subject: String,
    heading: String,
    paragraphs: Vec<String>,
    /// A code to copy, shown large.
    code: Option<String>,
    /// A button: label and absolute URL.
    action: Option<(String, String)>,
    /// Whether to show when and from where it happened.
    show_origin: bool,
    advice: Option<String>,
}

#[derive(Template)]
#[template(path = "email.html")]
struct Html<'a> {
    c: &'a Content,
    product: &'a str,
    to_name: &'a str,
    account_name: Option<&'a str>,
    details: Vec<(&'static str, String)>,
    settings_url: String,
}

/// The same layout as plain text.
#[derive(Template)]
#[template(path = "email.txt")]
struct Text<'a> {
    l: &'a Html<'a>,
}

/// Renders `email` for delivery.
pub fn render(email: &OutgoingEmail, brand: &Brand) -> Result<Rendered, RenderError> {
    let c = messages::content(email, brand);
    let mut details = Vec::new();
    if c.show_origin {
        details.push(("When", email.at.to_human()));
        if let Some(ip) = &email.ip {
            details.push(("IP address", ip.clone()));
        }
        if email.user_agent.is_some() {
            let browser = browser_name(email.user_agent.as_deref());
            details.push(("Browser", browser));
        }
    }
    let layout = Html {
        c: &c,
        product: &brand.product,
        to_name: &email.to_name,
        account_name: email.account_name.as_deref(),
        details,
        settings_url: format!("{}/settings/security", brand.public_url),
    };
    Ok(Rendered {
        html: layout.render()?,
        text: Text { l: &layout }.render()?,
        subject: c.subject.clone(),
    })
}
