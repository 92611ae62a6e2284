//! Password hashing with argon2id, off the async runtime and with bounded concurrency.
//!
//! Hashing is deliberately expensive (OWASP: 19 MiB, 2 passes), so it runs on the blocking
//! pool, at most one per core at a time; requests beyond that wait their turn instead of
//! exhausting memory. Checking a password for an email nobody has still verifies against a
//! hash made at start-up with the same parameters, so it costs the same as a wrong password.
//! A check reuses the working memory of an earlier one (one set per core) instead of
//! allocating and zeroing 19 MiB for every sign-in.

use crate::SecurityPolicy;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
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
    /// One per core; held until the hashing thread is done, even if its caller went away.
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified when the email is unknown.
    decoy: String,
    /// Working memory of finished checks, for the next ones: at most one per permit, and
    /// none larger than the policy's (a check of an older, larger hash is not kept).
    memory: Mutex<Vec<Vec<Block>>>,
    cores: usize,
    blocks: usize,
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
        let blocks = params.block_count();
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
                blocks,
                permits: Arc::new(Semaphore::new(cores)),
                decoy,
                memory: Mutex::new(Vec::new()),
                cores,
            }),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=…`) of a new password, with a fresh random salt.
    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        let password = password.clone();
        self.run(move |inner| hash_with(&inner.argon2, password.expose_secret()))
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
            .run(move |inner| {
                let mut memory = inner
                    .memory
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop()
                    .unwrap_or_default();
                let matched = verify_with(&target, password.expose_secret(), &mut memory);
                let mut pool = inner.memory.lock().unwrap_or_else(|e| e.into_inner());
                if pool.len() < inner.cores && memory.capacity() <= inner.blocks {
                    pool.push(memory);
                }
                matched
            })
            .await?;
        Ok(matched && real)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Task(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&inner)
        })
        .await
        .map_err(|e| PasswordError::Task(e.to_string()))
    }
}

/// Whether `password` hashes to the PHC string `stored`, under the algorithm, version,
/// parameters and salt written in it, computed in `memory` (grown as needed). The same
/// computation as argon2's `verify_password`, which allocates its memory every time.
fn verify_with(stored: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    memory.resize(params.block_count(), Block::default());
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory.as_mut_slice())
        .is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
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
    use std::time::Duration;

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

    /// The reused memory gives the answers of argon2's own `verify_password`, for hashes of
    /// other parameters and versions too (a hash made before the policy changed).
    #[test]
    fn verifying_in_reused_memory_agrees_with_argon2() {
        use argon2::PasswordVerifier as _;
        let mut memory = Vec::new();
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        for (m, t, p, version) in [
            (19456, 2, 1, Version::V0x13),
            (8192, 1, 2, Version::V0x13),
            (4096, 3, 1, Version::V0x10),
        ] {
            let params = Params::new(m, t, p, None).unwrap();
            for algorithm in [Algorithm::Argon2id, Algorithm::Argon2i] {
                let argon2 = Argon2::new(algorithm, version, params.clone());
                let stored = argon2
                    .hash_password(b"correct horse", &salt)
                    .unwrap()
                    .to_string();
                let parsed = PasswordHash::new(&stored).unwrap();
                for guess in ["correct horse", "correct horsf", ""] {
                    let theirs = argon2.verify_password(guess.as_bytes(), &parsed).is_ok();
                    assert_eq!(
                        verify_with(&stored, guess, &mut memory),
                        theirs,
                        "{stored} {guess:?}"
                    );
                    assert_eq!(theirs, guess == "correct horse");
                }
            }
        }
        // The memory follows each hash's parameters (m = 4096 KiB last: 4096 blocks).
        assert_eq!(memory.len(), 4096);
        assert!(!verify_with(
            "$argon2id$v=19$m=19456,t=2,p=1$bad",
            "x",
            &mut memory
        ));
    }

    /// Checks whose callers gave up still hold their permit until they finish, so no more
    /// than one per core run or keep memory; a larger, older hash's memory is not kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_memory_stays_within_one_per_core_of_the_policy_s_size() {
        let policy = SecurityPolicy {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            ..SecurityPolicy::default()
        };
        let p = Passwords::new(&policy).await.unwrap();
        let stored = p.hash(&secret("pw")).await.unwrap();
        for _ in 0..16 {
            let (p, stored) = (p.clone(), stored.clone());
            // Given up on at once: the hashing goes on without its caller.
            let _ = tokio::time::timeout(Duration::ZERO, async move {
                p.verify(&secret("pw"), Some(&stored)).await
            })
            .await;
        }
        assert!(p.verify(&secret("pw"), Some(&stored)).await.unwrap());
        let inner = &p.inner;
        while inner.permits.available_permits() < inner.cores {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let kept = inner.memory.lock().unwrap().len();
        assert!((1..=inner.cores).contains(&kept), "{kept} kept");
        // A hash made under a larger policy verifies, and its memory is let go.
        let older = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(p.verify(&secret("pw"), Some(&older)).await.unwrap());
        let pool = inner.memory.lock().unwrap();
        assert!(pool.iter().all(|m| m.capacity() <= inner.blocks));
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
