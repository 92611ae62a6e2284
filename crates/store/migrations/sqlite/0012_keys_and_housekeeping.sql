-- SPEC §14. The master-key guard: one row naming the key the data is sealed under (its
-- fingerprint, an HMAC of a fixed label) and the MAC keys sealed under it. Written at the
-- first start with a key, replaced by `tessera admin rotate-master-key`.
CREATE TABLE key_check (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint     BLOB NOT NULL,
    mac_keys_sealed BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    rotated_at      INTEGER
);

-- A user's sessions, oldest first: the cap of live sessions ends the oldest, and the list
-- is paged in this order.
CREATE INDEX sessions_user_created_idx ON sessions (user_id, created_at, id);

-- Housekeeping deletes by age: sent emails after 30 days, events after the retention.
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE status = 'sent';
CREATE INDEX security_events_created_idx ON security_events (created_at);
