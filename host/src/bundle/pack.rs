//! Portable bundles: `tacos bundle pack` writes one gzip'd tar holding the
//! manifest, the policy and every component the manifest names (its builds
//! and its tenants' own components and policies included), with each file's SHA-256 recorded in the manifest's `hashes`.
//!
//! Components are stored by content (`components/<sha256>.wasm`), so a build
//! shared by two services is stored once and the archive's bytes depend only
//! on its contents (entries are written in order with fixed metadata). A host
//! unpacks an archive once, under its data dir by the archive's hash, and the
//! manifest's hashes are checked on every load.

use super::{Bundle, Manifest, resolve};
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The manifest's name inside a bundle directory or archive.
pub const MANIFEST: &str = "bundle.toml";
const POLICY: &str = "policy.toml";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Pack the bundle at `src` (a directory with `bundle.toml`, or a manifest)
/// into `out`; returns the packed files with their SHA-256.
pub fn pack(
    src: &Path,
    components_dir: &Path,
    out: &Path,
) -> anyhow::Result<Vec<(String, String)>> {
    let manifest_path = if src.is_dir() {
        src.join(MANIFEST)
    } else {
        src.to_path_buf()
    };
    // Everything a host would refuse, refused now.
    let bundle = Bundle::load(&manifest_path, components_dir)?;
    let text = std::fs::read_to_string(&manifest_path)?;
    let mut m: Manifest = toml::from_str(&text)?;
    let base = manifest_path.parent();

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut add_component = |path: &Path| -> anyhow::Result<String> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = format!("components/{}.wasm", sha256(&bytes));
        files.insert(name.clone(), bytes);
        Ok(name)
    };
    for spec in &bundle.services {
        let entry = m
            .services
            .get_mut(&spec.name)
            .context("a service of the bundle is missing from its manifest")?;
        entry.component = add_component(&spec.component)?;
        for (build, path) in &spec.builds {
            entry.builds.insert(build.clone(), add_component(path)?);
        }
    }
    let mut policies = Vec::new();
    for spec in &bundle.tenants {
        let Some(entry) = m.tenants.get_mut(&spec.id) else {
            continue;
        };
        for (name, o) in &spec.services {
            if let (Some(crate::tenancy::ComponentSource::File(path)), Some(service)) =
                (&o.component, entry.services.get_mut(name))
            {
                service.component = Some(add_component(path)?);
            }
        }
        if let Some(file) = &entry.policy {
            let path = resolve(file, base, components_dir);
            let text =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let packed = format!("policies/{}.toml", spec.id);
            entry.policy = Some(packed.clone());
            policies.push((packed, text));
        }
    }
    files.extend(policies);
    let policy_path = resolve(&m.policy, base, components_dir);
    let policy = std::fs::read(&policy_path)
        .with_context(|| format!("reading {}", policy_path.display()))?;
    files.insert(POLICY.to_string(), policy);
    m.policy = POLICY.to_string();
    m.hashes = files
        .iter()
        .map(|(name, bytes)| (name.clone(), sha256(bytes)))
        .collect();

    let manifest = format!(
        "# Packed by tacos {} from {}.\n{}",
        env!("CARGO_PKG_VERSION"),
        manifest_path.display(),
        toml::to_string(&m).context("writing the packed manifest")?
    );
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    append(&mut tar, MANIFEST, manifest.as_bytes())?;
    for (name, bytes) in &files {
        append(&mut tar, name, bytes)?;
    }
    tar.into_inner()?.finish()?.sync_all()?;
    Ok(m.hashes.into_iter().collect())
}

fn append<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
        .with_context(|| format!("adding {name} to the archive"))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `path` is a (gzip'd) bundle archive rather than a manifest.
pub fn is_archive(path: &Path) -> anyhow::Result<bool> {
    let mut head = [0u8; 2];
    let mut f =
        std::fs::File::open(path).with_context(|| format!("opening bundle {}", path.display()))?;
    Ok(f.read(&mut head)? == 2 && head == GZIP_MAGIC)
}

/// The most files an archive may hold.
pub const MAX_ENTRIES: usize = 1024;
/// The most bytes an archive may unpack to (a gzip bomb stops here, before
/// it reaches the disk).
pub const MAX_UNPACKED: u64 = 1 << 30;

/// Unpack an archive under `root` (once: the directory is named by the
/// archive's hash) and return the directory holding its manifest.
///
/// An archive holds at most [`MAX_ENTRIES`] regular files of at most
/// [`MAX_UNPACKED`] bytes in all, and every file but the manifest must be
/// among the manifest's `hashes` (as `tacos bundle pack` writes them), so
/// nothing in an archive loads unchecked.
pub fn unpack(archive: &Path, root: &Path) -> anyhow::Result<PathBuf> {
    let bytes =
        std::fs::read(archive).with_context(|| format!("reading bundle {}", archive.display()))?;
    let dir = root.join(&sha256(&bytes)[..16]);
    if dir.join(MANIFEST).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let tmp = tempfile::tempdir_in(root)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let (mut count, mut total) = (0usize, 0u64);
    let mut names = Vec::new();
    for entry in tar
        .entries()
        .with_context(|| format!("{} is not a bundle archive", archive.display()))?
    {
        let mut entry = entry.with_context(|| format!("reading {}", archive.display()))?;
        if !entry.header().entry_type().is_file() {
            bail!(
                "bundle {}: holds something other than files",
                archive.display()
            );
        }
        count += 1;
        total = total.saturating_add(entry.header().size()?);
        if count > MAX_ENTRIES || total > MAX_UNPACKED {
            bail!(
                "bundle {}: more than {MAX_ENTRIES} files or {MAX_UNPACKED} bytes unpacked",
                archive.display()
            );
        }
        names.push(entry.path()?.to_string_lossy().into_owned());
        // `unpack_in` refuses paths that would leave the directory.
        if !entry.unpack_in(tmp.path())? {
            bail!(
                "bundle {}: an entry points outside the bundle",
                archive.display()
            );
        }
    }
    if !tmp.path().join(MANIFEST).is_file() {
        bail!("bundle {}: no {MANIFEST} inside", archive.display());
    }
    let manifest = std::fs::read_to_string(tmp.path().join(MANIFEST))?;
    let hashes = toml::from_str::<toml::Table>(&manifest)
        .ok()
        .and_then(|t| t.get("hashes").and_then(|h| h.as_table()).cloned())
        .unwrap_or_default();
    if hashes.is_empty() {
        bail!(
            "bundle {}: its manifest has no `hashes`; pack it with `tacos bundle pack`",
            archive.display()
        );
    }
    if let Some(unhashed) = names
        .iter()
        .map(|n| n.trim_start_matches("./"))
        .find(|n| *n != MANIFEST && !hashes.contains_key(*n))
    {
        bail!(
            "bundle {}: {unhashed} is not among the manifest's hashes",
            archive.display()
        );
    }
    let unpacked = tmp.keep();
    if let Err(e) = std::fs::rename(&unpacked, &dir) {
        // Another host unpacked the same archive meanwhile: use theirs.
        let _ = std::fs::remove_dir_all(&unpacked);
        if !dir.join(MANIFEST).is_file() {
            return Err(e).with_context(|| format!("unpacking into {}", dir.display()));
        }
    }
    Ok(dir)
}
