//! Where rendered emails go: an SMTP server (plain, STARTTLS or TLS, per the URL), or, with
//! no SMTP configured, one RFC 5322 `.eml` file per email in a folder.

use crate::render::Rendered;
use crate::smtp::SmtpPool;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

pub(crate) enum Transport {
    Smtp(SmtpPool),
    Folder(PathBuf),
}

/// Why an email was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Worth another try later: the server is down, busy, or answered 4xx.
    #[error("{0}")]
    Transient(String),
    /// Trying again will not help: the server answered 5xx, or the address is unusable.
    #[error("{0}")]
    Permanent(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TransportConfigError {
    #[error("TESSERA_SMTP_URL is invalid: {0}")]
    SmtpUrl(String),
    #[error("TESSERA_MAIL_FROM is not a valid mailbox: {0}")]
    From(#[source] lettre::address::AddressError),
}

impl Transport {
    /// SMTP from `smtp://…`/`smtps://…` (see SPEC §6) over up to `connections` connections
    /// at once, else the folder. `timeout` bounds each SMTP step.
    pub fn new(
        smtp_url: Option<&str>,
        folder: PathBuf,
        timeout: Duration,
        connections: usize,
    ) -> Result<Self, TransportConfigError> {
        match smtp_url {
            Some(url) => Ok(Self::Smtp(SmtpPool::new(url, connections, timeout)?)),
            None => Ok(Self::Folder(folder)),
        }
    }

    /// Builds the MIME message (text and HTML alternatives) and delivers it.
    pub async fn send(
        &self,
        id: Uuid,
        from: &Mailbox,
        to_name: &str,
        to: &str,
        rendered: &Rendered,
    ) -> Result<(), TransportError> {
        let to_address = to
            .parse()
            .map_err(|e| TransportError::Permanent(format!("invalid recipient {to:?}: {e}")))?;
        let domain = from.email.domain().to_owned();
        let message = Message::builder()
            .from(from.clone())
            .to(Mailbox::new(Some(to_name.to_owned()), to_address))
            .subject(&rendered.subject)
            .message_id(Some(format!("<{id}@{domain}>")))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .map_err(|e| TransportError::Permanent(format!("cannot build the message: {e}")))?;
        match self {
            Self::Smtp(pool) => pool.send(message.envelope(), &message.formatted()).await,
            Self::Folder(folder) => {
                let file = write_eml(folder, id, &message.formatted())
                    .await
                    .map_err(|e| {
                        TransportError::Transient(format!("cannot write the email: {e}"))
                    })?;
                tracing::info!(
                    to = %to,
                    subject = %rendered.subject,
                    file = %file.display(),
                    "email written to the mail folder (no SMTP configured)"
                );
                Ok(())
            }
        }
    }
}

/// Writes `<folder>/<id>.eml` whole or not at all (a temporary file, then a rename). The
/// emails hold device codes and invitation links: the folder is its owner's only (0700, set
/// even on a folder that already existed) and each file is created 0600 (SPEC §8).
async fn write_eml(
    folder: &std::path::Path,
    id: Uuid,
    bytes: &[u8],
) -> std::io::Result<std::path::PathBuf> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(folder).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700)).await?;
    }
    let path = folder.join(format!("{id}.eml"));
    let partial = folder.join(format!(".{id}.eml.partial"));
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&partial).await?;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, &path).await?;
    Ok(path)
}
