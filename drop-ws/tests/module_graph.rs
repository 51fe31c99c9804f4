//! The crate's modules depend on each other without cycles: each one can
//! be read, and changed, knowing only the modules below it.
//!
//! Reads `src/*.rs`, the files of modules kept in a directory
//! (`src/identity/**`, all one module), and every `crate::` path in them
//! (paths go through the module, never the crate root's re-exports, so
//! each names its module).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The first segment of every `crate::` path in the code of `source`
/// (comments, doc links included, are not dependencies).
fn crate_paths(source: &str) -> BTreeSet<String> {
    let source: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    for (i, _) in source.match_indices("crate::") {
        let rest = &source[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            let mut first = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !item.is_empty() {
                            out.insert(std::mem::take(&mut item));
                        }
                        first = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && first {
                    if c.is_alphanumeric() || c == '_' {
                        item.push(c);
                        continue;
                    }
                    if !item.is_empty() {
                        out.insert(std::mem::take(&mut item));
                        first = false;
                    }
                }
            }
            if !item.is_empty() {
                out.insert(item);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

/// Every `.rs` file under `dir`, at any depth.
fn rust_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn modules_form_a_dag() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Each source file with the top-level module it belongs to: a file
    // of its own, or any file under a module's directory.
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            files.extend(rust_files(&path).into_iter().map(|f| (name.clone(), f)));
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
            // A module's test file belongs to it.
            let module = name.strip_suffix("_tests").unwrap_or(&name).to_owned();
            files.push((module, path));
        }
    }
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    for (module, path) in &files {
        let source = std::fs::read_to_string(path).unwrap();
        for dep in crate_paths(&source) {
            assert!(
                modules.contains(&dep),
                "{} uses `crate::{dep}`: go through the module that defines it",
                path.display()
            );
            if &dep != module {
                graph.entry(module.clone()).or_default().insert(dep);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            panic!("module cycle: {} -> {m}", path[i..].join(" -> "));
        }
        if done.contains(m) {
            return;
        }
        path.push(m.to_owned());
        for dep in graph.get(m).into_iter().flatten() {
            visit(dep, graph, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in &modules {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
    assert!(graph.contains_key("app"), "the graph was read: {graph:?}");
    assert!(
        graph.contains_key("identity"),
        "modules in directories are read: {graph:?}"
    );
}

#[test]
fn crate_paths_are_read() {
    let paths =
        crate_paths("use crate::error::ApiError;\nuse crate::{health, wire::{A, B}, routes};");
    assert_eq!(
        paths.into_iter().collect::<Vec<_>>(),
        ["error", "health", "routes", "wire"]
    );
}
