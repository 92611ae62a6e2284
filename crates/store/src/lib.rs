//! Tessera's storage: the `tessera_core::store` traits on SQLite and PostgreSQL.
//!
//! The SQL is written once, in `sql/`, and compiled twice, once per backend (the two inline
//! modules below point at the same files): both dialects accept the same statements
//! (`$n` parameters, `ON CONFLICT … DO UPDATE`, `RETURNING`), so there is one text of every
//! query. It runs through the `query` module, on rusqlite for SQLite (statements run in the
//! calling thread, see `lite`) and on sqlx for PostgreSQL. Migrations differ per backend and
//! live in `migrations/<backend>/`; they are applied by [`connect`] (with sqlx, on both).
//!
//! ## Durability and concurrency
//! - SQLite runs in WAL mode with `synchronous = FULL`: a write is on disk before it is
//!   acknowledged. All writes go through one connection, so transactions never race; reads
//!   use read-only connections of their own and see the last committed state (`lite`). Write
//!   transactions are committed in groups (see the `group` module): concurrent ones share
//!   one `COMMIT`, so one fsync, and each is answered only once that `COMMIT` succeeded.
//! - PostgreSQL: any number of instances share one database; read-modify-write sequences
//!   lock their row first (`INSERT … ON CONFLICT DO UPDATE … RETURNING` takes the row lock).
//!   PostgreSQL groups the WAL flushes of concurrent commits itself.
//!
//! The shared code writes through two calls each backend provides, both ending in
//! `commit()`: `begin()` for a transaction (`Tx` per backend: a `GroupTx` on SQLite, sqlx's
//! own `Transaction` on PostgreSQL) and `begin_single()` for exactly one statement, which on
//! PostgreSQL runs on a pooled connection in autocommit mode (its `commit()` does nothing) and
//! on SQLite is a transaction of the group like any other. Nothing touches the SQLite write
//! connection outside the group writer.

#![forbid(unsafe_code)]
// The files under `sql/` are compiled twice on purpose, once per backend.
#![allow(clippy::duplicate_mod)]

use group::{GroupTx, GroupWriter};
use lite::Readers;
use query::DbError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Postgres};
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::store::{Store, StoreError, Unique};

pub mod backup;
mod group;
mod lite;
mod pg;
mod query;
#[cfg(feature = "testing")]
pub mod testing;

#[path = "sql"]
mod sqlite {
    pub(crate) type Backend = crate::SqliteStore;
    pub(crate) const NAME: &str = "sqlite";
    /// One writer at a time: a claim cannot race another, nothing to skip.
    pub(crate) const SKIP_LOCKED: &str = "";
    /// One writer at a time: a read in a write transaction already sees the latest state.
    pub(crate) const FOR_UPDATE: &str = "";
    pub(crate) const FOR_NO_KEY_UPDATE: &str = "";
    pub(crate) type Row = crate::query::Row;
    /// A write transaction: a savepoint in the group writer's batch.
    pub(crate) type Tx = crate::GroupTx;
    mod accounts;
    mod credentials;
    mod devices;
    mod events;
    mod factors;
    mod housekeeping;
    pub(crate) mod keys;
    mod outbox;
    mod rows;
    mod second_step;
    mod sessions;
    mod signups;
    mod store;
    mod team;
    mod throttles;
    mod totp;
}

#[path = "sql"]
mod postgres {
    pub(crate) type Backend = crate::PgStore;
    pub(crate) const NAME: &str = "postgres";
    /// Concurrent workers pass over rows another is claiming instead of waiting for them.
    pub(crate) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
    /// A read that decides a write locks its row until the transaction ends.
    pub(crate) const FOR_UPDATE: &str = " FOR UPDATE";
    /// The same, for a row that only serializes its writers: it does not block the
    /// foreign-key checks of inserts that refer to it (which take `FOR KEY SHARE`).
    pub(crate) const FOR_NO_KEY_UPDATE: &str = " FOR NO KEY UPDATE";
    pub(crate) type Row = crate::query::Row;
    /// A write transaction.
    pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
    mod accounts;
    mod credentials;
    mod devices;
    mod events;
    mod factors;
    mod housekeeping;
    mod keys;
    mod outbox;
    mod rows;
    mod second_step;
    mod sessions;
    mod signups;
    mod store;
    mod team;
    mod throttles;
    mod totp;
}

/// The SQLite backend: one writer connection committing in groups, a pool of readers.
pub struct SqliteStore {
    write: GroupWriter,
    read: Readers,
}

/// The PostgreSQL backend.
pub struct PgStore {
    pool: PgPool,
}

impl SqliteStore {
    /// Starts a write transaction; it waits for the writer (transactions run one at a time).
    async fn begin(&self) -> Result<GroupTx, DbError> {
        self.write.begin().await
    }
    /// A write of exactly one statement: on SQLite, a transaction like any other.
    async fn begin_single(&self) -> Result<GroupTx, DbError> {
        self.write.begin().await
    }
    fn reader(&self) -> &Readers {
        &self.read
    }
}

impl PgStore {
    /// Starts a write transaction.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }
    /// A write of exactly one statement, which PostgreSQL commits by itself (autocommit):
    /// no `BEGIN`/`COMMIT` round trips.
    async fn begin_single(&self) -> Result<PgSingle, sqlx::Error> {
        Ok(PgSingle(self.pool.acquire().await?))
    }
    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

/// A pooled PostgreSQL connection for one statement in autocommit mode: the statement is
/// committed when it completes, [`commit`](Self::commit) is there to match SQLite's
/// transaction. More than one statement on it would not be atomic.
struct PgSingle(PoolConnection<Postgres>);

impl PgSingle {
    async fn commit(self) -> Result<(), DbError> {
        Ok(())
    }
}

impl Deref for PgSingle {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.0
    }
}

impl DerefMut for PgSingle {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot open the database: {0}")]
    Open(#[source] sqlx::Error),
    #[error("cannot open the database: {0}")]
    OpenSqlite(#[source] rusqlite::Error),
    #[error("cannot make the database file private: {0}")]
    Private(#[source] std::io::Error),
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("no such database file {0}")]
    Missing(std::path::PathBuf),
    #[error("cannot read the database: {0}")]
    Check(#[source] StoreError),
}

/// Opens the database at `url` (`sqlite://…` or `postgres://…`), creating a SQLite file if
/// needed, and applies the migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, ConnectError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(open_sqlite(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(open_postgres(url).await?))
    } else {
        Err(ConnectError::UnsupportedUrl(redact(url)))
    }
}

/// The database file (created here if new) and its `-wal` and `-shm` companions are its
/// owner's only (0600, SPEC §8), whatever the umask: created with that mode, and set again
/// on files that already exist. SQLite gives the companions the main file's mode.
fn private_files(db: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // Only a file that does not exist yet is opened here: closing a descriptor of a file
    // drops every POSIX lock this process holds on it, SQLite's included, so opening the
    // live database a second time in one process (a second store, as tests make) would let
    // another process take it for unused and reset its log.
    if !db.exists() {
        drop(options.open(db)?);
    }
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

async fn open_sqlite(url: &str) -> Result<SqliteStore, ConnectError> {
    // The store's connections share a file: a database in one connection's memory is of no
    // use to the others.
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(ConnectError::UnsupportedUrl(url.to_owned()));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(ConnectError::Open)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    private_files(options.get_filename()).map_err(ConnectError::Private)?;
    // Migrations with sqlx (which records them as before), on a connection of their own.
    let mut migrating = options.connect().await.map_err(ConnectError::Open)?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&mut migrating)
        .await
        .map_err(ConnectError::Migrate)?;
    migrating.close().await.map_err(ConnectError::Open)?;
    let path = options.get_filename().to_owned();
    let write = lite::open_writer(&path).map_err(ConnectError::OpenSqlite)?;
    Ok(SqliteStore {
        write: GroupWriter::new(write),
        read: Readers::new(path),
    })
}

async fn open_postgres(url: &str) -> Result<PgStore, ConnectError> {
    let options = PgConnectOptions::from_str(url).map_err(ConnectError::Open)?;
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(ConnectError::Open)?;
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .map_err(ConnectError::Migrate)?;
    Ok(PgStore { pool })
}

/// A database URL fit for an error message or a log: without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The uniqueness rules of the schema, by what each backend names in a violation: the
/// PostgreSQL constraint, or the columns SQLite lists.
const UNIQUE_RULES: &[(&str, &str, Unique)] = &[
    ("users_email_key", "users.email_normalized", Unique::Email),
    (
        "invitations_pending_key",
        "invitations.account_id, invitations.email_normalized",
        Unique::OpenInvitation,
    ),
];

/// Maps a driver error into the core's terms: a violation of a known uniqueness rule becomes
/// `Conflict`, a lost race (a foreign key to a row deleted meanwhile, a deadlock) `Raced`;
/// anything else (another constraint included) is a backend failure.
fn db(error: impl Into<DbError>) -> StoreError {
    let error = error.into();
    if let Some(violated) = error.unique_violation() {
        let rule = UNIQUE_RULES
            .iter()
            .find(|(constraint, columns, _)| violated == *constraint || violated == *columns);
        if let Some((_, _, unique)) = rule {
            return StoreError::Conflict(*unique);
        }
    }
    if error.lost_race() {
        return StoreError::Raced;
    }
    StoreError::Backend(Box::new(error))
}

#[cfg(test)]
mod tests {
    use super::{ConnectError, connect, redact};

    #[tokio::test]
    async fn an_in_memory_sqlite_database_is_refused() {
        for url in ["sqlite::memory:", "sqlite://x.db?mode=memory"] {
            let refused = connect(url).await.err();
            assert!(
                matches!(refused, Some(ConnectError::UnsupportedUrl(_))),
                "{url}: {refused:?}"
            );
        }
    }

    #[test]
    fn redacts_passwords_from_urls() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/tessera"),
            "postgres://app:***@db:5432/tessera"
        );
        assert_eq!(redact("sqlite://./x.db"), "sqlite://./x.db");
    }
}

#[cfg(test)]
mod conformance;
