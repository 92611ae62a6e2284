-- Second factors: a pending TOTP enrollment, the active TOTP factor with its paper key and
-- replay mark, one-time recovery codes, and the login challenges between password and code.
-- Secrets are sealed (AEAD); codes and keys are keyed hashes.

CREATE TABLE totp_enrollments (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  BLOB NOT NULL,
    paper_key_hash BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);

CREATE TABLE totp_factors (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  BLOB NOT NULL,
    paper_key_hash BLOB NOT NULL,
    last_step      INTEGER NOT NULL,
    enabled_at     INTEGER NOT NULL
);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE login_challenges (
    id         TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('two_factor', 'device')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX login_challenges_expiry_idx ON login_challenges (expires_at);
