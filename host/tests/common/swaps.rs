//! Hot-swap test helpers: built components, rebuilds with a new hash, swaps
//! and uploads through the admin API, and calls that report who served them.

use super::*;
use base64::Engine as _;
use tacos_host::bundle::BUILT_COMPONENTS_DIR;

pub fn component(file: &str) -> Vec<u8> {
    std::fs::read(format!("{BUILT_COMPONENTS_DIR}/{file}")).unwrap()
}

/// A rebuild of `bytes`: same behaviour, new content hash.
pub fn rebuilt(bytes: &[u8], label: &str) -> Vec<u8> {
    tacos_host::runtime::with_custom_section(bytes, "tacos-test-build", label.as_bytes())
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A request that also returns every `x-tacos-served-by` header.
/// A request as `user` (with their bearer token).
pub async fn call(
    t: &TestHost,
    user: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, Vec<String>) {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", t.url))
        .header("authorization", t.bearer(user));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let resp = t
        .http
        .request(req.body(Full::new(Bytes::from(bytes))).unwrap())
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let served: Vec<String> = resp
        .headers()
        .get_all("x-tacos-served-by")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value, served)
}

pub async fn swap(t: &TestHost, service: &str, body: Value) -> (u16, Value) {
    t.post(&format!("/admin/v1/services/{service}/swap"), body)
        .await
}

pub async fn upload(t: &TestHost, service: &str, bytes: &[u8], config: Value) -> (u16, Value) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    swap(
        t,
        service,
        json!({"component_base64": encoded, "config": config}),
    )
    .await
}
