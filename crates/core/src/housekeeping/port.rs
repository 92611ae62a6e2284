//! What housekeeping needs from storage.

use crate::Timestamp;
use crate::store::StoreResult;
use async_trait::async_trait;

/// One kind of row past its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Sessions whose absolute end is before the cutoff.
    ExpiredSessions,
    /// Sessions last seen before the cutoff.
    IdleSessions,
    Challenges,
    PendingSetups,
    /// Security-key ceremonies (registrations, passkey sign-ins) never finished.
    Ceremonies,
    /// Throttles with no failure and no running lock.
    ClearedThrottles,
    /// Throttles whose window started before the cutoff and whose lock (if any) ended.
    StaleThrottles,
    /// Password reset links that ended before the cutoff.
    ResetLinks,
    SignupLinks,
    /// Records of emailed codes sent before the cutoff.
    EmailCodeSends,
    /// Recognized devices whose lifetime ended before the cutoff.
    Devices,
    /// Delivered emails sent before the cutoff.
    SentEmails,
    /// Audit events recorded before the cutoff.
    Events,
    /// SSO sign-ins sent to the provider that never came back, expired before the cutoff.
    SsoLogins,
    /// OpenID Connect authorization codes that ended before the cutoff.
    OidcCodes,
    /// OpenID Connect access and refresh tokens that ended before the cutoff.
    OidcTokens,
    /// API keys revoked or expired before the cutoff.
    ApiKeys,
}

impl Sweep {
    pub const ALL: [Sweep; 17] = [
        Self::ExpiredSessions,
        Self::IdleSessions,
        Self::Challenges,
        Self::PendingSetups,
        Self::Ceremonies,
        Self::ClearedThrottles,
        Self::StaleThrottles,
        Self::ResetLinks,
        Self::SignupLinks,
        Self::EmailCodeSends,
        Self::Devices,
        Self::SentEmails,
        Self::Events,
        Self::SsoLogins,
        Self::OidcCodes,
        Self::OidcTokens,
        Self::ApiKeys,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExpiredSessions => "expired_sessions",
            Self::IdleSessions => "idle_sessions",
            Self::Challenges => "challenges",
            Self::PendingSetups => "pending_setups",
            Self::Ceremonies => "webauthn_ceremonies",
            Self::ClearedThrottles => "cleared_throttles",
            Self::StaleThrottles => "stale_throttles",
            Self::ResetLinks => "reset_links",
            Self::SignupLinks => "signup_links",
            Self::EmailCodeSends => "email_code_sends",
            Self::Devices => "devices",
            Self::SentEmails => "sent_emails",
            Self::Events => "events",
            Self::SsoLogins => "sso_logins",
            Self::OidcCodes => "oidc_codes",
            Self::OidcTokens => "oidc_tokens",
            Self::ApiKeys => "api_keys",
        }
    }
}

#[async_trait]
pub trait HousekeepingStore: Send + Sync {
    /// Deletes at most `limit` rows of the kind `sweep` past `before`, in one statement;
    /// answers how many.
    async fn sweep(&self, sweep: Sweep, before: Timestamp, limit: i64) -> StoreResult<u64>;
}
