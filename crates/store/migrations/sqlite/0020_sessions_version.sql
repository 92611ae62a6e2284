-- PostgreSQL's users move this on with every session opened (see its migration 0019); SQLite
-- has one writer and never needs it, but reads it with the rest: it stays 0 here.
ALTER TABLE users ADD COLUMN sessions_version INTEGER NOT NULL DEFAULT 0;
