//! Every email rendered, checked for the facts it must carry and byte for byte against
//! `every_email.snap`.

use super::{Brand, render};
use tessera_core::Timestamp;
use tessera_core::mail::{DisabledVia, Message, OutgoingEmail, PasswordChangedVia, ResetBy};

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
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0".into(),
        ),
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
                sso: false,
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
            vec![
                "493817",
                "2026-11-18 11:16 UTC",
                "192.0.2.7",
                "Firefox 140 on Linux",
            ],
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
        (
            Message::PasswordChanged {
                via: PasswordChangedVia::Settings,
            },
            "Your Tessera password was changed",
            vec![
                "security settings",
                "other sessions",
                "192.0.2.7",
                "Firefox 140 on Linux",
            ],
        ),
        (
            Message::PasswordChanged {
                via: PasswordChangedVia::ResetLink,
            },
            "Your Tessera password was changed",
            vec![
                "reset link",
                "Every session",
                "stays as it was",
                "192.0.2.7",
            ],
        ),
        (
            Message::PasswordResetLink {
                token: "tok456".into(),
                expires_at: T,
            },
            "Reset your Tessera password",
            vec![
                "https://auth.example.com/password/reset/tok456",
                "until 2026-11-18 11:16 UTC",
                "192.0.2.7",
            ],
        ),
        (
            Message::SsoPasswordRequired {
                token: "tok789".into(),
                expires_at: T,
            },
            "Choose a password for Tessera: single sign-on is off while 2FA is required",
            vec![
                "https://auth.example.com/password/reset/tok789",
                "until 2026-11-18 11:16 UTC",
                "now required in Acme & Co",
            ],
        ),
        (
            Message::SignupConfirm {
                token: "tok456".into(),
                expires_at: T,
            },
            "Confirm your Tessera sign-up",
            vec![
                "https://auth.example.com/signup/confirm/tok456",
                "until 2026-11-18 11:16 UTC",
                "192.0.2.7",
            ],
        ),
        (
            Message::SignupExisting,
            "You already have a Tessera account",
            vec![
                "Nothing was created",
                "https://auth.example.com/login",
                "https://auth.example.com/password/forgot",
            ],
        ),
        (
            Message::TeamCreated {
                token: "tok789".into(),
                expires_at: T,
            },
            "Your team Acme & Co on Tessera is ready",
            vec![
                "https://auth.example.com/signup/confirm/tok789",
                "Choose your password",
            ],
        ),
        (
            Message::UnfinishedSignIn,
            "Someone entered your Tessera password but did not finish signing in",
            vec![
                "did not give the second factor",
                "2026-11-18 11:06 UTC",
                "192.0.2.7",
                "Firefox 140 on Linux",
            ],
        ),
        (
            Message::CodeReplayed,
            "A used Tessera sign-in code was entered again",
            vec!["had already been used", "192.0.2.7", "Firefox 140 on Linux"],
        ),
        (
            Message::ApiKeyCreated {
                label: "Billing sync".into(),
                prefix: "tsk_AbCd".into(),
                grants: vec!["users:read".into(), "messages:send".into()],
                created_by: "ann@example.com".into(),
            },
            "A new API key for Acme & Co on Tessera",
            vec![
                "Billing sync",
                "tsk_AbCd",
                "users:read, messages:send",
                "https://auth.example.com/account/api-keys",
                "192.0.2.7",
            ],
        ),
        (
            Message::NewSignIn,
            "New sign-in to your Tessera account",
            vec![
                "had not been used from before",
                "https://auth.example.com/settings/devices",
                "Firefox 140 on Linux",
            ],
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
        Message::Invitation {
            inviter: "Grace".into(),
            role: "member".into(),
            token: "tok123".into(),
            expires_at: T,
            sso: true,
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
        if !matches!(kind, "two_factor_required" | "invitation" | "team_created") {
            assert!(r.text.contains("Wasn't you?"), "{kind}");
        }
    }
}
