//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30-second steps, accepting the
//! steps t-1, t and t+1 (SPEC §3). Pure functions of the secret, the code and the time.
//!
//! Replay protection is the caller's second half: [`matching_step`] says which step a code
//! belongs to, and the store accepts it only if that step is above the last accepted one, in
//! one atomic compare-and-set.
//!
//! Setting it up (a pending secret with a paper key, activated by a first code) is in
//! [`enroll`]; answering a challenge with it, in [`Authenticator`].

mod answer;
mod enroll;
mod port;

pub(crate) use answer::Authenticator;
pub use enroll::Setup;
pub use port::{Activation, Enrollment, TotpFactor, TotpStore};

use crate::Timestamp;
use crate::crypto::{random_bytes, secure_eq};
use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha1::Sha1;

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps accepted on either side of the current one.
pub const WINDOW: i64 = 1;

/// A TOTP shared secret (160 random bits when we make it).
pub struct TotpSecret(SecretBox<Vec<u8>>);

impl TotpSecret {
    pub fn generate() -> Self {
        Self(SecretBox::new(Box::new(random_bytes::<20>().to_vec())))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    pub fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// RFC 4648 base32 without padding: 32 characters for 20 bytes.
    pub fn base32(&self) -> String {
        BASE32_NOPAD.encode(self.bytes())
    }

    /// The base32 key in groups of four, for typing into an app: `ABCD EFGH …`.
    pub fn base32_grouped(&self) -> String {
        group(&self.base32(), 4, " ")
    }

    /// The Key Uri Format link an authenticator app scans.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            percent_encode(account),
            self.base32()
        )
    }
}

/// `text` split into groups of `size` joined by `separator`.
pub fn group(text: &str, size: usize, separator: &str) -> String {
    text.as_bytes()
        .chunks(size)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(separator)
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `@`.
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A code as typed: six digits, spaces and dashes ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpCode(String);

impl TotpCode {
    pub fn parse(input: &str) -> Option<Self> {
        let digits: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        (digits.len() == DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit()))
            .then_some(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The time step a moment falls in.
pub fn step_at(now: Timestamp) -> i64 {
    now.unix().div_euclid(STEP_SECS)
}

/// HMAC-SHA1 keyed with `key`, ready to be cloned for each counter.
fn keyed(key: &[u8]) -> Hmac<Sha1> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// HOTP's digits of `counter` under an already keyed HMAC: the dynamic truncation of
/// RFC 4226 §5.3, as ASCII digits (no allocation: verification runs this three times).
fn hotp_digits(keyed: &Hmac<Sha1>, counter: u64) -> [u8; DIGITS as usize] {
    let mut mac = keyed.clone();
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let mut value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]) % 10u32.pow(DIGITS);
    let mut digits = [b'0'; DIGITS as usize];
    for digit in digits.iter_mut().rev() {
        // A remainder of 10 is below 10: the cast cannot truncate.
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
    digits
}

/// HOTP (RFC 4226): the `DIGITS`-digit code of `counter`.
pub fn hotp(key: &[u8], counter: u64) -> String {
    String::from_utf8_lossy(&hotp_digits(&keyed(key), counter)).into_owned()
}

/// The code for a step.
pub fn code_at_step(secret: &TotpSecret, step: i64) -> String {
    hotp(secret.bytes(), u64::try_from(step).unwrap_or(0))
}

/// The step within the window around `now` whose code is `code`, if any. Every candidate is
/// computed and compared in constant time, whichever matches. The key is absorbed into the
/// HMAC state once and that state cloned per step, which saves two of the four SHA-1 blocks
/// of each candidate.
pub fn matching_step(secret: &TotpSecret, code: &TotpCode, now: Timestamp) -> Option<i64> {
    let keyed = keyed(secret.bytes());
    let current = step_at(now);
    let mut found = None;
    for step in (current - WINDOW)..=(current + WINDOW) {
        if let Ok(counter) = u64::try_from(step)
            && secure_eq(&hotp_digits(&keyed, counter), code.as_str().as_bytes())
            && found.is_none()
        {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6238 appendix B secret for SHA-1: ASCII "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        // The RFC lists 8 digits; ours are the last 6 of the same truncated value.
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = step_at(Timestamp::from_unix(time));
            assert_eq!(code_at_step(&rfc_secret(), step), eight[2..], "T = {time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64), *code);
        }
    }

    #[test]
    fn the_window_is_one_step_each_side_exactly() {
        let secret = rfc_secret();
        let now = Timestamp::from_unix(1_111_111_111); // step 37037037, 1 s into it? no: 21 s
        let t = step_at(now);
        let at = |step: i64| TotpCode::parse(&code_at_step(&secret, step)).unwrap();
        assert_eq!(matching_step(&secret, &at(t), now), Some(t));
        assert_eq!(matching_step(&secret, &at(t - 1), now), Some(t - 1));
        assert_eq!(matching_step(&secret, &at(t + 1), now), Some(t + 1));
        assert_eq!(matching_step(&secret, &at(t - 2), now), None);
        assert_eq!(matching_step(&secret, &at(t + 2), now), None);
        // At the very first and last second of a step.
        let start = Timestamp::from_unix(t * STEP_SECS);
        let end = Timestamp::from_unix(t * STEP_SECS + STEP_SECS - 1);
        assert_eq!(matching_step(&secret, &at(t - 1), start), Some(t - 1));
        assert_eq!(matching_step(&secret, &at(t - 1), end), Some(t - 1));
        let next = Timestamp::from_unix((t + 1) * STEP_SECS);
        assert_eq!(matching_step(&secret, &at(t - 1), next), None);
    }

    #[test]
    fn codes_are_six_digits_with_spaces_and_dashes_ignored() {
        assert_eq!(TotpCode::parse("123456").unwrap().as_str(), "123456");
        assert_eq!(TotpCode::parse(" 123 456 ").unwrap().as_str(), "123456");
        assert_eq!(TotpCode::parse("123-456").unwrap().as_str(), "123456");
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "١٢٣٤٥٦",
            "12 34 5",
            "abcdef",
            "123456\u{0}",
        ] {
            assert!(TotpCode::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_160_bits_in_32_base32_characters() {
        let s = TotpSecret::generate();
        assert_eq!(s.bytes().len(), 20);
        assert_eq!(s.base32().len(), 32);
        assert!(
            s.base32()
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        let grouped = s.base32_grouped();
        assert_eq!(grouped.split(' ').count(), 8);
        assert_eq!(grouped.replace(' ', ""), s.base32());
        assert_ne!(TotpSecret::generate().base32(), s.base32());
    }

    #[test]
    fn otpauth_uri_follows_the_key_uri_format() {
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(
            s.otpauth_uri("Acme Auth", "ada@example.com"),
            "otpauth://totp/Acme%20Auth:ada@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Acme%20Auth&algorithm=SHA1&digits=6&period=30"
        );
    }
}
