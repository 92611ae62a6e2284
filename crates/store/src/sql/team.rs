//! Running a team: the account's 2FA policy, invitations, deleting users, the account's log.

use super::events::{self, Owner};
use super::rows::{self, account_columns, invitation_columns, two_factor_on, user_columns};
use super::{Backend, FOR_UPDATE, accounts};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::crypto::TokenHash;
use tessera_core::model::{
    Account, AccountId, Invitation, InvitationId, SecurityEvent, TrustedDevices, User, UserId,
};
use tessera_core::store::{Effects, StoreError, StoreResult, Unique};
use tessera_core::team::{TeamStore, TeamUser};
use tessera_core::throttle::Scope;

#[async_trait]
impl TeamStore for Backend {
    async fn team_members(&self, account: AccountId) -> StoreResult<Vec<TeamUser>> {
        let found = query(concat!(
            "SELECT ",
            user_columns!(),
            ", ",
            two_factor_on!("u.id"),
            " AS two_factor_enabled \
             FROM users u WHERE u.account_id = $1 ORDER BY u.created_at, u.id"
        ))
        .bind(account.to_string())
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        found
            .iter()
            .map(|row| {
                Ok(TeamUser {
                    user: rows::user(row)?,
                    two_factor_enabled: row.try_get("two_factor_enabled").map_err(db)?,
                })
            })
            .collect()
    }

    async fn set_two_factor_policy(
        &self,
        account: AccountId,
        required: bool,
        grace_period_until: Option<Timestamp>,
        effects: &Effects,
        turned_on: &Effects,
    ) -> StoreResult<Option<Account>> {
        let mut tx = self.begin().await.map_err(db)?;
        // Read the flag under the row lock (PostgreSQL; SQLite has one writer), so that of two
        // concurrent changes one waits for the other and both see what they replace.
        let was = query(&format!(
            "SELECT two_factor_required FROM accounts WHERE id = $1{FOR_UPDATE}"
        ))
        .bind(account.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(was) = was else {
            return Ok(None);
        };
        let was: bool = was.try_get(0).map_err(db)?;
        query(
            "UPDATE accounts SET two_factor_required = $2, grace_period_until = $3 WHERE id = $1",
        )
        .bind(account.to_string())
        .bind(required)
        .bind(grace_period_until.map(Timestamp::unix))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let row = query(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts a WHERE a.id = $1"
        ))
        .bind(account.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        events::write(&mut tx, effects).await?;
        if required && !was {
            events::write(&mut tx, turned_on).await?;
        }
        tx.commit().await.map_err(db)?;
        rows::account(&row).map(Some)
    }

    async fn set_trusted_devices_policy(
        &self,
        account: AccountId,
        policy: TrustedDevices,
        effects: &Effects,
    ) -> StoreResult<Option<Account>> {
        let mut tx = self.begin().await.map_err(db)?;
        let row = query(concat!(
            "UPDATE accounts SET trusted_devices = $2 WHERE id = $1 RETURNING ",
            "id AS account_id, name AS account_name, \
             two_factor_required AS account_two_factor_required, \
             grace_period_until AS account_grace_period_until, \
             trusted_devices AS account_trusted_devices, \
             sso_two_factor AS account_sso_two_factor, created_at AS account_created_at"
        ))
        .bind(account.to_string())
        .bind(policy.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        if policy == TrustedDevices::Forbidden {
            query(
                "UPDATE devices SET trusted_until = NULL WHERE trusted_until IS NOT NULL \
                 AND user_id IN (SELECT id FROM users WHERE account_id = $1)",
            )
            .bind(account.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        rows::account(&row).map(Some)
    }

    async fn create_invitation(
        &self,
        invitation: &Invitation,
        token: &TokenHash,
        effects: &Effects,
    ) -> StoreResult<()> {
        let email = invitation.email.normalized();
        let mut tx = self.begin().await.map_err(db)?;
        // Only a member of the inviting account conflicts here: the manager sees those in
        // the team list anyway. Someone else's user gets a pending invitation like anyone
        // (it fails at acceptance), so the answer does not tell which emails are registered.
        let member = query("SELECT 1 FROM users WHERE email_normalized = $1 AND account_id = $2")
            .bind(email)
            .bind(invitation.account_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if member.is_some() {
            return Err(StoreError::Conflict(Unique::Email));
        }
        query(
            "UPDATE invitations SET status = 'expired', closed_at = $2 \
             WHERE email_normalized = $1 AND account_id = $3 AND status = 'pending' \
             AND expires_at <= $2",
        )
        .bind(email)
        .bind(invitation.created_at.unix())
        .bind(invitation.account_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let inserted = query(
            "INSERT INTO invitations (id, account_id, token_hash, email, email_normalized, name, \
             role, invited_by, status, created_at, expires_at, auth_source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(invitation.id.to_string())
        .bind(invitation.account_id.to_string())
        .bind(token.as_bytes())
        .bind(invitation.email.as_str())
        .bind(email)
        .bind(&invitation.name)
        .bind(invitation.role.as_str())
        .bind(invitation.invited_by.map(|id| id.to_string()))
        .bind(invitation.status.as_str())
        .bind(invitation.created_at.unix())
        .bind(invitation.expires_at.unix())
        .bind(invitation.auth_source.as_str())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if e.unique_violation().is_some() => {
                return Err(StoreError::Conflict(Unique::OpenInvitation));
            }
            other => other.map_err(db)?,
        };
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn open_invitations(
        &self,
        account: AccountId,
        now: Timestamp,
    ) -> StoreResult<Vec<Invitation>> {
        let found = query(concat!(
            "SELECT ",
            invitation_columns!(),
            " FROM invitations i WHERE i.account_id = $1 AND i.status = 'pending' \
             AND i.expires_at > $2 ORDER BY i.created_at DESC, i.id DESC"
        ))
        .bind(account.to_string())
        .bind(now.unix())
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        found.iter().map(rows::invitation).collect()
    }

    async fn find_invitation(&self, token: &TokenHash) -> StoreResult<Option<Invitation>> {
        let row = query(concat!(
            "SELECT ",
            invitation_columns!(),
            " FROM invitations i WHERE i.token_hash = $1"
        ))
        .bind(token.as_bytes())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.as_ref().map(rows::invitation).transpose()
    }

    async fn revoke_invitation(
        &self,
        account: AccountId,
        id: InvitationId,
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        let revoked = query(
            "UPDATE invitations SET status = 'revoked', closed_at = $3 \
             WHERE id = $1 AND account_id = $2 AND status = 'pending' AND expires_at > $3",
        )
        .bind(id.to_string())
        .bind(account.to_string())
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        events::settle(tx, revoked, effects).await
    }

    async fn accept_invitation(
        &self,
        id: InvitationId,
        now: Timestamp,
        user: &User,
        password_hash: &str,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        let taken = query(
            "UPDATE invitations SET status = 'accepted', closed_at = $2 \
             WHERE id = $1 AND status = 'pending' AND expires_at > $2",
        )
        .bind(id.to_string())
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if !taken {
            return Ok(false);
        }
        accounts::insert_user(&mut tx, user, password_hash).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn delete_user(
        &self,
        user: UserId,
        throttles: &[(Scope, String)],
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        // What they sent goes with them: a removed admin cannot come back through an
        // invitation of their own.
        query(
            "UPDATE invitations SET status = 'revoked', closed_at = $2 \
             WHERE invited_by = $1 AND status = 'pending'",
        )
        .bind(user.to_string())
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        // In the order a second step locks rows (challenge, throttle, then the user's), so
        // the two cannot deadlock on PostgreSQL.
        query("DELETE FROM login_challenges WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for (scope, key) in throttles {
            query("DELETE FROM throttles WHERE scope = $1 AND key = $2")
                .bind(scope.as_str())
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        // Sessions, factors, codes and devices go by `ON DELETE CASCADE`.
        let deleted = query("DELETE FROM users WHERE id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected()
            > 0;
        if !deleted {
            return Ok(false);
        }
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn account_events(
        &self,
        account: AccountId,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<SecurityEvent>> {
        events::page(self, Owner::Account, &account.to_string(), before, limit).await
    }
}
