//! Bundles: a packed archive runs the same as the manifest it came from and as
//! its unpacked directory; tampered or broken bundles are refused before the
//! host starts; `--watch` swaps a service when its component file changes
//! (through the same checked swap as `tacos swap`, tested in `swap.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use common::TestHost;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tacos_host::bundle::BUILT_COMPONENTS_DIR;
use tacos_host::bundle::pack::pack;
use tacos_host::host::Host;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn default_manifest() -> PathBuf {
    repo().join("bundles/default.toml")
}

fn built(file: &str) -> PathBuf {
    Path::new(BUILT_COMPONENTS_DIR).join(file)
}

/// Services and their content hashes, as the host lists them.
async fn versions(t: &TestHost) -> Vec<(String, String, Value)> {
    t.services()
        .await
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["current"]["hash"].as_str().unwrap().to_string(),
                s["builds"].clone(),
            )
        })
        .collect()
}

/// The whole flow, reduced to what must not depend on how the bundle was given.
async fn flow(t: &TestHost) -> Value {
    t.create_event("e", 5, 20_000, 1_000).await;
    let token = t.admitted("e", "u1").await;
    let (status, held) = t.hold("e", "u1", &token, &["A-2"], "k1").await;
    assert_eq!(status, 200, "{held}");
    t.pay(&held, "u1", "PAYMENT_SCENARIO_APPROVE").await;
    t.advance(10.0).await;
    let r = t
        .reservation(held["reservation_id"].as_str().unwrap(), "u1")
        .await;
    let mut seats: Vec<(String, String)> = t.seats("e").await.into_iter().collect();
    seats.sort();
    json!({"status": r["status"], "total": r["total_amount"], "seats": seats})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packed_bundle_runs_like_its_manifest_and_its_directory() {
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("default.tacos");
    let files = pack(
        &default_manifest(),
        Path::new(BUILT_COMPONENTS_DIR),
        &archive,
    )
    .unwrap();
    // Five services, the chaos build, the policy; the standard payment-sim
    // build is the bundle's own component, stored once.
    assert_eq!(files.len(), 7, "{files:?}");
    // Packing is reproducible.
    let again = out.path().join("again.tacos");
    pack(&default_manifest(), Path::new(BUILT_COMPONENTS_DIR), &again).unwrap();
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(&again).unwrap()
    );

    let from_manifest = common::start_with(|o| o.bundle = Some(default_manifest())).await;
    let from_archive = common::start_with(|o| o.bundle = Some(archive.clone())).await;
    let unpacked: PathBuf = std::fs::read_dir(from_archive.dir.path().join("bundles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("bundle.toml").is_file())
        .expect("the archive was unpacked under the data dir");
    let from_dir = common::start_with(|o| o.bundle = Some(unpacked.clone())).await;

    let expected = versions(&from_manifest).await;
    assert_eq!(versions(&from_archive).await, expected);
    assert_eq!(versions(&from_dir).await, expected);
    let outcome = flow(&from_manifest).await;
    assert_eq!(
        outcome["status"], "RESERVATION_STATUS_CONFIRMED",
        "{outcome}"
    );
    assert_eq!(flow(&from_archive).await, outcome);
    assert_eq!(flow(&from_dir).await, outcome);

    // A named build from the archive swaps in like one from the manifest.
    let (status, body) = from_archive
        .post(
            "/admin/v1/services/payment-sim/swap",
            json!({"build": "chaos"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true);
}

async fn refused(bundle: PathBuf) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::options(dir.path());
    opts.bundle = Some(bundle);
    match Host::start(opts).await {
        Ok(_) => panic!("the bundle must be refused"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_broken_bundles_are_refused_before_start() {
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("b.tacos");
    pack(
        &default_manifest(),
        Path::new(BUILT_COMPONENTS_DIR),
        &archive,
    )
    .unwrap();

    // A component changed after packing.
    let host = common::start_with(|o| o.bundle = Some(archive.clone())).await;
    let unpacked: PathBuf = std::fs::read_dir(host.dir.path().join("bundles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("bundle.toml").is_file())
        .unwrap();
    let victim = std::fs::read_dir(unpacked.join("components"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes.push(0);
    std::fs::write(&victim, bytes).unwrap();
    let msg = refused(unpacked).await;
    assert!(msg.contains("changed after packing"), "{msg}");
    drop(host);

    // A missing component file, named with its service.
    let policy = repo().join("policies/default.toml");
    let manifest = |queue_component: &Path| {
        format!(
            "policy = {policy:?}\n\
             [services.queue]\ncomponent = {queue_component:?}\nserves = [\"gateway.v1.QueueService\"]\n"
        )
    };
    let missing = out.path().join("missing.toml");
    std::fs::write(&missing, manifest(&out.path().join("nope.wasm"))).unwrap();
    let msg = refused(missing).await;
    assert!(
        msg.contains("service `queue`") && msg.contains("does not exist"),
        "{msg}"
    );

    // A component that is not a tacos service (a wasi:http proxy).
    let wrong = out.path().join("wrong.toml");
    std::fs::write(&wrong, manifest(&built("tacos_fixture_hello_http.wasm"))).unwrap();
    let msg = refused(wrong).await;
    assert!(
        msg.contains("`queue`") && msg.contains("wasi:http"),
        "{msg}"
    );

    // A directory without a manifest, and a file that is neither.
    let msg = refused(out.path().to_path_buf()).await;
    assert!(msg.contains("has no bundle.toml"), "{msg}");
    let junk = out.path().join("junk.tacos");
    std::fs::write(&junk, [0x1f, 0x8b, 0, 1, 2, 3]).unwrap();
    let msg = refused(junk).await;
    assert!(msg.contains("junk.tacos"), "{msg}");
}

fn hash_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_swaps_a_service_when_its_file_changes() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("payment-sim.wasm");
    std::fs::copy(built("tacos_payment_sim.wasm"), &file).unwrap();
    let manifest = work.path().join("bundle.toml");
    let text = std::fs::read_to_string(default_manifest())
        .unwrap()
        .replace(
            "component = \"{components}/tacos_payment_sim.wasm\"",
            &format!("component = {file:?}"),
        )
        .replace(
            "\"../policies/default.toml\"",
            &format!("{:?}", repo().join("policies/default.toml")),
        );
    std::fs::write(&manifest, text).unwrap();
    let t = common::start_with(|o| {
        o.bundle = Some(manifest.clone());
        o.watch = true;
    })
    .await;
    assert_eq!(t.current_hash("payment-sim").await, hash_of(&file));

    // A developer rebuilds the component: the host serves the new build.
    std::fs::copy(built("tacos_payment_sim_chaos.wasm"), &file).unwrap();
    let chaos = hash_of(&file);
    let deadline = Instant::now() + Duration::from_secs(60);
    while t.current_hash("payment-sim").await != chaos {
        assert!(
            Instant::now() < deadline,
            "the watcher never swapped the new build in"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_settings_that_cannot_work_are_refused_before_start() {
    let out = tempfile::tempdir().unwrap();
    let default = std::fs::read_to_string(default_manifest())
        .unwrap()
        .replace(
            "../policies/default.toml",
            &repo().join("policies/default.toml").display().to_string(),
        );
    let with_store = |name: &str, store: &str| {
        let path = out.path().join(name);
        let text = default.replace("[store]\nkind = \"embedded\"\n", store);
        std::fs::write(&path, text).unwrap();
        path
    };
    let msg = refused(with_store("a.toml", "[store]\nkind = \"dynamodb\"\n")).await;
    assert!(
        msg.contains("[store]") && msg.contains("queue = \"redis\""),
        "{msg}"
    );
    let msg = refused(with_store(
        "b.toml",
        "[store]\nkind = \"redis\"\n[store.kv_per_service]\nbilling = \"redis\"\n",
    ))
    .await;
    assert!(msg.contains("`billing`, which is not a service"), "{msg}");
    // Nothing listens on port 1: the host says where it tried.
    let msg = refused(with_store(
        "c.toml",
        "[store]\nkind = \"redis\"\n[store.redis]\nurl = \"redis://127.0.0.1:1/\"\n",
    ))
    .await;
    assert!(msg.contains("redis at redis://127.0.0.1:1/"), "{msg}");
}

/// A gzipped tar of `entries` (name, declared size, bytes).
fn archive(path: &Path, entries: &[(&str, u64, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    for (name, size, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(*size);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_unpack_within_caps_and_only_with_every_file_hashed() {
    use tacos_host::bundle::pack::{MAX_ENTRIES, MAX_UNPACKED};
    let out = tempfile::tempdir().unwrap();
    let manifest = std::fs::read(default_manifest()).unwrap();

    // A manifest without hashes: nothing in it would be checked.
    let unhashed = out.path().join("unhashed.tacos");
    archive(
        &unhashed,
        &[("bundle.toml", manifest.len() as u64, &manifest)],
    );
    let msg = refused(unhashed).await;
    assert!(msg.contains("no `hashes`"), "{msg}");

    // A file beside the manifest that its hashes do not name.
    let extra = out.path().join("extra.tacos");
    let hashed = b"hashes = { \"policy.toml\" = \"00\" }\n";
    archive(
        &extra,
        &[
            ("bundle.toml", hashed.len() as u64, hashed),
            ("smuggled.wasm", 1, b"x"),
        ],
    );
    let msg = refused(extra).await;
    assert!(msg.contains("smuggled.wasm is not among"), "{msg}");

    // A bomb: an entry that claims more than the cap is refused on its
    // header, before a byte of it reaches the disk.
    let bomb = out.path().join("bomb.tacos");
    archive(&bomb, &[("big.wasm", MAX_UNPACKED + 1, b"")]);
    let dir = tempfile::tempdir().unwrap();
    let msg = refused_in(bomb, dir.path()).await;
    assert!(msg.contains("bytes unpacked"), "{msg}");
    let written: u64 = walk(&dir.path().join("bundles"));
    assert!(written < 1 << 20, "{written} bytes written");

    // Too many files.
    let many = out.path().join("many.tacos");
    let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("f{i}")).collect();
    let entries: Vec<(&str, u64, &[u8])> =
        names.iter().map(|n| (n.as_str(), 1, &b"x"[..])).collect();
    archive(&many, &entries);
    let msg = refused(many).await;
    assert!(msg.contains("files or"), "{msg}");
}

async fn refused_in(bundle: PathBuf, dir: &Path) -> String {
    let mut opts = common::options(dir);
    opts.bundle = Some(bundle);
    match Host::start(opts).await {
        Ok(_) => panic!("the bundle must be refused"),
        Err(e) => format!("{e:#}"),
    }
}

/// Bytes of the files under `dir` (0 when it does not exist).
fn walk(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                walk(&p)
            } else {
                std::fs::metadata(&p).unwrap().len()
            }
        })
        .sum()
}
