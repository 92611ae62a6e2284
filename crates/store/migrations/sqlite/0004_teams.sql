-- Invitations to join an account. The token is stored only as its SHA-256 hash; the link
-- itself travels in the (sealed) outbox email. At most one invitation per account and email
-- is pending (other accounts may invite the same person): one past its time is marked
-- expired before a new one is written.

CREATE TABLE invitations (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash       BLOB NOT NULL UNIQUE,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    invited_by       TEXT REFERENCES users (id) ON DELETE SET NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    closed_at        INTEGER
);
CREATE UNIQUE INDEX invitations_pending_key ON invitations (account_id, email_normalized)
    WHERE status = 'pending';
CREATE INDEX invitations_inviter_idx ON invitations (invited_by) WHERE status = 'pending';
CREATE INDEX invitations_account_idx ON invitations (account_id, status);
