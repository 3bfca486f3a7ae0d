//! The benchmark itself works: a small flash sale through the real binary sells
//! every seat exactly once. (Figures are for docs/BENCHMARKS.md, never asserted.)

use std::process::Command;

#[test]
fn small_flash_sale_sells_every_seat_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_tacos"))
        .args([
            "bench",
            "flash-sale",
            "--users",
            "400",
            "--seats",
            "40",
            "--concurrency",
            "8",
        ])
        .env(
            "TACOS_CACHE_DIR",
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
        )
        .output()
        .expect("tacos runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
