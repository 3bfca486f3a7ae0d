//! Test harness: a real host (real components, real store, real sockets) on a
//! virtual clock, and a small JSON client.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tacos_host::host::{Host, HostOptions};

pub mod cluster;
pub mod swaps;
pub mod tenants;
pub mod ws;

pub type Http = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// Compiled components are shared by all tests (wasmtime's cache is safe to share).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("component-cache")
}

pub fn http() -> Http {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

pub struct TestHost {
    pub host: Host,
    /// Requests of the host's `default` tenant (or of the one a test picks
    /// with [`Client::tenant`]).
    pub client: Client,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for TestHost {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A JSON client of one host, as one tenant.
#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub http: Http,
    pub tenant: Option<String>,
    clock: std::sync::Arc<tacos_host::foundations::clock::Clock>,
}

pub fn options(dir: &std::path::Path) -> HostOptions {
    let mut opts = HostOptions::new(dir);
    opts.listen = "127.0.0.1:0".parse().unwrap();
    opts.virtual_clock = true;
    opts.cache_dir = Some(cache_dir());
    opts.seed_events = false;
    opts.auth.secret = Some(JWT_SECRET.into());
    // Every test client is 127.0.0.1 on a frozen clock; tests/limits.rs
    // turns the limits on.
    opts.rate_limits = tacos_host::edge::limits::RateLimits::off();
    opts
}

/// The HS256 secret test hosts verify end-user tokens with.
pub const JWT_SECRET: &str = "tacos-test-secret-0123456789";

/// `Bearer …` for `user`, signed with [`JWT_SECRET`], valid a day from `now_s`.
pub fn bearer_at(now_s: u64, user: &str) -> String {
    let token = tacos_host::foundations::auth::mint(JWT_SECRET, user, now_s, 86_400).unwrap();
    format!("Bearer {token}")
}

pub async fn start() -> TestHost {
    start_with(|_| {}).await
}

pub async fn start_with(configure: impl FnOnce(&mut HostOptions)) -> TestHost {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    configure(&mut opts);
    let host = Host::start(opts).await.expect("host starts");
    let client = Client {
        url: host.url(),
        http: http(),
        tenant: None,
        clock: host.runtime().clock.clone(),
    };
    TestHost { host, client, dir }
}

/// An external tool the tests drive (`grpcurl`), from `$TACOS_<NAME>`, from
/// `target/tools/bin` or installed there by `scripts/test-tools.sh`. When it
/// cannot be had the test says so loudly and is skipped, unless
/// `TACOS_REQUIRE_TEST_TOOLS=1` (set by `.ci/run`), where that fails it.
pub fn test_tool(name: &str) -> Option<PathBuf> {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let var = format!("TACOS_{}", name.to_uppercase().replace('-', "_"));
    if let Some(path) = std::env::var_os(&var) {
        return Some(PathBuf::from(path));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("target/tools/bin").join(name);
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let status = Command::new(root.join("scripts/test-tools.sh"))
            .arg(name)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            let msg = format!(
                "`{name}` is not installed and scripts/test-tools.sh could not install it ({status:?}); set {var} to its path"
            );
            if std::env::var("TACOS_REQUIRE_TEST_TOOLS").as_deref() == Ok("1") {
                panic!("{msg}");
            }
            tacos_testkit::skip(&msg, "run scripts/test-tools.sh");
            return None;
        }
    }
    Some(path)
}

/// A `tacos up` child process, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub url: String,
}

impl Proc {
    /// Spawn `cmd` (a `tacos up …`) and read the URL from its banner.
    pub fn spawn(mut cmd: Command) -> Proc {
        Self::spawn_logged(cmd.stderr(Stdio::null()), None)
    }

    /// Spawn `cmd` with its stderr going to `log`, which a failed start shows.
    pub fn spawn_logged(cmd: &mut Command, log: Option<&std::path::Path>) -> Proc {
        if let Some(log) = log {
            cmd.stderr(std::fs::File::create(log).unwrap());
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("tacos starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let Some(Ok(first)) = lines.next() else {
            let log = log.map(|l| std::fs::read_to_string(l).unwrap_or_default());
            panic!("tacos did not start: {}", log.unwrap_or_default());
        };
        let url = first
            .split(" on ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("url in the banner: {first}"))
            .to_string();
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Proc { child, url }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn request(
    http: &Http,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = hyper::Request::builder().method(method).uri(url);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = http
        .request(
            req.body(Full::new(Bytes::from(body.unwrap_or_default())))
                .unwrap(),
        )
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

impl Client {
    /// A client of a host in another process; its tokens are minted by the
    /// system clock, where the host's virtual clock started.
    pub fn of(url: &str) -> Client {
        Client {
            url: url.to_string(),
            http: http(),
            tenant: None,
            clock: std::sync::Arc::new(tacos_host::foundations::clock::Clock::system()),
        }
    }

    /// A client whose requests are tenant `id`'s: `x-tenant-id`, and tokens
    /// with its `tenant` claim.
    pub fn tenant(&self, id: &str) -> Client {
        Client {
            tenant: Some(id.to_string()),
            ..self.clone()
        }
    }

    /// `authorization: Bearer …` for `user` (of this client's tenant), valid
    /// for a day of the host's clock.
    pub fn bearer(&self, user: &str) -> String {
        let now_s = self.clock.now_ms() / 1000;
        let token = tacos_host::foundations::auth::mint_for(
            JWT_SECRET,
            self.tenant.as_deref(),
            user,
            now_s,
            86_400,
        )
        .unwrap();
        format!("Bearer {token}")
    }

    /// `headers` plus this client's `x-tenant-id`.
    fn with_tenant<'a>(&'a self, headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = headers.to_vec();
        if let Some(t) = &self.tenant {
            all.push(("x-tenant-id", t.as_str()));
        }
        all
    }

    /// POST JSON, as the body's `user_id` when it names one.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let auth = body["user_id"].as_str().map(|u| self.bearer(u));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        self.post_raw(path, body.to_string().into_bytes(), &headers)
            .await
    }

    /// GET as `user`.
    pub async fn get_as(&self, user: &str, path: &str) -> (u16, Value) {
        let auth = self.bearer(user);
        request(
            &self.http,
            "GET",
            &format!("{}{path}", self.url),
            None,
            &self.with_tenant(&[("authorization", &auth)]),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        request(
            &self.http,
            "POST",
            &format!("{}{path}", self.url),
            Some(body),
            &self.with_tenant(headers),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        request(
            &self.http,
            "GET",
            &format!("{}{path}", self.url),
            None,
            &self.with_tenant(&[]),
        )
        .await
    }

    pub async fn advance(&self, seconds: f64) -> Value {
        let (status, body) = self
            .post("/admin/v1/clock/advance", json!({ "seconds": seconds }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["settled"], true, "queue settled after advance: {body}");
        body
    }

    pub async fn create_event(
        &self,
        event_id: &str,
        seats: i32,
        price: i64,
        admission_per_second: i32,
    ) {
        let (status, body) = self
            .post(
                "/admin/v1/events",
                json!({"event_id": event_id, "name": format!("Event {event_id}"), "seat_count": seats,
                       "price": {"amount": price, "currency": "KRW"}, "admission_per_second": admission_per_second}),
            )
            .await;
        assert_eq!(status, 200, "create event: {body}");
    }

    /// Join the waiting room and return the waiting token.
    pub async fn join(&self, event: &str, user: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/queue/join",
                json!({"event_id": event, "user_id": user, "session_id": format!("s-{user}")}),
            )
            .await;
        assert_eq!(status, 200, "join: {body}");
        body["waiting_token"].as_str().unwrap().to_string()
    }

    /// Exchange an admitted waiting token for a reservation token.
    pub async fn enter(&self, waiting_token: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/queue/enter",
                json!({ "waiting_token": waiting_token }),
            )
            .await;
        assert_eq!(status, 200, "enter: {body}");
        body["reservation_token"].as_str().unwrap().to_string()
    }

    /// Join and enter an event whose admission rate admits at once.
    pub async fn admitted(&self, event: &str, user: &str) -> String {
        let wt = self.join(event, user).await;
        self.enter(&wt).await
    }

    pub async fn hold(
        &self,
        event: &str,
        user: &str,
        token: &str,
        seats: &[&str],
        key: &str,
    ) -> (u16, Value) {
        self.post(
            "/api/v1/reservations",
            json!({"event_id": event, "seat_ids": seats, "user_id": user, "reservation_token": token, "idempotency_key": key}),
        )
        .await
    }

    pub async fn pay(&self, reservation: &Value, user: &str, scenario: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/payments/intent",
                json!({"reservation_id": reservation["reservation_id"], "user_id": user,
                       "amount": reservation["total_amount"], "scenario": scenario}),
            )
            .await;
        assert_eq!(status, 200, "payment intent: {body}");
        body["payment_intent_id"].as_str().unwrap().to_string()
    }

    /// A reservation, read as its owner.
    pub async fn reservation(&self, id: &str, user: &str) -> Value {
        let (status, body) = self
            .get_as(user, &format!("/api/v1/reservations/{id}"))
            .await;
        assert_eq!(status, 200, "get reservation: {body}");
        body["reservation"].clone()
    }

    /// Seat id → SEAT_STATUS_… of an event.
    pub async fn seats(&self, event: &str) -> HashMap<String, String> {
        let (status, body) = self.get(&format!("/api/v1/events/{event}/seats")).await;
        assert_eq!(status, 200, "seats: {body}");
        body["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["seats"].as_array().unwrap().iter())
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

impl Client {
    /// Join `users` to `event`, let a (virtual) second pass so all are
    /// admitted, then enter: their reservation tokens.
    pub async fn admitted_all(&self, event: &str, users: &[String]) -> Vec<String> {
        let mut waiting = Vec::new();
        for u in users {
            waiting.push(self.join(event, u).await);
        }
        self.advance(1.0).await;
        let mut tokens = Vec::new();
        for w in &waiting {
            tokens.push(self.enter(w).await);
        }
        tokens
    }

    /// `PUT /admin/v1/tenants/{id}` with `body`.
    pub async fn put_tenant(&self, id: &str, body: Value) -> (u16, Value) {
        let url = format!("{}/admin/v1/tenants/{id}", self.url);
        request(
            &self.http,
            "PUT",
            &url,
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    /// Tenant `id` as `GET /admin/v1/tenants` lists it.
    pub async fn tenant_listing(&self, id: &str) -> Value {
        let (status, body) = self.get("/admin/v1/tenants").await;
        assert_eq!(status, 200, "tenants: {body}");
        body["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no tenant {id} in {body}"))
            .clone()
    }

    /// The host's services as `GET /admin/v1/services` lists them.
    pub async fn services(&self) -> Vec<Value> {
        let (status, body) = self.get("/admin/v1/services").await;
        assert_eq!(status, 200, "services: {body}");
        body["services"].as_array().unwrap().clone()
    }

    /// The content hash of a service's current version.
    pub async fn current_hash(&self, service: &str) -> String {
        let services = self.services().await;
        let s = services.iter().find(|s| s["name"] == service).unwrap();
        s["current"]["hash"].as_str().unwrap().to_string()
    }
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error>")
}

/// The seat a hold's answer took, or `None` for the refusals contention
/// allows (taken, sold out); anything else fails the test.
pub fn held_seat(status: u16, body: &Value) -> Option<String> {
    match status {
        200 => Some(
            body["reserved_seats"][0]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        ),
        409 => {
            assert!(
                matches!(
                    code(body),
                    "ERROR_CODE_INVENTORY_CONFLICT" | "ERROR_CODE_INSUFFICIENT_INVENTORY"
                ),
                "{body}"
            );
            None
        }
        other => panic!("unexpected {other}: {body}"),
    }
}
