//! Backups (SPEC §14): a consistent copy of a live SQLite database, and opening a backup,
//! read-only, to check it before relying on it.

use crate::lite::Readers;
use crate::query::query;
use crate::{ConnectError, PgStore, db, redact};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::keys::{KeyCheck, KeyStore, Resealed, SealedRow};
use tessera_core::store::{StoreError, StoreResult};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "tessera admin backup copies SQLite databases only; back up PostgreSQL with: \
         pg_dump --format=custom --file={file} '{url}'"
    )]
    Postgres { file: String, url: String },
    #[error("unsupported database URL {0:?}")]
    UnsupportedUrl(String),
    #[error("{0} already exists; give a new file")]
    Exists(PathBuf),
    #[error("cannot create {0}: {1}")]
    Create(PathBuf, #[source] std::io::Error),
    #[error("the copy failed: {0}")]
    Copy(#[source] rusqlite::Error),
    #[error("the copy did not finish: {0}")]
    Interrupted(#[source] tokio::task::JoinError),
}

/// Writes a consistent copy of the SQLite database at `url` to `dest` while it serves:
/// `VACUUM INTO` runs as one read transaction, so it sees one committed state and writers go
/// on meanwhile. The copy is owner-only (0600) and compacted. Answers its size in bytes.
pub async fn backup(url: &str, dest: &Path) -> Result<u64, BackupError> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return Err(BackupError::Postgres {
            file: dest.display().to_string(),
            url: redact(url),
        });
    }
    let source = SqliteConnectOptions::from_str(url)
        .map_err(|_| BackupError::UnsupportedUrl(redact(url)))?
        .get_filename()
        .to_owned();
    let dest = dest.to_owned();
    tokio::task::spawn_blocking(move || {
        // SQLite accepts an empty file as the target; made here, it is private from the start.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&dest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(BackupError::Exists(dest));
            }
            Err(e) => return Err(BackupError::Create(dest, e)),
        }
        let copied = copy(&source, &dest);
        if copied.is_err() {
            let _ = std::fs::remove_file(&dest);
        }
        copied
    })
    .await
    .map_err(BackupError::Interrupted)?
}

fn copy(source: &Path, dest: &Path) -> Result<u64, BackupError> {
    let conn = rusqlite::Connection::open_with_flags(
        source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(BackupError::Copy)?;
    conn.busy_timeout(crate::lite::BUSY_TIMEOUT)
        .map_err(BackupError::Copy)?;
    conn.execute("VACUUM INTO ?1", [dest.to_string_lossy()])
        .map_err(BackupError::Copy)?;
    std::fs::metadata(dest)
        .map(|m| m.len())
        .map_err(|e| BackupError::Create(dest.to_owned(), e))
}

/// A backup opened for checking: its key check and sealed values, and its migrations.
pub struct OpenedBackup {
    pub keys: Arc<dyn KeyStore>,
    /// Migrations this build has that the backup lacks (empty: current).
    pub missing_migrations: Vec<i64>,
    /// Migrations the backup has that this build does not know (a newer version wrote it).
    pub unknown_migrations: Vec<i64>,
}

/// Opens a backup without changing it: a SQLite file (or `sqlite://` URL), opened read-only
/// and immutable, or a PostgreSQL database (`postgres://…`, where a dump was restored).
/// Applies no migration.
pub async fn open_backup(target: &str) -> Result<OpenedBackup, ConnectError> {
    let (keys, applied): (Arc<dyn KeyStore>, Vec<i64>) =
        if target.starts_with("postgres:") || target.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(target).map_err(ConnectError::Open)?;
            let pool = PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(ConnectError::Open)?;
            let applied = applied(&pool).await.map_err(ConnectError::Check)?;
            (Arc::new(PgStore { pool }), applied)
        } else {
            let path = target.strip_prefix("sqlite://").unwrap_or(target);
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(ConnectError::Missing(path));
            }
            let read = Readers::immutable(path);
            let applied = applied(&read).await.map_err(ConnectError::Check)?;
            (Arc::new(SqliteBackup { read }), applied)
        };
    let migrator = if target.starts_with("postgres") {
        sqlx::migrate!("./migrations/postgres")
    } else {
        sqlx::migrate!("./migrations/sqlite")
    };
    let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    Ok(OpenedBackup {
        keys,
        missing_migrations: known
            .iter()
            .filter(|v| !applied.contains(v))
            .copied()
            .collect(),
        unknown_migrations: applied
            .iter()
            .filter(|v| !known.contains(v))
            .copied()
            .collect(),
    })
}

/// The migrations recorded as applied.
async fn applied(on: impl crate::query::Exec) -> StoreResult<Vec<i64>> {
    query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(on)
        .await
        .map_err(db)?
        .iter()
        .map(|row| row.try_get("version").map_err(db))
        .collect()
}

/// A SQLite backup file, read-only.
struct SqliteBackup {
    read: Readers,
}

#[async_trait]
impl KeyStore for SqliteBackup {
    async fn key_check(&self) -> StoreResult<Option<KeyCheck>> {
        crate::sqlite::keys::read_check(&self.read).await
    }

    async fn record_key_check(&self, _: &KeyCheck) -> StoreResult<KeyCheck> {
        Err(read_only())
    }

    async fn sample_sealed(&self, limit: i64) -> StoreResult<Vec<SealedRow>> {
        crate::sqlite::keys::sample(&self.read, limit).await
    }

    async fn reseal_all(
        &self,
        _: &[u8],
        _: &KeyCheck,
        _: &mut (dyn for<'r> FnMut(&'r SealedRow) -> Option<Vec<u8>> + Send),
    ) -> StoreResult<Resealed> {
        Err(read_only())
    }
}

fn read_only() -> StoreError {
    StoreError::Backend("a backup is opened read-only".into())
}
