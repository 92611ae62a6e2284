//! What the rules need from storage, as a whole: each room declares its own narrow port
//! (`sessions::SessionStore`, `factors::FactorStore`, …) next to its use cases, and
//! [`Store`] is only their sum, for wiring. Implemented for SQLite and PostgreSQL by
//! `tessera-store`, and checked against both by one conformance suite.
//!
//! Every port method is one atomic unit: a change and the audit events and emails it causes
//! ([`Effects`]) are written in the same transaction.

use crate::Timestamp;
use crate::api_keys::ApiKeyStore;
use crate::audit::EventStore;
use crate::credentials::PasswordStore;
use crate::devices::DeviceStore;
use crate::factors::FactorStore;
use crate::factors::totp::TotpStore;
use crate::factors::webauthn::SecurityKeyStore;
use crate::housekeeping::HousekeepingStore;
use crate::keys::KeyStore;
use crate::mail::{Alert, OutboxStore, SealedEmail};
use crate::model::{NewEvent, SessionId};
use crate::oidc_provider::OidcStore;
use crate::second_step::ChallengeStore;
use crate::sessions::SessionStore;
use crate::sign_in::AccountStore;
use crate::sign_up::SignupStore;
use crate::sso::SsoStore;
use crate::team::TeamStore;
use crate::throttle::ThrottleStore;
use async_trait::async_trait;

/// A uniqueness rule of the data, as a write can break it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unique {
    /// Every user has their own email (case-insensitively), across accounts.
    Email,
    /// An account has at most one open invitation per email.
    OpenInvitation,
    /// An email domain signs in through one team's identity provider only.
    SsoDomain,
    /// A person at a provider (`iss`, `sub`) is one user; a user has one identity per issuer.
    SsoIdentity,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write.
    #[error("{0:?} already exists")]
    Conflict(Unique),
    /// The write lost a race: a row it refers to was deleted meanwhile (a user deleted while
    /// signing in, an admin deleted by the one they were deleting), or PostgreSQL broke a
    /// deadlock between two such writes. Nothing was written; the request gets a 4xx.
    #[error("a concurrent change got in the way of this write")]
    Raced,
    /// A row could not be read back into the model.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database cannot be reached or cannot write for now: answered `503 unavailable`.
    #[error("{0}")]
    Unavailable(#[source] Unavailable),
    /// The database failed otherwise (a bug of ours, or stored data we cannot read).
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A database failure that passes by itself: the connection is lost or refused, the pool has
/// no connection free in time, the disk is full, the volume read-only, an I/O error, a
/// statement cancelled by its timeout. Nothing was written by the operation that failed so.
///
/// It stays in the source chain of every use case's error (their `Internal` variants are
/// transparent), so [`is_unavailable`] finds it wherever it ends up.
#[derive(Debug, thiserror::Error)]
#[error("the database is unavailable: {0}")]
pub struct Unavailable(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Whether `error`, or anything in its chain of sources, is [`Unavailable`].
pub fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<Unavailable>())
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a change causes besides itself: audit events, emails, alerts, and the restart of
/// the caller's step-up window (a sensitive action, SPEC §9), written in the same transaction
/// as the change, so none is lost nor recorded for a change that failed.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    pub events: Vec<NewEvent>,
    pub emails: Vec<SealedEmail>,
    /// Emails that go only if their kind was not sent to the user lately ([`Alert`]).
    pub alerts: Vec<Alert>,
    /// The session whose step-up window restarts, and when.
    pub step_up: Option<StepUp>,
}

/// A session's step-up window (re)starting at `at` ([`crate::principal::Recent`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepUp {
    pub session: SessionId,
    pub at: Timestamp,
}

impl Effects {
    pub fn event(event: NewEvent) -> Self {
        Self {
            events: vec![event],
            ..Self::default()
        }
    }

    pub fn and_event(mut self, event: NewEvent) -> Self {
        self.events.push(event);
        self
    }

    pub fn and_email(mut self, email: SealedEmail) -> Self {
        self.emails.push(email);
        self
    }

    pub fn and_alert(mut self, alert: Alert) -> Self {
        self.alerts.push(alert);
        self
    }

    /// Both sets of effects.
    pub fn and(mut self, other: Effects) -> Self {
        self.events.extend(other.events);
        self.emails.extend(other.emails);
        self.alerts.extend(other.alerts);
        self.step_up = self.step_up.or(other.step_up);
        self
    }
}

/// Every room's port: what `tessera-store` implements, and what the services are built on.
#[async_trait]
pub trait Store:
    AccountStore
    + SessionStore
    + EventStore
    + ThrottleStore
    + OutboxStore
    + FactorStore
    + TotpStore
    + SecurityKeyStore
    + ChallengeStore
    + TeamStore
    + DeviceStore
    + PasswordStore
    + SignupStore
    + KeyStore
    + HousekeepingStore
    + ApiKeyStore
    + SsoStore
    + OidcStore
{
    /// Checks that the database answers (a read).
    async fn ping(&self) -> StoreResult<()>;
    /// Checks that the database can take a write now (one committed to a heartbeat row; on
    /// SQLite, also that its volume has room) and that its migrations are this build's.
    async fn ready(&self, now: crate::Timestamp) -> StoreResult<()>;
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
}
