//! Password hashing with argon2id, off the async runtime and with bounded concurrency.
//!
//! Hashing is deliberately expensive (OWASP: 19 MiB, 2 passes), so it runs on the blocking
//! pool, at most one per core at a time; requests beyond that wait their turn instead of
//! exhausting memory. Checking a password for an email nobody has still verifies against a
//! hash made at start-up with the same parameters, so it costs the same as a wrong password.

use crate::SecurityPolicy;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task stopped: {0}")]
    Task(String),
}

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    permits: Semaphore,
    /// A hash of a random password, verified when the email is unknown.
    decoy: String,
}

impl Passwords {
    /// Builds the hasher and its decoy hash (one hash's worth of work).
    pub async fn new(policy: &SecurityPolicy) -> Result<Self, PasswordError> {
        let params = Params::new(
            policy.argon2_memory_kib,
            policy.argon2_iterations,
            policy.argon2_parallelism,
            None,
        )
        .map_err(|e| PasswordError::Params(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let decoy_password = crate::crypto::b64(&crate::crypto::random_bytes::<32>());
        let decoy = {
            let argon2 = argon2.clone();
            tokio::task::spawn_blocking(move || hash_with(&argon2, &decoy_password))
                .await
                .map_err(|e| PasswordError::Task(e.to_string()))??
        };
        Ok(Self {
            inner: Arc::new(Inner {
                argon2,
                permits: Semaphore::new(cores),
                decoy,
            }),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=…`) of a new password, with a fresh random salt.
    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let password = password.clone();
        self.run(move |argon2| hash_with(argon2, password.expose_secret()))
            .await?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown email, or a user
    /// without a password) the decoy is checked instead and the answer is `false`.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let password = password.clone();
        let (target, real) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.inner.decoy.clone(), false),
        };
        let matched = self
            .run(move |argon2| {
                PasswordHash::new(&target)
                    .map(|parsed| {
                        argon2
                            .verify_password(password.expose_secret().as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(matched && real)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner.argon2))
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        s.to_owned().into()
    }

    #[tokio::test]
    async fn hashes_with_owasp_argon2id_parameters_and_verifies() {
        let p = Passwords::new(&SecurityPolicy::default()).await.unwrap();
        let h = p.hash(&secret("correct horse")).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(p.verify(&secret("correct horse"), Some(&h)).await.unwrap());
        assert!(!p.verify(&secret("wrong horse"), Some(&h)).await.unwrap());
        // Salted: the same password hashes differently each time.
        assert_ne!(h, p.hash(&secret("correct horse")).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        let p = Passwords::new(&SecurityPolicy::default()).await.unwrap();
        assert!(!p.verify(&secret("anything"), None).await.unwrap());
        assert!(
            !p.verify(&secret("x"), Some("not a phc string"))
                .await
                .unwrap()
        );
    }
}
