//! The things Tessera keeps: accounts (teams), users, sessions and security events.

use crate::Timestamp;
use crate::email::Email;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies an account (a team, the tenant).
    AccountId
);
id_type!(
    /// Identifies a user.
    UserId
);
id_type!(
    /// Identifies a session (not its token: the id may be shown, the token never).
    SessionId
);
id_type!(
    /// Identifies a login challenge (the step between password and second factor).
    ChallengeId
);
id_type!(
    /// Identifies one of a user's security keys or passkeys (not its WebAuthn credential id).
    SecurityKeyId
);
id_type!(
    /// Identifies a recognized device (not its token, which only the device holds).
    DeviceId
);
id_type!(
    /// Identifies an invitation (not its token, which only the invitee's email holds).
    InvitationId
);
id_type!(
    /// Identifies a sign-up waiting for its emailed link (not its token).
    SignupId
);
id_type!(
    /// Identifies an API key (not the key: the id may be shown, the key only once).
    ApiKeyId
);

/// A text column held a value the code does not know: the database was written by something
/// else, or by a newer version.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(UnknownValue { what: $what, value: other.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// A user's role within their account.
    Role, "role" { Owner => "owner", Admin => "admin", Member => "member" }
);
text_enum!(
    /// How a user proves who they are at the first step.
    AuthSource, "auth source" { Password => "password", Sso => "sso" }
);
text_enum!(
    /// What a session may do: everything, or only set up 2FA (an account requiring 2FA,
    /// past its grace period, for a user who has none).
    SessionKind, "session kind" { Full => "full", SetupOnly => "setup_only" }
);
text_enum!(
    /// What a login challenge waits for.
    ChallengeKind, "challenge kind" { TwoFactor => "two_factor", Device => "device" }
);
text_enum!(
    /// What happened, in the audit log.
    EventKind, "event kind" {
        Signup => "signup",
        SignIn => "sign_in",
        SignInFailed => "sign_in_failed",
        PasswordLocked => "password_locked",
        SignOut => "sign_out",
        TwoFactorSetupStarted => "two_factor_setup_started",
        TwoFactorEnabled => "two_factor_enabled",
        TwoFactorDisabled => "two_factor_disabled",
        TwoFactorFailed => "two_factor_failed",
        SecondStepLocked => "second_step_locked",
        RecoveryCodeUsed => "recovery_code_used",
        RecoveryCodesRegenerated => "recovery_codes_regenerated",
        RecoveryFailed => "recovery_failed",
        TwoFactorReset => "two_factor_reset",
        Unlocked => "unlocked",
        TwoFactorPolicyChanged => "two_factor_policy_changed",
        UserInvited => "user_invited",
        InvitationRevoked => "invitation_revoked",
        InvitationAccepted => "invitation_accepted",
        UserDeleted => "user_deleted",
        DeviceVerified => "device_verified",
        DeviceRemoved => "device_removed",
        SessionRevoked => "session_revoked",
        PasswordChanged => "password_changed",
        PasswordResetRequested => "password_reset_requested",
        PasswordReset => "password_reset",
        SignupRequested => "signup_requested",
        AccessDenied => "access_denied",
        DeviceTrusted => "device_trusted",
        DeviceTrustEnded => "device_trust_ended",
        TrustedDevicesPolicyChanged => "trusted_devices_policy_changed",
        NewDeviceSignIn => "new_device_sign_in",
        SignInUnfinished => "sign_in_unfinished",
        TotpReplayRefused => "totp_replay_refused",
        Reauthenticated => "reauthenticated",
        ReauthenticationFailed => "reauthentication_failed",
        ApiKeyCreated => "api_key_created",
        ApiKeyChanged => "api_key_changed",
        ApiKeyRevoked => "api_key_revoked",
        ApiKeyRefused => "api_key_refused",
        SecurityKeyAdded => "security_key_added",
        AuthenticatorAdded => "authenticator_added",
        SecurityKeyRemoved => "security_key_removed",
        SecurityKeyCounterRefused => "security_key_counter_refused",
        PasskeySignInFailed => "passkey_sign_in_failed",
        SsoSettingsChanged => "sso_settings_changed",
        SsoLinked => "sso_linked",
        SsoProvisioned => "sso_provisioned",
        SsoSignInFailed => "sso_sign_in_failed",
        OidcClientCreated => "oidc_client_created",
        OidcClientRemoved => "oidc_client_removed",
        OidcAuthorized => "oidc_authorized",
        OidcTokenIssued => "oidc_token_issued",
        OidcCodeReused => "oidc_code_reused",
        OidcRefreshReused => "oidc_refresh_reused",
        OidcSigningKeyRotated => "oidc_signing_key_rotated",
        OidcLogout => "oidc_logout",
    }
);

text_enum!(
    /// Whether an account lets its users' devices skip the second step (SPEC §9).
    TrustedDevices, "trusted devices policy" { Allowed => "allowed", Forbidden => "forbidden" }
);

text_enum!(
    /// How the account's 2FA requirement treats users who sign in with SSO (SPEC §12):
    /// `exempt` (Mailtrap) leaves them outside it, their identity provider doing MFA;
    /// `disable_sso` (SparkPost) turns SSO sign-in off while 2FA is required.
    SsoTwoFactor, "sso two-factor mode" { Exempt => "exempt", DisableSso => "disable_sso" }
);

text_enum!(
    /// Where an invitation stands. A pending one past its `expires_at` counts as expired
    /// (and is marked so when a new invitation for the same email replaces it).
    InvitationStatus, "invitation status" {
        Pending => "pending", Accepted => "accepted", Revoked => "revoked", Expired => "expired"
    }
);

text_enum!(
    /// Where an email stands in the outbox.
    OutboxStatus, "outbox status" { Pending => "pending", Sent => "sent", Failed => "failed" }
);

#[derive(Clone, Debug)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// Whether every user of the account must have 2FA.
    pub two_factor_required: bool,
    /// Until when users without 2FA may still skip setting it up.
    pub grace_period_until: Option<Timestamp>,
    /// Whether a device may skip the second step ("Don't ask again on this device").
    pub trusted_devices: TrustedDevices,
    /// How the 2FA requirement treats the account's SSO users (SPEC §12).
    pub sso_two_factor: SsoTwoFactor,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: UserId,
    pub account_id: AccountId,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub auth_source: AuthSource,
    pub created_at: Timestamp,
}

/// An invitation to join an account; whoever holds its token may accept it until it expires.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub id: InvitationId,
    pub account_id: AccountId,
    pub email: Email,
    pub name: String,
    /// `Admin` or `Member`: an account has exactly one owner.
    pub role: Role,
    /// Who sent it (gone if that user was deleted since).
    pub invited_by: Option<UserId>,
    /// How the invitee will sign in: a password chosen with the link, or the team's SSO
    /// (SPEC §12: the first SSO sign-in creates the user).
    pub auth_source: AuthSource,
    pub status: InvitationStatus,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Invitation {
    /// Where it stands at `now`.
    pub fn status_at(&self, now: Timestamp) -> InvitationStatus {
        match self.status {
            InvitationStatus::Pending if now >= self.expires_at => InvitationStatus::Expired,
            status => status,
        }
    }
}

/// A stored session, found by the hash of its token.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub kind: SessionKind,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The last request seen, written at most once a minute (SPEC §8: idle timeout).
    pub last_seen_at: Timestamp,
    /// When the step-up window last started (SPEC §9): the sign-in, a re-authentication, or
    /// the last sensitive action, whichever came last.
    pub reauthenticated_at: Timestamp,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// How the user proved who they are at the sign-in (`None` for sessions from before it
    /// was recorded): the `amr` of the ID tokens issued on the session (SPEC §13).
    pub method: Option<crate::sessions::SignInMethod>,
}

/// A login challenge: a user has given the right password and must now give a code.
#[derive(Clone, Debug)]
pub struct Challenge {
    pub id: ChallengeId,
    pub user_id: UserId,
    pub kind: ChallengeKind,
    /// Wrong codes so far.
    pub attempts: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// For a device challenge: when its code was last emailed.
    pub last_sent_at: Option<Timestamp>,
    /// Where the password was given from (named by the unfinished-sign-in alert).
    pub meta: RequestMeta,
    /// The user's recognized device the password was given from, if any.
    pub device_id: Option<DeviceId>,
}

/// A browser or client that passed email verification for a user: recognized while its
/// token is presented, before `expires_at`, with the same User-Agent.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: DeviceId,
    pub user_id: UserId,
    pub user_agent: Option<String>,
    /// Where it was verified from.
    pub ip: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub expires_at: Timestamp,
    /// Until when it skips the second step of a user with 2FA (SPEC §9), if it was trusted.
    pub trusted_until: Option<Timestamp>,
}

impl Device {
    /// Whether it may skip the second step at `now` under `policy` (checked at every use).
    pub fn trusted_at(&self, now: Timestamp, policy: TrustedDevices) -> bool {
        policy == TrustedDevices::Allowed && self.trusted_until.is_some_and(|until| now < until)
    }
}

/// Where a request came from, for the audit log and the per-IP throttle.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One entry of the audit log.
#[derive(Clone, Debug)]
pub struct SecurityEvent {
    pub id: i64,
    pub account_id: Option<AccountId>,
    pub user_id: Option<UserId>,
    /// The user's email at the time, so the entry stays readable after the user is deleted.
    pub email: Option<String>,
    pub kind: EventKind,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Extra facts as a JSON object (never a secret).
    pub detail: serde_json::Value,
    pub created_at: Timestamp,
}

/// An event about to be recorded.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub account_id: Option<AccountId>,
    pub user_id: Option<UserId>,
    pub email: Option<String>,
    pub kind: EventKind,
    pub meta: RequestMeta,
    pub detail: serde_json::Value,
    pub at: Timestamp,
}

impl NewEvent {
    pub fn for_user(user: &User, kind: EventKind, meta: &RequestMeta, at: Timestamp) -> Self {
        Self {
            account_id: Some(user.account_id),
            user_id: Some(user.id),
            email: Some(user.email.as_str().to_owned()),
            kind,
            meta: meta.clone(),
            detail: serde_json::Value::Object(Default::default()),
            at,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_enums_round_trip() {
        for role in [Role::Owner, Role::Admin, Role::Member] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("superuser".parse::<Role>().is_err());
        assert_eq!(
            "setup_only".parse::<SessionKind>().unwrap(),
            SessionKind::SetupOnly
        );
    }

    #[test]
    fn a_device_is_trusted_until_its_time_and_only_while_the_policy_allows() {
        let t = Timestamp::from_unix(1_800_000_000);
        let mut device = Device {
            id: DeviceId::new(),
            user_id: UserId::new(),
            user_agent: None,
            ip: None,
            created_at: t,
            last_used_at: t,
            expires_at: t.plus_secs(100),
            trusted_until: None,
        };
        assert!(
            !device.trusted_at(t, TrustedDevices::Allowed),
            "never trusted"
        );
        device.trusted_until = Some(t.plus_secs(100));
        assert!(device.trusted_at(t.plus_secs(99), TrustedDevices::Allowed));
        assert!(!device.trusted_at(t.plus_secs(100), TrustedDevices::Allowed));
        assert!(!device.trusted_at(t, TrustedDevices::Forbidden));
        assert_eq!(
            "forbidden".parse::<TrustedDevices>().unwrap(),
            TrustedDevices::Forbidden
        );
        assert!("sometimes".parse::<TrustedDevices>().is_err());
    }

    #[test]
    fn ids_parse_and_print() {
        let id = UserId::new();
        assert_eq!(id.to_string().parse::<UserId>().unwrap(), id);
        assert!("not-a-uuid".parse::<UserId>().is_err());
    }
}
