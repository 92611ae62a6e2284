//! One-time recovery codes, the 8-digit backup-code format, and the paper key: how they are
//! made, how typed input is normalized, and how they are stored (only as keyed hashes).
//!
//! Hashes are HMAC-SHA256 under a key derived from the master key, bound to the user: a
//! stolen database alone does not allow guessing even an 8-digit code offline.

use crate::crypto::{MacKey, random_bytes};
use crate::model::UserId;
use rand::Rng;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

/// Lowercase RFC 4648 base32: no 0/1/8/9 to confuse with O/I/B/g.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

pub const RECOVERY_CODE_COUNT: usize = 10;
pub const PAPER_KEY_LEN: usize = 64;

/// The shape of recovery codes, a deployment choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeFormat {
    /// `xxxxx-xxxxx`, lowercase base32, 50 bits.
    #[default]
    Words,
    /// 8 digits (SparkPost's backup codes), about 26.6 bits: only ever usable online, once.
    Digits,
}

impl CodeFormat {
    /// A fresh code, as shown to the user.
    pub fn generate(self) -> String {
        match self {
            Self::Words => {
                let bytes = random_bytes::<10>();
                let chars: String = bytes
                    .iter()
                    .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
                    .collect();
                format!("{}-{}", &chars[..5], &chars[5..])
            }
            Self::Digits => format!("{:08}", OsRng.gen_range(0..100_000_000u32)),
        }
    }

    /// A set of codes, all different.
    pub fn generate_set(self) -> Vec<String> {
        let mut codes: Vec<String> = Vec::with_capacity(RECOVERY_CODE_COUNT);
        while codes.len() < RECOVERY_CODE_COUNT {
            let code = self.generate();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes
    }

    /// Typed input in canonical form (case, spaces and dashes ignored), if it has this
    /// format's shape.
    pub fn normalize(self, input: &str) -> Option<String> {
        let cleaned: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let ok = match self {
            Self::Words => cleaned.len() == 10 && cleaned.bytes().all(|b| ALPHABET.contains(&b)),
            Self::Digits => cleaned.len() == 8 && cleaned.bytes().all(|b| b.is_ascii_digit()),
        };
        ok.then_some(cleaned)
    }
}

/// A 64-character paper key, shown once at setup.
pub fn generate_paper_key() -> String {
    let bytes = random_bytes::<PAPER_KEY_LEN>();
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect()
}

/// A paper key as typed, canonical; `None` if it cannot be one.
pub fn normalize_paper_key(input: &str) -> Option<String> {
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (cleaned.len() == PAPER_KEY_LEN && cleaned.bytes().all(|b| ALPHABET.contains(&b)))
        .then_some(cleaned)
}

/// What a hashed code is for: a code of one purpose never matches another's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePurpose {
    /// A recovery code (or backup code) of the second step.
    Recovery,
    /// The paper key of the recovery page.
    PaperKey,
    /// A code emailed to verify a device.
    Device,
}

impl CodePurpose {
    /// The label mixed into the hash (stored hashes depend on it: never change one).
    fn label(self) -> &'static str {
        match self {
            Self::Recovery => "recovery",
            Self::PaperKey => "paper",
            Self::Device => "device",
        }
    }
}

/// Hashes codes and paper keys for storage and lookup.
pub struct CodeHasher(MacKey);

impl CodeHasher {
    pub fn new(key: MacKey) -> Self {
        Self(key)
    }

    /// HMAC(key, purpose ‖ user ‖ normalized code).
    pub fn hash(&self, purpose: CodePurpose, user: UserId, normalized: &str) -> Vec<u8> {
        let purpose = purpose.label();
        self.0
            .sign(format!("{purpose}\u{0}{user}\u{0}{normalized}").as_bytes())
            .to_vec()
    }

    /// An API key's keyed hash, what the store looks it up by: a key is 200 random bits, so
    /// one fast MAC is as safe as a slow hash and keeps the gate quick (SPEC §15).
    pub fn api_key(&self, key: &crate::api_keys::ApiKeySecret) -> crate::crypto::TokenHash {
        crate::crypto::TokenHash(
            self.0
                .sign(format!("api_key\u{0}{}", key.expose()).as_bytes()),
        )
    }

    /// What stands for an identifier typed where an email was expected that is no address
    /// (SPEC §8): `typed:` and the HMAC of the text, so that it is never stored as typed.
    pub fn identifier(&self, typed: &str) -> String {
        let tag = self.0.sign(format!("identifier\u{0}{typed}").as_bytes());
        format!("typed:{}", crate::crypto::b64(&tag[..18]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn recovery_codes_look_like_xxxxx_dash_xxxxx() {
        let codes = CodeFormat::Words.generate_set();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert_eq!(
                CodeFormat::Words.normalize(code).unwrap(),
                code.replace('-', "")
            );
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
    }

    #[test]
    fn typed_codes_ignore_case_spaces_and_dashes() {
        let w = CodeFormat::Words;
        assert_eq!(w.normalize("ABCDE-FGH23").unwrap(), "abcdefgh23");
        assert_eq!(w.normalize(" abcde fgh23 ").unwrap(), "abcdefgh23");
        assert_eq!(w.normalize("a-b-c-d-e-f-g-h-2-3").unwrap(), "abcdefgh23");
        for bad in [
            "",
            "abcde-fgh2",
            "abcde-fgh234",
            "abcde-fgh21",
            "abcde_fgh23",
            "ábcde-fgh23",
        ] {
            assert!(w.normalize(bad).is_none(), "{bad:?}");
        }
        let d = CodeFormat::Digits;
        assert_eq!(d.normalize("1234 5678").unwrap(), "12345678");
        assert!(d.normalize("1234567").is_none());
        assert!(d.normalize("1234567a").is_none());
        let code = d.generate();
        assert_eq!(code.len(), 8);
        assert!(d.normalize(&code).is_some());
    }

    #[test]
    fn paper_keys_are_64_random_characters() {
        let key = generate_paper_key();
        assert_eq!(key.len(), 64);
        assert_ne!(key, generate_paper_key());
        let spaced = crate::factors::totp::group(&key.to_uppercase(), 8, " ");
        assert_eq!(normalize_paper_key(&spaced).unwrap(), key);
        assert!(normalize_paper_key(&key[1..]).is_none());
    }

    #[test]
    fn hashes_are_keyed_and_bound_to_user_and_purpose() {
        let key = MasterKey::generate();
        let h = CodeHasher::new(key.derive("codes"));
        let (a, b) = (UserId::new(), UserId::new());
        assert_eq!(
            h.hash(CodePurpose::Recovery, a, "x"),
            h.hash(CodePurpose::Recovery, a, "x")
        );
        assert_ne!(
            h.hash(CodePurpose::Recovery, a, "x"),
            h.hash(CodePurpose::Recovery, b, "x")
        );
        assert_ne!(
            h.hash(CodePurpose::Recovery, a, "x"),
            h.hash(CodePurpose::PaperKey, a, "x")
        );
        let other = CodeHasher::new(MasterKey::generate().derive("codes"));
        assert_ne!(
            h.hash(CodePurpose::Recovery, a, "x"),
            other.hash(CodePurpose::Recovery, a, "x")
        );
    }
}
