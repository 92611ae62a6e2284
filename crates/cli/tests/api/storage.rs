//! What the database holds: nothing secret in plain text, and everything after a restart.

use crate::helpers::{PASSWORD, ResponseExt, TestApp};
use sqlx::{Connection, Row};
use tessera_store::testing::Backend;

backend_tests!(
    the_database_holds_no_token_or_password_in_plain_text,
    data_and_sessions_survive_a_restart,
    files_are_owner_only_even_in_an_existing_folder,
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

    // A password typed into the email field (SPEC §8): refused, and kept only as a keyed hash.
    let typed = "Tr0ub4dor&3-Typed-As-Email";
    let response = app.login(typed, PASSWORD).await;
    assert_eq!(response.status(), 401);
    let stored = everything_stored(&app).await.to_lowercase();
    assert!(stored.contains("typed:"), "the failure is recorded, hashed");
    assert!(
        !stored.contains(&typed.to_lowercase()),
        "the typed identifier is not stored"
    );
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

/// SPEC §8: the data folder 0700 and the database, its WAL and every `.eml` file 0600, even
/// when the folder existed before with looser permissions.
async fn files_are_owner_only_even_in_an_existing_folder(mut app: TestApp) {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = app.db.data_dir().to_owned();
    let mail = dir.join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    std::fs::set_permissions(&mail, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    app.restart().await;
    assert_eq!(mode(&dir), 0o700);
    app.signed_in("files@example.com").await;
    assert_eq!(mode(&mail), 0o700);
    let emails: Vec<_> = std::fs::read_dir(&mail)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    assert!(
        !emails.is_empty(),
        "the device code was written to the folder"
    );
    for email in &emails {
        assert_eq!(mode(email), 0o600, "{}", email.display());
    }
    if app.backend == Backend::Sqlite {
        for name in ["tessera.db", "tessera.db-wal", "tessera.db-shm"] {
            let path = dir.join(name);
            if name == "tessera.db" || path.exists() {
                assert_eq!(mode(&path), 0o600, "{name}");
            }
        }
        assert!(dir.join("tessera.db-wal").exists(), "WAL mode");
    }
}
