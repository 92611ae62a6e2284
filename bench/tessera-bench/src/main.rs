//! `tessera-bench`: the tools behind `bench/run` — seeding a database, generating load from
//! a separate process, the reference measurements, an axum hello-world to compare against,
//! and the results table.

mod http;
mod load;
mod micro;
mod report;
mod seed;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(about = "Tessera's benchmark tools (driven by bench/run)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Seeds a fresh, migrated database with users who have TOTP on and open challenges.
    Seed {
        #[arg(long)]
        database: String,
        /// The server's master key (64 hex digits), to seal the TOTP secrets.
        #[arg(long, env = "TESSERA_MASTER_KEY", hide_env_values = true)]
        master_key: String,
        #[arg(long)]
        users: usize,
        /// Open a challenge for this many of the users (the first ones).
        #[arg(long)]
        challenges: usize,
        /// Users per team account, the first its owner.
        #[arg(long, default_value_t = seed::TEAM_SIZE)]
        team_size: usize,
        /// Where to write `challenge_token,secret,email` lines.
        #[arg(long)]
        out: PathBuf,
        /// Also register an OIDC client and issue this many authorization codes (one for
        /// each of the first users), for `load --kind oidc-token`.
        #[arg(long, default_value_t = 0)]
        oidc_codes: usize,
        /// Where to write the client (`client_id,client_secret`) and the codes.
        #[arg(long)]
        oidc_out: Option<PathBuf>,
    },
    /// Sends load to a server at ADDR (host:port); prints one JSON line.
    Load {
        addr: String,
        #[arg(long, value_enum)]
        kind: load::Kind,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Requests per second on a fixed schedule (default: as fast as answered).
        #[arg(long)]
        rate: Option<f64>,
        /// The seed file (verify, login, and me, which signs in with its first line; for
        /// oidc-token, the file `seed --oidc-out` wrote).
        #[arg(long)]
        seeds: Option<PathBuf>,
        /// With `--kind login`: also probe `GET /me` at this rate and report its latency.
        #[arg(long)]
        probe_me_rate: Option<f64>,
        /// For `GET /me`: sign in this many seeded users first and use their sessions in
        /// turn (their challenges are spent).
        #[arg(long, default_value_t = 1)]
        sessions: usize,
        /// Wait this many seconds after opening the sessions before the load starts (past a
        /// minute, each session's first request is due to record its activity).
        #[arg(long, default_value_t = 0.0)]
        idle_first: f64,
    },
    /// TOTP verification and raw HMAC-SHA1 on this thread (pin it to one core).
    Totp {
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Raw argon2id verifications with the product's parameters, on every core.
    Argon2 {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// ID tokens signed per second with an RS256 and an ES256 key, on every core.
    Signing {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Write-and-flush rate of one page in DIR.
    Fsync {
        dir: PathBuf,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// An axum hello-world on ADDR, the reference for `GET /me`.
    Hello { addr: String },
    /// Writes the results table (Markdown) from the JSON files in DIR.
    Report { dir: PathBuf },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Hello { addr } => {
            // Like the server: a multi-threaded runtime on every core.
            tokio::runtime::Runtime::new()?.block_on(hello(addr))
        }
        command => {
            // The load generator keeps to one thread, leaving the rest to the server.
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(run(command))
        }
    }
}

async fn hello(addr: String) -> Result<()> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn run(command: Command) -> Result<()> {
    let output = match command {
        Command::Seed {
            database,
            master_key,
            users,
            challenges,
            team_size,
            out,
            oidc_codes,
            oidc_out,
        } => {
            seed::run(seed::Seed {
                database,
                master_key,
                users,
                challenges,
                team_size,
                out,
                oidc: oidc_out.map(|out| (oidc_codes, out)),
            })
            .await?;
            return Ok(());
        }
        Command::Load {
            addr,
            kind,
            concurrency,
            seconds,
            rate,
            seeds,
            probe_me_rate,
            sessions,
            idle_first,
        } => {
            let (client, seeds) = match (&seeds, kind) {
                (Some(path), load::Kind::OidcToken) => {
                    let (client, codes) = load::read_oidc_seeds(path)?;
                    (Some(client), codes)
                }
                (Some(path), _) => (None, load::read_seeds(path)?),
                (None, _) => (None, Vec::new()),
            };
            let seeds = Arc::new(seeds);
            let needs_session = matches!(
                kind,
                load::Kind::Me | load::Kind::GateCookie | load::Kind::GateKey
            ) || probe_me_rate.is_some();
            let tokens = if needs_session {
                load::sessions(&addr, &seeds, sessions).await?
            } else {
                Vec::new()
            };
            let keys = if matches!(kind, load::Kind::GateKey) {
                load::api_keys(&addr, &tokens).await?
            } else {
                Vec::new()
            };
            if idle_first > 0.0 {
                tokio::time::sleep(std::time::Duration::from_secs_f64(idle_first)).await;
            }
            // The sessions' challenges are spent: the rest of the seeds feed the load.
            let rest = Arc::new(seeds.iter().skip(tokens.len()).cloned().collect::<Vec<_>>());
            let plan = load::Plan {
                addr: addr.clone(),
                kind,
                concurrency,
                seconds,
                rate,
                sessions: tokens.clone(),
                keys,
                client,
            };
            match probe_me_rate {
                Some(probe_rate) => {
                    let probe = load::Plan {
                        addr,
                        kind: load::Kind::Me,
                        concurrency: 4,
                        seconds,
                        rate: Some(probe_rate),
                        sessions: tokens,
                        keys: Vec::new(),
                        client: None,
                    };
                    let (main, probe) = tokio::try_join!(
                        load::run(plan, rest.clone()),
                        load::run(probe, rest.clone())
                    )?;
                    serde_json::json!({"load": main, "probe": probe})
                }
                None => load::run(plan, rest).await?,
            }
        }
        Command::Totp { seconds } => micro::totp(seconds),
        Command::Argon2 { seconds } => micro::argon2(seconds)?,
        Command::Signing { seconds } => micro::signing(seconds)?,
        Command::Fsync { dir, seconds } => micro::fsync(&dir, seconds)?,
        Command::Report { dir } => {
            print!("{}", report::render(&dir)?);
            return Ok(());
        }
        Command::Hello { .. } => unreachable!("served above"),
    };
    println!("{output}");
    Ok(())
}
