-- Password reset links (SPEC §8): the token stored only as its SHA-256, valid 1 h, used once
-- (or retired by a change of password); the times links were made count against the user's
-- 3 an hour. They go with their user.

CREATE TABLE password_resets (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id, created_at);
