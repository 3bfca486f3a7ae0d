//! A component that loops, hoards memory or traps is stopped and reported;
//! the host keeps serving. A component importing what its policy does not
//! grant never loads.

mod common;

use common::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tacos_host::runtime::CallError;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn call(t: &TestHost, method: &str) -> Result<Vec<u8>, CallError> {
    let rt = t.host.runtime();
    let tenant = rt.tenant("default").expect("the default tenant");
    let ctx = rt.context(&tenant, "test-trace".into(), Duration::from_secs(10));
    rt.call(&ctx, "tacos.testing.Looper", method, b"ping").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_hoards_and_traps_are_contained() {
    let t = Arc::new(start_with(|o| o.bundle = Some(fixture("containment.toml"))).await);
    t.create_event("e", 5, 100, 1000).await;

    // Serve other calls while the looper spins.
    let spinner = {
        let t = t.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            (call(&t, "Loop").await, started.elapsed())
        })
    };
    let mut served = 0;
    while !spinner.is_finished() {
        let (status, _) = t.get("/api/v1/events/e/seats").await;
        assert_eq!(status, 200);
        served += 1;
    }
    let (result, took) = spinner.await.unwrap();
    match result {
        Err(CallError::Timeout { component, .. }) => assert_eq!(component, "looper"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(5),
        "the 300 ms deadline stopped it ({took:?})"
    );
    assert!(served > 0, "the host answered other requests meanwhile");

    match call(&t, "Alloc").await {
        Err(CallError::MemoryExceeded { component, mb }) => {
            assert_eq!((component.as_str(), mb), ("looper", 16))
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    match call(&t, "Trap").await {
        Err(CallError::Trapped { component, .. }) => assert_eq!(component, "looper"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // Fresh instance per call: the same component answers normally afterwards.
    assert_eq!(call(&t, "Echo").await.unwrap(), b"ping");
    let err = call(&t, "Loop").await.unwrap_err().to_proto("trace-1");
    assert_eq!(err.code, tacos_proto::common::v1::ErrorCode::Timeout as i32);
    assert_eq!(err.trace_id, "trace-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_import_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.bundle = Some(fixture("ungranted.toml"));
    let err = match tacos_host::host::Host::start(opts).await {
        Ok(_) => panic!("a component importing an ungranted capability must not load"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("payment-sim")
            && err.contains("tacos:platform/webhook")
            && err.contains("does not grant"),
        "{err}"
    );
}
