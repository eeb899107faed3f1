//! No cycle among the host's top-level modules (`host/src/*`): each
//! module may use only those below it, so that a reader can learn the
//! crate from the bottom up (records, errors and settings first; the poll
//! loop and the admin API last) and a change low down cannot depend on
//! the layers that use it. The same holds inside each module with
//! sub-modules (`task/`, `operator/`, `operator/window/`, …), where the
//! parent's own file (`mod.rs`) counts as one more module.
//!
//! The check reads the source as text: every `crate::<module>` path in a
//! module's non-test code is an edge (inside `dir/`: every
//! `crate::dir::<module>`, and `super::<module>` or a `use <module>::` of
//! the parent). Comments, `#[cfg(test)]` modules and files only tests
//! declare are left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules of `dir`, each with the files it is made of; the parent's
/// own `mod.rs` is the module `mod`.
fn modules(dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            out.insert(name, rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            out.insert(name, vec![path]);
        }
    }
    out
}

/// Every directory under `dir`, itself included.
fn dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(dirs(&path));
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Names of the modules declared `#[cfg(test)] mod name;` anywhere.
fn test_only_files(files: &[PathBuf]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] == "#[cfg(test)]"
                && let Some(name) = pair[1]
                    .strip_prefix("mod ")
                    .and_then(|rest| rest.strip_suffix(';'))
            {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The code of `text` that is not a comment or a `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim().starts_with("mod ") && next.trim().ends_with('{'))
        {
            // The module runs to the end of the file, by this crate's
            // convention (checked: nothing but a closing brace may follow
            // at column 0 before the end).
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let line = match line.find("//") {
            // A trailing comment (not inside a string: close enough for
            // `crate::` paths, which never appear in strings here).
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether `code` has a path starting at module `name` (`name::`, not
/// `other_name::` or `x::name::`).
fn mentions(code: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    code.match_indices(&needle).any(|(i, _)| {
        !code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    })
}

/// Every `crate::<name>` in `code`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    paths_after(code, "crate::")
}

/// Every `<prefix><name>` in `code`.
fn paths_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let after = &rest[i + prefix.len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
        rest = after;
    }
    found
}

/// The dependency graph of the modules of `dir` (`src`, or one of its
/// directories): module → modules it uses, with one file for each edge
/// (to name it in a failure).
fn graph(src: &Path, dir: &Path) -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let modules = modules(dir);
    let inside = dir.strip_prefix(src).unwrap();
    let prefix: String = std::iter::once("crate".to_owned())
        .chain(inside.iter().map(|c| c.to_string_lossy().into_owned()))
        .map(|c| c + "::")
        .collect();
    let all: Vec<PathBuf> = rust_files(src);
    let test_only = test_only_files(&all);
    let mut edges: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for (module, files) in &modules {
        let uses = edges.entry(module.clone()).or_default();
        for file in files {
            let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
            if test_only.contains(&stem) {
                continue;
            }
            let code = format!("\n{}", code(&std::fs::read_to_string(file).unwrap()));
            let mut targets = paths_after(&code, &prefix);
            if file.parent() == Some(dir) {
                // The file's own `use`s (a nested module's `super::` is
                // that module's parent, within the file).
                targets.extend(paths_after(&code, "\nuse super::"));
                targets.extend(paths_after(&code, "\npub use super::"));
            }
            if module == "mod" {
                // The parent's file names its children by their own names.
                targets.extend(modules.keys().filter(|c| mentions(&code, c)).cloned());
            }
            for target in targets {
                // An item of the parent's own file, in a directory.
                let target = match modules.contains_key(&target) {
                    true => target,
                    false if modules.contains_key("mod") && !inside.as_os_str().is_empty() => {
                        "mod".to_owned()
                    }
                    false => continue,
                };
                if target != *module {
                    uses.entry(target).or_insert_with(|| file.clone());
                }
            }
        }
    }
    edges
}

/// A cycle through `graph`, if there is one (as the modules along it).
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, PathBuf>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = path.iter().position(|m| m == next).unwrap();
                    let mut cycle = path[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(next, graph, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(c) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_hosts_top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src, &src);
    assert!(graph.len() > 10, "found the modules: {:?}", graph.keys());
    assert_acyclic(&src, &graph);
}

#[test]
fn the_modules_inside_each_module_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = Vec::new();
    for dir in dirs(&src).into_iter().skip(1) {
        assert_acyclic(&src, &graph(&src, &dir));
        checked.push(dir.strip_prefix(&src).unwrap().display().to_string());
    }
    for dir in ["task", "operator", "operator/window"] {
        assert!(checked.iter().any(|d| d == dir), "checked {checked:?}");
    }
}

/// Fails naming the cycle, if `graph` has one.
fn assert_acyclic(src: &Path, graph: &BTreeMap<String, BTreeMap<String, PathBuf>>) {
    if let Some(cycle) = find_cycle(graph) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                let file = &graph[&w[0]][&w[1]];
                format!(
                    "  {} -> {} (in {})",
                    w[0],
                    w[1],
                    file.strip_prefix(src).unwrap_or(file).display()
                )
            })
            .collect();
        panic!(
            "host/src's modules form a cycle; each module may use only those below it:\n{}",
            steps.join("\n")
        );
    }
}

#[test]
fn the_check_finds_a_cycle() {
    let edge = |to: &str| (to.to_owned(), PathBuf::from("f.rs"));
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeMap::from([edge("b")])),
        ("b".to_owned(), BTreeMap::from([edge("c")])),
        ("c".to_owned(), BTreeMap::from([edge("a")])),
        ("d".to_owned(), BTreeMap::from([edge("a")])),
    ]);
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let acyclic = BTreeMap::from([
        ("a".to_owned(), BTreeMap::from([edge("b")])),
        ("b".to_owned(), BTreeMap::new()),
    ]);
    assert_eq!(find_cycle(&acyclic), None);
    assert_eq!(
        crate_paths(&code(
            "use crate::error::X;\n// crate::admin in a comment\nlet a = crate::state::f(); // crate::task\n#[cfg(test)]\nmod tests {\n use crate::runner;\n}\n"
        )),
        BTreeSet::from(["error".into(), "state".into()])
    );
    assert!(mentions("let x = batch::f();", "batch"));
    assert!(!mentions(
        "let x = other_batch::f(); crate::x::batch::g()",
        "batch"
    ));
}
