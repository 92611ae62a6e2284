//! What sign-up and sign-in need from storage: accounts and users.

use crate::model::{Account, AccountId, User, UserId};
use crate::store::Effects;
use crate::store::StoreResult;
#[cfg(doc)]
use crate::store::Unique;
use async_trait::async_trait;

/// A user with the stored password hash, for sign-in.
#[derive(Clone, Debug)]
pub struct UserWithPassword {
    pub user: User,
    pub password_hash: Option<String>,
}

/// An account with its size, for the operator.
#[derive(Clone, Debug)]
pub struct AccountSummary {
    pub account: Account,
    pub users: i64,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account and its owner together. `Conflict(Unique::Email)` if the owner's email is
    /// taken (case-insensitively).
    async fn create_account_with_owner(
        &self,
        account: &Account,
        owner: &User,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<()>;
    async fn find_user_by_email(
        &self,
        email_normalized: &str,
    ) -> StoreResult<Option<UserWithPassword>>;
    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn get_account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self) -> StoreResult<Vec<AccountSummary>>;
    /// Users of one account, or of all accounts, in order of creation.
    async fn list_users(&self, account: Option<AccountId>) -> StoreResult<Vec<User>>;
}
