//! API keys (SPEC §11, SparkPost): least-privilege keys an account's owner and admins create
//! for the team's programs, and how a presented key is checked.
//!
//! ## A key's life
//! - **Created** by a manager within the step-up window ([`Recent<Manager>`]), with a label,
//!   grants ([`grants`]: only ones the manager may give), allowed addresses ([`allowlist`])
//!   and an optional expiry. The key ([`secret`]) is shown once; the store keeps its keyed
//!   hash and its first 8 characters. The account's owner is emailed; `api_key_created` is
//!   audited.
//! - **Changed** (label, grants, allowed addresses) and **revoked** the same way, audited.
//!   Revocation is one conditional write; every use reads the key afresh, so once a
//!   revocation is acknowledged no later use succeeds.
//! - **Deleted** with its creator: a key acts within what its creator may do
//!   ([`grants::may_hold`]), and goes when they do.
//!
//! ## A use ([`ApiKeys::authenticate`])
//! 1. Not the shape of a key, or a wrong checksum: refused before any database read.
//! 2. One indexed read by the hash. No such key: the failure counts towards the address's
//!    limit of failed sign-ins (SPEC §3: 50 in 10 min), then `429` for the rest of it.
//! 3. Revoked or expired: refused (and counted the same way); the address outside the
//!    allowlist: `ip_not_allowed`. Refusals of a real key are audited (`api_key_refused`),
//!    at most once a minute per key.
//! 4. Otherwise the key's last use (time, address) is written if the last one recorded is a
//!    minute old or more: a key used all the time writes once a minute.
//!
//! A key never opens a session and is not affected by 2FA.

pub mod allowlist;
pub mod grants;
mod port;
mod secret;

pub use allowlist::IpRule;
pub use grants::{GrantCatalog, TESSERA_GRANTS};
pub use port::{ApiKey, ApiKeyChange, ApiKeyContext, ApiKeyStore};
pub use secret::{ApiKeySecret, KEY_PREFIX, looks_like_key};

use crate::Timestamp;
use crate::ctx::{Ctx, Internal, internal_from};
use crate::mail::Message;
use crate::model::{ApiKeyId, EventKind, RequestMeta, Role};
use crate::principal::{AnySession, ApiKeyPrincipal, Forbidden, Grant, Granted, Manager, Recent};
use crate::store::Effects;
use crate::throttle::RetryAt;
use crate::validate::FieldError;
use serde_json::json;
use std::sync::Arc;

/// A key's use is written at most this often (seconds).
pub const TOUCH_EVERY_SECS: i64 = 60;
/// The most grants a key holds.
const MAX_GRANTS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The manager may not give this grant (they may not do what it allows).
    #[error("you cannot give the grant {0}: you may not do what it allows yourself")]
    GrantNotHeld(String),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// Why a presented key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefused {
    /// Not the shape of a key, or its checksum is wrong.
    #[error("this is not a valid API key")]
    Malformed,
    /// No key has this value, or it was revoked.
    #[error("this API key is not valid (unknown or revoked)")]
    Invalid,
    #[error("this API key has expired")]
    Expired,
    /// Used from an address outside its allowlist.
    #[error("this API key may not be used from this address")]
    IpNotAllowed,
    /// The address made too many failed attempts.
    #[error("too many attempts; try again later")]
    TooManyAttempts { wait_secs: i64 },
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// A grant the key does not hold (or its creator can no longer give).
#[derive(Debug, thiserror::Error)]
#[error("this API key lacks the grant {0}")]
pub struct InsufficientGrant(pub String);

internal_from!(ApiKeyError, KeyRefused);

/// A new key as its creator asks for it.
pub struct NewApiKey<'a> {
    pub label: &'a str,
    pub grants: &'a [String],
    pub allowed_ips: &'a [String],
    /// A date (`2027-01-01`) or an RFC 3339 time, in the future.
    pub expires_at: Option<&'a str>,
}

/// A key just created, with the key itself, shown this once.
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: ApiKeySecret,
}

/// API keys. Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys(pub(crate) Arc<Ctx>);

impl ApiKeys {
    /// Every grant of this deployment.
    pub fn catalog(&self) -> &GrantCatalog {
        &self.0.grants
    }

    /// The grants `who` may give, in the catalogue's order.
    pub fn grants_of(&self, who: &AnySession) -> Vec<String> {
        self.0
            .grants
            .all()
            .filter(|grant| {
                grants::may_hold(
                    who.user(),
                    who.two_factor_enabled(),
                    self.0.policy.admin_requires_two_factor,
                    grant,
                )
            })
            .map(str::to_owned)
            .collect()
    }

    /// Creates a key for the manager's account.
    pub async fn create(
        &self,
        manager: &Recent<Manager>,
        input: NewApiKey<'_>,
        meta: &RequestMeta,
    ) -> Result<CreatedKey, ApiKeyError> {
        let ctx = &self.0;
        let now = ctx.now();
        let label = crate::validate::name("label", input.label)?;
        let grants = self.checked_grants(manager, input.grants)?;
        let allowed_ips = parse_rules(input.allowed_ips)?;
        let expires_at = match input.expires_at.map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let at = Timestamp::parse_deadline(text).ok_or_else(|| {
                    FieldError::new(
                        "expires_at",
                        "must be a date (YYYY-MM-DD) or an RFC 3339 time",
                    )
                })?;
                if at <= now {
                    return Err(FieldError::new("expires_at", "must be in the future").into());
                }
                Some(at)
            }
        };
        let secret = ApiKeySecret::generate();
        let key = ApiKey {
            id: ApiKeyId::new(),
            account_id: manager.account().id,
            label,
            prefix: secret.prefix().to_owned(),
            grants,
            allowed_ips,
            created_at: now,
            created_by: manager.user().id,
            expires_at,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
        };
        let event = manager
            .event(EventKind::ApiKeyCreated, meta, now)
            .with_detail(describe(&key));
        let mut effects = Effects::event(event).and(manager.restarted(now));
        if let Some(owner) = self.owner_of(manager).await? {
            let message = Message::ApiKeyCreated {
                label: key.label.clone(),
                prefix: key.prefix.clone(),
                grants: key.grants.clone(),
                created_by: manager.user().email.as_str().to_owned(),
            };
            effects =
                effects.and_email(ctx.email_in(&owner, manager.account(), meta, now, message));
        }
        ctx.store
            .create_api_key(&key, &ctx.api_key_hash(&secret), &effects)
            .await?;
        Ok(CreatedKey { key, secret })
    }

    /// The account's keys, newest first.
    pub async fn list(&self, manager: &Manager) -> Result<Vec<ApiKey>, ApiKeyError> {
        Ok(self.0.store.list_api_keys(manager.account().id).await?)
    }

    /// Replaces a key's label, grants and allowed addresses.
    pub async fn change(
        &self,
        manager: &Recent<Manager>,
        id: ApiKeyId,
        input: NewApiKey<'_>,
        meta: &RequestMeta,
    ) -> Result<ApiKey, ApiKeyError> {
        let now = self.0.now();
        let change = ApiKeyChange {
            label: crate::validate::name("label", input.label)?,
            grants: self.checked_grants(manager, input.grants)?,
            allowed_ips: parse_rules(input.allowed_ips)?,
        };
        let detail = json!({
            "api_key_id": id,
            "label": change.label,
            "grants": change.grants,
            "allowed_ips": rule_texts(&change.allowed_ips),
        });
        let event = manager
            .event(EventKind::ApiKeyChanged, meta, now)
            .with_detail(detail);
        let effects = Effects::event(event).and(manager.restarted(now));
        self.0
            .store
            .update_api_key(manager.account().id, id, &change, &effects)
            .await?
            .ok_or(ApiKeyError::NotFound)
    }

    /// Revokes a key: from the acknowledgement on, no use of it succeeds.
    pub async fn revoke(
        &self,
        manager: &Recent<Manager>,
        id: ApiKeyId,
        meta: &RequestMeta,
    ) -> Result<(), ApiKeyError> {
        let now = self.0.now();
        let key = self
            .0
            .store
            .get_api_key(manager.account().id, id)
            .await?
            .filter(|k| k.revoked_at.is_none())
            .ok_or(ApiKeyError::NotFound)?;
        let event = manager
            .event(EventKind::ApiKeyRevoked, meta, now)
            .with_detail(describe(&key));
        let effects = Effects::event(event).and(manager.restarted(now));
        if self
            .0
            .store
            .revoke_api_key(manager.account().id, id, now, &effects)
            .await?
        {
            Ok(())
        } else {
            Err(ApiKeyError::NotFound)
        }
    }

    /// The key behind `presented` (the text after `Bearer `), if it may be used now from
    /// the client's address.
    pub async fn authenticate(
        &self,
        presented: &str,
        meta: &RequestMeta,
    ) -> Result<ApiKeyPrincipal, KeyRefused> {
        let ctx = &self.0;
        let secret = ApiKeySecret::parse(presented.trim()).ok_or(KeyRefused::Malformed)?;
        let now = ctx.now();
        let Some(context) = ctx.store.find_api_key(&ctx.api_key_hash(&secret)).await? else {
            return Err(self.failed(meta, now, KeyRefused::Invalid).await);
        };
        let refusal = if context.key.revoked_at.is_some() {
            Some(("revoked", KeyRefused::Invalid))
        } else if context.key.expires_at.is_some_and(|at| at <= now) {
            Some(("expired", KeyRefused::Expired))
        } else if !allowlist::permits(&context.key.allowed_ips, meta.ip.as_deref()) {
            Some(("ip_not_allowed", KeyRefused::IpNotAllowed))
        } else {
            None
        };
        if let Some((reason, refused)) = refusal {
            let detail = json!({ "api_key_id": context.key.id, "reason": reason });
            self.0
                .record_key_refusal(&context, detail, meta, now)
                .await?;
            return Err(match refused {
                KeyRefused::IpNotAllowed => refused,
                other => self.failed(meta, now, other).await,
            });
        }
        let due = now.plus_secs(-TOUCH_EVERY_SECS);
        if context.key.last_used_at.is_none_or(|at| at <= due) {
            ctx.store
                .touch_api_key(context.key.id, now, due, meta.ip.as_deref())
                .await?;
        }
        let grants = context
            .key
            .grants
            .iter()
            .filter(|grant| {
                grants::may_hold(
                    &context.creator,
                    context.creator_two_factor_enabled,
                    ctx.policy.admin_requires_two_factor,
                    grant,
                )
            })
            .cloned()
            .collect();
        Ok(ApiKeyPrincipal::new(context, grants))
    }

    /// The key as holding grant `G`, or the refusal naming it (audited).
    pub async fn granted<G: Grant>(
        &self,
        key: ApiKeyPrincipal,
        asked: &str,
        meta: &RequestMeta,
    ) -> Result<Granted<G>, InsufficientGrant> {
        if key.holds(G::NAME) {
            Ok(Granted::new(key))
        } else {
            Err(self.insufficient(&key, G::NAME, asked, meta).await)
        }
    }

    /// Refuses `key` for want of `grant` (the gate's `?grant=`), auditing it.
    pub async fn insufficient(
        &self,
        key: &ApiKeyPrincipal,
        grant: &str,
        asked: &str,
        meta: &RequestMeta,
    ) -> InsufficientGrant {
        let detail = json!({
            "api_key_id": key.key().id,
            "reason": "insufficient_grant",
            "grant": grant,
            "route": asked,
        });
        let now = self.0.now();
        if let Err(e) = self
            .0
            .record_key_refusal(key.context(), detail, meta, now)
            .await
        {
            tracing::error!(error = %e, "cannot audit a refused API key");
        }
        InsufficientGrant(grant.to_owned())
    }

    /// The grants asked for, if each is known and the manager may give it; in the
    /// catalogue's order, without repeats.
    fn checked_grants(
        &self,
        manager: &Manager,
        asked: &[String],
    ) -> Result<Vec<String>, ApiKeyError> {
        if asked.is_empty() {
            return Err(FieldError::new("grants", "give the key at least one grant").into());
        }
        if asked.len() > MAX_GRANTS {
            return Err(FieldError::new("grants", "too many grants").into());
        }
        let catalog = &self.0.grants;
        for grant in asked {
            if !catalog.knows(grant) {
                return Err(FieldError::new(
                    "grants",
                    format!(
                        "unknown grant {grant:?}; known: {}",
                        catalog.all().collect::<Vec<_>>().join(", ")
                    ),
                )
                .into());
            }
            let may = grants::may_hold(
                manager.user(),
                manager.two_factor_enabled(),
                self.0.policy.admin_requires_two_factor,
                grant,
            );
            if !may {
                return Err(ApiKeyError::GrantNotHeld(grant.clone()));
            }
        }
        Ok(catalog
            .all()
            .filter(|known| asked.iter().any(|g| g == known))
            .map(str::to_owned)
            .collect())
    }

    /// The account's owner, who is told about new keys.
    async fn owner_of(&self, manager: &Manager) -> Result<Option<crate::model::User>, Internal> {
        if manager.user().role == Role::Owner {
            return Ok(Some(manager.user().clone()));
        }
        let members = self.0.store.team_members(manager.account().id).await?;
        Ok(members
            .into_iter()
            .map(|m| m.user)
            .find(|u| u.role == Role::Owner))
    }

    /// A failed use counts towards the address's limit of failed attempts; past it, the
    /// answer is `429` instead of `refused`.
    async fn failed(&self, meta: &RequestMeta, now: Timestamp, refused: KeyRefused) -> KeyRefused {
        match self.0.ip_admit(meta, now).await {
            Ok(Ok(())) => refused,
            Ok(Err(RetryAt(retry_at))) => KeyRefused::TooManyAttempts {
                wait_secs: now.secs_until(retry_at).max(1),
            },
            Err(e) => KeyRefused::Internal(e),
        }
    }
}

/// Parses an allowlist, without repeats.
fn parse_rules(input: &[String]) -> Result<Vec<IpRule>, FieldError> {
    if input.len() > allowlist::MAX_RULES {
        return Err(FieldError::new(
            "allowed_ips",
            format!("at most {} addresses or blocks", allowlist::MAX_RULES),
        ));
    }
    let mut rules: Vec<IpRule> = Vec::new();
    for text in input {
        let rule = IpRule::parse(text).map_err(|why| FieldError::new("allowed_ips", why))?;
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    Ok(rules)
}

fn rule_texts(rules: &[IpRule]) -> Vec<String> {
    rules.iter().map(ToString::to_string).collect()
}

/// What the audit log says about a key (never the key).
fn describe(key: &ApiKey) -> serde_json::Value {
    json!({
        "api_key_id": key.id,
        "label": key.label,
        "prefix": key.prefix,
        "grants": key.grants,
        "allowed_ips": rule_texts(&key.allowed_ips),
        "expires_at": key.expires_at.map(Timestamp::to_rfc3339),
    })
}
