//! Tenant commands against a running host, through its admin API:
//! `tacos tenants` lists them; `tacos tenant apply ID [--file TENANT.toml]`
//! adds or changes one (the file is a bundle's `[tenants.ID]` table on its
//! own: `hosts`, `quotas`, `policy`, `services`, `events`; component and
//! policy files are read here and sent along); `tacos tenant remove ID`
//! stops serving one (its data stays); `tacos tenant secret ID [--rotate]`
//! shows or rotates its webhook secret.

use super::ops::Target;
use crate::bundle::TenantManifest;
use anyhow::Context;
use base64::Engine as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct TenantsArgs {
    /// Print the host's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
pub enum TenantCommand {
    /// Add a tenant, or change one (with a swap's checks).
    Apply {
        /// The tenant id (a DNS label).
        id: String,
        /// The tenant's settings (TOML, like a bundle's `[tenants.ID]`); none:
        /// everything from the bundle.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// Stop serving a tenant; its data stays in the store.
    Remove {
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Show a tenant's Standard Webhooks secret (`whsec_…`) for the merchant's
    /// receiver, or rotate it: the old one keeps signing beside the new one
    /// until the overlap ends.
    Secret {
        id: String,
        /// Make a new secret.
        #[arg(long)]
        rotate: bool,
        /// With --rotate: how long the old secret keeps working (default a day).
        #[arg(long, value_name = "SECONDS", requires = "rotate")]
        overlap: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
}

pub async fn tenants(args: TenantsArgs) -> anyhow::Result<()> {
    let answer = args
        .target
        .request("GET", "/admin/v1/tenants", None)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>9} {:>7} {:>7} {:>9} {:>9} {:>12} {:>8}  own services",
        "TENANT", "CALLS", "FAILED", "QUOTA", "CPU s", "KEYS", "BYTES", "QUEUED"
    );
    for t in answer["tenants"].as_array().into_iter().flatten() {
        let own: Vec<String> = t["services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["own"] == Value::Bool(true))
            .map(|s| {
                let hash: String = s["hash"].as_str().unwrap_or("").chars().take(12).collect();
                format!("{}@{hash}", s["name"].as_str().unwrap_or("?"))
            })
            .collect();
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        println!(
            "{:<16} {:>9} {:>7} {:>7} {:>9.2} {:>9} {:>12} {:>8}  {}",
            t["id"].as_str().unwrap_or("?"),
            n(&t["calls_ok"]) + n(&t["calls_failed"]),
            n(&t["calls_failed"]),
            n(&t["quota_hits"]),
            t["guest_seconds"].as_f64().unwrap_or(0.0),
            n(&t["storage"]["keys"]),
            n(&t["storage"]["bytes"]),
            n(&t["queue_pending"]),
            if own.is_empty() {
                "-".to_string()
            } else {
                own.join(", ")
            }
        );
    }
    Ok(())
}

pub async fn tenant(cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::Apply { id, file, target } => {
            let body = match &file {
                Some(path) => body_of(path)?,
                None => json!({}),
            };
            let answer = target
                .request("PUT", &format!("/admin/v1/tenants/{id}"), Some(body))
                .await?;
            let verb = if answer["created"] == Value::Bool(true) {
                "added"
            } else {
                "changed"
            };
            println!("tenant `{id}` {verb}");
            super::ops::applied_on(&answer);
            Ok(())
        }
        TenantCommand::Secret {
            id,
            rotate,
            overlap,
            target,
        } => {
            let path = format!("/admin/v1/tenants/{id}/webhook-secret");
            let answer = if rotate {
                let body = match overlap {
                    Some(s) => json!({ "overlap_seconds": s }),
                    None => json!({}),
                };
                target
                    .request("POST", &format!("{path}/rotate"), Some(body))
                    .await?
            } else {
                target.request("GET", &path, None).await?
            };
            println!("{}", answer["secret"].as_str().unwrap_or("?"));
            if let Some(previous) = answer["previous"].as_str() {
                let until = answer["previous_until_ms"].as_u64().unwrap_or(0);
                let when = httpdate::fmt_http_date(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(until),
                );
                eprintln!("previous {previous} still signs and verifies until {when}");
            }
            if rotate {
                super::ops::applied_on(&answer);
            }
            Ok(())
        }
        TenantCommand::Remove { id, target } => {
            let answer = target
                .request("DELETE", &format!("/admin/v1/tenants/{id}"), None)
                .await?;
            println!(
                "tenant `{id}` removed (its data stays; `tacos tenant apply {id}` brings it back)"
            );
            super::ops::applied_on(&answer);
            Ok(())
        }
    }
}

/// The admin API's body for a tenant file: its files read and inlined.
fn body_of(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let t: TenantManifest =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let read = |file: &str| {
        let p = base.join(file);
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    };
    let mut services = serde_json::Map::new();
    for (name, s) in &t.services {
        let mut entry = json!({ "config": s.config });
        if let Some(build) = &s.build {
            entry["build"] = build.clone().into();
        }
        if let Some(file) = &s.component {
            entry["component_base64"] = base64::engine::general_purpose::STANDARD
                .encode(read(file)?)
                .into();
            entry["origin"] = base.join(file).display().to_string().into();
        }
        services.insert(name.clone(), entry);
    }
    let mut body = json!({
        "hosts": t.hosts,
        "quotas": t.quotas,
        "services": services,
    });
    if let Some(file) = &t.policy {
        body["policy_toml"] = String::from_utf8(read(file)?)
            .context("the policy is not UTF-8")?
            .into();
    }
    if let Some(events) = &t.events {
        body["events"] = serde_json::to_value(events)?;
    }
    if let Some(auth) = &t.auth {
        body["auth"] = serde_json::to_value(auth)?;
    }
    Ok(body)
}
