//! The emails Tessera sends, as data: who gets which message about what. Rendering and
//! delivery belong to `tessera-mail`; here a use case only picks the message and recipient.
//!
//! An email is queued as part of the change that causes it ([`crate::store::Effects`]) and
//! is sealed first: a device code or an invitation link is a secret, and the database never
//! holds one it can read.

mod port;

pub use port::{OutboxEntry, OutboxStore, QueuedEmail};

use crate::Timestamp;
use crate::crypto::{Sealer, Unsealable};
use crate::model::{RequestMeta, User, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What happened, per SPEC §6 (and the password lock of §3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// Someone invited the recipient to a team; `token` goes into the link.
    Invitation {
        inviter: String,
        role: String,
        token: String,
        expires_at: Timestamp,
        /// The invitee signs in with the team's SSO, not a password (SPEC §12).
        #[serde(default)]
        sso: bool,
    },
    /// The 6-digit code that confirms a sign-in from an unrecognized device.
    DeviceCode {
        code: String,
        expires_at: Timestamp,
    },
    TwoFactorEnabled,
    TwoFactorDisabled {
        via: DisabledVia,
    },
    RecoveryCodeUsed {
        remaining: u32,
    },
    RecoveryCodesRegenerated,
    /// An admin of the account, or the operator, reset the recipient's 2FA.
    TwoFactorReset {
        by: ResetBy,
        required: bool,
    },
    /// The account now requires 2FA; users without it must set it up by `deadline` (or at
    /// their next sign-in when there is none).
    TwoFactorRequired {
        by: String,
        deadline: Option<Timestamp>,
    },
    /// Too many wrong codes at the second step.
    SecondStepLocked {
        until: Timestamp,
    },
    /// Too many wrong passwords.
    PasswordLocked {
        until: Timestamp,
    },
    /// The recipient's password was changed (SPEC §8).
    PasswordChanged {
        via: PasswordChangedVia,
    },
    /// A link to choose a new password; `token` goes into the link (SPEC §8).
    PasswordResetLink {
        token: String,
        expires_at: Timestamp,
    },
    /// The team now requires 2FA and turns SSO off meanwhile (`disable_sso`, SPEC §12): a
    /// link to choose a password, to sign in with it and set up 2FA.
    SsoPasswordRequired {
        token: String,
        expires_at: Timestamp,
    },
    /// Someone asked to create a team with this email: the link confirms it (SPEC §8).
    SignupConfirm {
        token: String,
        expires_at: Timestamp,
    },
    /// Someone asked to sign up with an email that already has a user: nothing was created.
    SignupExisting,
    /// The operator created a team for the recipient: the link sets their password.
    TeamCreated {
        token: String,
        expires_at: Timestamp,
    },
    /// Alert (SPEC §9): the right password was given, but the second step was never
    /// completed (the sign-in expired, or died of wrong codes). When, where from and which
    /// browser are the email's own `at`, `ip` and `user_agent`.
    UnfinishedSignIn,
    /// Alert (SPEC §9): a TOTP code that was already used was offered again.
    CodeReplayed,
    /// Alert (SPEC §9): a sign-in with 2FA from a device the user had not used before.
    NewSignIn,
    /// To the account's owner (SPEC §11): a manager created an API key.
    ApiKeyCreated {
        label: String,
        /// The key's first 8 characters.
        prefix: String,
        grants: Vec<String>,
        /// The creator's email.
        created_by: String,
    },
}

/// How a password was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChangedVia {
    /// From the security settings, with the current password.
    Settings,
    /// With an emailed reset link.
    ResetLink,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledVia {
    /// From the security settings, with the password.
    Password,
    /// On the recovery page, with the paper key.
    PaperKey,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "who", rename_all = "snake_case")]
pub enum ResetBy {
    Admin { name: String },
    Operator,
}

impl Message {
    /// A short name for the outbox listing and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invitation { .. } => "invitation",
            Self::DeviceCode { .. } => "device_code",
            Self::TwoFactorEnabled => "two_factor_enabled",
            Self::TwoFactorDisabled { .. } => "two_factor_disabled",
            Self::RecoveryCodeUsed { .. } => "recovery_code_used",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::TwoFactorReset { .. } => "two_factor_reset",
            Self::TwoFactorRequired { .. } => "two_factor_required",
            Self::SecondStepLocked { .. } => "second_step_locked",
            Self::PasswordLocked { .. } => "password_locked",
            Self::PasswordChanged { .. } => "password_changed",
            Self::PasswordResetLink { .. } => "password_reset_link",
            Self::SsoPasswordRequired { .. } => "sso_password_required",
            Self::SignupConfirm { .. } => "signup_confirm",
            Self::SignupExisting => "signup_existing",
            Self::TeamCreated { .. } => "team_created",
            Self::UnfinishedSignIn => "unfinished_sign_in",
            Self::CodeReplayed => "code_replayed",
            Self::NewSignIn => "new_sign_in",
            Self::ApiKeyCreated { .. } => "api_key_created",
        }
    }

    /// Which emails go first when many are due (the reliability review's D5: a device code
    /// once waited 14 s behind a team's "2FA required" burst).
    pub fn priority(&self) -> Priority {
        match self {
            // Someone is waiting for it, on a page or at a prompt.
            Self::DeviceCode { .. }
            | Self::PasswordResetLink { .. }
            | Self::SsoPasswordRequired { .. }
            | Self::SignupConfirm { .. }
            | Self::SignupExisting
            | Self::TeamCreated { .. }
            | Self::Invitation { .. } => Priority::Interactive,
            // Sent to every user of a team at once.
            Self::TwoFactorRequired { .. } => Priority::Bulk,
            // One person's security notices.
            Self::TwoFactorEnabled
            | Self::TwoFactorDisabled { .. }
            | Self::RecoveryCodeUsed { .. }
            | Self::RecoveryCodesRegenerated
            | Self::TwoFactorReset { .. }
            | Self::SecondStepLocked { .. }
            | Self::PasswordLocked { .. }
            | Self::PasswordChanged { .. }
            | Self::UnfinishedSignIn
            | Self::CodeReplayed
            | Self::NewSignIn
            | Self::ApiKeyCreated { .. } => Priority::Notice,
        }
    }
}

/// The outbox's order: a lower value is claimed first, then the oldest due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Interactive = 0,
    Notice = 1,
    Bulk = 2,
}

impl Priority {
    pub const ALL: [Self; 3] = [Self::Interactive, Self::Notice, Self::Bulk];

    pub fn rank(self) -> i64 {
        self as i64
    }
}

/// One email to one person, with what the templates show around the message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingEmail {
    pub to: String,
    pub to_name: String,
    pub account_name: Option<String>,
    /// When it happened.
    pub at: Timestamp,
    /// Where the request that caused it came from, when it matters.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub message: Message,
}

impl OutgoingEmail {
    pub fn to_user(
        user: &User,
        account_name: Option<&str>,
        meta: &RequestMeta,
        at: Timestamp,
        message: Message,
    ) -> Self {
        Self {
            to: user.email.as_str().to_owned(),
            to_name: user.name.clone(),
            account_name: account_name.map(str::to_owned),
            at,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            message,
        }
    }
}

/// A security alert (SPEC §9): an email that goes only if the user was not sent one of its
/// kind (`email.kind`) after `quiet_since`. The store decides with one conditional upsert of
/// the (user, kind) row, in the transaction of the change that causes the alert, so
/// concurrent causes send it once.
#[derive(Clone, Debug)]
pub struct Alert {
    pub user_id: UserId,
    pub email: SealedEmail,
    /// When this one would be sent (and recorded as sent).
    pub now: Timestamp,
    /// The last one of its kind must be at or before this for this one to go.
    pub quiet_since: Timestamp,
}

/// An email ready for the outbox: the recipient and kind in clear (for the operator), the
/// rest sealed under the outbox key and bound to the row id.
#[derive(Clone, Debug)]
pub struct SealedEmail {
    pub id: Uuid,
    pub kind: &'static str,
    pub priority: Priority,
    pub recipient: String,
    pub payload: Vec<u8>,
    pub created_at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Unsealable(#[from] Unsealable),
    #[error("the queued email is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
}

/// Seals emails for the outbox and opens them for delivery.
pub struct Mailer {
    sealer: Sealer,
}

impl Mailer {
    pub fn new(sealer: Sealer) -> Self {
        Self { sealer }
    }

    pub fn seal(&self, email: &OutgoingEmail, now: Timestamp) -> SealedEmail {
        let id = Uuid::now_v7();
        // Serializing plain data into a Vec cannot fail.
        let json = serde_json::to_vec(email).unwrap_or_default();
        SealedEmail {
            id,
            kind: email.message.kind(),
            priority: email.message.priority(),
            recipient: email.to.clone(),
            payload: self.sealer.seal(&json, id.as_bytes()),
            created_at: now,
        }
    }

    pub fn open(&self, id: Uuid, payload: &[u8]) -> Result<OutgoingEmail, OpenError> {
        let json = self.sealer.open(payload, id.as_bytes())?;
        Ok(serde_json::from_slice(&json)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn sealed_emails_keep_their_secrets() {
        let key = MasterKey::generate();
        let mailer = Mailer::new(key.sealer("outbox"));
        let email = OutgoingEmail {
            to: "ada@example.com".into(),
            to_name: "Ada".into(),
            account_name: Some("Acme".into()),
            at: Timestamp::from_unix(1_800_000_000),
            ip: Some("192.0.2.1".into()),
            user_agent: None,
            message: Message::DeviceCode {
                code: "493817".into(),
                expires_at: Timestamp::from_unix(1_800_000_600),
            },
        };
        let sealed = mailer.seal(&email, Timestamp::from_unix(1_800_000_000));
        assert_eq!(sealed.kind, "device_code");
        assert_eq!(sealed.recipient, "ada@example.com");
        assert!(!String::from_utf8_lossy(&sealed.payload).contains("493817"));
        assert_eq!(mailer.open(sealed.id, &sealed.payload).unwrap(), email);
        assert!(mailer.open(Uuid::now_v7(), &sealed.payload).is_err());
    }
}
