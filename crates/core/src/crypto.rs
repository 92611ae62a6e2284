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
    /// An encryption key for one purpose (TOTP secrets, queued emails).
    pub fn sealer(&self, label: &str) -> Sealer {
        Sealer(self.derive(&format!("aead/{label}")).0)
    }
}

/// Authenticated encryption (XChaCha20-Poly1305, random 192-bit nonces) for data the
/// database must hold but must not be able to read. The associated data binds a ciphertext to
/// its row, so one row's secret cannot be moved to another.
pub struct Sealer([u8; 32]);

#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt: wrong key, wrong row, or corrupted data")]
pub struct Unsealable;

impl Sealer {
    /// `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> Vec<u8> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.0).into());
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

    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Result<Vec<u8>, Unsealable> {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        if sealed.len() < 24 {
            return Err(Unsealable);
        }
        let (nonce, ciphertext) = sealed.split_at(24);
        let cipher = chacha20poly1305::XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: associated,
                },
            )
            .map_err(|_| Unsealable)
    }
}

/// A derived 256-bit key used for MACs (CSRF tokens and the like).
pub struct MacKey([u8; 32]);

impl MacKey {
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
    fn secure_eq_compares_content_and_length() {
        assert!(secure_eq(b"abc", b"abc"));
        assert!(!secure_eq(b"abc", b"abd"));
        assert!(!secure_eq(b"abc", b"abcd"));
    }
}
