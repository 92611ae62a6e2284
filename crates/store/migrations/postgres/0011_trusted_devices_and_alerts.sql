-- SPEC §9. Trusted devices: a device may skip the second step until `trusted_until` (set
-- when "Don't ask again on this device" is ticked; cleared when the password changes or 2FA
-- goes off), while its account allows it (`trusted_devices`).
ALTER TABLE devices ADD COLUMN trusted_until BIGINT;
ALTER TABLE accounts ADD COLUMN trusted_devices TEXT NOT NULL DEFAULT 'allowed'
    CHECK (trusted_devices IN ('allowed', 'forbidden'));

-- Where a login challenge was opened from (the unfinished-sign-in alert names it after the
-- request is gone), and the device it was opened on, if that device was known then.
ALTER TABLE login_challenges ADD COLUMN ip TEXT;
ALTER TABLE login_challenges ADD COLUMN user_agent TEXT;
ALTER TABLE login_challenges ADD COLUMN device_id TEXT;

-- Security alerts by email: when each user was last sent each kind, so that each goes at
-- most once in its interval (one conditional upsert decides, under the row's lock).
CREATE TABLE security_alerts (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind)
);
