//! The core's shape, checked: no import cycle between its modules, and no source file (tests
//! aside) much over 600 lines. Reads `src/`; no build of anything else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules left out: the crate root, and helpers only tests and fuzzing use.
const OUTSIDE: [&str; 3] = ["lib", "testing", "fuzzing"];
/// "About 600 lines".
const MAX_LINES: usize = 650;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every non-test source file under `src/`, with the top-level module it belongs to.
fn sources() -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name != "tests.rs" && !name.ends_with("_tests.rs")
        })
        .map(|p| {
            let rel = p.strip_prefix(src()).unwrap().to_path_buf();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            (first.trim_end_matches(".rs").to_owned(), p)
        })
        .filter(|(module, _)| !OUTSIDE.contains(&module.as_str()))
        .collect()
}

/// A file's lines before its inline `#[cfg(test)]` part, comments left out. A test module kept
/// in a file of its own (`#[cfg(test)]` then `mod tests;`) ends nothing: the code after it is
/// read too.
fn code_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().peekable();
    let mut code = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            match lines.peek() {
                Some(next)
                    if next.trim_start().starts_with("mod ") && next.trim_end().ends_with(';') =>
                {
                    lines.next();
                    continue;
                }
                _ => break,
            }
        }
        if !line.trim_start().starts_with("//") {
            code.push(line.to_owned());
        }
    }
    code
}

/// The items `lib.rs` re-exports, by the module that defines them (`crate::Vault` is the vault's).
fn reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut map = BTreeMap::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("pub use ")) {
        let (module, items) = line.split_once("::").unwrap();
        for item in items
            .trim_end_matches(';')
            .trim_matches(|c| c == '{' || c == '}')
            .split(',')
        {
            map.insert(item.trim().to_owned(), module.to_owned());
        }
    }
    map
}

/// Which top-level modules each one names through `crate::`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let reexported = reexports();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in sources() {
        let uses = graph.entry(module.clone()).or_default();
        for line in code_lines(&path) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let target = reexported.get(&name).cloned().unwrap_or(name);
                if target != module && !OUTSIDE.contains(&target.as_str()) {
                    uses.insert(target);
                }
            }
        }
    }
    graph
}

#[test]
fn no_import_cycle_between_the_cores_modules() {
    let graph = graph();
    assert!(
        graph.contains_key("vault") && graph.contains_key("grants"),
        "{graph:?}"
    );
    // A depth-first walk from each module; meeting a module on the current path is a cycle.
    fn visit<'g>(
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        module: &'g str,
        path: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| *m == module) {
            let mut cycle: Vec<String> = path[start..].iter().map(|m| m.to_string()).collect();
            cycle.push(module.to_owned());
            return Some(cycle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(&graph, module, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn source_files_stay_small() {
    let long: Vec<String> = sources()
        .into_iter()
        .map(|(_, path)| {
            (
                std::fs::read_to_string(&path).unwrap().lines().count(),
                path,
            )
        })
        .filter(|(lines, _)| *lines > MAX_LINES)
        .map(|(lines, path)| format!("{} ({lines} lines)", path.display()))
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}

/// Grants, sign-in flows and the agent reach a tenant's records only through the storage seam
/// (`store::TenantStore`): no SQL, no keychain, no database connection of their own.
#[test]
fn grant_logic_reaches_storage_only_through_the_store() {
    const LOGIC: [&str; 4] = ["grants", "connect", "provider_app", "agent"];
    const STORAGE: [&str; 5] = ["rusqlite", "keychain", ".conn()", "LocalStore", "crate::db"];
    let (mut found, mut scanned) = (Vec::new(), BTreeSet::new());
    for (module, path) in sources() {
        if !LOGIC.contains(&module.as_str()) {
            continue;
        }
        scanned.insert(module);
        for line in code_lines(&path) {
            if let Some(word) = STORAGE.iter().find(|w| line.contains(*w)) {
                found.push(format!("{}: {word}: {}", path.display(), line.trim()));
            }
        }
    }
    assert_eq!(scanned.len(), LOGIC.len(), "{scanned:?}");
    assert!(
        found.is_empty(),
        "storage outside the store:\n{}",
        found.join("\n")
    );
}
