//! Who uses a power that amounts to account recovery (SPEC §9, §11): a [`RecoveryAdmin`] in a
//! session, or an API key holding the grant for it (`users:write` to delete users and reset
//! their 2FA, `policy:write` for the team's 2FA and trusted-device policies).
//!
//! A key acts as its creator: on whom the creator may act ([`crate::principal::may_act_on`],
//! checked by [`super::Team::managed`]), and only while the creator could still give the grant
//! ([`crate::api_keys::grants::may_hold`], read with the key at each use: a manager, with 2FA
//! when `TESSERA_ADMIN_REQUIRES_2FA` is on). It has no session, so no step-up window to
//! check or restart. The audit log names the creator as the actor and the key by its id; the
//! emails to the users concerned read as for their creator's own action.

use crate::Timestamp;
use crate::model::{Account, EventKind, NewEvent, RequestMeta, User};
use crate::principal::{Granted, RecoveryAdmin};
use crate::store::Effects;
use serde_json::{Value, json};

/// A recovery admin, or an API key holding grant `G`.
pub enum Acting<'a, G> {
    Admin(&'a RecoveryAdmin),
    Key(&'a Granted<G>),
}

// By hand: a derive would ask `G: Copy` of the grant marker, which is only a name.
impl<G> Clone for Acting<'_, G> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<G> Copy for Acting<'_, G> {}

impl<'a, G> From<&'a RecoveryAdmin> for Acting<'a, G> {
    fn from(admin: &'a RecoveryAdmin) -> Self {
        Self::Admin(admin)
    }
}

impl<'a, G> From<&'a Granted<G>> for Acting<'a, G> {
    fn from(key: &'a Granted<G>) -> Self {
        Self::Key(key)
    }
}

impl<G> Acting<'_, G> {
    /// The person acting: the admin, or the key's creator.
    pub fn user(&self) -> &User {
        match self {
            Self::Admin(admin) => admin.user(),
            Self::Key(key) => key.creator(),
        }
    }

    pub fn account(&self) -> &Account {
        match self {
            Self::Admin(admin) => admin.account(),
            Self::Key(key) => key.account(),
        }
    }

    /// `detail`, naming the key when one acted.
    pub(crate) fn detail(&self, mut detail: Value) -> Value {
        if let Self::Key(key) = self {
            detail["api_key_id"] = json!(key.key().id);
        }
        detail
    }

    /// An event of the person acting, naming the key when one acted.
    pub(crate) fn event(
        &self,
        kind: EventKind,
        meta: &RequestMeta,
        now: Timestamp,
        detail: Value,
    ) -> NewEvent {
        NewEvent::for_user(self.user(), kind, meta, now).with_detail(self.detail(detail))
    }

    /// The restart of the admin's step-up window, to be written with the action; nothing for
    /// a key, which has no session.
    pub(crate) fn restarted(&self, now: Timestamp) -> Effects {
        match self {
            Self::Admin(admin) => admin.restarted(now),
            Self::Key(_) => Effects::default(),
        }
    }
}
