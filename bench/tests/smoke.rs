//! The benchmarks themselves work: a small flash sale through the real binary
//! sells every seat exactly once and prints the host's CPU and its budget by
//! stage (whose counts are checked), the floor commits a hold's writes, the
//! protocols bench runs REST and gRPC, the
//! tenants bench runs its start-up, spread and noisy-neighbour parts, and the
//! stores bench runs on every backend. Each check reads a printed figure and
//! asks that it be a number in a range no working bench can miss (a rate
//! above zero, a count that matches the run): never a speed goal, which is
//! for docs/BENCHMARKS.md on a quiet machine.

use std::process::Command;

/// Run `tacos-bench ARGS…`; its stdout, once it succeeded.
fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tacos-bench"))
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

/// The number just before `unit` on the first line that starts with
/// `label` (after indentation), e.g. `join … 1747 /s` → 1747.
fn figure(stdout: &str, label: &str, unit: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no line `{label}`: {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == unit || w.ends_with(unit) && w.len() > unit.len())
        .unwrap_or_else(|| panic!("no `{unit}` on `{line}`"));
    let word = if words[at] == unit {
        words[at - 1]
    } else {
        words[at].trim_end_matches(unit)
    };
    word.trim_start_matches('×')
        .trim_end_matches('x')
        .parse()
        .unwrap_or_else(|_| panic!("`{word}` on `{line}` is not a number"))
}

/// A rate a working bench on any machine prints: above zero, below absurd.
fn sane_rate(stdout: &str, label: &str) {
    let rate = figure(stdout, label, "/s");
    assert!(rate > 0.0 && rate < 10_000_000.0, "{label}: {rate}/s");
    let p99 = figure(stdout, label, "ms");
    assert!(p99 > 0.0 && p99 < 60_000.0, "{label}: p99 {p99} ms");
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
    for phase in ["join", "status", "enter", "hold", "sold out", "pay"] {
        sane_rate(&stdout, phase);
        let host = figure(&stdout, phase, "µs/req");
        assert!(host > 0.0 && host < 1_000_000.0, "{phase}: {host} µs/req");
    }
    // The budget's counts come from the host's own stage counters: a status
    // reads once in one instance and writes nothing; a join commits its
    // place and its ticket; a hold runs reservation and inventory (one rpc)
    // and commits three times (retries of a contended seat may add some).
    let counts = |phase: &str| -> Vec<f64> {
        let start = stdout
            .find(&format!("{phase} budget"))
            .unwrap_or_else(|| panic!("no {phase} budget: {stdout}"));
        let line = stdout[start..]
            .lines()
            .find(|l| l.trim_start().starts_with("per request:"))
            .unwrap_or_else(|| panic!("no counts for {phase}: {stdout}"));
        line.split([':', ','])
            .skip(1)
            .map(|part| part.split_whitespace().next().unwrap().parse().unwrap())
            .collect()
    };
    // instances, host calls, store reads, commits, rpcs
    let status = counts("status");
    assert_eq!(
        (status[0], status[3], status[4]),
        (1.0, 0.0, 0.0),
        "{stdout}"
    );
    assert!(status[1] >= 1.0 && status[2] >= 1.0, "{stdout}");
    let join = counts("join");
    assert_eq!((join[0], join[3]), (1.0, 2.0), "{stdout}");
    let hold = counts("hold");
    assert!((2.0..3.0).contains(&hold[0]), "{stdout}");
    assert!((3.0..4.5).contains(&hold[3]) && hold[4] >= 1.0, "{stdout}");
    assert_eq!(figure(&stdout, "join", "requests"), 400.0, "{stdout}");
    assert_eq!(figure(&stdout, "hold", "requests"), 40.0, "{stdout}");
    assert_eq!(
        figure(&stdout, "confirm", "confirmations"),
        40.0,
        "{stdout}"
    );
    let rss = figure(&stdout, "host peak RSS", "MiB");
    assert!(rss > 1.0 && rss < 8192.0, "peak RSS {rss} MiB");
    assert!(
        stdout.contains("40 sold, 0 reserved, 0 available") && stdout.contains("oversold: 0"),
        "{stdout}"
    );
}

#[test]
fn floor_commits_a_holds_writes_in_three_commits_and_in_one() {
    let stdout = bench(&["floor", "--holds", "200", "--concurrency", "8"]);
    for (line, writes) in [("three commits", 600.0), ("one commit", 200.0)] {
        let rate = figure(&stdout, line, "holds/s");
        assert!(rate > 0.0 && rate < 10_000_000.0, "{line}: {rate}");
        let cpu = figure(&stdout, line, "µs");
        assert!(cpu > 0.0 && cpu < 1_000_000.0, "{line}: {cpu} µs");
        assert_eq!(figure(&stdout, line, "writes"), writes, "{stdout}");
    }
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
    for line in ["REST read", "gRPC read", "REST hold", "gRPC hold"] {
        sane_rate(&stdout, line);
    }
    for ratio in ["queue status gRPC / REST", "hold       gRPC / REST"] {
        let r = figure(&stdout, ratio, "x");
        assert!(r > 0.0 && r < 1000.0, "{ratio}: {r}");
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
    // Start-up rows: tenants, start ms, RSS MiB, peak MiB.
    for count in ["1", "3"] {
        let row: Vec<f64> = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(count))
            .unwrap_or_else(|| panic!("no start-up row for {count}: {stdout}"))
            .split_whitespace()
            .map(|w| w.parse().expect("a number"))
            .collect();
        assert!(
            row.len() == 4 && row[1] < 600_000.0 && row[2] > 1.0,
            "{row:?}"
        );
    }
    sane_rate(&stdout, "1 tenant ");
    sane_rate(&stdout, "spread");
    let ratio = figure(&stdout, "2 tenants / 1 tenant", "holds/s,");
    assert!(ratio > 0.0 && ratio < 1000.0, "spread ratio {ratio}");
    for line in ["alone", "+ looping", "+ hoarding"] {
        sane_rate(&stdout, line);
    }
    // The noisy tenants hit their limits: the deadline, the memory quota.
    assert!(stdout.contains("looping got {504:"), "{stdout}");
    assert!(stdout.contains("hoarding got {429:"), "{stdout}");
}

#[test]
fn stores_bench_runs_on_every_backend() {
    use tacos_testkit::{DynamoDb, Redis, or_skip};
    if or_skip(Redis::start()).is_none() || or_skip(DynamoDb::start()).is_none() {
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
        "redis  ",
        "redis, 3 hosts",
        "dynamodb (moto) + redis",
    ] {
        let holds = figure(&stdout, run, "holds/s");
        assert!(
            holds > 0.0 && holds < 10_000_000.0,
            "{run}: {holds} holds/s"
        );
    }
    // A hold takes at least the floor's one store request, and not hundreds.
    for run in ["redis  ", "redis, 3 hosts", "dynamodb (moto) + redis"] {
        let requests = figure(&stdout, run, "store");
        assert!(
            (1.0..100.0).contains(&requests),
            "{run}: {requests} requests/hold"
        );
    }
    assert!(
        stdout.contains("the floor: 1 store request per hold"),
        "{stdout}"
    );
}

#[test]
fn live_bench_holds_sockets_and_times_pushes() {
    let stdout = bench(&["live", "--sockets", "300", "--admit", "100", "--steps", "2"]);
    let per_socket = figure(&stdout, "memory per socket", "KiB");
    // The host may give memory back as sockets open: a sign, not a size.
    assert!(per_socket < 1024.0, "{per_socket} KiB per socket");
    // Every admitted socket got its push, each within the run's bound.
    assert!(stdout.contains("(n = 200;"), "{stdout}");
    let p99 = figure(&stdout, "admission → push", "ms");
    assert!(p99 > 0.0 && p99 < 30_000.0, "p50 {p99} ms");
    let ratio = figure(&stdout, "sockets ÷ polling", "×");
    assert!(ratio > 0.0, "{ratio}");
}
