//! The `tessera` binary itself: `serve` in an empty folder, and the operator's `admin`.

use crate::helpers::{PASSWORD, ResponseExt, TestApp};

backend_tests!(
    admin_lists_accounts_and_users,
    admin_reports_mistakes,
    admin_lists_the_outbox,
    admin_disables_2fa_with_a_reason_ends_sessions_and_emails,
    admin_unlock_lifts_the_password_lock,
);

async fn admin_lists_accounts_and_users(app: TestApp) {
    let first = app.signed_up("first@example.com").await;
    app.signed_up("second@example.com").await;
    let out = app.tessera().args(["admin", "accounts"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2);
    assert!(
        text.lines()
            .all(|l| l.contains("\tAcme\t2fa:optional\tusers:1\t")),
        "{text}"
    );

    let account = first["account"]["id"].as_str().unwrap();
    let out = app
        .tessera()
        .args(["admin", "users", "--account", account])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(
        text.contains("first@example.com\tAda Lovelace\towner"),
        "{text}"
    );

    let out = app.tessera().args(["admin", "users"]).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
}

async fn admin_reports_mistakes(app: TestApp) {
    for args in [
        &["admin", "users", "--account", "nope"][..],
        &[
            "admin",
            "users",
            "--account",
            "01900000-0000-7000-8000-000000000000",
        ][..],
        &["admin", "frobnicate"][..],
    ] {
        let out = app.tessera().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.trim().is_empty(), "{args:?} explains itself");
    }
}

async fn admin_lists_the_outbox(mut app: TestApp) {
    let dead = format!("smtp://127.0.0.1:{}", crate::smtp::free_port());
    app.use_smtp_url(dead).await;
    app.signed_up("queued@example.com").await;
    app.lock_out("queued@example.com").await;
    let mut line = String::new();
    for _ in 0..200 {
        let out = app.tessera().args(["admin", "mail"]).output().unwrap();
        assert!(out.status.success());
        line = String::from_utf8(out.stdout).unwrap();
        // Claimed (attempt counted), then settled with the error.
        if line.contains("attempts:1") && !line.trim_end().ends_with("\t-") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let fields: Vec<_> = line.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 7, "{line}");
    assert_eq!(
        &fields[1..5],
        [
            "pending",
            "password_locked",
            "queued@example.com",
            "attempts:1"
        ]
    );
    assert!(fields[5].starts_with("next:"), "{line}");
    assert_ne!(fields[6], "-", "the last error is shown: {line}");
    // Sent emails are listed only with --all.
    let out = app
        .tessera()
        .args(["admin", "mail", "--all"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
}

async fn admin_disables_2fa_with_a_reason_ends_sessions_and_emails(app: TestApp) {
    let Some((token, _)) = app.user_with_2fa("support@example.com").await else {
        return;
    };
    let (ok, _, err) = app.admin_disable_2fa("support@example.com", " ");
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "tessera: a reason is required (it goes into the audit log)"
    );
    let (ok, _, _) = app.admin(&["disable-2fa", "--email", "support@example.com"]);
    assert!(!ok, "--reason is required");
    let (ok, out, err) = app.admin_disable_2fa("SUPPORT@example.com", "ticket 4711, ID checked");
    assert!(ok, "{err}");
    assert!(out.contains("disabled for support@example.com"));
    assert_eq!(app.me(&token).await.status(), 401, "sessions ended");
    let body = app
        .login("support@example.com", PASSWORD)
        .await
        .body()
        .await;
    assert_eq!(body["status"], "authenticated", "password only now");
    let outbox = app.store().await.list_outbox(true, 100).await.unwrap();
    assert!(outbox.iter().any(|e| e.kind == "two_factor_reset"));
    let (ok, out, _) = app.admin(&["events", "--email", "support@example.com", "--limit", "5"]);
    assert!(ok);
    let reset = out
        .lines()
        .find(|l| l.contains("\ttwo_factor_reset\t"))
        .expect("audited");
    assert!(reset.contains("ticket 4711, ID checked"), "{reset}");
    let (ok, _, err) = app.admin_disable_2fa("support@example.com", "again");
    assert!(!ok);
    assert!(
        err.contains("does not have two-factor authentication on"),
        "{err}"
    );
    let (ok, _, err) = app.admin_disable_2fa("nobody@example.com", "x");
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

async fn admin_unlock_lifts_the_password_lock(app: TestApp) {
    app.signed_up("locked@example.com").await;
    app.lock_out("locked@example.com").await;
    let (ok, out, _) = app.admin(&["unlock", "--email", "locked@example.com"]);
    assert!(ok);
    assert_eq!(out.trim(), "unlocked locked@example.com");
    app.signed_in_again("locked@example.com").await;
    let (ok, out, _) = app.admin(&["unlock", "--email", "locked@example.com"]);
    assert!(ok);
    assert_eq!(out.trim(), "locked@example.com was not locked");
    let (_, out, _) = app.admin(&["events", "--email", "locked@example.com"]);
    assert!(
        out.lines().take(2).any(|l| l.contains("\tsign_in\t")),
        "{out}"
    );
    assert_eq!(out.matches("\tunlocked\t").count(), 1, "{out}");
}

/// `tessera serve` in an empty folder creates its data folder, a private master key and the
/// SQLite database, and says where it listens.
#[tokio::test]
async fn serve_runs_in_an_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.current_dir(dir.path()).env_clear();
    let mut server = crate::helpers::process::serve(command).await;
    let health = server.api.health().await.text().await.unwrap();
    server.child.kill().await.unwrap();
    assert_eq!(health, "{\"status\":\"ok\",\"database\":\"ok\"}");

    let data = dir.path().join("tessera-data");
    assert!(data.join("tessera.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the master key is private");
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the data folder is private");
    }
}
