//! `tacos-bench live`: many buyers watching their place in the waiting room
//! over WebSocket on one host.
//!
//! N users join an event admitting A a second, each opens
//! `/ws/queue/{token}`, and the host's memory is read before and after
//! (memory per socket). Then the virtual clock moves a second at a time:
//! each step admits A of them (and moves everyone else's place), and the
//! time from the step to each admitted socket's `ADMISSION_READY` is the
//! push delay. The baseline, in the same run: the same N buyers polling
//! `GET /api/v1/queue/status` once a second instead (what a client without
//! the socket does): the host CPU of a status request, measured over as
//! many requests as the steps took seconds × N, times N a second, against
//! the host CPU the sockets took.

use crate::{Http, client, field, join_phase, send, spawn_host_with_args};
use anyhow::Context;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// Buyers, each with a socket.
    #[arg(long, default_value_t = 10_000)]
    pub sockets: usize,
    /// Admissions a second.
    #[arg(long, default_value_t = 500)]
    pub admit: usize,
    /// Virtual seconds to step through (each admits `--admit`).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Sockets opened at once.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
}

/// How long one step may take before the run fails.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// Resident memory now, in KiB (Linux).
fn rss_kib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn advance(http: &Http, url: &str, seconds: f64) -> anyhow::Result<()> {
    let body = serde_json::json!({ "seconds": seconds });
    let (status, b) = send(
        http,
        "POST",
        &format!("{url}/admin/v1/clock/advance"),
        Some(&body),
    )
    .await?;
    anyhow::ensure!(status == 200, "advance: {status} {b}");
    Ok(())
}

pub async fn live(args: LiveArgs) -> anyhow::Result<()> {
    let n = args.sockets.max(1);
    let max_connections = (n + 1_000).to_string();
    let extra = ["--max-connections", max_connections.as_str()].map(std::ffi::OsStr::new);
    let (host, url, _) = spawn_host_with_args(None, &extra)?;
    let pid = host.child.id();
    let http = client(64);
    let event = serde_json::json!({"event_id": "live", "name": "Live", "seat_count": 1,
        "price": {"amount": 1000, "currency": "KRW"}, "admission_per_second": args.admit});
    let (s, b) = send(
        &http,
        "POST",
        &format!("{url}/admin/v1/events"),
        Some(&event),
    )
    .await?;
    anyhow::ensure!(s == 200, "create event: {s} {b}");
    let (joins, tokens) = join_phase(&http, &url, "live", n, 64).await?;
    joins.print();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = rss_kib(pid).context("host RSS")?;

    // Every socket records when its place became ready, as ns since `epoch`.
    let epoch = Instant::now();
    let ready_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let ready = Arc::new(AtomicUsize::new(0));
    let messages = Arc::new(AtomicU64::new(0));
    let ws_base = url.replacen("http://", "ws://", 1);
    let opened = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    let open = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut opening = Vec::with_capacity(n);
    for (i, token) in tokens.iter().enumerate() {
        let (open, path) = (open.clone(), format!("{ws_base}/ws/queue/{token}"));
        opening.push(tokio::spawn(async move {
            let _permit = open.acquire_owned().await?;
            let (mut ws, _) = tokio_tungstenite::connect_async(path).await?;
            // The first message says where the place stands.
            match tokio::time::timeout(STEP_LIMIT, ws.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => Ok::<_, anyhow::Error>((i, ws)),
                other => anyhow::bail!("socket {i}: no first message: {other:?}"),
            }
        }));
    }
    for o in opening {
        let (i, ws) = o.await??;
        let (ready_at, ready, messages) = (ready_at.clone(), ready.clone(), messages.clone());
        sockets.push(tokio::spawn(async move {
            let (_tx, mut rx) = ws.split();
            while let Some(Ok(m)) = rx.next().await {
                let Message::Text(t) = m else { continue };
                messages.fetch_add(1, Ordering::Relaxed);
                if t.contains("QUEUE_EVENT_TYPE_ADMISSION_READY") {
                    ready_at[i].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    ready.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let open_took = opened.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kib(pid).context("host RSS")?;
    let per_socket = (rss_after - rss_before) / n as f64;

    // Step the clock; each step admits `admit` places.
    let mut delays = Vec::new();
    let cpu_start = crate::cpu::seconds(pid).context("host CPU")?;
    let stepping = Instant::now();
    let steps = args.steps.min(n.div_ceil(args.admit.max(1)));
    for step in 0..steps {
        let before: Vec<bool> = ready_at
            .iter()
            .map(|r| r.load(Ordering::Relaxed) != 0)
            .collect();
        let t0 = epoch.elapsed().as_nanos() as u64;
        advance(&http, &url, 1.0).await?;
        let want = n.min(args.admit * (step + 1));
        let waited = tokio::time::timeout(STEP_LIMIT, async {
            while ready.load(Ordering::Relaxed) < want {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
        anyhow::ensure!(
            waited.is_ok(),
            "step {step}: {} of {want} places admitted",
            ready.load(Ordering::Relaxed)
        );
        for (r, was) in ready_at.iter().zip(before) {
            let at = r.load(Ordering::Relaxed);
            if !was && at != 0 {
                delays.push(Duration::from_nanos(at.saturating_sub(t0)));
            }
        }
    }
    let socket_wall = stepping.elapsed();
    let socket_cpu = crate::cpu::seconds(pid).context("host CPU")? - cpu_start;
    let pushed = messages.load(Ordering::Relaxed);
    delays.sort();

    // Baseline: the same buyers polling their status once a second, for
    // as long as the steps took.
    for s in sockets {
        s.abort();
    }
    // Until the host has seen them go (their connections count against its cap).
    let pulse_url = format!("{url}/admin/v1/pulse");
    tokio::time::timeout(STEP_LIMIT, async {
        loop {
            if let Ok((200, p)) = send(&http, "GET", &pulse_url, None).await
                && p["watchers"]["places"] == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .context("the host still counts the sockets")?;
    let polls = (n as f64 * socket_wall.as_secs_f64()).ceil() as usize;
    let tokens = Arc::new(tokens);
    let cpu_start = crate::cpu::seconds(pid).context("host CPU")?;
    let (http2, status_url) = (client(64), format!("{url}/api/v1/queue/status"));
    let (polling, _) = crate::phase("poll status", polls, 64, move |i| {
        let (http, url, tokens) = (http2.clone(), status_url.clone(), tokens.clone());
        async move {
            let token = &tokens[i % tokens.len()];
            let (s, b) = send(&http, "GET", &format!("{url}?token={token}"), None).await?;
            anyhow::ensure!(s == 200, "status: {s} {b}");
            field(&b, "status").map(|_| ())
        }
    })
    .await?;
    let poll_cpu = crate::cpu::seconds(pid).context("host CPU")? - cpu_start;
    // What polling once a second costs: the host CPU of one status request
    // (measured flat out) times N a second.
    let per_poll = poll_cpu / polls as f64;

    println!(
        "live: {n} waiting-room sockets on one host, {} admitted a second, a feed tick of {} ms",
        args.admit,
        tacos_host::live::TICK.as_millis()
    );
    println!(
        "  opened                 {n} sockets in {:.1} s",
        open_took.as_secs_f64()
    );
    println!("  host RSS before        {:.1} MiB", rss_before / 1024.0);
    println!("  host RSS with sockets  {:.1} MiB", rss_after / 1024.0);
    println!("  memory per socket      {per_socket:.1} KiB (target < 30 KiB)");
    println!(
        "  admission → push       p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms  (n = {}; target p99 < 1000 ms)",
        percentile(&delays, 0.50).as_secs_f64() * 1e3,
        percentile(&delays, 0.99).as_secs_f64() * 1e3,
        delays.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        delays.len()
    );
    let socket_cores = socket_cpu / socket_wall.as_secs_f64();
    let poll_cores = per_poll * n as f64;
    println!(
        "  host CPU, sockets      {socket_cores:.2} cores over {:.1} s ({steps} steps, {pushed} messages pushed)",
        socket_wall.as_secs_f64()
    );
    println!(
        "  baseline: polling 1/s  {poll_cores:.2} cores ({:.0} µs of host CPU per status request × {n}/s; {polls} requests at {:.0}/s, p99 {:.1} ms)",
        per_poll * 1e6,
        polling.rate(),
        polling.percentile(0.99).as_secs_f64() * 1e3
    );
    println!(
        "  sockets ÷ polling      {:.2}× the host CPU",
        socket_cores / poll_cores.max(1e-9)
    );
    drop(host);
    Ok(())
}
