//! tacos: a host runtime that runs the services of a ticketing platform as
//! sandboxed WebAssembly components.
//!
//! The crate is a house with floors. A module imports only from modules on
//! lower floors, never from its own floor or above, so there is no import
//! cycle and each concern has one room; `tests/floors.rs` reads the floors
//! below and every `crate::` path in `src/` and fails on an upward import.
//! docs/architecture.md is the map, one paragraph a room.
//!
//! Reading order, bottom up: [`foundations`] (clock, trace ids, signatures,
//! JSON, policy, metrics, user auth); [`store`] keeps state and messages;
//! [`tenancy`] says who a tenant is and what it may use; [`bundle`] what
//! runs; [`capabilities`] what a component may do; [`runtime`] runs calls,
//! swaps and tenants; [`queue`] delivers messages; [`live`] pushes places in the waiting room and seat maps as they change; [`edge`] speaks REST and
//! gRPC; [`host`] assembles a running host; [`cli`] is the `tacos` command.

// floor 1: clock, trace ids, signatures, JSON, policy, metrics, user auth
pub mod foundations;

// floor 2: state
pub mod store;

// floor 3: tenants and the fleet's change log
pub mod sync;
pub mod tenancy;

// floor 4: what runs
pub mod bundle;

// floor 5: what a component may do
pub mod capabilities;

// floor 6: calls, swaps, tenants served
pub mod runtime;

// floor 7: message delivery, live updates
pub mod live;
pub mod queue;

// floor 8: REST, gRPC, admin
pub mod edge;

// floor 9: the composition root
pub mod host;

// floor 10: the command line
pub mod cli;
