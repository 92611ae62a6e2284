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

/// A person's or team's name: trimmed, 1..=100 characters, no control characters.
pub fn name(field: &'static str, input: &str) -> Result<String, FieldError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > 100 {
        return Err(FieldError::new(field, "must be at most 100 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A new password: length within the policy's bounds (counted in characters, as NIST asks),
/// and not the email address itself.
pub fn new_password(
    policy: &SecurityPolicy,
    password: &str,
    email_normalized: &str,
) -> Result<(), FieldError> {
    let chars = password.chars().count();
    if chars < policy.password_min_chars {
        return Err(FieldError::new(
            "password",
            format!("must be at least {} characters", policy.password_min_chars),
        ));
    }
    if chars > policy.password_max_chars {
        return Err(FieldError::new(
            "password",
            format!("must be at most {} characters", policy.password_max_chars),
        ));
    }
    if password.to_lowercase() == email_normalized {
        return Err(FieldError::new(
            "password",
            "must not be your email address",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Ada ").unwrap(), "Ada");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(101)).is_err());
        assert!(name("name", "a\u{7}b").is_err());
        assert_eq!(name("name", &"é".repeat(100)).unwrap().chars().count(), 100);
    }

    #[test]
    fn passwords_follow_the_policy() {
        let p = SecurityPolicy::default();
        assert!(new_password(&p, "short", "a@b.c").is_err());
        assert!(new_password(&p, "long enough", "a@b.c").is_ok());
        assert!(new_password(&p, &"x".repeat(257), "a@b.c").is_err());
        assert!(new_password(&p, "Someone@Example.com", "someone@example.com").is_err());
        // Counted in characters, not bytes.
        assert!(new_password(&p, "ééééééé", "a@b.c").is_err());
        assert!(new_password(&p, "éééééééé", "a@b.c").is_ok());
    }
}
