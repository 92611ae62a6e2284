//! Serving connections (SPEC §14, D1, D2): hyper's HTTP/1 with a timer, behind caps.
//!
//! - A request's head must arrive within the header timeout (10 s): hyper's
//!   `header_read_timeout`, which also runs while a keep-alive connection waits for its next
//!   request, so an idle connection is closed after the same time. (The body then has as long
//!   again, see `body`.)
//! - At most `max_connections_per_ip` connections are open from one client address (an IPv6
//!   client counts by its /64): one more is closed at once, before anything is read. A
//!   reverse proxy of `TESSERA_TRUSTED_PROXIES` speaks for many clients: its connections are
//!   not capped by address (only in all). At most
//!   `max_connections` are open in all: at that cap a new connection takes the place of the
//!   oldest one with no request in flight (idle, or still sending its head), and is refused
//!   only if every open one has a request in flight (see [`Open`]). Refusals are logged once
//!   a second. The default cap is half the open-file limit, which start-up raises to its hard
//!   maximum, so that the database, the log and the mail always find a file descriptor.
//! - Shutdown (`SIGTERM`): the listener closes, idle connections close, requests in flight
//!   finish and their connections close after the answer; whatever is still open after the
//!   grace period (30 s) is cut, and the count logged.

use crate::config::ServerConfig;
use crate::metrics::ConnectionStats;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_core::api_keys::IpRule;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// The largest default cap on connections, whatever the open-file limit.
const MAX_DEFAULT_CONNECTIONS: usize = 16_384;

/// What [`serve`] enforces, resolved from [`ServerConfig`].
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// `None`: no cap per address.
    pub max_per_ip: Option<usize>,
    /// Addresses the cap per address does not apply to: the trusted reverse proxies.
    pub proxies: Arc<[IpRule]>,
    pub shutdown_grace: Duration,
}

impl Limits {
    /// The configured limits; the connection cap from `open_files` when it is `0`; no cap
    /// per address for `proxies`.
    pub fn new(config: &ServerConfig, open_files: u64, proxies: &[IpRule]) -> Self {
        let max_connections = match config.max_connections {
            0 => usize::try_from(open_files / 2)
                .unwrap_or(MAX_DEFAULT_CONNECTIONS)
                .clamp(16, MAX_DEFAULT_CONNECTIONS),
            n => n,
        };
        Self {
            header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
            max_connections,
            max_per_ip: (config.max_connections_per_ip > 0)
                .then_some(config.max_connections_per_ip),
            proxies: proxies.into(),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
        }
    }
}

/// Connections the kernel completes and queues for us while the accept loop is busy: a
/// flood of connections then overflows this queue rather than the default 1,024, whose
/// overflow drops the next client's handshake (a 1 s retransmit for a legitimate client).
/// Linux caps it at `net.core.somaxconn` (4,096 by default).
const LISTEN_BACKLOG: u32 = 8192;

/// Listens on `bind` (`host:port`), with [`LISTEN_BACKLOG`].
pub async fn listen(bind: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for address in tokio::net::lookup_host(bind).await? {
        let socket = match address {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As the standard library's `bind` does: a restart need not wait for TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket
            .bind(address)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

/// Raises the soft limit on open files to the hard one (systemd's default soft limit, 1024,
/// is what a few hundred slow clients exhaust); returns the soft limit in force.
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum)
        && hard > soft
    {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return hard,
            Err(e) => tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit"),
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

/// Serves `router` on `listener` until `shutdown` completes, then shuts down gracefully
/// within `limits.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Open::default());
    let per_ip = Arc::new(PerAddress::default());
    let graceful = GracefulShutdown::new();
    let (cut, cut_signal) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let refusals = Refusals::default();
    let accept_errors = Refusals::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors (or another passing error): wait a moment
                    // rather than spin; the connections open meanwhile go on.
                    accept_errors.note(|n| tracing::error!(error = %e, times = n, "cannot accept a connection"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let proxy = limits.proxies.iter().any(|rule| rule.contains(peer.ip()));
        let cap = limits.max_per_ip.filter(|_| !proxy);
        let Some(slot) = PerAddress::enter(&per_ip, peer.ip(), cap) else {
            stats.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            refusals.note(|n| {
                tracing::warn!(
                    refused = n,
                    client = %peer.ip(),
                    cap = limits.max_per_ip,
                    "connections refused: too many open from one address (max_connections_per_ip)"
                );
            });
            continue;
        };
        let Some(admitted) = open.admit(limits.max_connections, &stats) else {
            stats.refused_total.fetch_add(1, Ordering::Relaxed);
            refusals.note(|n| {
                tracing::warn!(
                    refused = n,
                    cap = limits.max_connections,
                    "connections refused: too many open, every one with a request in flight \
                     (max_connections)"
                );
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let busy = Arc::clone(&admitted.busy);
        let service = router
            .clone()
            .map_request(move |mut request: axum::http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            })
            .map_future(move |answer| {
                let in_flight = InFlight::new(Arc::clone(&busy));
                async move {
                    let answer = answer.await;
                    drop(in_flight);
                    answer
                }
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        let mut cut_signal = cut_signal.clone();
        let stats = Arc::clone(&stats);
        let open = Arc::clone(&open);
        stats.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                _ = cut_signal.wait_for(|cut| *cut) => {}
                () = admitted.evicted.notified() => {}
            }
            open.leave(admitted.id);
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!(
        connections = open.count(),
        grace_secs = limits.shutdown_grace.as_secs(),
        "stopped accepting connections; finishing the requests in flight"
    );
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = open.count(),
            "the shutdown grace period is over: closing the connections still open"
        );
        let _ = cut.send(true);
    }
}

/// The open connections, oldest first, each with its count of requests in flight.
///
/// At the cap, a new connection is not simply refused (which a flood of slow or idle
/// connections would turn against every other client): the oldest connection with no
/// request in flight (an idle keep-alive connection, or one whose head has not arrived) is
/// closed to make room. Only when every open connection has a request in flight is the new
/// one refused.
#[derive(Default)]
struct Open {
    entries: Mutex<std::collections::BTreeMap<u64, Entry>>,
    next: AtomicU64,
}

struct Entry {
    busy: Arc<AtomicUsize>,
    evicted: Arc<Notify>,
}

/// A connection let in: its place in [`Open`].
struct Admitted {
    id: u64,
    busy: Arc<AtomicUsize>,
    evicted: Arc<Notify>,
}

impl Open {
    fn admit(&self, cap: usize, stats: &ConnectionStats) -> Option<Admitted> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= cap {
            let idle = entries
                .iter()
                .find(|(_, entry)| entry.busy.load(Ordering::SeqCst) == 0)
                .map(|(id, _)| *id)?;
            if let Some(entry) = entries.remove(&idle) {
                entry.evicted.notify_one();
                stats.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let admitted = Admitted {
            id,
            busy: Arc::default(),
            evicted: Arc::default(),
        };
        entries.insert(
            id,
            Entry {
                busy: Arc::clone(&admitted.busy),
                evicted: Arc::clone(&admitted.evicted),
            },
        );
        Some(admitted)
    }

    fn leave(&self, id: u64) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    fn count(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One request in flight on a connection, until dropped (answered, or its task gone).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(busy: Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::SeqCst);
        Self(busy)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Open connections per client address (an IPv6 address by its /64).
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted in [`PerAddress`] until dropped.
struct Slot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    fn enter(table: &Arc<Self>, ip: IpAddr, cap: Option<usize>) -> Option<Option<Slot>> {
        let Some(cap) = cap else {
            return Some(None);
        };
        let key = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
            v4 => v4,
        };
        let mut counts = table.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(key).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Some(Slot {
            table: Arc::clone(table),
            key,
        }))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Logs a flood of like events at most once a second, with how many there were.
struct Refusals {
    count: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Default for Refusals {
    fn default() -> Self {
        Self {
            count: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }
}

impl Refusals {
    fn note(&self, log: impl FnOnce(u64)) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            log(self.count.swap(0, Ordering::Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Limits, PerAddress};
    use crate::config::ServerConfig;
    use std::net::IpAddr;
    use std::sync::Arc;

    #[test]
    fn the_default_cap_is_half_the_open_file_limit_within_bounds() {
        let config = ServerConfig::default();
        assert_eq!(Limits::new(&config, 1024, &[]).max_connections, 512);
        assert_eq!(Limits::new(&config, 1 << 20, &[]).max_connections, 16_384);
        assert_eq!(Limits::new(&config, 8, &[]).max_connections, 16);
        let set = ServerConfig {
            max_connections: 100,
            max_connections_per_ip: 0,
            ..config
        };
        let limits = Limits::new(&set, 1024, &[]);
        assert_eq!(limits.max_connections, 100);
        assert_eq!(limits.max_per_ip, None);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_a_slot_is_given_back() {
        let table = Arc::new(PerAddress::default());
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let first = PerAddress::enter(&table, ip("2001:db8:1:2::1"), Some(2)).unwrap();
        let second = PerAddress::enter(&table, ip("2001:db8:1:2::ffff"), Some(2)).unwrap();
        assert!(PerAddress::enter(&table, ip("2001:db8:1:2:abcd::9"), Some(2)).is_none());
        assert!(PerAddress::enter(&table, ip("2001:db8:1:3::1"), Some(2)).is_some());
        drop(first);
        assert!(PerAddress::enter(&table, ip("2001:db8:1:2::7"), Some(2)).is_some());
        drop(second);
        // An IPv4 client seen through an IPv6 socket is the same client.
        let _v4 = PerAddress::enter(&table, ip("192.0.2.1"), Some(1)).unwrap();
        assert!(PerAddress::enter(&table, ip("::ffff:192.0.2.1"), Some(1)).is_none());
    }
}
