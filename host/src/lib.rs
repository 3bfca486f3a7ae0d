//! tacos: a host runtime that runs the services of a ticketing platform as
//! sandboxed WebAssembly components.
//!
//! Reading order: [`host`] assembles everything; [`runtime`] runs component
//! calls; [`capabilities`] is what components can do; [`store`] and [`queue`]
//! keep state and messages; [`edge`] speaks REST/JSON; [`policy`], [`bundle`]
//! and [`tenancy`] say what runs, with what rights, for whom.

pub mod auth;
pub mod bundle;
pub mod capabilities;
pub mod cli;
pub mod clock;
pub mod edge;
pub mod host;
pub mod json;
pub mod metrics;
pub mod policy;
pub mod queue;
pub mod runtime;
pub mod servers;
pub mod signature;
pub mod store;
pub mod sync;
pub mod tenancy;
pub mod trace;
pub mod watch;
