//! [`AppState`]: what every handler can reach. Handlers import it from here, so that `app.rs`,
//! which builds the routers out of them, is imported by nothing but `lib.rs`.

use crate::metrics::Metrics;
use std::sync::Arc;
use tessera_core::Tessera;
use tessera_core::crypto::MacKey;

/// What every handler can reach: the core's services (never the store behind them), and what
/// the HTTP edge itself needs.
#[derive(Clone)]
pub struct AppState {
    pub core: Tessera,
    pub metrics: Arc<Metrics>,
    pub csrf_key: Arc<MacKey>,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    pub trust_forwarded_for: bool,
}
