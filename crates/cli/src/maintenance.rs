//! The operator's maintenance commands (SPEC §14): rotating the master key, backups and
//! checking them. Each opens the database its own way: rotation before the key guard (it
//! changes the key), backups without touching the live database's data.

use anyhow::Context;
use std::path::Path;
use tessera_core::Timestamp;
use tessera_server::Config;
use tessera_server::config::MasterKeySource;

/// `tessera admin rotate-master-key --new-key-file F`.
pub async fn rotate_master_key(
    config: &Config,
    new_key_file: &Path,
    now: Timestamp,
) -> anyhow::Result<()> {
    let ring = config.load_key_ring()?;
    let new = MasterKeySource::File {
        path: new_key_file.to_owned(),
        generate: false,
    }
    .load("--new-key-file")?;
    let store = connect(config).await?;
    let rows = tessera_core::keys::rotate(&*store, &ring, &new, now).await?;
    println!(
        "re-encrypted {rows} secrets; the database now belongs to the master key {} ({}). \
         Start every instance with it, keeping the old one as TESSERA_MASTER_KEY_OLD until \
         all of them run with the new key",
        new.fingerprint().short(),
        new_key_file.display()
    );
    Ok(())
}

/// `tessera admin backup FILE`.
pub async fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    let bytes = tessera_store::backup::backup(&config.database_url, file).await?;
    println!("backup written to {} ({bytes} bytes)", file.display());
    Ok(())
}

/// `tessera admin restore-check TARGET`: exit code 0 only if every check passes.
pub async fn restore_check(config: &Config, target: &str) -> anyhow::Result<()> {
    let ring = config.load_key_ring()?;
    let opened = tessera_store::backup::open_backup(target)
        .await
        .with_context(|| format!("cannot open the backup {}", tessera_store::redact(target)))?;
    anyhow::ensure!(
        opened.unknown_migrations.is_empty(),
        "the backup was written by a newer Tessera (migrations {:?} unknown to this one)",
        opened.unknown_migrations
    );
    let verified = tessera_core::keys::verify(&*opened.keys, &ring).await?;
    anyhow::ensure!(
        verified.opened == verified.sampled,
        "only {} of {} sampled secrets decrypt with the master key {}: the backup is damaged",
        verified.opened,
        verified.sampled,
        verified.fingerprint
    );
    if opened.missing_migrations.is_empty() {
        println!("migrations: current");
    } else {
        println!(
            "migrations: {} to apply at the next start ({:?})",
            opened.missing_migrations.len(),
            opened.missing_migrations
        );
    }
    println!(
        "master key: matches ({}); {} sampled secrets decrypt",
        verified.fingerprint, verified.sampled
    );
    println!("ok");
    Ok(())
}

async fn connect(
    config: &Config,
) -> anyhow::Result<std::sync::Arc<dyn tessera_core::store::Store>> {
    tessera_store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                tessera_store::redact(&config.database_url)
            )
        })
}
