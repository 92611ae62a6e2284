//! The `tessera` binary: `serve` runs the service, `admin` is the operator's command line.
//! Nothing but wiring: configuration, logging, and calls into the other crates.

#![forbid(unsafe_code)]

mod admin;
mod maintenance;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_server::config::LogFormat;
use tessera_server::{Application, Config};

/// mimalloc rather than the system allocator: a request allocates and frees many small
/// buffers on both runtime threads, and glibc's arenas spent a tenth of the CPU on that
/// (see bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Password sign-in and two-factor authentication for teams"
)]
struct Cli {
    /// TOML configuration file; TESSERA_* environment variables override it.
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the JSON API and the web control panel.
    Serve,
    /// Operator commands, on the same configuration as `serve`.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tessera: {}", tessera_core::describe_error(e.as_ref()));
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tessera: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve => {
            init_logging(config.log_format);
            runtime.block_on(serve(config))
        }
        Command::Admin { command } => runtime.block_on(admin::run(command, &config)),
    };
    // Whatever still runs after the shutdown deadline (a connection cut, a request task, a
    // blocking call) does not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {}", tessera_core::describe_error(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    for name in Config::unknown_env_vars() {
        tracing::warn!(variable = %name, "unknown TESSERA_ variable ignored");
    }
    let database = tessera_store::redact(&config.database_url);
    let app = Application::build(config).await?;
    tracing::info!(
        address = %app.address(),
        url = %app.public_url(),
        database = %database,
        "Tessera is listening on http://{}", app.address()
    );
    app.run_until(shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
