//! The proxy's identity: a P-256 key made in memory at start (never written
//! anywhere), a certificate for it from the controller's identity service,
//! renewed before it expires.
//!
//! ```text
//! start ─► LocalKey::generate (P-256, CSR for WEFT_PROXY_IDENTITY_LOCAL_NAME)
//!   loop ─► read the token file ─► Certify{identity, token, CSR} ─► check the leaf
//!           (names our identity, not expired, chains to the trust anchors,
//!           carries our public key) ─► publish Credentials (watch)
//!           ─► sleep 70 % of the remaining lifetime (refresh.rs)
//!        failure or unusable certificate ─► keep the current credentials (none:
//!           stay not ready), retry with backoff (1 s … 30 s)
//! ```
//!
//! [`client::spawn`] returns a watch of the current credentials; `None` until
//! the first certificate arrives (the proxy is not ready until then).

pub(crate) mod client;
pub(crate) mod refresh;

pub(crate) use client::{Credentials, IdentityError, IdentitySettings, spawn};

#[cfg(test)]
pub(crate) mod test_ca;
#[cfg(test)]
mod tests;
