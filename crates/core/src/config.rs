//! The security numbers of SPEC §3, in one place, with the spec's values as defaults.
//! Operators may change them in the `[security]` table of the configuration file.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityPolicy {
    /// Absolute lifetime of a session, in seconds (24 h).
    pub session_lifetime_secs: i64,
    /// Consecutive wrong passwords for one email before password sign-in locks (10).
    pub password_max_failures: i64,
    /// How long a locked password sign-in stays locked, in seconds (15 min).
    pub password_lockout_secs: i64,
    /// Failed sign-in attempts from one IP address within the window before it is refused (50).
    pub ip_max_failures: i64,
    /// The per-IP window, in seconds (10 min).
    pub ip_window_secs: i64,
    /// Password length bounds, in characters (NIST 800-63B: at least 8, allow at least 64).
    pub password_min_chars: usize,
    pub password_max_chars: usize,
    /// Argon2id parameters (OWASP: m = 19 MiB, t = 2, p = 1).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self {
            session_lifetime_secs: 24 * 3600,
            password_max_failures: 10,
            password_lockout_secs: 15 * 60,
            ip_max_failures: 50,
            ip_window_secs: 10 * 60,
            password_min_chars: 8,
            password_max_chars: 256,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}
