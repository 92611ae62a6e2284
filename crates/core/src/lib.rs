//! Tessera's rules: who users are, how passwords, tokens, sessions and throttles behave.
//!
//! Nothing here speaks HTTP or SQL. Time is passed in (`Timestamp`, read at the edge through a
//! [`Clock`]); storage is reached through the [`store`] traits, implemented by `tessera-store`.

pub mod auth;
pub mod codes;
pub mod config;
pub mod crypto;
pub mod device;
pub mod email;
pub mod mail;
pub mod model;
pub mod operator;
pub mod password;
pub mod policy;
pub mod second_step;
pub mod store;
pub mod team;
pub mod throttle;
pub mod time;
pub mod totp;
pub mod two_factor;
pub mod validate;

pub use config::SecurityPolicy;
pub use time::{Clock, Timestamp};
