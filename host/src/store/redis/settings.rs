//! `[store.redis]`: where Redis is and how to reach it, TLS included.
//!
//! A `rediss://` URL speaks TLS and checks the server's certificate against
//! the system's roots, or against `ca` when set (a private CA, as managed
//! Redis services and self-hosted servers use); `client_cert` and
//! `client_key` present a client certificate to a server that wants one.
//! The certificate files are read at start, and every mistake — a file that
//! is missing, a certificate without its key, TLS files with a plain
//! `redis://` URL — stops the host with the fix rather than connecting
//! without the protection it was asked for.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[store.redis]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`, or `rediss://…` for TLS; `TACOS_REDIS_URL`
    /// when not set, else `redis://127.0.0.1:6379/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Prefix of every key; `tacos:` when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// PEM file of the CA that signed the server's certificate, instead of
    /// the system's roots (`rediss://` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// PEM files of a client certificate and its key, for a server that
    /// asks for one (`rediss://` only; both or neither).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

impl RedisSettings {
    pub(in crate::store) fn is_default(&self) -> bool {
        *self == RedisSettings::default()
    }

    pub fn url(&self) -> String {
        self.url
            .clone()
            .or_else(|| std::env::var("TACOS_REDIS_URL").ok())
            .unwrap_or_else(|| "redis://127.0.0.1:6379/".into())
    }

    /// The URL without a password, for banners and messages.
    pub fn shown_url(&self) -> String {
        let url = self.url();
        match (url.split_once("://"), url.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
            _ => url,
        }
    }

    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("tacos:")
    }

    /// The client these settings describe, its certificate files read.
    pub fn client(&self) -> anyhow::Result<::redis::Client> {
        let url = self.url();
        let tls = url.starts_with("rediss://");
        let files = [&self.ca, &self.client_cert, &self.client_key];
        if !tls && files.iter().any(|f| f.is_some()) {
            bail!(
                "[store.redis] ca, client_cert and client_key are for TLS: use a rediss:// url (it is {})",
                self.shown_url()
            );
        }
        if !tls {
            return ::redis::Client::open(url).context("parsing the redis url");
        }
        let client_tls = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some(::redis::ClientTlsConfig {
                client_cert: read(cert, "client certificate")?,
                client_key: read(key, "client key")?,
            }),
            (None, None) => None,
            _ => bail!("[store.redis] client_cert and client_key go together: set both or neither"),
        };
        let root_cert = self.ca.as_deref().map(|ca| read(ca, "CA")).transpose()?;
        let certificates = ::redis::TlsCertificates {
            client_tls,
            root_cert,
        };
        ::redis::Client::build_with_tls(url, certificates)
            .context("setting up TLS to redis (are the PEM files a certificate and its key?)")
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the Redis {what} from {}", path.display()))
}
