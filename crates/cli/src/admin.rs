//! `tessera admin …`: the operator's commands, straight against the database.
//! Output is plain text, one record per line, tab-separated, for people and scripts alike.

use anyhow::Context;
use clap::Subcommand;
use tessera_core::model::{AccountId, OutboxStatus};
use tessera_server::Config;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// List accounts: id, name, 2FA policy, number of users, creation time.
    Accounts,
    /// List users: id, account id, email, name, role, creation time.
    Users {
        /// Only the users of this account.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
    },
    /// List queued and failed emails: id, status, kind, recipient, attempts, next attempt,
    /// last error.
    Mail {
        /// Include delivered emails too.
        #[arg(long)]
        all: bool,
        /// At most this many, oldest first.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

pub async fn run(command: AdminCommand, config: &Config) -> anyhow::Result<()> {
    let store = tessera_store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                tessera_store::redact(&config.database_url)
            )
        })?;
    match command {
        AdminCommand::Accounts => {
            for summary in store.list_accounts().await? {
                let a = summary.account;
                let policy = if a.two_factor_required {
                    "required"
                } else {
                    "optional"
                };
                println!(
                    "{}\t{}\t2fa:{}\tusers:{}\t{}",
                    a.id, a.name, policy, summary.users, a.created_at
                );
            }
        }
        AdminCommand::Users { account } => {
            let account = account
                .map(|id| {
                    id.parse::<AccountId>()
                        .map_err(|_| anyhow::anyhow!("--account must be an account id, not {id:?}"))
                })
                .transpose()?;
            if let Some(id) = account {
                store
                    .get_account(id)
                    .await?
                    .with_context(|| format!("no account {id}"))?;
            }
            for u in store.list_users(account).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    u.id,
                    u.account_id,
                    u.email.as_str(),
                    u.name,
                    u.role,
                    u.created_at
                );
            }
        }
        AdminCommand::Mail { all, limit } => {
            for e in store.list_outbox(all, limit.clamp(1, 10_000)).await? {
                println!(
                    "{}\t{}\t{}\t{}\tattempts:{}\t{}\t{}",
                    e.id,
                    e.status,
                    e.kind,
                    e.recipient,
                    e.attempts,
                    match (e.status, e.sent_at) {
                        (OutboxStatus::Sent, Some(at)) => format!("sent:{at}"),
                        (OutboxStatus::Pending, _) => format!("next:{}", e.next_attempt_at),
                        _ => "-".to_owned(),
                    },
                    e.last_error
                        .as_deref()
                        .unwrap_or("-")
                        .replace(['\t', '\n'], " ")
                );
            }
        }
    }
    Ok(())
}
