//! TOTP two-factor authentication through the API. Codes come from oathtool, never from
//! Tessera.

mod setup;
mod sign_in;
mod turning_off;
