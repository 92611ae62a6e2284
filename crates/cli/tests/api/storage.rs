//! What the database holds: nothing secret in plain text, and everything after a restart.

use crate::helpers::{PASSWORD, ResponseExt, TestApp};
use sqlx::{Connection, Row};
use tessera_store::testing::Backend;

backend_tests!(
    the_database_holds_no_token_or_password_in_plain_text,
    data_and_sessions_survive_a_restart,
);

/// Everything the database stores, as text: the raw SQLite files (including the WAL and free
/// pages), or every row of every PostgreSQL table.
pub async fn everything_stored(app: &TestApp) -> String {
    match app.backend {
        Backend::Sqlite => {
            let mut all = Vec::new();
            for entry in std::fs::read_dir(app.db.data_dir()).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().contains("tessera.db") {
                    all.extend(std::fs::read(path).unwrap());
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(app.db.url()).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let mut all = String::new();
            for table in tables {
                let rows = sqlx::query(&format!("SELECT t::text AS row FROM {table} t"))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                for row in rows {
                    all.push_str(row.get::<&str, _>("row"));
                    all.push('\n');
                }
            }
            all
        }
    }
}

async fn the_database_holds_no_token_or_password_in_plain_text(app: TestApp) {
    let token = app.signed_in("secret@example.com").await;
    let stored = everything_stored(&app).await;
    assert!(stored.contains("secret@example.com"), "the dump is real");
    assert!(
        stored.contains("$argon2id$"),
        "passwords are argon2id hashes"
    );
    assert!(!stored.contains(PASSWORD), "the password is not stored");
    assert!(!stored.contains(&token), "the session token is not stored");
}

async fn data_and_sessions_survive_a_restart(mut app: TestApp) {
    let token = app.signed_in("durable@example.com").await;
    app.restart().await;
    let me = app.me(&token).await.body().await;
    assert_eq!(me["user"]["email"], "durable@example.com");
    assert_eq!(
        app.login("durable@example.com", PASSWORD).await.status(),
        200
    );
}
