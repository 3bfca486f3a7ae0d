//! The host clock: the system clock, or a virtual one that only an admin call
//! advances (`--virtual-clock`).
//!
//! Every time-dependent decision reads it: the `clock` capability, the WASI
//! wall clock given to components, kv expiry and the queue's due times. So a
//! test of a 60-second hold advances the clock by 61 s and sees the expiry fire
//! at once. The virtual time is persisted by the host under
//! [`VIRTUAL_NOW_KEY`], so delayed messages keep their meaning across a
//! restart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The store's meta key that keeps the virtual time between runs.
pub const VIRTUAL_NOW_KEY: &str = "clock/virtual_now_ms";

#[derive(Debug)]
pub struct Clock {
    /// `Some` when virtual: milliseconds since the Unix epoch.
    virtual_ms: Option<AtomicU64>,
}

/// Milliseconds since the Unix epoch by the system clock.
pub fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Clock {
    pub fn system() -> Clock {
        Clock { virtual_ms: None }
    }

    /// A virtual clock starting at `start_ms`.
    pub fn virtual_at(start_ms: u64) -> Clock {
        Clock {
            virtual_ms: Some(AtomicU64::new(start_ms)),
        }
    }

    pub fn is_virtual(&self) -> bool {
        self.virtual_ms.is_some()
    }

    pub fn now_ms(&self) -> u64 {
        match &self.virtual_ms {
            Some(v) => v.load(Ordering::SeqCst),
            None => system_now_ms(),
        }
    }

    /// Set virtual time (restoring it at start-up); ignored on a system clock.
    pub fn set(&self, ms: u64) {
        if let Some(v) = &self.virtual_ms {
            v.store(ms, Ordering::SeqCst);
        }
    }

    /// Move virtual time forward; `None` on a system clock.
    pub fn advance(&self, by: Duration) -> Option<u64> {
        let v = self.virtual_ms.as_ref()?;
        let ms = by.as_millis() as u64;
        Some(v.fetch_add(ms, Ordering::SeqCst) + ms)
    }
}

/// The host clock as WASI's wall clock, so `std::time::SystemTime` in a
/// component agrees with the `clock` capability.
pub struct WasiWallClock(pub std::sync::Arc<Clock>);

impl wasmtime_wasi::HostWallClock for WasiWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_moves_only_when_advanced() {
        let c = Clock::virtual_at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        assert_eq!(c.advance(Duration::from_secs(61)), Some(62_000));
        assert_eq!(c.now_ms(), 62_000);
        assert!(Clock::system().advance(Duration::from_secs(1)).is_none());
    }
}
