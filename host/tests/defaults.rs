//! `tacos up` with its defaults, as the README's first command runs it: a
//! relative `./.tacos` data dir (and compiled cache under it) and the demo event.

mod common;

use common::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_default_data_dir_serves_the_demo_event() {
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tacos"));
    cmd.args(["up", "--listen", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .env_remove("TACOS_CACHE_DIR");
    let host = Proc::spawn(cmd);

    let (status, body) = request(
        &http(),
        "GET",
        &format!("{}/api/v1/events/demo/seats", host.url),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stats"]["available_seats"], 100);
    assert!(cwd.path().join(".tacos/compiled").is_dir());
}
