//! Compiles the `.proto` contracts with protox (pure Rust; no protoc on the
//! machine) and generates prost types. The encoded descriptor set is written too,
//! for the host's JSON mapping and gRPC reflection. With feature `grpc-client`
//! each service also gets a tonic client.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "common/v1/common.proto",
    "gateway/v1/queue.proto",
    "gateway/v1/webhook.proto",
    "gateway/v1/gateway.proto",
    "reservation/v1/reservation.proto",
    "reservation/v1/inventory.proto",
    "reservation/v1/worker.proto",
    "payment/v1/payment.proto",
    "tacos/internal/v1/internal.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    let mut config = prost_build::Config::new();
    config.btree_map(["."]);
    if std::env::var_os("CARGO_FEATURE_GRPC_CLIENT").is_some() {
        // The same messages plus a tonic client per service; the host serves
        // gRPC generically (no generated servers), so none are made.
        tonic_prost_build::configure()
            .build_server(false)
            .compile_fds_with_config(fds, config)?;
    } else {
        config.compile_fds(fds)?;
    }
    Ok(())
}
