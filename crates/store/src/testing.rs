//! Throw-away databases for tests: a SQLite file in a temporary folder, or a fresh
//! PostgreSQL database that is dropped when the test ends.
//!
//! PostgreSQL is found at `TESSERA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). If it cannot be reached, tests fail with a
//! message saying so when `CI` is set; elsewhere the PostgreSQL half of a test is skipped with
//! a warning on stderr, so `cargo test` on a machine with only Rust still runs the rest.

use sqlx::{Connection, PgConnection};
use std::path::PathBuf;

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    data_dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh, empty database; `None` only when PostgreSQL is unreachable outside CI.
    pub async fn create(backend: Backend) -> Option<Self> {
        let data_dir = tempfile::tempdir().expect("create a temporary folder");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", data_dir.path().join("tessera.db").display());
                Some(Self {
                    url,
                    data_dir,
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let admin = std::env::var("TESSERA_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let mut conn = match PgConnection::connect(&admin).await {
                    Ok(conn) => conn,
                    Err(e) if std::env::var_os("CI").is_some() => panic!(
                        "PostgreSQL is required in CI but {} cannot be reached: {e}. \
                         Start it, or point TESSERA_TEST_POSTGRES_URL at one.",
                        crate::redact(&admin)
                    ),
                    Err(e) => {
                        eprintln!(
                            "warning: skipping the PostgreSQL half of this test: {} cannot be \
                             reached ({e}); set TESSERA_TEST_POSTGRES_URL to run it",
                            crate::redact(&admin)
                        );
                        return None;
                    }
                };
                let name = format!("tessera_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create the test database");
                let _ = conn.close().await;
                let url = with_database(&admin, &name);
                Some(Self {
                    url,
                    data_dir,
                    postgres: Some((admin, name)),
                })
            }
        }
    }

    /// A database someone else made and removes (a throw-away PostgreSQL cluster), with a
    /// data folder of its own.
    pub fn existing(url: String) -> Self {
        Self {
            url,
            data_dir: tempfile::tempdir().expect("create a temporary folder"),
            postgres: None,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A folder that lives as long as the database (the server's data folder in tests).
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.path().to_path_buf()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async; a small runtime on its own thread removes the database.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    }
}
