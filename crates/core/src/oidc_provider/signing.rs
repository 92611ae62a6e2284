//! The keys ID tokens are signed with (SPEC §13): RS256 (2048-bit RSA, the default) and
//! ES256 (P-256), made here, kept with the private half sealed under the master key (bound to
//! the key's id), published as a JWKS, signed with `ring` and checked with `jsonwebtoken`.
//!
//! Each algorithm has one current key, made when first needed. `tessera admin
//! rotate-signing-key` retires the current keys and makes new ones; a retired key stays in
//! the JWKS for [`ID_TOKEN_SECS`] more, so every token it signed can still be checked.

use super::port::SigningKeyRow;
use crate::Timestamp;
use crate::crypto::{Sealer, random_bytes};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use serde_json::{Value, json};

/// How long an ID token is valid (and a retired key stays published): 10 minutes.
pub const ID_TOKEN_SECS: i64 = 600;

/// The algorithms a client may ask its ID tokens in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlg {
    Rs256,
    Es256,
}

impl SigningAlg {
    pub const ALL: [Self; 2] = [Self::Rs256, Self::Es256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    fn jose(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot make a signing key: {0}")]
    Generate(String),
    #[error("a stored signing key is unusable: {0}")]
    Stored(String),
    #[error("cannot sign: {0}")]
    Sign(String),
    #[error(transparent)]
    Sealed(#[from] crate::crypto::Unsealable),
}

/// A new key of `alg`, its private half sealed by `sealer`, current from `now`. Slow for RSA
/// (run it off the async runtime).
pub fn generate(
    alg: SigningAlg,
    sealer: &Sealer,
    now: Timestamp,
) -> Result<SigningKeyRow, SigningError> {
    let id = URL_SAFE_NO_PAD.encode(random_bytes::<12>());
    let (private, public) = match alg {
        SigningAlg::Rs256 => rsa_key()?,
        SigningAlg::Es256 => ec_key()?,
    };
    let mut jwk = public;
    jwk["kid"] = json!(id);
    jwk["alg"] = json!(alg.as_str());
    jwk["use"] = json!("sig");
    Ok(SigningKeyRow {
        private_sealed: sealer.seal(&private, id.as_bytes()),
        id,
        alg: alg.as_str().to_owned(),
        public_jwk: jwk.to_string(),
        created_at: now,
        retired_at: None,
    })
}

/// PKCS#1 DER of a new RSA key, and its public JWK members.
fn rsa_key() -> Result<(Vec<u8>, Value), SigningError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
        .map_err(|e| SigningError::Generate(e.to_string()))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|e| SigningError::Generate(e.to_string()))?;
    let jwk = json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    });
    Ok((der.as_bytes().to_vec(), jwk))
}

/// PKCS#8 DER of a new P-256 key, and its public JWK members.
fn ec_key() -> Result<(Vec<u8>, Value), SigningError> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let generate = |_| SigningError::Generate("P-256 key generation failed".into());
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(generate)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| SigningError::Generate("P-256 key does not load".into()))?;
    // An uncompressed point: 0x04 ‖ x ‖ y.
    let point = pair.public_key().as_ref();
    let (x, y) = point
        .get(1..33)
        .zip(point.get(33..65))
        .ok_or_else(|| SigningError::Generate("unexpected P-256 public key".into()))?;
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(x),
        "y": URL_SAFE_NO_PAD.encode(y),
    });
    Ok((pkcs8.as_ref().to_vec(), jwk))
}

/// A key ready to sign with: parsed once, when first used, and kept (parsing an RSA key
/// costs more than signing with it, and a P-256 key's public point is computed on parsing).
pub struct Signer {
    pub kid: String,
    pair: KeyPair,
    /// The JWS header, base64url-encoded: the same for every token of the key.
    header: String,
    rng: ring::rand::SystemRandom,
}

enum KeyPair {
    Rsa(ring::signature::RsaKeyPair),
    Ec(ring::signature::EcdsaKeyPair),
}

impl Signer {
    /// Opens a stored key.
    pub fn open(row: &SigningKeyRow, sealer: &Sealer) -> Result<Self, SigningError> {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RsaKeyPair};
        let alg = SigningAlg::parse(&row.alg)
            .ok_or_else(|| SigningError::Stored(format!("unknown algorithm {}", row.alg)))?;
        let der = sealer.open(&row.private_sealed, row.id.as_bytes())?;
        let rng = ring::rand::SystemRandom::new();
        let unusable = |e: &dyn std::fmt::Display| SigningError::Stored(e.to_string());
        let pair = match alg {
            SigningAlg::Rs256 => {
                KeyPair::Rsa(RsaKeyPair::from_der(&der).map_err(|e| unusable(&e))?)
            }
            SigningAlg::Es256 => KeyPair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
                    .map_err(|e| unusable(&e))?,
            ),
        };
        let header = json!({"alg": alg.as_str(), "kid": row.id, "typ": "JWT"});
        Ok(Self {
            kid: row.id.clone(),
            pair,
            header: URL_SAFE_NO_PAD.encode(header.to_string()),
            rng,
        })
    }

    /// A compact JWS of `claims` (RFC 7515): header, claims and signature, base64url.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, SigningError> {
        let claims = serde_json::to_vec(claims).map_err(|e| SigningError::Sign(e.to_string()))?;
        let mut token = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(claims));
        let failed = |_| SigningError::Sign("the signing key refused to sign".into());
        let signature = match &self.pair {
            KeyPair::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    token.as_bytes(),
                    &mut signature,
                )
                .map_err(failed)?;
                signature
            }
            KeyPair::Ec(pair) => pair
                .sign(&self.rng, token.as_bytes())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// The JWKS document of `keys`.
pub fn jwks(keys: &[SigningKeyRow]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
        .collect();
    json!({ "keys": keys })
}

/// The claims of an ID token signed by one of `keys` for `issuer`, whatever its expiry (an
/// `id_token_hint`); `None` if no key of ours signed it.
pub fn verify_ignoring_expiry(token: &str, keys: &[SigningKeyRow], issuer: &str) -> Option<Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let kid = header.kid?;
    let row = keys.iter().find(|k| k.id == kid)?;
    let jwk: Jwk = serde_json::from_str(&row.public_jwk).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let alg = SigningAlg::parse(&row.alg)?;
    if header.alg != alg.jose() {
        return None;
    }
    let mut validation = Validation::new(alg.jose());
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss"]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .ok()
        .map(|data| data.claims)
}

/// `at_hash`: the left half of the SHA-256 of the access token, base64url (OIDC Core 3.1.3.6;
/// both RS256 and ES256 use SHA-256).
pub fn at_hash(access_token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn a_signed_token_verifies_with_its_published_key_only() {
        let sealer = MasterKey::generate().sealer("oidc-signing");
        let now = Timestamp::from_unix(1_800_000_000);
        for alg in SigningAlg::ALL {
            let row = generate(alg, &sealer, now).unwrap();
            let jwks = jwks(std::slice::from_ref(&row));
            assert_eq!(jwks["keys"][0]["kid"], row.id.as_str());
            assert_eq!(jwks["keys"][0]["alg"], alg.as_str());
            assert!(jwks["keys"][0].get("d").is_none(), "no private member");
            let signer = Signer::open(&row, &sealer).unwrap();
            let token = signer
                .sign(&json!({"iss": "https://t", "sub": "u"}))
                .unwrap();
            let claims = verify_ignoring_expiry(&token, std::slice::from_ref(&row), "https://t");
            assert_eq!(claims.unwrap()["sub"], "u");
            assert!(
                verify_ignoring_expiry(&token, std::slice::from_ref(&row), "https://other")
                    .is_none()
            );
            let mut tampered = token.clone();
            tampered.insert(token.find('.').unwrap() + 3, 'A');
            assert!(verify_ignoring_expiry(&tampered, &[row], "https://t").is_none());
        }
    }
}
