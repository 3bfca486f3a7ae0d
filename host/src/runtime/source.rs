//! The one resolver of a component source (`tenancy::ComponentSource`) into
//! bytes, for a swap and for a tenant's own service alike: the parsers of
//! the bundle, the admin API and the CLI only translate their syntax into a
//! source; whether a build exists and whether a file can be read is decided
//! here, once.

use super::Slot;
use crate::tenancy::ComponentSource;

/// Why a source gave no bytes.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The request names a build the slot does not have: the caller's mistake.
    #[error("service `{service}` has no build `{build}` (builds: {known})")]
    UnknownBuild {
        service: String,
        build: String,
        known: String,
    },
    /// A file that should be there could not be read.
    #[error("reading {what}: {error}")]
    Unreadable { what: String, error: std::io::Error },
}

/// The bytes of `source` for `slot`, and where they came from.
pub async fn read(slot: &Slot, source: ComponentSource) -> Result<(Vec<u8>, String), SourceError> {
    let (path, origin) = match source {
        ComponentSource::Bytes { bytes, origin } => return Ok((bytes, origin)),
        ComponentSource::File(path) => {
            let origin = path.display().to_string();
            (path, origin)
        }
        ComponentSource::Build(build) => {
            let Some(path) = slot.builds.get(&build) else {
                let known: Vec<&str> = slot.builds.keys().map(String::as_str).collect();
                return Err(SourceError::UnknownBuild {
                    service: slot.name.clone(),
                    build,
                    known: match known.is_empty() {
                        true => "none".into(),
                        false => known.join(", "),
                    },
                });
            };
            let origin = format!("build `{build}` ({})", path.display());
            (path.clone(), origin)
        }
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok((bytes, origin)),
        Err(error) => Err(SourceError::Unreadable {
            what: origin,
            error,
        }),
    }
}
