//! The master-key guard and rotation (SPEC §14).
//!
//! The database records which master key its secrets are sealed under: a [`KeyCheck`] row
//! with the key's fingerprint (an HMAC of a fixed label, which tells nothing about the key)
//! and the MAC keys, sealed under it. At start, [`unlock`] finds the key of the instance's
//! [`KeyRing`] whose fingerprint is recorded, or refuses with one line naming both
//! fingerprints, before anything else is read or written. A database without a check (new,
//! or from before the guard) gets one for the key that opens its sealed data.
//!
//! The MAC keys (recovery codes, paper keys, emailed codes, typed identifiers, CSRF) are
//! derived from the first key once and then kept sealed in the check: codes are stored only
//! as MACs, which no rotation could recompute, so they survive every rotation unchanged.
//!
//! [`rotate`] re-seals every sealed value (TOTP secrets, pending setups, queued emails, SSO
//! client secrets and pending SSO sign-ins, OIDC signing keys) and
//! the MAC keys under a new key and records its fingerprint, in one transaction. While
//! instances roll over, each holds the new key and the old one (`TESSERA_MASTER_KEY_OLD`):
//! it seals under the new key, opens with either, and starts when either is recorded.

mod port;

pub use port::{KeyCheck, KeyStore, Resealed, SealedKind, SealedRow};

use crate::Timestamp;
use crate::crypto::{KeyRing, MacKey, MasterKey, Sealer};
use crate::store::StoreError;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use uuid::Uuid;

/// What the OIDC signing keys are sealed for.
pub const SIGNING_LABEL: &str = "oidc-signing";

/// The associated data of the MAC keys' ciphertext.
const MAC_KEYS_ROW: &[u8] = b"tessera/mac-keys";

/// The keys of a running instance, once the database accepted its ring.
pub struct Keys {
    ring: KeyRing,
    codes: MacKey,
    csrf: MacKey,
}

impl Keys {
    /// Seals under the current key, opens with any key of the ring.
    pub fn sealer(&self, label: &str) -> Sealer {
        self.ring.sealer(label)
    }

    /// Keys the hashes of recovery codes, paper keys, emailed codes and typed identifiers.
    pub fn codes(&self) -> MacKey {
        self.codes.clone()
    }

    /// Keys the CSRF tokens of the pages.
    pub fn csrf(&self) -> MacKey {
        self.csrf.clone()
    }

    /// `tessera_decrypt_failures_total`.
    pub fn decrypt_failures(&self) -> Arc<AtomicU64> {
        self.ring.decrypt_failures()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "master key mismatch: the database belongs to the master key with fingerprint \
         {recorded}, but this instance has {given}; start it with the database's key \
         (TESSERA_MASTER_KEY_FILE or TESSERA_MASTER_KEY), nothing was read or written"
    )]
    Mismatch { recorded: String, given: String },
    #[error(
        "master key mismatch: the database holds secrets ({kind}) that the master key {given} \
         cannot decrypt; start with the key that sealed them, nothing was written"
    )]
    ForeignData { kind: &'static str, given: String },
    #[error("the database's key check does not open with the key {0} it names: it is damaged")]
    Damaged(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the database has no key check yet: start `tessera serve` on it once first")]
    NoCheck,
    #[error(
        "a {kind} ({id}) cannot be decrypted with any key given, so nothing was changed; \
         give its key as TESSERA_MASTER_KEY_OLD"
    )]
    Unreadable { kind: &'static str, id: String },
    #[error("another rotation changed the key meanwhile; nothing was changed, run it again")]
    Changed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the ring against the database's key check (recording one for a database that has
/// none) and answers the instance's keys. Nothing else may touch the database before.
pub async fn unlock(store: &dyn KeyStore, ring: KeyRing, now: Timestamp) -> Result<Keys, KeyError> {
    let check = match store.key_check().await? {
        Some(check) => check,
        None => {
            let key = adoptable_key(store, &ring).await?;
            let (codes, csrf) = (key.derive("codes"), key.derive("csrf"));
            let first = KeyCheck {
                fingerprint: key.fingerprint().0.to_vec(),
                mac_keys_sealed: seal_mac_keys(key, &codes, &csrf),
                created_at: now,
                rotated_at: None,
            };
            // Another instance may have recorded its own first: the one in force decides.
            store.record_key_check(&first).await?
        }
    };
    let key = recorded_key(ring.keys(), &check)?;
    let (codes, csrf) = open_mac_keys(key, &check)?;
    Ok(Keys { ring, codes, csrf })
}

/// For a database without a check: the key of the ring that opens its sealed data (the
/// current one when there is none yet).
async fn adoptable_key<'r>(
    store: &dyn KeyStore,
    ring: &'r KeyRing,
) -> Result<&'r MasterKey, KeyError> {
    let samples = store.sample_sealed(5).await?;
    let Some(first) = samples.first() else {
        return Ok(ring.current());
    };
    ring.keys()
        .find(|key| samples.iter().any(|row| opens(key, row)))
        .ok_or_else(|| KeyError::ForeignData {
            kind: first.kind.as_str(),
            given: fingerprints(ring.keys()),
        })
}

fn recorded_key<'k>(
    mut keys: impl Iterator<Item = &'k MasterKey> + Clone,
    check: &KeyCheck,
) -> Result<&'k MasterKey, KeyError> {
    keys.clone()
        .find(|k| k.fingerprint().0.as_slice() == check.fingerprint)
        .ok_or_else(|| KeyError::Mismatch {
            recorded: hex::encode(check.fingerprint.get(..8).unwrap_or_default()),
            given: fingerprints(&mut keys),
        })
}

fn fingerprints<'k>(keys: impl Iterator<Item = &'k MasterKey>) -> String {
    keys.map(|k| k.fingerprint().short())
        .collect::<Vec<_>>()
        .join(" and ")
}

fn seal_mac_keys(key: &MasterKey, codes: &MacKey, csrf: &MacKey) -> Vec<u8> {
    let plain = [codes.bytes().as_slice(), csrf.bytes().as_slice()].concat();
    key.sealer("keys").seal(&plain, MAC_KEYS_ROW)
}

fn open_mac_keys(key: &MasterKey, check: &KeyCheck) -> Result<(MacKey, MacKey), KeyError> {
    let damaged = || KeyError::Damaged(key.fingerprint().short());
    let plain = key
        .sealer("keys")
        .open(&check.mac_keys_sealed, MAC_KEYS_ROW)
        .map_err(|_| damaged())?;
    let (codes, csrf) = plain.split_at_checked(32).ok_or_else(damaged)?;
    let codes: [u8; 32] = codes.try_into().map_err(|_| damaged())?;
    let csrf: [u8; 32] = csrf.try_into().map_err(|_| damaged())?;
    Ok((MacKey::from_bytes(codes), MacKey::from_bytes(csrf)))
}

/// The purpose a kind of value is sealed for, and the row data its ciphertext is bound to.
fn binding(row: &SealedRow) -> Option<(&'static str, Vec<u8>)> {
    match row.kind {
        SealedKind::TotpFactor | SealedKind::TotpEnrollment => {
            Some(("totp", row.id.as_bytes().to_vec()))
        }
        SealedKind::Outbox => Some(("outbox", row.id.parse::<Uuid>().ok()?.as_bytes().to_vec())),
        SealedKind::SsoClientSecret | SealedKind::SsoLogin => {
            Some(("sso", row.id.as_bytes().to_vec()))
        }
        SealedKind::OidcSigningKey => Some((SIGNING_LABEL, row.id.as_bytes().to_vec())),
    }
}

/// Whether `key` opens `row`'s value (without reporting a failure: this only probes).
fn opens(key: &MasterKey, row: &SealedRow) -> bool {
    binding(row).is_some_and(|(label, associated)| {
        key.sealer(label).opens_quietly(&row.sealed, &associated)
    })
}

/// `tessera admin rotate-master-key`: every sealed value and the MAC keys re-sealed under
/// `new`, and its fingerprint recorded, in one transaction. Values sealed under any key of
/// `ring` (or already under `new`: running it again is harmless) are accepted; one that none
/// opens stops it, changing nothing. Answers how many values were re-sealed.
pub async fn rotate(
    store: &dyn KeyStore,
    ring: &KeyRing,
    new: &MasterKey,
    now: Timestamp,
) -> Result<u64, RotateError> {
    let check = store.key_check().await?.ok_or(RotateError::NoCheck)?;
    let candidates: Vec<&MasterKey> = ring.keys().chain(std::iter::once(new)).collect();
    let key = recorded_key(candidates.iter().copied(), &check)?;
    let (codes, csrf) = open_mac_keys(key, &check)?;
    let next = KeyCheck {
        fingerprint: new.fingerprint().0.to_vec(),
        mac_keys_sealed: seal_mac_keys(new, &codes, &csrf),
        created_at: check.created_at,
        rotated_at: Some(now),
    };
    let open_with = |label| Sealer::with_keys(label, &candidates);
    let sealers: Vec<(&str, Sealer, Sealer)> = ["totp", "outbox", "sso", SIGNING_LABEL]
        .into_iter()
        .map(|label| (label, open_with(label), new.sealer(label)))
        .collect();
    let mut reseal = |row: &SealedRow| {
        let (label, associated) = binding(row)?;
        let (_, opener, sealer) = sealers.iter().find(|(l, _, _)| *l == label)?;
        let plain = opener.open(&row.sealed, &associated).ok()?;
        Some(sealer.seal(&plain, &associated))
    };
    match store
        .reseal_all(&check.fingerprint, &next, &mut reseal)
        .await?
    {
        Resealed::Done { rows } => Ok(rows),
        Resealed::Unreadable { kind, id } => Err(RotateError::Unreadable {
            kind: kind.as_str(),
            id,
        }),
        Resealed::CheckChanged => Err(RotateError::Changed),
    }
}

/// What `tessera admin restore-check` found.
#[derive(Debug)]
pub struct Verified {
    /// The fingerprint of the key the backup belongs to.
    pub fingerprint: String,
    /// Sealed values tried, and how many of them the key opened.
    pub sampled: usize,
    pub opened: usize,
}

/// Checks a database (a restored backup) against the ring, reading only: its key check names
/// a key of the ring, and a sample of its sealed values opens with it.
pub async fn verify(store: &dyn KeyStore, ring: &KeyRing) -> Result<Verified, RotateError> {
    let check = store.key_check().await?.ok_or(RotateError::NoCheck)?;
    let key = recorded_key(ring.keys(), &check)?;
    open_mac_keys(key, &check)?;
    let sample = store.sample_sealed(50).await?;
    let opened = sample.iter().filter(|row| opens(key, row)).count();
    Ok(Verified {
        fingerprint: key.fingerprint().short(),
        sampled: sample.len(),
        opened,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_keys_round_trip_under_their_key_only() {
        let key = MasterKey::generate();
        let (codes, csrf) = (key.derive("codes"), key.derive("csrf"));
        let check = KeyCheck {
            fingerprint: key.fingerprint().0.to_vec(),
            mac_keys_sealed: seal_mac_keys(&key, &codes, &csrf),
            created_at: Timestamp::from_unix(0),
            rotated_at: None,
        };
        let (c, s) = open_mac_keys(&key, &check).unwrap();
        assert_eq!(c.sign(b"x"), codes.sign(b"x"));
        assert_eq!(s.sign(b"x"), csrf.sign(b"x"));
        assert!(open_mac_keys(&MasterKey::generate(), &check).is_err());
    }

    #[test]
    fn a_mismatch_names_both_fingerprints_on_one_line() {
        let (db_key, other) = (MasterKey::generate(), MasterKey::generate());
        let check = KeyCheck {
            fingerprint: db_key.fingerprint().0.to_vec(),
            mac_keys_sealed: Vec::new(),
            created_at: Timestamp::from_unix(0),
            rotated_at: None,
        };
        let error = recorded_key(std::iter::once(&other), &check)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains(&db_key.fingerprint().short()), "{error}");
        assert!(error.contains(&other.fingerprint().short()), "{error}");
        assert!(!error.contains('\n'));
    }
}
