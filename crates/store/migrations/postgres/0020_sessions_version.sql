-- Moves on with every session opened for the user (under the user's row lock): a second step
-- answered in one statement writes only if it is still what it read, so that no session of
-- theirs committed meanwhile escapes the cap of sessions per user (see `sql/sessions.rs`).
ALTER TABLE users ADD COLUMN sessions_version BIGINT NOT NULL DEFAULT 0;
