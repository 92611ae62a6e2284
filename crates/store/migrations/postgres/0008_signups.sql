-- Sign-ups waiting for their emailed link (SPEC §8). The token is stored only as its SHA-256
-- hash; the link travels in the (sealed) outbox email. A row reserves nothing: no user, no
-- account, no unique email, so several may wait for one address and an invitation of it
-- still works. The password is kept only as its argon2id hash (NULL: a team the operator
-- created, whose owner chooses it at the link). `used_at` is set once, by the transaction
-- that creates the team.

CREATE TABLE signups (
    id               TEXT PRIMARY KEY,
    token_hash       BYTEA NOT NULL UNIQUE,
    account_name     TEXT NOT NULL,
    name             TEXT NOT NULL,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    password_hash    TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT
);
