-- One row per active factor, each security key its own: the view of 0015 grouped the keys
-- per user, and a view with an aggregate arm cannot take a correlated `user_id = …` inside
-- it, so SQLite read every TOTP factor of every user to answer "has this user 2FA?" on each
-- request (`GET /me` fell from about 30,000/s to 48/s on the benchmark's database). Readers ask
-- for what they need per user: EXISTS, the earliest `enabled_at`, the distinct kinds.
DROP VIEW active_factors;
CREATE VIEW active_factors (user_id, kind, enabled_at) AS
    SELECT user_id, 'totp', enabled_at FROM totp_factors
    UNION ALL
    SELECT user_id, 'webauthn', created_at FROM webauthn_credentials;
