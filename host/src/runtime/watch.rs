//! `tacos up --watch`: swap a service when its component file changes on disk,
//! with the same checks as `tacos swap` (compile, world, policy, self-check).
//! What a developer iterating on a component wants: rebuild, and the running
//! host serves the new build a moment later, or says why it refused it.
//!
//! Files are polled (size and modification time) rather than watched through
//! inotify: builds replace files in several steps, and a change is only acted
//! on once two polls agree, so a half-written file is never loaded.

use super::Runtime;
use super::swap::SwapRequest;
use crate::tenancy::ComponentSource;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;

/// How often component files are looked at.
const POLL: Duration = Duration::from_millis(250);

type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &PathBuf) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Watch each `(service, component file)` pair until the task is aborted.
pub fn spawn(runtime: Arc<Runtime>, files: Vec<(String, PathBuf)>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: Vec<Stamp> = files.iter().map(|(_, p)| stamp(p)).collect();
        let mut pending: Vec<Option<Stamp>> = vec![None; files.len()];
        loop {
            tokio::time::sleep(POLL).await;
            for (i, (service, path)) in files.iter().enumerate() {
                let now = stamp(path);
                if now == seen[i] {
                    pending[i] = None;
                    continue;
                }
                // Act once the file has stopped changing for one poll.
                if pending[i] != Some(now) {
                    pending[i] = Some(now);
                    continue;
                }
                seen[i] = now;
                pending[i] = None;
                let Ok(bytes) = tokio::fs::read(path).await else {
                    continue; // removed mid-build; the next write brings it back
                };
                let req = SwapRequest {
                    service: service.clone(),
                    source: Some(ComponentSource::Bytes {
                        bytes,
                        origin: format!("{} (watched)", path.display()),
                    }),
                    config: Default::default(),
                    self_check: true,
                };
                match runtime.swap(req).await {
                    Ok(o) if o.changed => tracing::info!(
                        service = %service,
                        version = %&o.current.hash[..12],
                        took_ms = o.took_ms,
                        "component file changed; swapped"
                    ),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(service = %service, error = %e, "component file changed; not swapped")
                    }
                }
            }
        }
    })
}
