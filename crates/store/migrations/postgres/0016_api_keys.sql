-- SPEC §11. API keys: found by the keyed hash (HMAC-SHA256) of the key, never the key; the
-- first 8 characters are kept to recognize it by. Grants and allowed addresses are
-- space-separated names and canonical CIDR texts. A revoked key stays (its uses are refused
-- and audited) and is listed no more; a key goes with its creator or its account.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_by   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash     BYTEA NOT NULL,
    prefix       TEXT NOT NULL,
    label        TEXT NOT NULL,
    grants       TEXT NOT NULL,
    allowed_ips  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    last_used_ip TEXT,
    revoked_at   BIGINT,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
CREATE INDEX api_keys_account_idx ON api_keys (account_id, created_at);
CREATE INDEX api_keys_created_by_idx ON api_keys (created_by);
