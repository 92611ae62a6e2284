//! Group commit: batching, a transaction's own rollback, failed batches, durability.
//!
//! To put transactions in one batch deterministically, a test holds the writer's mutex itself
//! and lets transactions queue behind it: [`GroupWriter::begin`] clones the mutex's `Arc` and
//! queues for the lock in the same poll, so the `Arc`'s count tells how many are waiting, and
//! the mutex lets them in in that order.

use super::{GroupStats, GroupTx, GroupWriter};
use crate::query::{DbError, query};
use rusqlite::Connection;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::Timestamp;
use tessera_core::email::Email;
use tessera_core::model::{Account, AccountId, AuthSource, Role, User, UserId};
use tessera_core::sign_in::AccountStore;
use tessera_core::store::Effects;
use tokio::task::JoinHandle;

/// A writer on a fresh database file with one table, `items (name PRIMARY KEY)`, plus a
/// `children` table whose foreign key is checked only at `COMMIT`.
struct Fixture {
    writer: Arc<GroupWriter>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("group.db");
        let conn = crate::lite::open_writer(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE items (name TEXT PRIMARY KEY); \
             CREATE TABLE parents (id INTEGER PRIMARY KEY); \
             CREATE TABLE children (parent INTEGER \
                 REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .unwrap();
        Self {
            writer: Arc::new(GroupWriter::new(conn, Default::default())),
            path,
            _dir: dir,
        }
    }

    /// The items on disk, read through a connection of its own.
    async fn items(&self) -> Vec<String> {
        let conn = Connection::open(&self.path).unwrap();
        let mut statement = conn
            .prepare("SELECT name FROM items ORDER BY name")
            .unwrap();
        let names = statement.query_map([], |row| row.get(0)).unwrap();
        names.collect::<Result<_, _>>().unwrap()
    }

    async fn stats(&self) -> GroupStats {
        self.writer.stats().await
    }

    /// Runs `work` on a task of its own; returns once it waits for the writer (which the
    /// caller holds), so tasks started one after the other get the writer in that order.
    async fn queue<F, Fut>(&self, work: F) -> JoinHandle<Result<(), DbError>>
    where
        F: FnOnce(Arc<GroupWriter>) -> Fut,
        Fut: Future<Output = Result<(), DbError>> + Send + 'static,
    {
        let before = Arc::strong_count(&self.writer.batch);
        let task = tokio::spawn(work(Arc::clone(&self.writer)));
        while Arc::strong_count(&self.writer.batch) == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        task
    }
}

async fn insert(tx: &mut GroupTx, name: &str) -> Result<(), DbError> {
    query("INSERT INTO items (name) VALUES ($1)")
        .bind(name)
        .execute(&mut **tx)
        .await
        .map(drop)
}

/// One transaction inserting `name`, committed.
async fn insert_one(writer: Arc<GroupWriter>, name: String) -> Result<(), DbError> {
    let mut tx = writer.begin().await?;
    insert(&mut tx, &name).await?;
    tx.commit().await
}

/// Fails a test that would otherwise hang; not a measure of speed.
async fn soon<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("finished")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_waiting_for_the_writer_share_one_commit() {
    let f = Fixture::new().await;
    let held = Arc::clone(&f.writer.batch).lock_owned().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let name = format!("item{i:03}");
        tasks.push(f.queue(|w| insert_one(w, name)).await);
    }
    drop(held);
    for task in tasks {
        soon(task).await.unwrap().unwrap();
    }
    assert_eq!(f.items().await.len(), 200);
    let stats = f.stats().await;
    assert_eq!((stats.transactions, stats.commits), (200, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transactions_all_commit_in_fewer_batches() {
    let f = Fixture::new().await;
    let tasks: Vec<_> = (0..200)
        .map(|i| tokio::spawn(insert_one(Arc::clone(&f.writer), format!("item{i:03}"))))
        .collect();
    for task in tasks {
        soon(task).await.unwrap().unwrap();
    }
    let expected: Vec<_> = (0..200).map(|i| format!("item{i:03}")).collect();
    assert_eq!(f.items().await, expected);
    let stats = f.stats().await;
    assert_eq!(stats.transactions, 200);
    assert!(stats.commits < 200, "no batching: {stats:?}");
    assert_eq!(stats.failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_leaves_no_trace_and_its_batch_commits() {
    let f = Fixture::new().await;
    let held = Arc::clone(&f.writer.batch).lock_owned().await;
    let a = f.queue(|w| insert_one(w, "a".into())).await;
    // Inserts "b", then fails on a duplicate of "a" (in the batch, not yet committed): the
    // error returns early and drops the transaction.
    let b = f
        .queue(|w| async move {
            let mut tx = w.begin().await?;
            insert(&mut tx, "b").await?;
            insert(&mut tx, "a").await?;
            tx.commit().await
        })
        .await;
    let c = f.queue(|w| insert_one(w, "c".into())).await;
    drop(held);
    soon(a).await.unwrap().unwrap();
    let failed = soon(b).await.unwrap().unwrap_err();
    assert!(failed.unique_violation().is_some(), "{failed}");
    soon(c).await.unwrap().unwrap();
    assert_eq!(f.items().await, ["a", "c"]);
    let stats = f.stats().await;
    assert_eq!((stats.transactions, stats.commits), (2, 1), "{stats:?}");
    assert_eq!(stats.failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_rollback_to_the_savepoint_fails_the_whole_batch_fails() {
    let f = Fixture::new().await;
    let held = Arc::clone(&f.writer.batch).lock_owned().await;
    let a = f.queue(|w| insert_one(w, "a".into())).await;
    // As SQLite does by itself after SQLITE_FULL or SQLITE_IOERR: the whole transaction,
    // "a" included, is rolled back under the feet of the batch.
    let b = f
        .queue(|w| async move {
            let mut tx = w.begin().await?;
            insert(&mut tx, "b").await?;
            query("ROLLBACK").execute(&mut *tx).await?;
            Err(DbError::RowNotFound)
        })
        .await;
    let c = f.queue(|w| insert_one(w, "c".into())).await;
    drop(held);
    let lost = soon(a).await.unwrap().unwrap_err();
    assert!(lost.to_string().contains("not committed"), "{lost}");
    soon(b).await.unwrap().unwrap_err();
    // The next transaction starts a new batch.
    soon(c).await.unwrap().unwrap();
    assert_eq!(f.items().await, ["c"]);
    let stats = f.stats().await;
    assert_eq!((stats.commits, stats.failures), (1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_commit_fails_every_transaction_of_the_batch_hears_it() {
    let f = Fixture::new().await;
    let held = Arc::clone(&f.writer.batch).lock_owned().await;
    let a = f.queue(|w| insert_one(w, "a".into())).await;
    // A foreign key checked at COMMIT: the batch's COMMIT fails.
    let b = f
        .queue(|w| async move {
            let mut tx = w.begin().await?;
            query("INSERT INTO children (parent) VALUES (42)")
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .await;
    drop(held);
    for task in [a, b] {
        let e = soon(task).await.unwrap().unwrap_err();
        assert!(e.to_string().contains("COMMIT failed"), "{e}");
    }
    assert!(f.items().await.is_empty());
    // The writer goes on.
    soon(insert_one(Arc::clone(&f.writer), "d".into()))
        .await
        .unwrap();
    assert_eq!(f.items().await, ["d"]);
    let stats = f.stats().await;
    assert_eq!((stats.commits, stats.failures), (1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_transaction_commits_without_waiting_for_others() {
    let f = Fixture::new().await;
    // Nothing else runs: no batch to fill, no timer to wait for.
    soon(insert_one(Arc::clone(&f.writer), "alone".into()))
        .await
        .unwrap();
    assert_eq!(f.items().await, ["alone"]);
    let stats = f.stats().await;
    assert_eq!((stats.transactions, stats.commits), (1, 1), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_does_not_keep_the_write_lock() {
    let f = Fixture::new().await;
    let mut tx = f.writer.begin().await.unwrap();
    insert(&mut tx, "x").await.unwrap();
    drop(tx);
    // Waits for the writer, so for the rollback the drop started.
    assert_eq!(f.stats().await.transactions, 0);
    // Another process could write now.
    let other = Connection::open(&f.path).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO items (name) VALUES ('other'); COMMIT")
        .unwrap();
    soon(insert_one(Arc::clone(&f.writer), "y".into()))
        .await
        .unwrap();
    assert_eq!(f.items().await, ["other", "y"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transaction_is_rolled_back() {
    let f = Fixture::new().await;
    let (inserted, wait) = tokio::sync::oneshot::channel();
    let w = Arc::clone(&f.writer);
    let task = tokio::spawn(async move {
        let mut tx = w.begin().await.unwrap();
        insert(&mut tx, "cancelled").await.unwrap();
        inserted.send(()).unwrap();
        std::future::pending::<()>().await;
        tx.commit().await
    });
    wait.await.unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    soon(insert_one(Arc::clone(&f.writer), "next".into()))
        .await
        .unwrap();
    assert_eq!(f.items().await, ["next"]);
}

/// Another process holding the write lock (the operator CLI) makes a new batch wait, on a
/// blocking thread: the runtime's only thread goes on running other tasks meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn waiting_for_another_process_s_write_lock_does_not_block_the_runtime() {
    let f = Fixture::new().await;
    let (held, locked) = tokio::sync::oneshot::channel();
    let path = f.path.clone();
    let other = std::thread::spawn(move || {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO items (name) VALUES ('other')")
            .unwrap();
        held.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        conn.execute_batch("COMMIT").unwrap();
    });
    locked.await.unwrap();
    let insert = tokio::spawn(insert_one(Arc::clone(&f.writer), "mine".into()));
    let mut ticks = 0;
    while !insert.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
        ticks += 1;
    }
    soon(insert).await.unwrap().unwrap();
    other.join().unwrap();
    assert!(
        ticks >= 10,
        "the runtime stood still while waiting: {ticks} ticks"
    );
    assert_eq!(f.items().await, ["mine", "other"]);
}

fn signup(i: usize) -> (Account, User) {
    let t0 = Timestamp::from_unix(1_800_000_000);
    let account = Account {
        id: AccountId::new(),
        name: format!("Account {i}"),
        two_factor_required: false,
        grace_period_until: None,
        trusted_devices: tessera_core::model::TrustedDevices::Allowed,
        sso_two_factor: tessera_core::model::SsoTwoFactor::Exempt,
        created_at: t0,
    };
    let user = User {
        id: UserId::new(),
        account_id: account.id,
        email: Email::parse(&format!("user{i}@example.com")).unwrap(),
        name: "Owner".into(),
        role: Role::Owner,
        auth_source: AuthSource::Password,
        created_at: t0,
    };
    (account, user)
}

async fn sqlite_store() -> (crate::SqliteStore, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let store = crate::open_sqlite(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    (store, path, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sign_ups_share_commits_and_are_all_stored() {
    let (store, _, _dir) = sqlite_store().await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let (account, user) = signup(i);
                store
                    .create_account_with_owner(&account, &user, "hash", &Effects::default())
                    .await
            })
        })
        .collect();
    for task in tasks {
        soon(task).await.unwrap().unwrap();
    }
    assert_eq!(store.list_accounts().await.unwrap().len(), 200);
    let stats = store.write.stats().await;
    assert_eq!(stats.transactions, 200);
    assert!(stats.commits < 200, "no batching: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_write_is_in_the_file() {
    let (store, path, _dir) = sqlite_store().await;
    // The writer really syncs every COMMIT.
    let mut tx = store.write.begin().await.unwrap();
    let synchronous: i64 = query("PRAGMA synchronous")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    let journal: String = query("PRAGMA journal_mode")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    drop(tx);
    assert_eq!((synchronous, journal.as_str()), (2, "wal"), "FULL, WAL");

    let (account, user) = signup(1);
    store
        .create_account_with_owner(&account, &user, "hash", &Effects::default())
        .await
        .unwrap();
    // The store stays open (no checkpoint on close): a new connection reads the file.
    let fresh = Connection::open(&path).unwrap();
    let found: String = fresh
        .query_row(
            "SELECT email FROM users WHERE id = ?1",
            [user.id.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(found, "user1@example.com");
}

/// `cargo test --release -p tessera-store throughput -- --ignored --nocapture`: durable write
/// transactions per second through the store, on this machine's disk.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, not a test"]
async fn throughput() {
    let (store, _, _dir) = sqlite_store().await;
    let store = Arc::new(store);
    for writers in [1, 16, 64, 256] {
        let per_writer = 20_000 / writers;
        let before = store.write.stats().await;
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for i in 0..per_writer {
                        let (account, user) = signup(1_000_000 * (writers + 1) + w * 10_000 + i);
                        store
                            .create_account_with_owner(&account, &user, "hash", &Effects::default())
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let after = store.write.stats().await;
        let n = after.transactions - before.transactions;
        let commits = after.commits - before.commits;
        println!(
            "{writers:>4} writers: {:>7.0} transactions/s, {:>6.1} per COMMIT",
            n as f64 / elapsed,
            n as f64 / commits as f64
        );
    }
}
