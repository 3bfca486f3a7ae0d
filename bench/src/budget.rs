//! A phase's host time per request, stage by stage (issue #17), from the
//! host's own counters: `tacos_stage_seconds_total{stage}` at `/metrics`
//! and the store writer's figures at `/readyz`, read before and after the
//! phase, beside the host's CPU from `/proc`.
//!
//! The stages nest (see the host's `foundations/metrics/stages.rs`); the
//! budget prints them exclusive: host calls without their store reads,
//! commit waits and nested rpcs, admission without auth. What no stage covers
//! (hyper's parsing and writing, sockets, the scheduler, the store writer's
//! page writes) is the rest of the host's CPU.

use crate::cpu::CpuUse;
use crate::{Http, send};
use std::collections::BTreeMap;

/// The host's stage and store-writer counters at one moment, seconds.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    stages: BTreeMap<String, f64>,
    entered: BTreeMap<String, f64>,
    /// The store writer's numeric figures at `/readyz` (`commits`,
    /// `commit_seconds`, `log_syncs`, ...).
    writer: BTreeMap<String, f64>,
}

/// Read the counters of the host at `url`.
pub async fn read(http: &Http, url: &str) -> anyhow::Result<Counters> {
    let text = metrics_text(http, &format!("{url}/metrics")).await?;
    let family = |prefix: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|l| {
                let (name, rest) = l.split_once("\"}")?;
                Some((name.to_string(), rest.trim().parse().ok()?))
            })
            .collect()
    };
    let stages = family("tacos_stage_seconds_total{stage=\"");
    let entered = family("tacos_stage_entered_total{stage=\"");
    let (_, ready) = send(http, "GET", &format!("{url}/readyz"), None).await?;
    let writer = ready["store"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect();
    Ok(Counters {
        stages,
        entered,
        writer,
    })
}

async fn metrics_text(http: &Http, url: &str) -> anyhow::Result<String> {
    use http_body_util::BodyExt;
    let req = hyper::Request::get(url).body(http_body_util::Full::new(bytes::Bytes::new()))?;
    let body = http.request(req).await?.into_body().collect().await?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

/// What a phase of `ops` requests cost, µs per request, by stage.
pub struct Budget {
    /// (line, µs per request), in the order printed.
    pub lines: Vec<(&'static str, f64)>,
    /// The store writer committing (page writes and fsync), µs per request
    /// (wall time of the writer thread: CPU and waiting for the disk).
    pub writer_commit_us: f64,
    /// Of it, the durable commits.
    pub writer_durable_us: f64,
    /// The redo log: bytes appended and `fdatasync` time (wall, its own
    /// thread) per request.
    pub log_bytes: f64,
    pub log_sync_us: f64,
    /// Waiting for group commits, ms per request (latency, not CPU).
    pub commit_wait_ms: f64,
    /// Waiting for them to be durable, ms per request.
    pub durable_wait_ms: f64,
    pub host_us: Option<f64>,
    /// How often per request: (what, times).
    pub counts: Vec<(&'static str, f64)>,
}

impl Budget {
    pub fn between(before: &Counters, after: &Counters, ops: usize, cpu: &CpuUse) -> Budget {
        let per = |s: f64| s * 1e6 / ops.max(1) as f64;
        let stage = |name: &str| {
            per(after.stages.get(name).copied().unwrap_or(0.0)
                - before.stages.get(name).copied().unwrap_or(0.0))
        };
        let entered = |name: &str| {
            (after.entered.get(name).copied().unwrap_or(0.0)
                - before.entered.get(name).copied().unwrap_or(0.0))
                / ops.max(1) as f64
        };
        let writer = |name: &str| {
            after.writer.get(name).copied().unwrap_or(0.0)
                - before.writer.get(name).copied().unwrap_or(0.0)
        };
        let counts = vec![
            ("instances", entered("instantiate")),
            ("host calls", entered("host_calls")),
            ("store reads", entered("store_read")),
            ("commits", entered("commit_wait")),
            ("rpcs", entered("rpc")),
            ("writer commits", writer("commits") / ops.max(1) as f64),
            (
                "of them durable",
                writer("durable_commits") / ops.max(1) as f64,
            ),
            ("log syncs", writer("log_syncs") / ops.max(1) as f64),
        ];
        let host_calls =
            stage("host_calls") - stage("store_read") - stage("commit_wait") - stage("rpc");
        let mut lines = vec![
            (
                "admission: tenant, limits, quotas",
                stage("admission") - stage("auth"),
            ),
            ("auth: the caller's token", stage("auth")),
            ("decode: JSON → protobuf, caller bound", stage("decode")),
            ("idempotency (edge records)", stage("idempotency")),
            ("instantiate: store and instance", stage("instantiate")),
            ("guest code", stage("guest")),
            ("host calls (without the next)", host_calls),
            ("store reads", stage("store_read")),
            ("teardown: instance reset", stage("teardown")),
            ("encode: protobuf → JSON", stage("encode")),
            (
                "store writer: applying writes",
                per(writer("apply_seconds")),
            ),
        ];
        let host_us = cpu.host_us_per(ops);
        if let Some(host) = host_us {
            let counted: f64 = lines.iter().map(|(_, us)| us).sum();
            lines.push((
                "the rest: hyper, sockets, scheduler, commits",
                host - counted,
            ));
        }
        Budget {
            lines,
            writer_commit_us: per(writer("commit_seconds")),
            writer_durable_us: per(writer("durable_commit_seconds")),
            log_bytes: writer("log_bytes") / ops.max(1) as f64,
            log_sync_us: per(writer("log_sync_seconds")),
            commit_wait_ms: stage("commit_wait") / 1000.0,
            durable_wait_ms: stage("durable") / 1000.0,
            host_us,
            counts,
        }
    }

    pub fn print(&self, name: &str) {
        match self.host_us {
            Some(us) => {
                println!("  {name} budget: {us:.1} µs of host CPU per request, by stage (µs):")
            }
            None => println!("  {name} budget by stage (µs per request; host CPU unknown):"),
        }
        for (line, us) in &self.lines {
            println!("    {line:<40} {us:>8.1}");
        }
        println!(
            "    {:<40} {:>8.1} (writer thread, wall: CPU and disk; {:.1} of it durable)",
            "store writer: committing", self.writer_commit_us, self.writer_durable_us
        );
        println!(
            "    {:<40} {:>8.1} (syncer thread, wall; {:.0} bytes appended)",
            "redo log: fdatasync", self.log_sync_us, self.log_bytes
        );
        println!(
            "    {:<40} {:>8.2} ms (latency, not CPU)",
            "a request waiting for group commits", self.commit_wait_ms
        );
        println!(
            "    {:<40} {:>8.2} ms (latency, not CPU)",
            "a request waiting for durability", self.durable_wait_ms
        );
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(what, n)| format!("{n:.1} {what}"))
            .collect();
        println!("    per request: {}", counts.join(", "));
    }
}
