//! The command line: `tacos up` runs a host; `tacos services`, `swap`,
//! `rollback`, `tenants` and `tenant` inspect and change a running one; `tacos bundle pack` makes a portable
//! bundle. The benchmarks are not here but in `tacos-bench` (the `bench/`
//! crate), so this binary carries no load generator.

mod ops;
mod store;
mod tenants;

use crate::foundations::auth::{self, AuthOptions};
use crate::host::{Host, HostOptions};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "tacos",
    version,
    about = "Run the ticketing services as sandboxed WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a host: the bundle's components behind the REST/JSON and gRPC edge.
    Up(UpArgs),
    /// List a running host's services: version, since when, calls.
    Services(ops::ServicesArgs),
    /// Replace a running service's component or config, with every check.
    Swap(ops::SwapArgs),
    /// Return a running service to the version it ran before its last swap.
    Rollback(ops::RollbackArgs),
    /// List the tenants of a running host: calls, quota refusals, storage, own services.
    Tenants(tenants::TenantsArgs),
    /// Add, change or remove a tenant of a running host.
    #[command(subcommand)]
    Tenant(tenants::TenantCommand),
    /// Work with bundles.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Prepare the store backends a bundle names (`tacos store init`).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Mint a development bearer token (HS256) for a user.
    Token(TokenArgs),
}

/// Where end-user tokens are verified (shared by `up` and `token`).
#[derive(Debug, clap::Args)]
struct AuthArgs {
    /// HS256 secret for end-user JWTs, at least 16 bytes (default: a random
    /// secret kept in <data-dir>/jwt-secret).
    #[arg(
        long,
        value_name = "SECRET",
        env = "TACOS_JWT_SECRET",
        hide_env_values = true
    )]
    jwt_secret: Option<String>,
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The user id (the token's subject).
    #[arg(long, value_name = "USER")]
    user: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    ttl: u64,
    /// The tenant the user belongs to (a `tenant` claim); `default` when unset.
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// The data dir of the host whose generated secret to use.
    #[arg(long, default_value = "./.tacos", value_name = "DIR")]
    data_dir: PathBuf,
    #[command(flatten)]
    auth: AuthArgs,
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Pack a bundle (a directory with bundle.toml, or a manifest) into one archive.
    Pack(PackArgs),
}

#[derive(Debug, clap::Args)]
struct PackArgs {
    /// The bundle directory (with `bundle.toml`) or manifest file.
    #[arg(value_name = "DIR|FILE")]
    bundle: PathBuf,
    /// The archive to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Bundle: a manifest, a directory with `bundle.toml`, or an archive from
    /// `tacos bundle pack` (default: the built-in bundle of the five services).
    #[arg(long, value_name = "FILE|DIR")]
    bundle: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000", value_name = "ADDR")]
    listen: SocketAddr,
    /// Where state lives (the embedded store, the compiled-component cache).
    #[arg(long, default_value = "./.tacos", value_name = "DIR")]
    data_dir: PathBuf,
    /// Run on a virtual clock that only POST /admin/v1/clock/advance moves.
    #[arg(long)]
    virtual_clock: bool,
    /// Compiled-component cache (default: <data-dir>/compiled).
    #[arg(long, value_name = "DIR", env = "TACOS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Require `Authorization: Bearer <token>` on admin routes (at least 16
    /// bytes). Off loopback a host without one makes one in <data-dir>/admin-token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "TACOS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Do not create the bundle's demo events.
    #[arg(long)]
    no_demo: bool,
    /// Let anyone get a user token by naming a user (`POST /api/v1/demo/sign-in`,
    /// the web app's sign-in): `auto` = only on a loopback listener with no
    /// trusted proxy.
    #[arg(long, value_name = "auto|on|off", default_value = "auto", value_parser = ["auto", "on", "off"])]
    demo_sign_in: String,
    /// Swap a service when its component file changes on disk (same checks as `tacos swap`).
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    auth: AuthArgs,
    /// A JWKS file of RS256/ES256 public keys for end-user JWTs (keys picked by `kid`).
    #[arg(long, value_name = "FILE", env = "TACOS_JWKS")]
    jwks: Option<PathBuf>,
    /// Require this `iss` claim in end-user JWTs.
    #[arg(long, value_name = "ISSUER", env = "TACOS_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Require this `aud` claim in end-user JWTs.
    #[arg(long, value_name = "AUDIENCE", env = "TACOS_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Rate limit per client IP and per user: CLASS=RPS/BURST or CLASS=off, for
    /// queue, inventory, reservation, payment, webhook or all (repeatable;
    /// default 50/100 for every class).
    #[arg(
        long = "rate-limit",
        value_name = "CLASS=RPS/BURST",
        env = "TACOS_RATE_LIMITS",
        value_delimiter = ','
    )]
    rate_limits: Vec<String>,
    /// A proxy (address or CIDR) whose `x-forwarded-for` names the client
    /// for the per-IP limits (repeatable); from anyone else the header is ignored.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        env = "TACOS_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// At most this many open connections; one more is answered 503 and closed.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_connections: usize,
    /// How long a response to an `Idempotency-Key` is replayed, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    idempotency_window: u64,
    /// CA certificates (PEM) that `https://` webhooks trust besides the
    /// system's roots (a receiver with a private CA).
    #[arg(long, value_name = "FILE", env = "TACOS_WEBHOOK_CA")]
    webhook_ca: Option<PathBuf>,
}

pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// [`main`] on the given arguments (the first is the program name): how
/// `tacos-bench` runs the hosts it measures from its own binary.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    init_logging();
    run(async {
        match cli.command {
            Command::Up(args) => up(args).await,
            Command::Services(args) => ops::services(args).await,
            Command::Swap(args) => ops::swap(args).await,
            Command::Rollback(args) => ops::rollback(args).await,
            Command::Tenants(args) => tenants::tenants(args).await,
            Command::Tenant(cmd) => tenants::tenant(cmd).await,
            Command::Bundle(BundleCommand::Pack(args)) => {
                let hashes = crate::bundle::pack::pack(
                    &args.bundle,
                    &std::path::PathBuf::from(crate::bundle::BUILT_COMPONENTS_DIR),
                    &args.output,
                )?;
                println!("packed {} ({} files)", args.output.display(), hashes.len());
                for (file, hash) in hashes {
                    println!("  {} {file}", &hash[..12]);
                }
                Ok(())
            }
            Command::Store(cmd) => store::store(cmd).await,
            Command::Token(args) => token(args),
        }
    })
}

/// Run a command's future on a multi-threaded runtime; its error is printed
/// and makes the exit code a failure (also `tacos-bench`'s).
pub fn run(command: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let secret = match args.auth.jwt_secret {
        Some(s) => s,
        None => auth::dev_secret(&args.data_dir)?,
    };
    let now = crate::foundations::clock::system_now_ms() / 1000;
    let tenant = args
        .tenant
        .as_deref()
        .filter(|t| *t != crate::tenancy::DEFAULT_TENANT);
    println!(
        "{}",
        auth::mint_for(&secret, tenant, &args.user, now, args.ttl)?
    );
    Ok(())
}

/// The URL in the first line `tacos up` prints, for tools that start a host.
pub fn banner_url(line: &str) -> Option<String> {
    let url = line.split(" on ").nth(1)?.split_whitespace().next()?;
    url.starts_with("http://").then(|| url.to_string())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TACOS_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let mut opts = HostOptions::new(args.data_dir);
    opts.bundle = args.bundle;
    opts.listen = args.listen;
    opts.virtual_clock = args.virtual_clock;
    opts.cache_dir = args.cache_dir;
    opts.admin_token = args.admin_token;
    opts.seed_events = !args.no_demo;
    opts.demo_sign_in = match args.demo_sign_in.as_str() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    };
    opts.watch = args.watch;
    opts.webhook_ca = args.webhook_ca;
    opts.idempotency_window = std::time::Duration::from_secs(args.idempotency_window);
    for proxy in &args.trusted_proxies {
        let net = proxy
            .parse::<ipnet::IpNet>()
            .or_else(|_| proxy.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| anyhow::anyhow!("--trusted-proxy `{proxy}` is not an address or CIDR"))?;
        opts.trusted_proxies.push(net);
    }
    opts.connections.max_connections = args.max_connections.max(1);
    for setting in &args.rate_limits {
        opts.rate_limits
            .set(setting)
            .map_err(|e| anyhow::anyhow!("--rate-limit {e}"))?;
    }
    opts.auth = AuthOptions {
        secret: args.auth.jwt_secret,
        jwks: args.jwks,
        issuer: args.jwt_issuer,
        audience: args.jwt_audience,
    };
    let started = std::time::Instant::now();
    let host = Host::start(opts.clone()).await?;
    let url = host.url();
    println!(
        "tacos {} serving {} on {url} ({} ms to start)",
        env!("CARGO_PKG_VERSION"),
        host.bundle.origin,
        started.elapsed().as_millis()
    );
    println!("  data dir   {}", opts.data_dir.display());
    println!(
        "  store      {}",
        host.shared.stores.summary(&host.bundle.store)
    );
    println!(
        "  clock      {}",
        if opts.virtual_clock {
            "virtual (POST /admin/v1/clock/advance)"
        } else {
            "system"
        }
    );
    println!("  auth       {}", host.shared.auth_summary);
    println!("  admin      {}", host.shared.admin_summary);
    println!("  limits     {}", host.shared.rate_limits.summary());
    if !host.shared.trusted_proxies.is_empty() {
        let proxies: Vec<String> = host
            .shared
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        println!(
            "  proxies    client IP from x-forwarded-for of {}",
            proxies.join(", ")
        );
    }
    for slot in host.runtime().slots() {
        let v = slot.current.load();
        println!(
            "  {:<12} {}  serves {}",
            slot.name,
            v.short_hash(),
            slot.serves.join(", ")
        );
        if !slot.consumes.is_empty() {
            println!(
                "  {:<12} {:12}  consumes {}",
                "",
                "",
                slot.consumes.join(", ")
            );
        }
    }
    let tenants = host.runtime().tenants();
    let all = tenants.all();
    let shown: Vec<&str> = all.iter().take(8).map(|t| t.id.as_str()).collect();
    println!(
        "  tenants    {}{} (pick one with x-tenant-id, TENANT.<host name> or a token's tenant claim)",
        shown.join(", "),
        if all.len() > shown.len() {
            format!(" and {} more", all.len() - shown.len())
        } else {
            String::new()
        }
    );
    if opts.seed_events
        && let Some(t) = all.first()
    {
        for e in &t.events {
            let header = if t.id == crate::tenancy::DEFAULT_TENANT {
                String::new()
            } else {
                format!("-H 'x-tenant-id: {}' ", t.id)
            };
            println!(
                "  demo event `{}`: {} seats; try: curl -s {header}{url}/api/v1/events/{}/seats",
                e.event_id, e.seat_count, e.event_id
            );
        }
    }
    println!(
        "  web        {url}/ (buyers; demo sign-in {}), {url}/console (operators)",
        if host.shared.demo_sign_in {
            "on"
        } else {
            "off"
        }
    );
    println!("ready; Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}
