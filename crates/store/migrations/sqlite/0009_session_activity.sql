-- SPEC §8: sessions end after 30 minutes without activity. The last activity is written at
-- most once a minute per session; a session opened before this column existed counts as
-- active when it was opened.
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;
