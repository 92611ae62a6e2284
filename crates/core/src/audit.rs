//! The audit log (SPEC §5): every security change records an event in the transaction of
//! the change ([`crate::store::Effects`]); this room reads them back and records the few that
//! belong to no other change.

use crate::Timestamp;
use crate::api_keys::ApiKeyContext;
use crate::ctx::{Ctx, Internal};
use crate::model::{EventKind, NewEvent, RequestMeta, SecurityEvent, UserId};
use crate::principal::{AnySession, ApiKeyPrincipal, Forbidden, FullSession};
use crate::store::{Effects, StoreResult};
use crate::throttle::{self, Scope, Window};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

/// At most one refusal a minute is audited per session or API key (every one is logged by
/// the server).
const REFUSALS_AUDITED: Window = Window { max: 1, secs: 60 };

/// Who was refused a use case: a person in a session, or an API key.
pub(crate) enum Refused<'a> {
    Session(&'a AnySession),
    Key(&'a ApiKeyPrincipal),
}

impl Ctx {
    /// Audits that `who` was refused `why` (`detail`: what was asked): a session as
    /// `access_denied`, a key as `api_key_refused` in its creator's name; at most once a
    /// minute per session or key. A failure to audit is logged; the refusal stands.
    pub(crate) async fn audit_refused(
        &self,
        who: Refused<'_>,
        why: Forbidden,
        mut detail: Value,
        meta: &RequestMeta,
    ) {
        let audited = match who {
            Refused::Session(session) => self.record_refusal(session, why, detail, meta).await,
            Refused::Key(key) => {
                detail["api_key_id"] = json!(key.key().id);
                detail["reason"] = json!(why.code());
                self.record_key_refusal(key.context(), detail, meta, self.now())
                    .await
            }
        };
        if let Err(e) = audited {
            tracing::error!(error = %e, "cannot audit a refusal");
        }
    }

    /// Audits that a signed-in principal was refused (SPEC §8): an `access_denied` event with
    /// the reason and `detail` (what was asked), at most one a minute per session.
    pub(crate) async fn record_refusal(
        &self,
        who: &AnySession,
        why: Forbidden,
        mut detail: Value,
        meta: &RequestMeta,
    ) -> Result<(), Internal> {
        let now: Timestamp = self.now();
        detail["reason"] = json!(why.code());
        let event = who
            .event(EventKind::AccessDenied, meta, now)
            .with_detail(detail);
        self.record_once_a_minute(&who.session().id.to_string(), event)
            .await
    }

    /// Audits a refused use of a real API key (`api_key_refused`, with `detail`: the key, the
    /// reason, what was asked), at most one a minute per key.
    pub(crate) async fn record_key_refusal(
        &self,
        context: &ApiKeyContext,
        detail: Value,
        meta: &RequestMeta,
        now: Timestamp,
    ) -> Result<(), Internal> {
        let event = NewEvent::for_user(&context.creator, EventKind::ApiKeyRefused, meta, now)
            .with_detail(detail);
        self.record_once_a_minute(&format!("api_key:{}", context.key.id), event)
            .await
    }

    /// Records `event` unless one was recorded for `key` in the last minute, counted under
    /// the throttle's row lock so racing refusals cannot write more.
    async fn record_once_a_minute(&self, key: &str, event: NewEvent) -> Result<(), Internal> {
        let now = event.at;
        self.store
            .update_throttle(Scope::AccessDenied, key, &mut |state| {
                let (next, verdict) = throttle::window_admit(state, now, &REFUSALS_AUDITED);
                let effects = match verdict {
                    Ok(()) => Effects::event(event.clone()),
                    Err(_) => Effects::default(),
                };
                (next, effects)
            })
            .await?;
        Ok(())
    }
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Records events and queues emails that belong to no other change.
    async fn record(&self, effects: &Effects) -> StoreResult<()>;
    /// A user's events, newest first, older than the event id `before` when given.
    async fn user_events(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<SecurityEvent>>;
}

/// A user's own audit log. Cheap to clone.
#[derive(Clone)]
pub struct Audit(pub(crate) Arc<Ctx>);

impl Audit {
    /// Records that `who` was refused `asked` (a route) because of `why`.
    pub async fn refused(
        &self,
        who: &AnySession,
        why: Forbidden,
        asked: &str,
        meta: &RequestMeta,
    ) -> Result<(), Internal> {
        self.0
            .record_refusal(who, why, json!({ "route": asked }), meta)
            .await
    }

    /// The signed-in user's events, newest first, older than event `before` when given.
    pub async fn my_events(
        &self,
        me: &FullSession,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, Internal> {
        Ok(self
            .0
            .store
            .user_events(me.user().id, before, limit)
            .await?)
    }
}
