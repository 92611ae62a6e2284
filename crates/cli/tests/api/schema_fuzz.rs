//! The API against its own OpenAPI document (SPEC §14, review D12): `schemathesis` (from
//! PyPI, in the virtualenv `.ci/run` makes) sends examples, boundary cases and generated
//! requests for every operation, as an anonymous client and as a signed-in one, and checks
//! that nothing answers 5xx and every answer (status, headers, body) is one the document
//! states. Bounded in time; on SQLite (the backend does not change the document).

use crate::helpers::{TestApp, spawn_app};
use std::path::PathBuf;
use tessera_store::testing::Backend;

/// The `st` command: `TESSERA_TEST_SCHEMATHESIS`, or the virtualenv `.ci/run` makes.
fn schemathesis() -> Option<PathBuf> {
    let candidate = std::env::var_os("TESSERA_TEST_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ci-venv/bin/st")
        });
    if candidate.is_file() {
        return Some(candidate);
    }
    let why = format!(
        "schemathesis is needed to check the API against its document, but {} is missing \
         (bash .ci/run installs it; or set TESSERA_TEST_SCHEMATHESIS)",
        candidate.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("warning: skipping: {why}");
    None
}

async fn run(st: &PathBuf, app: &TestApp, token: Option<&str>) {
    let url = format!("{}/api/v1/openapi.json", app.base);
    // schemathesis keeps a cache of what failed in its working folder: not in the tree.
    let scratch = tempfile::tempdir().unwrap();
    // A schema-valid request may still be refused for what a schema cannot say: a token
    // or an id that is not one (401, 404), a password too easy to guess or an email that is
    // not one (422), a taken one (409), a limit reached (429), the caller's role (403). Any
    // other refusal of a schema-valid request (a 400, say) means the document says too little.
    let config = scratch.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[checks.positive_data_acceptance]\n\
         expected-statuses = [\"2XX\", \"401\", \"403\", \"404\", \"409\", \"422\", \"429\"]\n",
    )
    .unwrap();
    let mut command = tokio::process::Command::new(st);
    command.current_dir(scratch.path());
    command.arg("--config-file").arg(&config).args([
        "run",
        &url,
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "25",
        "--max-time",
        "45",
        "--workers",
        "2",
        "--request-timeout",
        "10",
        "--seed",
        "1",
    ]);
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    let out = command.output().await.expect("schemathesis runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures ({}):\n{report}\n{}",
        if token.is_some() {
            "signed in"
        } else {
            "anonymous"
        },
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_document_says() {
    let Some(st) = schemathesis() else {
        return;
    };
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    // An owner with 2FA, signed in first (the anonymous run uses up the address's sign-ups),
    // within the step-up window: the sensitive operations are reachable too.
    let token = app.owner_with_2fa("fuzz@example.com").await;
    run(&st, &app, None).await;
    run(&st, &app, Some(&token)).await;
}
