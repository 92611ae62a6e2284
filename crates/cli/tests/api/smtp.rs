//! A real SMTP server for tests: Debian's `python3-aiosmtpd`, storing what it receives in a
//! Maildir that the test reads back and parses.
//!
//! The interpreter is `TESSERA_TEST_PYTHON` (default `/usr/bin/python3`, Debian's, where the
//! package installs). Without aiosmtpd the test fails under `CI`, and is skipped with a
//! warning elsewhere.

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct SmtpSink {
    pub port: u16,
    maildir: tempfile::TempDir,
    _server: Child,
}

/// One received email, parsed.
#[derive(Debug)]
pub struct Received {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub to_name: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
}

fn python() -> String {
    std::env::var("TESSERA_TEST_PYTHON").unwrap_or_else(|_| {
        if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".to_owned()
        } else {
            "python3".to_owned()
        }
    })
}

/// A port nothing listens on (yet), below the kernel's ephemeral range so that no outgoing
/// connection of a concurrent test takes it as its source port in the meantime.
pub fn free_port() -> u16 {
    loop {
        let port = rand_port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn rand_port() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mixed = nanos.wrapping_mul(2_654_435_761) ^ std::process::id();
    20_000 + u16::try_from(mixed % 12_000).unwrap()
}

impl SmtpSink {
    pub async fn start() -> Option<Self> {
        Self::start_on(free_port()).await
    }

    /// Starts the server on `port`; `None` when aiosmtpd is missing outside CI.
    pub async fn start_on(port: u16) -> Option<Self> {
        let available = Command::new(python())
            .args(["-c", "import aiosmtpd"])
            .status()
            .await
            .is_ok_and(|s| s.success());
        if !available {
            let message = format!(
                "an SMTP server is needed but {} cannot import aiosmtpd \
                 (apt-get install python3-aiosmtpd, or set TESSERA_TEST_PYTHON)",
                python()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{message}");
            }
            eprintln!("warning: skipping: {message}");
            return None;
        }
        let maildir = tempfile::tempdir().unwrap();
        let mut server = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            // The handler creates the Maildir only if the folder does not exist yet.
            .arg(maildir.path().join("box"))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if let Some(status) = server.try_wait().unwrap() {
                panic!("the SMTP server on port {port} exited: {status}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(Self {
                    port,
                    maildir,
                    _server: server,
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the SMTP server did not start on port {port}");
    }

    /// Where received emails land.
    pub fn maildir(&self) -> std::path::PathBuf {
        self.maildir.path().join("box").join("new")
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        let new = self.maildir.path().join("box").join("new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .map(|e| parse(&std::fs::read(e.unwrap().path()).unwrap()))
            .collect()
    }

    /// Waits (up to 30 s) until at least `n` emails have arrived, and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..600 {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} emails, received {}", self.received().len());
    }
}

/// Parses an RFC 5322 message with an independent parser.
pub fn parse(raw: &[u8]) -> Received {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parseable email");
    let first = |a: Option<&mail_parser::Address>| {
        let addr = a.and_then(|a| a.first()).expect("an address");
        (
            addr.address().unwrap_or_default().to_owned(),
            addr.name().unwrap_or_default().to_owned(),
        )
    };
    let (to, to_name) = first(message.to());
    Received {
        subject: message.subject().unwrap_or_default().to_owned(),
        from: {
            let (address, name) = first(message.from());
            format!("{name} <{address}>")
        },
        to,
        to_name,
        message_id: message.message_id().unwrap_or_default().to_owned(),
        text: message.body_text(0).unwrap_or_default().into_owned(),
        html: message.body_html(0).unwrap_or_default().into_owned(),
    }
}
