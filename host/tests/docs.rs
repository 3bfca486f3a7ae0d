//! The docs name files that exist. Every path in backticks in the README,
//! `docs/` (ADRs included) and the module docs (`//!`) of the host, the
//! benchmarks and the test kit must be a file or folder of the repository:
//! written from the root (`host/src/edge/conn.rs`) or as the tail of one
//! (`edge/conn.rs`, `redis/`). A file moved without its docs fails here.
//! A bare file name (`bundle.toml`) is prose about a user's file, not a path.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// Every file and folder of the repository, as `/`-separated paths from the
/// root (build output, git and installed tools left out).
fn tree(dir: &Path, root: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("reading a folder") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if matches!(&*name, "target" | ".git" | "node_modules") {
            continue;
        }
        let rel = path.strip_prefix(root).expect("under the root");
        let rel = rel.to_string_lossy().replace('\\', "/");
        if path.is_dir() {
            out.push(format!("{rel}/"));
            tree(&path, root, out);
        } else {
            out.push(rel);
        }
    }
}

const EXTENSIONS: &[&str] = &[
    ".rs", ".md", ".toml", ".lua", ".py", ".sh", ".proto", ".wit", ".yaml", ".json",
];

/// The spans in backticks that read as repository paths.
fn paths_in(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.contains('/')
                && !s.starts_with('/')
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
                && (EXTENSIONS.iter().any(|e| s.ends_with(e)) || (s.ends_with('/') && s.len() > 1))
        })
        .map(str::to_string)
        .collect()
}

fn docs(root: &Path) -> Vec<(String, String)> {
    let mut files = vec![root.join("README.md")];
    let mut all = Vec::new();
    tree(root, root, &mut all);
    for rel in &all {
        let in_docs = rel.starts_with("docs/") && rel.ends_with(".md");
        let module = (rel.starts_with("host/src/")
            || rel.starts_with("bench/src/")
            || rel.starts_with("testkit/src/"))
            && rel.ends_with(".rs");
        if in_docs || module {
            files.push(root.join(rel));
        }
    }
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("reading a doc");
            let text = if f.extension().is_some_and(|e| e == "rs") {
                // Only the module docs of source files.
                text.lines()
                    .filter(|l| l.trim_start().starts_with("//!"))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                text
            };
            let name = f.strip_prefix(root).unwrap_or(&f).display().to_string();
            (name, text)
        })
        .collect()
}

#[test]
fn every_path_the_docs_name_exists() {
    let root = root();
    let mut all = Vec::new();
    tree(&root, &root, &mut all);
    let mut missing = Vec::new();
    let mut checked = 0;
    for (doc, text) in docs(&root) {
        for path in paths_in(&text) {
            checked += 1;
            let found = all
                .iter()
                .any(|p| p == &path || p.ends_with(&format!("/{path}")));
            if !found {
                missing.push(format!("{doc}: `{path}`"));
            }
        }
    }
    assert!(checked > 50, "only {checked} paths found in the docs");
    assert!(
        missing.is_empty(),
        "paths named in the docs that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_reader_takes_paths_and_leaves_prose() {
    assert_eq!(
        paths_in(
            "see `edge/conn.rs`, `redis/`, `x-tenant-id`, `/admin/v1/`, `a b.rs`, `Cargo.toml`"
        ),
        ["edge/conn.rs", "redis/"]
    );
}
