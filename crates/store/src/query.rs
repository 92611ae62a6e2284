//! One way to run a statement on either backend: [`query`] builds it, [`Exec`] runs it.
//!
//! The SQL under `sql/` is shared by both backends, but the drivers are not: PostgreSQL goes
//! through sqlx, SQLite through rusqlite, which runs a statement in the calling thread (sqlx's
//! SQLite driver hands every statement to a thread of its own and back, which cost more than
//! the statement). So the shared code binds plain [`Value`]s and reads plain [`Row`]s, and each
//! backend implements [`Exec`] for its connections.

use std::future::Future;
use std::sync::Arc;

/// The type of a parameter, which PostgreSQL needs even for a `NULL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Blob,
    Bool,
}

/// A parameter, or a column of a row read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Null(Kind),
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Bool(bool),
}

/// What can be bound to a statement.
pub(crate) trait Param {
    const KIND: Kind;
    fn value(self) -> Value;
}

macro_rules! param {
    ($kind:ident, $($t:ty => $convert:expr),+ $(,)?) => {$(
        impl Param for $t {
            const KIND: Kind = Kind::$kind;
            fn value(self) -> Value {
                #[allow(clippy::redundant_closure_call)]
                Value::$kind(($convert)(self))
            }
        }
    )+};
}

param!(Int, i64 => |v| v, &i64 => |v: &i64| *v);
param!(Text, String => |v| v, &str => str::to_owned, &&str => |v: &&str| (*v).to_owned(), &String => String::clone);
param!(Blob, Vec<u8> => |v| v, &[u8] => <[u8]>::to_vec, &Vec<u8> => Vec::clone);
param!(Bool, bool => |v| v);

impl<const N: usize> Param for &[u8; N] {
    const KIND: Kind = Kind::Blob;
    fn value(self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl<T: Param> Param for Option<T> {
    const KIND: Kind = T::KIND;
    fn value(self) -> Value {
        self.map_or(Value::Null(T::KIND), Param::value)
    }
}

/// A statement with its parameters, `$1`, `$2`… in the SQL.
pub(crate) struct Query<'q> {
    pub(crate) sql: &'q str,
    pub(crate) args: Vec<Value>,
}

/// Starts a statement.
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql,
        args: Vec::new(),
    }
}

impl<'q> Query<'q> {
    /// Binds the next parameter.
    pub(crate) fn bind(mut self, value: impl Param) -> Self {
        self.args.push(value.value());
        self
    }

    /// Runs it to its end.
    pub(crate) async fn execute(self, on: impl Exec) -> Result<Done, DbError> {
        on.execute(self).await.map(Done)
    }

    pub(crate) async fn fetch_all(self, on: impl Exec) -> Result<Vec<Row>, DbError> {
        on.fetch_all(self).await
    }

    pub(crate) async fn fetch_optional(self, on: impl Exec) -> Result<Option<Row>, DbError> {
        on.fetch_optional(self).await
    }

    /// The first row, which must be there.
    pub(crate) async fn fetch_one(self, on: impl Exec) -> Result<Row, DbError> {
        on.fetch_optional(self).await?.ok_or(DbError::RowNotFound)
    }
}

/// What a statement run by [`Query::execute`] did.
#[derive(Debug)]
pub(crate) struct Done(u64);

impl Done {
    /// How many rows it inserted, changed or deleted.
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// A connection, pool or transaction a statement can run on.
pub(crate) trait Exec: Send {
    fn execute(self, query: Query<'_>) -> impl Future<Output = Result<u64, DbError>> + Send;
    fn fetch_all(self, query: Query<'_>) -> impl Future<Output = Result<Vec<Row>, DbError>> + Send;
    /// The first row, if any; the statement still runs to its end.
    fn fetch_optional(
        self,
        query: Query<'_>,
    ) -> impl Future<Output = Result<Option<Row>, DbError>> + Send;
}

/// A row read back: its values, and the names of its columns (shared by all rows of a query).
#[derive(Debug)]
pub(crate) struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Self { columns, values }
    }

    /// The column `index` (a name or a position), decoded as `T`.
    pub(crate) fn try_get<T: Decode, I: ColumnIndex>(&self, index: I) -> Result<T, DbError> {
        let at = index
            .position(&self.columns)
            .ok_or_else(|| DbError::Column {
                column: index.to_string(),
                problem: "no such column",
            })?;
        let value = self.values.get(at).ok_or_else(|| DbError::Column {
            column: index.to_string(),
            problem: "no such column",
        })?;
        T::decode(value).map_err(|problem| DbError::Column {
            column: index.to_string(),
            problem,
        })
    }
}

/// How a column is named: by its name or its position.
pub(crate) trait ColumnIndex: std::fmt::Display + Copy {
    fn position(self, columns: &[String]) -> Option<usize>;
}

impl ColumnIndex for &str {
    fn position(self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|c| c == self)
    }
}

impl ColumnIndex for usize {
    fn position(self, columns: &[String]) -> Option<usize> {
        (self < columns.len()).then_some(self)
    }
}

/// What a column can be read as.
pub(crate) trait Decode: Sized {
    fn decode(value: &Value) -> Result<Self, &'static str>;
}

impl Decode for i64 {
    fn decode(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Int(v) => Ok(*v),
            _ => Err("not an integer"),
        }
    }
}

impl Decode for bool {
    fn decode(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Bool(v) => Ok(*v),
            // SQLite stores booleans as integers.
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            _ => Err("not a boolean"),
        }
    }
}

impl Decode for String {
    fn decode(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Text(v) => Ok(v.clone()),
            _ => Err("not text"),
        }
    }
}

impl Decode for Vec<u8> {
    fn decode(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Blob(v) => Ok(v.clone()),
            _ => Err("not bytes"),
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(value: &Value) -> Result<Self, &'static str> {
        match value {
            Value::Null(_) => Ok(None),
            other => T::decode(other).map(Some),
        }
    }
}

/// What can go wrong running a statement, on either backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    NotCommitted(#[from] crate::group::NotCommitted),
    #[error("the data volume is read-only: the database is not touched until it is writable")]
    VolumeReadOnly,
    #[error("the writer is busy: no turn within {0:?}")]
    WriterTimeout(std::time::Duration),
    #[error("{0} did not finish")]
    Interrupted(&'static str),
    #[error("more than one statement in one query")]
    MultipleStatements,
    #[error("the query returned no row")]
    RowNotFound,
    #[error("column {column}: {problem}")]
    Column {
        column: String,
        problem: &'static str,
    },
}

impl DbError {
    /// Whether this write lost a race rather than failed: a foreign key to a row deleted
    /// meanwhile, or (PostgreSQL) a deadlock or serialization failure between transactions.
    pub(crate) fn lost_race(&self) -> bool {
        match self {
            Self::Postgres(sqlx::Error::Database(e)) => {
                e.is_foreign_key_violation()
                    || matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY
            }
            _ => false,
        }
    }

    /// Whether this failure passes by itself (see [`tessera_core::store::Unavailable`]): the
    /// database cannot be reached, has no connection free in time, or cannot write now. A
    /// statement of ours that is wrong, or data we cannot read, is not.
    pub(crate) fn is_unavailable(&self) -> bool {
        match self {
            Self::Postgres(e) => postgres_unavailable(e),
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                use rusqlite::ErrorCode as C;
                matches!(
                    e.code,
                    C::DiskFull
                        | C::ReadOnly
                        | C::SystemIoFailure
                        | C::DatabaseBusy
                        | C::DatabaseLocked
                        | C::CannotOpen
                        | C::OutOfMemory
                        | C::FileLockingProtocolFailed
                )
            }
            // Its own statements succeeded; the batch it joined failed to commit (the cause
            // is logged by the writer): nothing of it is stored, and trying again may work.
            Self::NotCommitted(_) | Self::WriterTimeout(_) | Self::VolumeReadOnly => true,
            Self::Sqlite(_)
            | Self::Interrupted(_)
            | Self::MultipleStatements
            | Self::RowNotFound
            | Self::Column { .. } => false,
        }
    }

    /// The name of the unique constraint (or its message) this error violates, if it is one.
    pub(crate) fn unique_violation(&self) -> Option<&str> {
        match self {
            Self::Postgres(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Some(e.constraint().unwrap_or(e.message()))
            }
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, message))
                if matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                // "UNIQUE constraint failed: users.email_normalized": the columns.
                let message = message.as_deref().unwrap_or_default();
                Some(message.rsplit(": ").next().unwrap_or(message))
            }
            _ => None,
        }
    }
}

/// PostgreSQL cannot be reached, or refuses work for a reason that passes: the connection
/// (SQLSTATE class 08), the server shutting down or starting (57P01–57P03), a statement
/// cancelled by `statement_timeout` (57014), too little disk, memory or connections (53),
/// an I/O error (58), a read-only standby (25006).
fn postgres_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("58")
                || code.starts_with("57P0")
                || code == "57014"
                || code == "25006"
        }),
        _ => false,
    }
}

/// Whether the connection itself was lost under the statement (PostgreSQL ended it, or the
/// socket broke), as opposed to the server refusing the statement: the failure a retry on a
/// fresh connection cures.
pub(crate) fn connection_lost(e: &DbError) -> bool {
    match e {
        DbError::Postgres(sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed) => true,
        DbError::Postgres(sqlx::Error::Database(e)) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row::new(
            Arc::from(vec!["n".to_owned(), "flag".to_owned(), "none".to_owned()]),
            vec![Value::Int(7), Value::Int(1), Value::Null(Kind::Blob)],
        )
    }

    #[test]
    fn columns_decode_by_name_and_position() {
        let row = row();
        assert_eq!(row.try_get::<i64, _>("n").unwrap(), 7);
        assert_eq!(row.try_get::<i64, _>(0).unwrap(), 7);
        assert!(row.try_get::<bool, _>("flag").unwrap());
        assert_eq!(row.try_get::<Option<Vec<u8>>, _>("none").unwrap(), None);
    }

    #[test]
    fn a_wrong_type_or_name_is_an_error_naming_the_column() {
        let row = row();
        let e = row.try_get::<String, _>("n").unwrap_err();
        assert_eq!(e.to_string(), "column n: not text");
        let e = row.try_get::<i64, _>("missing").unwrap_err();
        assert_eq!(e.to_string(), "column missing: no such column");
        assert!(row.try_get::<i64, _>("none").is_err());
    }

    #[tokio::test]
    async fn sqlite_counts_changes_of_its_own_statement_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut conn = crate::lite::Conn(crate::lite::open_writer(&path).unwrap());
        query("CREATE TABLE t (n INTEGER)")
            .execute(&mut conn)
            .await
            .unwrap();
        let inserted = query("INSERT INTO t (n) VALUES (1), (2), ($1) RETURNING n")
            .bind(3_i64)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(inserted.rows_affected(), 3);
        let read = query("SELECT n FROM t").execute(&mut conn).await.unwrap();
        assert_eq!(read.rows_affected(), 0, "a read changes nothing");
        // Parameters bind by number, wherever and however often they appear.
        let row = query("SELECT $2 AS b, $1 AS a, $2 AS again")
            .bind("one")
            .bind(2_i64)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>("a").unwrap(), "one");
        assert_eq!(row.try_get::<i64, _>("again").unwrap(), 2);
        let two = query("SELECT 1; SELECT 2").execute(&mut conn).await;
        assert!(matches!(two, Err(DbError::MultipleStatements)), "{two:?}");
    }

    #[test]
    fn a_null_parameter_keeps_its_type() {
        assert_eq!(None::<&str>.value(), Value::Null(Kind::Text));
        assert_eq!(Some(3_i64).value(), Value::Int(3));
        assert_eq!((&[1_u8, 2]).value(), Value::Blob(vec![1, 2]));
    }
}
