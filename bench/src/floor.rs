//! `tacos-bench floor`: what a hold costs the embedded store alone (issue
//! #17), so the component path can be given as a multiple of it.
//!
//! In this process, with no HTTP, no component and no host around it, it
//! opens the embedded store on a fresh data dir, fills it with an event's
//! seats (records and free-seat index, as inventory keeps them), and makes
//! `--holds` holds with `--concurrency` tasks doing the reads and the writes
//! a hold does through the components, with values of the sizes they write:
//!
//! - the reads: the event, the remaining-seats counter, a scan of the
//!   free-seat index from a random seat, the picked seat;
//! - as today, three transactions one after the other, each answered once
//!   visible (early writes), then one wait until they are durable: the
//!   idempotency claim with the admission it uses up; the seat, its index
//!   entry, the hold, two counters and the expiry message; the reservation,
//!   the user's index and the idempotency record's answer;
//! - then, in the same run, all of those writes as one transaction and the
//!   same one wait: what a hold would cost with a single commit.
//!
//! It prints holds/s, latency, this process's CPU per hold and the store
//! writer's figures for both, each beside the other.

use crate::Phase;
use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tacos_host::foundations::clock::Clock;
use tacos_host::store::embedded::EmbeddedStore;
use tacos_host::store::{Condition, KvStore, NewMessage, Op};

#[derive(Debug, clap::Args)]
pub struct FloorArgs {
    /// Holds per way of committing.
    #[arg(long, default_value_t = 10_000)]
    holds: usize,
    /// Concurrent holds.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

/// Value sizes of the records a hold writes (bytes, as the components
/// encode them for a one-seat hold).
const SEAT: usize = 96;
const HOLD: usize = 48;
const RESERVATION: usize = 220;
const IDEMPOTENCY_CLAIM: usize = 48;
const IDEMPOTENCY_ANSWER: usize = 360;
const EXPIRY_MESSAGE: usize = 80;

const TENANT: &str = "default";

fn key(component: &str, rest: &str) -> String {
    format!("{TENANT}/{component}/{rest}")
}

fn put(key: String, size: usize, condition: Condition) -> Op {
    Op::Put {
        key,
        value: vec![7; size],
        condition,
        expires_at_ms: None,
    }
}

/// The writes of hold `i` of seat `seat` (whose record is at `version`), in
/// the three transactions the components commit.
fn hold_writes(i: usize, seat: &str, version: u64, now_ms: u64) -> [Vec<Op>; 3] {
    let res = format!("res-{i:08}");
    let idem = key("reservation", &format!("idem:create:u{i}:hold-{i}"));
    let ttl = |mut op: Op| {
        if let Op::Put { expires_at_ms, .. } = &mut op {
            *expires_at_ms = Some(now_ms + 300_000);
        }
        op
    };
    let claim = vec![
        ttl(put(idem.clone(), IDEMPOTENCY_CLAIM, Condition::Absent)),
        ttl(put(
            key("reservation", &format!("admission-used:t{i}")),
            0,
            Condition::Absent,
        )),
    ];
    let hold = vec![
        put(
            key("inventory", &format!("seat:ev:{seat}")),
            SEAT,
            Condition::Version(version),
        ),
        Op::Delete {
            key: key("inventory", &format!("free:ev:{seat}")),
            condition: Condition::None,
        },
        put(
            key("inventory", &format!("hold:{res}")),
            HOLD,
            Condition::Absent,
        ),
        Op::Add {
            key: key("inventory", "remaining:ev"),
            delta: -1,
        },
        Op::Add {
            key: key("inventory", "changes:ev"),
            delta: 1,
        },
        Op::Send(NewMessage {
            tenant: TENANT.into(),
            topic: "reservation-expiry".into(),
            payload: vec![7; EXPIRY_MESSAGE],
            due_at_ms: now_ms + 60_000,
            trace_id: format!("{i:032x}"),
        }),
    ];
    let finish = vec![
        put(
            key("reservation", &format!("res:{res}")),
            RESERVATION,
            Condition::Absent,
        ),
        put(
            key("reservation", &format!("byuser:u{i}:{res}")),
            0,
            Condition::None,
        ),
        ttl(put(idem, IDEMPOTENCY_ANSWER, Condition::Exists)),
    ];
    [claim, hold, finish]
}

/// Seat ids `A-1`… in `chunks` of transactions: records, index, counter.
async fn seed(store: &EmbeddedStore, seats: usize) -> anyhow::Result<()> {
    let ids: Vec<String> = (1..=seats).map(|n| format!("A-{n}")).collect();
    for chunk in ids.chunks(45) {
        let mut ops = Vec::with_capacity(chunk.len() * 2);
        for id in chunk {
            ops.push(put(
                key("inventory", &format!("seat:ev:{id}")),
                SEAT,
                Condition::None,
            ));
            ops.push(put(
                key("inventory", &format!("free:ev:{id}")),
                0,
                Condition::None,
            ));
        }
        store.transact(ops).await?;
    }
    store
        .transact(vec![
            put(key("inventory", "event:ev"), 200, Condition::None),
            Op::Add {
                key: key("inventory", "remaining:ev"),
                delta: seats as i64,
            },
        ])
        .await?;
    Ok(())
}

/// One hold: the reads, then the writes in three commits or one, then the
/// wait for durability a call makes before it answers.
async fn one_hold(
    store: &EmbeddedStore,
    i: usize,
    seats: usize,
    single: bool,
) -> anyhow::Result<()> {
    let now = tacos_host::foundations::clock::system_now_ms();
    store.get(&key("inventory", "event:ev")).await?;
    store.counter(&key("inventory", "remaining:ev")).await?;
    // Every hold takes a seat of its own (the floor measures commits, not
    // contention): seat i+1, found through the index as the component does.
    let seat = format!("A-{}", (i % seats) + 1);
    let prefix = key("inventory", "free:ev:");
    store
        .scan(&prefix, Some(&format!("{prefix}{seat}")), 4)
        .await?;
    let seat_key = key("inventory", &format!("seat:ev:{seat}"));
    let found = store.get_many(std::slice::from_ref(&seat_key)).await?;
    let version = found
        .first()
        .and_then(|e| e.as_ref())
        .map(|e| e.version)
        .context("seat missing")?;
    let [claim, hold, finish] = hold_writes(i, &seat, version, now);
    if single {
        // The idempotency key is written once, with its answer, instead of
        // claimed first.
        let mut all: Vec<Op> = claim.into_iter().skip(1).collect();
        all.extend(hold);
        let mut finish = finish;
        if let Some(Op::Put { condition, .. }) = finish.last_mut() {
            *condition = Condition::Absent;
        }
        all.extend(finish);
        store.transact_early(all).await?;
    } else {
        for ops in [claim, hold, finish] {
            store.transact_early(ops).await?;
        }
    }
    store.durable(store.visible()).await?;
    Ok(())
}

struct Run {
    phase: Phase,
    commits: u64,
    writes: u64,
    syncs: u64,
}

async fn run(
    store: &Arc<EmbeddedStore>,
    args: &FloorArgs,
    offset: usize,
    single: bool,
) -> anyhow::Result<Run> {
    let stats = store.stats();
    let counts = || {
        (
            stats.commits.load(Ordering::Relaxed),
            stats.writes.load(Ordering::Relaxed),
            stats.log_syncs.load(Ordering::Relaxed),
        )
    };
    let (c0, w0, s0) = counts();
    let seats = 2 * args.holds;
    let name = if single {
        "one commit"
    } else {
        "three commits"
    };
    let s = store.clone();
    let (phase, _) = crate::phase(name, args.holds, args.concurrency, move |i| {
        let s = s.clone();
        async move { one_hold(&s, offset + i, seats, single).await }
    })
    .await?;
    let (c1, w1, s1) = counts();
    Ok(Run {
        phase,
        commits: c1 - c0,
        writes: w1 - w0,
        syncs: s1 - s0,
    })
}

pub async fn floor(args: FloorArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(EmbeddedStore::open(dir.path(), Arc::new(Clock::system()))?);
    seed(&store, 2 * args.holds)
        .await
        .context("seeding seats")?;
    println!(
        "floor: {} holds straight into the embedded store, {} concurrent, no component, no HTTP",
        args.holds, args.concurrency
    );
    let three = run(&store, &args, 0, false).await?;
    let one = run(&store, &args, args.holds, true).await?;
    for (name, r) in [
        ("three commits, one wait (today)", &three),
        ("one commit, one wait", &one),
    ] {
        let p = &r.phase;
        // The store runs in this process: its CPU is the load's.
        println!(
            "  {name:<32} {:>7.0} holds/s   p50 {:>6.2} ms   p99 {:>6.2} ms   {:>5.1} µs CPU/hold   {} writes in {} commits ({:.1} per commit), {} log syncs",
            p.rate(),
            p.percentile(0.50).as_secs_f64() * 1e3,
            p.percentile(0.99).as_secs_f64() * 1e3,
            p.cpu.load * 1e6 / p.requests.max(1) as f64,
            r.writes,
            r.commits,
            r.writes as f64 / r.commits.max(1) as f64,
            r.syncs
        );
    }
    println!(
        "  one commit / three commits = {:.2}x holds/s",
        one.phase.rate() / three.phase.rate()
    );
    Ok(())
}
