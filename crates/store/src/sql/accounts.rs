//! Accounts and users.

use super::rows::{self, account_columns, user_columns};
use super::{Backend, events};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::model::{Account, AccountId, User, UserId};
use tessera_core::sign_in::{AccountStore, AccountSummary, UserWithPassword};
use tessera_core::store::{Effects, StoreResult};

/// Inserts a user inside a transaction (sign-up, an accepted invitation);
/// `Conflict("email")` if the email is taken.
pub(super) async fn insert_user(
    tx: &mut super::Tx,
    user: &User,
    password_hash: &str,
) -> StoreResult<()> {
    query(
        "INSERT INTO users (id, account_id, email, email_normalized, name, role, \
         auth_source, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(user.id.to_string())
    .bind(user.account_id.to_string())
    .bind(user.email.as_str())
    .bind(user.email.normalized())
    .bind(&user.name)
    .bind(user.role.as_str())
    .bind(user.auth_source.as_str())
    .bind(password_hash)
    .bind(user.created_at.unix())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Inserts an account inside a transaction (sign-up, a confirmed sign-up link).
pub(super) async fn insert_account(tx: &mut super::Tx, account: &Account) -> StoreResult<()> {
    query(
        "INSERT INTO accounts (id, name, two_factor_required, grace_period_until, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account.id.to_string())
    .bind(&account.name)
    .bind(account.two_factor_required)
    .bind(account.grace_period_until.map(|t| t.unix()))
    .bind(account.created_at.unix())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

#[async_trait]
impl AccountStore for Backend {
    async fn create_account_with_owner(
        &self,
        account: &Account,
        owner: &User,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        insert_account(&mut tx, account).await?;
        insert_user(&mut tx, owner, password_hash).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn find_user_by_email(
        &self,
        email_normalized: &str,
    ) -> StoreResult<Option<UserWithPassword>> {
        let row = query(concat!(
            "SELECT ",
            user_columns!(),
            ", u.password_hash FROM users u WHERE u.email_normalized = $1"
        ))
        .bind(email_normalized)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.map(|row| {
            Ok(UserWithPassword {
                user: rows::user(&row)?,
                password_hash: row.try_get("password_hash").map_err(db)?,
            })
        })
        .transpose()
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn get_account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row = query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts a WHERE a.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.as_ref().map(rows::account).transpose()
    }

    async fn list_accounts(&self) -> StoreResult<Vec<AccountSummary>> {
        let found = query(concat!(
            "SELECT ",
            account_columns!(),
            ", (SELECT COUNT(*) FROM users u WHERE u.account_id = a.id) AS users \
             FROM accounts a ORDER BY a.created_at, a.id"
        ))
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        found
            .iter()
            .map(|row| {
                Ok(AccountSummary {
                    account: rows::account(row)?,
                    users: row.try_get("users").map_err(db)?,
                })
            })
            .collect()
    }

    async fn list_users(&self, account: Option<AccountId>) -> StoreResult<Vec<User>> {
        let found = query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE ($1 IS NULL OR u.account_id = $1) \
             ORDER BY u.created_at, u.id"
        ))
        .bind(account.map(|id| id.to_string()))
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        found.iter().map(rows::user).collect()
    }
}
