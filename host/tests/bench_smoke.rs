//! The benchmarks themselves work: a small flash sale through the real binary
//! sells every seat exactly once, the protocols bench runs REST and gRPC, and
//! the tenants bench runs its start-up, spread and noisy-neighbour parts, and
//! the stores bench runs on every backend.
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

#[test]
fn tenants_bench_measures_startup_spread_and_noisy_neighbours() {
    let stdout = bench(&[
        "tenants",
        "--counts",
        "1,3",
        "--holds",
        "20",
        "--spread",
        "2",
        "--concurrency",
        "4",
        "--neighbour-calls",
        "30",
        "--neighbour-rate",
        "100",
        "--rounds",
        "1",
    ]);
    for line in [
        "2 tenants / 1 tenant",
        "quiet status + looping",
        "quiet hold   + hoarding",
    ] {
        assert!(stdout.contains(line), "missing {line}: {stdout}");
    }
    // The noisy tenants hit their limits: the deadline, the memory quota.
    assert!(stdout.contains("looping got {504:"), "{stdout}");
    assert!(stdout.contains("hoarding got {429:"), "{stdout}");
}

#[test]
fn stores_bench_runs_on_every_backend() {
    use tacos_host::servers::{self, DynamoDb, Redis};
    if servers::or_skip(Redis::start()).is_none() || servers::or_skip(DynamoDb::start()).is_none() {
        return;
    }
    let stdout = bench(&[
        "stores",
        "--holds",
        "40",
        "--dynamodb-holds",
        "10",
        "--concurrency",
        "4",
    ]);
    for run in [
        "embedded",
        "redis ",
        "redis, 3 hosts",
        "dynamodb (moto) + redis",
        "the floor",
    ] {
        assert!(stdout.contains(run), "missing {run}: {stdout}");
    }
    assert!(stdout.contains("store requests/hold"), "{stdout}");
}
