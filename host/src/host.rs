//! A running host, assembled: store, clock, tenant, runtime, queue dispatcher,
//! edge. `tacos up` and the integration tests start hosts the same way.

use crate::bundle::{BUILT_COMPONENTS_DIR, Bundle};
use crate::edge::conn::ConnLimits;
use crate::edge::limits::RateLimits;
use crate::edge::{Edge, Shared};
use crate::foundations::auth::{Auth, AuthOptions};
use crate::foundations::clock::{Clock, system_now_ms};
use crate::queue::Dispatcher;
use crate::runtime::{Runtime, RuntimeParts, Settings};
use crate::store::open::Stores;
use crate::sync::Sync;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Where a host listening off loopback keeps the admin token it made.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The admin token a host on `listen` requires, and a line saying so.
///
/// The configured token (at least 16 bytes), else: on loopback none (the
/// admin API is open to this machine's processes, as for a developer's
/// host); off loopback one made at `<data-dir>/admin-token` (owner-only) on
/// first start, so the admin API is never open on a network.
pub fn admin_token(
    configured: Option<String>,
    listen: SocketAddr,
    data_dir: &std::path::Path,
) -> anyhow::Result<(Option<String>, String)> {
    match configured {
        Some(t) if t.len() < 16 => anyhow::bail!("the admin token must be at least 16 bytes"),
        Some(t) => Ok((Some(t), "token required (as configured)".into())),
        None if listen.ip().is_loopback() => Ok((
            None,
            "open to this machine (loopback; set --admin-token to require one)".into(),
        )),
        None => {
            let path = data_dir.join(ADMIN_TOKEN_FILE);
            let token = crate::foundations::auth::stored_secret(&path)?;
            Ok((
                Some(token),
                format!(
                    "token required, in {} (TACOS_ADMIN_TOKEN=$(cat …) for the CLI)",
                    path.display()
                ),
            ))
        }
    }
}

/// How to start a host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// A bundle manifest; the built-in default bundle when `None`.
    pub bundle: Option<PathBuf>,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub virtual_clock: bool,
    /// Compiled-component cache; `<data-dir>/compiled` when `None`.
    pub cache_dir: Option<PathBuf>,
    /// Where `{components}` in a bundle points; the build's output when `None`.
    pub components_dir: Option<PathBuf>,
    /// Required as a bearer token on admin routes when set.
    pub admin_token: Option<String>,
    /// Create the bundle's demo events at start-up.
    pub seed_events: bool,
    /// Swap a service when its component file changes (`tacos up --watch`).
    pub watch: bool,
    /// How end-user bearer tokens are verified.
    pub auth: AuthOptions,
    /// How long a response to an `Idempotency-Key` is kept for replay.
    pub idempotency_window: Duration,
    /// Token buckets per client IP and user, by route class.
    pub rate_limits: RateLimits,
    /// Open connections and their timeouts.
    pub connections: ConnLimits,
    /// Proxies whose `x-forwarded-for` names the client (none: the TCP peer
    /// is the client).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve the demo sign-in (`POST /api/v1/demo/sign-in`): `None` means
    /// only on a loopback listener with no trusted proxy in front.
    pub demo_sign_in: Option<bool>,
    /// CA certificates (PEM) that `https://` webhooks trust besides the
    /// system's roots.
    pub webhook_ca: Option<PathBuf>,
}

impl HostOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> HostOptions {
        HostOptions {
            bundle: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: data_dir.into(),
            virtual_clock: false,
            cache_dir: None,
            components_dir: None,
            admin_token: None,
            seed_events: true,
            watch: false,
            auth: AuthOptions::default(),
            idempotency_window: Duration::from_secs(300),
            rate_limits: RateLimits::default(),
            connections: ConnLimits::default(),
            trusted_proxies: Vec::new(),
            demo_sign_in: None,
            webhook_ca: None,
        }
    }
}

/// A started host. Dropping it stops its tasks.
pub struct Host {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    pub bundle: Bundle,
    tasks: Vec<JoinHandle<()>>,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

impl Drop for Host {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Host {
    pub async fn start(opts: HostOptions) -> anyhow::Result<Host> {
        let components_dir = opts
            .components_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(BUILT_COMPONENTS_DIR));
        let bundle = match &opts.bundle {
            Some(path) => Bundle::open(path, &components_dir, &opts.data_dir.join("bundles"))?,
            None => Bundle::builtin(&components_dir)?,
        };
        let clock = Arc::new(if opts.virtual_clock {
            Clock::virtual_at(system_now_ms())
        } else {
            Clock::system()
        });
        let stores = Stores::open(&bundle.store, &opts.data_dir, clock.clone()).await?;
        let store = stores.kv.clone();
        if opts.virtual_clock {
            // Virtual time continues where it stopped, so due times keep their meaning.
            match store
                .meta_get(crate::foundations::clock::VIRTUAL_NOW_KEY)
                .await?
            {
                Some(raw) => {
                    let bytes: [u8; 8] = raw
                        .as_slice()
                        .try_into()
                        .context("corrupt virtual clock record")?;
                    clock.set(u64::from_le_bytes(bytes));
                }
                None => {
                    store
                        .meta_put(
                            crate::foundations::clock::VIRTUAL_NOW_KEY,
                            clock.now_ms().to_le_bytes().to_vec(),
                        )
                        .await?
                }
            }
        }
        let listener = TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("listening on {}", opts.listen))?;
        let addr = listener.local_addr()?;
        let runtime = Runtime::new(
            &bundle,
            RuntimeParts {
                kv: stores.kv.clone(),
                queue: stores.queue.clone(),
                clock,
                settings: Settings {
                    public_url: format!("http://{addr}"),
                },
                cache_dir: opts
                    .cache_dir
                    .clone()
                    .unwrap_or_else(|| opts.data_dir.join("compiled")),
                http: crate::capabilities::webhook::http_client(opts.webhook_ca.as_deref())?,
            },
        )?;
        runtime.self_check_all().await?;
        for spec in &bundle.tenants {
            runtime
                .apply_tenant(spec.clone())
                .await
                .map_err(|e| anyhow::anyhow!("bundle {}: {e}", bundle.origin))?;
        }
        let (auth, auth_summary) = Auth::new(&opts.auth, &opts.data_dir)?;
        let (admin_token, admin_summary) =
            admin_token(opts.admin_token.clone(), addr, &opts.data_dir)?;
        let dispatcher = Dispatcher::start(runtime.clone());
        let (live, live_task) = crate::live::Live::start(runtime.clone());
        let sync = match stores.shared() {
            true => Some(Arc::new(Sync::start(stores.kv.clone()).await?)),
            false => None,
        };
        let shared = Arc::new(Shared {
            auth,
            auth_summary,
            idempotency_window: opts.idempotency_window,
            rate_limits: opts.rate_limits.clone(),
            connections: opts.connections.clone(),
            trusted_proxies: opts.trusted_proxies.clone(),
            runtime: runtime.clone(),
            dispatcher,
            live,
            stores: stores.clone(),
            admin_token,
            admin_summary,
            seed_events: opts.seed_events,
            demo_sign_in: opts
                .demo_sign_in
                .unwrap_or(addr.ip().is_loopback() && opts.trusted_proxies.is_empty()),
            sync: sync.clone(),
        });
        let (shutdown, stop) = tokio::sync::watch::channel(false);
        let mut tasks = vec![tokio::spawn(
            Edge::new(shared.clone()).await?.serve(listener, stop),
        )];
        tasks.push(tokio::spawn(stores.maintain()));
        tasks.push(live_task);
        if let Some(sync) = sync {
            tasks.push(tokio::spawn(crate::edge::sync::run(shared.clone(), sync)));
        }
        if opts.watch {
            let files = bundle
                .services
                .iter()
                .map(|s| (s.name.clone(), s.component.clone()))
                .collect();
            tasks.push(crate::runtime::watch::spawn(runtime.clone(), files));
        }
        let host = Host {
            addr,
            shared,
            bundle,
            tasks,
            _shutdown: shutdown,
        };
        if opts.seed_events {
            for tenant in host.runtime().tenants().all() {
                host.runtime().seed_events(tenant).await?;
            }
        }
        Ok(host)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.shared.runtime
    }
}
