//! Reference rates measured in the same run as the figures they bound: raw HMAC-SHA1 and
//! TOTP verification on one core, raw argon2id and RS256 signing on every core, and the
//! disk's flush rate.

use anyhow::Result;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use std::hint::black_box;
use std::io::{Seek, SeekFrom, Write};
use std::time::{Duration, Instant};
use tessera_core::config::SecurityPolicy;
use tessera_core::factors::totp::{TotpCode, TotpSecret, matching_step};
use tessera_core::time::Timestamp;

/// Calls `f` in rounds of `batch` for about `seconds`: calls per second.
fn rate(seconds: f64, batch: u64, mut f: impl FnMut(u64)) -> f64 {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < Duration::from_secs_f64(seconds) {
        for i in 0..batch {
            f(calls + i);
        }
        calls += batch;
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

/// TOTP verification with the window ±1 (a code that matches none of the three steps, so
/// every candidate is computed: the worst case), against raw HMAC-SHA1 of an 8-byte counter
/// under a 20-byte key. A verification needs three HMACs, so its limit is a third of the
/// HMAC rate.
pub fn totp(seconds: f64) -> Value {
    let secret = TotpSecret::generate();
    let key = secret.bytes().to_vec();
    let hmac_per_sec = rate(seconds, 1024, |i| {
        let mut mac = Hmac::<Sha1>::new_from_slice(black_box(&key)).unwrap_or_else(|_| {
            unreachable!("HMAC takes keys of any length");
        });
        mac.update(&i.to_be_bytes());
        black_box(mac.finalize().into_bytes());
    });
    // "000000" with a random secret matches one of three steps once in ~333,000 tries;
    // the work is the same either way: every candidate is computed.
    let code = TotpCode::parse("000000").unwrap_or_else(|| unreachable!("a valid code"));
    let now = Timestamp::from_unix(1_800_000_000);
    let totp_per_sec = rate(seconds, 1024, |_| {
        black_box(matching_step(black_box(&secret), black_box(&code), now));
    });
    json!({
        "hmac_sha1_per_sec": hmac_per_sec,
        "totp_verify_per_sec": totp_per_sec,
        "totp_limit_per_sec": hmac_per_sec / 3.0,
    })
}

/// Raw argon2id verifications per second with the product's parameters, one per core at
/// once (as the server runs them).
pub fn argon2(seconds: f64) -> Result<Value> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};
    let policy = SecurityPolicy::default();
    let params = Params::new(
        policy.argon2_memory_kib,
        policy.argon2_iterations,
        policy.argon2_parallelism,
        None,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(b"bench-salt-16byt").map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = argon2
        .hash_password(crate::seed::PASSWORD.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (per_sec, cores) = on_every_core(seconds, 1, |_| {
        let ok = argon2
            .verify_password(crate::seed::PASSWORD.as_bytes(), &parsed)
            .is_ok();
        black_box(ok);
    });
    Ok(json!({
        "argon2_per_sec": per_sec,
        "threads": cores,
        "memory_kib": policy.argon2_memory_kib,
        "iterations": policy.argon2_iterations,
        "parallelism": policy.argon2_parallelism,
    }))
}

/// [`rate`] on a thread per core at once: the calls per second of all, and how many threads.
fn on_every_core(seconds: f64, batch: u64, f: impl Fn(u64) + Sync) -> (f64, usize) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let total = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores)
            .map(|_| scope.spawn(|| rate(seconds, batch, &f)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    });
    (total, cores)
}

/// ID tokens signed per second by Tessera's own signer, on every core: with an RS256 key
/// (2048-bit RSA, the OIDC provider's default), the ceiling of a token endpoint that signs
/// one ID token per code exchange; with an ES256 key (P-256) for comparison.
pub fn signing(seconds: f64) -> Result<Value> {
    use tessera_core::oidc_provider::signing::{Signer, SigningAlg, generate};
    let sealer = tessera_core::crypto::MasterKey::generate().sealer("bench");
    let claims = json!({
        "iss": "https://tessera.example", "sub": uuid::Uuid::new_v4().to_string(),
        "aud": "client", "exp": 1_800_000_600, "iat": 1_800_000_000,
        "auth_time": 1_800_000_000, "nonce": "n-0S6_WzA2Mj", "amr": ["pwd", "otp", "mfa"],
        "email": "ada@example.com", "email_verified": true, "name": "Ada",
    });
    let mut rates = Vec::new();
    for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
        let row = generate(alg, &sealer, Timestamp::from_unix(1_800_000_000))?;
        let signer = Signer::open(&row, &sealer)?;
        let (per_sec, _) = on_every_core(seconds, 1, |_| {
            black_box(signer.sign(black_box(&claims)).is_ok());
        });
        rates.push(per_sec);
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(json!({ "rs256_per_sec": rates[0], "es256_per_sec": rates[1], "threads": cores }))
}

/// How many times a second one process can write a page and wait for it to reach the disk
/// (`fdatasync`) in `dir`: the ceiling of a database that flushes once per request.
pub fn fsync(dir: &std::path::Path, seconds: f64) -> Result<Value> {
    let path = dir.join("fsync-probe.bin");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)?;
    let page = [7u8; 4096];
    // Preallocated, as a write-ahead log is: each flush is of data, not of the file's size.
    for _ in 0..256 {
        file.write_all(&page)?;
    }
    file.sync_all()?;
    let mut failed = None;
    let per_sec = rate(seconds, 1, |i| {
        let result = file
            .seek(SeekFrom::Start((i % 256) * 4096))
            .and_then(|_| file.write_all(&page))
            .and_then(|()| file.sync_data());
        if let Err(e) = result {
            failed = Some(e);
        }
    });
    drop(file);
    std::fs::remove_file(&path)?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(json!({ "fsync_per_sec": per_sec }))
}
