//! The words of every email (SPEC §6): one [`Content`] per message, laid out twice, as plain
//! text and as HTML, by `templates/email.{txt,html}`.

use askama::Template;
use tessera_core::mail::{DisabledVia, Message, OutgoingEmail, ResetBy};

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

const CHANGE_PASSWORD: &str = "Sign in and change your password right away, then review your \
                               recent activity; if you cannot sign in, contact your account owner.";

fn content(email: &OutgoingEmail, brand: &Brand) -> Content {
    let product = &brand.product;
    let url = |path: &str| format!("{}{}", brand.public_url, path);
    let team = email.account_name.as_deref().unwrap_or("your team");
    let base = |subject: String, heading: &str| Content {
        subject,
        heading: heading.to_owned(),
        paragraphs: Vec::new(),
        code: None,
        action: None,
        show_origin: true,
        advice: Some(CHANGE_PASSWORD.to_owned()),
    };
    match &email.message {
        Message::Invitation {
            inviter,
            role,
            token,
            expires_at,
        } => Content {
            paragraphs: vec![
                format!("{inviter} invited you to join {team} on {product} as {role}."),
                format!(
                    "Accept the invitation to choose your password. The link works once, until {}.",
                    expires_at.to_human()
                ),
                "If you did not expect this invitation, you can ignore this email.".to_owned(),
            ],
            action: Some((
                "Accept the invitation".to_owned(),
                url(&format!("/invitations/{token}")),
            )),
            show_origin: false,
            advice: None,
            ..base(
                format!("{inviter} invited you to {team} on {product}"),
                &format!("Join {team} on {product}"),
            )
        },
        Message::DeviceCode { code, expires_at } => Content {
            paragraphs: vec![
                format!(
                    "Someone signed in to your {product} account with your password from a \
                     device we do not recognize. Enter this code to continue:"
                ),
                format!(
                    "The code expires at {}. Turn on two-factor authentication to stop \
                     receiving these codes.",
                    expires_at.to_human()
                ),
            ],
            code: Some(code.clone()),
            advice: Some(format!(
                "Do not share this code. Someone knows your password: change it now. {product} \
                 will never ask you for this code by phone or email."
            )),
            ..base(
                "Verify your identity to proceed with the login".to_owned(),
                "Your verification code",
            )
        },
        Message::TwoFactorEnabled => Content {
            paragraphs: vec![
                "Two-factor authentication is now on for your account. Each sign-in will ask \
                 for a code from your authenticator app, or one of your recovery codes."
                    .to_owned(),
            ],
            ..base(
                format!("Two-factor authentication is on for your {product} account"),
                "Two-factor authentication is on",
            )
        },
        Message::TwoFactorDisabled { via } => Content {
            paragraphs: vec![
                match via {
                    DisabledVia::Password => {
                        "Two-factor authentication was turned off from your security settings. \
                         Your authenticator, recovery codes and paper key no longer work."
                    }
                    DisabledVia::PaperKey => {
                        "Two-factor authentication was turned off with your paper key on the \
                         recovery page. You can now sign in with your email and password; \
                         set up two-factor authentication again as soon as you can."
                    }
                }
                .to_owned(),
            ],
            action: Some((
                "Turn two-factor authentication back on".to_owned(),
                url("/settings/security"),
            )),
            ..base(
                format!("Two-factor authentication was turned off for your {product} account"),
                "Two-factor authentication is off",
            )
        },
        Message::RecoveryCodeUsed { remaining } => Content {
            paragraphs: vec![
                "A recovery code was used to sign in to your account. That code no longer works."
                    .to_owned(),
                match remaining {
                    0 => "You have no recovery codes left: generate new ones now.".to_owned(),
                    1 => "You have 1 recovery code left.".to_owned(),
                    n => format!("You have {n} recovery codes left."),
                },
            ],
            action: (*remaining <= 3).then(|| {
                (
                    "Generate new recovery codes".to_owned(),
                    url("/settings/security"),
                )
            }),
            ..base(
                format!("A recovery code was used to sign in to {product}"),
                "A recovery code was used",
            )
        },
        Message::RecoveryCodesRegenerated => Content {
            paragraphs: vec![
                "New recovery codes were generated for your account. Your previous codes no \
                 longer work; keep the new ones somewhere safe."
                    .to_owned(),
            ],
            ..base(
                format!("New recovery codes for your {product} account"),
                "New recovery codes",
            )
        },
        Message::TwoFactorReset { by, required } => {
            let who = match by {
                ResetBy::Admin { name } => format!("{name}, an administrator of {team},"),
                ResetBy::Operator => format!("{product} support, after verifying your identity,"),
            };
            let mut paragraphs = vec![format!(
                "{who} reset the two-factor authentication of your account. Your authenticator \
                 app, recovery codes and paper key no longer work, and you were signed out \
                 everywhere."
            )];
            paragraphs.push(if *required {
                format!("{team} requires two-factor authentication: you will set it up again at your next sign-in.")
            } else {
                "You can sign in with your email and password, then set up two-factor \
                 authentication again from your security settings."
                    .to_owned()
            });
            Content {
                paragraphs,
                show_origin: false,
                advice: Some(
                    "If you did not ask for this, contact your account owner right away."
                        .to_owned(),
                ),
                ..base(
                    format!("Your {product} two-factor authentication was reset"),
                    "Your two-factor authentication was reset",
                )
            }
        }
        Message::TwoFactorRequired { by, deadline } => Content {
            paragraphs: vec![
                format!("{by} now requires two-factor authentication for everyone in {team}."),
                match deadline {
                    Some(d) => format!(
                        "If you have not set it up yet, do so before {}. After that you will \
                         have to set it up when you sign in, before anything else.",
                        d.to_human()
                    ),
                    None => "If you have not set it up yet, you will be asked to at your next \
                             sign-in, before anything else."
                        .to_owned(),
                },
                "If you already use two-factor authentication, nothing changes for you.".to_owned(),
            ],
            action: Some((
                "Set up two-factor authentication".to_owned(),
                url("/settings/security"),
            )),
            show_origin: false,
            advice: None,
            ..base(
                format!("{team} now requires two-factor authentication"),
                "Two-factor authentication is now required",
            )
        },
        Message::SecondStepLocked { until } => Content {
            paragraphs: vec![format!(
                "Too many wrong two-factor codes were entered for your account, so its sign-in \
                 is locked until {}. Whoever tried knew your password.",
                until.to_human()
            )],
            ..base(
                format!("Your {product} sign-in is locked after too many wrong codes"),
                "Sign-in locked after wrong codes",
            )
        },
        Message::PasswordLocked { until } => Content {
            paragraphs: vec![format!(
                "Too many wrong passwords were entered for your account, so signing in with a \
                 password is locked until {}.",
                until.to_human()
            )],
            advice: Some(
                "Someone may be guessing your password. Choose a long, unique password and \
                 turn on two-factor authentication."
                    .to_owned(),
            ),
            ..base(
                format!("Your {product} sign-in is locked after too many wrong passwords"),
                "Sign-in locked after wrong passwords",
            )
        },
    }
}

/// Renders `email` for delivery.
pub fn render(email: &OutgoingEmail, brand: &Brand) -> Result<Rendered, RenderError> {
    let c = content(email, brand);
    let mut details = Vec::new();
    if c.show_origin {
        details.push(("When", email.at.to_human()));
        if let Some(ip) = &email.ip {
            details.push(("IP address", ip.clone()));
        }
        if let Some(ua) = &email.user_agent {
            details.push(("Browser", ua.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::Timestamp;

    fn brand() -> Brand {
        Brand {
            product: "Tessera".into(),
            public_url: "https://auth.example.com".into(),
        }
    }

    fn email(message: Message) -> OutgoingEmail {
        OutgoingEmail {
            to: "ada@example.com".into(),
            to_name: "Ada <Lovelace>".into(),
            account_name: Some("Acme & Co".into()),
            at: Timestamp::from_unix(1_795_000_000),
            ip: Some("192.0.2.7".into()),
            user_agent: Some("Firefox/140".into()),
            message,
        }
    }

    const T: Timestamp = Timestamp::from_unix(1_795_000_600);

    /// Every message of SPEC §6, with the facts its text must carry.
    fn every_message() -> Vec<(Message, &'static str, Vec<&'static str>)> {
        vec![
            (
                Message::Invitation {
                    inviter: "Grace".into(),
                    role: "admin".into(),
                    token: "tok123".into(),
                    expires_at: T,
                },
                "Grace invited you to Acme & Co on Tessera",
                vec![
                    "as admin",
                    "https://auth.example.com/invitations/tok123",
                    "2026-11-18 11:16 UTC",
                ],
            ),
            (
                Message::DeviceCode {
                    code: "493817".into(),
                    expires_at: T,
                },
                "Verify your identity to proceed with the login",
                vec!["493817", "2026-11-18 11:16 UTC", "192.0.2.7", "Firefox/140"],
            ),
            (
                Message::TwoFactorEnabled,
                "Two-factor authentication is on for your Tessera account",
                vec!["authenticator app", "192.0.2.7"],
            ),
            (
                Message::TwoFactorDisabled {
                    via: DisabledVia::Password,
                },
                "Two-factor authentication was turned off for your Tessera account",
                vec!["security settings", "/settings/security"],
            ),
            (
                Message::TwoFactorDisabled {
                    via: DisabledVia::PaperKey,
                },
                "Two-factor authentication was turned off for your Tessera account",
                vec!["paper key", "recovery page"],
            ),
            (
                Message::RecoveryCodeUsed { remaining: 2 },
                "A recovery code was used to sign in to Tessera",
                vec!["2 recovery codes left", "Generate new recovery codes"],
            ),
            (
                Message::RecoveryCodesRegenerated,
                "New recovery codes for your Tessera account",
                vec!["previous codes no longer work"],
            ),
            (
                Message::TwoFactorReset {
                    by: ResetBy::Admin {
                        name: "Grace".into(),
                    },
                    required: true,
                },
                "Your Tessera two-factor authentication was reset",
                vec![
                    "Grace, an administrator of Acme & Co",
                    "next sign-in",
                    "signed out",
                ],
            ),
            (
                Message::TwoFactorReset {
                    by: ResetBy::Operator,
                    required: false,
                },
                "Your Tessera two-factor authentication was reset",
                vec!["Tessera support", "security settings"],
            ),
            (
                Message::TwoFactorRequired {
                    by: "Grace".into(),
                    deadline: Some(T),
                },
                "Acme & Co now requires two-factor authentication",
                vec!["before 2026-11-18 11:16 UTC", "nothing changes"],
            ),
            (
                Message::SecondStepLocked { until: T },
                "Your Tessera sign-in is locked after too many wrong codes",
                vec!["locked until 2026-11-18 11:16 UTC", "knew your password"],
            ),
            (
                Message::PasswordLocked { until: T },
                "Your Tessera sign-in is locked after too many wrong passwords",
                vec!["locked until 2026-11-18 11:16 UTC", "192.0.2.7"],
            ),
        ]
    }

    #[test]
    fn every_message_says_what_happened_in_text_and_html() {
        for (message, subject, facts) in every_message() {
            let kind = message.kind();
            let r = render(&email(message), &brand()).unwrap();
            assert_eq!(r.subject, subject, "{kind}");
            for fact in facts {
                assert!(
                    r.text.contains(fact),
                    "{kind}: text lacks {fact:?}:\n{}",
                    r.text
                );
                let escaped = fact.replace('&', "&#38;");
                assert!(
                    r.html.contains(fact) || r.html.contains(&escaped),
                    "{kind}: html lacks {fact:?}"
                );
            }
            assert!(
                r.text.contains("Hello Ada <Lovelace>,"),
                "{kind}: text is not escaped"
            );
            assert!(
                r.html.contains("Hello Ada &#60;Lovelace&#62;,"),
                "{kind}: html is escaped"
            );
            assert!(r.text.contains("in Acme & Co"), "{kind}: names the account");
            assert!(
                r.text
                    .contains("https://auth.example.com/settings/security")
            );
        }
    }

    /// Every branch of every message: each variant, each value its words depend on.
    fn every_branch() -> Vec<Message> {
        let mut messages: Vec<Message> = every_message().into_iter().map(|m| m.0).collect();
        messages.extend([
            Message::RecoveryCodeUsed { remaining: 0 },
            Message::RecoveryCodeUsed { remaining: 1 },
            Message::RecoveryCodeUsed { remaining: 3 },
            Message::RecoveryCodeUsed { remaining: 4 },
            Message::TwoFactorReset {
                by: ResetBy::Admin {
                    name: "Grace".into(),
                },
                required: false,
            },
            Message::TwoFactorReset {
                by: ResetBy::Operator,
                required: true,
            },
            Message::TwoFactorRequired {
                by: "Grace".into(),
                deadline: None,
            },
        ]);
        messages
    }

    /// Every branch, to a recipient with an account, IP address and browser, and to one
    /// with none of them, laid out one after the other.
    fn every_email() -> String {
        let mut out = String::new();
        for message in every_branch() {
            let full = email(message);
            let bare = OutgoingEmail {
                account_name: None,
                ip: None,
                user_agent: None,
                ..full.clone()
            };
            for (shape, e) in [("full", full), ("bare", bare)] {
                let r = render(&e, &brand()).unwrap();
                out.push_str(&format!(
                    "===== {shape} {:?}\nsubject: {}\n----- text\n{}\n----- html\n{}\n",
                    e.message, r.subject, r.text, r.html
                ));
            }
        }
        out
    }

    /// The words and layout of every email, byte for byte, as `every_email.snap` holds them.
    /// After a deliberate change of wording, `TESSERA_BLESS=1 cargo test -p tessera-mail`
    /// rewrites the file; review its diff.
    #[test]
    fn every_email_is_as_recorded() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/render/every_email.snap");
        let rendered = every_email();
        if std::env::var_os("TESSERA_BLESS").is_some() {
            std::fs::write(path, &rendered).unwrap();
        }
        let recorded = std::fs::read_to_string(path).unwrap();
        let (mut r, mut w) = (recorded.split("===== "), rendered.split("===== "));
        loop {
            match (r.next(), w.next()) {
                (None, None) => break,
                (a, b) => assert_eq!(b, a, "an email differs from {path}"),
            }
        }
    }

    #[test]
    fn security_alerts_say_what_to_do_if_it_was_not_you() {
        for (message, _, _) in every_message() {
            let kind = message.kind();
            let r = render(&email(message), &brand()).unwrap();
            if !matches!(kind, "two_factor_required" | "invitation") {
                assert!(r.text.contains("Wasn't you?"), "{kind}");
            }
        }
    }
}
