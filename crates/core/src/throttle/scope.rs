//! What each throttle counts, and under which key.

use crate::email::Email;
use crate::model::{RequestMeta, User};

/// A throttle (the `scope` column of the throttle table): one state machine per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Password sign-in and password re-checks, per normalized email (a [`super::Lockout`]).
    Password,
    /// Failed sign-ins and recovery attempts per client address (a [`super::Window`]).
    Ip,
    /// Wrong second-step codes per user, across challenges (a [`super::Lockout`]).
    SecondStep,
    /// Wrong paper keys on the recovery page, per normalized email (a [`super::Lockout`]).
    Recovery,
    /// Sign-up requests per client address (a [`super::Window`], SPEC §8).
    SignupIp,
}

impl Scope {
    /// The stored name (rows depend on it: never change one).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Ip => "ip",
            Self::SecondStep => "second_step",
            Self::Recovery => "recovery",
            Self::SignupIp => "signup_ip",
        }
    }

    /// The throttles that belong to a user, with their keys: what the operator's unlock
    /// lifts, and what deleting the user forgets (so a user invited again starts clean).
    pub fn of_user(user: &User) -> [(Scope, String); 3] {
        let email = user.email.normalized().to_owned();
        [
            (Self::Password, email.clone()),
            (Self::SecondStep, user.id.to_string()),
            (Self::Recovery, email),
        ]
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The throttle key of the client's address.
pub(crate) fn ip_key(meta: &RequestMeta) -> String {
    meta.ip.clone().unwrap_or_default()
}

/// What an email typed at sign-in is throttled (and looked up) under: its normalized form,
/// or, for something that is no address, a cleaned, bounded version of it (no control
/// characters, at most 254 of them), which costs the same and matches no user.
pub(crate) fn email_key(input: &str) -> String {
    Email::parse(input).map_or_else(
        |_| {
            input
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| !c.is_control())
                .take(254)
                .collect()
        },
        |e| e.normalized().to_owned(),
    )
}
