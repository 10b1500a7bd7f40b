//! A bounded fuzz test of the config decoder (a property test: cargo-fuzz needs nightly).
//!
//! Generates YAML-ish documents, from config-shaped trees of known keys to raw byte-level
//! mutations of a good config, with hostile scalars (control and bidi characters, huge
//! numbers, YAML 1.1 words, SSM references), deep nesting, anchors and aliases. For every
//! document: `hoist::config::parse` does not panic; an error renders, naming a location
//! inside the text and printing no hidden character; a config it accepts holds no hidden
//! character nor SSM reference, and plans (in every format) without panicking, within
//! SSM's 48h.

use std::fmt::Write as _;
use std::path::Path;

use hoist::config::{self, text};
use hoist::plan::{self, Format, Inputs, Phase, Step, TransportKind};
use proptest::prelude::*;

const CASES: u32 = 2000;

/// Keys beyond the schema's own (`config::schema_keys`): env-style names, a merge key, a
/// reserved label.
const EXTRA_KEYS: &[&str] = &["Env", "MODE", "API_TOKEN", "<<", "hoist.app"];

/// Every key the schema knows, at any level, plus the extras: new schema keys are fuzzed
/// without editing this file.
fn keys() -> Vec<&'static str> {
    config::schema_keys()
        .chain(EXTRA_KEYS.iter().copied())
        .collect()
}

/// Scalars that have tripped YAML readers, durations and the schema before.
const WORDS: &[&str] = &[
    "web",
    "prod",
    "true",
    "off",
    "yes",
    "No",
    "~",
    "null",
    "",
    ".inf",
    "-.inf",
    ".nan",
    "-0",
    "0x1F",
    "0o17",
    "0b101",
    "1e3",
    "1.10",
    "0123",
    "1_000",
    "+12",
    "70000",
    "0",
    "-1",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "-170141183460469231731687303715884105729",
    "99999999999999999999999h",
    "48h",
    "48h1s",
    "1m30s",
    "500ms",
    "49h",
    "30s",
    "5d",
    "i-0123456789abcdef0",
    "linux/amd64",
    "10%",
    "101%",
    "{{ssm:/db/pw}}",
    "{{ resolve:x}}",
    "/healthz",
    "data:/data:ro",
    "us-east-1",
    "unless-stopped",
    "on-failure:3",
    "recreate",
    "blue-green",
    "64m",
    "1g",
    "0.5",
    "auto",
    "classic",
    "- a",
    "? x",
    ": y",
    "#c",
    "&a",
    "*a",
    "!!str",
    "!!int 1",
    "%YAML",
    "---",
    "...",
    "é→🙂",
    "\u{202e}evil",
    "a\u{0}b",
    "\u{1b}[2J",
    "x\ry",
    "\u{85}",
    "\u{feff}",
    "```",
    "<!--",
];

#[derive(Debug, Clone)]
enum Scalar {
    /// Written as is (may well be a syntax error).
    Plain(String),
    /// `"…"` with every non-printable written as a YAML escape.
    Double(String),
    /// `'…'`.
    Single(String),
    Int(i128),
    Float(f64),
}

#[derive(Debug, Clone)]
enum Tree {
    Scalar(Scalar),
    Alias(u8),
    Anchored(u8, Box<Tree>),
    Seq(Vec<Tree>, bool),
    Map(Vec<(Scalar, Tree)>, bool),
    /// `depth` nested flow sequences: past the parser's depth budget.
    Deep(u16),
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_owned),
        2 => "\\PC{0,16}",
        2 => prop::collection::vec(any::<char>(), 0..12).prop_map(|v| v.into_iter().collect()),
        1 => prop::collection::vec(
            prop::sample::select(&['\0', '\t', '\n', '\r', '\u{1b}', '\u{7f}', '\u{9b}',
                '\u{202a}', '\u{2069}', 'a', '`', '~', ' ', '"', '\'', '\\', ':', '#'][..]),
            0..10
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

fn scalar_strategy() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        4 => text_strategy().prop_map(Scalar::Plain),
        3 => text_strategy().prop_map(Scalar::Double),
        1 => text_strategy().prop_map(Scalar::Single),
        1 => any::<i128>().prop_map(Scalar::Int),
        1 => (0i128..=70000).prop_map(Scalar::Int),
        1 => any::<f64>().prop_map(Scalar::Float),
    ]
}

fn key_strategy() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        8 => prop::sample::select(keys()).prop_map(|k| Scalar::Plain(k.to_owned())),
        1 => scalar_strategy(),
    ]
}

fn tree_strategy() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        8 => scalar_strategy().prop_map(Tree::Scalar),
        1 => (0u8..3).prop_map(Tree::Alias),
        1 => (0u16..300).prop_map(Tree::Deep),
    ];
    leaf.prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            3 => (prop::collection::vec((key_strategy(), inner.clone()), 0..6), any::<bool>())
                .prop_map(|(entries, flow)| Tree::Map(entries, flow)),
            2 => (prop::collection::vec(inner.clone(), 0..5), any::<bool>())
                .prop_map(|(items, flow)| Tree::Seq(items, flow)),
            1 => (0u8..3, inner).prop_map(|(a, t)| Tree::Anchored(a, Box::new(t))),
        ]
    })
}

/// A document shaped like a config: a top-level mapping of mostly known keys, usually
/// with a plausible `app` and `targets` so the decoder reaches the deeper fields.
fn document_strategy() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec((key_strategy(), tree_strategy()), 0..8),
    )
        .prop_map(|(plausible, entries)| {
            let mut out = String::new();
            if plausible {
                out.push_str("app: web\ntargets:\n  tags: {Env: [prod]}\n");
            }
            for (key, value) in &entries {
                emit_scalar(&mut out, key);
                out.push(':');
                emit_value(&mut out, value, 1);
            }
            out
        })
}

fn emit_scalar(out: &mut String, s: &Scalar) {
    match s {
        Scalar::Plain(t) => out.push_str(t),
        Scalar::Single(t) => {
            let _ = write!(out, "'{}'", t.replace('\'', "''"));
        }
        Scalar::Double(t) => {
            out.push('"');
            for c in t.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 || c == '\u{7f}' => {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    }
                    c if text::is_hidden(c) || c == '\u{feff}' => {
                        let _ = write!(out, "\\u{:04x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Scalar::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Scalar::Float(x) => {
            let _ = write!(out, "{x:?}");
        }
    }
}

/// Writes a value after `key:` (block style at `depth`, or flow style).
fn emit_value(out: &mut String, tree: &Tree, depth: usize) {
    match tree {
        Tree::Map(entries, false) if !entries.is_empty() => {
            for (k, v) in entries {
                out.push('\n');
                out.push_str(&"  ".repeat(depth));
                emit_scalar(out, k);
                out.push(':');
                emit_value(out, v, depth + 1);
            }
            return;
        }
        Tree::Seq(items, false) if !items.is_empty() => {
            for item in items {
                out.push('\n');
                out.push_str(&"  ".repeat(depth));
                out.push('-');
                emit_value(out, item, depth + 1);
            }
            return;
        }
        _ => {}
    }
    out.push(' ');
    emit_flow(out, tree);
    out.push('\n');
}

fn emit_flow(out: &mut String, tree: &Tree) {
    match tree {
        Tree::Scalar(s) => emit_scalar(out, s),
        Tree::Alias(a) => {
            let _ = write!(out, "*a{a}");
        }
        Tree::Anchored(a, t) => {
            let _ = write!(out, "&a{a} ");
            emit_flow(out, t);
        }
        Tree::Seq(items, _) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                emit_flow(out, item);
            }
            out.push(']');
        }
        Tree::Map(entries, _) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                emit_scalar(out, k);
                out.push_str(": ");
                emit_flow(out, v);
            }
            out.push('}');
        }
        Tree::Deep(n) => {
            let n = usize::from(*n);
            let _ = write!(out, "{}x{}", "[".repeat(n), "]".repeat(n));
        }
    }
}

/// A good config with random edits: byte-level damage the tree generator cannot make.
fn mutated_strategy() -> impl Strategy<Value = String> {
    const GOOD: &str = "app: web\nimage:\n  build_args: {V: 1.10}\ntargets:\n  tags:\n    \
                        Env: [prod]\ncontainer:\n  port: 8080\n  command: [sh, -c, 'echo hi']\n  \
                        labels: {team: a}\nhealthcheck:\n  path: /healthz\n  timeout: 30s\nenv:\n  \
                        clear:\n    MODE: prod\n  secret: [API_TOKEN]\n";
    prop::collection::vec(
        (any::<prop::sample::Index>(), 0u8..3, text_strategy()),
        1..6,
    )
    .prop_map(|edits| {
        let mut text = GOOD.to_owned();
        for (at, kind, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            match kind {
                0 => text.insert_str(i, &insert),
                1 => {
                    let end = text[i..]
                        .char_indices()
                        .nth(insert.chars().count().max(1))
                        .map_or(text.len(), |(j, _)| i + j);
                    text.replace_range(i..end, &insert);
                }
                _ => text.truncate(i),
            }
        }
        text
    })
}

fn inputs() -> Inputs {
    Inputs::new(
        hoist::revision::Revision::clean("0123456789abcdef0123456789abcdef01234567"),
        TransportKind::Ssm,
    )
}

/// Every string inside a JSON value, with the path of object keys leading to it.
fn strings(value: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::String(s) => out.push((path.to_owned(), s.clone())),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, path, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push((path.to_owned(), k.clone()));
                strings(v, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match config::parse(text, Path::new("hoist.yaml"), Path::new("/srv/app")) {
        Err(err) => {
            let plain = err.render(false);
            let _ = err.render(true);
            prop_assert!(plain.contains("error: "), "{plain}");
            prop_assert!(
                !err.issues().is_empty(),
                "an invalid config names its issues"
            );
            for issue in err.issues() {
                if let Some(loc) = issue.loc {
                    prop_assert!(loc.line >= 1, "{issue:?}");
                    prop_assert!(
                        loc.offset <= text.len(),
                        "{issue:?} in {} bytes",
                        text.len()
                    );
                }
            }
            let hidden: Vec<char> = plain
                .chars()
                .filter(|&c| text::is_hidden(c) && c != '\n')
                .collect();
            prop_assert!(hidden.is_empty(), "the report printed {hidden:?}:\n{plain}");
        }
        Ok(config) => {
            let json = serde_json::to_value(&config).unwrap();
            let mut all = Vec::new();
            strings(&json, "", &mut all);
            for (path, s) in &all {
                let allowed_newline = path == ".container.command";
                let bad = s
                    .chars()
                    .find(|&c| text::is_hidden(c) && !(allowed_newline && c == '\n'));
                prop_assert!(bad.is_none(), "{path} holds {bad:?}: {s:?}");
                prop_assert!(text::ssm_reference(s).is_none(), "{path}: {s:?}");
            }
            let plan = plan::build(&config, &inputs()).unwrap();
            for format in [Format::Text, Format::Json, Format::Markdown] {
                let _ = plan.render(format);
            }
            for step in &plan.steps {
                if let Step::RunPhase(Phase { timeout, .. }) = step {
                    prop_assert!(*timeout <= config::duration::MAX, "{timeout:?}");
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES * 3 / 4,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_documents_never_panic_and_every_error_renders(text in document_strategy()) {
        check(&text)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES / 4,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn damaged_configs_never_panic_and_every_error_renders(text in mutated_strategy()) {
        check(&text)?;
    }
}

#[test]
fn the_generator_reaches_valid_configs_and_errors_alike() {
    // A fixed sample of what the fuzz test feeds, to keep the generator honest: both
    // outcomes must occur, or the properties above test little.
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let (mut ok, mut err) = (0, 0);
    for _ in 0..300 {
        let text = document_strategy().new_tree(&mut runner).unwrap().current();
        match config::parse(&text, Path::new("hoist.yaml"), Path::new(".")) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert!(ok > 0 && err > 0, "{ok} valid, {err} invalid");
}
