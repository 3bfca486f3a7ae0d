//! `tacos-bench flash-sale`: the whole ticket flow over loopback HTTP, with
//! figures.
//!
//! It starts a host (this binary, `tacos up --virtual-clock`, on a fresh data
//! dir) unless given `--target`, creates an event, and drives the phases one
//! after another with `--concurrency` connections: every user joins; the clock
//! moves so all are admitted; every user enters; as many users as there are
//! seats hold one seat each (holds/s, latency); the rest try and are turned
//! away; every holder pays (APPROVE); the clock moves 5 s and the host
//! delivers payments, webhooks and confirmations (confirms/s). Finally it
//! checks that every seat was sold exactly once and reports the host's peak
//! RSS. The virtual clock lets a 60-second world run as fast as the machine.

use crate::{
    Http, Phase, bearer, budget, client, cpu, enter_phase, join_phase, peak_rss_mib, phase, send,
    send_as, spawn_host,
};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct FlashSaleArgs {
    /// Users who join the waiting room.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Seats on sale.
    #[arg(long, default_value_t = 10_000)]
    seats: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// A running host (started with --virtual-clock) instead of a fresh one.
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// The target host's HS256 secret, to sign the users' tokens.
    #[arg(
        long,
        value_name = "SECRET",
        env = "TACOS_JWT_SECRET",
        hide_env_values = true
    )]
    jwt_secret: Option<String>,
}

/// The baseline: how many 256-byte appends per second one writer makes durable
/// with an fsync each, on the disk the run uses (what a store that commits
/// per request could at best do).
fn fsync_baseline() -> anyhow::Result<f64> {
    use std::io::Write;
    let dir = tempfile::tempdir_in(std::env::temp_dir())?;
    let mut f = std::fs::File::create(dir.path().join("fsync"))?;
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        f.write_all(&[7u8; 256])?;
        f.sync_data()?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Print `phase` and its budget by stage since `before`; the counters now.
async fn print_with_budget(
    phase: &Phase,
    http: &Http,
    url: &str,
    before: budget::Counters,
) -> anyhow::Result<budget::Counters> {
    let after = budget::read(http, url).await?;
    phase.print();
    budget::Budget::between(&before, &after, phase.requests, &phase.cpu).print(phase.name);
    Ok(after)
}

/// The store's (commits, writes) so far, from `/readyz`.
async fn store_stats(http: &Http, url: &str) -> Option<(u64, u64)> {
    let (_, body) = send(http, "GET", &format!("{url}/readyz"), None)
        .await
        .ok()?;
    Some((
        body["store"]["commits"].as_u64()?,
        body["store"]["writes"].as_u64()?,
    ))
}

pub async fn flash_sale(args: FlashSaleArgs) -> anyhow::Result<()> {
    if args.seats == 0 || args.users < args.seats {
        bail!("need at least as many users as seats (and at least one seat)");
    }
    let (spawned, url, secret) = match &args.target {
        Some(u) => (
            None,
            u.trim_end_matches('/').to_string(),
            args.jwt_secret
                .clone()
                .context("a --target host needs its --jwt-secret to sign the users' tokens")?,
        ),
        None => {
            let (s, u) = spawn_host()?;
            let secret = s.jwt_secret.clone();
            (Some(s), u, secret)
        }
    };
    let http = client(args.concurrency);
    let fsyncs = fsync_baseline().context("measuring the fsync baseline")?;
    let event = format!("bench-{:08x}", rand::random::<u32>());
    println!(
        "flash sale: {} users, {} seats, {} connections, host {url}{}",
        args.users,
        args.seats,
        args.concurrency,
        if spawned.is_some() {
            " (started for this run)"
        } else {
            ""
        }
    );
    let (s, body) = send(
        &http,
        "POST",
        &format!("{url}/admin/v1/events"),
        Some(&json!({"event_id": event, "name": "Flash sale", "seat_count": args.seats,
                     "price": {"amount": 50_000, "currency": "KRW"}, "admission_per_second": args.users})),
    )
    .await?;
    if s != 200 {
        bail!("creating the event: {s} {body}");
    }
    let advance = |seconds: f64| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let started = Instant::now();
            let (s, body) = send(
                &http,
                "POST",
                &format!("{url}/admin/v1/clock/advance"),
                Some(&json!({"seconds": seconds})),
            )
            .await?;
            if s != 200 || body["settled"] != true {
                bail!("advancing the clock (is the host on --virtual-clock?): {s} {body}");
            }
            Ok(started.elapsed())
        }
    };

    let ctx = Arc::new((http.clone(), url.clone(), event.clone(), secret));
    let before = budget::read(&http, &url).await?;
    let (joins, waiting) = join_phase(&http, &url, &event, args.users, args.concurrency).await?;
    print_with_budget(&joins, &http, &url, before).await?;
    advance(1.0).await?;
    let before = budget::read(&http, &url).await?;
    let waiting = Arc::new(waiting);
    let (c, w) = (ctx.clone(), waiting.clone());
    let (statuses, _) = phase("status", args.users, args.concurrency, move |i| {
        let (c, w) = (c.clone(), w.clone());
        async move {
            let url = format!("{}/api/v1/queue/status?token={}", c.1, w[i]);
            let (s, b) = send(&c.0, "GET", &url, None).await?;
            if s != 200 || b["admission_ready"] != true {
                bail!("queue status: {s} {b}");
            }
            Ok(())
        }
    })
    .await?;
    let before = print_with_budget(&statuses, &http, &url, before).await?;
    let waiting = Arc::try_unwrap(waiting).unwrap_or_else(|w| (*w).clone());
    let (enters, tokens) = enter_phase(&http, &url, waiting, args.concurrency).await?;
    let before_holds = print_with_budget(&enters, &http, &url, before).await?;

    let tokens = Arc::new(tokens);
    let hold = |offset: usize| {
        let (c, t) = (ctx.clone(), tokens.clone());
        move |i: usize| {
            let (c, t) = (c.clone(), t.clone());
            async move {
                let user = i + offset;
                let req = json!({"event_id": c.2, "quantity": 1, "user_id": format!("u{user}"),
                                 "reservation_token": t[user], "idempotency_key": format!("hold-{user}")});
                let (status, body) = send_as(
                    &c.0,
                    Some(&bearer(&c.3, &format!("u{user}"))?),
                    "POST",
                    &format!("{}/api/v1/reservations", c.1),
                    Some(&req),
                )
                .await?;
                Ok((status, body, format!("u{user}")))
            }
        }
    };
    let before = store_stats(&http, &url).await;
    let (holds, first) = phase("hold", args.seats, args.concurrency, hold(0)).await?;
    print_with_budget(&holds, &http, &url, before_holds).await?;
    if let (Some(a), Some(b)) = (before, store_stats(&http, &url).await) {
        let (commits, writes) = (b.0 - a.0, b.1 - a.1);
        let secs = holds.elapsed.as_secs_f64();
        println!(
            "  {:<10} {:>8} durable writes in {} commits ({:.1} writes/commit, {:.1} writes/hold, {:.0} commits/s)",
            "",
            writes,
            commits,
            writes as f64 / commits.max(1) as f64,
            writes as f64 / args.seats as f64,
            commits as f64 / secs
        );
        println!(
            "  {:<10} {:>8.0} durable writes/s = {:.2}x the one-fsync-per-write baseline ({fsyncs:.0} fsync/s measured now)",
            "",
            writes as f64 / secs,
            writes as f64 / secs / fsyncs
        );
    }
    let (late, second) = phase(
        "sold out",
        args.users - args.seats,
        args.concurrency,
        hold(args.seats),
    )
    .await?;
    if late.requests > 0 {
        late.print();
    }
    let mut refusals: std::collections::BTreeMap<String, usize> = Default::default();
    let mut held: Vec<(Value, String)> = Vec::new();
    for (status, body, user) in first.into_iter().chain(second) {
        if status == 200 {
            held.push((body, user));
        } else {
            *refusals
                .entry(body["error"]["code"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
    }
    let held = Arc::new(held);
    let (c, h) = (ctx.clone(), held.clone());
    let (intents, _) = phase("pay", held.len(), args.concurrency, move |i| {
        let (c, h) = (c.clone(), h.clone());
        async move {
            let (r, user) = &h[i];
            let req = json!({"reservation_id": r["reservation_id"], "user_id": user, "amount": r["total_amount"], "scenario": "PAYMENT_SCENARIO_APPROVE"});
            let auth = bearer(&c.3, user)?;
            let (s, b) = send_as(&c.0, Some(&auth), "POST", &format!("{}/api/v1/payments/intent", c.1), Some(&req)).await?;
            if s != 200 {
                bail!("payment intent: {s} {b}");
            }
            Ok(())
        }
    })
    .await?;
    intents.print();
    let cpu = cpu::Sample::now();
    let confirm_time = advance(5.0).await?;
    println!(
        "  {:<10} {:>8} confirmations in {:.2} s: {:.0} /s (payment completion, signed webhook, worker, confirm)   {}",
        "confirm",
        held.len(),
        confirm_time.as_secs_f64(),
        held.len() as f64 / confirm_time.as_secs_f64(),
        cpu::Sample::now().since(&cpu).describe(held.len())
    );

    // The oversell check: every seat sold once, every reservation confirmed.
    let (_, seats) = send(
        &http,
        "GET",
        &format!("{url}/api/v1/events/{event}/seats"),
        None,
    )
    .await?;
    let stats = &seats["stats"];
    let mut seen = HashSet::new();
    let mut twice = 0;
    for (r, _) in held.iter() {
        for s in r["reserved_seats"].as_array().into_iter().flatten() {
            if !seen.insert(s["id"].as_str().unwrap_or_default().to_string()) {
                twice += 1;
            }
        }
    }
    let sold = stats["sold_seats"].as_i64().unwrap_or(-1);
    let oversold = twice + held.len().saturating_sub(args.seats);
    println!(
        "  result     {} seats: {} sold, {} reserved, {} available; {} holds granted, refused {:?}; oversold: {}",
        args.seats,
        sold,
        stats["reserved_seats"],
        stats["available_seats"],
        held.len(),
        refusals,
        oversold
    );
    if let Some(rss) = spawned.as_ref().and_then(|s| peak_rss_mib(s.child.id())) {
        println!("  host peak RSS {rss:.1} MiB");
    }
    if oversold > 0 || sold != held.len() as i64 {
        bail!(
            "the sale is inconsistent: {sold} sold for {} holds, {oversold} oversold",
            held.len()
        );
    }
    Ok(())
}
