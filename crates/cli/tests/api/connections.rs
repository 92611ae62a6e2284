//! Connections (SPEC §14, D1, D2, D9): slow heads are closed, idle connections too, a cap
//! per client address, a readable 413 at any size, and `SIGTERM` with a deadline. These
//! are about the HTTP side, so they run on SQLite only; every client is a raw socket, to say
//! exactly what goes on the wire.

use crate::helpers::{ResponseExt, TestApp, spawn_app_with};
use reqwest::StatusCode;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tessera_store::testing::{Backend, TestDatabase};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

async fn app_with(configure: impl FnOnce(&mut tessera_server::Config)) -> TestApp {
    let db = TestDatabase::create(Backend::Sqlite).await.unwrap();
    spawn_app_with(Backend::Sqlite, db, configure).await
}

fn address(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().unwrap()
}

/// A connection from `source` (any 127.x.y.z address is this machine).
async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads until the server closes the connection (or `limit` passes): what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut got = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut got)).await {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(_) => None,
    }
}

/// `GET /health` on a fresh connection answers, and quickly. (A pooled one could be the
/// very connection the server is closing as idle.)
async fn answers_quickly(app: &TestApp) {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(app.url("/api/v1/health"))
        .header("connection", "close")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "answered in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_head_and_an_idle_connection_are_closed_after_the_header_timeout() {
    let app = app_with(|c| c.server.header_timeout_secs = 1).await;
    let to = address(&app);
    let mut slow = TcpStream::connect(to).await.unwrap();
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(to).await.unwrap();
    idle.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Meanwhile everyone else is answered.
    answers_quickly(&app).await;
    let (slow_got, idle_got) = tokio::join!(
        read_until_closed(&mut slow, Duration::from_secs(4)),
        read_until_closed(&mut idle, Duration::from_secs(4)),
    );
    let elapsed = started.elapsed();
    let slow_got = slow_got.expect("the half-sent head is closed");
    assert!(!slow_got.contains("200 OK"), "{slow_got}");
    let idle_got = idle_got.expect("the idle keep-alive connection is closed");
    assert!(idle_got.starts_with("HTTP/1.1 200 OK"), "{idle_got}");
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
    answers_quickly(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_per_address_are_closed_and_others_served() {
    let app = app_with(|c| {
        c.server.max_connections_per_ip = 3;
        c.trusted_proxies = vec![tessera_core::api_keys::IpRule::parse("127.0.0.4").unwrap()];
    })
    .await;
    let to = address(&app);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 2], to).await);
    }
    // Served in turn: the three are open.
    for stream in &mut held {
        stream
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0; 512];
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    }
    // A fourth from the same address is closed before it is read.
    let mut fourth = connect_from([127, 0, 0, 2], to).await;
    let _ = fourth
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let got = read_until_closed(&mut fourth, Duration::from_secs(2)).await;
    assert_eq!(got.as_deref(), Some(""), "refused without an answer");
    let metrics = app.metrics().await.text().await.unwrap();
    assert!(
        metrics.contains("tessera_connections_refused_total{cap=\"per_ip\"} 1"),
        "{metrics}"
    );
    // Another address is served as usual.
    let mut other = connect_from([127, 0, 0, 3], to).await;
    other
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut other, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // A trusted reverse proxy speaks for many clients: no cap by its address.
    let mut proxied = Vec::new();
    for _ in 0..6 {
        proxied.push(connect_from([127, 0, 0, 4], to).await);
    }
    for stream in &mut proxied {
        stream
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0; 512];
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(
            buffer[..n].starts_with(b"HTTP/1.1 200"),
            "a proxied connection is served"
        );
    }
    // Once one of the three goes, the address may connect again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = connect_from([127, 0, 0, 2], to).await;
    again
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut again, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_the_oldest_idle_connection_makes_room() {
    let app = app_with(|c| c.server.max_connections = 3).await;
    let to = address(&app);
    let mut idle = Vec::new();
    for source in [2, 3, 4] {
        idle.push(connect_from([127, 0, 0, source], to).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A fourth client is served: the oldest silent connection is closed for it.
    let response = reqwest::Client::new()
        .get(app.url("/api/v1/health"))
        .header("connection", "close")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let oldest = read_until_closed(&mut idle[0], Duration::from_secs(2)).await;
    assert_eq!(
        oldest.as_deref(),
        Some(""),
        "the oldest idle one was closed"
    );
    let metrics = reqwest::Client::new()
        .get(app.url("/metrics"))
        .header("connection", "close")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // One for the health check, one more if its connection had not quite ended when the
    // metrics' arrived.
    let evicted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tessera_connections_evicted_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&evicted), "{metrics}");
}

const EIGHT_MIB: usize = 8 * 1024 * 1024;

/// Sends `head`, then (concurrently with reading the answer) `body`; the answer.
async fn send(to: SocketAddr, head: String, body: Vec<u8>) -> String {
    let stream = TcpStream::connect(to).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    write.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        // The server may stop reading past its bound; that is its right.
        let _ = write.write_all(&body).await;
        write
    });
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut got))
        .await
        .expect("answered in time")
        .expect("the answer is readable, not a reset connection");
    drop(writer);
    String::from_utf8_lossy(&got).into_owned()
}

fn assert_413(answer: &str) {
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(
        answer.contains("\"code\":\"payload_too_large\""),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_8_mib_gets_a_readable_413_however_it_is_sent() {
    let app = app_with(|_| {}).await;
    let to = address(&app);
    let body = vec![b'x'; EIGHT_MIB];
    let head = |extra: &str| {
        format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Connection: close\r\n{extra}\r\n"
        )
    };

    // With its length declared: refused from the header, the body read and discarded.
    let answer = send(
        to,
        head(&format!("Content-Length: {EIGHT_MIB}\r\n")),
        body.clone(),
    )
    .await;
    assert_413(&answer);

    // With `Expect: 100-continue`: answered before any body is sent (no `100 Continue`).
    let mut stream = TcpStream::connect(to).await.unwrap();
    stream
        .write_all(
            head(&format!(
                "Content-Length: {EIGHT_MIB}\r\nExpect: 100-continue\r\n"
            ))
            .as_bytes(),
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered at once");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert_413(&answer);

    // Chunked: read until past the limit, the rest discarded.
    let mut chunked = Vec::new();
    for chunk in body.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = send(to, head("Transfer-Encoding: chunked\r\n"), chunked).await;
    assert_413(&answer);

    // A body within the limit is served as before.
    let response = app.login("nobody@example.com", "not the password").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let _ = response.body().await;
}

/// `tessera serve` with a client stuck mid-body exits within its shutdown grace period after
/// `SIGTERM`, answering a request in flight meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_slow_client_exits_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    // Started with systemd's default soft limit on open files, which it raises.
    let mut child = tokio::process::Command::new("prlimit")
        .args([
            "--nofile=1024:4096",
            "--",
            env!("CARGO_BIN_EXE_tessera"),
            "serve",
        ])
        .current_dir(dir.path())
        .env_clear()
        .env("TESSERA_BIND", "127.0.0.1:0")
        .env("TESSERA_LOG_FORMAT", "json")
        .env("TESSERA_SHUTDOWN_GRACE_SECS", "1")
        .env("TESSERA_HEADER_TIMEOUT_SECS", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut address = None;
    let mut limits = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        if entry["fields"]["open_files"].is_number() {
            limits = Some(entry["fields"].clone());
        }
        if let Some(a) = entry["fields"]["address"].as_str() {
            address = Some(a.parse::<SocketAddr>().unwrap());
            break;
        }
    }
    let to = address.expect("the bound address is logged");
    let limits = limits.expect("the connection limits are logged");
    assert_eq!(
        limits["open_files"], 4096,
        "raised to the hard limit: {limits}"
    );
    assert_eq!(limits["max_connections"], 2048, "{limits}");
    // Keep reading the log, so that the server never blocks on a full pipe.
    let log = tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    // A client that sent its head and half of its body, and then nothing.
    let mut slow = TcpStream::connect(to).await.unwrap();
    slow.write_all(
        b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"email\":",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let pid = child.id().unwrap().to_string();
    let started = Instant::now();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the server exits within the grace period")
        .unwrap();
    let elapsed = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(elapsed < Duration::from_secs(3), "exited after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "waited for the request in flight"
    );
    let log = log.await.unwrap();
    assert!(log.contains("grace period is over"), "{log}");
    // New connections are refused once the listener is closed.
    assert!(TcpStream::connect(to).await.is_err());
}
