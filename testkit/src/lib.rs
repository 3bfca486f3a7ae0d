//! Local Redis and DynamoDB-API servers, started on free loopback ports for
//! the tests and for `tacos-bench`, and stopped when dropped.
//!
//! The servers are real: `redis-server` (Debian's `redis-server` package) and
//! moto's DynamoDB-compatible server (`pip install 'moto[server]'`);
//! `scripts/test-servers.sh` installs both. When one is missing, tests skip
//! with a loud message through [`or_skip`], unless
//! `TACOS_REQUIRE_TEST_SERVERS=1` (as `.ci/run` sets) makes the skip a failure.

use anyhow::{Context, bail};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod tls;
pub use tls::Pki;

/// Set to 1 to make a missing server fail a test instead of skipping it.
pub const REQUIRE_ENV: &str = "TACOS_REQUIRE_TEST_SERVERS";

/// Skips so far in this test binary.
static SKIPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Say loudly that a test is skipped, and why: straight to the terminal's
/// stderr (the test harness captures `eprintln!` of passing tests, which
/// would hide it), numbered, so a run that skips says how often.
pub fn skip(why: &str, remedy: &str) {
    use std::io::Write;
    let n = SKIPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n!!! SKIPPED ({n} in this test binary): {test}: {why}\n!!! {remedy}\n"
    );
}

/// A test's server, or `None` (skipped, loudly) when it cannot start and
/// servers are not required.
pub fn or_skip<T>(server: anyhow::Result<T>) -> Option<T> {
    match server {
        Ok(s) => Some(s),
        Err(e) if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") => {
            panic!("{e:#} ({REQUIRE_ENV}=1, so this fails instead of skipping)")
        }
        Err(e) => {
            skip(
                &format!("{e:#}"),
                "run scripts/test-servers.sh to install the test servers",
            );
            None
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Wait until `addr` accepts connections, or the process exits.
fn wait_for(child: &mut Child, addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited at start-up ({status})");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{what} did not listen on {addr} within 30 s")
}

/// A server process, killed when dropped.
#[derive(Debug)]
struct Process {
    child: Option<Child>,
}

impl Process {
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `redis-server` on a loopback port, with an append-only file (fsync
/// every second, the usual production setting) in its own temporary
/// directory, so a restart keeps its data.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    process: Process,
    /// Set for a server that speaks TLS only and wants a client certificate.
    tls: Option<Pki>,
}

impl Redis {
    pub fn start() -> anyhow::Result<Redis> {
        Redis::start_with(None)
    }

    /// A server on TLS only (`rediss://`), with fresh certificates, that
    /// accepts only clients with a certificate its CA signed.
    pub fn start_tls() -> anyhow::Result<Redis> {
        Redis::start_with(Some(Pki::new()?))
    }

    fn start_with(tls: Option<Pki>) -> anyhow::Result<Redis> {
        let mut redis = Redis {
            port: free_port()?,
            dir: tempfile::tempdir()?,
            process: Process { child: None },
            tls,
        };
        redis.spawn()?;
        Ok(redis)
    }

    /// The certificates of a TLS server.
    pub fn pki(&self) -> Option<&Pki> {
        self.tls.as_ref()
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let bin = on_path("redis-server")
            .context("redis-server is not installed (Debian package redis-server)")?;
        let mut cmd = Command::new(bin);
        cmd.args(["--bind", "127.0.0.1", "--save", ""]).args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ]);
        match &self.tls {
            None => cmd.args(["--port", &self.port.to_string()]),
            Some(pki) => {
                let [cert, key] = pki.server();
                cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(cert)
                    .arg("--tls-key-file")
                    .arg(key)
                    .arg("--tls-ca-cert-file")
                    .arg(pki.ca())
                    .args(["--tls-auth-clients", "yes"])
            }
        };
        let mut child = cmd
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = wait_for(&mut child, addr, "redis-server");
        self.process.child = Some(child);
        started
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// The server's process id, while it runs (to read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.process.child.as_ref().map(|c| c.id())
    }

    /// Shut the server down the way an operator would (SIGTERM: it writes
    /// its append-only file out and exits).
    pub fn stop(&mut self) {
        if let Some(child) = &mut self.process.child {
            let term = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            if matches!(term, Ok(s) if s.success()) {
                let _ = child.wait();
            }
        }
        self.process.stop();
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn()
    }
}

/// moto's DynamoDB-compatible server on a loopback port, run by
/// `moto_server.py` (one request at a time, as DynamoDB serialises
/// conflicting writes). It holds everything in memory; credentials are not
/// checked, but the AWS SDK still wants some.
#[derive(Debug)]
pub struct DynamoDb {
    port: u16,
    _process: Process,
}

impl DynamoDb {
    pub fn start() -> anyhow::Result<DynamoDb> {
        let port = free_port()?;
        let python = on_path("python3").context("python3 is not installed")?;
        let probe = Command::new(&python)
            .args(["-c", "import moto.server, flask"])
            .stderr(Stdio::null())
            .status()?;
        if !probe.success() {
            bail!("moto's server is not installed (pip install 'moto[server]')");
        }
        let mut command = Command::new(python);
        command.args(["-c", include_str!("moto_server.py")]);
        let mut child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting moto_server")?;
        let started = wait_for(
            &mut child,
            SocketAddr::from(([127, 0, 0, 1], port)),
            "moto_server",
        );
        let process = Process { child: Some(child) };
        started?;
        Ok(DynamoDb {
            port,
            _process: process,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client for this server, with the dummy credentials it accepts.
    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new("test", "test", None, None, "tacos"))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}
