-- Devices that passed email verification (SPEC §3: token stored hashed, bound to the user and
-- the User-Agent, 30-day lifetime), the emailed code of a device challenge (hashed) with when
-- it was last sent (the resend wait), and when codes were sent (at most 5 in any hour).

CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   BYTEA NOT NULL UNIQUE,
    user_agent   TEXT,
    ip           TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX devices_user_idx ON devices (user_id);

ALTER TABLE login_challenges ADD COLUMN code_hash BYTEA;
ALTER TABLE login_challenges ADD COLUMN last_sent_at BIGINT;

CREATE TABLE email_code_sends (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sent_at BIGINT NOT NULL
);
CREATE INDEX email_code_sends_user_idx ON email_code_sends (user_id, sent_at);
