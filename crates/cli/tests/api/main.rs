//! Tessera's integration tests, in one binary: the real application on a free port, a fresh
//! database per test, each test run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Declares each listed `async fn name(app: TestApp)` as two tests, `sqlite::name` and
/// `postgres::name`.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(app) =
                    crate::helpers::spawn_app(tessera_store::testing::Backend::Sqlite).await
                {
                    super::$name(app).await
                }
            }
        )+}
        mod postgres {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(app) =
                    crate::helpers::spawn_app(tessera_store::testing::Backend::Postgres).await
                {
                    super::$name(app).await
                }
            }
        )+}
    };
}

mod alerts;
mod api_keys;
mod auth;
mod backups;
mod browser;
mod cli;
mod connections;
mod devices;
mod durability;
mod e2e;
mod enforcement;
mod errors;
mod faults;
mod hardening;
mod helpers;
mod housekeeping;
mod keys;
mod mail;
mod oidc;
mod ops;
mod otp;
mod pages;
mod passwords;
mod refusals;
mod schema_fuzz;
mod sessions_cap;
mod sign_up;
mod smtp;
mod sso;
mod step_up;
mod storage;
mod team;
mod throttling;
mod trust;
mod two_factor;
mod webauthn;
