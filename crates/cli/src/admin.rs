//! `tessera admin …`: the operator's commands, straight against the database.
//! Output is plain text, one record per line, tab-separated, for people and scripts alike.

use anyhow::Context;
use clap::Subcommand;
use tessera_core::model::{AccountId, OutboxStatus};
use tessera_core::operator::Operator;
use tessera_core::store::Store;
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
    /// Turn a user's 2FA off after checking who they are (the support path): secret,
    /// recovery codes and paper key stop working, their sessions end, they are emailed.
    #[command(name = "disable-2fa")]
    Disable2fa {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// Why, and how the identity was checked; recorded in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Create a team (the way teams are made when sign-up is closed): the owner is emailed a
    /// link to choose their password; the team exists once they have.
    #[command(name = "create-account")]
    CreateAccount {
        /// The team's name.
        #[arg(long, value_name = "N")]
        name: String,
        #[arg(long, value_name = "E")]
        owner_email: String,
        #[arg(long, value_name = "M")]
        owner_name: String,
    },
    /// Lift a user's sign-in locks (wrong passwords, wrong codes, recovery page).
    Unlock {
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
    /// A user's security events, newest first: time, kind, IP address, details.
    Events {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
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

/// The use cases, for commands that change security (they audit and email like the API).
async fn operator(config: &Config, store: std::sync::Arc<dyn Store>) -> anyhow::Result<Operator> {
    let master_key = config.load_master_key()?;
    let deps = tessera_server::build_deps(
        config,
        &master_key,
        store,
        std::sync::Arc::new(tessera_server::SystemClock),
    )
    .await?;
    Ok(Operator::new(deps))
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
        AdminCommand::Accounts => accounts(&*store).await,
        AdminCommand::Users { account } => users(&*store, account).await,
        AdminCommand::Disable2fa { email, reason } => {
            disable_2fa(&operator(config, store).await?, &email, &reason).await
        }
        AdminCommand::CreateAccount {
            name,
            owner_email,
            owner_name,
        } => {
            let operator = operator(config, store).await?;
            let expires_at = operator
                .create_account(&name, &owner_email, &owner_name)
                .await?;
            println!(
                "team {} created for {}: the owner was emailed a link to choose a password, \
                 valid until {expires_at}",
                name.trim(),
                owner_email.trim()
            );
            Ok(())
        }
        AdminCommand::Unlock { email } => unlock(&operator(config, store).await?, &email).await,
        AdminCommand::Events { email, limit } => {
            events(&operator(config, store).await?, &email, limit).await
        }
        AdminCommand::Mail { all, limit } => mail(&*store, all, limit).await,
    }
}

async fn accounts(store: &dyn Store) -> anyhow::Result<()> {
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
    Ok(())
}

async fn users(store: &dyn Store, account: Option<String>) -> anyhow::Result<()> {
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
    Ok(())
}

async fn disable_2fa(operator: &Operator, email: &str, reason: &str) -> anyhow::Result<()> {
    let user = operator.disable_two_factor(email, reason).await?;
    println!(
        "two-factor authentication disabled for {}; sessions ended; user emailed",
        user.email.as_str()
    );
    Ok(())
}

async fn unlock(operator: &Operator, email: &str) -> anyhow::Result<()> {
    let (user, cleared) = operator.unlock(email).await?;
    if cleared {
        println!("unlocked {}", user.email.as_str());
    } else {
        println!("{} was not locked", user.email.as_str());
    }
    Ok(())
}

async fn events(operator: &Operator, email: &str, limit: i64) -> anyhow::Result<()> {
    for e in operator.events(email, limit.clamp(1, 10_000)).await? {
        println!(
            "{}\t{}\t{}\t{}",
            e.created_at,
            e.kind,
            e.ip.as_deref().unwrap_or("-"),
            e.detail
        );
    }
    Ok(())
}

async fn mail(store: &dyn Store, all: bool, limit: i64) -> anyhow::Result<()> {
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
    Ok(())
}
