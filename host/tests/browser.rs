//! The buyer's app and the operator's console in a real browser (Debian's
//! chromium, driven by Selenium through chromium-driver; see
//! scripts/browser-check.py): the whole purchase to a confirmed order on a
//! 375 px screen by keyboard, a failed payment and an expiry shown, the
//! console swapping payment-sim to chaos and back, and no errors in the
//! browser's console. Screenshots land in `target/browser-screenshots`.

mod common;

use common::*;
use std::time::Duration;

/// The whole run's bound: three browsers, a dozen page loads.
const BROWSER_RUN: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyer_and_operator_in_a_real_browser() {
    let Some(tool) = test_tool("browser-check") else {
        return;
    };
    let t = start().await;
    // One admission a second and two buyers ahead: the browser's buyer
    // waits two (virtual) seconds and watches her place move.
    t.create_event("show", 20, 50_000, 1).await;
    t.join("show", "early-1").await;
    t.join("show", "early-2").await;

    let shots =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
    let run = tokio::process::Command::new(tool)
        .arg(&t.url)
        .arg("show")
        .arg(&shots)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(BROWSER_RUN, run)
        .await
        .expect("the browser run ends in time")
        .expect("browser-check starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    for step in [
        "buyer_confirmed",
        "buyer_failed_and_expired",
        "console_swap",
        "no errors",
    ] {
        assert!(stdout.contains(step), "{step} did not run:\n{stdout}");
    }
    // What the browser did, the host did: alice's two seats are sold, bob's back.
    let seats = t.seats("show").await;
    assert_eq!(seats["A-1"], "SEAT_STATUS_SOLD");
    assert_eq!(seats["A-2"], "SEAT_STATUS_SOLD");
    assert_eq!(seats["A-5"], "SEAT_STATUS_AVAILABLE");
    assert_eq!(seats["A-6"], "SEAT_STATUS_AVAILABLE");
}
