//! `tacos bench tenants`: what tenants cost a host.
//!
//! 1. Start-up time and memory with 1, 100 and 1,000 tenants: a fresh host
//!    (fresh data dir, warm component cache) on a bundle of plain tenants,
//!    start-up as the host reports it, resident memory once it is up.
//! 2. The hold path with the same load on one tenant and spread round-robin
//!    over 100, against one host in one run: holds/s, p50/p99 and the ratio.

use super::{Phase, bearer_for, client, field, peak_rss_mib, phase, spawn_host_with_args};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
}

/// A bundle of the default services and `n` plain tenants `t0`… in `dir`.
fn bundle(dir: &Path, n: usize) -> anyhow::Result<PathBuf> {
    std::fs::write(dir.join("policy.toml"), crate::bundle::DEFAULT_POLICY)?;
    let services = crate::bundle::DEFAULT_BUNDLE
        .split("[[events]]")
        .next()
        .unwrap_or_default()
        .replace("../policies/default.toml", "policy.toml");
    let mut text = services;
    for i in 0..n {
        text.push_str(&format!("[tenants.t{i}]\n"));
    }
    let path = dir.join(format!("tenants-{n}.toml"));
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
    http: &super::Http,
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
    super::send_with(http, &headers, method, url, body).await
}

struct Load {
    http: super::Http,
    url: String,
    secret: String,
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
    // Join, let the (virtual) clock admit everyone, enter: not measured.
    let l = load.clone();
    let (_, waiting) = phase("join", n, c, move |i| {
        let l = l.clone();
        async move {
            let (tenant, user) = (tenant_of(i), format!("u{}", offset + i));
            let url = format!("{}/api/v1/queue/join", l.url);
            let body = json!({"event_id": "e", "user_id": user});
            let (s, b) = send(&l.http, &tenant, None, "POST", &url, Some(&body)).await?;
            if s != 200 {
                bail!("join: {s} {b}");
            }
            field(&b, "waiting_token")
        }
    })
    .await?;
    let url = format!("{}/admin/v1/clock/advance", load.url);
    let (s, b) = send(
        &load.http,
        "t0",
        None,
        "POST",
        &url,
        Some(&json!({"seconds": 2})),
    )
    .await?;
    if s != 200 {
        bail!("advancing the clock: {s} {b}");
    }
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
    let tokens = Arc::new(tokens);
    let l = load.clone();
    let (p, _) = phase(name, n, c, move |i| {
        let (l, tokens) = (l.clone(), tokens.clone());
        async move {
            let (tenant, user) = (tenant_of(i), format!("u{}", offset + i));
            let base = if i % tenants == 0 { offset } else { 0 };
            let seat = format!("A-{}", base + i / tenants + 1);
            let auth = bearer_for(&l.secret, Some(&tenant), &user)?;
            let body = json!({"event_id": "e", "seat_ids": [seat], "user_id": user,
                              "reservation_token": tokens[i], "idempotency_key": format!("h{}", offset + i)});
            let url = format!("{}/api/v1/reservations", l.url);
            let (s, b) = send(&l.http, &tenant, Some(&auth), "POST", &url, Some(&body)).await?;
            if s != 200 {
                bail!("hold in {tenant}: {s} {b}");
            }
            Ok(())
        }
    })
    .await?;
    Ok(p)
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
        url: url.clone(),
        secret: host.jwt_secret.clone(),
    });
    // Seats for both phases: t0 carries the whole one-tenant phase.
    for i in 0..spread {
        let seats = if i == 0 {
            args.holds + args.holds / spread + 1
        } else {
            args.holds / spread + 1
        };
        let body = json!({"event_id": "e", "name": "bench", "seat_count": seats,
                          "price": {"amount": 1000, "currency": "KRW"}, "admission_per_second": 1_000_000});
        let (s, b) = send(
            &load.http,
            &format!("t{i}"),
            None,
            "POST",
            &format!("{url}/admin/v1/events"),
            Some(&body),
        )
        .await?;
        if s != 200 {
            bail!("creating t{i}'s event: {s} {b}");
        }
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
    Ok(())
}
