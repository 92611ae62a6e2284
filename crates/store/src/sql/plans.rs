//! The statements on every request's path read by index, never by scanning a table: a
//! view or join that stops SQLite from narrowing a subquery to one user turns a lookup into a
//! read of every row (the `active_factors` view once did, and `GET /me` fell 600-fold on a
//! large database). SQLite's own plan for each statement is checked on the migrated schema.

use rusqlite::Connection;

/// Every statement that runs on each request of its kind.
const HOT: &[(&str, &str)] = &[
    ("a session (every signed-in request)", super::sessions::FIND),
    (
        "a session with 2FA status (GET /me)",
        super::sessions::FIND_WITH_STATUS,
    ),
    ("an API key (the gate)", super::api_keys::FIND_BY_HASH),
    (
        "a challenge (the second step)",
        super::second_step::FIND_CONTEXT,
    ),
    ("a user's 2FA status", super::factors::STATUS),
    (
        "a device challenge replaced (every device sign-in)",
        super::devices::END_DEVICE_CHALLENGES,
    ),
];

/// SQLite's plan of `sql`, a line per step.
fn plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    // Unbound parameters are NULL: the plan is the same as for any value.
    let mut rows = plan.raw_query();
    let mut lines = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        lines.push(row.get::<_, String>(3).unwrap());
    }
    lines
}

/// The tables a plan line says are scanned whole (`SCAN t`, not `SEARCH t USING …`).
fn scanned_tables(conn: &Connection, sql: &str) -> Vec<String> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    plan(conn, sql)
        .iter()
        .filter_map(|line| line.strip_prefix("SCAN "))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|name| tables.contains(name))
        .collect()
}

/// A fresh database with every migration, and a connection to it (the folder goes with
/// the first).
async fn migrated() -> (tempfile::TempDir, Connection) {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("tessera.db");
    crate::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let conn = Connection::open(&path).unwrap();
    (folder, conn)
}

#[tokio::test]
async fn hot_statements_read_by_index() {
    let (_folder, conn) = migrated().await;
    for (what, sql) in HOT {
        assert_eq!(
            scanned_tables(&conn, sql),
            Vec::<String>::new(),
            "{what} scans a table: {sql}"
        );
    }
}

/// The outbox's workers poll often: a poll seeks the due emails and never reads the ones
/// waiting for a later retry (every pending row, when the SMTP server has been down).
#[tokio::test]
async fn a_poll_of_the_outbox_reads_only_due_emails() {
    let (_folder, conn) = migrated().await;
    let probe = plan(&conn, &super::outbox::due_probe());
    assert!(
        probe.iter().any(|line| line.contains("next_attempt_at<")),
        "{probe:?}"
    );
    // The claim seeks the due emails the same way, then updates them by id.
    let claim = plan(&conn, &super::outbox::claim_statement());
    assert!(
        claim.iter().any(|line| line.contains("next_attempt_at<")),
        "{claim:?}"
    );
    assert!(claim[0].contains("(id=?)"), "{claim:?}");
}

/// The check itself sees a scan: the statement of 0015's view, which read every TOTP factor.
#[tokio::test]
async fn a_scan_through_a_grouped_view_is_seen() {
    let (_folder, conn) = migrated().await;
    conn.execute_batch(
        "CREATE VIEW grouped_factors (user_id, kind, enabled_at) AS \
         SELECT user_id, 'totp', enabled_at FROM totp_factors UNION ALL \
         SELECT user_id, 'webauthn', MIN(created_at) FROM webauthn_credentials GROUP BY user_id",
    )
    .unwrap();
    let scanned = scanned_tables(
        &conn,
        "SELECT u.id, EXISTS (SELECT 1 FROM grouped_factors f WHERE f.user_id = u.id) \
         FROM users u WHERE u.id = $1",
    );
    assert!(
        scanned.iter().any(|table| table == "totp_factors"),
        "{scanned:?}"
    );
}
