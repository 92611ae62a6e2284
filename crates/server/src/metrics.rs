//! Prometheus metrics at `GET /metrics`: request counts and latencies per route, and sign-in
//! outcomes. Kept per application (not global) so tests can run many side by side.

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tessera_core::crypto::{Token, secure_eq};
use tessera_mail::DeliveryStats;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    sign_ins: Mutex<BTreeMap<&'static str, u64>>,
    delivery: Arc<DeliveryStats>,
    /// Sealed values no key of the ring opened (SPEC §14).
    decrypt_failures: Arc<AtomicU64>,
    connections: Arc<ConnectionStats>,
}

/// What the accept loop (`serve`) counts.
#[derive(Default)]
pub struct ConnectionStats {
    /// Connections open now.
    pub open: AtomicI64,
    /// Connections closed at once: over `max_connections`, …
    pub refused_total: AtomicU64,
    /// … or over `max_connections_per_ip`.
    pub refused_per_ip: AtomicU64,
    /// Connections with no request in flight closed to make room at `max_connections`.
    pub evicted: AtomicU64,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    pub fn new(
        delivery: Arc<DeliveryStats>,
        decrypt_failures: Arc<AtomicU64>,
        connections: Arc<ConnectionStats>,
    ) -> Self {
        Self {
            requests: Mutex::default(),
            latency: Mutex::default(),
            sign_ins: Mutex::default(),
            delivery,
            decrypt_failures,
            connections,
        }
    }

    /// Counts a password sign-in by outcome (`success`, `invalid_credentials`, `throttled`,
    /// `error`).
    pub fn sign_in(&self, outcome: &'static str) {
        if let Ok(mut map) = self.sign_ins.lock() {
            *map.entry(outcome).or_default() += 1;
        }
    }

    fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut map) = self.latency.lock() {
            let h = map.entry(route.to_owned()).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        self.render_latency(&mut out);
        self.render_sign_ins(&mut out);
        self.render_emails(&mut out);
        describe(
            &mut out,
            "tessera_decrypt_failures_total",
            "counter",
            "Stored secrets (TOTP secrets, queued emails) that no master key of this instance could decrypt.",
        );
        let _ = writeln!(
            out,
            "tessera_decrypt_failures_total {}",
            self.decrypt_failures.load(Ordering::Relaxed)
        );
        self.render_connections(&mut out);
        out
    }

    fn render_requests(&self, out: &mut String) {
        describe(
            out,
            "tessera_http_requests_total",
            "counter",
            "HTTP requests by method, route and status.",
        );
        if let Ok(map) = self.requests.lock() {
            for ((method, route, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "tessera_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
    }

    fn render_latency(&self, out: &mut String) {
        describe(
            out,
            "tessera_http_request_duration_seconds",
            "histogram",
            "Time to answer, by route.",
        );
        if let Ok(map) = self.latency.lock() {
            for (route, h) in map.iter() {
                for (bound, n) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(
                        out,
                        "tessera_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "tessera_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                     tessera_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                     tessera_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
        }
    }

    fn render_sign_ins(&self, out: &mut String) {
        describe(
            out,
            "tessera_sign_ins_total",
            "counter",
            "Password sign-ins by outcome.",
        );
        if let Ok(map) = self.sign_ins.lock() {
            for (outcome, n) in map.iter() {
                let _ = writeln!(out, "tessera_sign_ins_total{{outcome=\"{outcome}\"}} {n}");
            }
        }
    }

    fn render_emails(&self, out: &mut String) {
        describe(
            out,
            "tessera_emails_total",
            "counter",
            "Outbox deliveries by outcome (this instance).",
        );
        for (outcome, counter) in [
            ("sent", &self.delivery.sent),
            ("retried", &self.delivery.retried),
            ("failed", &self.delivery.failed),
        ] {
            let _ = writeln!(
                out,
                "tessera_emails_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
    }
}

impl Metrics {
    fn render_connections(&self, out: &mut String) {
        let c = &self.connections;
        describe(
            out,
            "tessera_connections_open",
            "gauge",
            "HTTP connections open now.",
        );
        let _ = writeln!(
            out,
            "tessera_connections_open {}",
            c.open.load(Ordering::Relaxed)
        );
        describe(
            out,
            "tessera_connections_refused_total",
            "counter",
            "Connections closed at once, by the cap they were over.",
        );
        for (cap, counter) in [("total", &c.refused_total), ("per_ip", &c.refused_per_ip)] {
            let _ = writeln!(
                out,
                "tessera_connections_refused_total{{cap=\"{cap}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        describe(
            out,
            "tessera_connections_evicted_total",
            "counter",
            "Connections with no request in flight closed to make room at the cap.",
        );
        let _ = writeln!(
            out,
            "tessera_connections_evicted_total {}",
            c.evicted.load(Ordering::Relaxed)
        );
    }
}

/// The `# HELP` and `# TYPE` lines of one metric.
fn describe(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Middleware: times every request and counts it under its route pattern (never the raw
/// path, which may hold a token).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`. With `TESSERA_METRICS_TOKEN` set it asks for `Authorization: Bearer
/// <token>` (SPEC §8), compared in constant time (as SHA-256 hashes of equal length).
pub async fn render(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &state.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| Token::from_client(token.trim()).hash());
        let allowed = given.is_some_and(|given| secure_eq(&given.0, &expected.0));
        if !allowed {
            return AppError::Unauthenticated.into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two requests to one route, sign-ins and deliveries, as `render` wrote them.
    const EXPECTED: &str = r#"# HELP tessera_http_requests_total HTTP requests by method, route and status.
# TYPE tessera_http_requests_total counter
tessera_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1
tessera_http_requests_total{method="GET",route="/api/v1/me",status="401"} 1
# HELP tessera_http_request_duration_seconds Time to answer, by route.
# TYPE tessera_http_request_duration_seconds histogram
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="0.001"} 1
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="0.0025"} 1
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="0.005"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="0.01"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="0.025"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="0.05"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="0.1"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="0.25"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="0.5"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="1"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="2.5"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="5"} 2
tessera_http_request_duration_seconds_bucket{route="/api/v1/me",le="+Inf"} 2
tessera_http_request_duration_seconds_sum{route="/api/v1/me"} 0.0034000000000000002
tessera_http_request_duration_seconds_count{route="/api/v1/me"} 2
# HELP tessera_sign_ins_total Password sign-ins by outcome.
# TYPE tessera_sign_ins_total counter
tessera_sign_ins_total{outcome="success"} 2
tessera_sign_ins_total{outcome="throttled"} 1
# HELP tessera_emails_total Outbox deliveries by outcome (this instance).
# TYPE tessera_emails_total counter
tessera_emails_total{outcome="sent"} 3
tessera_emails_total{outcome="retried"} 0
tessera_emails_total{outcome="failed"} 1
# HELP tessera_decrypt_failures_total Stored secrets (TOTP secrets, queued emails) that no master key of this instance could decrypt.
# TYPE tessera_decrypt_failures_total counter
tessera_decrypt_failures_total 2
# HELP tessera_connections_open HTTP connections open now.
# TYPE tessera_connections_open gauge
tessera_connections_open 0
# HELP tessera_connections_refused_total Connections closed at once, by the cap they were over.
# TYPE tessera_connections_refused_total counter
tessera_connections_refused_total{cap="total"} 0
tessera_connections_refused_total{cap="per_ip"} 0
# HELP tessera_connections_evicted_total Connections with no request in flight closed to make room at the cap.
# TYPE tessera_connections_evicted_total counter
tessera_connections_evicted_total 0
"#;

    #[test]
    fn the_exposition_is_as_recorded() {
        let delivery = Arc::new(DeliveryStats::default());
        delivery.sent.store(3, Ordering::Relaxed);
        delivery.failed.store(1, Ordering::Relaxed);
        let metrics = Metrics::new(delivery, Arc::new(2.into()), Arc::default());
        metrics.request("GET", "/api/v1/me", 200, 0.003);
        metrics.request("GET", "/api/v1/me", 401, 0.0004);
        metrics.sign_in("success");
        metrics.sign_in("throttled");
        metrics.sign_in("success");
        assert_eq!(metrics.render(), EXPECTED);
    }
}
