//! Random tokens, their stored hashes, the master key and keys derived from it.
//!
//! Tokens (sessions, later invitations and devices) are 256 random bits handed to the client
//! once; the database only ever sees their SHA-256. The master key never leaves this module
//! except through derived keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Fills `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A bearer token as given to a client: 256 random bits, base64url without padding.
pub struct Token(SecretString);

impl Token {
    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(random_bytes::<32>()).into())
    }

    /// Wraps a token presented by a client (it is not validated here: an unknown or malformed
    /// token simply hashes to something no row has).
    pub fn from_client(value: &str) -> Self {
        Self(value.to_owned().into())
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.expose().as_bytes()).into())
    }
}

/// SHA-256 of a token: what the database stores and looks up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Constant-time equality for secrets of any length (length itself is not secret).
pub fn secure_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The deployment's 256-bit master key. Encrypts TOTP secrets (AEAD) and keys the MACs.
pub struct MasterKey(SecretBox<[u8; 32]>);

#[derive(Debug, thiserror::Error)]
#[error("the master key must be 64 hexadecimal characters (32 bytes)")]
pub struct InvalidMasterKey;

impl MasterKey {
    pub fn generate() -> Self {
        Self(SecretBox::new(Box::new(random_bytes::<32>())))
    }

    pub fn from_hex(text: &str) -> Result<Self, InvalidMasterKey> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| InvalidMasterKey)?;
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// The key as written to the key file: hex and a newline.
    pub fn to_hex(&self) -> String {
        format!("{}\n", hex::encode(self.0.expose_secret()))
    }

    /// A key for one purpose, independent of every other: HMAC-SHA256(master, label).
    pub fn derive(&self, label: &str) -> MacKey {
        MacKey(mac(
            self.0.expose_secret(),
            format!("tessera/v1/{label}").as_bytes(),
        ))
    }
}

impl MasterKey {
    /// An encryption key for one purpose (TOTP secrets, queued emails), under this key alone.
    pub fn sealer(&self, label: &str) -> Sealer {
        Sealer {
            label: label.to_owned(),
            keys: vec![self.aead_key(label)],
            failures: Arc::default(),
        }
    }

    fn aead_key(&self, label: &str) -> [u8; 32] {
        self.derive(&format!("aead/{label}")).0
    }

    /// What the database records to recognize this key (SPEC §14): an HMAC of a fixed label
    /// under the key, which tells nothing about the key itself.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(mac(self.0.expose_secret(), b"tessera/v1/key-fingerprint"))
    }
}

/// A master key's fingerprint, as recorded in the database.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The first 8 bytes in hex: enough for a person to tell two keys apart in a message.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

/// The master keys an instance holds: the current one, and while keys roll over the previous
/// one (`TESSERA_MASTER_KEY_OLD`). Its sealers seal under the current key and open with
/// either; every ciphertext that neither opens is counted
/// (`tessera_decrypt_failures_total`) and logged at error.
pub struct KeyRing {
    current: MasterKey,
    old: Option<MasterKey>,
    failures: Arc<AtomicU64>,
}

impl KeyRing {
    pub fn new(current: MasterKey, old: Option<MasterKey>) -> Self {
        Self {
            current,
            old,
            failures: Arc::default(),
        }
    }

    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The current key, then the old one.
    pub fn keys(&self) -> impl Iterator<Item = &MasterKey> + Clone {
        std::iter::once(&self.current).chain(self.old.as_ref())
    }

    /// Seals under the current key, opens with the current key, then the old one.
    pub fn sealer(&self, label: &str) -> Sealer {
        Sealer {
            label: label.to_owned(),
            keys: self.keys().map(|k| k.aead_key(label)).collect(),
            failures: Arc::clone(&self.failures),
        }
    }

    /// How many ciphertexts no key of the ring could open, since the start.
    pub fn decrypt_failures(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.failures)
    }
}

/// Authenticated encryption (XChaCha20-Poly1305, random 192-bit nonces) for data the
/// database must hold but must not be able to read. The associated data binds a ciphertext to
/// its row, so one row's secret cannot be moved to another. Seals with its first key; opens
/// with any of them (a [`KeyRing`] during a rotation).
pub struct Sealer {
    label: String,
    keys: Vec<[u8; 32]>,
    failures: Arc<AtomicU64>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt: wrong key, wrong row, or corrupted data")]
pub struct Unsealable;

impl Sealer {
    /// `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.keys[0]).into());
        let nonce = random_bytes::<24>();
        let sealed = cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            // Encryption fails only for messages beyond 256 GiB.
            .unwrap_or_else(|_| unreachable!());
        [nonce.as_slice(), &sealed].concat()
    }

    /// The plaintext, with whichever key opens it. A failure is counted and logged here, so
    /// none goes unreported whoever asked.
    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, Unsealable> {
        let opened = self
            .keys
            .iter()
            .find_map(|key| open_with(key, sealed, associated));
        if opened.is_none() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                purpose = %self.label,
                "a stored secret cannot be decrypted with this instance's master key(s); \
                 it is left for the operator (is TESSERA_MASTER_KEY right?)"
            );
        }
        opened.ok_or(Unsealable)
    }
}

impl Sealer {
    /// Opens with any of `keys` (the first also seals).
    pub(crate) fn with_keys(label: &str, keys: &[&MasterKey]) -> Self {
        Self {
            label: label.to_owned(),
            keys: keys.iter().map(|k| k.aead_key(label)).collect(),
            failures: Arc::default(),
        }
    }

    /// Whether one of the keys opens `sealed`, neither counted nor logged: for probing which
    /// key a database belongs to.
    pub(crate) fn opens_quietly(&self, sealed: &[u8], associated: &[u8]) -> bool {
        self.keys
            .iter()
            .any(|key| open_with(key, sealed, associated).is_some())
    }
}

fn open_with(key: &[u8; 32], sealed: &[u8], associated: &[u8]) -> Option<Vec<u8>> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    if sealed.len() < 24 {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(24);
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad: associated,
            },
        )
        .ok()
}

/// A derived 256-bit key used for MACs (CSRF tokens and the like).
#[derive(Clone)]
pub struct MacKey([u8; 32]);

impl MacKey {
    /// The key's bytes, to be sealed into the database ([`crate::keys`]).
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 32] {
        mac(&self.0, message)
    }

    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        secure_eq(&self.sign(message), tag)
    }
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(message);
    m.finalize().into_bytes().into()
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn from_b64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let a = Token::generate();
        let b = Token::generate();
        assert_eq!(from_b64(a.expose()).unwrap().len(), 32);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(Token::from_client(a.expose()).hash(), a.hash());
    }

    #[test]
    fn token_hash_is_sha256() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hex::encode(Token::from_client("abc").hash().as_bytes()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn master_key_round_trips_and_derives_distinct_keys() {
        let k = MasterKey::generate();
        let again = MasterKey::from_hex(&k.to_hex()).unwrap();
        assert_eq!(k.derive("csrf").sign(b"x"), again.derive("csrf").sign(b"x"));
        assert_ne!(k.derive("csrf").sign(b"x"), k.derive("other").sign(b"x"));
        assert!(MasterKey::from_hex("abc").is_err());
        assert!(MasterKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let key = MacKey({
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(b"Jefe");
            k
        });
        // RFC 4231 uses the 4-byte key "Jefe"; HMAC pads keys with zeros, so the
        // zero-padded 32-byte key gives the same tag.
        assert_eq!(
            hex::encode(key.sign(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(key.verify(
            b"what do ya want for nothing?",
            &key.sign(b"what do ya want for nothing?")
        ));
        assert!(!key.verify(b"other", &key.sign(b"what do ya want for nothing?")));
    }

    #[test]
    fn sealed_data_opens_only_with_its_key_and_row() {
        let key = MasterKey::generate();
        let sealer = key.sealer("outbox");
        let sealed = sealer.seal(b"code 123456", b"row-1");
        assert!(!sealed.windows(6).any(|w| w == b"123456"));
        assert_eq!(sealer.open(&sealed, b"row-1").unwrap(), b"code 123456");
        assert!(sealer.open(&sealed, b"row-2").is_err(), "bound to its row");
        assert!(
            key.sealer("totp").open(&sealed, b"row-1").is_err(),
            "bound to its purpose"
        );
        assert!(
            MasterKey::generate()
                .sealer("outbox")
                .open(&sealed, b"row-1")
                .is_err()
        );
        let mut tampered = sealed.clone();
        tampered[30] ^= 1;
        assert!(sealer.open(&tampered, b"row-1").is_err());
        assert!(sealer.open(&sealed[..10], b"row-1").is_err());
        assert_ne!(
            sealed,
            sealer.seal(b"code 123456", b"row-1"),
            "fresh nonce each time"
        );
    }

    #[test]
    fn a_key_ring_seals_with_the_current_key_and_opens_with_either() {
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let by_old = old.sealer("totp").seal(b"secret", b"row");
        let ring = KeyRing::new(MasterKey::from_hex(&new.to_hex()).unwrap(), Some(old));
        let sealer = ring.sealer("totp");
        assert_eq!(sealer.open(&by_old, b"row").unwrap(), b"secret");
        let by_ring = sealer.seal(b"secret", b"row");
        assert_eq!(
            new.sealer("totp").open(&by_ring, b"row").unwrap(),
            b"secret"
        );
        assert_eq!(ring.decrypt_failures().load(Ordering::Relaxed), 0);
        let stranger = MasterKey::generate().sealer("totp").seal(b"x", b"row");
        assert!(sealer.open(&stranger, b"row").is_err());
        assert_eq!(
            ring.decrypt_failures().load(Ordering::Relaxed),
            1,
            "counted"
        );
    }

    #[test]
    fn fingerprints_tell_keys_apart_and_are_stable() {
        let key = MasterKey::generate();
        let again = MasterKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(key.fingerprint(), again.fingerprint());
        assert_ne!(key.fingerprint(), MasterKey::generate().fingerprint());
        assert_eq!(key.fingerprint().short().len(), 16);
        // HMAC-SHA256 under the all-zero key: not the key, not a hash of it alone.
        let zero = MasterKey::from_hex(&"00".repeat(32)).unwrap();
        assert_ne!(zero.fingerprint().0, [0; 32]);
        assert_ne!(
            zero.fingerprint().0,
            <[u8; 32]>::from(Sha256::digest([0u8; 32]))
        );
    }

    #[test]
    fn secure_eq_compares_content_and_length() {
        assert!(secure_eq(b"abc", b"abc"));
        assert!(!secure_eq(b"abc", b"abd"));
        assert!(!secure_eq(b"abc", b"abcd"));
    }
}
