//! The crate's modules depend on each other without cycles: each one can
//! be read, and changed, knowing only the modules below it.
//!
//! Reads `src/*.rs` and every `crate::` path in them (paths go through
//! the module, never the crate root's re-exports, so each names its
//! module).

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

#[test]
fn modules_form_a_dag() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let files: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    let modules: BTreeSet<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|m| m != "lib")
        .collect();
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" {
            continue;
        }
        // A module's test file belongs to it.
        let module = name.strip_suffix("_tests").unwrap_or(&name).to_owned();
        let source = std::fs::read_to_string(path).unwrap();
        for dep in crate_paths(&source) {
            assert!(
                modules.contains(&dep),
                "{name}.rs uses `crate::{dep}`: go through the module that defines it"
            );
            if dep != module {
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
