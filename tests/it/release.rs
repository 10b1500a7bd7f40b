//! What a user installs: the release notes come from CHANGELOG.md (a section for the crate's
//! version, or an Unreleased one until it is released), release.yml publishes exactly that
//! section and packs the licences, the README's install lines name the tarballs release.yml
//! builds, and the licence files say what Cargo.toml says.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `.github/release-notes.sh VERSION CHANGELOG`: its exit code, stdout and stderr.
fn notes(version: &str, changelog: &Path) -> (i32, String, String) {
    let out = Command::new("bash")
        .arg(root().join(".github/release-notes.sh"))
        .arg(version)
        .arg(changelog)
        .output()
        .expect("bash runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The headings of CHANGELOG.md's sections, `## [X]` → `X`.
fn sections(changelog: &str) -> Vec<String> {
    changelog
        .lines()
        .filter_map(|l| l.strip_prefix("## ["))
        .filter_map(|l| l.split_once(']').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn the_changelog_has_a_section_for_the_crates_version_or_an_unreleased_one() {
    let version = env!("CARGO_PKG_VERSION");
    let changelog = read("CHANGELOG.md");
    let sections = sections(&changelog);
    let section = if sections.iter().any(|s| s == version) {
        version
    } else {
        "Unreleased"
    };
    assert!(
        sections.iter().any(|s| s == section),
        "CHANGELOG.md has no section ## [{version}] nor ## [Unreleased]: {sections:?}"
    );
    // The newest section is the first, and what the release script prints for it is not
    // empty.
    assert_eq!(
        sections.first().map(String::as_str),
        Some(section),
        "the newest section comes first"
    );
    let (code, said, err) = notes(section, &root().join("CHANGELOG.md"));
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("### "), "{said}");
    assert!(!said.contains("## ["), "only its own section: {said}");
}

#[test]
fn the_release_notes_are_the_versions_section_and_a_missing_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let changelog = dir.path().join("CHANGELOG.md");
    std::fs::write(
        &changelog,
        "# Changelog\n\nIntro.\n\n## [Unreleased]\n\n### Added\n\n- next\n\n\
         ## [1.2.0] - 2026-12-01\n\n### Fixed\n\n- a fix\n- another\n\n\n\
         ## [1.1.0] - 2026-11-01\n\n### Added\n\n- old\n\n[1.1.0]: https://example.test/1.1.0\n",
    )
    .unwrap();
    let (code, said, err) = notes("v1.2.0", &changelog);
    assert_eq!(code, 0, "{err}");
    assert_eq!(said, "### Fixed\n\n- a fix\n- another\n");
    let (code, said, _) = notes("1.1.0", &changelog);
    assert_eq!(code, 0);
    assert_eq!(said, "### Added\n\n- old\n", "no link definitions");
    let (code, said, err) = notes("1.3.0", &changelog);
    assert_eq!(code, 2, "{said}");
    assert!(said.is_empty(), "{said}");
    assert!(
        err.contains("has no section for 1.3.0") && err.contains("CHANGELOG.md"),
        "{err}"
    );
    // A prefix of a version is not that version.
    let (code, _, _) = notes("1.2", &changelog);
    assert_eq!(code, 2);
}

fn release_workflow() -> Value {
    serde_saphyr::from_str(&read(".github/workflows/release.yml")).unwrap()
}

/// Every `run:` of a job's steps, joined.
fn runs(job: &Value) -> String {
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_release_workflow_publishes_the_changelogs_section_and_packs_the_licences() {
    let workflow = release_workflow();
    let build = runs(&workflow["jobs"]["build"]);
    assert!(
        build.contains(".github/release-notes.sh \"$version\""),
        "the build refuses a tag without its changelog section before building:\n{build}"
    );
    for file in ["README.md", "CHANGELOG.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        assert!(build.contains(file), "the tarball holds {file}:\n{build}");
    }
    let publish = runs(&workflow["jobs"]["publish"]);
    assert!(
        publish.contains(".github/release-notes.sh \"$TAG\" >\"$RUNNER_TEMP/notes.md\""),
        "{publish}"
    );
    assert!(
        publish.contains("--notes-file \"$RUNNER_TEMP/notes.md\""),
        "{publish}"
    );
    assert!(!publish.contains("--generate-notes"), "{publish}");
    // The publish job has the checkout the script and CHANGELOG.md come from.
    let checkout = workflow["jobs"]["publish"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout@"))
        });
    assert!(checkout, "publish checks the repository out");
}

#[test]
fn the_readme_installs_the_tarballs_the_release_builds_checked_against_sha256sums() {
    let readme = read("README.md");
    let install = readme
        .split_once("\n## Install\n")
        .expect("README.md has an Install section")
        .1;
    let install = install.split("\n## ").next().unwrap();
    assert!(
        install.contains("cargo install --locked --git "),
        "{install}"
    );
    let workflow = release_workflow();
    let targets: Vec<&str> = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert!(!targets.is_empty());
    for target in targets {
        assert!(
            install.contains(&format!("hoist-X.Y.Z-{target}.tar.gz")),
            "the README names the tarball for {target}:\n{install}"
        );
    }
    assert!(
        runs(&workflow["jobs"]["build"]).contains("name=\"hoist-$VERSION-$TARGET\""),
        "release.yml names the tarballs hoist-VERSION-TARGET"
    );
    assert!(
        install.contains("sha256sum --check --ignore-missing SHA256SUMS"),
        "{install}"
    );
    assert!(
        runs(&workflow["jobs"]["publish"]).contains("sha256sum hoist-*.tar.gz >SHA256SUMS"),
        "the release publishes SHA256SUMS"
    );
}

#[test]
fn the_licence_files_are_what_cargo_toml_and_the_readme_say() {
    let manifest = read("Cargo.toml");
    assert!(
        manifest.contains("\nlicense = \"MIT OR Apache-2.0\"\n"),
        "Cargo.toml's licence"
    );
    for field in [
        "repository",
        "readme",
        "keywords",
        "categories",
        "rust-version",
    ] {
        assert!(
            manifest.contains(&format!("\n{field} = ")),
            "Cargo.toml has {field}"
        );
    }
    assert!(read("LICENSE-MIT").starts_with("MIT License\n"));
    assert!(read("LICENSE-APACHE").contains("Apache License\n                        Version 2.0"));
    let readme = read("README.md");
    assert!(
        readme.contains("[MIT license](LICENSE-MIT)")
            && readme.contains("[Apache License, Version 2.0](LICENSE-APACHE)"),
        "the README says which licences"
    );
}
