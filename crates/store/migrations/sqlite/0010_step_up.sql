-- SPEC §9: sensitive actions need the session to have authenticated within the last 15
-- minutes. `reauthenticated_at` is when the session's step-up window last started: its
-- sign-in, a re-authentication, or its last sensitive action. A session opened before this
-- column existed counts as authenticated when it was opened.
ALTER TABLE sessions ADD COLUMN reauthenticated_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET reauthenticated_at = created_at;
