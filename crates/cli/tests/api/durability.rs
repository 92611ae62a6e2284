//! SPEC §14: acknowledged changes survive `kill -9`. A real `tessera serve` process takes
//! sign-ups from several clients at once and is killed (SIGKILL) mid-stream; after a restart
//! on the same database, every sign-up it answered `201` is there.

use crate::helpers::{TestApp, process};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

backend_tests!(acknowledged_sign_ups_survive_kill_9);

/// Sign-ups acknowledged before the kill.
const ACKNOWLEDGED: usize = 300;
const CLIENTS: usize = 8;

async fn acknowledged_sign_ups_survive_kill_9(mut app: TestApp) {
    app.stop().await;
    // Cheap password hashing and no per-address sign-up limit, so that many writes happen
    // per second: durability depends on neither.
    let config = app.db.data_dir().join("load.toml");
    std::fs::write(
        &config,
        "[security]\nargon2_memory_kib = 64\nargon2_iterations = 1\nsignup_max_per_ip = 1000000\n",
    )
    .unwrap();
    let mut command = app.tessera();
    command.env("TESSERA_CONFIG", &config);
    let mut server = process::serve(command).await;
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (api, acknowledged) = (server.api.clone(), Arc::clone(&acknowledged));
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let email = format!("k{client}-{i}@example.com");
                let sent = api
                    .client
                    .post(format!("{}/api/v1/signup", api.base))
                    .json(&json!({"account_name": "Acme", "name": "Ada Lovelace",
                                  "email": email, "password": crate::helpers::PASSWORD}))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 201 => {
                        acknowledged.lock().unwrap().push(email);
                    }
                    Ok(response) => panic!("sign-up answered {}", response.status()),
                    // The server is gone.
                    Err(_) => break,
                }
            }
        }));
    }
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < ACKNOWLEDGED {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} sign-ups in a minute",
            acknowledged.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL, with requests in flight.
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= ACKNOWLEDGED);

    app.restart().await;
    let users = app.store().await.list_users(None).await.unwrap();
    let stored: std::collections::HashSet<_> =
        users.iter().map(|u| u.email.as_str().to_owned()).collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|e| !stored.contains(*e))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged sign-ups lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    // And the restarted server serves them.
    app.signed_in_again(&acknowledged[0]).await;
}
