-- `sessions_user_created_idx` (user_id, created_at, id) answers every lookup by user that
-- `sessions_user_idx` (user_id) did: one B-tree less to change for each session opened or
-- ended (a second step writes about ten pages; see bench/RESULTS.md).
DROP INDEX sessions_user_idx;

-- A challenge's or user's deletion finds the WebAuthn ceremonies it cascades to by index,
-- not by reading them all (a challenge is deleted by every second step).
CREATE INDEX webauthn_ceremonies_challenge_idx ON webauthn_ceremonies (challenge_id);
CREATE INDEX webauthn_ceremonies_user_idx ON webauthn_ceremonies (user_id);

-- A user's challenges are ended by user: a device sign-in replaces the user's open device
-- challenge, a password change or 2FA turned off ends them all. Without this index each
-- read every challenge of every user.
CREATE INDEX login_challenges_user_idx ON login_challenges (user_id);
