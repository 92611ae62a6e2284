//! SQLite through rusqlite: statements run in the calling thread.
//!
//! A SQLite statement on a file in the page cache takes microseconds, less than handing it
//! to another thread and back, so the store runs it where it is asked for, on the async
//! runtime's thread. What can take long runs on a blocking thread instead (see `group`): the
//! `COMMIT` that syncs the log, and waiting for the write lock while another process (the
//! operator CLI) holds it; the write connection itself never waits for a lock. A reader can
//! wait for one only in rare cases (a crashed process's log being recovered).

use crate::query::{DbError, Exec, Query, Row, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, OpenFlags, Statement, ToSql};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the writer waits for the write lock another process holds (the operator CLI
/// writing while the server runs), and a reader for its rare locks, before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepared statements kept per connection: more than the store has.
const STATEMENT_CACHE: usize = 256;

/// Opens the write connection: WAL, every commit synced (`synchronous = FULL`), foreign keys,
/// temporary journals in memory, and no waiting for locks (see `group::open`).
pub(crate) fn open_writer(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A write transaction is a savepoint (see `group`): SQLite keeps the pages it changes in
    // a journal of their own, to roll back to. In memory, not in a temporary file, that costs
    // no write to the disk; the log (WAL) keeps every commit durable as before.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(Duration::ZERO)?;
    Ok(conn)
}

/// The connection of the write transaction: what [`crate::GroupTx`] derefs to.
pub(crate) struct Conn(pub(crate) Connection);

/// Read-only connections, opened as needed and kept for reuse. A statement holds one only
/// while it runs, without waiting on anything, so there are never more of them than threads
/// running statements at once.
pub(crate) struct Readers {
    path: PathBuf,
    /// A file nothing writes (a backup): opened without locks or a log, changing nothing.
    immutable: bool,
    idle: Mutex<Vec<Reader>>,
    /// Set while the data volume is read-only (see `volume`): a read would write to the
    /// mapped WAL index, so none runs.
    read_only: Arc<AtomicBool>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, read_only: Arc<AtomicBool>) -> Self {
        Self {
            path,
            immutable: false,
            idle: Mutex::new(Vec::new()),
            read_only,
        }
    }

    /// Readers of a file no one writes, which they leave exactly as it is.
    pub(crate) fn immutable(path: PathBuf) -> Self {
        Self {
            immutable: true,
            ..Self::new(path, Arc::default())
        }
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if self.immutable {
            let mut uri = std::ffi::OsString::from("file:");
            uri.push(self.path.as_os_str());
            uri.push("?immutable=1");
            Connection::open_with_flags(
                std::path::Path::new(&uri),
                flags | OpenFlags::SQLITE_OPEN_URI,
            )?
        } else {
            Connection::open_with_flags(&self.path, flags)?
        };
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// Runs `work` on an idle connection (or a new one), then puts the connection back.
    fn with<T>(&self, work: impl FnOnce(&mut Reader) -> Result<T, DbError>) -> Result<T, DbError> {
        if self.read_only.load(Ordering::SeqCst) {
            return Err(DbError::VolumeReadOnly);
        }
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => Reader {
                conn: self.open()?,
                columns: Columns::default(),
            },
        };
        let result = work(&mut conn);
        // A statement that failed leaves nothing open on the connection: it can be reused.
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        result
    }
}

/// A read-only connection and the column names of the statements it ran.
struct Reader {
    conn: Connection,
    columns: Columns,
}

/// The column names of each statement, by its text: they never change, and reading them
/// again (an allocation per column) on every run cost more than the lookup they name.
#[derive(Default)]
struct Columns(std::collections::HashMap<(usize, usize), Named>);

/// A statement's text and its column names.
struct Named {
    text: Box<str>,
    names: Arc<[String]>,
}

impl Columns {
    /// Statements are kept by where their text is, checked against the text itself (a
    /// statement built at run time may reuse the place of another).
    fn of(&mut self, sql: &str, statement: &Statement<'_>) -> Arc<[String]> {
        let at = (sql.as_ptr() as usize, sql.len());
        if let Some(named) = self.0.get(&at)
            && *named.text == *sql
        {
            return Arc::clone(&named.names);
        }
        let names: Arc<[String]> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        // The store's statements are a few hundred; texts built at run time are not kept
        // forever.
        if self.0.len() >= 1024 {
            self.0.clear();
        }
        self.0.insert(
            at,
            Named {
                text: sql.into(),
                names: Arc::clone(&names),
            },
        );
        names
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null(_) => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
            Value::Bool(v) => ValueRef::Integer(i64::from(*v)),
        }))
    }
}

/// Prepares (or takes from the cache) and binds `query`: SQLite numbers `$1` by where it
/// first appears, so each parameter is bound by its name.
fn prepare<'c>(conn: &'c Connection, query: &Query<'_>) -> Result<CachedStatement<'c>, DbError> {
    // SQLite would prepare the first statement and ignore the rest.
    if query.sql.trim_end().trim_end_matches(';').contains(';') {
        return Err(DbError::MultipleStatements);
    }
    let mut statement = conn.prepare_cached(query.sql)?;
    bind(&mut statement, query)?;
    Ok(statement)
}

fn bind(statement: &mut Statement<'_>, query: &Query<'_>) -> Result<(), DbError> {
    for index in 1..=statement.parameter_count() {
        let value = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| query.args.get(n.wrapping_sub(1)))
            .ok_or(rusqlite::Error::InvalidParameterCount(
                index,
                query.args.len(),
            ))?;
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

fn read(value: ValueRef<'_>) -> Result<Value, DbError> {
    Ok(match value {
        ValueRef::Null => Value::Null(crate::query::Kind::Text),
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Text(v) => {
            Value::Text(String::from_utf8(v.to_vec()).map_err(|_| DbError::Column {
                column: String::new(),
                problem: "text that is not UTF-8",
            })?)
        }
        ValueRef::Blob(v) => Value::Blob(v.to_vec()),
        ValueRef::Real(_) => {
            return Err(DbError::Column {
                column: String::new(),
                problem: "a floating-point value",
            });
        }
    })
}

/// Runs `query` to its end, keeping at most `keep` rows; the column names from `columns`
/// when given.
fn rows(
    conn: &Connection,
    columns: Option<&mut Columns>,
    query: &Query<'_>,
    keep: usize,
) -> Result<Vec<Row>, DbError> {
    let mut statement = prepare(conn, query)?;
    let columns: Arc<[String]> = match columns {
        Some(cache) => cache.of(query.sql, &statement),
        None => statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    let mut found = Vec::new();
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        if found.len() < keep {
            let values = (0..columns.len())
                .map(|i| read(row.get_ref(i)?))
                .collect::<Result<Vec<_>, _>>()?;
            found.push(Row::new(Arc::clone(&columns), values));
        }
    }
    Ok(found)
}

fn execute(conn: &Connection, query: &Query<'_>) -> Result<u64, DbError> {
    let mut statement = prepare(conn, query)?;
    let changes = !statement.readonly();
    // Stepped to the end rather than `execute`d: a statement with `RETURNING` is fine here.
    let mut rows = statement.raw_query();
    while rows.next()?.is_some() {}
    // SQLite counts the changes of the last INSERT, UPDATE or DELETE, whichever ran last.
    Ok(if changes { conn.changes() } else { 0 })
}

impl Exec for &mut Conn {
    async fn execute(self, query: Query<'_>) -> Result<u64, DbError> {
        execute(&self.0, &query)
    }
    async fn fetch_all(self, query: Query<'_>) -> Result<Vec<Row>, DbError> {
        rows(&self.0, None, &query, usize::MAX)
    }
    async fn fetch_optional(self, query: Query<'_>) -> Result<Option<Row>, DbError> {
        Ok(rows(&self.0, None, &query, 1)?.pop())
    }
}

impl Exec for &Readers {
    async fn execute(self, query: Query<'_>) -> Result<u64, DbError> {
        self.with(|reader| execute(&reader.conn, &query))
    }
    async fn fetch_all(self, query: Query<'_>) -> Result<Vec<Row>, DbError> {
        self.with(|reader| rows(&reader.conn, Some(&mut reader.columns), &query, usize::MAX))
    }
    async fn fetch_optional(self, query: Query<'_>) -> Result<Option<Row>, DbError> {
        Ok(self
            .with(|reader| rows(&reader.conn, Some(&mut reader.columns), &query, 1))?
            .pop())
    }
}
