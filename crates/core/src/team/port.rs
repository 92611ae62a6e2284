//! What running a team needs from storage.

use crate::Timestamp;
use crate::crypto::TokenHash;
use crate::model::{
    Account, AccountId, Invitation, InvitationId, SecurityEvent, TrustedDevices, User, UserId,
};
#[cfg(doc)]
use crate::store::Unique;
use crate::store::{Effects, StoreResult};
use crate::throttle::Scope;
use async_trait::async_trait;

/// A user of an account, as the account's managers see them.
#[derive(Clone, Debug)]
pub struct TeamUser {
    pub user: User,
    pub two_factor_enabled: bool,
}

/// What the owner and admins of an account change: its 2FA policy, invitations, users.
#[async_trait]
pub trait TeamStore: Send + Sync {
    /// The users of an account, in order of creation.
    async fn team_members(&self, account: AccountId) -> StoreResult<Vec<TeamUser>>;
    /// Sets the account's 2FA policy; `turned_on` (the emails to every user) is written only
    /// if this call is the one that turned the requirement on, so two admins switching it on
    /// at once email everyone once. Returns the account as it now is (`None`: no account).
    async fn set_two_factor_policy(
        &self,
        account: AccountId,
        required: bool,
        grace_period_until: Option<Timestamp>,
        effects: &Effects,
        turned_on: &Effects,
    ) -> StoreResult<Option<Account>>;
    /// Sets the account's trusted-devices policy (`Forbidden` also ends the trust of every
    /// device of its users); the account as it now is (`None`: no account).
    async fn set_trusted_devices_policy(
        &self,
        account: AccountId,
        policy: TrustedDevices,
        effects: &Effects,
    ) -> StoreResult<Option<Account>>;
    /// Stores a new invitation. `Conflict(Unique::Email)` if a user of the same account has the
    /// email already (another account's user gets a pending invitation, refused at acceptance),
    /// `Conflict(Unique::OpenInvitation)` if the account has an open invitation for it (one past its
    /// time is marked expired first, so it does not block a new one).
    async fn create_invitation(
        &self,
        invitation: &Invitation,
        token: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()>;
    /// The account's invitations still open at `now`, newest first.
    async fn open_invitations(
        &self,
        account: AccountId,
        now: Timestamp,
    ) -> StoreResult<Vec<Invitation>>;
    /// The invitation a token belongs to, whatever its state.
    async fn find_invitation(&self, token: &TokenHash) -> StoreResult<Option<Invitation>>;
    /// Revokes an open invitation of `account`; `false` if there is none by that id.
    async fn revoke_invitation(
        &self,
        account: AccountId,
        id: InvitationId,
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// In one transaction: marks the invitation accepted if it is still open at `now`, and
    /// creates `user` with `password_hash`. `false` if it was no longer open (used,
    /// revoked, expired, or accepted by a concurrent request); `Conflict(Unique::Email)` if a user
    /// with the email appeared meanwhile.
    async fn accept_invitation(
        &self,
        id: InvitationId,
        now: Timestamp,
        user: &User,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// Deletes a user with their sessions, factors, codes, challenges and devices, revokes
    /// the invitations they sent that are still pending, and forgets the given throttles (so
    /// a user invited again starts clean); `false` if the user was already gone. Their audit
    /// events stay, with their email.
    async fn delete_user(
        &self,
        user: UserId,
        throttles: &[(Scope, String)],
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool>;
    /// An account's events, newest first, older than the event id `before` when given.
    async fn account_events(
        &self,
        account: AccountId,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<SecurityEvent>>;
}
