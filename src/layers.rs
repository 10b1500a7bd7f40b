//! The direction of dependencies, as a test: each top-level module may use only the modules
//! its layer sits on.
//!
//! ```text
//! cli ─→ github ─→ output ─→ ops ─→ plan ─→ domain ─→ config
//!                             │               ↑
//!                             └─→ adapters ───┘   (aws, transport, lock, ecr, image, revision)
//! ```
//!
//! `config` reads the user's file and is the leaf; `domain` is plain data and pure functions;
//! `plan` turns config and inputs into a plan; the adapters talk to AWS, the hosts, Docker and
//! git, knowing only the domain (and `aws`, which builds their clients); `ops` sequences the
//! work and judges it; `output` and `github` show what ops reports; `cli` parses arguments
//! and calls one `ops` function per command.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// The adapters, which talk to AWS, the hosts, Docker and git.
    const ADAPTERS: &[&str] = &["transport", "lock", "ecr", "image", "revision", "aws"];

    /// What each top-level module may use (`crate::<module>`), besides itself; `adapters`
    /// stands for every one of `ADAPTERS`.
    const ALLOWED: &[(&str, &[&str])] = &[
        ("config", &[]),
        ("domain", &["config"]),
        ("plan", &["domain", "config"]),
        ("aws", &["domain", "config"]),
        ("transport", &["aws", "domain", "config"]),
        ("lock", &["aws", "domain", "config"]),
        ("ecr", &["aws", "domain", "config"]),
        ("image", &["domain", "config"]),
        ("revision", &["domain", "config"]),
        ("ops", &["adapters", "plan", "domain", "config"]),
        ("output", &["ops", "plan", "domain", "config"]),
        ("github", &["output", "ops", "plan", "domain", "config"]),
        (
            "cli",
            &[
                "github", "output", "ops", "adapters", "plan", "domain", "config",
            ],
        ),
    ];

    /// `ALLOWED` with `adapters` spelt out.
    fn allowed() -> BTreeMap<&'static str, Vec<&'static str>> {
        ALLOWED
            .iter()
            .map(|&(module, may)| {
                let may = may
                    .iter()
                    .flat_map(|&m| {
                        if m == "adapters" {
                            ADAPTERS.to_vec()
                        } else {
                            vec![m]
                        }
                    })
                    .collect();
                (module, may)
            })
            .collect()
    }

    /// Production code of a file: without `//` comments (doc links name modules too) and
    /// without `#[cfg(test)]` items (a test may reach anywhere).
    fn production_code(text: &str) -> String {
        let mut out = String::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            if trimmed == "#[cfg(test)]" {
                // Skip the item: up to its closing brace at the same depth (or its `;`).
                let mut depth = 0usize;
                let mut opened = false;
                for item in lines.by_ref() {
                    for c in item.chars() {
                        match c {
                            '{' => {
                                depth += 1;
                                opened = true;
                            }
                            '}' => depth = depth.saturating_sub(1),
                            _ => {}
                        }
                    }
                    if (opened && depth == 0) || (!opened && item.trim_end().ends_with(';')) {
                        break;
                    }
                }
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// The top-level modules a file's production code names: `crate::x` paths and the
    /// members of `use crate::{x, y::z}` groups.
    fn used_modules(code: &str) -> BTreeSet<String> {
        let mut used = BTreeSet::new();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for part in group[..end].split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        used.insert(name);
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                used.insert(name);
            }
        }
        used
    }

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

    /// Every top-level module's uses of the others, from `src/`.
    fn uses() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut uses: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for file in files {
            let rel = file.strip_prefix(&src).unwrap();
            let module = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            // A module's tests (`tests.rs`, or a `tests/` directory of them) may reach anywhere.
            if matches!(module.as_str(), "lib" | "main" | "layers")
                || rel.file_name().is_some_and(|n| n == "tests.rs")
                || rel.components().any(|c| c.as_os_str() == "tests")
            {
                continue;
            }
            let code = production_code(&std::fs::read_to_string(&file).unwrap());
            for used in used_modules(&code) {
                if used != module {
                    uses.entry(module.clone())
                        .or_default()
                        .entry(used)
                        .or_default()
                        .insert(rel.display().to_string());
                }
            }
        }
        uses
    }

    #[test]
    fn every_module_uses_only_the_layers_below_it() {
        let allowed = allowed();
        let mut wrong = Vec::new();
        for (module, used) in uses() {
            let Some(may) = allowed.get(module.as_str()) else {
                wrong.push(format!(
                    "{module}: a top-level module with no place in ALLOWED"
                ));
                continue;
            };
            for (target, files) in used {
                if !may.contains(&target.as_str()) {
                    let files: Vec<_> = files.into_iter().collect();
                    wrong.push(format!("{module} → {target} ({})", files.join(", ")));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "upward or sideways imports:\n{}",
            wrong.join("\n")
        );
    }

    /// The allow-list itself has no cycle (so the modules cannot have one).
    #[test]
    fn the_layers_form_no_cycle() {
        fn visit<'a>(
            m: &'a str,
            allowed: &'a BTreeMap<&'static str, Vec<&'static str>>,
            path: &mut Vec<&'a str>,
        ) {
            assert!(!path.contains(&m), "cycle: {} → {m}", path.join(" → "));
            path.push(m);
            for next in allowed.get(m).into_iter().flatten() {
                visit(next, allowed, path);
            }
            path.pop();
        }
        let allowed = allowed();
        for m in allowed.keys() {
            visit(m, &allowed, &mut Vec::new());
        }
    }

    #[test]
    fn the_scanner_sees_groups_and_paths_and_skips_tests_and_comments() {
        let code = production_code(
            "use crate::{plan::Plan, domain};\n// crate::cli in a comment\n\
             fn f() { crate::aws::x(); }\n#[cfg(test)]\nmod tests {\n    use crate::cli;\n}\n",
        );
        let used: Vec<_> = used_modules(&code).into_iter().collect();
        assert_eq!(used, ["aws", "domain", "plan"]);
    }
}
