//! `tacos-bench route`: requests/s of a trivial route through a component
//! (tacos' queue status: routing, JSON → protobuf, a fresh instance, a signed
//! token check and a kv read, protobuf → JSON) beside two baselines measured in
//! the same run with the same load tool and connection count: `wasmtime serve`
//! running a hello-world `wasi:http` component, and a plain hyper hello world.
//!
//! The load tool is `wrk` (Debian package `wrk`); the baseline host is the
//! wasmtime CLI (`cargo install wasmtime-cli --version 48.0.8 --locked`;
//! without it that baseline is skipped, loudly). Rounds are interleaved and
//! the median is reported, with each server's CPU per request (read from
//! `/proc`) and wrk's share of the machine.

use crate::{client, send, spawn_host};
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// Connections wrk keeps open, the same against every server.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Measurements per server, interleaved; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The wasmtime CLI for the `wasmtime serve` baseline.
    #[arg(long, default_value = "wasmtime", env = "TACOS_BENCH_WASMTIME")]
    wasmtime: PathBuf,
}

/// What wrk measured.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// The server's CPU per request, µs.
    server_us: f64,
    /// wrk's share of the machine, 0–1.
    wrk_share: f64,
}

fn version(cmd: &mut Command, missing: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| missing.to_string())?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

fn latency_ms(s: &str) -> Option<f64> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> anyhow::Result<Run> {
    let mut run = Run::default();
    for line in out.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => run.rps = v.parse()?,
            (Some("50%"), Some(v)) => run.p50_ms = latency_ms(v).unwrap_or(0.0),
            (Some("99%"), Some(v)) => run.p99_ms = latency_ms(v).unwrap_or(0.0),
            (Some("Non-2xx"), _) => {
                run.errors += line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            }
            (Some("Socket"), _) => {
                run.errors += line
                    .split(',')
                    .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    if run.rps == 0.0 {
        bail!("wrk reported no rate:\n{out}");
    }
    Ok(run)
}

/// Load `url` with wrk; `server` is the serving process (`None`: this one).
async fn wrk(args: &RouteArgs, url: &str, server: Option<u32>) -> anyhow::Result<Run> {
    let server_cpu = || match server {
        Some(pid) => crate::cpu::seconds(pid).context("server CPU"),
        None => Ok(crate::cpu::this_process().0),
    };
    let (before, (_, wrk_before)) = (server_cpu()?, crate::cpu::this_process());
    let started = Instant::now();
    let out = tokio::process::Command::new("wrk")
        .args([
            "--latency",
            "-t",
            &args.threads.to_string(),
            "-c",
            &args.connections.to_string(),
        ])
        .arg(format!("-d{}s", args.duration))
        .arg(url)
        .output()
        .await
        .context("running wrk")?;
    let elapsed = started.elapsed().as_secs_f64();
    let (server_cpu, wrk_cpu) = (
        server_cpu()? - before,
        crate::cpu::this_process().1 - wrk_before,
    );
    let mut run = parse_wrk(&String::from_utf8_lossy(&out.stdout))?;
    run.server_us = server_cpu * 1e6 / (run.rps * elapsed).max(1.0);
    run.wrk_share = wrk_cpu / (elapsed * crate::cpu::cores());
    Ok(run)
}

/// The plain hyper hello world: the floor of any HTTP server here.
async fn serve_hello(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"Hello, world!\n",
                ))))
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `wasmtime serve` on the hello-world component and wait until it answers.
async fn wasmtime_serve(args: &RouteArgs) -> anyhow::Result<(Killed, String)> {
    let component = PathBuf::from(tacos_host::bundle::BUILT_COMPONENTS_DIR)
        .join("tacos_fixture_hello_http.wasm");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // `-Scli`: Rust's std imports wasi:cli (environment, stdio) besides the proxy world.
    let child = Command::new(&args.wasmtime)
        .args(["serve", "-Scli"])
        .arg(format!("--addr=127.0.0.1:{port}"))
        .arg(&component)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} serve", args.wasmtime.display()))?;
    let child = Killed(child);
    let url = format!("http://127.0.0.1:{port}/");
    let http = client(1);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok((200, _)) = send(&http, "GET", &url, None).await {
            return Ok((child, url));
        }
        if Instant::now() > deadline {
            bail!("wasmtime serve did not answer on {url}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    runs[runs.len() / 2]
}

pub async fn route(args: RouteArgs) -> anyhow::Result<()> {
    let wrk_version = version(
        Command::new("wrk").arg("-v"),
        "wrk is missing: apt-get install wrk",
    )?;
    // Without the wasmtime CLI the run goes on against hyper alone, and says so.
    let wasmtime_version = version(Command::new(&args.wasmtime).arg("--version"), "");
    if wasmtime_version.is_err() {
        eprintln!(
            "route: no wasmtime CLI at {}: the `wasmtime serve` baseline is skipped (cargo install wasmtime-cli --version 48.0.8 --locked, or pass --wasmtime PATH)",
            args.wasmtime.display()
        );
    }

    // tacos: the queue status of a waiting user.
    let (host, base) = spawn_host()?;
    let http = client(4);
    let (s, b) = send(
        &http,
        "POST",
        &format!("{base}/admin/v1/events"),
        Some(&json!({"event_id": "route", "name": "Route bench", "seat_count": 10, "price": {"amount": 1, "currency": "KRW"}, "admission_per_second": 1000})),
    )
    .await?;
    if s != 200 {
        bail!("creating the event: {s} {b}");
    }
    let (_, joined) = send(
        &http,
        "POST",
        &format!("{base}/api/v1/queue/join"),
        Some(&json!({"event_id": "route", "user_id": "u1"})),
    )
    .await?;
    let token = joined["waiting_token"]
        .as_str()
        .context("no waiting token")?;
    let tacos_url = format!("{base}/api/v1/queue/status?token={token}");
    let (s, b) = send(&http, "GET", &tacos_url, None).await?;
    if s != 200 {
        bail!("queue status: {s} {b}");
    }

    let serve = match wasmtime_version {
        Ok(_) => Some(wasmtime_serve(&args).await?),
        Err(_) => None,
    };
    let hello = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hello_url = format!("http://{}/", hello.local_addr()?);
    let hello_task = tokio::spawn(serve_hello(hello));

    println!(
        "route: wrk {} threads, {} connections, {} s x {} rounds; {wrk_version}; {}",
        args.threads,
        args.connections,
        args.duration,
        args.rounds,
        wasmtime_version.as_deref().unwrap_or("no wasmtime CLI")
    );
    // The hello server runs in this process.
    let mut targets = vec![
        (
            "tacos queue status",
            tacos_url.as_str(),
            Some(host.child.id()),
        ),
        ("hyper hello", hello_url.as_str(), None),
    ];
    if let Some((child, url)) = &serve {
        targets.push(("wasmtime serve hello", url.as_str(), Some(child.0.id())));
    }
    let mut results: Vec<Vec<Run>> = vec![Vec::new(); targets.len()];
    for _ in 0..args.rounds.max(1) {
        for (i, (_, url, server)) in targets.iter().enumerate() {
            results[i].push(wrk(&args, url, *server).await?);
        }
    }
    hello_task.abort();
    let medians: Vec<Run> = results.into_iter().map(median).collect();
    for ((name, _, _), r) in targets.iter().zip(&medians) {
        let flag = crate::cpu::starved(r.wrk_share);
        println!(
            "  {name:<22} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}   server {:>5.1} µs/req   wrk {:.0} % of the machine{flag}",
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            r.server_us,
            r.wrk_share * 100.0
        );
    }
    print!(
        "  tacos / hyper hello = {:.2}x",
        medians[0].rps / medians[1].rps
    );
    match medians.get(2) {
        Some(serve) => println!(
            "   tacos / wasmtime serve = {:.2}x",
            medians[0].rps / serve.rps
        ),
        None => println!(),
    }
    drop(host);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let out = "Running 10s test @ http://x\n  2 threads and 64 connections\n  Latency Distribution\n     50%  612.00us\n     99%    2.31ms\n  100 requests in 10.00s\n  Non-2xx or 3xx responses: 3\nRequests/sec:  41234.56\n";
        let r = parse_wrk(out).unwrap();
        assert_eq!((r.rps, r.errors), (41234.56, 3));
        assert!((r.p50_ms - 0.612).abs() < 1e-9 && (r.p99_ms - 2.31).abs() < 1e-9);
        assert!(parse_wrk("nothing").is_err());
    }
}
