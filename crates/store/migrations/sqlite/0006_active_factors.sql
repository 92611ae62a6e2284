-- "2FA on" means "any active second factor": one row per active factor of a user, whatever
-- its kind. A new kind of factor adds its table to this view, and nothing else asks.
CREATE VIEW active_factors (user_id, kind, enabled_at) AS
    SELECT user_id, 'totp', enabled_at FROM totp_factors;
