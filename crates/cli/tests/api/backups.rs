//! Backups (SPEC §14): `tessera admin backup FILE` copies a live SQLite database while it
//! takes writes, `tessera admin restore-check` verifies a copy against the master key without
//! changing it; on PostgreSQL, `backup` names the `pg_dump` command instead.

use crate::helpers::TestApp;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tessera_store::testing::Backend;

backend_tests!(a_backup_is_taken_while_serving_and_checked);

async fn a_backup_is_taken_while_serving_and_checked(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    let copy_arg = copy.to_str().unwrap();
    if app.backend == Backend::Postgres {
        let (ok, _, err) = app.admin(&["backup", copy_arg]);
        assert!(!ok);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("pg_dump --format=custom --file={copy_arg} ")),
            "{err}"
        );
        assert!(!copy.exists());
        // A database a dump was restored into is checked by its URL, read-only.
        app.signed_up("before@example.com").await;
        let (ok, out, err) = app.admin(&["restore-check", app.db.url()]);
        assert!(ok, "{err}");
        assert!(out.contains("master key: matches"), "{out}");
        return;
    }
    app.signed_up("before@example.com").await;
    // Sign-ups keep coming while the copy is made.
    let (stop, written) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let api = app.api();
    let writer = {
        let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = serde_json::json!({"account_name": "Acme", "name": "Ada",
                    "email": format!("during{i}@example.com"), "password": crate::helpers::PASSWORD});
                assert_eq!(api.signup(&body).await.status(), 201);
                written.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    while written.load(Ordering::Relaxed) < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (ok, out, err) = app.admin(&["backup", copy_arg]);
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(ok, "{err}");
    assert!(out.starts_with("backup written to "), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the copy is private");
    }
    let (ok, _, err) = app.admin(&["backup", copy_arg]);
    assert!(!ok, "an existing file is never overwritten");
    assert!(err.contains("already exists"), "{err}");

    let before = std::fs::read(&copy).unwrap();
    let (ok, out, err) = app.admin(&["restore-check", copy_arg]);
    assert!(ok, "{err}");
    assert!(out.contains("migrations: current"), "{out}");
    assert!(out.contains("master key: matches"), "{out}");
    assert_eq!(out.lines().last(), Some("ok"));
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "read-only: the file is unchanged"
    );
    // Checked with another key, it is refused.
    let other = app.new_key_file("other.key");
    let mut check = app.tessera();
    check
        .env("TESSERA_MASTER_KEY_FILE", &other)
        .args(["admin", "restore-check", copy_arg]);
    let out = check.output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("master key mismatch")
    );

    // The copy holds what was acknowledged before it began, and opens as a database.
    let restored = tessera_store::connect(&format!("sqlite://{copy_arg}"))
        .await
        .unwrap();
    let users = restored.list_users(None).await.unwrap();
    assert!(
        users
            .iter()
            .any(|u| u.email.as_str() == "before@example.com")
    );
    assert!(
        users
            .iter()
            .any(|u| u.email.as_str() == "during0@example.com")
    );
}
