//! `tacos:platform/config`: the component's values from the bundle, plus what
//! the host provides: `public_url` and `default_webhook_url`. No secret is
//! ever a config value: the `token` and `webhook` capabilities use the
//! tenant's keys on the component's behalf.

use super::CallState;
use crate::runtime::bindings::platform::config;

impl config::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        if let Some(v) = self.version.config.get(&key) {
            return Ok(Some(v.clone()));
        }
        let settings = &self.runtime.settings;
        Ok(match key.as_str() {
            "public_url" => Some(settings.public_url.clone()),
            "default_webhook_url" => {
                Some(format!("{}/api/v1/webhooks/payment", settings.public_url))
            }
            _ => None,
        })
    }
}
