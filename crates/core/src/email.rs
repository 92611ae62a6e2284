//! Email addresses: parsed once, compared case-insensitively.

use std::fmt;

/// A syntactically plausible email address. `normalized` is the lowercase form that makes
/// addresses unique; `as_str` keeps what the user typed (trimmed) for display and mail.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    display: String,
    normalized: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidEmail(pub &'static str);

impl Email {
    pub fn parse(input: &str) -> Result<Self, InvalidEmail> {
        let display = input.trim();
        if display.is_empty() {
            return Err(InvalidEmail("email is required"));
        }
        if display.len() > 254 {
            return Err(InvalidEmail("email is longer than 254 characters"));
        }
        if display.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidEmail("email must not contain spaces"));
        }
        // Invisible formatting (U+202E and friends) would let an address read differently
        // in the emails and lists that show it (SPEC §8: free text).
        if display.chars().any(crate::validate::is_format) {
            return Err(InvalidEmail(
                "email must not contain invisible formatting characters",
            ));
        }
        let Some((local, domain)) = display.split_once('@') else {
            return Err(InvalidEmail("email must contain @"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(InvalidEmail("email has no valid part before @"));
        }
        if domain.is_empty()
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || domain.contains('@')
        {
            return Err(InvalidEmail("email has no valid domain"));
        }
        Ok(Self {
            display: display.to_owned(),
            normalized: display.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.display
    }

    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.display)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalizes_case() {
        let e = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace@Example.COM");
        assert_eq!(e.normalized(), "ada.lovelace@example.com");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@.com",
            "a@b..c",
            "a b@c.d",
            "a@b@c",
            "a\u{0}@b.c",
            "gpj.exe\u{202e}@example.com",
            "ada@exa\u{200b}mple.com",
            "\u{feff}ada@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
