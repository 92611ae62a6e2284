//! Trying a request again when PostgreSQL lost its connection under it (SPEC §14, D10).
//!
//! PostgreSQL can end a busy connection (`pg_terminate_backend`, a restart, a failover, a
//! proxy's idle cut); the statement on it fails with `57P01` or a broken socket. The pool
//! replaces the connection by itself, so the same work on a fresh one will most likely
//! succeed. It is safe to run the whole request again only if nothing it did can have
//! reached the database. So the store notes, for the request it runs under ([`watched`]):
//!
//! - *wrote*: a `COMMIT` was sent (whether it succeeded or not: a connection lost during
//!   `COMMIT` leaves the outcome unknown), or a single-statement write ran in autocommit;
//! - *lost*: a statement failed because the connection was lost.
//!
//! A request is [`Verdict::SafeToRetry`] when it lost a connection and wrote nothing: its
//! transactions were all rolled back by PostgreSQL with the connection, and its reads can be
//! read again. Anything else is answered as it came (`503 unavailable` for a lost connection).
//! Work outside a watched request (the outbox worker, the CLI) is not noted.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

tokio::task_local! {
    static WORK: Work;
}

#[derive(Default)]
struct Work {
    wrote: AtomicBool,
    lost: AtomicBool,
}

/// What [`watched`] saw the store do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A connection was lost and nothing was written: running it again is safe.
    SafeToRetry,
    /// Anything else.
    AsIs,
}

/// Runs `work`, one request's handling, noting what the store does for it.
pub async fn watched<F: Future>(work: F) -> (F::Output, Verdict) {
    let log = Work::default();
    let (output, log) = WORK
        .scope(log, async move {
            let output = work.await;
            (
                output,
                WORK.with(|w| {
                    (
                        w.wrote.load(Ordering::SeqCst),
                        w.lost.load(Ordering::SeqCst),
                    )
                }),
            )
        })
        .await;
    let verdict = match log {
        (false, true) => Verdict::SafeToRetry,
        _ => Verdict::AsIs,
    };
    (output, verdict)
}

/// A `COMMIT` is about to be sent, or an autocommit write to run.
pub(crate) fn wrote() {
    let _ = WORK.try_with(|w| w.wrote.store(true, Ordering::SeqCst));
}

/// A statement failed because its connection was lost.
pub(crate) fn lost() {
    let _ = WORK.try_with(|w| w.lost.store(true, Ordering::SeqCst));
}

#[cfg(test)]
mod tests {
    use super::{Verdict, lost, watched, wrote};

    #[tokio::test]
    async fn only_a_lost_connection_before_any_write_may_run_again() {
        let ((), verdict) = watched(async { lost() }).await;
        assert_eq!(verdict, Verdict::SafeToRetry);
        let ((), verdict) = watched(async {
            wrote();
            lost();
        })
        .await;
        assert_eq!(
            verdict,
            Verdict::AsIs,
            "a COMMIT was sent: its outcome is unknown"
        );
        let ((), verdict) = watched(async { wrote() }).await;
        assert_eq!(verdict, Verdict::AsIs);
        let ((), verdict) = watched(async {}).await;
        assert_eq!(verdict, Verdict::AsIs);
        // Outside a watched request (the outbox worker), nothing is noted and nothing fails.
        lost();
        wrote();
    }
}
