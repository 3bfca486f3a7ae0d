//! `tacos-bench stores`: holds/s and latency of the same hold on each store
//! backend, one host each, then on three hosts sharing Redis; and how many
//! requests to the store one hold costs.
//!
//! The servers are real and started for the run (`redis-server`, moto's
//! DynamoDB-API server; see `tacos-testkit`); the hosts are this binary,
//! one process each. Every run measures the embedded store too, so the
//! ratios compare figures taken on the same machine at the same time. moto
//! is an in-memory emulator in Python: its latency is moto's, not DynamoDB's;
//! the round trips per hold are what carries over to DynamoDB.

use crate::fleet::CommandStats;
use crate::{Http, Phase, bearer, client, enter_phase, field, join_phase, phase, send, send_as};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tacos_testkit::{DynamoDb, Redis};

#[derive(Debug, clap::Args)]
pub struct StoresArgs {
    /// Holds per configuration (each user holds one seat of its own).
    #[arg(long, default_value_t = 2000)]
    holds: usize,
    /// Holds on Redis + DynamoDB (moto is slow; keep it short).
    #[arg(long, default_value_t = 300)]
    dynamodb_holds: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Concurrent connections on DynamoDB: moto answers one request at a
    /// time, so more only queue up (past the 5 s call deadline).
    #[arg(long, default_value_t = 4)]
    dynamodb_concurrency: usize,
}

/// One configuration's hosts.
struct Setup {
    name: &'static str,
    urls: Vec<String>,
    secret: String,
    _hosts: Vec<crate::Spawned>,
}

/// What one configuration measured.
struct Figures {
    name: &'static str,
    hosts: usize,
    concurrency: usize,
    holds: Phase,
    /// Store requests per hold, background polling taken off.
    trips: Option<f64>,
    /// Redis's own CPU per hold, µs (from `/proc`; background included).
    redis_us: Option<f64>,
    /// Redis's commands per hold: (command, calls, µs inside it).
    commands: Vec<(String, f64, f64)>,
}

fn bundle(dir: &std::path::Path, store: &str) -> anyhow::Result<std::path::PathBuf> {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, tacos_host::bundle::DEFAULT_POLICY)?;
    let manifest = tacos_host::bundle::DEFAULT_BUNDLE
        .replace("[store]\nkind = \"embedded\"\n", store)
        .replace("../policies/default.toml", &policy.display().to_string());
    let path = dir.join("bundle.toml");
    std::fs::write(&path, manifest)?;
    Ok(path)
}

fn start(
    name: &'static str,
    hosts: usize,
    store: Option<String>,
    dir: &std::path::Path,
    cache: &std::path::Path,
) -> anyhow::Result<Setup> {
    let secret = hex::encode(rand::random::<[u8; 16]>());
    let bundle = match &store {
        Some(toml) => Some(bundle(dir, toml)?),
        None => None,
    };
    let aws = [
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let mut spawned = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..hosts {
        let mut extra: Vec<&std::ffi::OsStr> = Vec::new();
        if let Some(b) = &bundle {
            extra.extend(["--bundle".as_ref(), b.as_os_str()]);
        }
        let (s, url, _) = crate::spawn_host_env(Some(cache), &extra, &aws, secret.clone())
            .with_context(|| format!("starting a host on {name}"))?;
        spawned.push(s);
        urls.push(url);
    }
    Ok(Setup {
        name,
        urls,
        secret,
        _hosts: spawned,
    })
}

/// Store requests so far, summed over the hosts' `/readyz`.
async fn round_trips(http: &Http, urls: &[String]) -> anyhow::Result<Option<u64>> {
    let mut total = None;
    for url in urls {
        let (_, body) = send(http, "GET", &format!("{url}/readyz"), None).await?;
        if let Some(trips) = body["store"]["round_trips"]
            .as_object()
            .filter(|t| !t.is_empty())
        {
            let n: u64 = trips.values().filter_map(Value::as_u64).sum();
            *total.get_or_insert(0) += n;
        }
    }
    Ok(total)
}

async fn advance(http: &Http, urls: &[String], seconds: f64) -> anyhow::Result<()> {
    for url in urls {
        let (s, body) = send(
            http,
            "POST",
            &format!("{url}/admin/v1/clock/advance"),
            Some(&json!({"seconds": seconds})),
        )
        .await?;
        if s != 200 || body["settled"] != true {
            bail!("advancing the clock: {s} {body}");
        }
    }
    Ok(())
}

/// Users join and enter, round robin over the hosts, then each holds its
/// own seat on the next host: the hold phase is what is measured.
async fn measure(
    setup: &Setup,
    holds: usize,
    concurrency: usize,
    redis: Option<&Redis>,
) -> anyhow::Result<Figures> {
    let http = client(concurrency);
    let urls = &setup.urls;
    let event = format!("bench-{:08x}", rand::random::<u32>());
    let (s, body) = send(
        &http,
        "POST",
        &format!("{}/admin/v1/events", urls[0]),
        Some(&json!({"event_id": event, "name": "Stores", "seat_count": holds,
                     "price": {"amount": 10_000, "currency": "KRW"}, "admission_per_second": holds})),
    )
    .await?;
    if s != 200 {
        bail!("creating the event: {s} {body}");
    }
    let (_, seats) = send(
        &http,
        "GET",
        &format!("{}/api/v1/events/{event}/seats", urls[0]),
        None,
    )
    .await?;
    let seat_ids: Vec<String> = seats["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["seats"].as_array().into_iter().flatten())
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    if seat_ids.len() != holds {
        bail!("the event has {} seats, not {holds}", seat_ids.len());
    }
    let (_, waiting) = join_phase(&http, &urls[0], &event, holds, concurrency).await?;
    advance(&http, urls, 1.0).await?;
    let (_, tokens) = enter_phase(&http, &urls[0], waiting, concurrency).await?;

    // Background store traffic (dispatchers, relays, change logs) over 2 s.
    let idle_from = round_trips(&http, urls).await?;
    let idle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = match (idle_from, round_trips(&http, urls).await?) {
        (Some(a), Some(b)) => Some((b - a) as f64 / idle_started.elapsed().as_secs_f64()),
        _ => None,
    };
    let before = round_trips(&http, urls).await?;
    let pid = redis.and_then(Redis::pid);
    let redis_before = pid.and_then(crate::cpu::seconds);
    let stats = || redis.map(|r| CommandStats::read(&r.url())).transpose();
    let commands_before = stats()?;
    let ctx = Arc::new((
        http.clone(),
        urls.clone(),
        event.clone(),
        setup.secret.clone(),
        tokens,
        seat_ids,
    ));
    let (held, _) = phase("hold", holds, concurrency, move |i| {
        let ctx = ctx.clone();
        async move {
            let (http, urls, event, secret, tokens, seats) = &*ctx;
            let user = format!("u{i}");
            let url = &urls[i % urls.len()];
            let body = json!({"event_id": event, "seat_ids": [seats[i]], "user_id": user,
                              "reservation_token": tokens[i], "idempotency_key": format!("h{i}")});
            let auth = bearer(secret, &user)?;
            let url = format!("{url}/api/v1/reservations");
            let (s, b) = send_as(http, Some(&auth), "POST", &url, Some(&body)).await?;
            if s != 200 {
                bail!("hold: {s} {b}");
            }
            field(&b, "reservation_id")
        }
    })
    .await?;
    let after = round_trips(&http, urls).await?;
    let commands = match (commands_before, stats()?) {
        (Some(a), Some(b)) => b.per_hold(&a, holds),
        _ => Vec::new(),
    };
    let redis_us = match (redis_before, pid.and_then(crate::cpu::seconds)) {
        (Some(a), Some(b)) => Some((b - a) * 1e6 / holds as f64),
        _ => None,
    };
    let trips = match (before, after, idle) {
        (Some(a), Some(b), Some(idle)) => {
            let background = idle * held.elapsed.as_secs_f64();
            Some(((b - a) as f64 - background).max(0.0) / holds as f64)
        }
        _ => None,
    };
    Ok(Figures {
        name: setup.name,
        hosts: urls.len(),
        concurrency,
        holds: held,
        trips,
        redis_us,
        commands,
    })
}

fn print(f: &Figures, baseline: Option<&Figures>) {
    let ratio = baseline
        .map(|b| format!("   ×{:.2} of {}", f.holds.rate() / b.holds.rate(), b.name))
        .unwrap_or_default();
    let connections = format!("{} conn", f.concurrency);
    let trips = f
        .trips
        .map(|t| format!("{t:>5.1}"))
        .unwrap_or_else(|| "    —".into());
    let cpu = match (f.holds.cpu.host_us_per(f.holds.requests), f.redis_us) {
        (Some(h), Some(r)) => format!("   host {h:.0} µs/hold, redis-server {r:.0} µs/hold"),
        (Some(h), None) => format!("   host {h:.0} µs/hold"),
        _ => String::new(),
    };
    println!(
        "  {:<24} {} host{} {connections:>7}  {:>7.0} holds/s   p50 {:>7.2} ms   p99 {:>7.2} ms   {trips} store requests/hold{cpu}{ratio}",
        f.name,
        f.hosts,
        if f.hosts == 1 { " " } else { "s" },
        f.holds.rate(),
        f.holds.percentile(0.50).as_secs_f64() * 1e3,
        f.holds.percentile(0.99).as_secs_f64() * 1e3,
    );
}

pub async fn stores(args: StoresArgs) -> anyhow::Result<()> {
    println!(
        "stores: {} holds, {} connections ({} and {} on DynamoDB)",
        args.holds, args.concurrency, args.dynamodb_holds, args.dynamodb_concurrency
    );
    let dir = tempfile::tempdir()?;
    // The hosts share compiled components: only the first compiles them.
    let cache = std::env::var_os("TACOS_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("compiled"));
    let redis = Redis::start().context("the Redis runs need redis-server")?;
    let dynamodb = DynamoDb::start().context("the DynamoDB runs need moto's server")?;
    let redis_toml = |prefix: &str| {
        format!(
            "[store]\nkind = \"redis\"\n\n[store.redis]\nurl = {:?}\nprefix = {prefix:?}\n",
            redis.url()
        )
    };
    let dynamo_toml = format!(
        "[store]\nkv = \"dynamodb\"\nqueue = \"redis\"\n\n[store.kv_per_service]\nqueue = \"redis\"\n\n[store.redis]\nurl = {:?}\nprefix = \"d:\"\n\n[store.dynamodb]\ntable = \"bench\"\nregion = \"us-east-1\"\nendpoint = {:?}\n",
        redis.url(),
        dynamodb.endpoint()
    );
    tacos_host::store::dynamodb::create_table(&dynamodb.client(), "bench").await?;

    let mut all = Vec::new();
    let (n, c) = (args.holds, args.concurrency);
    let runs: [(&'static str, usize, Option<String>, usize, usize); 4] = [
        ("embedded", 1, None, n, c),
        ("redis", 1, Some(redis_toml("r1:")), n, c),
        ("redis, 3 hosts", 3, Some(redis_toml("r3:")), n, c),
        (
            "dynamodb (moto) + redis",
            1,
            Some(dynamo_toml),
            args.dynamodb_holds,
            args.dynamodb_concurrency,
        ),
    ];
    for (i, (name, hosts, store, holds, concurrency)) in runs.into_iter().enumerate() {
        let run_dir = dir.path().join(i.to_string());
        std::fs::create_dir_all(&run_dir)?;
        let setup = start(name, hosts, store, &run_dir, &cache)?;
        let on_redis = (i > 0).then_some(&redis);
        let figures = measure(&setup, holds, concurrency, on_redis).await?;
        let baseline = match i {
            0 => None,
            2 => all.get(1),
            _ => all.first(),
        };
        print(&figures, baseline);
        all.push(figures);
    }
    println!(
        "  the floor: 1 store request per hold (one script or TransactWriteItems that checks the seat, takes it, records the hold and enqueues its expiry)"
    );
    println!(
        "  the shared Redis, per hold, and the ceiling it implies (INFO commandstats, /proc):"
    );
    // kv on Redis: the configurations named for it (see `fleet`).
    for f in all.iter().filter(|f| f.name.starts_with("redis")) {
        if let Some(us) = f.redis_us {
            crate::fleet::print_model(f.name, &f.commands, us, f.holds.rate());
        }
    }
    Ok(())
}
