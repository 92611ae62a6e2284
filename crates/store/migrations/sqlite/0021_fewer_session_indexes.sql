-- `sessions_user_created_idx` (user_id, created_at, id) answers every lookup by user that
-- `sessions_user_idx` (user_id) did: one B-tree less to change for each session opened or
-- ended (a second step writes about ten pages; see bench/RESULTS.md).
DROP INDEX sessions_user_idx;
