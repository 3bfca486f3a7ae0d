//! `tacos-bench swap`: what a hot swap costs. On a host started for the run:
//!
//! - swap latency, from the swap command to the first call served by the new
//!   version: cold (a component no cache has seen: a build with a fresh custom
//!   section) and warm (a build the host has compiled before);
//! - the p99 of continuous load on the swapped service during swaps against
//!   the same load without swaps, in the same run;
//! - host start-up with a cold and a warm compiled-component cache.

use crate::{Http, Phase, bearer, client, send, send_as, spawn_host_with};
use anyhow::{Context, bail};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tacos_host::bundle::BUILT_COMPONENTS_DIR;
use tacos_host::runtime::with_custom_section;

#[derive(Debug, clap::Args)]
pub struct SwapArgs {
    /// Seconds of load without swaps, then as many with swaps.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections of the load.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Warm swaps during the loaded phase (alternating two builds).
    #[arg(long, default_value_t = 10)]
    swaps: usize,
    /// Swaps to never-seen builds (compiled from scratch).
    #[arg(long, default_value_t = 3)]
    cold_swaps: usize,
}

/// The request the load repeats: a payment's status, read as its owner.
#[derive(Clone)]
struct Probe {
    url: String,
    authorization: String,
}

/// GET the probe; the status and the `x-tacos-served-by` hash.
async fn served_by(http: &Http, probe: &Probe) -> anyhow::Result<(u16, String)> {
    let req = hyper::Request::get(&probe.url)
        .header(hyper::header::AUTHORIZATION, &probe.authorization)
        .body(Full::new(Bytes::new()))?;
    let resp = http.request(req).await?;
    let status = resp.status().as_u16();
    let hash = resp
        .headers()
        .get(tacos_host::edge::SERVED_BY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once('@'))
        .map(|(_, h)| h.to_string())
        .unwrap_or_default();
    resp.into_body().collect().await?;
    Ok((status, hash))
}

/// Swap, then call until the new version answers: milliseconds end to end.
async fn timed_swap(http: &Http, base: &str, probe: &Probe, body: Value) -> anyhow::Result<f64> {
    let started = Instant::now();
    let (status, answer) = send(
        http,
        "POST",
        &format!("{base}/admin/v1/services/payment-sim/swap"),
        Some(&body),
    )
    .await?;
    if status != 200 {
        bail!("swap failed: {answer}");
    }
    let target = answer["current"]["hash"]
        .as_str()
        .context("no hash")?
        .to_string();
    loop {
        let (_, hash) = served_by(http, probe).await?;
        if hash == target {
            return Ok(started.elapsed().as_secs_f64() * 1e3);
        }
    }
}

/// Load on `probe` for `seconds`; latencies of every answer, failures counted.
async fn load(
    http: &Http,
    probe: &Probe,
    connections: usize,
    seconds: u64,
    name: &'static str,
) -> anyhow::Result<(Phase, usize)> {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let cpu = crate::cpu::Sample::now();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (http, probe, stop, failed) =
            (http.clone(), probe.clone(), stop.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match served_by(&http, &probe).await {
                    Ok((200, _)) => lat.push(t.elapsed()),
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await?);
    }
    Ok((
        Phase {
            name,
            requests: latencies.len(),
            elapsed: started.elapsed(),
            latencies,
            cpu: crate::cpu::Sample::now().since(&cpu),
        },
        failed.load(Ordering::Relaxed),
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub async fn swap(args: SwapArgs) -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let (cold_host, _, cold_start) = spawn_host_with(Some(cache.path()))?;
    drop(cold_host);
    let (host, base, warm_start) = spawn_host_with(Some(cache.path()))?;
    let http = client(args.connections + 2);

    // One payment intent to read back under load (payment-sim's GetPaymentStatus).
    let authorization = bearer(&host.jwt_secret, "u")?;
    let post = |path: &str, body: Value| {
        let (http, url, auth) = (http.clone(), format!("{base}{path}"), authorization.clone());
        async move {
            let (status, v) = send_as(&http, Some(&auth), "POST", &url, Some(&body)).await?;
            if status != 200 {
                bail!("{url}: {v}");
            }
            Ok::<_, anyhow::Error>(v)
        }
    };
    post(
        "/admin/v1/events",
        json!({"event_id": "s", "name": "S", "seat_count": 10, "price": {"amount": 100, "currency": "KRW"}, "admission_per_second": 1000}),
    )
    .await?;
    let wt = post(
        "/api/v1/queue/join",
        json!({"event_id": "s", "user_id": "u", "session_id": "s"}),
    )
    .await?;
    let rt = post(
        "/api/v1/queue/enter",
        json!({"waiting_token": wt["waiting_token"]}),
    )
    .await?;
    let held = post(
        "/api/v1/reservations",
        json!({"event_id": "s", "seat_ids": ["A-1"], "user_id": "u", "reservation_token": rt["reservation_token"], "idempotency_key": "k"}),
    )
    .await?;
    let intent = post(
        "/api/v1/payments/intent",
        json!({"reservation_id": held["reservation_id"], "user_id": "u", "amount": held["total_amount"], "scenario": "PAYMENT_SCENARIO_TIMEOUT"}),
    )
    .await?;
    let probe = Probe {
        url: format!(
            "{base}/api/v1/payments/{}",
            intent["payment_intent_id"]
                .as_str()
                .context("no payment id")?
        ),
        authorization,
    };

    // Cold swaps: bytes no cache has seen.
    let standard = std::fs::read(format!("{BUILT_COMPONENTS_DIR}/tacos_payment_sim.wasm"))?;
    let mut cold = Vec::new();
    for i in 0..args.cold_swaps {
        let label = format!("{}-{i}", std::process::id());
        let bytes = with_custom_section(&standard, "tacos-bench", label.as_bytes());
        let body =
            json!({"component_base64": base64::engine::general_purpose::STANDARD.encode(bytes)});
        cold.push(timed_swap(&http, &base, &probe, body).await?);
    }
    // Make both named builds known (compiled) before the measured phases.
    for build in ["chaos", "standard"] {
        timed_swap(&http, &base, &probe, json!({ "build": build })).await?;
    }

    // Warm up connections and caches, unmeasured.
    load(&http, &probe, args.connections, 2, "warm-up").await?;
    let (steady, steady_failed) =
        load(&http, &probe, args.connections, args.seconds, "steady").await?;
    let swapper = {
        let (http, base, probe) = (http.clone(), base.clone(), probe.clone());
        let every = Duration::from_secs_f64(args.seconds as f64 / (args.swaps as f64 + 1.0));
        let swaps = args.swaps;
        tokio::spawn(async move {
            let mut warm = Vec::new();
            for i in 0..swaps {
                tokio::time::sleep(every).await;
                let build = if i % 2 == 0 { "chaos" } else { "standard" };
                warm.push(timed_swap(&http, &base, &probe, json!({ "build": build })).await?);
            }
            Ok::<_, anyhow::Error>(warm)
        })
    };
    let (swapping, swapping_failed) =
        load(&http, &probe, args.connections, args.seconds, "swapping").await?;
    let warm = swapper.await??;
    drop(host);

    println!(
        "swap: payment-sim on a fresh host, {} connections of GET /api/v1/payments/{{id}}, {} s per phase",
        args.connections, args.seconds
    );
    steady.print();
    swapping.print();
    let p99 = |p: &Phase| p.percentile(0.99).as_secs_f64() * 1e3;
    println!(
        "  p99 during {} swaps / p99 without = {:.2}x   failed requests: {} without swaps, {} with",
        warm.len(),
        p99(&swapping) / p99(&steady),
        steady_failed,
        swapping_failed
    );
    println!(
        "  swap latency (command to first call on the new version): cold {:.1} ms (median of {}), warm {:.1} ms (median of {})",
        median(cold.clone()),
        cold.len(),
        median(warm.clone()),
        warm.len()
    );
    let show = |v: Option<u64>| v.map_or("?".to_string(), |ms| format!("{ms} ms"));
    println!(
        "  host start: {} with a cold component cache, {} warm",
        show(cold_start),
        show(warm_start)
    );
    Ok(())
}
