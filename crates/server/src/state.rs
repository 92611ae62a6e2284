//! [`AppState`]: what every handler can reach. Handlers import it from here, so that `app.rs`,
//! which builds the routers out of them, is imported by nothing but `lib.rs`.

use crate::metrics::Metrics;
use std::sync::Arc;
use tessera_core::auth::Auth;
use tessera_core::crypto::MacKey;
use tessera_core::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub auth: Auth,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub csrf_key: Arc<MacKey>,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    pub trust_forwarded_for: bool,
}
