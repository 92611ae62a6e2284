//! Configuration: a TOML file (`--config FILE` or `TESSERA_CONFIG`) overlaid by `TESSERA_*`
//! environment variables (the environment wins), with defaults that let
//! `tessera serve` run in an empty folder.

use crate::config_gate::StringList;
use anyhow::{Context, bail};
use serde::Deserialize;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use tessera_core::SecurityPolicy;
use tessera_core::api_keys::{GrantCatalog, IpRule};
use tessera_core::crypto::{KeyRing, MasterKey};
use tessera_core::sign_up::SignupMode;

/// Where the master key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterKeySource {
    /// A file holding 64 hex characters; generated (mode 0600) if it is the default one and
    /// does not exist yet.
    File { path: PathBuf, generate: bool },
    /// The key itself (`TESSERA_MASTER_KEY`), for deployments that inject secrets as values.
    Inline(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `host:port` to listen on; port 0 picks a free one.
    pub bind: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Base of links in emails and of the `Secure` cookie decision; `None` → `http://<bound
    /// address>`.
    pub public_url: Option<String>,
    pub master_key: MasterKeySource,
    /// The previous master key while instances roll over to a new one
    /// (`TESSERA_MASTER_KEY_OLD` or `TESSERA_MASTER_KEY_OLD_FILE`): opens what it sealed.
    pub master_key_old: Option<MasterKeySource>,
    pub log_format: LogFormat,
    /// The proxies whose `X-Forwarded-For` is believed (`TESSERA_TRUSTED_PROXIES`, a list
    /// of addresses and CIDR blocks; SPEC §11): the client's address is the nearest one in
    /// that header that is not one of them.
    pub trusted_proxies: Vec<IpRule>,
    /// The app's own grants for API keys (`TESSERA_API_GRANTS`, e.g.
    /// `messages:send,metrics:read`), besides Tessera's.
    pub api_grants: GrantCatalog,
    /// The domain the session cookie is set for (`TESSERA_COOKIE_DOMAIN`), so that the gate
    /// sees it on the app's subdomains; unset, the cookie is for Tessera's host only.
    pub cookie_domain: Option<String>,
    /// Origins besides the public URL's that `return_to` may lead to
    /// (`TESSERA_ALLOWED_RETURN_ORIGINS`: `https://app.example.com`, comma-separated).
    pub allowed_return_origins: Vec<String>,
    /// `smtp://…` / `smtps://…`; unset → emails are written to `<data dir>/mail/`.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// The product name in emails (and in authenticator apps).
    pub issuer: String,
    pub mail: MailConfig,
    pub security: SecurityPolicy,
    /// `GET /metrics` asks for `Authorization: Bearer <this>` when set (SPEC §8).
    pub metrics_token: Option<String>,
    /// Who may create a team: `verify` (default), `open` or `closed` (SPEC §8).
    pub signup: SignupMode,
    /// How often each instance deletes what has expired, in seconds (SPEC §14: 1 h); 0 turns
    /// housekeeping off (another instance, or a cron job, does it).
    pub housekeeping_interval_secs: u64,
    pub server: ServerConfig,
}

/// Connections (`[server]` in the file; SPEC §14): timeouts, caps and the shutdown deadline.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// A request's head must arrive within this (then its body, again within this); a
    /// keep-alive connection idle this long is closed.
    pub header_timeout_secs: u64,
    /// Open connections at most; `0` picks half the open-file limit (at most 16,384).
    pub max_connections: usize,
    /// Open connections at most from one client address; `0` for no such cap (behind a
    /// proxy every connection comes from the proxy's address).
    pub max_connections_per_ip: usize,
    /// After `SIGTERM`, how long requests in flight may still finish before the remaining
    /// connections are closed.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            max_connections: 0,
            max_connections_per_ip: 256,
            shutdown_grace_secs: 30,
        }
    }
}

/// The outbox worker's pace (`[mail]` in the file).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub poll_interval_ms: u64,
    pub batch: i64,
    pub lease_secs: i64,
    pub retry_base_secs: i64,
    pub retry_max_secs: i64,
    pub max_attempts: i64,
    pub connections: usize,
}

impl Default for MailConfig {
    fn default() -> Self {
        let d = tessera_mail::DeliverySettings::default();
        Self {
            poll_interval_ms: u64::try_from(d.poll_interval.as_millis()).unwrap_or(1000),
            batch: d.batch,
            lease_secs: d.lease_secs,
            retry_base_secs: d.retry_base_secs,
            retry_max_secs: d.retry_max_secs,
            max_attempts: d.max_attempts,
            connections: d.connections,
        }
    }
}

impl MailConfig {
    pub fn delivery(&self) -> tessera_mail::DeliverySettings {
        tessera_mail::DeliverySettings {
            poll_interval: std::time::Duration::from_millis(self.poll_interval_ms.max(10)),
            batch: self.batch.max(1),
            lease_secs: self.lease_secs.max(2),
            retry_base_secs: self.retry_base_secs.max(1),
            retry_max_secs: self.retry_max_secs.max(1),
            max_attempts: self.max_attempts.max(1),
            connections: self.connections.clamp(1, 64),
        }
    }
}

/// The file's keys are the variables' names without `TESSERA_`, in lowercase.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<String>,
    master_key_file: Option<PathBuf>,
    master_key: Option<String>,
    master_key_old_file: Option<PathBuf>,
    master_key_old: Option<String>,
    log_format: Option<LogFormat>,
    /// The older switch, which trusted `X-Forwarded-For` from any peer: refused when on.
    trust_forwarded_for: Option<bool>,
    trusted_proxies: Option<StringList>,
    api_grants: Option<StringList>,
    cookie_domain: Option<String>,
    allowed_return_origins: Option<StringList>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    issuer: Option<String>,
    /// Override `[security] session_lifetime_secs` / `session_idle_secs` in the units of
    /// their variables.
    session_hours: Option<i64>,
    session_idle_minutes: Option<i64>,
    /// Override `[security] reauth_window_secs` (SPEC §9) and `admin_requires_two_factor`.
    reauth_minutes: Option<i64>,
    #[serde(rename = "admin_requires_2fa")]
    admin_requires_two_factor: Option<bool>,
    metrics_token: Option<String>,
    signup: Option<SignupMode>,
    housekeeping_interval_secs: Option<u64>,
    event_retention_days: Option<i64>,
    #[serde(default)]
    mail: MailConfig,
    #[serde(default)]
    security: SecurityPolicy,
    #[serde(default)]
    server: ServerConfig,
}

/// Every environment variable Tessera reads.
const ENV_VARS: &[&str] = &[
    "TESSERA_CONFIG",
    "TESSERA_BIND",
    "TESSERA_DATA_DIR",
    "TESSERA_DATABASE_URL",
    "TESSERA_PUBLIC_URL",
    "TESSERA_MASTER_KEY_FILE",
    "TESSERA_MASTER_KEY",
    "TESSERA_MASTER_KEY_OLD_FILE",
    "TESSERA_MASTER_KEY_OLD",
    "TESSERA_LOG_FORMAT",
    "TESSERA_TRUST_FORWARDED_FOR",
    "TESSERA_TRUSTED_PROXIES",
    "TESSERA_API_GRANTS",
    "TESSERA_COOKIE_DOMAIN",
    "TESSERA_ALLOWED_RETURN_ORIGINS",
    "TESSERA_SMTP_URL",
    "TESSERA_MAIL_FROM",
    "TESSERA_ISSUER",
    "TESSERA_SESSION_HOURS",
    "TESSERA_SESSION_IDLE_MINUTES",
    "TESSERA_REAUTH_MINUTES",
    "TESSERA_ADMIN_REQUIRES_2FA",
    "TESSERA_METRICS_TOKEN",
    "TESSERA_SIGNUP",
    "TESSERA_HOUSEKEEPING_INTERVAL_SECS",
    "TESSERA_EVENT_RETENTION_DAYS",
    "TESSERA_HEADER_TIMEOUT_SECS",
    "TESSERA_MAX_CONNECTIONS",
    "TESSERA_MAX_CONNECTIONS_PER_IP",
    "TESSERA_SHUTDOWN_GRACE_SECS",
];

impl Config {
    /// `TESSERA_*` variables in the environment that Tessera does not know: likely typos,
    /// worth a warning at start-up.
    pub fn unknown_env_vars() -> Vec<String> {
        std::env::vars()
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("TESSERA_") && !ENV_VARS.contains(&name.as_str()))
            .collect()
    }

    /// Reads the file (if any) and the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::from_sources(file, |name| std::env::var(name).ok())
    }

    /// Like [`Config::load`], with the environment given as a function (for tests).
    pub fn from_sources(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut raw = match file {
            Some(path) => {
                let text = fs::read_to_string(path)
                    .with_context(|| format!("cannot read the config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = var("TESSERA_BIND") {
            raw.bind = Some(v);
        }
        if let Some(v) = var("TESSERA_DATA_DIR") {
            raw.data_dir = Some(v.into());
        }
        if let Some(v) = var("TESSERA_DATABASE_URL") {
            raw.database_url = Some(v);
        }
        if let Some(v) = var("TESSERA_PUBLIC_URL") {
            raw.public_url = Some(v);
        }
        if let Some(v) = var("TESSERA_MASTER_KEY_FILE") {
            raw.master_key_file = Some(v.into());
        }
        if let Some(v) = var("TESSERA_MASTER_KEY") {
            raw.master_key = Some(v);
        }
        if let Some(v) = var("TESSERA_MASTER_KEY_OLD_FILE") {
            raw.master_key_old_file = Some(v.into());
        }
        if let Some(v) = var("TESSERA_MASTER_KEY_OLD") {
            raw.master_key_old = Some(v);
        }
        if let Some(v) = var("TESSERA_SMTP_URL") {
            raw.smtp_url = Some(v);
        }
        if let Some(v) = var("TESSERA_MAIL_FROM") {
            raw.mail_from = Some(v);
        }
        if let Some(v) = var("TESSERA_ISSUER") {
            raw.issuer = Some(v);
        }
        if let Some(v) = var("TESSERA_METRICS_TOKEN") {
            raw.metrics_token = Some(v);
        }
        if let Some(v) = var("TESSERA_SESSION_HOURS") {
            raw.session_hours = Some(positive("TESSERA_SESSION_HOURS", &v)?);
        }
        if let Some(v) = var("TESSERA_SESSION_IDLE_MINUTES") {
            raw.session_idle_minutes = Some(positive("TESSERA_SESSION_IDLE_MINUTES", &v)?);
        }
        if let Some(v) = var("TESSERA_REAUTH_MINUTES") {
            raw.reauth_minutes = Some(positive("TESSERA_REAUTH_MINUTES", &v)?);
        }
        if let Some(v) = var("TESSERA_ADMIN_REQUIRES_2FA") {
            raw.admin_requires_two_factor = Some(boolean("TESSERA_ADMIN_REQUIRES_2FA", &v)?);
        }
        if let Some(v) = var("TESSERA_HOUSEKEEPING_INTERVAL_SECS") {
            raw.housekeeping_interval_secs = Some(v.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "TESSERA_HOUSEKEEPING_INTERVAL_SECS must be a whole number of seconds (0: off), not {v:?}"
                )
            })?);
        }
        if let Some(v) = var("TESSERA_EVENT_RETENTION_DAYS") {
            raw.event_retention_days = Some(positive("TESSERA_EVENT_RETENTION_DAYS", &v)?);
        }
        if let Some(v) = var("TESSERA_SIGNUP") {
            raw.signup = Some(
                v.parse()
                    .map_err(|e| anyhow::anyhow!("TESSERA_SIGNUP {e}"))?,
            );
        }
        if let Some(v) = var("TESSERA_HEADER_TIMEOUT_SECS") {
            raw.server.header_timeout_secs =
                positive("TESSERA_HEADER_TIMEOUT_SECS", &v)?.unsigned_abs();
        }
        if let Some(v) = var("TESSERA_SHUTDOWN_GRACE_SECS") {
            raw.server.shutdown_grace_secs = count("TESSERA_SHUTDOWN_GRACE_SECS", &v)?;
        }
        if let Some(v) = var("TESSERA_MAX_CONNECTIONS") {
            raw.server.max_connections = count("TESSERA_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = var("TESSERA_MAX_CONNECTIONS_PER_IP") {
            raw.server.max_connections_per_ip = count("TESSERA_MAX_CONNECTIONS_PER_IP", &v)?;
        }
        if let Some(v) = var("TESSERA_LOG_FORMAT") {
            raw.log_format = Some(match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => bail!("TESSERA_LOG_FORMAT must be text or json, not {other:?}"),
            });
        }
        if let Some(v) = var("TESSERA_TRUST_FORWARDED_FOR") {
            raw.trust_forwarded_for = Some(boolean("TESSERA_TRUST_FORWARDED_FOR", &v)?);
        }
        if let Some(v) = var("TESSERA_TRUSTED_PROXIES") {
            raw.trusted_proxies = Some(StringList::Text(v));
        }
        if let Some(v) = var("TESSERA_API_GRANTS") {
            raw.api_grants = Some(StringList::Text(v));
        }
        if let Some(v) = var("TESSERA_COOKIE_DOMAIN") {
            raw.cookie_domain = Some(v);
        }
        if let Some(v) = var("TESSERA_ALLOWED_RETURN_ORIGINS") {
            raw.allowed_return_origins = Some(StringList::Text(v));
        }
        Self::resolve(raw)
    }

    fn resolve(mut raw: FileConfig) -> anyhow::Result<Self> {
        if let Some(days) = raw.event_retention_days {
            anyhow::ensure!(days > 0, "event_retention_days must be at least 1");
            raw.security.event_retention_days = days;
        }
        if let Some(hours) = raw.session_hours {
            anyhow::ensure!(hours > 0, "session_hours must be at least 1");
            raw.security.session_lifetime_secs = hours * 3600;
        }
        if let Some(minutes) = raw.session_idle_minutes {
            anyhow::ensure!(minutes > 0, "session_idle_minutes must be at least 1");
            raw.security.session_idle_secs = minutes * 60;
        }
        if let Some(minutes) = raw.reauth_minutes {
            anyhow::ensure!(minutes > 0, "reauth_minutes must be at least 1");
            raw.security.reauth_window_secs = minutes * 60;
        }
        if let Some(required) = raw.admin_requires_two_factor {
            raw.security.admin_requires_two_factor = required;
        }
        let data_dir = raw
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./tessera-data"));
        let bind = normalize_bind(raw.bind.as_deref().unwrap_or("127.0.0.1:8080"));
        let database_url = raw
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("tessera.db").display()));
        let master_key = match (raw.master_key, raw.master_key_file) {
            (Some(_), Some(_)) => {
                bail!("give the master key either inline or as a file, not both")
            }
            (Some(key), None) => MasterKeySource::Inline(key),
            (None, Some(path)) => MasterKeySource::File {
                path,
                generate: false,
            },
            (None, None) => MasterKeySource::File {
                path: data_dir.join("master.key"),
                generate: true,
            },
        };
        let master_key_old = match (raw.master_key_old, raw.master_key_old_file) {
            (Some(_), Some(_)) => {
                bail!("give the old master key either inline or as a file, not both")
            }
            (Some(key), None) => Some(MasterKeySource::Inline(key)),
            (None, Some(path)) => Some(MasterKeySource::File {
                path,
                generate: false,
            }),
            (None, None) => None,
        };
        if let Some(url) = &raw.smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            bail!("TESSERA_SMTP_URL must start with smtp:// or smtps://");
        }
        if let Some(url) = &raw.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("TESSERA_PUBLIC_URL must start with http:// or https://, not {url:?}");
        }
        let gate = crate::config_gate::resolve(
            raw.trust_forwarded_for,
            raw.trusted_proxies.map(StringList::items),
            raw.api_grants.map(StringList::items),
            raw.cookie_domain,
            raw.allowed_return_origins.map(StringList::items),
        )?;
        Ok(Self {
            bind,
            data_dir,
            database_url,
            public_url: raw.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            master_key,
            master_key_old,
            log_format: raw.log_format.unwrap_or_default(),
            trusted_proxies: gate.trusted_proxies,
            api_grants: gate.api_grants,
            cookie_domain: gate.cookie_domain,
            allowed_return_origins: gate.allowed_return_origins,
            smtp_url: raw.smtp_url,
            mail_from: raw
                .mail_from
                .unwrap_or_else(|| "Tessera <no-reply@localhost>".to_owned()),
            issuer: raw.issuer.unwrap_or_else(|| "Tessera".to_owned()),
            mail: raw.mail,
            security: raw.security,
            metrics_token: raw.metrics_token.filter(|t| !t.is_empty()),
            signup: raw.signup.unwrap_or_default(),
            housekeeping_interval_secs: raw.housekeeping_interval_secs.unwrap_or(3600),
            server: ServerConfig {
                header_timeout_secs: raw.server.header_timeout_secs.max(1),
                ..raw.server
            },
        })
    }

    /// Loads the master key, generating the default key file on first run.
    pub fn load_master_key(&self) -> anyhow::Result<MasterKey> {
        self.master_key.load("TESSERA_MASTER_KEY")
    }

    /// The master key and, while keys roll over, the old one.
    pub fn load_key_ring(&self) -> anyhow::Result<KeyRing> {
        let old = self
            .master_key_old
            .as_ref()
            .map(|source| source.load("TESSERA_MASTER_KEY_OLD"))
            .transpose()?;
        Ok(KeyRing::new(self.load_master_key()?, old))
    }
}

impl MasterKeySource {
    /// The key, from the variable `name` or its file (generated if it is the default one).
    pub fn load(&self, name: &str) -> anyhow::Result<MasterKey> {
        match self {
            MasterKeySource::Inline(hex) => {
                MasterKey::from_hex(hex).with_context(|| format!("{name} is invalid"))
            }
            MasterKeySource::File { path, generate } => match fs::read_to_string(path) {
                Ok(text) => MasterKey::from_hex(&text)
                    .with_context(|| format!("the master key file {} is invalid", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && *generate => {
                    let key = MasterKey::generate();
                    write_private(path, key.to_hex().as_bytes())?;
                    tracing::info!(path = %path.display(), "generated a new master key");
                    Ok(key)
                }
                Err(e) => Err(e)
                    .with_context(|| format!("cannot read the master key file {}", path.display())),
            },
        }
    }
}

/// `true` or `false` (also `1`/`0`, `yes`/`no`), for the variable `name`.
fn boolean(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        other => bail!("{name} must be true or false, not {other:?}"),
    }
}

/// A whole number of at least 1, for the variable `name`.
fn positive(name: &str, value: &str) -> anyhow::Result<i64> {
    match value.trim().parse::<i64>() {
        Ok(n) if n > 0 && n <= 24 * 366 * 60 => Ok(n),
        _ => bail!("{name} must be a whole number of at least 1, not {value:?}"),
    }
}

/// A whole number of at least 0, for the variable `name`.
fn count<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{name} must be a whole number, not {value:?}"))
}

/// `:8080` means port 8080 on the loopback address (never all interfaces by accident).
fn normalize_bind(bind: &str) -> String {
    match bind.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => bind.to_owned(),
    }
}

/// Creates `path` readable and writable by its owner only; never overwrites.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(file: Option<&str>, env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let dir = std::env::temp_dir().join(format!("tessera-config-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{n}.toml"));
        let file = file.map(|text| {
            fs::write(&path, text).unwrap();
            path.clone()
        });
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(file.as_deref(), |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_run_in_an_empty_folder() {
        let c = config(None, &[]).unwrap();
        assert_eq!(c.bind, "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./tessera-data"));
        assert_eq!(c.database_url, "sqlite://./tessera-data/tessera.db");
        assert_eq!(
            c.master_key,
            MasterKeySource::File {
                path: PathBuf::from("./tessera-data/master.key"),
                generate: true
            }
        );
        assert_eq!(c.security, SecurityPolicy::default());
        assert_eq!(c.public_url, None);
        assert_eq!(c.smtp_url, None);
        assert_eq!(c.mail_from, "Tessera <no-reply@localhost>");
        assert_eq!(c.issuer, "Tessera");
        assert_eq!(c.mail, MailConfig::default());
        assert_eq!(c.signup, SignupMode::Verify);
    }

    #[test]
    fn the_signup_mode_comes_from_the_file_or_the_environment() {
        assert_eq!(
            config(Some("signup = \"closed\""), &[]).unwrap().signup,
            SignupMode::Closed
        );
        let c = config(Some("signup = \"closed\""), &[("TESSERA_SIGNUP", "open")]).unwrap();
        assert_eq!(c.signup, SignupMode::Open);
        assert!(config(None, &[("TESSERA_SIGNUP", "maybe")]).is_err());
        assert!(config(Some("signup = \"yes\""), &[]).is_err());
    }

    #[test]
    fn environment_wins_over_the_file() {
        let c = config(
            Some("bind = \"0.0.0.0:9000\"\ndata_dir = \"/srv/t\"\n[security]\npassword_max_failures = 5\n"),
            &[("TESSERA_BIND", ":0"), ("TESSERA_PUBLIC_URL", "https://auth.example.com/")],
        )
        .unwrap();
        assert_eq!(c.bind, "127.0.0.1:0");
        assert_eq!(c.data_dir, PathBuf::from("/srv/t"));
        assert_eq!(c.database_url, "sqlite:///srv/t/tessera.db");
        assert_eq!(c.public_url.as_deref(), Some("https://auth.example.com"));
        assert_eq!(c.security.password_max_failures, 5);
        assert_eq!(c.security.session_lifetime_secs, 12 * 3600);
        assert_eq!(c.security.session_idle_secs, 30 * 60);
    }

    #[test]
    fn step_up_settings_come_from_their_variables_or_keys() {
        let c = config(None, &[]).unwrap();
        assert_eq!(c.security.reauth_window_secs, 15 * 60);
        assert!(c.security.admin_requires_two_factor);
        let c = config(
            Some(
                "reauth_minutes = 5
admin_requires_2fa = false
",
            ),
            &[("TESSERA_REAUTH_MINUTES", "30")],
        )
        .unwrap();
        assert_eq!(c.security.reauth_window_secs, 30 * 60);
        assert!(!c.security.admin_requires_two_factor);
        let c = config(None, &[("TESSERA_ADMIN_REQUIRES_2FA", "false")]).unwrap();
        assert!(!c.security.admin_requires_two_factor);
        assert!(config(None, &[("TESSERA_ADMIN_REQUIRES_2FA", "maybe")]).is_err());
        assert!(config(None, &[("TESSERA_REAUTH_MINUTES", "0")]).is_err());
    }

    #[test]
    fn session_limits_come_from_their_variables_or_keys() {
        let c = config(
            Some("session_hours = 8\n[security]\nsession_idle_secs = 600\n"),
            &[("TESSERA_SESSION_IDLE_MINUTES", "15")],
        )
        .unwrap();
        assert_eq!(c.security.session_lifetime_secs, 8 * 3600);
        assert_eq!(c.security.session_idle_secs, 15 * 60);
        let c = config(Some("[security]\nsession_idle_secs = 600\n"), &[]).unwrap();
        assert_eq!(c.security.session_idle_secs, 600);
        let c = config(None, &[("TESSERA_SESSION_HOURS", "2")]).unwrap();
        assert_eq!(c.security.session_lifetime_secs, 7200);
        assert!(config(None, &[("TESSERA_SESSION_HOURS", "0")]).is_err());
        assert!(config(None, &[("TESSERA_SESSION_IDLE_MINUTES", "half")]).is_err());
        assert!(config(Some("session_hours = -1\n"), &[]).is_err());
    }

    #[test]
    fn the_metrics_token_is_optional() {
        assert_eq!(config(None, &[]).unwrap().metrics_token, None);
        let c = config(None, &[("TESSERA_METRICS_TOKEN", "s3cret")]).unwrap();
        assert_eq!(c.metrics_token.as_deref(), Some("s3cret"));
    }

    #[test]
    fn a_given_key_file_is_never_generated() {
        let c = config(None, &[("TESSERA_MASTER_KEY_FILE", "/run/secrets/k")]).unwrap();
        assert_eq!(
            c.master_key,
            MasterKeySource::File {
                path: PathBuf::from("/run/secrets/k"),
                generate: false
            }
        );
        assert!(c.load_master_key().is_err());
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(config(Some("bnd = \"x\""), &[]).is_err(), "unknown key");
        assert!(config(None, &[("TESSERA_LOG_FORMAT", "xml")]).is_err());
        assert!(config(None, &[("TESSERA_SMTP_URL", "mail.example.com:25")]).is_err());
        assert!(config(Some("[mail]\nretries = 3\n"), &[]).is_err());
        assert!(config(None, &[("TESSERA_PUBLIC_URL", "auth.example.com")]).is_err());
        assert!(
            config(
                None,
                &[
                    ("TESSERA_MASTER_KEY", "00"),
                    ("TESSERA_MASTER_KEY_FILE", "/k")
                ]
            )
            .is_err()
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_generated_key_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tessera-key-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let c = config(None, &[("TESSERA_DATA_DIR", dir.to_str().unwrap())]).unwrap();
        let first = c.load_master_key().unwrap();
        let mode = fs::metadata(dir.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = c.load_master_key().unwrap();
        assert_eq!(first.to_hex(), again.to_hex());
        fs::remove_dir_all(&dir).unwrap();
    }
}
