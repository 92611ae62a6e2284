//! The security numbers of SPEC §3, in one place, with the spec's values as defaults.
//! Operators may change them in the `[security]` table of the configuration file.

use crate::codes::CodeFormat;
use crate::throttle::{Lockout, Window};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityPolicy {
    /// Absolute lifetime of a session, in seconds (SPEC §8: 12 h; `TESSERA_SESSION_HOURS`).
    pub session_lifetime_secs: i64,
    /// A session with no request for this long ends, in seconds (SPEC §8: 30 min;
    /// `TESSERA_SESSION_IDLE_MINUTES`).
    pub session_idle_secs: i64,
    /// How long after an authentication of a session its sensitive actions are allowed, in
    /// seconds (SPEC §9: 15 min; `TESSERA_REAUTH_MINUTES`). Each sensitive action restarts it.
    pub reauth_window_secs: i64,
    /// Whether the powers that amount to account recovery (reset another user's 2FA, delete
    /// a user, invite an admin, change the team's 2FA policy) need the manager to have 2FA on
    /// (`TESSERA_ADMIN_REQUIRES_2FA`, default on).
    pub admin_requires_two_factor: bool,
    /// Consecutive wrong passwords for one email before password sign-in locks (10).
    pub password_max_failures: i64,
    /// How long a locked password sign-in stays locked, in seconds (15 min).
    pub password_lockout_secs: i64,
    /// Failed sign-in attempts from one IP address within the window before it is refused (50).
    pub ip_max_failures: i64,
    /// The per-IP window, in seconds (10 min).
    pub ip_window_secs: i64,
    /// Password length bounds, in characters (SPEC §8: 12 to 128).
    pub password_min_chars: usize,
    pub password_max_chars: usize,
    /// The lowest zxcvbn score (0–4) a new password may have.
    pub password_min_score: u8,
    /// Argon2id parameters (OWASP: m = 19 MiB, t = 2, p = 1).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// How long a started TOTP setup may wait for its confirming code (30 min).
    pub pending_setup_secs: i64,
    /// How long the step between password and code lasts (10 min) …
    pub challenge_lifetime_secs: i64,
    /// … and how many wrong codes it takes before it dies (5).
    pub challenge_max_attempts: i64,
    /// Consecutive second-step failures of one user, over any challenges, before the second
    /// step locks (10), and for how long (15 min).
    pub second_step_max_failures: i64,
    pub second_step_lockout_secs: i64,
    /// Wrong paper keys for one email on the recovery page before it locks (5), and for how
    /// long (1 h).
    pub recovery_max_failures: i64,
    pub recovery_lockout_secs: i64,
    /// `words` (`xxxxx-xxxxx`) or `digits` (8-digit backup codes).
    pub recovery_code_format: CodeFormat,
    /// How long an invitation link stays valid, in seconds (7 days).
    pub invitation_lifetime_secs: i64,
    /// Invitation emails per account (50) and per recipient (3) within the window (a day),
    /// withdrawn ones included (SPEC §8).
    pub invitations_per_account: i64,
    pub invitations_per_recipient: i64,
    pub invitation_window_secs: i64,
    /// How long a verified device stays recognized, in seconds (30 days).
    pub device_lifetime_secs: i64,
    /// The emailed code for an unrecognized device: valid 10 min, 5 wrong attempts, a
    /// resend after 30 s at the earliest, at most 5 sends per user an hour.
    pub email_code_lifetime_secs: i64,
    pub email_code_max_attempts: i64,
    pub email_code_resend_secs: i64,
    pub email_code_max_sends: i64,
    pub email_code_send_window_secs: i64,
    /// Password reset links (SPEC §8): valid 1 h, at most 3 per user in any hour, at most
    /// 20 requests per client address an hour.
    pub reset_link_lifetime_secs: i64,
    pub reset_link_max_sends: i64,
    pub reset_link_send_window_secs: i64,
    pub reset_ip_max_requests: i64,
    pub reset_ip_window_secs: i64,
    /// How long a sign-up confirmation link stays valid, in seconds (SPEC §8: 24 h).
    pub signup_lifetime_secs: i64,
    /// Sign-up requests from one client address within the window (SPEC §8: 10 an hour).
    pub signup_max_per_ip: i64,
    pub signup_ip_window_secs: i64,
    /// Audit events older than this are deleted by housekeeping, in days (SPEC §14: 400;
    /// `TESSERA_EVENT_RETENTION_DAYS`).
    pub event_retention_days: i64,
    /// Delivered emails' rows are deleted after this, in days (SPEC §14: 30).
    pub sent_email_retention_days: i64,
    /// How long "Don't ask again on this device" lets a device skip the second step, in
    /// seconds (SPEC §9: 30 days).
    pub trusted_device_secs: i64,
    /// Each security alert (unfinished sign-in, replayed code, new sign-in) goes to a user
    /// at most once in this many seconds, per kind (SPEC §9: an hour).
    pub alert_interval_secs: i64,
}

impl SecurityPolicy {
    pub fn ip_window(&self) -> Window {
        Window {
            max: self.ip_max_failures,
            secs: self.ip_window_secs,
        }
    }

    pub fn signup_window(&self) -> Window {
        Window {
            max: self.signup_max_per_ip,
            secs: self.signup_ip_window_secs,
        }
    }

    pub fn email_code_sends(&self) -> Window {
        Window {
            max: self.email_code_max_sends,
            secs: self.email_code_send_window_secs,
        }
    }

    /// Invitation emails an account may send, and one address may receive, in a window.
    pub fn invitation_windows(&self) -> (Window, Window) {
        let window = |max| Window {
            max,
            secs: self.invitation_window_secs,
        };
        (
            window(self.invitations_per_account),
            window(self.invitations_per_recipient),
        )
    }

    pub fn reset_link_sends(&self) -> Window {
        Window {
            max: self.reset_link_max_sends,
            secs: self.reset_link_send_window_secs,
        }
    }

    pub fn reset_ip_window(&self) -> Window {
        Window {
            max: self.reset_ip_max_requests,
            secs: self.reset_ip_window_secs,
        }
    }

    pub fn password_lockout(&self) -> Lockout {
        Lockout {
            max_failures: self.password_max_failures,
            lock_secs: self.password_lockout_secs,
        }
    }

    pub fn second_step_lockout(&self) -> Lockout {
        Lockout {
            max_failures: self.second_step_max_failures,
            lock_secs: self.second_step_lockout_secs,
        }
    }

    pub fn recovery_lockout(&self) -> Lockout {
        Lockout {
            max_failures: self.recovery_max_failures,
            lock_secs: self.recovery_lockout_secs,
        }
    }
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self {
            session_lifetime_secs: 12 * 3600,
            session_idle_secs: 30 * 60,
            reauth_window_secs: 15 * 60,
            admin_requires_two_factor: true,
            password_max_failures: 10,
            password_lockout_secs: 15 * 60,
            ip_max_failures: 50,
            ip_window_secs: 10 * 60,
            password_min_chars: 12,
            password_max_chars: 128,
            password_min_score: 3,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            pending_setup_secs: 30 * 60,
            challenge_lifetime_secs: 10 * 60,
            challenge_max_attempts: 5,
            second_step_max_failures: 10,
            second_step_lockout_secs: 15 * 60,
            recovery_max_failures: 5,
            recovery_lockout_secs: 3600,
            recovery_code_format: CodeFormat::Words,
            invitation_lifetime_secs: 7 * 24 * 3600,
            invitations_per_account: 50,
            invitations_per_recipient: 3,
            invitation_window_secs: 24 * 3600,
            device_lifetime_secs: 30 * 24 * 3600,
            email_code_lifetime_secs: 10 * 60,
            email_code_max_attempts: 5,
            email_code_resend_secs: 30,
            email_code_max_sends: 5,
            email_code_send_window_secs: 3600,
            reset_link_lifetime_secs: 3600,
            reset_link_max_sends: 3,
            reset_link_send_window_secs: 3600,
            reset_ip_max_requests: 20,
            reset_ip_window_secs: 3600,
            signup_lifetime_secs: 24 * 3600,
            signup_max_per_ip: 10,
            signup_ip_window_secs: 3600,
            event_retention_days: 400,
            sent_email_retention_days: 30,
            trusted_device_secs: 30 * 24 * 3600,
            alert_interval_secs: 3600,
        }
    }
}
