//! `docs/architecture.md` matches the tree: every file or directory it
//! names exists, and every top-level module of `host/src` and every file
//! of `operator/` appears in it.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The paths the page names in backticks: `a/b.rs`, `dir/`, `x.rs` (a
/// list in braces, `dir/{a,b}.rs`, names each), and markdown links.
fn named_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let span = span.split_whitespace().next().unwrap_or("");
        let looks_like_path = span.ends_with(".rs") || span.ends_with('/');
        if !looks_like_path || span.contains("::") {
            continue;
        }
        match (span.find('{'), span.find('}')) {
            (Some(a), Some(b)) => {
                for name in span[a + 1..b].split(',') {
                    out.push(format!("{}{}{}", &span[..a], name, &span[b + 1..]));
                }
            }
            _ => out.push(span.to_owned()),
        }
    }
    out
}

/// Where a named path is: from the repository root (`tests/…`, `docs/…`),
/// from `host/src`, or, for a bare file name, the directory named last
/// before it on its line (`operator/window/mod.rs`, then `hopping.rs`).
fn resolve(path: &str, context: Option<&str>) -> (Option<PathBuf>, bool) {
    let root = root();
    let src = root.join("host/src");
    let own = [
        root.join(path),
        src.join(path),
        root.join("docs").join(path),
    ];
    if let Some(p) = own.into_iter().find(|p| p.exists()) {
        return (Some(p), true);
    }
    let in_context = context.map(|dir| src.join(dir).join(path));
    (in_context.filter(|p| p.exists()), false)
}

#[test]
fn every_path_the_architecture_page_names_exists() {
    let text = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        let mut context: Option<String> = None;
        for path in named_paths(line) {
            // Things to come are named as what they would be.
            if line.contains("(to come)") {
                continue;
            }
            match resolve(&path, context.as_deref()) {
                (Some(p), on_its_own) => {
                    checked += 1;
                    let src = root().join("host/src");
                    if let (true, Ok(rel)) = (on_its_own, p.strip_prefix(&src)) {
                        let dir = if p.is_dir() {
                            rel
                        } else {
                            rel.parent().unwrap()
                        };
                        if !dir.as_os_str().is_empty() {
                            context = Some(dir.display().to_string());
                        }
                    }
                }
                (None, _) => missing.push(format!("{path} (line: {})", line.trim())),
            }
        }
    }
    assert!(checked > 50, "read only {checked} paths");
    assert!(
        missing.is_empty(),
        "docs/architecture.md names paths that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_module_and_operator_file_is_on_the_page() {
    let text = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let src = root().join("host/src");
    let mut absent = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let named = if path.is_dir() {
            format!("`{name}/")
        } else {
            format!("`{name}`")
        };
        if name != "lib.rs" && !text.contains(&named) {
            absent.push(named);
        }
    }
    for dir in ["operator", "operator/window", "task", "runner"] {
        for entry in std::fs::read_dir(src.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() && !text.contains(&name) && !name.ends_with("_tests.rs") {
                absent.push(format!("{dir}/{name}"));
            }
        }
    }
    assert!(
        absent.is_empty(),
        "docs/architecture.md does not mention: {absent:?}"
    );
}

#[test]
fn named_paths_reads_spans_lists_and_skips_rust_paths() {
    assert_eq!(
        named_paths("see `a/b.rs` and `op/{x,y}.rs`, `dir/`, not `crate::a::b.rs` or `fn`"),
        vec!["a/b.rs", "op/x.rs", "op/y.rs", "dir/"]
    );
}
