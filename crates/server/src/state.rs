//! [`AppState`]: what every handler can reach. Handlers import it from here, so that `app.rs`,
//! which builds the routers out of them, is imported by nothing but `lib.rs`.

use crate::metrics::Metrics;
use crate::pages::cookies::Cookies;
use std::sync::Arc;
use tessera_core::Tessera;
use tessera_core::api_keys::IpRule;
use tessera_core::crypto::{MacKey, TokenHash};

/// What every handler can reach: the core's services (never the store behind them), and what
/// the HTTP edge itself needs. One pointer: axum clones the state for every extractor and
/// layer of every request, and a clone of the parts (each service's `Arc`, the strings) was a
/// tenth of the gate's CPU.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points at.
pub struct Shared {
    pub core: Tessera,
    pub metrics: Arc<Metrics>,
    pub csrf_key: Arc<MacKey>,
    /// Cookies are `Secure` and `__Host-` prefixed when the public URL is https.
    pub cookies: Cookies,
    /// The SHA-256 of `TESSERA_METRICS_TOKEN`, which `GET /metrics` then asks for.
    pub metrics_token: Option<TokenHash>,
    /// `TESSERA_TRUSTED_PROXIES`: whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<IpRule>>,
    /// Where `return_to` may lead: the public URL's origin and `TESSERA_ALLOWED_RETURN_ORIGINS`.
    pub return_origins: Arc<crate::return_to::ReturnOrigins>,
    /// Where the pages are, for the gate's redirects (`TESSERA_PUBLIC_URL`).
    pub public_url: Arc<str>,
    /// `{public_url}/login/sso/callback`, to register at an identity provider (SPEC §12).
    pub sso_redirect_uri: String,
}
