//! The core's hot paths, each beside the primitive it is built on, so a regression shows as
//! a ratio: TOTP verification (window ±1) against raw HMAC-SHA1, recovery-code hashing,
//! sealing and opening a TOTP secret (XChaCha20-Poly1305), and argon2id with the product's
//! parameters. `cargo bench -p tessera-core`; `bench/run` measures the same over HTTP.

#![allow(clippy::unwrap_used)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha1::Sha1;
use std::hint::black_box;
use tessera_core::codes::{CodeFormat, CodeHasher, CodePurpose};
use tessera_core::config::SecurityPolicy;
use tessera_core::crypto::MasterKey;
use tessera_core::factors::totp::{TotpCode, TotpSecret, code_at_step, matching_step, step_at};
use tessera_core::model::UserId;
use tessera_core::password::Passwords;
use tessera_core::time::Timestamp;

fn totp(c: &mut Criterion) {
    let secret = TotpSecret::generate();
    let now = Timestamp::from_unix(1_800_000_000);
    let mut group = c.benchmark_group("totp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hmac_sha1 (reference)", |b| {
        let mut counter = 0u64;
        b.iter(|| {
            counter += 1;
            let mut mac = Hmac::<Sha1>::new_from_slice(black_box(secret.bytes())).unwrap();
            mac.update(&counter.to_be_bytes());
            black_box(mac.finalize().into_bytes())
        });
    });
    // A right code for the next step (the last candidate) and a wrong one: both compute
    // all three candidates.
    let next = TotpCode::parse(&code_at_step(&secret, step_at(now) + 1)).unwrap();
    let wrong = TotpCode::parse("000000").unwrap();
    for (name, code) in [("matches t+1", &next), ("no match", &wrong)] {
        group.bench_with_input(BenchmarkId::new("verify ±1", name), code, |b, code| {
            b.iter(|| matching_step(black_box(&secret), black_box(code), now));
        });
    }
    group.finish();
}

fn codes(c: &mut Criterion) {
    let hasher = CodeHasher::new(MasterKey::generate().derive("codes"));
    let user = UserId::new();
    let code = CodeFormat::Words.generate();
    let normalized = CodeFormat::Words.normalize(&code).unwrap();
    c.bench_function("recovery code hash", |b| {
        b.iter(|| hasher.hash(CodePurpose::Recovery, user, black_box(&normalized)));
    });
    c.bench_function("recovery code set (10)", |b| {
        b.iter(|| black_box(CodeFormat::Words.generate_set()));
    });
}

fn aead(c: &mut Criterion) {
    let sealer = MasterKey::generate().sealer("totp");
    let secret = TotpSecret::generate();
    let sealed = sealer.seal(secret.bytes(), b"user-id");
    c.bench_function("seal TOTP secret", |b| {
        b.iter(|| sealer.seal(black_box(secret.bytes()), b"user-id"));
    });
    c.bench_function("open TOTP secret", |b| {
        b.iter(|| sealer.open(black_box(&sealed), b"user-id").unwrap());
    });
}

fn argon2(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let passwords = runtime
        .block_on(Passwords::new(&SecurityPolicy::default()))
        .unwrap();
    let password = SecretString::from("correct horse battery staple");
    let hash = runtime.block_on(passwords.hash(&password)).unwrap();
    let mut group = c.benchmark_group("argon2id (OWASP parameters)");
    group.sample_size(10);
    group.bench_function("verify", |b| {
        b.iter(|| {
            runtime
                .block_on(passwords.verify(&password, Some(&hash)))
                .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, totp, codes, aead, argon2);
criterion_main!(benches);
