//! Tessera's rules: sign-up and sign-in, sessions, second factors, devices, teams and the
//! operator's actions, as use cases over narrow storage ports.
//!
//! Nothing here speaks HTTP or SQL. Time is passed in (`Timestamp`, read at the edge through a
//! [`Clock`]).
//!
//! ## The room map
//! Each room owns its service, its storage port (`port.rs`) and its errors:
//!
//! | room | owns | SPEC |
//! |---|---|---|
//! | [`principal`] | who is calling: `AnySession`, `FullSession`, `Manager`, `Managed`, `ApiKeyPrincipal`, `Granted` | §4, §11 |
//! | [`sessions`] | opening every session, authenticating a token, sign-out, one's sessions | §3 |
//! | [`credentials`] | changing a password, reset links | §8 |
//! | [`sign_in`] | sign-up, password sign-in and what comes next, password re-checks | §2, §3 |
//! | [`sign_up`] | sign-up modes, the emailed confirmation link, teams created by the operator | §8 |
//! | [`second_step`] | login challenges and answering them | §3 |
//! | [`factors`] | "2FA on", the kinds of answer ([`factors::METHODS`]): [`factors::totp`], [`factors::webauthn`], [`factors::recovery`], [`factors::paper_key`] | §2, §10 |
//! | [`devices`] | emailed codes for unrecognized devices, recognized devices | §2, §3 |
//! | [`sso`] | the team's identity provider (OpenID Connect), SSO sign-in, linking, provisioning; the provider as an outbound port | §12 |
//! | [`team`] | the 2FA policy and its [`team::enforcement`], invitations, users | §2, §4 |
//! | [`throttle`] | the lockout and window state machines, their scopes and keys | §3 |
//! | [`audit`] | reading the audit log | §5 |
//! | [`operator`] | `tessera admin` | §7 |
//! | [`housekeeping`] | deleting what has expired, in batches, safe with several instances | §14 |
//! | [`api_keys`] | API keys: their format, grants, allowlists, and checking a presented key | §11 |
//! | [`keys`] | the master-key guard and rotation, outside the services (run before them) | §14 |
//! | [`mail`] | the messages, sealed into the outbox | §6 |
//! | [`oidc_provider`] | Tessera as an OpenID Connect provider: clients, codes, tokens, signing keys | §13 |
//!
//! Shared vocabulary stays at the root: [`model`], [`time`], [`crypto`], [`codes`],
//! [`email`], [`validate`], [`config`], [`password`], and [`store`] (`Effects`, errors, and
//! `Store`, the sum of every port, for wiring).

pub mod api_keys;
pub mod audit;
pub mod codes;
pub mod config;
pub mod credentials;
pub mod crypto;
mod ctx;
pub mod devices;
pub mod email;
pub mod factors;
pub mod housekeeping;
pub mod keys;
pub mod mail;
pub mod model;
pub mod oidc_provider;
pub mod operator;
pub mod password;
pub mod principal;
pub mod second_step;
pub mod sessions;
pub mod sign_in;
pub mod sign_up;
pub mod sso;
pub mod store;
pub mod team;
pub mod throttle;
pub mod time;
pub mod user_agent;
pub mod validate;

pub use config::SecurityPolicy;
pub use ctx::{Deps, Internal};
pub use time::{Clock, Timestamp};

use std::sync::Arc;

/// Every room's service for the people using Tessera, sharing one context. Cheap to clone.
/// The operator's use cases ([`operator::Operator`]) are built apart, for `tessera admin`
/// only: they act without a principal.
#[derive(Clone)]
pub struct Tessera {
    pub sessions: sessions::Sessions,
    pub sign_in: sign_in::SignIn,
    pub sign_up: sign_up::SignUp,
    pub second_step: second_step::SecondStep,
    pub factors: factors::Factors,
    pub passkeys: factors::webauthn::Passkeys,
    pub devices: devices::Devices,
    pub team: team::Team,
    pub invitations: team::Invitations,
    pub audit: audit::Audit,
    pub passwords: credentials::PasswordLifecycle,
    pub api_keys: api_keys::ApiKeys,
    pub sso: sso::Sso,
    pub oidc: oidc_provider::OidcProvider,
    ctx: Arc<ctx::Ctx>,
}

impl Tessera {
    pub fn new(deps: Deps) -> Self {
        let ctx = Arc::new(ctx::Ctx::new(deps));
        Self {
            sessions: sessions::Sessions(ctx.clone()),
            sign_in: sign_in::SignIn(ctx.clone()),
            sign_up: sign_up::SignUp(ctx.clone()),
            second_step: second_step::SecondStep(ctx.clone()),
            factors: factors::Factors(ctx.clone()),
            passkeys: factors::webauthn::Passkeys(ctx.clone()),
            devices: devices::Devices(ctx.clone()),
            team: team::Team(ctx.clone()),
            invitations: team::Invitations(ctx.clone()),
            audit: audit::Audit(ctx.clone()),
            passwords: credentials::PasswordLifecycle(ctx.clone()),
            api_keys: api_keys::ApiKeys(ctx.clone()),
            sso: sso::Sso(ctx.clone()),
            oidc: oidc_provider::OidcProvider::new(ctx.clone()),
            ctx,
        }
    }

    /// The current time, as the rules see it.
    pub fn now(&self) -> Timestamp {
        self.ctx.now()
    }

    /// Whether security keys and passkeys can be used here (the public URL is a relying
    /// party: SPEC §10).
    pub fn webauthn_available(&self) -> bool {
        self.ctx.webauthn.is_some()
    }

    /// The security numbers in force.
    pub fn policy(&self) -> &SecurityPolicy {
        &self.ctx.policy
    }

    /// Whether the database answers (`/health`).
    pub async fn ping(&self) -> Result<(), store::StoreError> {
        self.ctx.store.ping().await
    }

    /// Whether the database takes writes and is migrated for this build (`/health/ready`).
    pub async fn ready(&self) -> Result<(), store::StoreError> {
        self.ctx.store.ready(self.ctx.now()).await
    }
}

/// `error` and its sources in one line, `a: b: c`, leaving out a source whose words the
/// error before it already shows (an error that prints its source, or a transparent wrapper,
/// would otherwise say the same thing twice).
pub fn describe_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut shown: Vec<String> = Vec::new();
    for e in std::iter::successors(Some(error), |e| e.source()) {
        let words = e.to_string();
        if !shown.last().is_some_and(|last| last.contains(&words)) {
            shown.push(words);
        }
    }
    shown.join(": ")
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapper")]
    struct Wrapper(#[source] Outer);

    #[test]
    fn an_error_chain_is_described_once_each() {
        assert_eq!(super::describe_error(&Outer(Inner)), "outer: inner");
        assert_eq!(
            super::describe_error(&Wrapper(Outer(Inner))),
            "wrapper: outer: inner"
        );
    }
}
