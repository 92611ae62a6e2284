//! `tessera admin …`: the operator's commands, straight against the database.
//! Output is plain text, one record per line, tab-separated, for people and scripts alike.

use crate::maintenance;
use anyhow::Context;
use clap::Subcommand;
use tessera_core::Clock;
use tessera_core::keys::Keys;
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
    /// Re-encrypt every stored secret under a new master key, in one transaction, and record
    /// its fingerprint. Secrets sealed under the configured key or TESSERA_MASTER_KEY_OLD
    /// are accepted; running it again is harmless.
    #[command(name = "rotate-master-key")]
    RotateMasterKey {
        /// The new key: a file of 64 hexadecimal characters (e.g. `openssl rand -hex 32`).
        #[arg(long, value_name = "F")]
        new_key_file: std::path::PathBuf,
    },
    /// Write a consistent copy of the live SQLite database to FILE (a new file, 0600), while
    /// it serves. PostgreSQL: prints the pg_dump command instead.
    Backup {
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Check a backup without changing it: its migrations are current, it belongs to the
    /// configured master key, and a sample of its secrets decrypts. TARGET is a SQLite file,
    /// or a postgres:// URL of a database a dump was restored into.
    #[command(name = "restore-check")]
    RestoreCheck {
        #[arg(value_name = "TARGET")]
        target: String,
    },
    /// Applications that sign their users in with Tessera (OpenID Connect, SPEC §13).
    #[command(name = "oidc-clients", subcommand)]
    OidcClients(OidcClientsCommand),
    /// Make new ID-token signing keys (RS256 and ES256). The old keys stay published in the
    /// JWKS until the tokens they signed have expired.
    #[command(name = "rotate-signing-key")]
    RotateSigningKey,
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

#[derive(Subcommand)]
pub enum OidcClientsCommand {
    /// Register an application; prints `client_id: …` and (for a confidential client)
    /// `client_secret: …`, the secret this once.
    Add {
        #[arg(long, value_name = "N")]
        name: String,
        /// Where Tessera may send the browser back with a code (exact match); repeatable.
        #[arg(long = "redirect-uri", value_name = "U", required = true)]
        redirect_uris: Vec<String>,
        /// Where the application may ask to return after sign-out; repeatable.
        #[arg(long = "post-logout-redirect-uri", value_name = "U")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (single-page or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Sign its ID tokens with ES256 instead of RS256.
        #[arg(long, value_name = "ALG", default_value = "RS256")]
        id_token_alg: String,
    },
    /// The operator's applications: client id, name, type, algorithm, redirect URIs.
    List,
    /// Remove an application; its tokens stop working.
    Remove {
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
    },
}

/// The use cases, for commands that change security (they audit and email like the API).
async fn operator(
    config: &Config,
    store: std::sync::Arc<dyn Store>,
    keys: &Keys,
) -> anyhow::Result<Operator> {
    let deps = tessera_server::build_deps(
        config,
        keys,
        store,
        std::sync::Arc::new(tessera_server::SystemClock),
    )
    .await?;
    Ok(Operator::new(deps))
}

pub async fn run(command: AdminCommand, config: &Config) -> anyhow::Result<()> {
    let now = tessera_server::SystemClock.now();
    let command = match command {
        AdminCommand::RotateMasterKey { new_key_file } => {
            return maintenance::rotate_master_key(config, &new_key_file, now).await;
        }
        AdminCommand::Backup { file } => return maintenance::backup(config, &file).await,
        AdminCommand::RestoreCheck { target } => {
            return maintenance::restore_check(config, &target).await;
        }
        other => other,
    };
    let (store, keys) = tessera_server::open_store(config, now).await?;
    let operator = |store| operator(config, store, &keys);
    match command {
        AdminCommand::Accounts => accounts(&*store).await,
        AdminCommand::Users { account } => users(&*store, account).await,
        AdminCommand::Disable2fa { email, reason } => {
            disable_2fa(&operator(store).await?, &email, &reason).await
        }
        AdminCommand::CreateAccount {
            name,
            owner_email,
            owner_name,
        } => {
            let operator = operator(store).await?;
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
        AdminCommand::Unlock { email } => unlock(&operator(store).await?, &email).await,
        AdminCommand::Events { email, limit } => {
            events(&operator(store).await?, &email, limit).await
        }
        AdminCommand::Mail { all, limit } => mail(&*store, all, limit).await,
        AdminCommand::OidcClients(command) => oidc_clients(&operator(store).await?, command).await,
        AdminCommand::RotateSigningKey => {
            for key in operator(store).await?.rotate_signing_key().await? {
                println!("current signing key: {key}");
            }
            Ok(())
        }
        AdminCommand::RotateMasterKey { .. }
        | AdminCommand::Backup { .. }
        | AdminCommand::RestoreCheck { .. } => unreachable!("run before the database opens"),
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

async fn oidc_clients(operator: &Operator, command: OidcClientsCommand) -> anyhow::Result<()> {
    use tessera_core::oidc_provider::clients::NewClient;
    match command {
        OidcClientsCommand::Add {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            id_token_alg,
        } => {
            let registered = operator
                .add_oidc_client(&NewClient {
                    name,
                    redirect_uris,
                    post_logout_redirect_uris,
                    public,
                    id_token_alg: Some(id_token_alg),
                })
                .await?;
            println!("client_id: {}", registered.client.id);
            if let Some(secret) = &registered.secret {
                println!("client_secret: {}", secret.expose());
            }
        }
        OidcClientsCommand::List => {
            for c in operator.oidc_clients().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    c.id,
                    c.name,
                    if c.secret_hash.is_some() {
                        "confidential"
                    } else {
                        "public"
                    },
                    c.id_token_alg,
                    c.redirect_uris.join(" ")
                );
            }
        }
        OidcClientsCommand::Remove { client_id } => {
            operator.remove_oidc_client(&client_id).await?;
            println!("removed {client_id}");
        }
    }
    Ok(())
}
