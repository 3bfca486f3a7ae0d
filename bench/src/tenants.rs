//! `tacos-bench tenants`: what tenants cost a host, and what one costs another.
//!
//! 1. Start-up time and memory with 1, 100 and 1,000 tenants: a fresh host
//!    (fresh data dir, warm component cache) on a bundle of plain tenants,
//!    start-up as the host reports it, resident memory once it is up.
//! 2. The hold path with the same load on one tenant and spread round-robin
//!    over 100, against one host in one run: holds/s, p50/p99 and the ratio.
//! 3. Noisy neighbours: tenant `quiet` reads its queue status, then holds, at
//!    a steady rate (open loop, so a slowed host shows as latency) while,
//!    phase by phase, nobody else runs, tenant `looping`'s own queue loops
//!    forever, or tenant `hoarding`'s allocates without bound, each kept at
//!    its concurrency and guest-time quotas; `quiet`'s median p99 over
//!    interleaved rounds against its own baseline of the same run.

use crate::{Phase, bearer_for, client, field, paced, peak_rss_mib, phase, spawn_host_with_args};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, clap::Args)]
pub struct TenantsArgs {
    /// Tenant counts to start hosts with.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    counts: Vec<usize>,
    /// Holds per phase.
    #[arg(long, default_value_t = 5000)]
    holds: usize,
    /// Tenants the spread phase uses.
    #[arg(long, default_value_t = 100)]
    spread: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Calls (queue status reads, then holds) the quiet tenant makes per
    /// noisy-neighbour phase.
    #[arg(long, default_value_t = 3000)]
    neighbour_calls: usize,
    /// The quiet tenant's calls per second.
    #[arg(long, default_value_t = 300.0)]
    neighbour_rate: f64,
    /// The noisy tenants' concurrent-calls quota; each keeps that many calls
    /// in flight.
    #[arg(long, default_value_t = 1)]
    noisy_calls: usize,
    /// Rounds of the noisy-neighbour conditions, interleaved.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The noisy tenants' `cpu_ms_per_second` quota (0: none).
    #[arg(long, default_value_t = 30)]
    noisy_cpu_ms: u32,
}

/// The default services, ready for tenants to be appended, in `dir`.
fn services(dir: &Path) -> anyhow::Result<String> {
    std::fs::write(dir.join("policy.toml"), tacos_host::bundle::DEFAULT_POLICY)?;
    Ok(tacos_host::bundle::DEFAULT_BUNDLE
        .split("[[events]]")
        .next()
        .unwrap_or_default()
        .replace("../policies/default.toml", "policy.toml"))
}

/// A bundle of the default services and `n` plain tenants `t0`… in `dir`.
fn bundle(dir: &Path, n: usize) -> anyhow::Result<PathBuf> {
    let mut text = services(dir)?;
    for i in 0..n {
        text.push_str(&format!("[tenants.t{i}]\n"));
    }
    let path = dir.join(format!("tenants-{n}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The noisy-neighbour bundle: `quiet` on the default services; `looping`
/// and `hoarding` with the looper fixture as their own queue, misbehaving on
/// every call, held to `calls` concurrent calls, `cpu_ms` of guest time per
/// second and a 100 ms deadline or a 16 MiB memory quota.
fn neighbours_bundle(dir: &Path, calls: usize, cpu_ms: u32) -> anyhow::Result<PathBuf> {
    let mut text = services(dir)?;
    let cpu = match cpu_ms {
        0 => String::new(),
        ms => format!("cpu_ms_per_second = {ms}, "),
    };
    for (tenant, misbehave, quota) in [
        ("looping", "loop", "deadline_ms = 100"),
        ("hoarding", "alloc", "memory_mb = 16"),
    ] {
        text.push_str(&format!(
            "[tenants.{tenant}]\nquotas = {{ concurrent_calls = {calls}, {cpu}{quota} }}\n\
             [tenants.{tenant}.services.queue]\n\
             component = \"{{components}}/tacos_fixture_looper.wasm\"\n\
             config = {{ misbehave = \"{misbehave}\" }}\n"
        ));
    }
    text.push_str("[tenants.quiet]\n");
    let path = dir.join("neighbours.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Resident memory now, MiB (Linux).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// One request of `tenant`, answering status and JSON body.
async fn send(
    http: &crate::Http,
    tenant: &str,
    auth: Option<&str>,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut headers = vec![("x-tenant-id", tenant)];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    crate::send_with(http, &headers, method, url, body).await
}

/// A host under load: where it is and how to sign its users' tokens.
struct Load {
    http: crate::Http,
    url: String,
    secret: String,
}

impl Load {
    /// Move the host's virtual clock on by `seconds`, as `tenant`.
    async fn advance(&self, tenant: &str, seconds: u64) -> anyhow::Result<()> {
        let url = format!("{}/admin/v1/clock/advance", self.url);
        let body = json!({ "seconds": seconds });
        let (s, b) = send(&self.http, tenant, None, "POST", &url, Some(&body)).await?;
        if s != 200 {
            bail!("advancing the clock: {s} {b}");
        }
        Ok(())
    }

    /// Create event `e` with `seats` seats in `tenant`.
    async fn event(&self, tenant: &str, seats: usize) -> anyhow::Result<()> {
        let body = json!({"event_id": "e", "name": "bench", "seat_count": seats,
                          "price": {"amount": 1000, "currency": "KRW"}, "admission_per_second": 1_000_000});
        let url = format!("{}/admin/v1/events", self.url);
        let (s, b) = send(&self.http, tenant, None, "POST", &url, Some(&body)).await?;
        if s != 200 {
            bail!("creating {tenant}'s event: {s} {b}");
        }
        Ok(())
    }

    /// User `user` of `tenant` joins event `e`'s waiting room: the waiting token.
    async fn join(&self, tenant: &str, user: &str) -> anyhow::Result<String> {
        let url = format!("{}/api/v1/queue/join", self.url);
        let body = json!({"event_id": "e", "user_id": user});
        let (s, b) = send(&self.http, tenant, None, "POST", &url, Some(&body)).await?;
        if s != 200 {
            bail!("join: {s} {b}");
        }
        field(&b, "waiting_token")
    }

    /// User `user` of `tenant` holds `seat` of event `e` with `token`.
    async fn hold(&self, tenant: &str, user: &str, seat: &str, token: &str) -> anyhow::Result<()> {
        let auth = bearer_for(&self.secret, Some(tenant), user)?;
        let body = json!({"event_id": "e", "seat_ids": [seat], "user_id": user,
                          "reservation_token": token, "idempotency_key": format!("h-{user}")});
        let url = format!("{}/api/v1/reservations", self.url);
        let (s, b) = send(&self.http, tenant, Some(&auth), "POST", &url, Some(&body)).await?;
        if s != 200 {
            bail!("hold in {tenant}: {s} {b}");
        }
        Ok(())
    }
}

/// Users `u{offset}`… join event `e` and enter, user `i` in `tenant_of(i)`
/// (not measured): their reservation tokens.
async fn admit(
    load: &Arc<Load>,
    tenant_of: impl Fn(usize) -> String + Copy + Send + Sync + 'static,
    n: usize,
    c: usize,
    offset: usize,
) -> anyhow::Result<Arc<Vec<String>>> {
    let l = load.clone();
    let (_, waiting) = phase("join", n, c, move |i| {
        let l = l.clone();
        async move { l.join(&tenant_of(i), &format!("u{}", offset + i)).await }
    })
    .await?;
    // The (virtual) clock admits everyone.
    load.advance(&tenant_of(0), 2).await?;
    let (l, waiting) = (load.clone(), Arc::new(waiting));
    let (_, tokens) = phase("enter", n, c, move |i| {
        let (l, waiting) = (l.clone(), waiting.clone());
        async move {
            let url = format!("{}/api/v1/queue/enter", l.url);
            let body = json!({"waiting_token": waiting[i]});
            let (s, b) = send(&l.http, &tenant_of(i), None, "POST", &url, Some(&body)).await?;
            if s != 200 {
                bail!("enter: {s} {b}");
            }
            field(&b, "reservation_token")
        }
    })
    .await?;
    Ok(Arc::new(tokens))
}

/// `n` users (`u{offset}`…) hold one seat each, user `i` in tenant
/// `t{i % tenants}`; in `t0`, seats after the first `offset`.
async fn holds(
    load: &Arc<Load>,
    name: &'static str,
    tenants: usize,
    n: usize,
    c: usize,
    offset: usize,
) -> anyhow::Result<Phase> {
    let tenant_of = move |i: usize| format!("t{}", i % tenants);
    let tokens = admit(load, tenant_of, n, c, offset).await?;
    let l = load.clone();
    let (p, _) = phase(name, n, c, move |i| {
        let (l, tokens) = (l.clone(), tokens.clone());
        async move {
            let base = if i % tenants == 0 { offset } else { 0 };
            let seat = format!("A-{}", base + i / tenants + 1);
            l.hold(
                &tenant_of(i),
                &format!("u{}", offset + i),
                &seat,
                &tokens[i],
            )
            .await
        }
    })
    .await?;
    Ok(p)
}

/// Keep `calls` queue-status requests of `tenant` in flight until `stop`:
/// how many got each HTTP status (0: no answer).
async fn hammer(
    load: Arc<Load>,
    tenant: &'static str,
    calls: usize,
    stop: Arc<AtomicBool>,
) -> BTreeMap<u16, usize> {
    let url = format!("{}/api/v1/queue/status?token=t", load.url);
    let workers: Vec<_> = (0..calls)
        .map(|_| {
            let (load, url, stop) = (load.clone(), url.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tally = BTreeMap::new();
                while !stop.load(Ordering::Relaxed) {
                    let status = send(&load.http, tenant, None, "GET", &url, None)
                        .await
                        .map_or(0, |(s, _)| s);
                    *tally.entry(status).or_insert(0) += 1;
                }
                tally
            })
        })
        .collect();
    let mut tally = BTreeMap::new();
    for w in workers {
        for (status, n) in w.await.unwrap_or_default() {
            *tally.entry(status).or_insert(0) += n;
        }
    }
    tally
}

/// The three conditions of phase 3: `quiet` alone, or beside a noisy tenant.
const NEIGHBOURS: [(&str, Option<&str>); 3] = [
    ("alone", None),
    ("+ looping", Some("looping")),
    ("+ hoarding", Some("hoarding")),
];

/// What `quiet` does in phase 3: read its queue status with one waiting
/// token (`Some(url)`), or hold with reservation tokens made beforehand.
#[derive(Clone)]
struct QuietCall {
    status_url: Option<Arc<String>>,
    tokens: Arc<Vec<String>>,
}

impl QuietCall {
    fn name(&self) -> &'static str {
        if self.status_url.is_some() {
            "status"
        } else {
            "hold"
        }
    }

    /// Call number `j` of the run.
    async fn run(&self, load: &Load, j: usize) -> anyhow::Result<()> {
        let Some(url) = &self.status_url else {
            let (user, seat) = (format!("u{j}"), format!("A-{}", j + 1));
            return load.hold("quiet", &user, &seat, &self.tokens[j]).await;
        };
        let (s, b) = send(&load.http, "quiet", None, "GET", url, None).await?;
        if s != 200 {
            bail!("status: {s} {b}");
        }
        Ok(())
    }
}

/// The middle value.
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `call` at a steady rate, a warm-up then the conditions interleaved over
/// rounds; each condition's median p99 against alone.
async fn beside_noisy(load: &Arc<Load>, args: &TenantsArgs, call: QuietCall) -> anyhow::Result<()> {
    println!("  quiet's call: {}", call.name());
    let n = args.neighbour_calls;
    let schedule =
        std::iter::once(("warm-up", None)).chain((0..args.rounds.max(1)).flat_map(|_| NEIGHBOURS));
    let mut p99s: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (k, (name, noisy)) in schedule.enumerate() {
        let stop = Arc::new(AtomicBool::new(false));
        let noise = noisy.map(|tenant| {
            tokio::spawn(hammer(load.clone(), tenant, args.noisy_calls, stop.clone()))
        });
        let (l, c) = (load.clone(), call.clone());
        let p = paced(name, n, args.neighbour_rate, move |i| {
            let (l, c) = (l.clone(), c.clone());
            async move { c.run(&l, k * n + i).await }
        })
        .await?;
        stop.store(true, Ordering::Relaxed);
        p.print();
        if let (Some(noise), Some(tenant)) = (noise, noisy) {
            let tally = noise.await.context("the noisy tenant's load")?;
            println!("    {tenant} got {tally:?} (HTTP status: responses)");
        }
        if k > 0 {
            let p99 = p.percentile(0.99).as_secs_f64() * 1e3;
            p99s.entry(name).or_default().push(p99);
        }
    }
    let alone = median(&p99s["alone"]);
    for (name, _) in NEIGHBOURS {
        let p99 = median(&p99s[name]);
        println!(
            "  quiet {:<6} {name:<11} median p99 {p99:>7.2} ms   {:.2}x alone",
            call.name(),
            p99 / alone
        );
    }
    Ok(())
}

/// Phase 3: `quiet`'s status reads, then its holds, alone, beside `looping`
/// and beside `hoarding`.
async fn neighbours(args: &TenantsArgs, files: &Path, cache: &Path) -> anyhow::Result<()> {
    let path = neighbours_bundle(files, args.noisy_calls, args.noisy_cpu_ms)?;
    let (host, url, _) = spawn_host_with_args(
        Some(cache),
        &[Path::new("--bundle").as_os_str(), path.as_os_str()],
    )?;
    let load = Arc::new(Load {
        http: client(args.concurrency + args.noisy_calls),
        url,
        secret: host.jwt_secret.clone(),
    });
    // Seats and admitted users for every hold phase.
    let holds = args.neighbour_calls * (1 + args.rounds.max(1) * NEIGHBOURS.len());
    load.event("quiet", holds).await?;
    let tokens = admit(&load, |_| "quiet".into(), holds, args.concurrency, 0).await?;
    let status_url = format!(
        "{}/api/v1/queue/status?token={}",
        load.url,
        load.join("quiet", "watcher").await?
    );
    println!(
        "\nnoisy neighbours: quiet makes {} calls at {}/s per phase; a noisy tenant keeps {} call(s) in flight (its quota), cpu_ms_per_second {}; {} rounds after a warm-up:",
        args.neighbour_calls,
        args.neighbour_rate,
        args.noisy_calls,
        match args.noisy_cpu_ms {
            0 => "unset".to_string(),
            ms => ms.to_string(),
        },
        args.rounds.max(1)
    );
    for status_url in [Some(Arc::new(status_url)), None] {
        let tokens = tokens.clone();
        beside_noisy(&load, args, QuietCall { status_url, tokens }).await?;
    }
    drop(host);
    Ok(())
}

pub async fn tenants(args: TenantsArgs) -> anyhow::Result<()> {
    let files = tempfile::tempdir().context("creating a bundle dir")?;
    let cache = tempfile::tempdir().context("creating a cache dir")?;
    // Warm the component cache so every measured start compiles nothing.
    let warm = bundle(files.path(), 1)?;
    drop(spawn_host_with_args(
        Some(cache.path()),
        &[Path::new("--bundle").as_os_str(), warm.as_os_str()],
    )?);

    println!("start-up and memory (fresh data dir, warm component cache):");
    println!(
        "  {:>8} {:>12} {:>12} {:>12}",
        "tenants", "start ms", "RSS MiB", "peak MiB"
    );
    for &n in &args.counts {
        let path = bundle(files.path(), n)?;
        let (host, _url, start_ms) = spawn_host_with_args(
            Some(cache.path()),
            &[Path::new("--bundle").as_os_str(), path.as_os_str()],
        )?;
        let pid = host.child.id();
        println!(
            "  {:>8} {:>12} {:>12.1} {:>12.1}",
            n,
            start_ms.map_or("?".into(), |m| m.to_string()),
            rss_mib(pid).unwrap_or(f64::NAN),
            peak_rss_mib(pid).unwrap_or(f64::NAN)
        );
    }

    let spread = args.spread.max(1);
    let path = bundle(files.path(), spread)?;
    let (host, url, _) = spawn_host_with_args(
        Some(cache.path()),
        &[Path::new("--bundle").as_os_str(), path.as_os_str()],
    )?;
    let load = Arc::new(Load {
        http: client(args.concurrency),
        url,
        secret: host.jwt_secret.clone(),
    });
    // Seats for both phases: t0 carries the whole one-tenant phase.
    for i in 0..spread {
        let seats = if i == 0 {
            args.holds + args.holds / spread + 1
        } else {
            args.holds / spread + 1
        };
        load.event(&format!("t{i}"), seats).await?;
    }
    println!(
        "\nholds, {} per phase, {} in flight, one host:",
        args.holds, args.concurrency
    );
    let one = holds(&load, "1 tenant", 1, args.holds, args.concurrency, 0).await?;
    one.print();
    let many = holds(
        &load,
        "spread",
        spread,
        args.holds,
        args.concurrency,
        args.holds,
    )
    .await?;
    many.print();
    println!(
        "  {} tenants / 1 tenant: {:.2}x holds/s, p99 {:.2}x",
        spread,
        many.rate() / one.rate(),
        many.percentile(0.99).as_secs_f64() / one.percentile(0.99).as_secs_f64()
    );
    drop(host);

    neighbours(&args, files.path(), cache.path()).await
}
