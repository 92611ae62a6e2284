-- Accounts (teams), users, sessions, the audit log and throttle counters.
-- Times are Unix seconds; ids are UUID text; tokens are stored only as SHA-256 hashes.

CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    two_factor_required INTEGER NOT NULL DEFAULT 0,
    grace_period_until  INTEGER,
    created_at          INTEGER NOT NULL
);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    auth_source      TEXT NOT NULL DEFAULT 'password' CHECK (auth_source IN ('password', 'sso')),
    password_hash    TEXT,
    created_at       INTEGER NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email_normalized)
);
CREATE INDEX users_account_idx ON users (account_id);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    kind       TEXT NOT NULL CHECK (kind IN ('full', 'setup_only')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    ip         TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);

CREATE TABLE security_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    user_id    TEXT REFERENCES users (id) ON DELETE SET NULL,
    email      TEXT,
    kind       TEXT NOT NULL,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX security_events_user_idx ON security_events (user_id, id);
CREATE INDEX security_events_account_idx ON security_events (account_id, id);

CREATE TABLE throttles (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER,
    PRIMARY KEY (scope, key)
);
