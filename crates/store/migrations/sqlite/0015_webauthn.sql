-- Security keys and passkeys (SPEC §10). A credential is kept as webauthn-rs stores it (its
-- public key and settings, JSON, nothing secret), with the signature counter beside it so
-- that accepting an assertion is one compare-and-set: a counter that does not rise is refused.

CREATE TABLE webauthn_credentials (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    sign_count    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX webauthn_credentials_user_idx ON webauthn_credentials (user_id, created_at);

-- A ceremony's state, kept server-side until its challenge is answered or expires: a
-- registration (one per user, restarting replaces it), the second step of a login challenge
-- (dies with the challenge), a passkey sign-in (found by its token's hash, taken once), or a
-- re-authentication of a session (taken by the answer).
CREATE TABLE webauthn_ceremonies (
    ceremony_key BLOB PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('register', 'second_step', 'passkey', 'reauth')),
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    challenge_id TEXT REFERENCES login_challenges (id) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry_idx ON webauthn_ceremonies (expires_at);

-- The paper key of a user whose first factor was a security key (a TOTP factor keeps its
-- own, as before): it backs up every factor.
CREATE TABLE paper_keys (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    paper_key_hash BLOB NOT NULL,
    created_at     INTEGER NOT NULL
);

DROP VIEW active_factors;
CREATE VIEW active_factors (user_id, kind, enabled_at) AS
    SELECT user_id, 'totp', enabled_at FROM totp_factors
    UNION ALL
    SELECT user_id, 'webauthn', MIN(created_at) FROM webauthn_credentials GROUP BY user_id;
