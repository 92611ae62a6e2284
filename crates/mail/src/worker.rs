//! The outbox worker: claims due emails under a lease, renders and sends them, and records
//! the outcome. Transient failures retry with exponential backoff (plus jitter, so instances
//! do not retry in step); permanent ones, and emails past the attempt limit, are marked
//! failed; an email this instance cannot decrypt is left queued, uncounted (wrong or old
//! master key: SPEC §14). Several workers (one per instance) share the outbox safely: a claim is exclusive
//! until its lease ends, and only the claimant can settle an email.

use crate::render::{Brand, render};
use crate::transport::{Transport, TransportConfigError, TransportError};
use lettre::message::Mailbox;
use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tessera_core::mail::{Mailer, OpenError};
use tessera_core::mail::{OutboxStore, QueuedEmail};
use tessera_core::{Clock, Timestamp};
use tokio::sync::watch;
use uuid::Uuid;

/// How the worker paces itself.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// How often to look for due emails when the outbox was empty.
    pub poll_interval: Duration,
    /// Emails claimed at once. Each is sent in turn under one lease, so a batch must fit in
    /// the lease even when the SMTP server is slow; the default claims one at a time.
    pub batch: i64,
    /// How long a claim lasts; a worker that dies mid-batch releases its emails after this.
    /// Each step of an SMTP exchange is given at most an eighth of it (and 20 s).
    pub lease_secs: i64,
    /// First retry delay; doubled after each failure, up to `retry_max_secs`.
    pub retry_base_secs: i64,
    pub retry_max_secs: i64,
    /// Attempts before an email is marked failed.
    pub max_attempts: i64,
    /// Emails sent at once, each by its own lane over its own SMTP connection (reused
    /// while it lives). An interactive email waits for at most one send to finish.
    pub connections: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            batch: 1,
            lease_secs: 120,
            retry_base_secs: 30,
            retry_max_secs: 3600,
            max_attempts: 25,
            connections: 4,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub sent: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
}

/// Where and how the worker delivers.
pub struct OutboxConfig {
    /// `smtp://…` or `smtps://…`; `None` writes `.eml` files to `folder`.
    pub smtp_url: Option<String>,
    pub folder: std::path::PathBuf,
    /// The sender, e.g. `Tessera <no-reply@example.com>`.
    pub from: String,
    pub brand: Brand,
    pub settings: DeliverySettings,
}

pub struct Outbox {
    store: Arc<dyn OutboxStore>,
    mailer: Arc<Mailer>,
    transport: Transport,
    clock: Arc<dyn Clock>,
    brand: Brand,
    from: Mailbox,
    settings: DeliverySettings,
    stats: Arc<DeliveryStats>,
    /// Names this worker's claims.
    id: Uuid,
}

impl Outbox {
    pub fn new(
        config: OutboxConfig,
        store: Arc<dyn OutboxStore>,
        mailer: Arc<Mailer>,
        clock: Arc<dyn Clock>,
        stats: Arc<DeliveryStats>,
    ) -> Result<Self, TransportConfigError> {
        // A send (a handful of SMTP steps) must end well within the lease, or another
        // worker could take the email over while it is still being sent.
        let lease = u64::try_from(config.settings.lease_secs).unwrap_or(120);
        let timeout = Duration::from_secs((lease / 8).clamp(1, 20));
        Ok(Self {
            transport: Transport::new(
                config.smtp_url.as_deref(),
                config.folder,
                timeout,
                config.settings.connections,
            )?,
            from: config.from.parse().map_err(TransportConfigError::From)?,
            brand: config.brand,
            settings: config.settings,
            store,
            mailer,
            clock,
            stats,
            id: Uuid::now_v7(),
        })
    }

    /// Delivers until `stop` turns true, finishing the emails in hand: `connections` lanes
    /// each claim and send in turn, so that many emails are on their way at once and the
    /// most urgent due email is always the next one claimed.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        tracing::debug!(worker = %self.id, lanes = self.settings.connections, "outbox worker started");
        let this = Arc::new(self);
        let lanes: Vec<_> = (0..this.settings.connections.max(1))
            .map(|_| tokio::spawn(this.clone().lane(stop.clone())))
            .collect();
        for lane in lanes {
            if let Err(e) = lane.await {
                tracing::error!(error = %e, "an outbox lane ended abnormally");
            }
        }
        tracing::debug!(worker = %this.id, "outbox worker stopped");
    }

    async fn lane(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let busy = match self.deliver_due().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::error!(error = %e.cause, "the outbox worker cannot {}", e.step);
                    false
                }
            };
            if !busy {
                tokio::select! {
                    () = tokio::time::sleep(self.settings.poll_interval) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Claims one batch of due emails and settles each; returns how many were claimed.
    pub async fn deliver_due(&self) -> Result<usize, WorkerError> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_emails(
                now,
                now.plus_secs(self.settings.lease_secs),
                self.id,
                self.settings.batch,
            )
            .await
            .map_err(|cause| WorkerError {
                step: "claim due emails (a write to the outbox)",
                cause,
            })?;
        let count = claimed.len();
        for email in claimed {
            match self.mailer.open(email.id, &email.payload) {
                Err(OpenError::Unsealable(e)) => {
                    self.leave_unreadable(&email, &e)
                        .await
                        .map_err(|cause| WorkerError {
                            step: "leave an unreadable email queued (a write to the outbox)",
                            cause,
                        })?;
                }
                opened => {
                    let outcome = self.deliver(&email, opened).await;
                    self.settle(&email, outcome)
                        .await
                        .map_err(|cause| WorkerError {
                            step: "record the outcome of a delivery (a write to the outbox)",
                            cause,
                        })?;
                }
            }
        }
        Ok(count)
    }

    /// An email this instance's keys cannot open is not this worker's to judge (another
    /// instance may hold the key, or the operator may restore it): it stays queued, its
    /// attempt uncounted, and is looked at again after the first retry delay (SPEC §14).
    async fn leave_unreadable(
        &self,
        email: &QueuedEmail,
        error: &tessera_core::crypto::Unsealable,
    ) -> Result<(), tessera_core::store::StoreError> {
        let next = self.clock.now().plus_secs(self.settings.retry_base_secs);
        self.store
            .email_unreadable(email.id, self.id, next, &error.to_string())
            .await?;
        tracing::error!(email = %email.id, kind = %email.kind, retry_at = %next, "a queued email cannot be decrypted with this instance's master key; left queued");
        Ok(())
    }

    async fn deliver(
        &self,
        email: &QueuedEmail,
        opened: Result<tessera_core::mail::OutgoingEmail, OpenError>,
    ) -> Result<(), TransportError> {
        let opened = opened.map_err(|e| TransportError::Permanent(e.to_string()))?;
        let rendered =
            render(&opened, &self.brand).map_err(|e| TransportError::Permanent(e.to_string()))?;
        self.transport
            .send(email.id, &self.from, &opened.to_name, &opened.to, &rendered)
            .await
    }

    async fn settle(
        &self,
        email: &QueuedEmail,
        outcome: Result<(), TransportError>,
    ) -> Result<(), tessera_core::store::StoreError> {
        let (id, claim) = (email.id, self.id);
        match outcome {
            Ok(()) => {
                self.store.email_sent(id, claim, self.clock.now()).await?;
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(email = %id, kind = %email.kind, "email delivered");
            }
            Err(TransportError::Transient(error))
                if email.attempts < self.settings.max_attempts =>
            {
                let next = retry_at(self.clock.now(), email.attempts, &self.settings);
                self.store.email_retry(id, claim, next, &error).await?;
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(email = %id, attempts = email.attempts, retry_at = %next, %error, "email not delivered; will retry");
            }
            Err(TransportError::Transient(error) | TransportError::Permanent(error)) => {
                self.store.email_failed(id, claim, &error).await?;
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(email = %id, kind = %email.kind, attempts = email.attempts, %error, "email delivery failed for good");
            }
        }
        Ok(())
    }
}

/// `base · 2^(attempts-1)`, capped, plus up to a fifth more at random.
/// A step of the worker that failed, and why: the log says which (a claim is a write, not a
/// read: on a read-only or full volume it is the write that fails).
#[derive(Debug, thiserror::Error)]
#[error("cannot {step}: {cause}")]
pub struct WorkerError {
    pub step: &'static str,
    #[source]
    pub cause: tessera_core::store::StoreError,
}

fn retry_at(now: Timestamp, attempts: i64, settings: &DeliverySettings) -> Timestamp {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let delay = settings
        .retry_base_secs
        .saturating_mul(1_i64 << exponent)
        .min(settings.retry_max_secs)
        .max(1);
    let jitter = rand::thread_rng().gen_range(0..=delay / 5);
    now.plus_secs(delay + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let s = DeliverySettings::default();
        let now = Timestamp::from_unix(0);
        for (attempts, delay) in [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (25, 3600)] {
            let at = retry_at(now, attempts, &s).unix();
            assert!(
                (delay..=delay + delay / 5).contains(&at),
                "attempt {attempts}: {at}s, expected {delay}s + up to 20%"
            );
        }
    }
}
