//! Fuzz targets: every decoder of the host that takes bytes from outside,
//! each a function of one input that must never panic, hang or break its own
//! promises. The driver (`main.rs`) feeds them mutated seeds and random bytes;
//! a crash is written to a file and becomes a regression test.
//!
//! Each target checks a property beyond "does not panic" where one exists:
//! JSON the edge renders parses back to the same message; a decoded capture
//! is never longer than the path; a webhook verifies only with the key that
//! signed it; an archive never unpacks past its caps.

use std::path::{Path, PathBuf};
use tacos_host::bundle::{BUILT_COMPONENTS_DIR, Bundle, pack};
use tacos_host::edge::routes;
use tacos_host::foundations::auth::{Auth, AuthOptions};
use tacos_host::foundations::json::Codec;

/// What the targets share: contracts, a verifier, a scratch directory.
pub struct Ctx {
    codec: Codec,
    routes: Vec<routes::Route>,
    router: routes::Router<usize>,
    auth: Auth,
    scratch: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

/// The HS256 secret the `jwt` target's verifier and seeds use.
const SECRET: &str = "fuzz-secret-0123456789abcdef";
/// The webhook key the `webhook` target's seeds are signed with.
const WEBHOOK_KEY: &[u8] = b"fuzz-webhook-key";
/// The clock every time-dependent target runs at.
const NOW_S: u64 = 1_800_000_000;

impl Ctx {
    pub fn new() -> anyhow::Result<Ctx> {
        let scratch = tempfile::tempdir()?;
        let opts = AuthOptions {
            secret: Some(SECRET.into()),
            ..Default::default()
        };
        let (auth, _) = Auth::new(&opts, scratch.path())?;
        let routes = routes::table();
        let router = routes::Router::new(
            routes
                .iter()
                .enumerate()
                .map(|(i, r)| (r.path, r.method.clone(), i)),
        )?;
        Ok(Ctx {
            codec: Codec::new()?,
            routes,
            router,
            auth,
            scratch,
            runtime: tokio::runtime::Builder::new_current_thread().build()?,
        })
    }
}

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    /// What it decodes.
    pub about: &'static str,
    pub run: fn(&Ctx, &[u8]),
    /// Valid inputs to start mutating from.
    pub seeds: fn(&Ctx) -> Vec<Vec<u8>>,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "json",
        about: "a REST body into a route's request message, the caller bound in, rendered back",
        run: json,
        seeds: json_seeds,
    },
    Target {
        name: "proto",
        about: "protobuf bytes of a contract message rendered as proto3 JSON",
        run: proto,
        seeds: proto_seeds,
    },
    Target {
        name: "path",
        about: "a request path against each route's pattern (captures, percent-decoding)",
        run: path,
        seeds: path_seeds,
    },
    Target {
        name: "query",
        about: "a query string into decoded pairs",
        run: query,
        seeds: query_seeds,
    },
    Target {
        name: "jwt",
        about: "an authorization header: bearer token, claims, tenant claim",
        run: jwt,
        seeds: jwt_seeds,
    },
    Target {
        name: "webhook",
        about: "Standard Webhooks headers and body",
        run: webhook,
        seeds: webhook_seeds,
    },
    Target {
        name: "grpc",
        about: "a gRPC request body deframed by tonic at the edge's limit, and grpc-timeout",
        run: grpc,
        seeds: grpc_seeds,
    },
    Target {
        name: "manifest",
        about: "a bundle manifest (TOML)",
        run: manifest,
        seeds: manifest_seeds,
    },
    Target {
        name: "archive",
        about: "a bundle archive (gzipped tar) unpacked under its caps",
        run: archive,
        seeds: archive_seeds,
    },
];

/// `data` split at its first `\n` (the rest empty when there is none).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The first byte picks one of `n` things; the rest is the input.
fn pick(data: &[u8], n: usize) -> (usize, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (*b as usize % n, rest),
        None => (0, data),
    }
}

fn json(ctx: &Ctx, data: &[u8]) {
    let (i, body) = pick(data, ctx.routes.len());
    let route = &ctx.routes[i];
    let Ok(desc) = ctx.codec.message(route.input) else {
        return;
    };
    let Ok(bytes) = ctx.codec.from_json(&desc, body, &[]) else {
        return;
    };
    let values = [("user_id", "u"), ("idempotency_key", "k")];
    let bytes = ctx
        .codec
        .bind(&desc, bytes.clone(), &values)
        .unwrap_or(bytes);
    let rendered = ctx
        .codec
        .to_json(&desc, &bytes)
        .unwrap_or_else(|e| panic!("a parsed {} does not render: {e:#}", route.input));
    let again = ctx
        .codec
        .from_json(&desc, &rendered, &[])
        .unwrap_or_else(|e| panic!("rendered {} does not parse back: {e}", route.input));
    let twice = ctx.codec.to_json(&desc, &again).expect("renders twice");
    assert_eq!(rendered, twice, "{}: JSON round trip changed", route.input);
}

fn json_seeds(_: &Ctx) -> Vec<Vec<u8>> {
    let bodies: [&[u8]; 5] = [
        br#"{"event_id":"e","user_id":"ann","session_id":"s"}"#,
        br#"{"event_id":"e","seat_ids":["A-1","A-2"],"quantity":2,"reservation_token":"t","idempotency_key":"k","metadata":{"attributes":{"a":"b"}}}"#,
        br#"{"reservation_id":"r","amount":{"amount":1000,"currency":"KRW"},"scenario":"PAYMENT_SCENARIO_FAIL"}"#,
        br#"{"webhook_id":"w","event_type":"PAYMENT_WEBHOOK_TYPE_APPROVED","data":{"reservation_id":"r"},"timestamp":"2026-01-01T00:00:00Z"}"#,
        br#"{"payment_intent_id":"pi","target_status":"PAYMENT_STATUS_FAILED","delay_seconds":3}"#,
    ];
    (0u8..19)
        .flat_map(|route| bodies.iter().map(move |b| [&[route][..], b].concat()))
        .collect()
}

fn proto(ctx: &Ctx, data: &[u8]) {
    let (i, bytes) = pick(data, ctx.routes.len() * 2);
    let route = &ctx.routes[i / 2];
    let name = if i % 2 == 0 {
        route.input
    } else {
        route.output
    };
    if let Ok(desc) = ctx.codec.message(name) {
        let _ = ctx.codec.to_json(&desc, bytes);
    }
}

fn proto_seeds(ctx: &Ctx) -> Vec<Vec<u8>> {
    json_seeds(ctx)
        .into_iter()
        .filter_map(|seed| {
            let (i, body) = pick(&seed, ctx.routes.len());
            let desc = ctx.codec.message(ctx.routes[i].input).ok()?;
            let bytes = ctx.codec.from_json(&desc, body, &[]).ok()?;
            Some([&[(i * 2) as u8][..], &bytes].concat())
        })
        .collect()
}

fn path(ctx: &Ctx, data: &[u8]) {
    let (i, raw) = pick(data, ctx.routes.len());
    let path = String::from_utf8_lossy(raw);
    if let routes::Found::Route(_, captures) = ctx.router.find(&ctx.routes[i].method, &path) {
        for (_, value) in captures {
            // A capture is one decoded segment: `%2F` may decode to `/`, but
            // the match itself never spans segments.
            assert!(path.len() >= value.len(), "a capture grew: {value:?}");
        }
    }
}

fn path_seeds(ctx: &Ctx) -> Vec<Vec<u8>> {
    ctx.routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = r
                .path
                .replace("{event_id}", "ev%20ent")
                .replace("{reservation_id}", "res_1")
                .replace("{payment_intent_id}", "pi_%E2%9C%93");
            [&[i as u8][..], p.as_bytes()].concat()
        })
        .collect()
}

fn query(_: &Ctx, data: &[u8]) {
    let q = String::from_utf8_lossy(data);
    for (k, v) in routes::query_pairs(&q) {
        assert!(k.len() <= q.len() && v.len() <= q.len());
    }
}

fn query_seeds(_: &Ctx) -> Vec<Vec<u8>> {
    [
        "token=a%2Bb&x=1+2",
        "event_id=e&section=A",
        "waiting_token=abc.def%3D%3D",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn jwt(ctx: &Ctx, data: &[u8]) {
    let header = String::from_utf8_lossy(data);
    if let Ok(claims) = ctx.auth.verify(Some(&header), NOW_S, NOW_S) {
        assert!(!claims.sub.is_empty() && claims.exp > NOW_S);
    }
    let _ = tacos_host::foundations::auth::claimed_tenant(&header);
}

fn jwt_seeds(_: &Ctx) -> Vec<Vec<u8>> {
    ["ann", "", "a-very-long-user-name-with-unicode-✓"]
        .iter()
        .flat_map(|user| {
            [None, Some("acme")].map(|tenant| {
                let t = tacos_host::foundations::auth::mint_for(SECRET, tenant, user, NOW_S, 600)
                    .expect("minting a seed");
                format!("Bearer {t}").into_bytes()
            })
        })
        .collect()
}

fn webhook(_: &Ctx, data: &[u8]) {
    let (id, rest) = split(data);
    let (ts, rest) = split(rest);
    let (sig, body) = split(rest);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (id, ts, sig) = (text(id), text(ts), text(sig));
    let verified = tacos_host::foundations::signature::verify(
        &[WEBHOOK_KEY],
        Some(&id),
        Some(&ts),
        Some(&sig),
        body,
        NOW_S,
    );
    if verified.is_ok() {
        // Only the key that signed it verifies it.
        let other = tacos_host::foundations::signature::verify(
            &[b"another-key"],
            Some(&id),
            Some(&ts),
            Some(&sig),
            body,
            NOW_S,
        );
        assert!(other.is_err(), "a signature verified under two keys");
    }
}

fn webhook_seeds(_: &Ctx) -> Vec<Vec<u8>> {
    [&b"{}"[..], br#"{"webhook_id":"wh_1"}"#]
        .iter()
        .map(|body| {
            let sig = tacos_host::foundations::signature::sign(WEBHOOK_KEY, "wh_1", NOW_S, body);
            [b"wh_1\n", format!("{NOW_S}\n{sig}\n").as_bytes(), body].concat()
        })
        .collect()
}

fn grpc(ctx: &Ctx, data: &[u8]) {
    let (timeout, frames) = split(data);
    let mut headers = hyper::HeaderMap::new();
    if let Ok(v) = hyper::header::HeaderValue::from_bytes(timeout) {
        headers.insert("grpc-timeout", v);
        let _ = tacos_host::edge::grpc::grpc_timeout(&headers);
    }
    let body = http_body_util::Full::new(bytes::Bytes::copy_from_slice(frames));
    let mut stream = tonic::codec::Streaming::new_request(
        tacos_host::edge::grpc::Raw,
        body,
        None,
        Some(tacos_host::edge::MAX_BODY),
    );
    ctx.runtime.block_on(async {
        let mut total = 0;
        while let Ok(Some(msg)) = stream.message().await {
            total += msg.len();
            assert!(total <= frames.len(), "more message bytes than body bytes");
        }
    });
}

fn grpc_seeds(_: &Ctx) -> Vec<Vec<u8>> {
    let frame = |msg: &[u8]| {
        let mut f = vec![0u8];
        f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        f.extend_from_slice(msg);
        f
    };
    vec![
        [b"5S\n".as_slice(), &frame(b"\x0a\x01e")].concat(),
        [b"250m\n".as_slice(), &frame(b""), &frame(b"\x12\x03ann")].concat(),
    ]
}

fn manifest(ctx: &Ctx, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Bundle::parse_manifest(
        &text,
        "fuzz",
        ctx.scratch.path(),
        Path::new(BUILT_COMPONENTS_DIR),
    );
}

fn default_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bundles/default.toml")
}

fn manifest_seeds(_: &Ctx) -> Vec<Vec<u8>> {
    let text = std::fs::read(default_manifest()).expect("the default bundle");
    vec![
        text,
        b"policy = \"p.toml\"\n[tenants.a]\nquotas = { deadline_ms = 5 }\n".to_vec(),
    ]
}

fn archive(ctx: &Ctx, data: &[u8]) {
    let dir = ctx.scratch.path().join("archive");
    let file = ctx.scratch.path().join("in.tacos");
    if std::fs::write(&file, data).is_err() {
        return;
    }
    if let Ok(unpacked) = pack::unpack(&file, &dir) {
        let files = std::fs::read_dir(&unpacked).map(|d| d.count()).unwrap_or(0);
        assert!(files <= pack::MAX_ENTRIES, "{files} files unpacked");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn archive_seeds(_: &Ctx) -> Vec<Vec<u8>> {
    let manifest = b"hashes = { \"policy.toml\" = \"ab\" }\npolicy = \"policy.toml\"\n";
    let mut out = Vec::new();
    {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            &mut out,
            flate2::Compression::fast(),
        ));
        for (name, bytes) in [
            ("bundle.toml", &manifest[..]),
            ("policy.toml", b"[defaults]\n"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, bytes)
                .expect("a seed archive");
        }
        tar.into_inner()
            .and_then(|gz| gz.finish())
            .expect("a seed archive");
    }
    vec![out]
}
