//! `tacos:platform/config`: the component's values from the bundle, plus what
//! the host provides: `public_url` and `default_webhook_url`. No secret is
//! ever a config value: the `token` and `webhook` capabilities use the
//! tenant's keys on the component's behalf.

use super::Has;
use super::bindings::platform::config;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::Linker;

/// The config capability's state: the version's values and the host's URL.
pub struct ConfigCtx {
    values: Arc<BTreeMap<String, String>>,
    public_url: Arc<str>,
}

impl ConfigCtx {
    pub fn new(values: Arc<BTreeMap<String, String>>, public_url: Arc<str>) -> ConfigCtx {
        ConfigCtx { values, public_url }
    }
}

impl config::Host for ConfigCtx {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        if let Some(v) = self.values.get(&key) {
            return Ok(Some(v.clone()));
        }
        Ok(match key.as_str() {
            "public_url" => Some(self.public_url.to_string()),
            "default_webhook_url" => Some(format!("{}/api/v1/webhooks/payment", self.public_url)),
            _ => None,
        })
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ConfigCtx,
) -> wasmtime::Result<()> {
    config::add_to_linker::<T, Has<ConfigCtx>>(linker, get)
}
