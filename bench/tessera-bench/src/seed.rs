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
use std::ops::Range;
use std::str::FromStr;
use tessera_core::config::SecurityPolicy;
use tessera_core::crypto::{MasterKey, Sealer, Token};
use tessera_core::factors::totp::TotpSecret;
use tessera_core::password::Passwords;

/// The password of every seeded user.
pub const PASSWORD: &str = "bench-password-1";
/// Users per team account (the first is its owner), unless told otherwise.
pub const TEAM_SIZE: usize = 10;
/// Rows per INSERT statement.
const ROWS: usize = 500;
/// Users per transaction.
const BATCH: usize = 20_000;

pub struct Seed {
    pub database: String,
    pub master_key: String,
    pub users: usize,
    pub challenges: usize,
    /// Users per team account (the first is its owner).
    pub team_size: usize,
    pub out: std::path::PathBuf,
    /// Authorization codes to issue (for the first users) and where to write them.
    pub oidc: Option<(usize, std::path::PathBuf)>,
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

/// Seeds `users` users into a database that has none (it refuses one that has) and opens one
/// challenge for each of the first `challenges`; writes `challenge_token,secret_base32,email`
/// lines to `out`.
pub async fn run(seed: Seed) -> Result<()> {
    let key = MasterKey::from_hex(seed.master_key.trim())
        .map_err(|_| anyhow::anyhow!("the master key must be 64 hex digits"))?;
    let mut db = Db::open(&seed.database)
        .await
        .with_context(|| format!("cannot open {}", seed.database))?;
    if db.count_users().await? != 0 {
        bail!("the database already has users: seed a fresh one");
    }
    let policy = SecurityPolicy::default();
    let common = Common {
        sealer: key.sealer("totp"),
        password_hash: Passwords::new(&policy)
            .await?
            .hash(&SecretString::from(PASSWORD))
            .await?,
        challenge_lifetime: policy.challenge_lifetime_secs,
        challenges: seed.challenges,
        team_size: seed.team_size.max(1),
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(&seed.out)?);
    let mut oidc = match &seed.oidc {
        Some((codes, path)) => Some(Oidc::register(&mut db, *codes, path).await?),
        None => None,
    };
    let mut done = 0;
    while done < seed.users {
        let n = BATCH.min(seed.users - done);
        Batch::build(done..done + n, &common, &mut out, oidc.as_mut())?
            .insert(&mut db)
            .await?;
        done += n;
    }
    out.flush()?;
    if let Some(oidc) = oidc.as_mut() {
        oidc.out.flush()?;
    }
    if let Db::Postgres(_) = db {
        db.execute("ANALYZE").await?;
    }
    db.close().await;
    Ok(())
}

/// The OIDC client the seeded codes belong to, and where they are written.
struct Oidc {
    client_id: String,
    codes: usize,
    out: std::io::BufWriter<std::fs::File>,
}

impl Oidc {
    /// Registers a confidential client as `tessera admin oidc-clients add` would, and starts
    /// the file of its credentials and codes.
    async fn register(db: &mut Db, codes: usize, path: &std::path::Path) -> Result<Self> {
        let client_id = format!("tsc_bench{}", uuid::Uuid::new_v4().simple());
        let secret = Token::generate();
        db.insert(
            "oidc_clients",
            &[
                "id",
                "name",
                "secret_hash",
                "redirect_uris",
                "post_logout_redirect_uris",
                "id_token_alg",
                "created_at",
            ],
            vec![vec![
                Value::Text(client_id.clone()),
                Value::Text("Bench".into()),
                Value::Blob(secret.hash().0.to_vec()),
                Value::Text(crate::load::OIDC_REDIRECT_URI.into()),
                Value::Text(String::new()),
                Value::Text("RS256".into()),
                Value::Int(now()),
            ]],
        )
        .await?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "{client_id},{}", secret.expose())?;
        Ok(Self {
            client_id,
            codes,
            out,
        })
    }
}

/// What every seeded user shares.
struct Common {
    sealer: Sealer,
    password_hash: String,
    challenge_lifetime: i64,
    /// Users numbered below this get a challenge.
    challenges: usize,
    team_size: usize,
}

/// The rows of one transaction, table by table.
#[derive(Default)]
struct Batch {
    accounts: Vec<Vec<Value>>,
    users: Vec<Vec<Value>>,
    factors: Vec<Vec<Value>>,
    challenges: Vec<Vec<Value>>,
    codes: Vec<Vec<Value>>,
}

impl Batch {
    /// The rows of the users numbered `range`, in teams of `team_size`; writes a line to
    /// `out` for each challenge.
    fn build(
        range: Range<usize>,
        common: &Common,
        out: &mut impl Write,
        mut oidc: Option<&mut Oidc>,
    ) -> Result<Self> {
        // Each batch's challenges live from when it is written, not from when seeding began.
        let at = now();
        let mut batch = Self::default();
        let mut account = String::new();
        for i in range {
            if i.is_multiple_of(common.team_size) {
                account = uuid::Uuid::now_v7().to_string();
                batch.accounts.push(vec![
                    Value::Text(account.clone()),
                    Value::Text(format!("Team {}", i / common.team_size)),
                    Value::Int(at),
                ]);
            }
            let user = batch.add_user(i, &account, at, common, out)?;
            if let Some(oidc) = oidc.as_deref_mut().filter(|o| i < o.codes) {
                batch.add_code(&user, at, oidc)?;
            }
        }
        Ok(batch)
    }

    /// User number `i` of `account`, their TOTP factor, and their challenge if they get one.
    fn add_user(
        &mut self,
        i: usize,
        account: &str,
        at: i64,
        common: &Common,
        out: &mut impl Write,
    ) -> Result<String> {
        let user = uuid::Uuid::now_v7().to_string();
        let email = format!("user{i}@bench.example");
        let role = if i.is_multiple_of(common.team_size) {
            "owner"
        } else {
            "member"
        };
        self.users.push(vec![
            Value::Text(user.clone()),
            Value::Text(account.to_owned()),
            Value::Text(email.clone()),
            Value::Text(email.clone()),
            Value::Text(format!("User {i}")),
            Value::Text(role.to_owned()),
            Value::Text(common.password_hash.clone()),
            Value::Int(at),
        ]);
        let secret = TotpSecret::generate();
        self.factors.push(vec![
            Value::Text(user.clone()),
            Value::Blob(common.sealer.seal(secret.bytes(), user.as_bytes())),
            Value::Blob(Token::generate().hash().0.to_vec()),
            Value::Int(0),
            Value::Int(at),
        ]);
        if i < common.challenges {
            let token = Token::generate();
            self.challenges.push(vec![
                Value::Text(uuid::Uuid::now_v7().to_string()),
                Value::Blob(token.hash().0.to_vec()),
                Value::Text(user.clone()),
                Value::Text("two_factor".to_owned()),
                Value::Int(at),
                Value::Int(at + common.challenge_lifetime),
            ]);
            writeln!(out, "{},{},{email}", token.expose(), secret.base32())?;
        }
        Ok(user)
    }

    /// An authorization code of the bench client for `user`, as a sign-in with TOTP issues
    /// it; valid for an hour (a real one lives 60 s) so the load can spend it.
    fn add_code(&mut self, user: &str, at: i64, oidc: &mut Oidc) -> Result<()> {
        let code = Token::generate();
        self.codes.push(vec![
            Value::Blob(code.hash().0.to_vec()),
            Value::Text(uuid::Uuid::new_v4().to_string()),
            Value::Text(oidc.client_id.clone()),
            Value::Text(user.to_owned()),
            Value::Text(crate::load::OIDC_REDIRECT_URI.into()),
            Value::Text("openid email profile".into()),
            Value::Int(at),
            Value::Text("pwd otp mfa".into()),
            Value::Int(at),
            Value::Int(at + 3600),
        ]);
        writeln!(oidc.out, "{}", code.expose())?;
        Ok(())
    }

    /// Writes the batch in one transaction.
    async fn insert(self, db: &mut Db) -> Result<()> {
        db.execute("BEGIN").await?;
        db.insert("accounts", &["id", "name", "created_at"], self.accounts)
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
            self.users,
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
            self.factors,
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
            self.challenges,
        )
        .await?;
        db.insert(
            "oidc_codes",
            &[
                "code_hash",
                "grant_id",
                "client_id",
                "user_id",
                "redirect_uri",
                "scope",
                "auth_time",
                "amr",
                "created_at",
                "expires_at",
            ],
            self.codes,
        )
        .await?;
        db.execute("COMMIT").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each seeded user looks like, but for ids, keys and times: team name, email,
    /// normalized email, name, role, created with its team, last TOTP step, factor enabled
    /// when the user was created, paper key hash length, open challenges.
    type Shape = (
        String,
        String,
        String,
        String,
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
    );

    const SHAPES: &str = "SELECT a.name, u.email, u.email_normalized, u.name, u.role, \
        u.created_at = a.created_at, f.last_step, f.enabled_at = u.created_at, \
        length(f.paper_key_hash), (SELECT count(*) FROM login_challenges c \
        WHERE c.user_id = u.id AND c.kind = 'two_factor' AND c.expires_at - c.created_at = ?) \
        FROM users u JOIN accounts a ON a.id = u.account_id JOIN totp_factors f ON f.user_id = u.id";

    fn expected(i: usize, challenges: usize) -> Shape {
        let email = format!("user{i}@bench.example");
        let role = if i.is_multiple_of(TEAM_SIZE) {
            "owner"
        } else {
            "member"
        };
        let team = format!("Team {}", i / TEAM_SIZE);
        let name = format!("User {i}");
        let open = i64::from(i < challenges);
        (
            team,
            email.clone(),
            email,
            name,
            role.into(),
            1,
            0,
            1,
            32,
            open,
        )
    }

    async fn migrated(dir: &std::path::Path) -> String {
        let database = format!("sqlite:{}?mode=rwc", dir.join("seed.db").display());
        let mut c = SqliteConnection::connect(&database).await.unwrap();
        let migrations = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../crates/store/migrations/sqlite"
        );
        sqlx::migrate::Migrator::new(std::path::Path::new(migrations))
            .await
            .unwrap()
            .run(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        database
    }

    /// Several statements per table (more than [`ROWS`] rows), a team cut short, challenges
    /// for some users only; then each challenge line checked against the database.
    #[tokio::test]
    async fn seeds_teams_with_totp_and_challenges_once() {
        let dir = std::env::temp_dir().join(format!("tessera-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = migrated(&dir).await;
        let key = MasterKey::generate();
        let seed = |users| Seed {
            database: database.clone(),
            master_key: key.to_hex(),
            users,
            challenges: 600,
            team_size: TEAM_SIZE,
            out: dir.join("challenges.csv"),
            oidc: Some((30, dir.join("oidc.csv"))),
        };
        run(seed(1_201)).await.unwrap();

        let mut c = SqliteConnection::connect(&database).await.unwrap();
        let mut shapes: Vec<Shape> = sqlx::query_as(SHAPES)
            .bind(SecurityPolicy::default().challenge_lifetime_secs)
            .fetch_all(&mut c)
            .await
            .unwrap();
        shapes.sort_by_key(|s| s.3[5..].parse::<usize>().unwrap());
        let want: Vec<Shape> = (0..1_201).map(|i| expected(i, 600)).collect();
        assert_eq!(shapes, want);
        for (table, rows) in [
            ("accounts", 121),
            ("login_challenges", 600),
            ("oidc_clients", 1),
            ("oidc_codes", 30),
        ] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&mut c)
                .await
                .unwrap();
            assert_eq!(n, rows, "{table}");
        }
        let hashes: i64 = sqlx::query_scalar("SELECT count(DISTINCT password_hash) FROM users")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(hashes, 1);

        let lines = std::fs::read_to_string(dir.join("challenges.csv")).unwrap();
        let sealer = key.sealer("totp");
        let mut n = 0;
        for (i, line) in lines.lines().enumerate() {
            let [token, secret, email] = line.split(',').collect::<Vec<_>>()[..] else {
                panic!("{line}");
            };
            assert_eq!(email, format!("user{i}@bench.example"));
            let (id, sealed): (String, Vec<u8>) = sqlx::query_as(
                "SELECT u.id, f.secret_sealed FROM users u \
                 JOIN totp_factors f ON f.user_id = u.id \
                 JOIN login_challenges c ON c.user_id = u.id \
                 WHERE u.email = ? AND c.token_hash = ?",
            )
            .bind(email)
            .bind(Token::from_client(token).hash().0.to_vec())
            .fetch_one(&mut c)
            .await
            .unwrap();
            let opened = sealer.open(&sealed, id.as_bytes()).unwrap();
            assert_eq!(TotpSecret::from_bytes(opened).base32(), secret);
            n += 1;
        }
        assert_eq!(n, 600);
        // The client's credentials, then its codes, each stored as its hash.
        let oidc = std::fs::read_to_string(dir.join("oidc.csv")).unwrap();
        let mut lines = oidc.lines();
        let (client, secret) = lines.next().unwrap().split_once(',').unwrap();
        let stored: Vec<u8> =
            sqlx::query_scalar("SELECT secret_hash FROM oidc_clients WHERE id = ?")
                .bind(client)
                .fetch_one(&mut c)
                .await
                .unwrap();
        assert_eq!(stored, Token::from_client(secret).hash().0.to_vec());
        for code in lines {
            let found: i64 =
                sqlx::query_scalar("SELECT count(*) FROM oidc_codes WHERE code_hash = ?")
                    .bind(Token::from_client(code).hash().0.to_vec())
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            assert_eq!(found, 1);
        }
        c.close().await.unwrap();

        let again = run(seed(10)).await.unwrap_err();
        assert!(again.to_string().contains("already has users"), "{again}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
