//! Group commit for SQLite: many write transactions share one `COMMIT`, so one fsync.
//!
//! SQLite (WAL, `synchronous = FULL`) syncs the log on every `COMMIT`, which caps a single
//! writer at the disk's fsync rate. The [`GroupWriter`] owns the one write connection behind a
//! FIFO mutex and runs each write transaction as a savepoint inside an outer transaction, the
//! *batch*, that one `COMMIT` ends for all of them:
//!
//! 1. [`GroupWriter::begin`] takes the mutex (in arrival order) and, if no batch is open,
//!    opens one: `BEGIN IMMEDIATE; SAVEPOINT t`. In an open batch the savepoint `t` is already
//!    there, empty, so beginning costs no statement. The handle it returns, [`GroupTx`], keeps
//!    the mutex and derefs to the connection.
//! 2. [`GroupTx::commit`] runs `RELEASE t; SAVEPOINT t`: the transaction's work joins the
//!    batch and a fresh savepoint awaits the next one. It adds a waiter to the batch, lets go
//!    of the mutex and waits for the waiter. The first transaction to join a batch spawns a
//!    flush task, which queues for the mutex behind every transaction already waiting for it.
//! 3. The flush task, once it holds the mutex, runs `COMMIT` (the fsync; the empty savepoint
//!    goes with it) and tells every waiter of the batch the outcome. Transactions that queued
//!    meanwhile form the next batch. No timer is involved: a lone transaction's flush finds
//!    the mutex free and commits at once.
//!
//! A handle dropped without `commit` (an error, `?`, an early return, a cancelled future)
//! undoes only its own work with `ROLLBACK TO t` (which keeps `t`, empty, for the next one)
//! before the mutex is released. A batch nobody is waiting for any more is rolled back, so
//! that the write lock is not held while nothing is written.
//!
//! Statements run in the calling thread (see `lite`); only the `COMMIT`, which waits for the
//! disk, goes to a blocking thread, with the mutex.
//!
//! ## Why this is as durable as one fsync per transaction
//! - `commit` returns `Ok` only after the `COMMIT` that contains the transaction succeeded:
//!   what a caller is told happened is on disk, exactly as before.
//! - A transaction only ever sees the work of transactions ahead of it in the same batch or in
//!   batches already committed. If its batch fails, all of it fails together: nobody is told
//!   "done" for work that depended on something lost.
//! - Whenever the outcome is not certain, the batch is failed, never reported as committed:
//!   a failed `COMMIT` (then `ROLLBACK`), a failed `ROLLBACK TO` (SQLite rolls the whole
//!   transaction back by itself after `SQLITE_FULL`, `SQLITE_IOERR` or some `SQLITE_BUSY`), and
//!   a control statement that did not finish (a panic) all end in `ROLLBACK` and an error for
//!   every waiter of the batch.
//! - Readers use other connections, which only see committed, so durable, data.
//!
//! The price is that a failure of the batch fails its neighbours too (they get an error, as
//! on a lost connection, and nothing of theirs is stored), and that a transaction waits for
//! the ones queued before it, as it already did with one write connection. One more: a
//! transaction that ends without writing (a refusal: "that email is taken", "the challenge
//! is gone") may have read a neighbour's work that its batch then fails to commit, so it
//! can refuse on the strength of a change that never lands. That takes a failed `COMMIT`
//! (a full disk, an I/O error), after which the refused request can simply be retried.
//!
//! The write connection is opened once: if it breaks, writes fail until the process is
//! restarted (SQLite connections to a local file do not break in normal operation).

use crate::lite::{BUSY_TIMEOUT, Conn};
use crate::query::DbError;
use rusqlite::{Connection, ErrorCode};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// How long a transaction waits for the writer before it fails.
const WAIT_FOR_WRITER: std::time::Duration = std::time::Duration::from_secs(30);

/// The SQLite write connection, shared by group commit.
pub(crate) struct GroupWriter {
    batch: Arc<Mutex<Batch>>,
    /// Set while the data volume is read-only (see `volume`): no transaction begins.
    read_only: Arc<std::sync::atomic::AtomicBool>,
}

/// A write transaction: a savepoint in the current batch, holding the writer until it ends.
///
/// Derefs to the connection, so statements run with `.execute(&mut *tx)`. Dropping it without
/// [`commit`](Self::commit) rolls its work back and leaves the rest of the batch alone.
pub(crate) struct GroupTx {
    /// Always `Some` until `commit` has released the savepoint.
    batch: Option<OwnedMutexGuard<Batch>>,
}

/// What lives behind the mutex: the connection and the state of the open batch.
struct Batch {
    conn: Conn,
    /// The outer transaction (`BEGIN IMMEDIATE`) is open, with the savepoint `t` on top of it,
    /// empty while nobody holds the mutex.
    open: bool,
    /// Set while a statement controlling the batch runs: if it does not finish (a panic), the
    /// connection's state is unknown and the next holder of the mutex rolls everything back.
    unsure: bool,
    /// The transactions released into the open batch, waiting for its `COMMIT`.
    waiters: Vec<oneshot::Sender<Result<(), NotCommitted>>>,
    /// Alive while a flush task is queued for the mutex. A token, not a flag: if that task is
    /// dropped before its turn (its runtime shut down), the next `commit` queues another one.
    flush_queued: Weak<()>,
    counters: Counters,
}

/// Why a transaction whose own statements succeeded was not committed.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the transaction was not committed: {reason}")]
pub(crate) struct NotCommitted {
    reason: &'static str,
    #[source]
    cause: Option<Arc<rusqlite::Error>>,
}

impl NotCommitted {
    fn new(reason: &'static str, cause: Option<rusqlite::Error>) -> Self {
        Self {
            reason,
            cause: cause.map(Arc::new),
        }
    }
}

/// What the writer did (atomics only so that counting needs no `&mut`; they are changed under
/// the mutex).
#[derive(Default)]
struct Counters {
    /// Transactions released into a batch.
    transactions: AtomicU64,
    /// Batches committed: one fsync each.
    commits: AtomicU64,
    /// Batches rolled back with transactions in them (or whose state was unknown).
    failures: AtomicU64,
}

/// How many transactions shared how many `COMMIT`s (for tests).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GroupStats {
    pub transactions: u64,
    pub commits: u64,
    pub failures: u64,
}

impl GroupWriter {
    /// Takes over `conn`, which must be idle (no transaction open); no transaction begins
    /// while `read_only` is set.
    pub(crate) fn new(conn: Connection, read_only: Arc<std::sync::atomic::AtomicBool>) -> Self {
        let batch = Batch {
            conn: Conn(conn),
            open: false,
            unsure: false,
            waiters: Vec::new(),
            flush_queued: Weak::new(),
            counters: Counters::default(),
        };
        Self {
            batch: Arc::new(Mutex::new(batch)),
            read_only,
        }
    }

    /// Starts a write transaction in the current batch, waiting for the transactions ahead.
    pub(crate) async fn begin(&self) -> Result<GroupTx, DbError> {
        if self.read_only.load(Ordering::SeqCst) {
            return Err(DbError::VolumeReadOnly);
        }
        // As a connection pool would: a writer stuck behind others gives up rather than
        // holding its request forever.
        let mut batch = tokio::time::timeout(WAIT_FOR_WRITER, Arc::clone(&self.batch).lock_owned())
            .await
            .map_err(|_| DbError::WriterTimeout(WAIT_FOR_WRITER))?;
        if batch.unsure {
            batch.reset(None);
        }
        if !batch.open {
            batch = open(batch).await?;
        }
        Ok(GroupTx { batch: Some(batch) })
    }

    /// The counts so far; waits for the writer like a transaction.
    #[cfg(test)]
    pub(crate) async fn stats(&self) -> GroupStats {
        self.batch.lock().await.counters.stats()
    }
}

#[cfg(test)]
impl Counters {
    fn stats(&self) -> GroupStats {
        GroupStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

impl GroupTx {
    fn batch_mut(&mut self) -> &mut Batch {
        self.batch
            .as_mut()
            .expect("a transaction holds the writer until it ends")
    }

    /// Commits: returns once the batch holding this transaction is on disk, or with an error
    /// if that batch failed (then nothing of this transaction is stored). If the future is
    /// dropped midway, the outcome is unknown to the caller, as with any database's `COMMIT`.
    pub(crate) async fn commit(mut self) -> Result<(), DbError> {
        // If this fails, the drop of `self` rolls back to `t`: that undoes this transaction if
        // RELEASE did not run, and fails the batch if RELEASE ran but SAVEPOINT did not (or if
        // SQLite had rolled everything back).
        self.batch_mut()
            .conn
            .0
            .execute_batch("RELEASE t; SAVEPOINT t")?;
        let mut batch = self
            .batch
            .take()
            .expect("a transaction holds the writer until it ends");
        let (done, outcome) = oneshot::channel();
        batch.waiters.push(done);
        batch.counters.transactions.fetch_add(1, Ordering::Relaxed);
        if batch.flush_queued.strong_count() == 0 {
            // Queues behind everyone already waiting for the writer: they join this batch.
            let queued = Arc::new(());
            batch.flush_queued = Arc::downgrade(&queued);
            tokio::spawn(flush(Arc::clone(OwnedMutexGuard::mutex(&batch)), queued));
        }
        drop(batch);
        match outcome.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(NotCommitted::new("the flush of its batch was stopped", None).into()),
        }
    }
}

impl Drop for GroupTx {
    fn drop(&mut self) {
        let Some(mut batch) = self.batch.take() else {
            return;
        };
        // Rolls back to the start of the savepoint, which stays, empty, for the next one.
        if let Err(e) = batch.conn.0.execute_batch("ROLLBACK TO t") {
            // SQLite already rolled the whole transaction back (or the savepoint was never
            // made): the work of the batch so far is gone.
            batch.reset(Some(e));
        }
        batch.close_if_idle();
    }
}

impl Deref for GroupTx {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self
            .batch
            .as_ref()
            .expect("a transaction holds the writer until it ends")
            .conn
    }
}

impl DerefMut for GroupTx {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.batch_mut().conn
    }
}

/// Opens a batch: `BEGIN IMMEDIATE; SAVEPOINT t`. Tried at once, without waiting; only if
/// another process holds the write lock (the operator CLI writing) does it wait for it, up
/// to [`BUSY_TIMEOUT`], on a blocking thread rather than the runtime's.
async fn open(mut batch: OwnedMutexGuard<Batch>) -> Result<OwnedMutexGuard<Batch>, DbError> {
    match batch.try_open() {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::DatabaseBusy => {}
        other => return other.map(|()| batch).map_err(DbError::from),
    }
    let (batch, opened) = tokio::task::spawn_blocking(move || {
        let opened = batch
            .conn
            .0
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| batch.try_open());
        // Back to never waiting on the runtime's threads.
        let reset = batch.conn.0.busy_timeout(std::time::Duration::ZERO);
        (batch, opened.and(reset))
    })
    .await
    // A panic there leaves `unsure` set: the next holder of the mutex rolls back.
    .map_err(|_| DbError::Interrupted("the writer's BEGIN"))?;
    opened?;
    Ok(batch)
}

/// Commits the batch once its turn for the writer comes, and tells its waiters. `queued` is
/// the token behind [`Batch::flush_queued`].
async fn flush(batch: Arc<Mutex<Batch>>, queued: Arc<()>) {
    let mut batch = batch.lock_owned().await;
    // Under the mutex: any later commit queues the next flush.
    drop(queued);
    if batch.unsure {
        batch.reset(None);
    }
    let waiters = std::mem::take(&mut batch.waiters);
    if waiters.is_empty() {
        // A reset already failed them.
        batch.close_if_idle();
        return;
    }
    // The COMMIT waits for the disk: on a thread made for waiting, with the mutex. If it never
    // finishes, its waiters hear nothing (an error for them) and the next holder rolls back
    // whatever is left.
    batch.unsure = true;
    let committing = tokio::task::spawn_blocking(move || {
        let outcome = match batch.conn.0.execute_batch("COMMIT") {
            Ok(()) => {
                batch.counters.commits.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, transactions = waiters.len(), "group COMMIT failed");
                batch.counters.failures.fetch_add(1, Ordering::Relaxed);
                // COMMIT may leave the transaction open (SQLITE_BUSY): end it.
                let _ = batch.conn.0.execute_batch("ROLLBACK");
                Err(NotCommitted::new("the batch's COMMIT failed", Some(e)))
            }
        };
        batch.open = false;
        batch.unsure = false;
        drop(batch);
        for waiter in waiters {
            // A waiter that stopped listening (a cancelled request) needs no answer.
            let _ = waiter.send(outcome.clone());
        }
    });
    // A panic there dropped the waiters, which tells them; nothing more to do here.
    let _ = committing.await;
}

impl Batch {
    /// `BEGIN IMMEDIATE; SAVEPOINT t`, or nothing open if that fails.
    fn try_open(&mut self) -> Result<(), rusqlite::Error> {
        self.unsure = true;
        if let Err(e) = self.conn.0.execute_batch("BEGIN IMMEDIATE; SAVEPOINT t") {
            // Fails harmlessly if BEGIN did not open a transaction.
            let _ = self.conn.0.execute_batch("ROLLBACK");
            self.unsure = false;
            return Err(e);
        }
        self.open = true;
        self.unsure = false;
        Ok(())
    }

    /// Rolls everything back and fails every waiter of the batch.
    fn reset(&mut self, cause: Option<rusqlite::Error>) {
        // Fails harmlessly when no transaction is open any more.
        let _ = self.conn.0.execute_batch("ROLLBACK");
        if self.open || self.unsure {
            self.counters.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                error = cause.as_ref().map(tracing::field::display),
                transactions = self.waiters.len(),
                "a write batch is rolled back: a transaction could not be undone alone, \
                 or a statement controlling the batch did not finish"
            );
        }
        let failed = NotCommitted::new("its batch was rolled back", cause);
        for waiter in self.waiters.drain(..) {
            let _ = waiter.send(Err(failed.clone()));
        }
        self.open = false;
        self.unsure = false;
    }

    /// Ends an open batch that no transaction is part of any more, so that the write lock is
    /// not held while nobody writes (another process may want it).
    fn close_if_idle(&mut self) {
        if self.open && self.waiters.is_empty() {
            let _ = self.conn.0.execute_batch("ROLLBACK");
            self.open = false;
        }
    }
}

#[cfg(test)]
mod tests;
