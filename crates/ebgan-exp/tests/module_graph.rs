//! Arrows one way (docs/design.md): within every module, its child modules use each other
//! without a circle. A file's `crate::a::b` and `super::` paths are edges between the children of
//! the deepest module that holds both ends, so a circle through a parent module counts too:
//! `report/epochs.rs -> train::ladder` and `train/ladder/epochs.rs -> report` are the circle
//! `report <-> train` at the crate's root. A module and its own ancestors may use each other.
//! Test modules (`#[cfg(test)] mod ...` to the end of a file) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// `src/a/b.rs` -> a::b; `src/a/mod.rs` -> a; `src/lib.rs`, `src/main.rs` -> the root.
fn module_of(rel: &Path) -> Module {
    let mut m: Module = rel
        .iter()
        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        m.pop();
    }
    m
}

/// The code before a file's test module.
fn code(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines.windows(2).position(|w| {
        w[0].trim() == "#[cfg(test)]" && {
            let t = w[1].trim_start();
            t.starts_with("mod ") || t.starts_with("pub mod ")
        }
    });
    match cut {
        Some(i) => &text[..lines[..i].iter().map(|l| l.len() + 1).sum::<usize>()],
        None => text,
    }
}

/// The paths a file names from `crate::` or `super::`, absolute (`crate::{a, b::c}` as both).
fn paths(text: &str, module: &[String]) -> Vec<Module> {
    let ident = |s: &str| {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect::<String>()
    };
    let split = |s: &str| -> Module {
        s.split("::")
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect()
    };
    let mut out = vec![];
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(inner.split(',').map(|p| split(&ident(p.trim()))));
        } else {
            out.push(split(&ident(rest)));
        }
    }
    for (at, _) in text.match_indices("super::") {
        // Only the first `super::` of a chain: count the chain there.
        if text[..at].ends_with("super::") {
            continue;
        }
        let mut rest = &text[at..];
        // `super` of a/b.rs (module a::b) is a; of a/mod.rs (module a), the root.
        let mut base: Module = module.to_vec();
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        base.extend(split(&ident(rest)));
        out.push(base);
    }
    out
}

/// Every module of a crate's src/ and the edges between sibling modules, by parent.
fn graph(src: &Path) -> BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> {
    let mut files = vec![];
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let modules: BTreeSet<Module> = files
        .iter()
        .map(|f| module_of(f.strip_prefix(src).unwrap()))
        .collect();
    let mut edges: BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(src).unwrap();
        let from = module_of(rel);
        let text = std::fs::read_to_string(f).unwrap();
        for p in paths(code(&text), &from) {
            // The longest prefix that is a module: the module the path lands in.
            let Some(to) = (0..=p.len())
                .rev()
                .map(|k| p[..k].to_vec())
                .find(|m| modules.contains(m))
            else {
                continue;
            };
            let d = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // One inside the other: a module and its ancestors may use each other.
            if d == from.len() || d == to.len() {
                continue;
            }
            let parent = from[..d].to_vec();
            let children = edges.entry(parent).or_default();
            children
                .entry(from[d].clone())
                .or_default()
                .insert(to[d].clone());
        }
    }
    edges
}

/// The circles among one module's children: each strongly connected set of more than one.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        seen
    };
    let mut found: Vec<BTreeSet<String>> = vec![];
    for a in edges.keys() {
        let from_a = reach(a);
        let comp: BTreeSet<String> = from_a
            .iter()
            .filter(|b| *b != a && reach(b).contains(a))
            .cloned()
            .chain([a.clone()])
            .collect();
        if comp.len() > 1 && !found.contains(&comp) {
            found.push(comp);
        }
    }
    found
}

fn report(src: &Path) -> Vec<String> {
    graph(src)
        .iter()
        .flat_map(|(parent, edges)| {
            let at = match parent.is_empty() {
                true => "the crate root".to_string(),
                false => parent.join("::"),
            };
            circles(edges).into_iter().map(move |c| {
                let names: Vec<_> = c.into_iter().collect();
                format!(
                    "{}: a circle among {at}'s modules {}",
                    src.display(),
                    names.join(" <-> ")
                )
            })
        })
        .collect()
}

#[test]
fn no_module_circle_in_any_crate_even_through_a_parent_module() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    let mut found = vec![];
    let mut checked = 0;
    for e in std::fs::read_dir(&crates).unwrap() {
        let src: PathBuf = e.unwrap().path().join("src");
        if src.is_dir() {
            found.extend(report(&src));
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "the workspace's crates under {}",
        crates.display()
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_circle_through_a_parent_module_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path();
    let write = |p: &str, text: &str| {
        let p = src.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "lib.rs",
        "pub mod report;\npub mod train;\npub mod stats;\n",
    );
    write("stats.rs", "pub fn quantile() {}\n");
    write("report/mod.rs", "pub mod epochs;\npub fn quantile() {}\n");
    write(
        "report/epochs.rs",
        "use crate::train::ladder::epochs::EpochRow;\nuse super::quantile;\n",
    );
    write("train/mod.rs", "pub mod ladder;\n");
    write("train/ladder/mod.rs", "pub mod epochs;\n");
    // The circle: back to report through its parent module.
    write(
        "train/ladder/epochs.rs",
        "pub struct EpochRow;\nuse crate::{stats, report::quantile};\n#[cfg(test)]\nmod tests {\n    use crate::report;\n}\n",
    );
    let found = report(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("the crate root's modules report <-> train"),
        "{found:?}"
    );
    // Opened (the quantile from stats), and a use inside a test module does not count.
    write("train/ladder/epochs.rs", "pub struct EpochRow;\nuse crate::stats::quantile;\n#[cfg(test)]\nmod tests {\n    use crate::report;\n}\n");
    assert_eq!(report(src), Vec::<String>::new());
    // A deeper circle: two siblings inside train, through `super::`.
    write(
        "train/ladder/mod.rs",
        "pub mod epochs;\nuse super::cohort::X;\n",
    );
    write(
        "train/cohort.rs",
        "pub struct X;\nuse super::ladder::epochs::EpochRow;\n",
    );
    write("train/mod.rs", "pub mod ladder;\npub mod cohort;\n");
    let found = report(src);
    assert!(
        found.len() == 1 && found[0].contains("train's modules cohort <-> ladder"),
        "{found:?}"
    );
}
