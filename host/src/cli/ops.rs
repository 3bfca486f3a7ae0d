//! Operator commands against a running host, through its admin API:
//! `tacos services`, `tacos swap`, `tacos rollback`.

use anyhow::{Context, bail};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Which host, and how to authenticate.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The running host's URL.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8000",
        env = "TACOS_HOST",
        value_name = "URL"
    )]
    host: String,
    /// The host's admin token, if it was started with one.
    #[arg(long, env = "TACOS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SwapArgs {
    /// The service (slot) to change, e.g. `payment-sim`.
    service: String,
    /// The new component (a `.wasm` file built for wasm32-wasip2).
    #[arg(value_name = "PATH.wasm", conflicts_with = "build")]
    component: Option<PathBuf>,
    /// Swap to one of the builds the bundle names for this service (e.g. `chaos`).
    #[arg(long)]
    build: Option<String>,
    /// Set a config value (repeatable); `KEY=` removes it. Without a
    /// component or build, changes only the config.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
    config: Vec<(String, String)>,
    /// Do not run the new version's self-check before switching.
    #[arg(long)]
    no_self_check: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The service to return to its previous version.
    service: String,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Args)]
pub struct ServicesArgs {
    /// Print the host's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("`{s}` has an empty key"));
    }
    Ok((k.to_string(), v.to_string()))
}

impl Target {
    pub(super) async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let url = format!("{}{path}", self.host.trim_end_matches('/'));
        let mut req = hyper::Request::builder().method(method).uri(&url);
        if let Some(token) = &self.admin_token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let resp = http
            .request(req.body(Full::new(Bytes::from(bytes)))?)
            .await
            .with_context(|| {
                format!(
                    "reaching the host at {} (is `tacos up` running?)",
                    self.host
                )
            })?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        let value: Value = serde_json::from_slice(&body)
            .with_context(|| format!("{url} answered {status} with a body that is not JSON"))?;
        if !status.is_success() {
            let code = value["error"]["code"].as_str().unwrap_or("?");
            let message = value["error"]["message"].as_str().unwrap_or("");
            bail!("{code}: {message}");
        }
        Ok(value)
    }
}

pub async fn swap(args: SwapArgs) -> anyhow::Result<()> {
    let mut body = json!({
        "config": args.config.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "self_check": !args.no_self_check,
    });
    if let Some(path) = &args.component {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        body["component_base64"] = base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into();
        body["origin"] = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.clone())
            .display()
            .to_string()
            .into();
    }
    if let Some(build) = &args.build {
        body["build"] = build.clone().into();
    }
    let path = format!("/admin/v1/services/{}/swap", args.service);
    let outcome = args.target.request("POST", &path, Some(body)).await?;
    print_outcome(&outcome, "swapped");
    Ok(())
}

pub async fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    let path = format!("/admin/v1/services/{}/rollback", args.service);
    let outcome = args.target.request("POST", &path, None).await?;
    print_outcome(&outcome, "rolled back");
    Ok(())
}

fn print_outcome(o: &Value, verb: &str) {
    let short = |v: &Value| {
        v["hash"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(12)
            .collect::<String>()
    };
    let service = o["service"].as_str().unwrap_or("?");
    if o["changed"] == Value::Bool(false) {
        println!(
            "{service}: already running {} with that config; nothing changed",
            short(&o["current"])
        );
        return;
    }
    println!(
        "{service}: {verb} {} -> {} ({}) in {:.1} ms",
        short(&o["previous"]),
        short(&o["current"]),
        o["current"]["origin"].as_str().unwrap_or(""),
        o["took_ms"].as_f64().unwrap_or(0.0)
    );
    applied_on(o);
}

/// Where a change was made, when the host shares its store with others.
pub(super) fn applied_on(answer: &Value) {
    if let Some(hosts) = answer["applied_on"].as_str() {
        println!("  applied on {hosts}");
    }
}

pub async fn services(args: ServicesArgs) -> anyhow::Result<()> {
    let answer = args
        .target
        .request("GET", "/admin/v1/services", None)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    println!(
        "{:<12} {:<12} {:>10} {:>8} {:>7}  {:<29} origin",
        "SERVICE", "VERSION", "CALLS", "FAILED", "HISTORY", "SINCE"
    );
    for s in answer["services"].as_array().into_iter().flatten() {
        let cur = &s["current"];
        let since = cur["since_ms"].as_u64().unwrap_or(0);
        println!(
            "{:<12} {:<12} {:>10} {:>8} {:>7}  {:<29} {}",
            s["name"].as_str().unwrap_or("?"),
            cur["hash"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(12)
                .collect::<String>(),
            cur["calls"].as_u64().unwrap_or(0),
            cur["failures"].as_u64().unwrap_or(0),
            s["history"].as_array().map_or(0, Vec::len),
            format_ms(since),
            cur["origin"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// Milliseconds since the epoch as an HTTP date (`Tue, 24 Nov 2026 09:30:00 GMT`).
fn format_ms(ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_pairs_need_a_key() {
        assert_eq!(key_value("a=b").unwrap(), ("a".into(), "b".into()));
        assert_eq!(key_value("a=").unwrap(), ("a".into(), String::new()));
        assert!(key_value("=b").is_err());
        assert!(key_value("ab").is_err());
    }
}
