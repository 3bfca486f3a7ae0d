//! Rust types for the tacos protobuf contracts.
//!
//! `proto/` is the single source of truth for every message and RPC: the host
//! maps REST/JSON and gRPC onto these messages, and components (built for
//! `wasm32-wasip2`) exchange them as encoded bytes. Package `tacos.internal.v1`
//! holds tacos' own operator and inter-component messages.

#![allow(clippy::all, missing_docs)]

pub mod common {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/common.v1.rs"));
    }
}
pub mod gateway {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/gateway.v1.rs"));
    }
}
pub mod reservation {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/reservation.v1.rs"));
    }
}
pub mod payment {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/payment.v1.rs"));
    }
}
pub mod tacos {
    pub mod internal {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/tacos.internal.v1.rs"));
        }
    }
}
pub use self::tacos::internal;

/// The method the host calls on a component version before it serves (at
/// start-up and before a swap takes effect). A component answers OK if its
/// config makes sense, changing nothing; an error or a trap keeps it out.
pub const SELF_CHECK_METHOD: &str = "tacos.platform.Lifecycle/SelfCheck";

/// The encoded `FileDescriptorSet` of every contract (for JSON mapping and
/// gRPC reflection).
#[cfg(feature = "descriptor")]
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

pub use prost::Message;
pub use prost_types::Timestamp;

/// A `google.protobuf.Timestamp` from milliseconds since the Unix epoch.
pub fn timestamp_ms(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Milliseconds since the Unix epoch of a `google.protobuf.Timestamp`.
pub fn timestamp_to_ms(ts: &Timestamp) -> i64 {
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}
