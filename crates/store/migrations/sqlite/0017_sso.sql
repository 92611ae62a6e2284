-- Single sign-on (SPEC §12). A team's identity provider: issuer, client id, the client
-- secret sealed under the master key (label "sso", bound to the account id), whether a first
-- sign-in creates a member. How the team's 2FA requirement treats SSO users is the
-- account's own column.

ALTER TABLE accounts ADD COLUMN sso_two_factor TEXT NOT NULL DEFAULT 'exempt'
    CHECK (sso_two_factor IN ('exempt', 'disable_sso'));

-- An invitation says how the invitee will sign in: a password they choose, or SSO.
ALTER TABLE invitations ADD COLUMN auth_source TEXT NOT NULL DEFAULT 'password'
    CHECK (auth_source IN ('password', 'sso'));

CREATE TABLE sso_connections (
    account_id           TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    issuer               TEXT NOT NULL,
    client_id            TEXT NOT NULL,
    client_secret_sealed BLOB NOT NULL,
    jit_provisioning     INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

-- An email domain selects one team's provider.
CREATE TABLE sso_domains (
    domain     TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES sso_connections (account_id) ON DELETE CASCADE
);
CREATE INDEX sso_domains_account_idx ON sso_domains (account_id);

-- A person at a provider (iss, sub) is one user; a user has one identity per issuer.
CREATE TABLE sso_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE UNIQUE INDEX sso_identities_user_idx ON sso_identities (user_id, issuer);

-- Sign-ins sent to the provider: the state only as its SHA-256, the nonce and PKCE verifier
-- sealed (bound to the id); taken once by the callback, valid 10 min.
CREATE TABLE sso_logins (
    id             TEXT PRIMARY KEY,
    state_hash     BLOB NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    issuer         TEXT NOT NULL,
    secrets_sealed BLOB NOT NULL,
    browser_bound  INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX sso_logins_expires_idx ON sso_logins (expires_at);
