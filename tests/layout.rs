//! The source layout keeps its shape: no file in `src/` over 450 lines (tests beside it count too: move them
//! to a `*_tests.rs` file), and no import circle between the files of one folder (a module's `use` of a
//! sibling module, through `super::` or `crate::`, outside `#[cfg(test)]`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod support;

const MAX_LINES: usize = 450;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/db/landlord/mirror/claims.rs` → `[db, mirror, claims]`; a `mod.rs` or `lib.rs` is its folder's module.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .strip_prefix(src)
        .unwrap()
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The modules a file's non-test `use` declarations name, resolved to the longest existing module path.
fn imports(
    module: &[String],
    text: &str,
    modules: &BTreeSet<Vec<String>>,
) -> BTreeSet<Vec<String>> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = BTreeSet::new();
    for statement in code.split(';') {
        let Some(start) = statement.find("use ") else {
            continue;
        };
        let head = statement[..start].trim();
        if !(head.is_empty() || head.ends_with("pub") || head.ends_with(')') || head.ends_with('}'))
        {
            continue;
        }
        let tree: String = statement[start + 4..].split_whitespace().collect();
        for path in expand(&tree) {
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            let (mut base, mut rest): (Vec<String>, &[&str]) = match parts.first() {
                Some(&"crate") => (Vec::new(), &parts[1..]),
                Some(&"super" | &"self") => (module.to_vec(), &parts[..]),
                _ => continue,
            };
            while let Some(first) = rest.first() {
                match *first {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
            let mut target: Vec<String> = base;
            target.extend(rest.iter().map(|s| s.to_string()));
            while !target.is_empty() && !modules.contains(&target) {
                target.pop();
            }
            if !target.is_empty() && target != module {
                found.insert(target);
            }
        }
    }
    found
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (whitespace removed; `as` renames kept harmlessly).
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[from..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

#[test]
fn no_source_file_is_over_450_lines() {
    let src = support::repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:#?}");
}

#[test]
fn no_import_circle_inside_a_folder() {
    let src = support::repo_root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    // Edges between siblings only: a file and the folder module above it are one unit.
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let siblings: Vec<Vec<String>> = imports(&module, &text, &modules)
            .into_iter()
            .filter(|t| t.len() == module.len() && t[..t.len() - 1] == module[..module.len() - 1])
            .collect();
        edges.entry(module).or_default().extend(siblings);
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, bool>,
        path: &mut Vec<Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(node.clone(), true);
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(true) => {
                    let start = path.iter().position(|p| p == next).unwrap_or_default();
                    let names: Vec<String> = path[start..]
                        .iter()
                        .chain([next])
                        .map(|m| m.join("::"))
                        .collect();
                    cycles.push(names.join(" → "));
                }
                Some(false) => {}
                None => visit(next, edges, state, path, cycles),
            }
        }
        path.pop();
        state.insert(node.clone(), false);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for node in edges.keys() {
        if !state.contains_key(node) {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(
        cycles.is_empty(),
        "import circles inside a folder: {cycles:#?}"
    );
}

#[test]
fn the_circle_check_sees_a_circle() {
    let modules: BTreeSet<Vec<String>> =
        [vec!["db".into(), "a".into()], vec!["db".into(), "b".into()]].into();
    let a = imports(
        &["db".into(), "a".into()],
        "use super::{b::Thing, super::Error};\nuse crate::db::b;\n#[cfg(test)]\nuse super::c;",
        &modules,
    );
    assert_eq!(a, [vec!["db".to_string(), "b".to_string()]].into());
}
