//! The benchmarks of `tacos-bench`: measurements that print figures and,
//! where a baseline exists, a ratio against it taken in the same run
//! (machines here are noisy; absolute numbers drift). Results and how to
//! reproduce them are in `docs/BENCHMARKS.md`.

pub mod budget;
pub mod cpu;
pub mod flash_sale;
pub mod fleet;
pub mod floor;
pub mod live;
pub mod protocols;
pub mod route;
pub mod stores;
pub mod swap;
pub mod tenants;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub type Http = Client<HttpConnector, Full<Bytes>>;

/// `tacos-bench host …` is `tacos …`: how a bench starts the hosts it measures.
pub const HOST_VERB: &str = "host";

/// A pooled HTTP/1.1 client keeping up to `connections` connections.
pub fn client(connections: usize) -> Http {
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build_http()
}

/// A host process started for a run, on a throwaway data dir.
pub struct Spawned {
    pub child: Child,
    /// The HS256 secret the host verifies end-user tokens with.
    pub jwt_secret: String,
    _dir: tempfile::TempDir,
}

/// `Bearer <token>` for `user`, signed with `secret`, valid for a day.
pub fn bearer(secret: &str, user: &str) -> anyhow::Result<String> {
    bearer_for(secret, None, user)
}

/// [`bearer`] for a user of `tenant` (a `tenant` claim).
pub fn bearer_for(secret: &str, tenant: Option<&str>, user: &str) -> anyhow::Result<String> {
    let now_s = tacos_host::foundations::clock::system_now_ms() / 1000;
    Ok(format!(
        "Bearer {}",
        tacos_host::foundations::auth::mint_for(secret, tenant, user, now_s, 86_400)?
    ))
}

impl Drop for Spawned {
    fn drop(&mut self) {
        cpu::unwatch(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `tacos up --virtual-clock` (this binary) and return it with its URL.
pub fn spawn_host() -> anyhow::Result<(Spawned, String)> {
    spawn_host_with(None).map(|(s, url, _)| (s, url))
}

/// [`spawn_host`] with a given compiled-component cache; also returns the
/// start-up time the host reported, in ms.
pub fn spawn_host_with(
    cache_dir: Option<&std::path::Path>,
) -> anyhow::Result<(Spawned, String, Option<u64>)> {
    spawn_host_with_args(cache_dir, &[])
}

/// [`spawn_host_with`], with more `tacos up` arguments (`--bundle FILE`).
pub fn spawn_host_with_args(
    cache_dir: Option<&std::path::Path>,
    extra: &[&std::ffi::OsStr],
) -> anyhow::Result<(Spawned, String, Option<u64>)> {
    let jwt_secret = hex::encode(rand::random::<[u8; 16]>());
    spawn_host_env(cache_dir, extra, &[], jwt_secret)
}

/// [`spawn_host_with_args`] with environment variables and a given JWT
/// secret (hosts that must accept each other's users share one).
pub fn spawn_host_env(
    cache_dir: Option<&std::path::Path>,
    extra: &[&std::ffi::OsStr],
    envs: &[(&str, &str)],
    jwt_secret: String,
) -> anyhow::Result<(Spawned, String, Option<u64>)> {
    let dir = tempfile::tempdir().context("creating a data dir")?;
    let exe = std::env::current_exe().context("locating this binary")?;
    let mut cmd = Command::new(exe);
    cmd.args([
        HOST_VERB,
        "up",
        "--virtual-clock",
        "--no-demo",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir.path());
    if let Some(cache) = cache_dir {
        cmd.arg("--cache-dir").arg(cache);
    }
    cmd.args(extra);
    // All load comes from this one address: no per-IP limits.
    cmd.args(["--rate-limit", "all=off"]);
    cmd.env("TACOS_JWT_SECRET", &jwt_secret);
    cmd.envs(envs.iter().copied());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("host.log"))?)
        .spawn()
        .context("starting the host")?;
    let stdout = child.stdout.take().context("host stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let Some(banner) = lines.next().transpose()? else {
        let log = std::fs::read_to_string(dir.path().join("host.log")).unwrap_or_default();
        anyhow::bail!("the host did not start: {}", log.trim());
    };
    let url = tacos_host::cli::banner_url(&banner)
        .with_context(|| format!("no url in the banner: {banner}"))?;
    std::thread::spawn(move || for _ in lines {});
    cpu::watch(child.id());
    // "… (123 ms to start)"
    let start_ms = banner
        .rsplit_once('(')
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok());
    Ok((
        Spawned {
            child,
            jwt_secret,
            _dir: dir,
        },
        url,
        start_ms,
    ))
}

/// Peak resident memory of a process, in MiB (Linux).
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// One JSON request; the body parsed as JSON (`null` if it is not).
pub async fn send(
    http: &Http,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    send_as(http, None, method, url, body).await
}

/// [`send`] with an `authorization` header.
pub async fn send_as(
    http: &Http,
    authorization: Option<&str>,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let auth: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    send_with(http, &auth, method, url, body).await
}

/// [`send`] with extra request headers.
pub async fn send_with(
    http: &Http,
    headers: &[(&str, &str)],
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let resp = http
        .request(req.body(Full::new(Bytes::from(bytes)))?)
        .await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// What one phase measured.
pub struct Phase {
    pub name: &'static str,
    pub requests: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
    /// The CPU the hosts and the load used meanwhile.
    pub cpu: cpu::CpuUse,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut l = self.latencies.clone();
        l.sort();
        l[((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1]
    }

    pub fn print(&self) {
        println!(
            "  {:<10} {:>8} requests {:>9.0} /s   p50 {:>7.2} ms   p99 {:>7.2} ms   {}",
            self.name,
            self.requests,
            self.rate(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.cpu.describe(self.requests)
        );
    }
}

/// Run `work(i)` for every `i` in `0..n` on `concurrency` workers.
pub async fn phase<T, F, Fut>(
    name: &'static str,
    n: usize,
    concurrency: usize,
    work: F,
) -> anyhow::Result<(Phase, Vec<T>)>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<T>> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu = cpu::Sample::now();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (work, next) = (work.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(out);
                }
                let t = Instant::now();
                let value = work(i).await?;
                out.push((i, t.elapsed(), value));
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for w in workers {
        all.extend(w.await??);
    }
    let elapsed = started.elapsed();
    let cpu = cpu::Sample::now().since(&cpu);
    all.sort_by_key(|(i, _, _)| *i);
    let latencies = all.iter().map(|(_, l, _)| *l).collect();
    let values = all.into_iter().map(|(_, _, v)| v).collect();
    Ok((
        Phase {
            name,
            requests: n,
            elapsed,
            latencies,
            cpu,
        },
        values,
    ))
}

/// Start `work(i)` for every `i` in `0..n` at `rate` per second, whether or
/// not earlier ones have finished (open loop: a slow host shows as latency,
/// not as fewer requests), each latency counted from its planned start.
pub async fn paced<F, Fut>(
    name: &'static str,
    n: usize,
    rate: f64,
    work: F,
) -> anyhow::Result<Phase>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let work = Arc::new(work);
    let cpu = cpu::Sample::now();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let planned = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(planned.into()).await;
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            work(i).await.map(|()| planned.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.push(t.await??);
    }
    Ok(Phase {
        name,
        requests: n,
        elapsed: started.elapsed(),
        latencies,
        cpu: cpu::Sample::now().since(&cpu),
    })
}

pub fn field(v: &Value, name: &str) -> anyhow::Result<String> {
    v[name]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no {name} in {v}"))
}

/// Users `u0`…`u{n-1}` join the waiting room of `event`: their waiting tokens.
pub async fn join_phase(
    http: &Http,
    url: &str,
    event: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(Phase, Vec<String>)> {
    let (http, join_url, event) = (
        http.clone(),
        format!("{url}/api/v1/queue/join"),
        event.to_string(),
    );
    phase("join", n, concurrency, move |i| {
        let (http, join_url) = (http.clone(), join_url.clone());
        let body = serde_json::json!({"event_id": event, "user_id": format!("u{i}")});
        async move {
            let (s, b) = send(&http, "POST", &join_url, Some(&body)).await?;
            if s != 200 {
                anyhow::bail!("join: {s} {b}");
            }
            field(&b, "waiting_token")
        }
    })
    .await
}

/// Admitted users exchange their waiting tokens: their reservation tokens.
pub async fn enter_phase(
    http: &Http,
    url: &str,
    waiting: Vec<String>,
    concurrency: usize,
) -> anyhow::Result<(Phase, Vec<String>)> {
    let (http, enter_url) = (http.clone(), format!("{url}/api/v1/queue/enter"));
    let n = waiting.len();
    let waiting = Arc::new(waiting);
    phase("enter", n, concurrency, move |i| {
        let (http, enter_url) = (http.clone(), enter_url.clone());
        let body = serde_json::json!({"waiting_token": waiting[i]});
        async move {
            let (s, b) = send(&http, "POST", &enter_url, Some(&body)).await?;
            if s != 200 {
                anyhow::bail!("enter: {s} {b}");
            }
            field(&b, "reservation_token")
        }
    })
    .await
}
