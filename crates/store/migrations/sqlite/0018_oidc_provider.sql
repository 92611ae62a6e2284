-- SPEC §13: Tessera as an OpenID Connect provider.

-- How each session was authenticated (`password`, `totp`, `trusted_device`, …): the `amr` of
-- the ID tokens issued on it. NULL for sessions opened before this migration.
ALTER TABLE sessions ADD COLUMN method TEXT;

-- The keys ID tokens are signed with, the private half sealed under the master key. One
-- current key per algorithm (`retired_at IS NULL`); a retired key stays in the JWKS until
-- `retired_at` plus the ID-token lifetime.
CREATE TABLE oidc_signing_keys (
    id             TEXT PRIMARY KEY,
    alg            TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    private_sealed BLOB NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    retired_at     INTEGER
);
CREATE UNIQUE INDEX oidc_signing_keys_current_key ON oidc_signing_keys (alg) WHERE retired_at IS NULL;

-- Relying parties: registered by the operator (no account) or by a team's owner.
CREATE TABLE oidc_clients (
    id                        TEXT PRIMARY KEY,
    account_id                TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    name                      TEXT NOT NULL,
    secret_hash               BLOB,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    id_token_alg              TEXT NOT NULL CHECK (id_token_alg IN ('RS256', 'ES256')),
    created_at                INTEGER NOT NULL
);
CREATE INDEX oidc_clients_account_idx ON oidc_clients (account_id);

-- Authorization codes (hashed): single use, 60 s. `grant_id` names what the exchange issues,
-- so that a second use can revoke it.
CREATE TABLE oidc_codes (
    code_hash      BLOB PRIMARY KEY,
    grant_id       TEXT NOT NULL,
    client_id      TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id     TEXT,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      INTEGER NOT NULL,
    amr            TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);
CREATE INDEX oidc_codes_expiry_idx ON oidc_codes (expires_at);

-- Access tokens (10 min) and refresh tokens (rotated), hashed; one grant (family) each.
CREATE TABLE oidc_tokens (
    token_hash BLOB PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id TEXT,
    scope      TEXT NOT NULL,
    auth_time  INTEGER NOT NULL,
    amr        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);
CREATE INDEX oidc_tokens_grant_idx ON oidc_tokens (grant_id);
CREATE INDEX oidc_tokens_session_idx ON oidc_tokens (session_id);
CREATE INDEX oidc_tokens_expiry_idx ON oidc_tokens (expires_at);
