//! The key itself: `tsk_` and 40 base62 characters, of which the first 34 are random (about
//! 202 bits) and the last 6 are the CRC32 (IEEE) of those 34, in base62, so that a secret
//! scanner can tell a real key from look-alike text without asking Tessera, and a mistyped
//! key is refused before any database read.
//!
//! The key is shown once; the store keeps only its keyed hash ([`crate::codes::CodeHasher::api_key`])
//! and its first 8 characters, the prefix people recognize it by.

use crate::crypto::random_bytes;
use secrecy::{ExposeSecret, SecretString};

/// What every key starts with.
pub const KEY_PREFIX: &str = "tsk_";
/// Characters after the prefix.
const BODY_LEN: usize = 40;
/// The checksum's characters, at the end.
const CHECK_LEN: usize = 6;
const RANDOM_LEN: usize = BODY_LEN - CHECK_LEN;
/// How many characters of a key are shown in lists.
pub const SHOWN_PREFIX_LEN: usize = 8;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// An API key in full: only its holder and, once, its creator see it.
pub struct ApiKeySecret(SecretString);

impl ApiKeySecret {
    /// A fresh key.
    pub fn generate() -> Self {
        let mut random = String::with_capacity(RANDOM_LEN);
        while random.len() < RANDOM_LEN {
            for byte in random_bytes::<64>() {
                // 248 = 4 × 62: taking only bytes below it keeps every character equally likely.
                if byte < 248 && random.len() < RANDOM_LEN {
                    random.push(char::from(BASE62[usize::from(byte % 62)]));
                }
            }
        }
        let check = checksum(random.as_bytes());
        Self(format!("{KEY_PREFIX}{random}{check}").into())
    }

    /// A key as a client presents it, if it has the shape of one and its checksum matches
    /// (checked here, without the database).
    pub fn parse(text: &str) -> Option<Self> {
        let body = text.strip_prefix(KEY_PREFIX)?;
        if body.len() != BODY_LEN || !body.bytes().all(|b| BASE62.contains(&b)) {
            return None;
        }
        let (random, check) = body.split_at(RANDOM_LEN);
        (checksum(random.as_bytes()) == check).then(|| Self(text.to_owned().into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The first characters, by which lists show the key.
    pub fn prefix(&self) -> &str {
        &self.expose()[..SHOWN_PREFIX_LEN]
    }
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.prefix())
    }
}

/// Whether `text` is meant as an API key (rather than a session token): it starts with the
/// prefix, which no session token of 43 characters with a valid checksum can be mistaken for.
pub fn looks_like_key(text: &str) -> bool {
    text.starts_with(KEY_PREFIX)
}

/// The CRC32 of `random`, as 6 base62 characters (most significant first, zero-padded).
fn checksum(random: &[u8]) -> String {
    let mut n = crc32(random);
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// CRC-32/ISO-HDLC (the one of zlib, PNG and Ethernet), bit by bit: keys are short.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The catalogue's check value for CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_generated_key_has_the_format_and_parses() {
        for _ in 0..200 {
            let key = ApiKeySecret::generate();
            let text = key.expose();
            assert_eq!(text.len(), 44, "{text}");
            assert!(text.starts_with("tsk_"));
            assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert!(ApiKeySecret::parse(text).is_some(), "{text}");
            assert_eq!(key.prefix(), &text[..8]);
        }
        assert_ne!(
            ApiKeySecret::generate().expose(),
            ApiKeySecret::generate().expose()
        );
    }

    #[test]
    fn a_wrong_checksum_or_shape_is_refused() {
        let key = ApiKeySecret::generate();
        let text = key.expose().to_owned();
        // Change one random character: the checksum no longer matches.
        let mut bytes = text.clone().into_bytes();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        let changed = String::from_utf8(bytes).unwrap();
        assert!(ApiKeySecret::parse(&changed).is_none());
        for bad in [
            "",
            "tsk_",
            &text[..43],
            &format!("{text}0"),
            &text.replacen("tsk_", "tsx_", 1),
            &text.replacen("tsk_", "TSK_", 1),
            &format!("{}-{}", &text[..20], &text[21..]),
        ] {
            assert!(ApiKeySecret::parse(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{key:?}").contains(&text[8..]));
    }
}
