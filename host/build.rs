//! Builds the workspace's components for `wasm32-wasip2`, so that a plain
//! `cargo build`, `cargo run` or `cargo test` has everything the host runs.
//!
//! The nested cargo uses its own target directory (`target/wasm`), or it would
//! wait forever on the lock the outer build holds. The wasm target is added
//! with rustup if missing (rustup does not install it from
//! rust-toolchain.toml on this kind of machine).

use std::path::{Path, PathBuf};
use std::process::Command;

const COMPONENTS: &[&str] = &[
    "tacos-queue",
    "tacos-reservation",
    "tacos-inventory",
    "tacos-payment-sim",
    "tacos-payment-sim-chaos",
    "tacos-worker",
    "tacos-fixture-looper",
    "tacos-fixture-stuck-consumer",
    "tacos-fixture-hello-http",
];
const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("host/ lives in the workspace root")
        .to_path_buf();
    for dir in ["components", "wit", "proto", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=TACOS_WASM_TARGET_DIR");
    let target_dir = std::env::var("TACOS_WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target").join("wasm"));

    ensure_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--profile",
            "wasm",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir);
    for c in COMPONENTS {
        cmd.args(["-p", c]);
    }
    // The outer build's settings are not the components' (clippy's wrapper,
    // host RUSTFLAGS, a target dir of its own).
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("running cargo to build the components");
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!("building the wasm components failed (see above)");
    }
    let dir = target_dir.join(TARGET).join("wasm");
    check_outputs(&dir);
    println!("cargo:rustc-env=TACOS_COMPONENTS_DIR={}", dir.display());
}

fn ensure_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false);
    if !installed {
        let ok = Command::new("rustup")
            .args(["target", "add", TARGET])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            panic!("the {TARGET} target is missing and `rustup target add {TARGET}` failed");
        }
    }
}

fn check_outputs(dir: &Path) {
    for c in COMPONENTS {
        let file = dir.join(format!("{}.wasm", c.replace('-', "_")));
        if !file.is_file() {
            panic!("expected component {} after the build", file.display());
        }
    }
}
