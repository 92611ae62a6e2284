//! The load generator: workers on keep-alive connections send one kind of request, either as
//! fast as the server answers (closed loop) or on a fixed schedule (open loop, `--rate`),
//! where latency counts from when the request was due, so a stalled server cannot hide its
//! queue (no coordinated omission).

use crate::http::Connection;
use anyhow::{Context, Result, bail};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What each request is.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Kind {
    /// `POST /api/v1/login/verify` with a seeded challenge and its current TOTP code.
    Verify,
    /// `GET /api/v1/me` with a session from the first seeded challenge.
    Me,
    /// `POST /api/v1/login` with a seeded user's email and password.
    Login,
    /// `GET /` (the hello-world reference).
    Hello,
    /// `GET /api/v1/gate` with a session cookie (SPEC §11, §15).
    GateCookie,
    /// `GET /api/v1/gate` with an API key.
    GateKey,
    /// `POST /oauth2/token`: a seeded authorization code exchanged by its client
    /// (`client_secret_basic`), an ID token signed (RS256).
    OidcToken,
}

pub struct Plan {
    pub addr: String,
    pub kind: Kind,
    pub concurrency: usize,
    pub seconds: f64,
    /// Requests per second on a schedule; `None` sends as fast as answers come.
    pub rate: Option<f64>,
    /// Session tokens for `me` and `gate-cookie`, used in turn.
    pub sessions: Vec<String>,
    /// API keys for `gate-key`, used in turn.
    pub keys: Vec<String>,
    /// The `Authorization` header of the OIDC client, for `oidc-token`.
    pub client: Option<String>,
}

/// Where the seeded authorization codes were sent back to.
pub const OIDC_REDIRECT_URI: &str = "https://bench.example/callback";

/// The seeded OIDC client and its codes: a file of `client_id,client_secret`, then a code a
/// line. Answers the client's `Authorization: Basic …` header, and the codes as seeds.
pub fn read_oidc_seeds(path: &std::path::Path) -> Result<(String, Vec<Seeded>)> {
    use base64::Engine;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines().filter(|line| !line.is_empty());
    let client = lines.next().context("no client line")?;
    let basic = base64::engine::general_purpose::STANDARD.encode(client.replacen(',', ":", 1));
    let codes = lines
        .map(|code| Seeded {
            challenge: code.to_owned(),
            secret: Vec::new(),
            email: String::new(),
        })
        .collect();
    Ok((format!("Basic {basic}"), codes))
}

/// One seeded user: (challenge token, base32 TOTP secret, email).
#[derive(Clone)]
pub struct Seeded {
    pub challenge: String,
    pub secret: Vec<u8>,
    pub email: String,
}

pub fn read_seeds(path: &std::path::Path) -> Result<Vec<Seeded>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut fields = line.split(',');
            let challenge = fields.next().unwrap_or_default().to_owned();
            let secret = data_encoding::BASE32_NOPAD
                .decode(fields.next().unwrap_or_default().as_bytes())
                .context("a seed's secret is not base32")?;
            let email = fields.next().unwrap_or_default().to_owned();
            Ok(Seeded {
                challenge,
                secret,
                email,
            })
        })
        .collect()
}

/// The RFC 6238 code of `secret` now (SHA-1, 6 digits, 30 s).
pub fn totp_now(secret: &[u8]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    totp_at(secret, now)
}

/// The RFC 6238 code of `secret` at `unix` seconds.
fn totp_at(secret: &[u8], unix: u64) -> String {
    let step = unix / 30;
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

/// Signs the seeded user in through the second step: a session token.
pub async fn session_from(connection: &mut Connection, seed: &Seeded) -> Result<String> {
    let body = json!({"challenge_token": seed.challenge, "code": totp_now(&seed.secret)});
    let response = connection
        .send(
            "POST",
            "/api/v1/login/verify",
            Some(&body.to_string()),
            None,
        )
        .await?;
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    match answer["session_token"].as_str() {
        Some(token) if response.status == 200 => Ok(token.to_owned()),
        _ => bail!(
            "the seeded challenge did not sign in ({}): {answer}",
            response.status
        ),
    }
}

#[derive(Default)]
struct Tally {
    micros: Vec<u32>,
    statuses: BTreeMap<String, usize>,
}

/// Signs in with each of the first `n` seeds: their session tokens.
pub async fn sessions(addr: &str, seeds: &[Seeded], n: usize) -> Result<Vec<String>> {
    let mut connection = Connection::new(addr);
    let mut tokens = Vec::with_capacity(n);
    for seed in seeds.iter().take(n) {
        tokens.push(session_from(&mut connection, seed).await?);
    }
    if tokens.is_empty() {
        bail!("no seeds to sign in with");
    }
    Ok(tokens)
}

/// An API key (grant `users:read`) made by each session that may make one (the owners'):
/// they are fresh, so within the step-up window.
pub async fn api_keys(addr: &str, sessions: &[String]) -> Result<Vec<String>> {
    let mut connection = Connection::new(addr);
    let body = json!({"label": "bench", "grants": ["users:read"]}).to_string();
    let mut keys = Vec::new();
    for session in sessions {
        let response = connection
            .send(
                "POST",
                "/api/v1/account/api-keys",
                Some(&body),
                Some(session),
            )
            .await?;
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if let (201, Some(key)) = (response.status, answer["key"].as_str()) {
            keys.push(key.to_owned());
        }
    }
    if keys.is_empty() {
        bail!("no session could make an API key (are any of the seeds owners?)");
    }
    Ok(keys)
}

/// Runs the plan; `seeds` feed `verify` (each used once) and `login` (cycled).
pub async fn run(plan: Plan, seeds: Arc<Vec<Seeded>>) -> Result<Value> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(plan.seconds);
    let plan = Arc::new(plan);
    let mut workers = Vec::new();
    for worker in 0..plan.concurrency {
        let (plan, seeds, next) = (plan.clone(), seeds.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            work(&plan, worker, &seeds, &next, start, end).await
        }));
    }
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.await??;
        total.micros.extend(tally.micros);
        for (status, n) in tally.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
    }
    // Until the last answer: on a schedule the server may still be working off a queue
    // when the last request falls due.
    let elapsed = start.elapsed().as_secs_f64();
    Ok(summary(&plan, total, elapsed.max(0.001)))
}

async fn work(
    plan: &Plan,
    worker: usize,
    seeds: &[Seeded],
    next: &AtomicUsize,
    start: Instant,
    end: Instant,
) -> Result<Tally> {
    let mut connection = Connection::new(&plan.addr);
    let mut tally = Tally::default();
    tokio::time::sleep_until(start.into()).await;
    let mut k = worker;
    let mut authorization: Option<String> = None;
    let mut cookie: Option<String> = None;
    loop {
        let due = match plan.rate {
            Some(rate) => {
                let due = start + Duration::from_secs_f64(k as f64 / rate);
                k += plan.concurrency;
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        if due >= end {
            break;
        }
        let (method, path, body) = match plan.kind {
            Kind::Verify => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(seed) = seeds.get(i) else {
                    *tally.statuses.entry("out_of_seeds".into()).or_default() += 1;
                    break;
                };
                let body =
                    json!({"challenge_token": seed.challenge, "code": totp_now(&seed.secret)});
                ("POST", "/api/v1/login/verify", Some(body.to_string()))
            }
            Kind::Login => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let seed = &seeds[i % seeds.len()];
                let body = json!({"email": seed.email, "password": crate::seed::PASSWORD});
                ("POST", "/api/v1/login", Some(body.to_string()))
            }
            Kind::Me => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                authorization = plan
                    .sessions
                    .get(i % plan.sessions.len().max(1))
                    .map(|token| format!("Bearer {token}"));
                ("GET", "/api/v1/me", None)
            }
            Kind::Hello => ("GET", "/", None),
            Kind::GateCookie => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let token = plan.sessions.get(i % plan.sessions.len().max(1));
                cookie = token.map(|t| format!("tessera_session={t}"));
                ("GET", "/api/v1/gate", None)
            }
            Kind::GateKey => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                authorization = plan
                    .keys
                    .get(i % plan.keys.len().max(1))
                    .map(|key| format!("Bearer {key}"));
                ("GET", "/api/v1/gate", None)
            }
            Kind::OidcToken => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(seed) = seeds.get(i) else {
                    *tally.statuses.entry("out_of_seeds".into()).or_default() += 1;
                    break;
                };
                authorization.clone_from(&plan.client);
                let form = format!(
                    "grant_type=authorization_code&code={}&redirect_uri={}",
                    seed.challenge,
                    OIDC_REDIRECT_URI.replace(':', "%3A").replace('/', "%2F")
                );
                ("POST", "/oauth2/token", Some(form))
            }
        };
        let content_type = if matches!(plan.kind, Kind::OidcToken) {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(value) = &authorization {
            headers.push(("Authorization", value));
        }
        if let Some(value) = &cookie {
            headers.push(("Cookie", value));
        }
        let outcome = connection
            .send_with(
                method,
                path,
                body.as_deref().map(|b| (content_type, b)),
                &headers,
            )
            .await;
        let latency = due.elapsed();
        let status = match outcome {
            Ok(response) => response.status.to_string(),
            Err(_) => "io_error".to_owned(),
        };
        tally
            .micros
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        *tally.statuses.entry(status).or_default() += 1;
    }
    Ok(tally)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn summary(plan: &Plan, mut tally: Tally, seconds: f64) -> Value {
    tally.micros.sort_unstable();
    // The gate answers `204`.
    let ok = ["200", "204"]
        .iter()
        .filter_map(|status| tally.statuses.get(*status))
        .sum::<usize>();
    let requests = tally.micros.len();
    json!({
        "kind": format!("{:?}", plan.kind).to_lowercase(),
        "concurrency": plan.concurrency,
        "rate": plan.rate,
        "seconds": seconds,
        "requests": requests,
        "ok": ok,
        "statuses": tally.statuses,
        "ok_per_sec": ok as f64 / seconds,
        "p50_ms": percentile(&tally.micros, 50.0),
        "p99_ms": percentile(&tally.micros, 99.0),
        "max_ms": percentile(&tally.micros, 100.0),
    })
}

#[cfg(test)]
mod tests {
    use super::{percentile, totp_at};

    #[test]
    fn codes_follow_rfc_6238() {
        // Appendix B, SHA-1: the last six of the eight digits listed.
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(totp_at(secret, time), code);
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let micros: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile(&micros, 50.0), 50.0);
        assert_eq!(percentile(&micros, 99.0), 99.0);
        assert_eq!(percentile(&micros, 100.0), 100.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
