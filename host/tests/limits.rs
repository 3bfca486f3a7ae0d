//! Rate limits: a burst beyond the bucket gets 429 / RESOURCE_EXHAUSTED with
//! `retry-after`, and exactly the bucket's size is let through (the virtual
//! clock holds the bucket still); per-user buckets apply on signed-in routes.

mod common;

use common::*;
use tacos_host::edge::limits::RateLimits;
use tacos_proto::gateway::v1::GetQueueStatsRequest;
use tacos_proto::gateway::v1::queue_service_client::QueueServiceClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_bucket_is_refused_with_retry_after() {
    let t = start_with(|o| o.rate_limits = RateLimits::default()).await;
    t.create_event("e", 5, 1_000, 1000).await;

    // The default bucket: 100 requests at once, then 429s.
    let mut allowed = 0;
    let mut refused = None;
    for _ in 0..130 {
        let resp = t
            .http
            .request(
                hyper::Request::get(format!("{}/api/v1/queue/stats?event_id=e", t.url))
                    .body(Default::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        match resp.status().as_u16() {
            200 => allowed += 1,
            429 => {
                let retry = resp.headers().get("retry-after").cloned();
                refused.get_or_insert(retry);
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(allowed, 100, "the default burst");
    let retry = refused.expect("some were refused").expect("retry-after");
    assert_eq!(retry.to_str().unwrap(), "1");
    let (status, body) = t.get("/api/v1/queue/stats?event_id=e").await;
    assert_eq!(
        (status, code(&body)),
        (429, "ERROR_CODE_RATE_LIMITED"),
        "{body}"
    );

    // Other classes have their own buckets; time refills them.
    assert_eq!(t.get("/api/v1/events/e/seats").await.0, 200);
    t.advance(1.0).await;
    let mut again = 0;
    for _ in 0..80 {
        if t.get("/api/v1/queue/stats?event_id=e").await.0 == 200 {
            again += 1;
        }
    }
    assert_eq!(again, 50, "one second refills 50");

    // gRPC shares the buckets: RESOURCE_EXHAUSTED with retry-after.
    let channel = tonic::transport::Channel::from_shared(t.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let s = QueueServiceClient::new(channel)
        .get_queue_stats(GetQueueStatsRequest {
            event_id: "e".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::ResourceExhausted, "{s:?}");
    assert_eq!(s.metadata().get("retry-after").unwrap(), "1");
}

/// A client whose connections come from `ip` (any 127.x address is local).
fn client_from(ip: &str) -> Http {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_local_address(Some(ip.parse().expect("an IP address")));
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_user_buckets_on_signed_in_routes() {
    let t = start_with(|o| {
        o.rate_limits = "reservation=5/10".parse().unwrap();
    })
    .await;
    let (first, second) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    let list = |http: &Http, user: &str| {
        let url = format!("{}/api/v1/reservations", t.url);
        let (http, auth) = (http.clone(), t.bearer(user));
        async move { request(&http, "GET", &url, None, &[("authorization", &auth)]).await }
    };
    let mut ann = Vec::new();
    for _ in 0..15 {
        ann.push(list(&first, "ann").await.0);
    }
    assert_eq!(ann.iter().filter(|s| **s == 200).count(), 10, "{ann:?}");
    // From another address: ann's own bucket is empty, bob's is not.
    let (status, body) = list(&second, "ann").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per user"),
        "{body}"
    );
    assert_eq!(list(&second, "bob").await.0, 200);
    // From the first address, bob meets its empty IP bucket.
    let (status, body) = list(&first, "bob").await;
    assert_eq!(status, 429);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client IP"),
        "{body}"
    );
    t.advance(2.0).await;
    assert_eq!(list(&first, "ann").await.0, 200);
}
