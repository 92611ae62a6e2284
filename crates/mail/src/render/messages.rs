//! What each message says (SPEC §6): one function per [`Message`], each giving the
//! [`Content`] that `templates/email.{txt,html}` lay out.

use super::{Brand, Content};
use tessera_core::Timestamp;
use tessera_core::mail::{DisabledVia, Message, OutgoingEmail, PasswordChangedVia, ResetBy};

const CHANGE_PASSWORD: &str = "Sign in and change your password right away, then review your \
                               recent activity; if you cannot sign in, contact your account owner.";

/// What any message may mention besides its own fields.
#[derive(Clone, Copy)]
struct Facts<'a> {
    product: &'a str,
    /// The account's name, or "your team".
    team: &'a str,
    public_url: &'a str,
}

impl Facts<'_> {
    /// A button to `path` under the public URL.
    fn button(&self, label: &str, path: &str) -> (String, String) {
        (label.to_owned(), format!("{}{path}", self.public_url))
    }

    /// A button to the security settings.
    fn settings_button(&self, label: &str) -> (String, String) {
        self.button(label, "/settings/security")
    }
}

impl Content {
    /// About something done with the account's credentials: shows when and from where, and
    /// what to do if it was not the recipient.
    fn alert(subject: String, heading: &str, paragraphs: Vec<String>) -> Self {
        Self {
            subject,
            heading: heading.to_owned(),
            paragraphs,
            code: None,
            action: None,
            show_origin: true,
            advice: Some(CHANGE_PASSWORD.to_owned()),
        }
    }

    /// News from someone else (an invitation, a rule of the account): neither where it came
    /// from nor advice.
    fn notice(subject: String, heading: &str, paragraphs: Vec<String>) -> Self {
        Self {
            show_origin: false,
            advice: None,
            ..Self::alert(subject, heading, paragraphs)
        }
    }

    fn with_action(self, action: (String, String)) -> Self {
        Self {
            action: Some(action),
            ..self
        }
    }

    fn with_advice(self, advice: impl Into<String>) -> Self {
        Self {
            advice: Some(advice.into()),
            ..self
        }
    }
}

/// The message-specific part of `email`.
pub(super) fn content(email: &OutgoingEmail, brand: &Brand) -> Content {
    let f = Facts {
        product: &brand.product,
        team: email.account_name.as_deref().unwrap_or("your team"),
        public_url: &brand.public_url,
    };
    match &email.message {
        Message::Invitation {
            inviter,
            role,
            token,
            expires_at,
            sso,
        } => invitation(f, inviter, role, token, (*expires_at, *sso)),
        Message::DeviceCode { code, expires_at } => device_code(f, code, *expires_at),
        Message::TwoFactorEnabled => two_factor_enabled(f),
        Message::TwoFactorDisabled { via } => two_factor_disabled(f, *via),
        Message::RecoveryCodeUsed { remaining } => recovery_code_used(f, *remaining),
        Message::RecoveryCodesRegenerated => recovery_codes_regenerated(f),
        Message::TwoFactorReset { by, required } => two_factor_reset(f, by, *required),
        Message::TwoFactorRequired { by, deadline } => two_factor_required(f, by, *deadline),
        Message::SecondStepLocked { until } => second_step_locked(f, *until),
        Message::PasswordLocked { until } => password_locked(f, *until),
        Message::PasswordChanged { via } => password_changed(f, *via),
        Message::PasswordResetLink { token, expires_at } => {
            password_reset_link(f, token, *expires_at)
        }
        Message::SsoPasswordRequired { token, expires_at } => {
            sso_password_required(f, token, *expires_at)
        }
        Message::SignupConfirm { token, expires_at } => signup_confirm(f, token, *expires_at),
        Message::SignupExisting => signup_existing(f),
        Message::TeamCreated { token, expires_at } => team_created(f, token, *expires_at),
        Message::UnfinishedSignIn => unfinished_sign_in(f),
        Message::CodeReplayed => code_replayed(f),
        Message::NewSignIn => new_sign_in(f),
        Message::ApiKeyCreated {
            label,
            prefix,
            grants,
            created_by,
        } => api_key_created(f, label, prefix, grants, created_by),
    }
}

/// An alert of SPEC §9; when, from where and in which browser follow it.
fn unfinished_sign_in(f: Facts) -> Content {
    let product = f.product;
    Content::alert(
        format!("Someone entered your {product} password but did not finish signing in"),
        "A sign-in was not finished",
        vec![
            format!(
                "Someone signed in to your {product} account with your password, then did not \
                 give the second factor: the sign-in expired or was stopped after wrong codes."
            ),
            "If you started a sign-in and left it, there is nothing to do.".to_owned(),
        ],
    )
    .with_advice(format!(
        "Someone knows your password. Change it now; your second factor kept them out. \
         {product} sends this alert at most once an hour."
    ))
}

fn code_replayed(f: Facts) -> Content {
    let product = f.product;
    Content::alert(
        format!("A used {product} sign-in code was entered again"),
        "A used code was entered again",
        vec![
            format!(
                "A code from your authenticator app that had already been used was entered to \
                 sign in to your {product} account, after the right password. It was refused: \
                 each code works once."
            ),
            "If you entered the same code twice yourself, there is nothing to do.".to_owned(),
        ],
    )
    .with_advice(format!(
        "Someone may have seen your password and a code. Change your password now. {product} \
         sends this alert at most once an hour."
    ))
}

fn new_sign_in(f: Facts) -> Content {
    let product = f.product;
    Content::alert(
        format!("New sign-in to your {product} account"),
        "A new device signed in",
        vec![format!(
            "Your {product} account was signed in to, with your password and second factor, \
             from a device or browser it had not been used from before."
        )],
    )
    .with_action(f.button("Review your devices", "/settings/devices"))
}

/// To the owner (SPEC §11): a key can act for the team, so its owner hears of each new one.
fn api_key_created(
    f: Facts,
    label: &str,
    prefix: &str,
    grants: &[String],
    created_by: &str,
) -> Content {
    let Facts { product, team, .. } = f;
    Content::alert(
        format!("A new API key for {team} on {product}"),
        "A new API key was created",
        vec![
            format!("{created_by} created the API key \"{label}\" ({prefix}…) for {team}."),
            format!("It may: {}.", grants.join(", ")),
            "If you did not expect it, revoke it on the API keys page and review the team's \
             activity."
                .to_owned(),
        ],
    )
    .with_action(f.button("Review the API keys", "/account/api-keys"))
    .with_advice(
        "A key you do not know about may be someone's way into the team: revoke it, then \
         check who the team's admins are.",
    )
}

fn invitation(
    f: Facts,
    inviter: &str,
    role: &str,
    token: &str,
    (expires_at, sso): (Timestamp, bool),
) -> Content {
    let Facts { product, team, .. } = f;
    let then = if sso {
        "Accept it by signing in with your team's single sign-on"
    } else {
        "Accept the invitation to choose your password"
    };
    Content::notice(
        format!("{inviter} invited you to {team} on {product}"),
        &format!("Join {team} on {product}"),
        vec![
            format!("{inviter} invited you to join {team} on {product} as {role}."),
            format!(
                "{then}. The link works once, until {}.",
                expires_at.to_human()
            ),
            "If you did not expect this invitation, you can ignore this email.".to_owned(),
        ],
    )
    .with_action(f.button("Accept the invitation", &format!("/invitations/{token}")))
}

fn device_code(f: Facts, code: &str, expires_at: Timestamp) -> Content {
    let product = f.product;
    let content = Content::alert(
        "Verify your identity to proceed with the login".to_owned(),
        "Your verification code",
        vec![
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
    );
    Content {
        code: Some(code.to_owned()),
        ..content
    }
    .with_advice(format!(
        "Do not share this code. Someone knows your password: change it now. {product} \
         will never ask you for this code by phone or email."
    ))
}

fn two_factor_enabled(f: Facts) -> Content {
    Content::alert(
        format!(
            "Two-factor authentication is on for your {} account",
            f.product
        ),
        "Two-factor authentication is on",
        vec![
            "Two-factor authentication is now on for your account. Each sign-in will ask \
             for a code from your authenticator app, or one of your recovery codes."
                .to_owned(),
        ],
    )
}

fn two_factor_disabled(f: Facts, via: DisabledVia) -> Content {
    let how = match via {
        DisabledVia::Password => {
            "Two-factor authentication was turned off from your security settings. \
             Your authenticator, recovery codes and paper key no longer work."
        }
        DisabledVia::PaperKey => {
            "Two-factor authentication was turned off with your paper key on the \
             recovery page. You can now sign in with your email and password; \
             set up two-factor authentication again as soon as you can."
        }
    };
    Content::alert(
        format!(
            "Two-factor authentication was turned off for your {} account",
            f.product
        ),
        "Two-factor authentication is off",
        vec![how.to_owned()],
    )
    .with_action(f.settings_button("Turn two-factor authentication back on"))
}

fn recovery_code_used(f: Facts, remaining: u32) -> Content {
    let left = match remaining {
        0 => "You have no recovery codes left: generate new ones now.".to_owned(),
        1 => "You have 1 recovery code left.".to_owned(),
        n => format!("You have {n} recovery codes left."),
    };
    Content {
        action: (remaining <= 3).then(|| f.settings_button("Generate new recovery codes")),
        ..Content::alert(
            format!("A recovery code was used to sign in to {}", f.product),
            "A recovery code was used",
            vec![
                "A recovery code was used to sign in to your account. That code no longer \
                 works."
                    .to_owned(),
                left,
            ],
        )
    }
}

fn recovery_codes_regenerated(f: Facts) -> Content {
    Content::alert(
        format!("New recovery codes for your {} account", f.product),
        "New recovery codes",
        vec![
            "New recovery codes were generated for your account. Your previous codes no \
             longer work; keep the new ones somewhere safe."
                .to_owned(),
        ],
    )
}

fn two_factor_reset(f: Facts, by: &ResetBy, required: bool) -> Content {
    let Facts { product, team, .. } = f;
    let who = match by {
        ResetBy::Admin { name } => format!("{name}, an administrator of {team},"),
        ResetBy::Operator => format!("{product} support, after verifying your identity,"),
    };
    let next = if required {
        format!(
            "{team} requires two-factor authentication: you will set it up again at your next \
             sign-in."
        )
    } else {
        "You can sign in with your email and password, then set up two-factor \
         authentication again from your security settings."
            .to_owned()
    };
    Content::notice(
        format!("Your {product} two-factor authentication was reset"),
        "Your two-factor authentication was reset",
        vec![
            format!(
                "{who} reset the two-factor authentication of your account. Your authenticator \
                 app, recovery codes and paper key no longer work, and you were signed out \
                 everywhere."
            ),
            next,
        ],
    )
    .with_advice("If you did not ask for this, contact your account owner right away.")
}

fn two_factor_required(f: Facts, by: &str, deadline: Option<Timestamp>) -> Content {
    let team = f.team;
    let when = match deadline {
        Some(d) => format!(
            "If you have not set it up yet, do so before {}. After that you will \
             have to set it up when you sign in, before anything else.",
            d.to_human()
        ),
        None => "If you have not set it up yet, you will be asked to at your next \
                 sign-in, before anything else."
            .to_owned(),
    };
    Content::notice(
        format!("{team} now requires two-factor authentication"),
        "Two-factor authentication is now required",
        vec![
            format!("{by} now requires two-factor authentication for everyone in {team}."),
            when,
            "If you already use two-factor authentication, nothing changes for you.".to_owned(),
        ],
    )
    .with_action(f.settings_button("Set up two-factor authentication"))
}

fn second_step_locked(f: Facts, until: Timestamp) -> Content {
    Content::alert(
        format!(
            "Your {} sign-in is locked after too many wrong codes",
            f.product
        ),
        "Sign-in locked after wrong codes",
        vec![format!(
            "Too many wrong two-factor codes were entered for your account, so its sign-in \
             is locked until {}. Whoever tried knew your password.",
            until.to_human()
        )],
    )
}

fn password_locked(f: Facts, until: Timestamp) -> Content {
    Content::alert(
        format!(
            "Your {} sign-in is locked after too many wrong passwords",
            f.product
        ),
        "Sign-in locked after wrong passwords",
        vec![format!(
            "Too many wrong passwords were entered for your account, so signing in with a \
             password is locked until {}.",
            until.to_human()
        )],
    )
    .with_advice(
        "Someone may be guessing your password. Choose a long, unique password and \
         turn on two-factor authentication.",
    )
}

fn password_changed(f: Facts, via: PasswordChangedVia) -> Content {
    let how = match via {
        PasswordChangedVia::Settings => {
            "Your password was changed from your security settings. Your other sessions \
             were signed out."
        }
        PasswordChangedVia::ResetLink => {
            "Your password was changed with a reset link sent to this address. Every \
             session was signed out; two-factor authentication stays as it was."
        }
    };
    Content::alert(
        format!("Your {} password was changed", f.product),
        "Your password was changed",
        vec![how.to_owned()],
    )
    .with_advice(
        "If this was not you, reset your password now from the sign-in page (\"Forgot your \
         password?\"), then review your recent activity; if you cannot, contact your account \
         owner.",
    )
}

fn password_reset_link(f: Facts, token: &str, expires_at: Timestamp) -> Content {
    let product = f.product;
    Content::alert(
        format!("Reset your {product} password"),
        "Choose a new password",
        vec![
            format!("Someone asked to reset the password of your {product} account."),
            format!(
                "Choose a new password with the link below. It works once, until {}. \
                 Two-factor authentication stays on if you have it.",
                expires_at.to_human()
            ),
        ],
    )
    .with_action(f.button("Choose a new password", &format!("/password/reset/{token}")))
    .with_advice(
        "If you did not ask for this, ignore this email: your password stays as it is. Do \
         not forward it: the link lets anyone who has it choose your password.",
    )
}

/// SPEC §12, `disable_sso`: the team turned the 2FA requirement on, which turns SSO off.
fn sso_password_required(f: Facts, token: &str, expires_at: Timestamp) -> Content {
    let Facts { product, team, .. } = f;
    Content::alert(
        format!("Choose a password for {product}: single sign-on is off while 2FA is required"),
        "Choose a password",
        vec![
            format!(
                "Two-factor authentication is now required in {team}, and while it is, signing \
                 in with single sign-on is turned off."
            ),
            format!(
                "Choose a password with the link below (it works once, until {}), sign in with \
                 it, and set up two-factor authentication. If the link has expired, use \
                 \"Forgot your password?\" on the sign-in page.",
                expires_at.to_human()
            ),
        ],
    )
    .with_action(f.button("Choose a password", &format!("/password/reset/{token}")))
    .with_advice("Do not forward this email: the link lets anyone who has it choose your password.")
}

fn signup_confirm(f: Facts, token: &str, expires_at: Timestamp) -> Content {
    let Facts { product, team, .. } = f;
    Content::alert(
        format!("Confirm your {product} sign-up"),
        "Confirm your email",
        vec![
            format!("Someone asked to create the team {team} on {product} with this email."),
            format!(
                "Confirm to create the team and sign in. The link works once, until {}.",
                expires_at.to_human()
            ),
        ],
    )
    .with_action(f.button("Confirm and sign in", &format!("/signup/confirm/{token}")))
    .with_advice("If it was not you, ignore this email: nothing is created without the link.")
}

fn signup_existing(f: Facts) -> Content {
    let product = f.product;
    Content::alert(
        format!("You already have a {product} account"),
        "You already have an account",
        vec![
            format!(
                "Someone asked to create a new team on {product} with this email, which \
                 already has an account. Nothing was created."
            ),
            format!(
                "Sign in at {}/login, or, if you forgot your password, reset it at \
                 {}/password/forgot.",
                f.public_url, f.public_url
            ),
        ],
    )
    .with_action(f.button("Sign in", "/login"))
    .with_advice("If it was not you, you can ignore this email.")
}

fn team_created(f: Facts, token: &str, expires_at: Timestamp) -> Content {
    let Facts { product, team, .. } = f;
    Content::notice(
        format!("Your team {team} on {product} is ready"),
        &format!("Welcome to {product}"),
        vec![
            format!("{product} support created the team {team} for you, as its owner."),
            format!(
                "Choose your password to start. The link works once, until {}.",
                expires_at.to_human()
            ),
            "If you did not expect this, you can ignore this email.".to_owned(),
        ],
    )
    .with_action(f.button("Choose your password", &format!("/signup/confirm/{token}")))
}
