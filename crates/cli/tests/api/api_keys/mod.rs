//! API keys and the gate (SPEC §11): keys made, listed, changed, revoked and used by grant
//! ([`keys`]), the recovery grants `users:write` and `policy:write` ([`recovery`]), their
//! allowlists and failures ([`refusals`]), races ([`races`]), the gate over HTTP ([`gate`]),
//! `return_to` on the sign-in page ([`return_to`]), and a real nginx in front of an app, over
//! HTTP and in Chromium ([`nginx`]).

mod gate;
mod keys;
mod nginx;
mod page;
mod races;
mod recovery;
mod refusals;
mod return_to;

use crate::helpers::{ResponseExt, TestApp};
use reqwest::Response;
use serde_json::{Value, json};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `key` has the documented shape, its checksum computed here with the `crc`
/// crate (an implementation other than Tessera's): `tsk_`, 34 base62 characters, then
/// their CRC-32/ISO-HDLC as 6 base62 digits.
pub fn well_formed(key: &str) -> bool {
    let Some(body) = key.strip_prefix("tsk_") else {
        return false;
    };
    if body.len() != 40 || !body.bytes().all(|b| BASE62.contains(&b)) {
        return false;
    }
    let (random, check) = body.split_at(34);
    let mut n = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(random.as_bytes());
    let mut digits = Vec::new();
    for _ in 0..6 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    digits.reverse();
    check.as_bytes() == digits
}

/// A key shaped right, with the right checksum, that no one created.
pub fn unknown_key() -> String {
    let random: String = (0..34).map(|i| char::from(BASE62[(i * 7) % 62])).collect();
    let mut n = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(random.as_bytes());
    let mut digits = Vec::new();
    for _ in 0..6 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    digits.reverse();
    format!("tsk_{random}{}", String::from_utf8(digits).unwrap())
}

impl TestApp {
    /// `POST /account/api-keys`.
    pub async fn create_key(&self, token: &str, body: Value) -> Response {
        self.post("/api/v1/account/api-keys", body, Some(token))
            .await
    }

    /// A key with these grants and allowed addresses, by the manager `token`: (key, id).
    pub async fn new_key(&self, token: &str, grants: &[&str], ips: &[&str]) -> (String, String) {
        let response = self
            .create_key(
                token,
                json!({"label": "Test key", "grants": grants, "allowed_ips": ips}),
            )
            .await;
        assert_eq!(response.status(), 201, "a key is created");
        let body = response.body().await;
        (
            body["key"].as_str().unwrap().to_owned(),
            body["id"].as_str().unwrap().to_owned(),
        )
    }

    /// `GET /account/api-keys`.
    pub async fn keys(&self, token: &str) -> Response {
        self.get("/api/v1/account/api-keys", Some(token)).await
    }

    /// `DELETE /account/api-keys/{id}`.
    pub async fn revoke_key(&self, token: &str, id: &str) -> Response {
        self.delete(&format!("/api/v1/account/api-keys/{id}"), Some(token))
            .await
    }

    /// `GET /api/v1/gate{path}` with these headers.
    pub async fn gate(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = self.client.get(self.url(&format!("/api/v1/gate{path}")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }
}

/// A response header, as text.
pub fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}
