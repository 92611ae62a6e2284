//! Seeds a Tessera database (SQLite or PostgreSQL, already migrated by `tessera serve`) with
//! users who have TOTP on, and opens a second-step challenge for some of them, in bulk.
//!
//! Signing a million users up through the API would take an argon2 hash and a transaction
//! each; this writes the same rows the product writes (TOTP secrets sealed under the master
//! key with the user id as associated data, challenges stored as token hashes), many per
//! statement. The bench script checks one seeded challenge end to end before it measures,
//! so a seeder out of step with the schema fails loudly rather than measuring errors.

use anyhow::{Context, Result, bail};
use secrecy::SecretString;
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};
use std::io::Write;
use std::str::FromStr;
use tessera_core::config::SecurityPolicy;
use tessera_core::crypto::{MasterKey, Token};
use tessera_core::factors::totp::TotpSecret;
use tessera_core::password::Passwords;

/// The password of every seeded user.
pub const PASSWORD: &str = "bench-password-1";
/// Users per team account (the first is its owner).
const TEAM_SIZE: usize = 10;
/// Rows per INSERT statement.
const ROWS: usize = 500;

pub struct Seed {
    pub database: String,
    pub master_key: String,
    pub users: usize,
    pub challenges: usize,
    pub out: std::path::PathBuf,
}

enum Db {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

enum Value {
    Text(String),
    Int(i64),
    Blob(Vec<u8>),
}

impl Db {
    async fn open(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            // Bulk loading: durability per statement buys nothing here; the file is
            // synced when the connection closes.
            let connection = SqliteConnectOptions::from_str(url)?
                .synchronous(SqliteSynchronous::Off)
                .foreign_keys(true)
                .connect()
                .await?;
            Ok(Self::Sqlite(connection))
        } else {
            Ok(Self::Postgres(PgConnection::connect(url).await?))
        }
    }

    /// Inserts `rows` (each `columns` long) into `table` in statements of [`ROWS`] rows.
    async fn insert(&mut self, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) -> Result<()> {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Value>> = rows.by_ref().take(ROWS).collect();
            let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
            let mut n = 0;
            for (i, _) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for c in 0..columns.len() {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    n += 1;
                    sql.push_str(&format!("${n}"));
                }
                sql.push(')');
            }
            let values = chunk.into_iter().flatten();
            // The same binding for either driver's query type.
            macro_rules! bound {
                ($values:expr) => {{
                    let mut query = sqlx::query(&sql);
                    for v in $values {
                        query = match v {
                            Value::Text(t) => query.bind(t),
                            Value::Int(i) => query.bind(i),
                            Value::Blob(b) => query.bind(b),
                        };
                    }
                    query
                }};
            }
            match self {
                Self::Sqlite(c) => {
                    bound!(values).execute(&mut *c).await?;
                }
                Self::Postgres(c) => {
                    bound!(values).execute(&mut *c).await?;
                }
            }
        }
        Ok(())
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        match self {
            Self::Sqlite(c) => sqlx::query(sql).execute(&mut *c).await.map(drop)?,
            Self::Postgres(c) => sqlx::query(sql).execute(&mut *c).await.map(drop)?,
        }
        Ok(())
    }

    async fn count_users(&mut self) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM users";
        Ok(match self {
            Self::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(&mut *c).await?,
            Self::Postgres(c) => sqlx::query_scalar(sql).fetch_one(&mut *c).await?,
        })
    }

    async fn close(self) {
        match self {
            Self::Sqlite(c) => drop(c.close().await),
            Self::Postgres(c) => drop(c.close().await),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Seeds `users` users (skipping the users already there, so a second call for more adds
/// only the difference) and opens one challenge for each of the first `challenges`;
/// writes `challenge_token,secret_base32,email` lines to `out`.
pub async fn run(seed: Seed) -> Result<()> {
    let key = MasterKey::from_hex(seed.master_key.trim())
        .map_err(|_| anyhow::anyhow!("the master key must be 64 hex digits"))?;
    let sealer = key.sealer("totp");
    let mut db = Db::open(&seed.database)
        .await
        .with_context(|| format!("cannot open {}", seed.database))?;
    if db.count_users().await? != 0 {
        bail!("the database already has users: seed a fresh one");
    }
    let policy = SecurityPolicy::default();
    let password_hash = Passwords::new(&policy)
        .await?
        .hash(&SecretString::from(PASSWORD))
        .await?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&seed.out)?);
    let batch = 20_000;
    let mut done = 0;
    while done < seed.users {
        let n = batch.min(seed.users - done);
        // Each batch's challenges live from when it is written, not from when seeding began.
        let at = now();
        let mut accounts = Vec::new();
        let mut users = Vec::new();
        let mut factors = Vec::new();
        let mut challenges = Vec::new();
        let mut account = String::new();
        for i in done..done + n {
            if i % TEAM_SIZE == 0 {
                account = uuid::Uuid::now_v7().to_string();
                accounts.push(vec![
                    Value::Text(account.clone()),
                    Value::Text(format!("Team {}", i / TEAM_SIZE)),
                    Value::Int(at),
                ]);
            }
            let user = uuid::Uuid::now_v7().to_string();
            let email = format!("user{i}@bench.example");
            let role = if i % TEAM_SIZE == 0 {
                "owner"
            } else {
                "member"
            };
            users.push(vec![
                Value::Text(user.clone()),
                Value::Text(account.clone()),
                Value::Text(email.clone()),
                Value::Text(email.clone()),
                Value::Text(format!("User {i}")),
                Value::Text(role.to_owned()),
                Value::Text(password_hash.clone()),
                Value::Int(at),
            ]);
            let secret = TotpSecret::generate();
            factors.push(vec![
                Value::Text(user.clone()),
                Value::Blob(sealer.seal(secret.bytes(), user.as_bytes())),
                Value::Blob(Token::generate().hash().0.to_vec()),
                Value::Int(0),
                Value::Int(at),
            ]);
            if i < seed.challenges {
                let token = Token::generate();
                challenges.push(vec![
                    Value::Text(uuid::Uuid::now_v7().to_string()),
                    Value::Blob(token.hash().0.to_vec()),
                    Value::Text(user),
                    Value::Text("two_factor".to_owned()),
                    Value::Int(at),
                    Value::Int(at + policy.challenge_lifetime_secs),
                ]);
                writeln!(out, "{},{},{email}", token.expose(), secret.base32())?;
            }
        }
        db.execute("BEGIN").await?;
        db.insert("accounts", &["id", "name", "created_at"], accounts)
            .await?;
        db.insert(
            "users",
            &[
                "id",
                "account_id",
                "email",
                "email_normalized",
                "name",
                "role",
                "password_hash",
                "created_at",
            ],
            users,
        )
        .await?;
        db.insert(
            "totp_factors",
            &[
                "user_id",
                "secret_sealed",
                "paper_key_hash",
                "last_step",
                "enabled_at",
            ],
            factors,
        )
        .await?;
        db.insert(
            "login_challenges",
            &[
                "id",
                "token_hash",
                "user_id",
                "kind",
                "created_at",
                "expires_at",
            ],
            challenges,
        )
        .await?;
        db.execute("COMMIT").await?;
        done += n;
    }
    out.flush()?;
    if let Db::Postgres(_) = db {
        db.execute("ANALYZE").await?;
    }
    db.close().await;
    Ok(())
}
