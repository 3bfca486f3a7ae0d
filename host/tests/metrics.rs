//! `/metrics` parses as Prometheus text and its counters move as the ticket
//! flow runs: edge requests by route and code, component calls and
//! instantiations, queue deliveries, and the holds, confirms and expiries.

mod common;

use common::*;
use prometheus_parse::{Scrape, Value};
use tacos_proto::reservation::v1::GetInventoryStatusRequest;
use tacos_proto::reservation::v1::inventory_client::InventoryClient;

/// The scrape, checked line by line, as (name, labels) → value.
async fn scrape(t: &TestHost) -> Scrape {
    let resp = t
        .http
        .request(
            hyper::Request::get(format!("{}/metrics", t.url))
                .body(Default::default())
                .expect("a request"),
        )
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().expect("ascii");
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("a body")
        .to_bytes();
    let text = String::from_utf8(body.to_vec()).expect("UTF-8");
    assert!(text.ends_with("# EOF\n"));
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        // name{label="value",…} number
        let (series, value) = line.rsplit_once(' ').expect("a value");
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().expect("a name");
        assert!(
            name.starts_with("tacos_")
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text")
}

/// The value of one series (0 when absent).
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_as_the_flow_runs() {
    let t = start().await;
    t.create_event("m", 10, 1_000, 1000).await;
    let before = scrape(&t).await;
    let hold_route = [
        ("protocol", "rest"),
        ("route", "POST /api/v1/reservations"),
        ("code", "OK"),
    ];
    assert_eq!(value(&before, "tacos_requests_total", &hold_route), 0.0);

    // One hold paid and confirmed, one left to expire, one refused.
    let token = t.admitted("m", "pat").await;
    let (_, paid) = t.hold("m", "pat", &token, &["A-1"], "k1").await;
    t.pay(&paid, "pat", "PAYMENT_SCENARIO_APPROVE").await;
    let waiting = t.join("m", "quin").await;
    let rae = t.join("m", "rae").await;
    t.advance(1.0).await; // admission moves with the clock
    let token = t.enter(&waiting).await;
    let (status, _) = t.hold("m", "quin", &token, &["A-2"], "k2").await;
    assert_eq!(status, 200);
    let token = t.enter(&rae).await;
    let (status, _) = t.hold("m", "rae", &token, &["A-99"], "k3").await;
    assert_eq!(status, 404);
    t.advance(5.0).await;
    t.advance(61.0).await;
    // And a gRPC call that fails.
    let channel = tonic::transport::Channel::from_shared(t.url.clone())
        .expect("a URL")
        .connect()
        .await
        .expect("connects");
    let _ = InventoryClient::new(channel)
        .get_inventory_status(GetInventoryStatusRequest {
            event_id: "none".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();

    let after = scrape(&t).await;
    assert_eq!(value(&after, "tacos_requests_total", &hold_route), 2.0);
    assert_eq!(
        value(
            &after,
            "tacos_requests_total",
            &[
                ("route", "POST /api/v1/reservations"),
                ("code", "ERROR_CODE_NOT_FOUND")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "tacos_request_duration_seconds",
            &[("protocol", "rest"), ("route", "POST /api/v1/reservations")]
        ),
        3.0,
        "the histogram counts every request"
    );
    assert_eq!(
        value(
            &after,
            "tacos_requests_total",
            &[
                ("protocol", "grpc"),
                ("route", "/reservation.v1.Inventory/GetInventoryStatus"),
                ("code", "ERROR_CODE_NOT_FOUND")
            ]
        ),
        1.0
    );
    let event = |e: &str| {
        value(
            &after,
            "tacos_component_events_total",
            &[("component", "reservation"), ("event", e)],
        )
    };
    assert_eq!(event("reservation held"), 2.0);
    assert_eq!(event("reservation confirmed"), 1.0);
    assert_eq!(event("reservation expired"), 1.0);
    for component in ["queue", "reservation", "inventory", "payment-sim", "worker"] {
        let made = value(
            &after,
            "tacos_component_instantiations_total",
            &[("component", component)],
        );
        let calls = value(
            &after,
            "tacos_component_calls_total",
            &[("component", component)],
        );
        assert!(made > 0.0 && made == calls, "{component}: {made} {calls}");
    }
    assert!(
        value(
            &after,
            "tacos_queue_messages_total",
            &[("topic", "reservation-expiry"), ("outcome", "acked")]
        ) >= 2.0
    );
    assert_eq!(value(&after, "tacos_queue_dead_letters", &[]), 0.0);
}
