//! The ground floor: what every other room of the host uses and that uses
//! nothing of the host's. None of these imports another module of the crate
//! outside this folder (`tests/floors.rs` checks the whole house).
//!
//! - [`clock`]: the host clock, system or virtual (`--virtual-clock`);
//! - [`trace`]: W3C trace ids;
//! - [`signature`]: Standard Webhooks signatures;
//! - [`json`]: the contract descriptors and proto3 JSON;
//! - [`policy`]: what a component may import, call, send and post to;
//! - [`metrics`]: the Prometheus registry and its handles;
//! - [`auth`]: end-user JWT verification and the tenant a token claims.

pub mod auth;
pub mod clock;
pub mod json;
pub mod metrics;
pub mod policy;
pub mod signature;
pub mod trace;
