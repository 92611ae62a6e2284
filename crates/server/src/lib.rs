//! Tessera's HTTP side: the JSON API under `/api/v1`, the web control panel, `/metrics`, and
//! the [`Application`] that wires configuration, storage and rules together. Handlers are
//! thin: parse the request, call a `tessera_core` use case, shape the answer.

#![forbid(unsafe_code)]

mod api;
mod app;
mod body;
mod client_ip;
pub mod config;
mod config_gate;
mod error;
mod extract;
mod idp;
mod key_auth;
mod metrics;
mod oauth2;
mod pages;
mod qr;
mod return_to;
mod serve;
mod state;

pub use app::{Application, SystemClock, build_deps, open_store};
pub use config::Config;
