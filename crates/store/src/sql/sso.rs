//! Single sign-on: the team's connection and its domains, pending sign-ins taken once, and
//! the identities linked to users.

use super::rows::{self, account_columns, user_columns};
use super::{Backend, Row, events};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::crypto::TokenHash;
use tessera_core::model::{Account, AccountId, AuthSource, InvitationId, SsoTwoFactor, User};
use tessera_core::sso::{PendingSsoLogin, SsoConnection, SsoIdentity, SsoStore};
use tessera_core::store::{Effects, StoreError, StoreResult};

const CONNECTION_COLUMNS: &str = "c.account_id AS c_account_id, c.issuer AS c_issuer, \
     c.client_id AS c_client_id, c.client_secret_sealed AS c_secret, \
     c.jit_provisioning AS c_jit, c.updated_at AS c_updated_at";

const LOGIN_COLUMNS: &str =
    "id, state_hash, account_id, issuer, secrets_sealed, browser_bound, created_at, expires_at";

fn connection(row: &Row, email_domains: Vec<String>) -> StoreResult<SsoConnection> {
    let account: String = row.try_get("c_account_id").map_err(db)?;
    Ok(SsoConnection {
        account_id: account
            .parse()
            .map_err(|e: uuid::Error| StoreError::Corrupt(e.to_string()))?,
        issuer: row.try_get("c_issuer").map_err(db)?,
        client_id: row.try_get("c_client_id").map_err(db)?,
        client_secret_sealed: row.try_get("c_secret").map_err(db)?,
        email_domains,
        jit_provisioning: row.try_get("c_jit").map_err(db)?,
        updated_at: Timestamp::from_unix(row.try_get("c_updated_at").map_err(db)?),
    })
}

fn login(row: &Row) -> StoreResult<PendingSsoLogin> {
    let account: String = row.try_get("account_id").map_err(db)?;
    let state: Vec<u8> = row.try_get("state_hash").map_err(db)?;
    let state: [u8; 32] = state
        .try_into()
        .map_err(|_| StoreError::Corrupt("an SSO state hash is not 32 bytes".into()))?;
    Ok(PendingSsoLogin {
        id: row.try_get("id").map_err(db)?,
        state: TokenHash(state),
        account_id: account
            .parse()
            .map_err(|e: uuid::Error| StoreError::Corrupt(e.to_string()))?,
        issuer: row.try_get("issuer").map_err(db)?,
        secrets_sealed: row.try_get("secrets_sealed").map_err(db)?,
        browser_bound: row.try_get("browser_bound").map_err(db)?,
        created_at: Timestamp::from_unix(row.try_get("created_at").map_err(db)?),
        expires_at: Timestamp::from_unix(row.try_get("expires_at").map_err(db)?),
    })
}

/// Inserts a user without password (auth source `sso`) and links `identity` to them.
async fn insert_sso_user(
    tx: &mut super::Tx,
    user: &User,
    identity: &SsoIdentity,
) -> StoreResult<()> {
    query(
        "INSERT INTO users (id, account_id, email, email_normalized, name, role, \
         auth_source, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)",
    )
    .bind(user.id.to_string())
    .bind(user.account_id.to_string())
    .bind(user.email.as_str())
    .bind(user.email.normalized())
    .bind(&user.name)
    .bind(user.role.as_str())
    .bind(AuthSource::Sso.as_str())
    .bind(user.created_at.unix())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    query(
        "INSERT INTO sso_identities (issuer, subject, user_id, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&identity.issuer)
    .bind(&identity.subject)
    .bind(identity.user_id.to_string())
    .bind(identity.created_at.unix())
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

impl Backend {
    async fn domains_of(&self, account: &str) -> StoreResult<Vec<String>> {
        query("SELECT domain FROM sso_domains WHERE account_id = $1 ORDER BY domain")
            .bind(account)
            .fetch_all(self.reader())
            .await
            .map_err(db)?
            .iter()
            .map(|row| row.try_get::<String, _>("domain").map_err(db))
            .collect()
    }
}

#[async_trait]
impl SsoStore for Backend {
    async fn sso_connection(&self, account: AccountId) -> StoreResult<Option<SsoConnection>> {
        let account = account.to_string();
        let row = query(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM sso_connections c WHERE c.account_id = $1"
        ))
        .bind(&account)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        match row {
            Some(row) => Ok(Some(connection(&row, self.domains_of(&account).await?)?)),
            None => Ok(None),
        }
    }

    async fn sso_connection_for_domain(
        &self,
        domain: &str,
    ) -> StoreResult<Option<(SsoConnection, Account)>> {
        let row = query(&format!(
            "SELECT {CONNECTION_COLUMNS}, {} FROM sso_domains d \
             JOIN sso_connections c ON c.account_id = d.account_id \
             JOIN accounts a ON a.id = c.account_id WHERE d.domain = $1",
            account_columns!()
        ))
        .bind(domain)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        let Some(row) = row else { return Ok(None) };
        let account = rows::account(&row)?;
        let domains = self.domains_of(&account.id.to_string()).await?;
        Ok(Some((connection(&row, domains)?, account)))
    }

    async fn save_sso_connection(
        &self,
        c: &SsoConnection,
        mode: SsoTwoFactor,
        effects: &Effects,
    ) -> StoreResult<()> {
        let account = c.account_id.to_string();
        let mut tx = self.begin().await.map_err(db)?;
        query(
            "INSERT INTO sso_connections (account_id, issuer, client_id, client_secret_sealed, \
             jit_provisioning, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account_id) DO UPDATE SET issuer = $2, client_id = $3, \
             client_secret_sealed = $4, jit_provisioning = $5, updated_at = $6",
        )
        .bind(&account)
        .bind(&c.issuer)
        .bind(&c.client_id)
        .bind(&c.client_secret_sealed)
        .bind(c.jit_provisioning)
        .bind(c.updated_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        query("DELETE FROM sso_domains WHERE account_id = $1")
            .bind(&account)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for domain in &c.email_domains {
            // A domain of another team's breaks the primary key: `Conflict(SsoDomain)`, and
            // dropping the transaction rolls everything back.
            query("INSERT INTO sso_domains (domain, account_id) VALUES ($1, $2)")
                .bind(domain)
                .bind(&account)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        query("UPDATE accounts SET sso_two_factor = $2 WHERE id = $1")
            .bind(&account)
            .bind(mode.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn create_sso_login(&self, l: &PendingSsoLogin) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        query(&format!(
            "INSERT INTO sso_logins ({LOGIN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&l.id)
        .bind(l.state.as_bytes())
        .bind(l.account_id.to_string())
        .bind(&l.issuer)
        .bind(&l.secrets_sealed)
        .bind(l.browser_bound)
        .bind(l.created_at.unix())
        .bind(l.expires_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn take_sso_login(&self, state: &TokenHash) -> StoreResult<Option<PendingSsoLogin>> {
        let mut tx = self.begin().await.map_err(db)?;
        // One statement: of two callbacks with the same state, only one deletes the row.
        let row = query(&format!(
            "DELETE FROM sso_logins WHERE state_hash = $1 RETURNING {LOGIN_COLUMNS}"
        ))
        .bind(state.as_bytes())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row.as_ref().map(login).transpose()
    }

    async fn find_sso_identity(&self, issuer: &str, subject: &str) -> StoreResult<Option<User>> {
        let row = query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM sso_identities i JOIN users u ON u.id = i.user_id \
             WHERE i.issuer = $1 AND i.subject = $2"
        ))
        .bind(issuer)
        .bind(subject)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.as_ref().map(rows::user).transpose()
    }

    async fn link_sso_identity(
        &self,
        identity: &SsoIdentity,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        let linked = query(
            "INSERT INTO sso_identities (issuer, subject, user_id, created_at) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE id = $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&identity.issuer)
        .bind(&identity.subject)
        .bind(identity.user_id.to_string())
        .bind(identity.created_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        events::settle(tx, linked, effects).await
    }

    async fn provision_sso_user(
        &self,
        user: &User,
        identity: &SsoIdentity,
        effects: &Effects,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        insert_sso_user(&mut tx, user, identity).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn accept_sso_invitation(
        &self,
        invitation: InvitationId,
        now: Timestamp,
        user: &User,
        identity: &SsoIdentity,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        // The one statement two racing first sign-ins cannot both pass.
        let taken = query(
            "UPDATE invitations SET status = 'accepted', closed_at = $2 \
             WHERE id = $1 AND status = 'pending' AND expires_at > $2 AND auth_source = 'sso'",
        )
        .bind(invitation.to_string())
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if !taken {
            return Ok(false);
        }
        insert_sso_user(&mut tx, user, identity).await?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn sso_users(&self, account: AccountId) -> StoreResult<Vec<User>> {
        query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.account_id = $1 AND u.auth_source = 'sso' \
             ORDER BY u.created_at, u.id"
        ))
        .bind(account.to_string())
        .fetch_all(self.reader())
        .await
        .map_err(db)?
        .iter()
        .map(rows::user)
        .collect()
    }
}
