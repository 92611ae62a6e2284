//! Checks for the free-text fields users give us: names and passwords.

use crate::SecurityPolicy;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A person's or team's name (and any other free text shown to others): trimmed, 1..=100
/// characters, no control or format characters (SPEC §8: general categories Cc and Cf, so a
/// U+202E cannot turn `Payroll\u{202e}exe.fdp` into "Payrollpdf.exe" in an email).
pub fn name(field: &'static str, input: &str) -> Result<String, FieldError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > 100 {
        return Err(FieldError::new(field, "must be at most 100 characters"));
    }
    if trimmed.chars().any(|c| c.is_control() || is_format(c)) {
        return Err(FieldError::new(
            field,
            "must not contain control or invisible formatting characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Unicode's general category Cf (format characters: bidi overrides, zero-width spaces, the
/// byte-order mark, tag characters …), as of Unicode 15.1.
const FORMAT: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

pub(crate) fn is_format(c: char) -> bool {
    FORMAT.iter().any(|&(low, high)| (low..=high).contains(&c))
}

/// Who a new password is for: the estimator counts these words as easy to guess.
pub struct PasswordContext<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub team: &'a str,
}

impl PasswordContext<'_> {
    /// The email, its local part, the name and the team, whole and word by word.
    fn words(&self) -> Vec<&str> {
        let local_part = self.email.split('@').next().unwrap_or_default();
        let mut words = vec![self.email, local_part, self.name, self.team];
        for text in [local_part, self.name, self.team] {
            words.extend(
                text.split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() > 1),
            );
        }
        words
    }

    /// The name and team run together, as people type them into passwords.
    fn joined(&self) -> [String; 2] {
        [self.name, self.team].map(|text| text.split_whitespace().collect::<String>())
    }
}

/// A new password (SPEC §8): at least `password_min_chars` characters (Unicode, after
/// collapsing runs of spaces, as NIST asks) and at most `password_max_chars`, no composition
/// rules, and refused when the zxcvbn estimator, given who it is for, scores it below
/// `password_min_score`; the refusal carries the estimator's warning and suggestions.
/// Existing passwords are never checked again.
pub fn new_password(
    policy: &SecurityPolicy,
    password: &str,
    context: &PasswordContext<'_>,
) -> Result<(), FieldError> {
    let field = "password";
    let collapsed = password.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars = collapsed.chars().count();
    if chars < policy.password_min_chars {
        return Err(FieldError::new(
            field,
            format!("must be at least {} characters", policy.password_min_chars),
        ));
    }
    if password.chars().count() > policy.password_max_chars {
        return Err(FieldError::new(
            field,
            format!("must be at most {} characters", policy.password_max_chars),
        ));
    }
    let joined = context.joined();
    let mut words = context.words();
    words.extend(joined.iter().map(String::as_str));
    let estimate = zxcvbn::zxcvbn(password, &words);
    if u8::from(estimate.score()) >= policy.password_min_score {
        return Ok(());
    }
    let mut hint = String::from("is too easy to guess");
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            hint = format!("{hint}: {}", warning.to_string().trim_end_matches('.'));
        }
        for suggestion in feedback.suggestions() {
            hint = format!("{hint}. {}", suggestion.to_string().trim_end_matches('.'));
        }
    }
    if !hint.ends_with('.') {
        hint.push('.');
    }
    Err(FieldError::new(field, hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_control_and_format_characters() {
        for bad in [
            "Payroll\u{202e}exe.fdp",
            "a\u{200b}b",
            "\u{feff}Acme",
            "tab\there",
            "a\u{2066}b",
            "soft\u{ad}hyphen",
            "tag\u{e0041}",
        ] {
            let err = name("name", bad).unwrap_err();
            assert_eq!(err.field, "name", "{bad:?}");
        }
        for good in [
            "Zoë Ångström",
            "Ли Мин",
            "株式会社",
            "O'Brien-Smith",
            "🙂 team",
        ] {
            assert_eq!(name("name", good).unwrap(), good);
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Ada ").unwrap(), "Ada");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(101)).is_err());
        assert!(name("name", "a\u{7}b").is_err());
        assert_eq!(name("name", &"é".repeat(100)).unwrap().chars().count(), 100);
    }

    const ADA: PasswordContext<'static> = PasswordContext {
        email: "ada.lovelace@example.com",
        name: "Ada Lovelace",
        team: "Analytical Engines",
    };

    fn refusal(password: &str) -> Option<String> {
        new_password(&SecurityPolicy::default(), password, &ADA)
            .err()
            .map(|e| e.message)
    }

    #[test]
    fn passwords_are_twelve_to_128_characters() {
        assert_eq!(
            refusal("Qz8#vT1!mK").as_deref(),
            Some("must be at least 12 characters")
        );
        // Runs of spaces count once; characters, not bytes.
        assert!(refusal("Qz8#v     T1!mK").is_some());
        assert!(refusal("ø7ß¤ŧ→ẞæđŋħł").is_none());
        assert!(refusal(&"wq8#Zp2!".repeat(16)).is_none());
        assert_eq!(
            refusal(&"wq8#Zp2!".repeat(17)).as_deref(),
            Some("must be at most 128 characters")
        );
    }

    #[test]
    fn guessable_passwords_are_refused_with_the_estimator_s_hint() {
        for weak in [
            "password1234",
            "qwertyuiop123",
            "aaaaaaaaaaaaaaaa",
            "AdaLovelace1815",
            "analyticalengines",
        ] {
            let hint = refusal(weak).unwrap_or_else(|| panic!("{weak} was accepted"));
            assert!(hint.starts_with("is too easy to guess"), "{weak}: {hint}");
        }
        assert!(refusal("umbrella kettle furnace sideways").is_none());
        assert!(refusal("tR7#kq!2Lw9z").is_none());
    }
}
