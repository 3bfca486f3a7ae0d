//! The host is a house with floors (see `src/lib.rs`): a module imports only
//! from lower floors. This reads the floors from `src/lib.rs` and every
//! `crate::` path of every file under `src/` (comments aside), and fails on
//! an import from the module's own floor or above, naming file and line; on
//! the ground floor (`foundations/`) no room may import another.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Top-level module → floor, from the `// floor N: …` headers of lib.rs.
fn floors() -> BTreeMap<String, u32> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("reading src/lib.rs");
    let mut floor = None;
    let mut floors = BTreeMap::new();
    for line in lib.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("// floor ") {
            let n = rest.split(':').next().unwrap_or_default();
            floor = Some(n.parse::<u32>().expect("a floor number"));
        } else if let Some(name) = line.strip_prefix("pub mod ") {
            let name = name.trim_end_matches(';').to_string();
            let floor = floor.unwrap_or_else(|| panic!("`pub mod {name}` is under no floor"));
            floors.insert(name, floor);
        } else if line.starts_with("mod ") {
            panic!("lib.rs: `{line}`: top-level modules are `pub mod` under a floor");
        }
    }
    floors
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a line of code names through `crate::`, including
/// each branch of a `use crate::{a::…, b};` group.
fn named(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(head(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(head(&item));
        } else {
            out.push(head(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

fn head(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn every_import_goes_down_a_floor() {
    let floors = floors();
    assert!(floors.len() > 5, "floors read from lib.rs: {floors:?}");
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src()).expect("under src");
        let first = rel.components().next().expect("a path");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&floor) = floors.get(&module) else {
            panic!(
                "{}: module `{module}` is not on a floor in lib.rs",
                rel.display()
            );
        };
        let text = std::fs::read_to_string(file).expect("reading a source file");
        // `use` groups span lines: read statement by statement, comments
        // blanked (lines kept, for the line numbers).
        let code: Vec<&str> = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("//") {
                    ""
                } else {
                    l
                }
            })
            .collect();
        let code = code.join("\n");
        let mut line = 1;
        for statement in code.split(';') {
            let starts = line
                + statement[..statement.len() - statement.trim_start().len()]
                    .matches('\n')
                    .count();
            line += statement.matches('\n').count();
            // The ground floor's rooms do not lean on one another either.
            if module == "foundations" {
                let room = rel
                    .components()
                    .nth(1)
                    .map(|c| c.as_os_str().to_string_lossy());
                let room = room.unwrap_or_default();
                let room = room.trim_end_matches(".rs");
                for other in statement.split("crate::foundations::").skip(1).map(head) {
                    if other != room {
                        upward.push(format!(
                            "{}:{starts}: foundations/{room} imports foundations/{other}",
                            rel.display()
                        ));
                    }
                }
            }
            for target in named(statement) {
                let Some(&to) = floors.get(&target) else {
                    panic!(
                        "{}: `crate::{target}` is no module of lib.rs",
                        rel.display()
                    );
                };
                if target != module && to >= floor {
                    upward.push(format!(
                        "{}:{starts} (floor {floor}) imports `{target}` (floor {to}): {}",
                        rel.display(),
                        statement.trim().lines().next().unwrap_or_default()
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not go down a floor:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_reader_sees_every_group_member() {
    assert_eq!(
        named("use crate::{clock::Clock, store::{self, Op}, trace};"),
        ["clock", "store", "trace"]
    );
    assert_eq!(
        named("let x = crate::edge::new(crate::json::Codec)"),
        ["edge", "json"]
    );
    assert_eq!(named("use crate::{self as c};"), Vec::<String>::new());
}
