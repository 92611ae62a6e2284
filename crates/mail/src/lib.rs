//! Tessera's email: the words of every message ([`render`]), the transports that carry them
//! (SMTP or a local folder), and the worker that drains the durable outbox ([`Outbox`]).

#![forbid(unsafe_code)]

mod render;
mod smtp;
mod transport;
mod worker;

pub use render::{Brand, Rendered, render};
pub use transport::TransportConfigError;
pub use worker::{DeliverySettings, DeliveryStats, Outbox, OutboxConfig, WorkerError};
