//! `tessera serve` as a process of its own, for what only a process shows: refusing to
//! start, and being killed.

use super::Api;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `tessera serve`, killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub api: Api,
    /// Every line it has logged (JSON) since it listened.
    log: Arc<Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// The first line logged since it listened whose message contains `words`, waiting up
    /// to `within` for it.
    pub async fn logged(&self, words: &str, within: Duration) -> Option<serde_json::Value> {
        let started = Instant::now();
        loop {
            let found = self.log.lock().unwrap().iter().find_map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).ok()?;
                entry["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(words))
                    .then_some(entry)
            });
            if found.is_some() || started.elapsed() > within {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts `command` (a `tessera` command without its subcommand) as `tessera serve` on a free
/// port and waits until it listens.
pub async fn serve(command: std::process::Command) -> ServeProcess {
    let mut command = Command::from(command);
    let mut child = command
        .arg("serve")
        .env("TESSERA_BIND", "127.0.0.1:0")
        .env("TESSERA_LOG_FORMAT", "json")
        .env("TESSERA_SIGNUP", "open")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut address = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(a) = entry["fields"]["address"].as_str() {
            address = Some(a.to_owned());
            break;
        }
    }
    let address = address.expect("the bound address is logged");
    // Keep reading the log, so the server never blocks on a full pipe.
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().unwrap().push(line);
        }
    });
    ServeProcess {
        child,
        api: Api::at(&format!("http://{address}")),
        log,
    }
}
