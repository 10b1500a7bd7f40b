use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

#[test]
fn quoting_survives_a_real_shell() {
    let nasty = [
        "plain",
        "it's",
        "$(touch /tmp/pwned) `id` $HOME",
        "back\\slash \"double\"",
        "new\nline",
        "",
        "''",
        "*?[a]",
    ];
    for word in nasty {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s' {}", quote(word)))
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), word);
    }
}

#[test]
fn arrays_render_as_bash_arrays() {
    let s = render(
        Body::Recreate,
        &["test".into()],
        &[("HOIST_X", Param::Array(vec!["a b".into(), "c'd".into()]))],
    );
    assert!(s.text.starts_with("#!/bin/bash\n# test\n"));
    assert!(s.text.contains("HOIST_X=('a b' 'c'\\''d')\n"));
    assert_eq!(s.sha256, sha256_hex(s.text.as_bytes()));
}

#[test]
fn a_script_is_header_then_its_modules_then_its_body_each_named_with_its_hash() {
    for body in Body::ALL {
        let s = render(body, &[], &[("HOIST_APP", "web".into())]);
        let name = body.file_name();
        assert_eq!(s.body, name);
        assert_eq!(s.text.matches("#!/bin/bash").count(), 1, "{name}");
        assert_eq!(s.bytes(), s.text.len());
        let header = s.text.find("HOIST_APP='web'\n\n").unwrap();
        // One provenance line per source, in order: the modules, then the body.
        let mut at = header;
        let mut paths = Vec::new();
        for source in &s.modules {
            let line = format!("\n# {} sha256:{}\n", source.path, source.sha256);
            let found = s.text[at..].find(&line).unwrap_or_else(|| panic!("{line}"));
            at += found + line.len();
            paths.push(source.path.clone());
        }
        let mut want: Vec<String> = body.modules().iter().map(|m| m.path()).collect();
        want.push(format!("src/scripts/{name}"));
        assert_eq!(paths, want);
        for (source, text) in s
            .modules
            .iter()
            .zip(body.modules().iter().map(|m| m.text()).chain([body.text()]))
        {
            assert_eq!(source.sha256, sha256_hex(text.as_bytes()));
        }
        assert!(s.text.ends_with(&strip(body.text())), "{name}");
        assert_eq!(&s.text[at..], strip(body.text()), "{name}");
    }
}

/// The closure of a body's `# requires:` line, by hand: the table must be exactly it,
/// and the modules' order must put each after the ones it requires.
#[test]
fn the_table_of_modules_is_the_closure_of_the_requires_lines() {
    let by_name = |n: &str| {
        Module::ALL
            .into_iter()
            .find(|m| m.name() == n)
            .unwrap_or_else(|| panic!("`# requires: {n}` names no module"))
    };
    for (i, m) in Module::ALL.iter().enumerate() {
        assert!(
            m.text().starts_with("#!/bin/bash\n# requires:"),
            "{}",
            m.name()
        );
        for r in m.requires() {
            let at = Module::ALL.iter().position(|x| *x == by_name(r)).unwrap();
            assert!(at < i, "{} requires {r}, rendered after it", m.name());
        }
    }
    for body in Body::ALL {
        assert!(
            body.text().starts_with("#!/bin/bash\n# requires:"),
            "{}",
            body.file_name()
        );
        let mut have: BTreeSet<Module> = requires_line(body.text())
            .into_iter()
            .map(by_name)
            .collect();
        loop {
            let more: BTreeSet<Module> = have
                .iter()
                .flat_map(|m| m.requires())
                .map(by_name)
                .filter(|m| !have.contains(m))
                .collect();
            if more.is_empty() {
                break;
            }
            have.extend(more);
        }
        let want: Vec<Module> = Module::ALL
            .into_iter()
            .filter(|m| have.contains(m))
            .collect();
        assert_eq!(body.modules(), want.as_slice(), "{}", body.file_name());
    }
}

/// The code of a source as the lexer sees it (comments, strings' insides and heredoc
/// bodies blanked).
fn code_of(source: &str) -> String {
    let mut lexer = Lexer::default();
    source
        .lines()
        .map(|l| lexer.line(l).code)
        .collect::<Vec<_>>()
        .join("\n")
}

fn defined(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|l| {
            let (name, _) = l.trim_start().split_once("() {")?;
            (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                .then(|| name.to_owned())
        })
        .collect()
}

fn words(code: &str) -> BTreeSet<String> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every function name a module or body uses in its code (any word of its code that
/// names a library function, so never fewer than it calls) is defined by the module
/// itself or by one its `# requires:` line names, and each module that line names
/// defines one of them: the requires lines are exact, and with the table held to their
/// closure above, a script carries every function it can call. (The one call by a
/// computed name, `restore`'s `restore_$STRATEGY`, is checked on the host with
/// `declare -F`.)
#[test]
fn every_function_a_source_uses_is_defined_by_a_module_it_requires() {
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    for m in Module::ALL {
        for f in defined(&code_of(m.text())) {
            if let Some(other) = owner.insert(f.clone(), m.name()) {
                panic!("{f} is defined by {other} and {}", m.name());
            }
        }
    }
    assert!(owner.len() > 80, "{owner:?}");
    let sources = Module::ALL.iter().map(|m| (m.path(), m.text())).chain(
        Body::ALL
            .iter()
            .map(|b| (b.file_name().to_owned(), b.text())),
    );
    let mut failures = Vec::new();
    for (path, text) in sources {
        let code = code_of(text);
        let own = defined(&code);
        let needs: BTreeSet<&str> = words(&code)
            .iter()
            .filter(|w| !own.contains(*w))
            .filter_map(|w| owner.get(w).copied())
            .collect();
        let says: BTreeSet<&str> = requires_line(text).into_iter().collect();
        if needs != says {
            failures.push(format!(
                "{path}: uses functions of {needs:?}, requires {says:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A recreate script carries no blue-green or nginx code, and so neither does its
/// watchdog (built from the script's own functions).
#[test]
fn recreate_and_status_scripts_carry_no_nginx_code() {
    for body in [Body::Recreate, Body::RecreateStage, Body::Status] {
        let s = render(body, &[], &[]);
        for f in [
            "nginx_run",
            "restore_blue_green",
            "bg_conf_text",
            "bg_switch_target",
        ] {
            assert!(!s.text.contains(f), "{} carries {f}", body.file_name());
        }
    }
    let s = render(Body::BlueGreen, &[], &[]);
    assert!(s.text.contains("nginx_run()"));
}

#[test]
fn the_renderer_drops_comments_and_keeps_data_directives_and_strings() {
    let source = r##"#!/bin/bash
# requires: core
# A comment line.

    # An indented comment.
# shellcheck disable=SC2034 # kept: a directive
A="# not a comment" # a trailing comment stays
B='it''s # data'
C=$(printf '%s' "#x" # a comment inside $(...)
)
D=${#A} E=$# F=${A#\#}
text() {
    cat <<NGINX
# hoist-live: color=blue

    # indented, still data
NGINX
    cat <<'EOF'
# quoted delimiter
EOF
	cat <<-TABS
	# tab-stripped
	TABS
    cat << "Q" ; cat <<X
# first body
Q
# second body
X
}
P='line one
# line two of a single-quoted string

   indented'
Q="two
# lines"
R=$((1 << 2)) # not a heredoc
S=$'a\'b # still in the string'
T=`echo '#'` # backquotes
long \
    continued
# gone
"##;
    let want = r##"# shellcheck disable=SC2034 # kept: a directive
A="# not a comment" # a trailing comment stays
B='it''s # data'
C=$(printf '%s' "#x" # a comment inside $(...)
)
D=${#A} E=$# F=${A#\#}
text() {
    cat <<NGINX
# hoist-live: color=blue

    # indented, still data
NGINX
    cat <<'EOF'
# quoted delimiter
EOF
	cat <<-TABS
	# tab-stripped
	TABS
    cat << "Q" ; cat <<X
# first body
Q
# second body
X
}
P='line one
# line two of a single-quoted string

   indented'
Q="two
# lines"
R=$((1 << 2)) # not a heredoc
S=$'a\'b # still in the string'
T=`echo '#'` # backquotes
long \
    continued
"##;
    assert_eq!(strip(source), want);
    // And bash agrees: the stripped text defines the same and prints the same.
    let run = |text: &str| {
        let out = Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "long() {{ printf '<%s>' \"$@\"; }}\n{text}\nprintf '|%s' \"$A\" \"$B\" \"$C\" \"$D\" \"$F\" \"$P\" \"$Q\" \"$R\" \"$S\" \"$T\"; text"
                ))
                .output()
                .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&strip(source)), run(source));
}

/// Plans are saved as JSON: one saved before scripts named their sources still reads.
#[test]
fn a_script_saved_without_its_sources_still_reads() {
    let old: Script =
        serde_json::from_str(r#"{"body":"recreate.sh","sha256":"ab","text":"x"}"#).unwrap();
    assert!(old.modules.is_empty());
    let s = render(Body::Status, &[], &[]);
    let back: Script = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}
