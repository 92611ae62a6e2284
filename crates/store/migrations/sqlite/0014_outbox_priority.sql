-- The outbox sends what someone is waiting for first (device codes, reset and sign-up links),
-- then one person's security notices, then team-wide bulk mail (the reliability review's D5).
-- 0 interactive, 1 notice, 2 bulk; emails queued before this column existed count as notices.
ALTER TABLE outbox ADD COLUMN priority SMALLINT NOT NULL DEFAULT 1;
DROP INDEX outbox_due_idx;
CREATE INDEX outbox_due_idx ON outbox (status, priority, next_attempt_at);
