-- One row that readiness checks (`GET /health/ready`) write and commit: proof that the
-- database takes a write now, not only a read.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at BIGINT NOT NULL
);
INSERT INTO heartbeat (id, at) VALUES (1, 0);
