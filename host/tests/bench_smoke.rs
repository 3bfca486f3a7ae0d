//! The benchmarks themselves work: a small flash sale through the real binary
//! sells every seat exactly once, and the protocols bench runs REST and gRPC.
//! (Figures are for docs/BENCHMARKS.md, never asserted.)

use std::process::Command;

/// Run `tacos bench ARGS…`; its stdout, once it succeeded.
fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tacos"))
        .arg("bench")
        .args(args)
        .env(
            "TACOS_CACHE_DIR",
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        )
        .output()
        .expect("tacos runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn small_flash_sale_sells_every_seat_once() {
    let stdout = bench(&[
        "flash-sale",
        "--users",
        "400",
        "--seats",
        "40",
        "--concurrency",
        "8",
    ]);
    for phase in [
        "join", "enter", "hold", "sold out", "pay", "confirm", "peak RSS",
    ] {
        assert!(stdout.contains(phase), "missing {phase}: {stdout}");
    }
    assert!(
        stdout.contains("40 sold, 0 reserved, 0 available") && stdout.contains("oversold: 0"),
        "{stdout}"
    );
}

#[test]
fn protocols_bench_runs_both_protocols() {
    let stdout = bench(&[
        "protocols",
        "--reads",
        "200",
        "--holds",
        "20",
        "--rounds",
        "1",
        "--concurrency",
        "8",
    ]);
    for line in [
        "REST read",
        "gRPC read",
        "REST hold",
        "gRPC hold",
        "gRPC / REST",
    ] {
        assert!(stdout.contains(line), "missing {line}: {stdout}");
    }
}
