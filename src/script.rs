//! Remote scripts: a rendered header of quoted parameters, then the library
//! `src/scripts/lib.sh`, then a static body from `src/scripts/`, as one self-contained file.
//! The rendered text is what the plan shows, hashes, and a transport runs.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The static bodies, compiled in. Each is a real shell file in the repository, checked by
/// shellcheck; the header only assigns variables. Every rendered script holds the library
/// ([`LIBRARY`]) between the header and its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Body {
    /// A deploy with the recreate strategy.
    Recreate,
    /// Recreate, two-phase rollout, phase 1: the image onto every host (pull only).
    RecreateStage,
    /// A deploy with the blue-green strategy (stage, switch, verify, retire).
    BlueGreen,
    /// Blue-green, two-phase rollout, phase 1: stage the release in the idle color.
    BgStage,
    /// Blue-green, two-phase rollout, phase 2: switch to what this run staged.
    BgSwitch,
    /// Blue-green, two-phase rollout: remove what this run staged (staging failed).
    BgDiscard,
    /// Reports the app's releases on a host (read-only).
    Status,
    /// Makes a retained release the live one again.
    Rollback,
}

impl Body {
    pub fn file_name(self) -> &'static str {
        match self {
            Body::Recreate => "recreate.sh",
            Body::RecreateStage => "recreate-stage.sh",
            Body::BlueGreen => "blue-green.sh",
            Body::BgStage => "bg-stage.sh",
            Body::BgSwitch => "bg-switch.sh",
            Body::BgDiscard => "bg-discard.sh",
            Body::Status => "status.sh",
            Body::Rollback => "rollback.sh",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Body::Recreate => include_str!("scripts/recreate.sh"),
            Body::RecreateStage => include_str!("scripts/recreate-stage.sh"),
            Body::BlueGreen => include_str!("scripts/blue-green.sh"),
            Body::BgStage => include_str!("scripts/bg-stage.sh"),
            Body::BgSwitch => include_str!("scripts/bg-switch.sh"),
            Body::BgDiscard => include_str!("scripts/bg-discard.sh"),
            Body::Status => include_str!("scripts/status.sh"),
            Body::Rollback => include_str!("scripts/rollback.sh"),
        }
    }
}

/// The functions every body uses (`src/scripts/lib.sh`), rendered above each body.
pub const LIBRARY: &str = include_str!("scripts/lib.sh");
/// The library's file name under `src/scripts/`.
pub const LIBRARY_FILE: &str = "lib.sh";

/// One header parameter: a scalar or a bash array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Str(String),
    Array(Vec<String>),
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Str(s.to_owned())
    }
}
impl From<String> for Param {
    fn from(s: String) -> Self {
        Param::Str(s)
    }
}
impl From<Vec<String>> for Param {
    fn from(v: Vec<String>) -> Self {
        Param::Array(v)
    }
}

/// A rendered script: exactly the bytes a host executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// The body it was rendered from (`recreate.sh`, `blue-green.sh`, `status.sh`,
    /// `rollback.sh`).
    pub body: String,
    pub sha256: String,
    pub text: String,
}

/// Quotes a word for POSIX shells: single quotes, with `'` written as `'\''`.
pub fn quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Renders header + library + body into one self-contained script. `comment` lines describe
/// the script for a human reader.
pub fn render(body: Body, comment: &[String], params: &[(&str, Param)]) -> Script {
    let mut text = String::from("#!/bin/bash\n");
    for line in comment {
        let _ = writeln!(text, "# {}", line.replace('\n', " "));
    }
    let _ = writeln!(
        text,
        "# Parameters rendered by hoist; below them src/scripts/{LIBRARY_FILE} and src/scripts/{}, verbatim.",
        body.file_name()
    );
    // Values are single-quoted literals on purpose; `$` in them must not expand.
    text.push_str("# shellcheck disable=SC2016\n");
    for (name, value) in params {
        debug_assert!(name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
        match value {
            Param::Str(s) => {
                let _ = writeln!(text, "{name}={}", quote(s));
            }
            Param::Array(items) => {
                let words: Vec<String> = items.iter().map(|s| quote(s)).collect();
                let _ = writeln!(text, "{name}=({})", words.join(" "));
            }
        }
    }
    text.push('\n');
    text.push_str(strip_shebang(LIBRARY));
    text.push_str(strip_shebang(body.text()));
    Script {
        body: body.file_name().to_owned(),
        sha256: sha256_hex(text.as_bytes()),
        text,
    }
}

fn strip_shebang(body: &str) -> &str {
    if body.starts_with("#!") {
        body.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        body
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn a_script_is_header_then_library_then_body_with_one_shebang() {
        for body in [
            Body::Recreate,
            Body::BlueGreen,
            Body::BgStage,
            Body::BgSwitch,
            Body::BgDiscard,
            Body::Status,
            Body::Rollback,
        ] {
            let s = render(body, &[], &[("HOIST_APP", "web".into())]);
            assert_eq!(s.body, body.file_name());
            assert_eq!(
                s.text.matches("#!/bin/bash").count(),
                1,
                "{}",
                body.file_name()
            );
            let header = s.text.find("HOIST_APP='web'\n").unwrap();
            let library = s.text.find(strip_shebang(LIBRARY)).unwrap();
            let rest = strip_shebang(body.text());
            assert!(header < library, "{}", body.file_name());
            assert!(s.text.ends_with(rest), "{}", body.file_name());
            assert_eq!(
                library + strip_shebang(LIBRARY).len() + rest.len(),
                s.text.len()
            );
            assert!(s.text.contains(&format!(
                "src/scripts/lib.sh and src/scripts/{}, verbatim",
                body.file_name()
            )));
        }
    }
}
