//! `tacos-bench`: the benchmarks, outside the production binary.
//!
//! `tacos-bench flash-sale …` and the others start the hosts they measure
//! from this same binary (`tacos-bench host up …` runs `tacos up`), so one
//! build measures exactly the host code it links.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tacos_bench::{flash_sale, floor, live, protocols, route, stores, swap, tenants};

#[derive(Debug, Parser)]
#[command(name = "tacos-bench", version, about = "Measure a tacos host")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// The whole ticket flow: joins/s, holds/s, confirms/s, latency, RSS, oversell check.
    FlashSale(flash_sale::FlashSaleArgs),
    /// A hold's reads and writes straight into the embedded store (no component, no HTTP): the floor of a hold.
    Floor(floor::FloorArgs),
    /// Requests/s of a trivial route through a component vs. `wasmtime serve` and hyper.
    Route(route::RouteArgs),
    /// Swap latency (cold and warm cache) and the load's p99 during swaps vs. without.
    Swap(swap::SwapArgs),
    /// The same read and hold over REST/JSON and gRPC, in one run.
    Protocols(protocols::ProtocolsArgs),
    /// Start-up and memory with 1, 100, 1,000 tenants; holds on 1 tenant vs spread over 100; a quiet tenant beside a looping and a hoarding one.
    Tenants(tenants::TenantsArgs),
    /// Holds/s, p99 and store requests per hold on embedded, Redis, Redis + DynamoDB, and 3 hosts on Redis.
    Stores(stores::StoresArgs),
    /// 10,000 waiting-room sockets on one host: memory per socket, admission-to-push delay, host CPU against polling.
    Live(live::LiveArgs),
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| "tacos-bench".into());
    let rest: Vec<_> = args.collect();
    if rest.first().is_some_and(|a| a == tacos_bench::HOST_VERB) {
        return tacos_host::cli::main_from(
            std::iter::once(program).chain(rest.into_iter().skip(1)),
        );
    }
    let cli = Cli::parse_from(std::iter::once(program).chain(rest));
    tacos_host::cli::run(async {
        match cli.bench {
            Bench::FlashSale(args) => flash_sale::flash_sale(args).await,
            Bench::Floor(args) => floor::floor(args).await,
            Bench::Route(args) => route::route(args).await,
            Bench::Swap(args) => swap::swap(args).await,
            Bench::Protocols(args) => protocols::protocols(args).await,
            Bench::Tenants(args) => tenants::tenants(args).await,
            Bench::Stores(args) => stores::stores(args).await,
            Bench::Live(args) => live::live(args).await,
        }
    })
}
