//! Several `tacos up` processes on one shared store: real Redis, and a real
//! DynamoDB-API server (moto) when kv is on DynamoDB, started for the test.

use super::*;
use std::path::{Path, PathBuf};
use tacos_testkit::{self as servers, DynamoDb, Redis};

/// Where the hosts keep their state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// kv and queue on Redis.
    Redis,
    /// kv and queue on Redis over TLS, with a client certificate.
    RedisTls,
    /// kv on DynamoDB, queue on Redis, and the waiting room's kv (the
    /// `queue` service's) on Redis, as the original platform has it.
    RedisDynamoDb,
}

pub struct Cluster {
    pub redis: Redis,
    pub dynamodb: Option<DynamoDb>,
    /// Running hosts; `None` where one was killed.
    pub hosts: Vec<Option<Proc>>,
    pub files: tempfile::TempDir,
    /// The bundle every host runs unless started with another.
    pub bundle: PathBuf,
}

/// The default bundle with `[store]` replaced by `store` and `services`
/// (TOML) appended, its policy plus `policy` (TOML), written to `dir/name`.
pub fn shared_bundle(dir: &Path, name: &str, store: &str, policy: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let default = std::fs::read_to_string(root.join("bundles/default.toml")).unwrap();
    let policy_file = dir.join(format!("{name}.policy.toml"));
    let base = std::fs::read_to_string(root.join("policies/default.toml")).unwrap();
    std::fs::write(&policy_file, format!("{base}\n{policy}")).unwrap();
    let manifest = default
        .replace("[store]\nkind = \"embedded\"\n", store)
        .replace(
            "policy = \"../policies/default.toml\"",
            &format!("policy = {:?}", policy_file.display().to_string()),
        );
    assert!(
        manifest.contains(store),
        "the default bundle's [store] moved"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, manifest).unwrap();
    path
}

impl Cluster {
    /// `n` hosts on `shared`, or `None` (skipped) without the servers.
    pub fn start(shared: Shared, n: usize) -> Option<Cluster> {
        let redis = servers::or_skip(match shared {
            Shared::RedisTls => Redis::start_tls(),
            _ => Redis::start(),
        })?;
        let dynamodb = match shared {
            Shared::Redis | Shared::RedisTls => None,
            Shared::RedisDynamoDb => Some(servers::or_skip(DynamoDb::start())?),
        };
        let mut cluster = Cluster {
            files: tempfile::tempdir().unwrap(),
            bundle: PathBuf::new(),
            redis,
            dynamodb,
            hosts: Vec::new(),
        };
        cluster.bundle = cluster.bundle_with("shared", "", "");
        let init = cluster
            .command("store")
            .arg("init")
            .arg("--bundle")
            .arg(&cluster.bundle)
            .output()
            .unwrap();
        assert!(init.status.success(), "store init: {init:?}");
        for _ in 0..n {
            let host = cluster.spawn(&cluster.bundle.clone());
            cluster.hosts.push(Some(host));
        }
        Some(cluster)
    }

    /// This cluster's `[store]` table.
    pub fn store_toml(&self) -> String {
        let mut redis = format!(
            "[store.redis]\nurl = {:?}\nprefix = \"test:\"\n",
            self.redis.url()
        );
        if let Some(pki) = self.redis.pki() {
            let [cert, key] = pki.client();
            redis += &format!(
                "ca = {:?}\nclient_cert = {:?}\nclient_key = {:?}\n",
                pki.ca(),
                cert,
                key
            );
        }
        match &self.dynamodb {
            None => format!("[store]\nkind = \"redis\"\n\n{redis}"),
            Some(d) => format!(
                "[store]\nkv = \"dynamodb\"\nqueue = \"redis\"\n\n[store.kv_per_service]\nqueue = \"redis\"\n\n{redis}\n[store.dynamodb]\ntable = \"tacos-test\"\nregion = \"us-east-1\"\nendpoint = {:?}\n",
                d.endpoint()
            ),
        }
    }

    /// A bundle on this cluster's store, with `extra` services config and
    /// `policy` added.
    pub fn bundle_with(&self, name: &str, extra: &str, policy: &str) -> PathBuf {
        let store = self.store_toml();
        let path = shared_bundle(self.files.path(), name, &store, policy);
        if self.dynamodb.is_some() {
            // moto copies the whole table for every item of a transaction, so
            // a hold takes it far longer than DynamoDB: give calls a minute.
            let policy = path.with_file_name(format!("{name}.policy.toml"));
            let text = std::fs::read_to_string(&policy).unwrap();
            std::fs::write(
                &policy,
                text.replace("deadline_ms = 5000", "deadline_ms = 60000"),
            )
            .unwrap();
        }
        if !extra.is_empty() {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{text}\n{extra}")).unwrap();
        }
        path
    }

    /// `tacos <sub>` with the environment a host of this cluster needs.
    fn command(&self, sub: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tacos"));
        cmd.arg(sub)
            .env("TACOS_JWT_SECRET", JWT_SECRET)
            // moto takes any credentials; the SDK wants some.
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    }

    /// Start one more host on `bundle` (its own data dir; log in the files).
    pub fn spawn(&self, bundle: &Path) -> Proc {
        let n = std::fs::read_dir(self.files.path()).unwrap().count();
        let data = self.files.path().join(format!("host-{n}"));
        let log = self.files.path().join(format!("host-{n}.log"));
        let mut cmd = self.command("up");
        cmd.args(["--virtual-clock", "--no-demo", "--listen", "127.0.0.1:0"])
            .args(["--rate-limit", "all=off"])
            .arg("--bundle")
            .arg(bundle)
            .arg("--data-dir")
            .arg(&data)
            .arg("--cache-dir")
            .arg(cache_dir());
        Proc::spawn_logged(&mut cmd, Some(&log))
    }

    pub fn client(&self, i: usize) -> Client {
        Client::of(&self.hosts[i].as_ref().expect("host is running").url)
    }

    /// Clients of the running hosts.
    pub fn clients(&self) -> Vec<Client> {
        self.hosts
            .iter()
            .flatten()
            .map(|h| Client::of(&h.url))
            .collect()
    }

    /// SIGKILL host `i`: no shutdown hook runs.
    pub fn kill(&mut self, i: usize) {
        let mut host = self.hosts[i].take().expect("host is running");
        host.child.kill().unwrap();
        host.child.wait().unwrap();
    }

    /// Advance every running host's virtual clock by `seconds`, one after
    /// the other, each returning once its own deliveries have settled.
    pub async fn advance(&self, seconds: f64) {
        for c in self.clients() {
            c.advance(seconds).await;
        }
    }
}
