//! PostgreSQL through sqlx: [`Exec`] for a pool and a connection.

use crate::query::{DbError, Exec, Kind, Query, Row, Value};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Column, PgConnection, PgPool, Postgres, Row as _, TypeInfo, ValueRef};
use std::sync::Arc;

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

fn prepare<'q>(query: &'q Query<'_>) -> PgQuery<'q> {
    query
        .args
        .iter()
        .fold(sqlx::query(query.sql), |q, value| match value {
            Value::Int(v) => q.bind(*v),
            Value::Text(v) => q.bind(v.as_str()),
            Value::Blob(v) => q.bind(v.as_slice()),
            Value::Bool(v) => q.bind(*v),
            Value::Null(Kind::Int) => q.bind(None::<i64>),
            Value::Null(Kind::Text) => q.bind(None::<&str>),
            Value::Null(Kind::Blob) => q.bind(None::<&[u8]>),
            Value::Null(Kind::Bool) => q.bind(None::<bool>),
        })
}

/// The rows of one query, sharing one list of column names.
fn convert(rows: Vec<PgRow>) -> Result<Vec<Row>, DbError> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    rows.iter()
        .map(|row| {
            let values = (0..columns.len())
                .map(|i| column(row, i))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Row::new(Arc::clone(&columns), values))
        })
        .collect()
}

fn column(row: &PgRow, i: usize) -> Result<Value, DbError> {
    let raw = row.try_get_raw(i)?;
    let type_name = raw.type_info().name().to_owned();
    let null = raw.is_null();
    let kind = match type_name.as_str() {
        "INT8" | "INT4" | "INT2" => Kind::Int,
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => Kind::Text,
        "BYTEA" => Kind::Blob,
        "BOOL" => Kind::Bool,
        _ => {
            return Err(DbError::Column {
                column: row.column(i).name().to_owned(),
                problem: "a type the store does not use",
            });
        }
    };
    if null {
        return Ok(Value::Null(kind));
    }
    Ok(match (kind, type_name.as_str()) {
        (Kind::Int, "INT4") => Value::Int(row.try_get::<i32, _>(i)?.into()),
        (Kind::Int, "INT2") => Value::Int(row.try_get::<i16, _>(i)?.into()),
        (Kind::Int, _) => Value::Int(row.try_get(i)?),
        (Kind::Text, _) => Value::Text(row.try_get(i)?),
        (Kind::Blob, _) => Value::Blob(row.try_get(i)?),
        (Kind::Bool, _) => Value::Bool(row.try_get(i)?),
    })
}

/// Runs `query` on `on`, a pool or a connection.
async fn execute<'c>(
    on: impl sqlx::Executor<'c, Database = Postgres>,
    query: Query<'_>,
) -> Result<u64, DbError> {
    Ok(prepare(&query).execute(on).await?.rows_affected())
}

async fn fetch_all<'c>(
    on: impl sqlx::Executor<'c, Database = Postgres>,
    query: Query<'_>,
) -> Result<Vec<Row>, DbError> {
    convert(prepare(&query).fetch_all(on).await?)
}

async fn fetch_optional<'c>(
    on: impl sqlx::Executor<'c, Database = Postgres>,
    query: Query<'_>,
) -> Result<Option<Row>, DbError> {
    let row = prepare(&query).fetch_optional(on).await?;
    Ok(convert(row.into_iter().collect())?.pop())
}

/// The pool and a connection (a transaction derefs to one) run statements alike.
macro_rules! exec_on {
    ($($on:ty),+) => {$(
        impl Exec for $on {
            async fn execute(self, query: Query<'_>) -> Result<u64, DbError> {
                execute(self, query).await
            }
            async fn fetch_all(self, query: Query<'_>) -> Result<Vec<Row>, DbError> {
                fetch_all(self, query).await
            }
            async fn fetch_optional(self, query: Query<'_>) -> Result<Option<Row>, DbError> {
                fetch_optional(self, query).await
            }
        }
    )+};
}

exec_on!(&PgPool, &mut PgConnection);
