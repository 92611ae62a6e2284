//! The OpenID Connect provider (SPEC §13): signing keys, clients, codes and tokens. Spending a
//! code or a refresh token is one conditional `UPDATE … WHERE used_at IS NULL`: of two
//! concurrent uses one matches, the other (waiting for the row lock on PostgreSQL, after the
//! first on SQLite's single writer) matches nothing and revokes the family instead.

use super::rows::{get, parse, time};
use super::{Backend, FOR_UPDATE, Row, events};
use crate::db;
use crate::query::query;
use async_trait::async_trait;
use tessera_core::Timestamp;
use tessera_core::crypto::TokenHash;
use tessera_core::model::{AccountId, SessionId};
use tessera_core::oidc_provider::{
    ClientRow, CodeRow, Grant, NewTokens, OidcStore, SigningKeyRow, Spent, TokenRow,
};
use tessera_core::store::{Effects, StoreError, StoreResult};

/// URIs are stored one a line (a registered URI has no whitespace).
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

const KEY_COLUMNS: &str = "id, alg, private_sealed, public_jwk, created_at, retired_at";

fn signing_key(row: &Row) -> StoreResult<SigningKeyRow> {
    Ok(SigningKeyRow {
        id: get(row, "id")?,
        alg: get(row, "alg")?,
        private_sealed: get(row, "private_sealed")?,
        public_jwk: get(row, "public_jwk")?,
        created_at: time(row, "created_at")?,
        retired_at: get::<Option<i64>>(row, "retired_at")?.map(Timestamp::from_unix),
    })
}

const CLIENT_COLUMNS: &str = "id, account_id, name, secret_hash, redirect_uris, \
                              post_logout_redirect_uris, id_token_alg, created_at";

fn client(row: &Row) -> StoreResult<ClientRow> {
    Ok(ClientRow {
        id: get(row, "id")?,
        account_id: get::<Option<String>>(row, "account_id")?
            .map(|id| id.parse::<AccountId>())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("account_id: {e}")))?,
        name: get(row, "name")?,
        secret_hash: get(row, "secret_hash")?,
        redirect_uris: lines(&get::<String>(row, "redirect_uris")?),
        post_logout_redirect_uris: lines(&get::<String>(row, "post_logout_redirect_uris")?),
        id_token_alg: get(row, "id_token_alg")?,
        created_at: time(row, "created_at")?,
    })
}

const GRANT_COLUMNS: &str = "grant_id, client_id, user_id, session_id, scope, auth_time, amr";

fn grant(row: &Row) -> StoreResult<Grant> {
    Ok(Grant {
        id: get(row, "grant_id")?,
        client_id: get(row, "client_id")?,
        user_id: parse(row, "user_id")?,
        session_id: get::<Option<String>>(row, "session_id")?
            .map(|id| id.parse::<SessionId>())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("session_id: {e}")))?,
        scope: get(row, "scope")?,
        auth_time: time(row, "auth_time")?,
        amr: get(row, "amr")?,
    })
}

fn code(row: &Row) -> StoreResult<(CodeRow, bool)> {
    let code = CodeRow {
        grant: grant(row)?,
        redirect_uri: get(row, "redirect_uri")?,
        nonce: get(row, "nonce")?,
        code_challenge: get(row, "code_challenge")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
    };
    Ok((code, get::<Option<i64>>(row, "used_at")?.is_some()))
}

fn token(row: &Row) -> StoreResult<(TokenRow, bool)> {
    let token = TokenRow {
        grant: grant(row)?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
    };
    let spent = get::<Option<i64>>(row, "used_at")?.is_some()
        || get::<Option<i64>>(row, "revoked_at")?.is_some();
    Ok((token, spent))
}

/// Writes the tokens of a grant.
async fn insert_tokens(tx: &mut super::Tx, tokens: &NewTokens) -> StoreResult<()> {
    let g = &tokens.grant;
    let refresh = tokens.refresh.as_ref();
    let rows = std::iter::once(("access", &tokens.access, tokens.access_expires_at))
        .chain(refresh.map(|(hash, expires)| ("refresh", hash, *expires)));
    for (kind, hash, expires_at) in rows {
        query(
            "INSERT INTO oidc_tokens (token_hash, kind, grant_id, client_id, user_id, \
             session_id, scope, auth_time, amr, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(hash.as_bytes())
        .bind(kind)
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(g.user_id.to_string())
        .bind(g.session_id.map(|s| s.to_string()))
        .bind(&g.scope)
        .bind(g.auth_time.unix())
        .bind(&g.amr)
        .bind(tokens.now.unix())
        .bind(expires_at.unix())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Revokes every token of a grant.
async fn revoke_grant(tx: &mut super::Tx, grant_id: &str, now: Timestamp) -> StoreResult<()> {
    query("UPDATE oidc_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL")
        .bind(grant_id)
        .bind(now.unix())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

#[async_trait]
impl OidcStore for Backend {
    async fn signing_keys(&self, published_since: Timestamp) -> StoreResult<Vec<SigningKeyRow>> {
        let rows = query(&format!(
            "SELECT {KEY_COLUMNS} FROM oidc_signing_keys \
             WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, id"
        ))
        .bind(published_since.unix())
        .fetch_all(self.reader())
        .await
        .map_err(db)?;
        rows.iter().map(signing_key).collect()
    }

    async fn add_signing_key(
        &self,
        key: &SigningKeyRow,
        rotate: bool,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        if rotate {
            query(
                "UPDATE oidc_signing_keys SET retired_at = $2 \
                 WHERE alg = $1 AND retired_at IS NULL",
            )
            .bind(&key.alg)
            .bind(key.created_at.unix())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        // The partial unique index keeps one current key per algorithm.
        let added = query(
            "INSERT INTO oidc_signing_keys (id, alg, private_sealed, public_jwk, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.alg)
        .bind(&key.private_sealed)
        .bind(&key.public_jwk)
        .bind(key.created_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if added {
            events::write(&mut tx, effects).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(added)
    }

    async fn create_client(&self, client: &ClientRow, effects: &Effects) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        query(&format!(
            "INSERT INTO oidc_clients ({CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&client.id)
        .bind(client.account_id.map(|a| a.to_string()))
        .bind(&client.name)
        .bind(client.secret_hash.as_ref())
        .bind(client.redirect_uris.join("\n"))
        .bind(client.post_logout_redirect_uris.join("\n"))
        .bind(&client.id_token_alg)
        .bind(client.created_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn find_client(&self, id: &str) -> StoreResult<Option<ClientRow>> {
        let row = query(&format!(
            "SELECT {CLIENT_COLUMNS} FROM oidc_clients WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.as_ref().map(client).transpose()
    }

    async fn list_clients(&self, account: Option<AccountId>) -> StoreResult<Vec<ClientRow>> {
        let rows = match account {
            None => query(&format!(
                "SELECT {CLIENT_COLUMNS} FROM oidc_clients WHERE account_id IS NULL \
                 ORDER BY created_at, id"
            ))
            .fetch_all(self.reader())
            .await
            .map_err(db)?,
            Some(account) => query(&format!(
                "SELECT {CLIENT_COLUMNS} FROM oidc_clients WHERE account_id = $1 \
                 ORDER BY created_at, id"
            ))
            .bind(account.to_string())
            .fetch_all(self.reader())
            .await
            .map_err(db)?,
        };
        rows.iter().map(client).collect()
    }

    async fn remove_client(
        &self,
        id: &str,
        account: Option<AccountId>,
        effects: &Effects,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await.map_err(db)?;
        // Its codes and tokens go with it (ON DELETE CASCADE).
        let removed = match account {
            None => {
                query("DELETE FROM oidc_clients WHERE id = $1 AND account_id IS NULL")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
            }
            Some(account) => {
                query("DELETE FROM oidc_clients WHERE id = $1 AND account_id = $2")
                    .bind(id)
                    .bind(account.to_string())
                    .execute(&mut *tx)
                    .await
            }
        }
        .map_err(db)?
        .rows_affected()
            > 0;
        if removed {
            events::write(&mut tx, effects).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(removed)
    }

    async fn create_code(
        &self,
        code: &TokenHash,
        row: &CodeRow,
        effects: &Effects,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await.map_err(db)?;
        let g = &row.grant;
        query(&format!(
            "INSERT INTO oidc_codes (code_hash, {GRANT_COLUMNS}, redirect_uri, nonce, \
             code_challenge, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(code.as_bytes())
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(g.user_id.to_string())
        .bind(g.session_id.map(|s| s.to_string()))
        .bind(&g.scope)
        .bind(g.auth_time.unix())
        .bind(&g.amr)
        .bind(&row.redirect_uri)
        .bind(row.nonce.as_deref())
        .bind(row.code_challenge.as_deref())
        .bind(row.created_at.unix())
        .bind(row.expires_at.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)
    }

    async fn find_code(&self, code_hash: &TokenHash) -> StoreResult<Option<(CodeRow, bool)>> {
        let row = query(&format!(
            "SELECT {GRANT_COLUMNS}, redirect_uri, nonce, code_challenge, created_at, \
             expires_at, used_at FROM oidc_codes WHERE code_hash = $1"
        ))
        .bind(code_hash.as_bytes())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.as_ref().map(code).transpose()
    }

    async fn spend_code(
        &self,
        code_hash: &TokenHash,
        tokens: &NewTokens,
        done: &Effects,
        reused: &Effects,
    ) -> StoreResult<Spent> {
        let now = tokens.now;
        let mut tx = self.begin().await.map_err(db)?;
        let spent = query(
            "UPDATE oidc_codes SET used_at = $2 \
             WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(code_hash.as_bytes())
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if spent {
            insert_tokens(&mut tx, tokens).await?;
            events::write(&mut tx, done).await?;
            tx.commit().await.map_err(db)?;
            return Ok(Spent::Done);
        }
        let row = query(&format!(
            "SELECT grant_id, used_at FROM oidc_codes WHERE code_hash = $1{FOR_UPDATE}"
        ))
        .bind(code_hash.as_bytes())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(Spent::Unknown);
        };
        if get::<Option<i64>>(&row, "used_at")?.is_none() {
            // Expired unused.
            return Ok(Spent::Unknown);
        }
        revoke_grant(&mut tx, &get::<String>(&row, "grant_id")?, now).await?;
        events::write(&mut tx, reused).await?;
        tx.commit().await.map_err(db)?;
        Ok(Spent::Reused)
    }

    async fn find_refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<(TokenRow, bool)>> {
        let row = query(&format!(
            "SELECT {GRANT_COLUMNS}, created_at, expires_at, used_at, revoked_at \
             FROM oidc_tokens WHERE token_hash = $1 AND kind = 'refresh'"
        ))
        .bind(token_hash.as_bytes())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        row.as_ref().map(token).transpose()
    }

    async fn spend_refresh_token(
        &self,
        token_hash: &TokenHash,
        tokens: &NewTokens,
        done: &Effects,
        reused: &Effects,
    ) -> StoreResult<Spent> {
        let now = tokens.now;
        let mut tx = self.begin().await.map_err(db)?;
        let spent = query(
            "UPDATE oidc_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND kind = 'refresh' AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2 \
             AND (session_id IS NULL \
                  OR EXISTS (SELECT 1 FROM sessions s WHERE s.id = oidc_tokens.session_id))",
        )
        .bind(token_hash.as_bytes())
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected()
            > 0;
        if spent {
            insert_tokens(&mut tx, tokens).await?;
            events::write(&mut tx, done).await?;
            tx.commit().await.map_err(db)?;
            return Ok(Spent::Done);
        }
        let row = query(&format!(
            "SELECT grant_id, used_at, revoked_at FROM oidc_tokens \
             WHERE token_hash = $1 AND kind = 'refresh'{FOR_UPDATE}"
        ))
        .bind(token_hash.as_bytes())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Ok(Spent::Unknown);
        };
        let used = get::<Option<i64>>(&row, "used_at")?.is_some()
            || get::<Option<i64>>(&row, "revoked_at")?.is_some();
        if !used {
            // Expired unused.
            return Ok(Spent::Unknown);
        }
        revoke_grant(&mut tx, &get::<String>(&row, "grant_id")?, now).await?;
        events::write(&mut tx, reused).await?;
        tx.commit().await.map_err(db)?;
        Ok(Spent::Reused)
    }

    async fn find_access_token(
        &self,
        token_hash: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<TokenRow>> {
        let row = query(&format!(
            "SELECT {GRANT_COLUMNS}, created_at, expires_at, used_at, revoked_at \
             FROM oidc_tokens WHERE token_hash = $1 AND kind = 'access' \
             AND revoked_at IS NULL AND expires_at > $2"
        ))
        .bind(token_hash.as_bytes())
        .bind(now.unix())
        .fetch_optional(self.reader())
        .await
        .map_err(db)?;
        Ok(row.as_ref().map(token).transpose()?.map(|(t, _)| t))
    }

    async fn revoke_session_tokens(
        &self,
        session: SessionId,
        now: Timestamp,
        effects: &Effects,
    ) -> StoreResult<u64> {
        let mut tx = self.begin().await.map_err(db)?;
        let revoked = query(
            "UPDATE oidc_tokens SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL",
        )
        .bind(session.to_string())
        .bind(now.unix())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        events::write(&mut tx, effects).await?;
        tx.commit().await.map_err(db)?;
        Ok(revoked)
    }
}
