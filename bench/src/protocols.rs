//! `tacos-bench protocols`: the same calls over REST/JSON and over gRPC,
//! against one host in one run: queue status (a read through a component)
//! and a seat hold (a durable write that crosses reservation and
//! inventory). Both protocols reach the same component with the same
//! protobuf bytes; gRPC skips the JSON mapping, REST skips HTTP/2 framing.
//!
//! Both clients run in this process on `--concurrency` workers: REST over
//! that many HTTP/1.1 connections, gRPC over `--grpc-connections` HTTP/2
//! connections shared round-robin (one by default, as a gRPC client keeps
//! one channel). Rounds
//! alternate the protocols; the median round is reported with the ratio
//! gRPC / REST.

use crate::{
    Http, Phase, bearer, client, enter_phase, join_phase, phase, send, send_as, spawn_host,
};
use anyhow::{Context, bail};
use serde_json::json;
use std::sync::Arc;
use tacos_proto::gateway::v1::GetQueueStatusRequest;
use tacos_proto::gateway::v1::queue_service_client::QueueServiceClient;
use tacos_proto::reservation::v1::CreateReservationRequest;
use tacos_proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use tonic::transport::Channel;

#[derive(Debug, clap::Args)]
pub struct ProtocolsArgs {
    /// Queue-status requests per protocol per round.
    #[arg(long, default_value_t = 40_000)]
    reads: usize,
    /// Holds per protocol per round (each by a different admitted user).
    #[arg(long, default_value_t = 3_000)]
    holds: usize,
    /// Requests in flight at once, for both protocols.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// HTTP/2 connections the gRPC client spreads its calls over (one
    /// channel, as gRPC clients usually keep).
    #[arg(long, default_value_t = 1)]
    grpc_connections: usize,
    /// Rounds; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// What the workers share.
struct Ctx {
    http: Http,
    url: String,
    channels: Vec<Channel>,
    secret: String,
    waiting_token: String,
    tokens: Vec<String>,
}

impl Ctx {
    fn channel(&self, i: usize) -> Channel {
        self.channels[i % self.channels.len()].clone()
    }
}

pub async fn protocols(args: ProtocolsArgs) -> anyhow::Result<()> {
    if args.rounds == 0 || args.concurrency == 0 || args.grpc_connections == 0 {
        bail!("rounds, concurrency and grpc-connections must be at least 1");
    }
    let (host, url) = spawn_host()?;
    let http = client(args.concurrency);
    let users = args.holds * 2 * args.rounds;
    let (s, b) = send(
        &http,
        "POST",
        &format!("{url}/admin/v1/events"),
        Some(
            &json!({"event_id": "p", "name": "Protocols", "seat_count": users,
                     "price": {"amount": 1000, "currency": "KRW"}, "admission_per_second": users}),
        ),
    )
    .await?;
    if s != 200 {
        bail!("creating the event: {s} {b}");
    }

    // Unmeasured: every user joins and is admitted.
    let (_, waiting) = join_phase(&http, &url, "p", users, args.concurrency).await?;
    let (s, b) = send(
        &http,
        "POST",
        &format!("{url}/admin/v1/clock/advance"),
        Some(&json!({"seconds": 1})),
    )
    .await?;
    if s != 200 {
        bail!("advancing the clock: {s} {b}");
    }
    let waiting_token = waiting[0].clone();
    let (_, tokens) = enter_phase(&http, &url, waiting, args.concurrency).await?;

    let mut channels = Vec::new();
    for _ in 0..args.grpc_connections {
        channels.push(
            Channel::from_shared(url.clone())?
                .connect()
                .await
                .context("connecting over gRPC")?,
        );
    }
    let ctx = Arc::new(Ctx {
        http,
        url: url.clone(),
        channels,
        secret: host.jwt_secret.clone(),
        waiting_token,
        tokens,
    });

    let mut results: Vec<[Phase; 4]> = Vec::new();
    for round in 0..args.rounds {
        let base = round * args.holds * 2;
        let rest_first = round % 2 == 0;
        let mut phases = Vec::new();
        for rest in [rest_first, !rest_first] {
            let offset = base + if rest { 0 } else { args.holds };
            let read = read_phase(&ctx, rest, args.reads, args.concurrency).await?;
            let hold = hold_phase(&ctx, rest, offset, args.holds, args.concurrency).await?;
            phases.push((rest, read, hold));
        }
        phases.sort_by_key(|(rest, _, _)| !*rest);
        let mut it = phases.into_iter();
        let ((_, rest_read, rest_hold), (_, grpc_read, grpc_hold)) = (
            it.next().context("REST phases")?,
            it.next().context("gRPC phases")?,
        );
        results.push([rest_read, grpc_read, rest_hold, grpc_hold]);
    }
    drop(host);

    println!(
        "protocols: one host, {} in flight (REST: {} HTTP/1.1 connections; gRPC: {} HTTP/2 connections), {} rounds, median shown",
        args.concurrency, args.concurrency, args.grpc_connections, args.rounds
    );
    let median = |i: usize| {
        let mut round: Vec<&[Phase; 4]> = results.iter().collect();
        round.sort_by(|a, b| a[i].rate().total_cmp(&b[i].rate()));
        &round[round.len() / 2][i]
    };
    for (name, rest, grpc) in [("queue status", 0, 1), ("hold", 2, 3)] {
        let (r, g) = (median(rest), median(grpc));
        r.print();
        g.print();
        println!(
            "  {:<10} gRPC / REST = {:.2}x requests/s, p99 {:.2}x",
            name,
            g.rate() / r.rate(),
            g.percentile(0.99).as_secs_f64() / r.percentile(0.99).as_secs_f64()
        );
    }
    Ok(())
}

async fn read_phase(
    ctx: &Arc<Ctx>,
    rest: bool,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Phase> {
    let ctx = ctx.clone();
    let name = if rest { "REST read" } else { "gRPC read" };
    let (p, _) = phase(name, n, concurrency, move |i| {
        let ctx = ctx.clone();
        async move {
            if rest {
                let url = format!(
                    "{}/api/v1/queue/status?token={}",
                    ctx.url, ctx.waiting_token
                );
                let (s, b) = send(&ctx.http, "GET", &url, None).await?;
                if s != 200 {
                    bail!("queue status: {s} {b}");
                }
            } else {
                QueueServiceClient::new(ctx.channel(i))
                    .get_queue_status(GetQueueStatusRequest {
                        waiting_token: ctx.waiting_token.clone(),
                    })
                    .await
                    .context("gRPC queue status")?;
            }
            Ok(())
        }
    })
    .await?;
    Ok(p)
}

async fn hold_phase(
    ctx: &Arc<Ctx>,
    rest: bool,
    offset: usize,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Phase> {
    let ctx = ctx.clone();
    let name = if rest { "REST hold" } else { "gRPC hold" };
    let (p, _) = phase(name, n, concurrency, move |i| {
        let ctx = ctx.clone();
        async move {
            let user = offset + i;
            let (user_id, seat) = (format!("u{user}"), format!("A-{}", user + 1));
            let auth = bearer(&ctx.secret, &user_id)?;
            if rest {
                let body = json!({"event_id": "p", "seat_ids": [seat], "user_id": user_id,
                                  "reservation_token": ctx.tokens[user], "idempotency_key": format!("h{user}")});
                let url = format!("{}/api/v1/reservations", ctx.url);
                let (s, b) = send_as(&ctx.http, Some(&auth), "POST", &url, Some(&body)).await?;
                if s != 200 {
                    bail!("REST hold: {s} {b}");
                }
            } else {
                let mut req = tonic::Request::new(CreateReservationRequest {
                    event_id: "p".into(),
                    seat_ids: vec![seat],
                    user_id,
                    reservation_token: ctx.tokens[user].clone(),
                    idempotency_key: format!("h{user}"),
                    ..Default::default()
                });
                req.metadata_mut().insert("authorization", auth.parse()?);
                ReservationServiceClient::new(ctx.channel(i))
                    .create_reservation(req)
                    .await
                    .context("gRPC hold")?;
            }
            Ok(())
        }
    })
    .await?;
    Ok(p)
}
