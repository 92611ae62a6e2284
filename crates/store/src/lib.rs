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
use tessera_core::store::{Store, StoreError, Unavailable, Unique};

mod at_once;
pub mod backup;
mod group;
mod lite;
mod pg;
mod query;
pub mod retry;
#[cfg(feature = "testing")]
pub mod testing;
mod volume;

#[path = "sql"]
mod sqlite {
    pub(crate) type Backend = crate::SqliteStore;
    pub(crate) const NAME: &str = "sqlite";
    /// One writer at a time: a claim cannot race another, nothing to skip.
    pub(crate) const SKIP_LOCKED: &str = "";
    /// One writer at a time: a read in a write transaction already sees the latest state.
    pub(crate) const FOR_UPDATE: &str = "";
    pub(crate) const FOR_NO_KEY_UPDATE: &str = "";
    /// One writer at a time: the user's sessions need no version (see `sessions::insert`).
    pub(crate) const LOCK_USER_FOR_SESSION: &str = "SELECT id FROM users WHERE id = $1";
    pub(crate) type Row = crate::query::Row;
    /// A write transaction: a savepoint in the group writer's batch.
    pub(crate) type Tx = crate::GroupTx;
    mod accounts;
    mod api_keys;
    mod credentials;
    mod devices;
    mod events;
    mod factors;
    mod housekeeping;
    pub(crate) mod keys;
    mod oidc;
    mod outbox;
    #[cfg(test)]
    mod plans;
    mod rows;
    mod second_step;
    mod sessions;
    mod signups;
    mod sso;
    mod store;
    mod team;
    mod throttles;
    mod totp;
    mod webauthn;
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
    /// Locks the user's row as [`FOR_NO_KEY_UPDATE`] does (an update of a column no key
    /// refers to) and moves their sessions' version on: a second step answered in one
    /// statement (`at_once`) sees that a session was opened since it read the version.
    pub(crate) const LOCK_USER_FOR_SESSION: &str = "UPDATE users \
        SET sessions_version = sessions_version + 1 WHERE id = $1 RETURNING id";
    pub(crate) type Row = crate::query::Row;
    /// A write transaction.
    pub(crate) type Tx = crate::PgTx;
    mod accounts;
    mod api_keys;
    mod credentials;
    mod devices;
    mod events;
    mod factors;
    mod housekeeping;
    mod keys;
    mod oidc;
    mod outbox;
    mod rows;
    mod second_step;
    mod sessions;
    mod signups;
    mod sso;
    mod store;
    mod team;
    mod throttles;
    mod totp;
    mod webauthn;
}

/// The SQLite backend: one writer connection committing in groups, a pool of readers.
pub struct SqliteStore {
    write: GroupWriter,
    read: Readers,
    /// The folder of the database file, whose room readiness checks.
    folder: std::path::PathBuf,
    /// Ends the watch over the volume (see `volume`) when the store goes.
    _watch: volume::Watch,
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
    /// SQLite runs in-process: a statement costs no round trip, every answer takes the
    /// transaction (see `at_once` for PostgreSQL).
    async fn answer_at_once(
        &self,
        _attempt: tessera_core::second_step::ChallengeAttempt,
        _lock: &mut tessera_core::second_step::LockGate<'_>,
        _completing: Option<tessera_core::second_step::Completing<'_>>,
    ) -> Result<Option<tessera_core::second_step::Attempted>, StoreError> {
        Ok(None)
    }
    fn reader(&self) -> &Readers {
        &self.read
    }
    /// A full volume fails writes before long: not ready (see `volume`).
    fn volume_has_room(&self) -> Result<(), StoreError> {
        volume::check_room(&self.folder)
            .map_err(|e| StoreError::Unavailable(Unavailable(Box::new(e))))
    }
    fn latest_migration(&self) -> i64 {
        latest_migration(&SQLITE_MIGRATIONS)
    }
}

impl PgStore {
    /// Starts a write transaction.
    async fn begin(&self) -> Result<PgTx, sqlx::Error> {
        Ok(PgTx(self.pool.begin().await?))
    }
    /// A write of exactly one statement, which PostgreSQL commits by itself (autocommit):
    /// no `BEGIN`/`COMMIT` round trips. Counted as written from here (see `retry`): if the
    /// connection is lost under it, the statement may have been committed.
    async fn begin_single(&self) -> Result<PgSingle, sqlx::Error> {
        let conn = self.pool.acquire().await?;
        retry::wrote();
        Ok(PgSingle(conn))
    }
    fn reader(&self) -> &PgPool {
        &self.pool
    }
    /// PostgreSQL's disk is its own: a full one fails the heartbeat write.
    fn volume_has_room(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn latest_migration(&self) -> i64 {
        latest_migration(&POSTGRES_MIGRATIONS)
    }
}

/// A PostgreSQL write transaction: sqlx's, noting its `COMMIT` for `retry`.
pub(crate) struct PgTx(sqlx::Transaction<'static, Postgres>);

impl PgTx {
    async fn commit(self) -> Result<(), sqlx::Error> {
        // From here the outcome may be unknown to us if the connection is lost.
        retry::wrote();
        self.0.commit().await
    }
}

impl Deref for PgTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.0
    }
}

impl DerefMut for PgTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.0
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
    #[error(transparent)]
    Volume(#[from] volume::Unusable),
}

/// How long a request waits for a PostgreSQL connection (connecting included) before it is
/// answered `503 unavailable`: a lost database answers at once instead of hanging (D3).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// PostgreSQL cancels a statement that runs longer (answered 503): the request's own
/// deadline is 30 s, and a statement of ours takes milliseconds.
const STATEMENT_TIMEOUT: &str = "10s";
/// PostgreSQL ends a session left idle inside a transaction this long (an instance stuck
/// mid-request), so that its row locks do not hold every other instance up.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "30s";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The newest migration this build knows, which a ready database has applied.
fn latest_migration(migrator: &sqlx::migrate::Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Refuses a data folder whose volume cannot take writes (read-only, full, or a file cannot
/// be written and synced there), with one line saying which.
pub fn check_data_volume(folder: &std::path::Path) -> Result<(), ConnectError> {
    Ok(volume::check_writable(folder)?)
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
    let path = options.get_filename().to_owned();
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    // A full or read-only volume is refused before SQLite touches it (D8).
    volume::check_writable(&folder)?;
    private_files(options.get_filename()).map_err(ConnectError::Private)?;
    // Migrations with sqlx (which records them as before), on a connection of their own.
    let mut migrating = options.connect().await.map_err(ConnectError::Open)?;
    SQLITE_MIGRATIONS
        .run(&mut migrating)
        .await
        .map_err(ConnectError::Migrate)?;
    migrating.close().await.map_err(ConnectError::Open)?;
    let write = lite::open_writer(&path).map_err(ConnectError::OpenSqlite)?;
    let watch = volume::Watch::start(folder.clone());
    Ok(SqliteStore {
        write: GroupWriter::new(write, watch.read_only()),
        read: Readers::new(path, watch.read_only()),
        folder,
        _watch: watch,
    })
}

async fn open_postgres(url: &str) -> Result<PgStore, ConnectError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(ConnectError::Open)?
        .options([
            ("statement_timeout", STATEMENT_TIMEOUT),
            (
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_TIMEOUT,
            ),
        ]);
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(ConnectError::Open)?;
    POSTGRES_MIGRATIONS
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
    ("sso_domains_pkey", "sso_domains.domain", Unique::SsoDomain),
    (
        "sso_identities_pkey",
        "sso_identities.issuer, sso_identities.subject",
        Unique::SsoIdentity,
    ),
    (
        "sso_identities_user_idx",
        "sso_identities.user_id, sso_identities.issuer",
        Unique::SsoIdentity,
    ),
];

/// Maps a driver error into the core's terms: a violation of a known uniqueness rule becomes
/// `Conflict`, a lost race (a foreign key to a row deleted meanwhile, a deadlock) `Raced`; a
/// failure that passes by itself `Unavailable` (noted for `retry` when the connection was
/// lost); anything else (another constraint included) is a backend failure.
fn db(error: impl Into<DbError>) -> StoreError {
    let error = error.into();
    if error.is_unavailable() {
        if query::connection_lost(&error) {
            retry::lost();
        }
        return StoreError::Unavailable(Unavailable(Box::new(error)));
    }
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
