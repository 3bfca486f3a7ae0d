//! `tacos:platform/config`: the component's values from the bundle, plus what
//! the host provides: `public_url`, `default_webhook_url`, and the host secrets
//! the component's policy names (e.g. `token_secret`).

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
            "token_secret" if self.version.policy.may_read_secret("token_secret") => {
                Some(self.ctx.tenant.token_secret.clone())
            }
            _ => None,
        })
    }
}
