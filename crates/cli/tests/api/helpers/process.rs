//! `tessera serve` as a process of its own, for what only a process shows: refusing to
//! start, and being killed.

use super::Api;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `tessera serve`, killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    pub api: Api,
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
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    ServeProcess {
        child,
        api: Api::at(&format!("http://{address}")),
    }
}
