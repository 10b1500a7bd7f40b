//! Secret env values: read from hoist's own environment at deploy time, handed to a
//! transport's secret channel, and scrubbed from anything hoist prints.
//!
//! # Redaction
//!
//! [`SecretEnv::redact`] replaces each value with `***` wherever it appears in text, and
//! also each form a tool between the value and hoist's output would turn it into:
//!
//! - as written (`NAME=value` lines, `docker` messages);
//! - as bash's xtrace and `${var@Q}` quote it: inside single quotes, each `'` as `'\''`
//!   (`'it'\''s'`), or ANSI-C quoted when it holds a control character (`$'a\tb'`, other
//!   control bytes as `\ooo`, non-ASCII raw or as octal bytes, by locale);
//!   the forms are matched without their outer quotes, so a value quoted as part of a
//!   longer word (`'NAME=it'\''s'`) is caught too;
//! - as `printf %q` writes it: ANSI-C quoted as above, or with a backslash before any
//!   character (every bash version escapes a slightly different set);
//! - as JSON escapes it (`serde_json`, without the outer quotes), and as the script's own
//!   `json_str` does (control characters other than tab and line breaks dropped).
//!
//! Longer patterns are replaced first, so a value that holds another secret's value is
//! masked whole. Output is redacted line by line as it streams and in full before hoist
//! parses the script's `HOIST-RESULT` line, so every field taken from output is redacted.
//!
//! Length rule, in characters: an empty value is never "redacted" (there is nothing to
//! find); a value of 1 to 3 characters is not redacted either (masking every `on` or `42`
//! would shred ordinary output); a value of 4 characters or more always is. Any non-empty
//! value shorter than [`RELIABLE_LEN`] (8) gets a warning when a deploy starts, before
//! anything changes ([`SecretEnv::short_value_warnings`]): such a value also occurs by
//! chance, and a short one is not masked at all.

use std::ffi::OsString;
use std::fmt;
use std::fmt::Write as _;

use crate::config::{MAX_ENV_LINE, SecretTier};

/// Values of at least this many characters are redacted from output.
pub const MIN_REDACTED_LEN: usize = 4;
/// Values shorter than this get a warning: hoist cannot reliably scrub them.
pub const RELIABLE_LEN: usize = 8;

/// What a secret value is replaced with.
const MASK: &str = "***";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "secret{} {} named in env.secret {} not set in hoist's environment; export {} before \
         deploying (nothing was changed)",
        plural(.0),
        .0.join(", "),
        if .0.len() == 1 { "is" } else { "are" },
        if .0.len() == 1 { "it" } else { "them" }
    )]
    Missing(Vec<String>),
    #[error(
        "secret {0} contains a line break; Docker env files hold one NAME=value per line \
         (nothing was changed)"
    )]
    Multiline(String),
    #[error(
        "secret {0} is set in hoist's environment, but its value is not valid UTF-8; Docker \
         env files and SSM parameters hold UTF-8 text (nothing was changed)"
    )]
    NotUnicode(String),
    #[error(
        "secret {name}: the env line {name}=… is {len} bytes; Docker reads env files a line at \
         a time and refuses lines over {MAX_ENV_LINE} bytes (nothing was changed)"
    )]
    LineTooLong { name: String, len: usize },
    #[error(
        "the secret env ({}) is {len} bytes as NAME=value lines; the SSM SecureString \
         parameter that carries it holds at most {max} in the {tier} tier. {} \
         (nothing was changed)",
        names.join(", "),
        if *max < 8192 {
            "Set `secrets.tier: auto` or `advanced` (8192 bytes, charged), let the hosts read \
             large values themselves (`- NAME: {ssm: …}` in env.secret), or shorten them"
        } else {
            "Let the hosts read large values themselves (`- NAME: {ssm: …}` in env.secret), \
             or shorten them"
        }
    )]
    TooLargeForParameter {
        names: Vec<String>,
        len: usize,
        max: usize,
        tier: &'static str,
    },
}

fn plural(v: &[String]) -> &'static str {
    if v.len() == 1 { "" } else { "s" }
}

/// Name/value pairs. `Debug` and `Display` never show values.
#[derive(Clone, Default)]
pub struct SecretEnv {
    values: Vec<(String, String)>,
    /// Every form of every redacted value ([`variants`]), longest first.
    patterns: Vec<Vec<char>>,
}

impl fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.values.iter().map(|(k, _)| k.as_str()).collect();
        write!(f, "SecretEnv({} = <redacted>)", names.join(", "))
    }
}

impl SecretEnv {
    /// Reads every name from `lookup` (the process environment in production). Reports all
    /// missing names at once.
    pub fn resolve(
        names: &[String],
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, SecretError> {
        let mut values = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            let Some(value) = lookup(name) else {
                missing.push(name.clone());
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| SecretError::NotUnicode(name.clone()))?;
            if value.contains(['\n', '\r', '\0']) {
                return Err(SecretError::Multiline(name.clone()));
            }
            let len = name.len() + 1 + value.len();
            if len > MAX_ENV_LINE {
                return Err(SecretError::LineTooLong {
                    name: name.clone(),
                    len,
                });
            }
            values.push((name.clone(), value));
        }
        if missing.is_empty() {
            let mut patterns: Vec<String> = values
                .iter()
                .filter(|(_, v)| v.chars().count() >= MIN_REDACTED_LEN)
                .flat_map(|(_, v)| variants(v))
                .collect();
            patterns.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then(a.cmp(b)));
            patterns.dedup();
            let patterns = patterns.iter().map(|p| p.chars().collect()).collect();
            Ok(SecretEnv { values, patterns })
        } else {
            Err(SecretError::Missing(missing))
        }
    }

    pub fn from_env(names: &[String]) -> Result<Self, SecretError> {
        Self::resolve(names, |name| std::env::var_os(name))
    }

    /// Whether the payload fits the SSM parameter that carries it (the SSM transport).
    pub fn check_parameter_size(&self, tier: SecretTier) -> Result<(), SecretError> {
        let len = self.payload().len();
        if len > tier.max_bytes() {
            return Err(SecretError::TooLargeForParameter {
                names: self.values.iter().map(|(k, _)| k.clone()).collect(),
                len,
                max: tier.max_bytes(),
                tier: tier.as_str(),
            });
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Whether `name` is one of the secrets.
    pub fn has_name(&self, name: &str) -> bool {
        self.values.iter().any(|(k, _)| k == name)
    }

    /// One warning per secret whose value is non-empty and shorter than [`RELIABLE_LEN`]
    /// characters, for hoist to print once when a deploy starts.
    pub fn short_value_warnings(&self) -> Vec<String> {
        self.values
            .iter()
            .filter_map(|(name, v)| {
                let len = v.chars().count();
                (len > 0 && len < RELIABLE_LEN).then(|| {
                    let mut msg = format!(
                        "warning: secret {name} is shorter than {RELIABLE_LEN} characters: hoist \
                         cannot reliably scrub it from output"
                    );
                    if len < MIN_REDACTED_LEN {
                        let _ = write!(
                            msg,
                            " (values under {MIN_REDACTED_LEN} characters are not scrubbed at all)"
                        );
                    }
                    msg
                })
            })
            .collect()
    }

    /// The values, for what must know them to hide them (GitHub Actions' `::add-mask::`).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|(_, v)| v.as_str())
    }

    /// The env-file lines for the secret channel: `NAME=value\n` each.
    pub fn payload(&self) -> String {
        self.values.iter().fold(String::new(), |mut out, (k, v)| {
            let _ = writeln!(out, "{k}={v}");
            out
        })
    }

    /// Replaces every secret value in `text`, in every form the module doc lists, with
    /// `***` (values shorter than [`MIN_REDACTED_LEN`] characters are left alone).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for pattern in &self.patterns {
            out = replace_loosely(&out, pattern);
        }
        out
    }
}

/// The forms of `value` that output may hold (see the module doc), without outer quotes.
fn variants(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).expect("a string serializes");
    let script_json: String = value
        .chars()
        .filter(|&c| !c.is_ascii_control() || matches!(c, '\t' | '\n' | '\r') || c == '\x7f')
        .collect::<String>();
    let script_json = serde_json::to_string(&script_json).expect("a string serializes");
    let mut out = vec![
        value.to_owned(),
        value.replace('\'', r"'\''"),
        ansi_c_body(value, false),
        ansi_c_body(value, true),
        json[1..json.len() - 1].to_owned(),
        script_json[1..script_json.len() - 1].to_owned(),
    ];
    out.sort();
    out.dedup();
    out
}

/// The inside of bash's `$'…'` quoting of `value` (`ansic_quote`): non-ASCII characters
/// raw (a UTF-8 locale) or, with `octal_non_ascii`, as octal bytes (the C locale).
fn ansi_c_body(value: &str, octal_non_ascii: bool) -> String {
    let mut out = String::new();
    let octal = |out: &mut String, b: u8| {
        let _ = write!(out, "\\{b:03o}");
    };
    for c in value.chars() {
        match c {
            '\x1b' => out.push_str("\\E"),
            '\x07' => out.push_str("\\a"),
            '\x0b' => out.push_str("\\v"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' | '\'' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() => octal(&mut out, c as u8),
            c if !c.is_ascii() && octal_non_ascii => {
                for b in c.to_string().bytes() {
                    octal(&mut out, b);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Replaces each occurrence of `pattern` in `text` with the mask, where any character of
/// the pattern may be preceded by a backslash (`printf %q`'s escapes, in any bash version).
fn replace_loosely(text: &str, pattern: &[char]) -> String {
    let Some(&first) = pattern.first() else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        let candidate = c == first || c == '\\';
        if let Some(end) = candidate.then(|| match_at(text, i, pattern)).flatten() {
            out.push_str(MASK);
            i = end;
        } else {
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Where a loose match of `pattern` starting at byte `at` of `text` ends, if there is one:
/// each pattern character matches itself, or itself after a backslash. (Run as a set of
/// states: a backslash in the text may be the pattern's own or an escape.)
fn match_at(text: &str, at: usize, pattern: &[char]) -> Option<usize> {
    // (pattern characters matched, an escaping backslash was just read)
    let mut states = vec![(0, false)];
    for (offset, t) in text[at..].char_indices() {
        let mut next = Vec::with_capacity(states.len() + 1);
        for &(k, escaped) in &states {
            if t == pattern[k] {
                if k + 1 == pattern.len() {
                    return Some(at + offset + t.len_utf8());
                }
                next.push((k + 1, false));
            }
            if !escaped && t == '\\' {
                next.push((k, true));
            }
        }
        next.sort_unstable();
        next.dedup();
        if next.is_empty() {
            return None;
        }
        states = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_all_missing_names() {
        let names = vec!["A".to_owned(), "B".to_owned(), "C".to_owned()];
        let err = SecretEnv::resolve(&names, |n| (n == "B").then(|| "x".into())).unwrap_err();
        assert_eq!(err, SecretError::Missing(vec!["A".into(), "C".into()]));
        assert!(
            err.to_string()
                .contains("secrets A, C named in env.secret are not set")
        );
    }

    #[test]
    fn never_shows_values() {
        let s = SecretEnv::resolve(&["TOKEN".to_owned()], |_| Some("hunter22".into())).unwrap();
        assert!(!format!("{s:?}").contains("hunter22"));
        assert_eq!(s.payload(), "TOKEN=hunter22\n");
        assert_eq!(s.redact("got hunter22!"), "got ***!");
    }

    #[test]
    fn refuses_multiline_values() {
        let err = SecretEnv::resolve(&["K".to_owned()], |_| Some("a\nb".into())).unwrap_err();
        assert_eq!(err, SecretError::Multiline("K".into()));
    }

    #[test]
    fn a_non_utf8_secret_is_named_as_such_not_as_missing() {
        use std::os::unix::ffi::OsStringExt as _;
        let err = SecretEnv::resolve(&["K".to_owned()], |_| {
            Some(OsString::from_vec(vec![b'a', 0xff, b'b']))
        })
        .unwrap_err();
        assert_eq!(err, SecretError::NotUnicode("K".into()));
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        assert!(!err.to_string().contains("not set"), "{err}");
    }

    #[test]
    fn a_secret_line_over_dockers_env_file_limit_is_refused() {
        let names = ["K".to_owned()];
        // `K=` + value + newline must fit bufio.Scanner's 64 KiB buffer.
        let fits = "x".repeat(MAX_ENV_LINE - 2);
        assert!(SecretEnv::resolve(&names, |_| Some(fits.clone().into())).is_ok());
        let over = "x".repeat(MAX_ENV_LINE - 1);
        let err = SecretEnv::resolve(&names, |_| Some(over.clone().into())).unwrap_err();
        assert_eq!(
            err,
            SecretError::LineTooLong {
                name: "K".into(),
                len: MAX_ENV_LINE + 1
            }
        );
    }

    #[test]
    fn a_payload_over_the_ssm_parameter_limit_is_refused() {
        let names = ["A".to_owned(), "B".to_owned()];
        // "A=" + 2046 + "\n" = 2049 bytes, twice: 4098.
        let s = SecretEnv::resolve(&names, |_| Some("x".repeat(2046).into())).unwrap();
        let err = s.check_parameter_size(SecretTier::Standard).unwrap_err();
        assert_eq!(
            err,
            SecretError::TooLargeForParameter {
                names: names.to_vec(),
                len: 4098,
                max: 4096,
                tier: "standard",
            }
        );
        assert!(s.check_parameter_size(SecretTier::Advanced).is_ok());
        assert!(s.check_parameter_size(SecretTier::Auto).is_ok());
        let s = SecretEnv::resolve(&names, |_| Some("x".repeat(2045).into())).unwrap();
        assert_eq!(s.payload().len(), 4096);
        assert!(s.check_parameter_size(SecretTier::Standard).is_ok());
    }

    fn one(value: &str) -> SecretEnv {
        SecretEnv::resolve(&["TOKEN".to_owned()], |_| Some(value.into())).unwrap()
    }

    /// Values with each kind of character that quoting rewrites.
    const AWKWARD: &[&str] = &[
        "it's a\\back\"slash $HOME\tend",
        "tab\there-only",
        "ctl\u{1}char'q",
        "esc\u{1b}[0mdel\u{7f}x",
        "café-crème-42",
        "#~leading,{x}=[y]*?",
        "plain-token-1234",
    ];

    /// Runs `script` in bash with `V` set to `value` and the given locale; stdout + stderr.
    fn bash(script: &str, value: &str, locale: &str) -> String {
        let out = std::process::Command::new("bash")
            .args(["--noprofile", "--norc", "-c", script])
            .env_clear()
            .env("V", value)
            .env("LC_ALL", locale)
            .output()
            .expect("bash runs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    #[test]
    fn xtrace_and_printf_q_forms_are_redacted_as_this_bash_writes_them() {
        for value in AWKWARD {
            let s = one(value);
            for locale in ["C", "C.UTF-8"] {
                let raw = bash(
                    "set -x; : \"$V\"; X=\"$V\"; : \"NAME=$V\"; set +x; \
                     printf '%q\\n' \"$V\" \"NAME=$V\"; printf '%s\\n' \"${V@Q}\"",
                    value,
                    locale,
                );
                assert_eq!(raw.lines().count(), 7, "{raw:?}");
                let redacted = s.redact(&raw);
                let shapes = ["***", "'***'", "$'***'", "\\***"];
                for line in redacted.lines() {
                    let rest = ["+ : ", "+ X="]
                        .iter()
                        .find_map(|p| line.strip_prefix(p))
                        .unwrap_or(line);
                    let rest = rest.replace("NAME\\=", "").replace("NAME=", "");
                    assert!(
                        shapes.contains(&rest.as_str()) || line == "+ set +x",
                        "{value:?} in {locale}: {line:?} (from {raw:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn json_forms_are_redacted_and_the_json_stays_valid() {
        for value in AWKWARD {
            let s = one(value);
            let text = serde_json::json!({"reason": format!("token {value} refused")}).to_string();
            let redacted = s.redact(&text);
            let back: serde_json::Value = serde_json::from_str(&redacted).unwrap();
            assert_eq!(back["reason"], "token *** refused", "{value:?}: {redacted}");
        }
    }

    #[test]
    fn the_scripts_json_str_form_is_redacted() {
        // json_str drops control characters other than tab and line breaks.
        let s = one("ctl\u{1}char\tq");
        assert_eq!(
            s.redact(r#"{"reason":"x ctlchar\tq y"}"#),
            r#"{"reason":"x *** y"}"#
        );
    }

    #[test]
    fn a_longer_secret_holding_a_shorter_one_is_masked_whole() {
        let names = ["A".to_owned(), "B".to_owned()];
        let s = SecretEnv::resolve(&names, |n| {
            Some(if n == "A" { "abcd" } else { "abcdefgh" }.into())
        })
        .unwrap();
        assert_eq!(s.redact("1 abcdefgh 2 abcd"), "1 *** 2 ***");
    }

    #[test]
    fn short_values_warn_and_the_shortest_are_not_masked() {
        let names = [
            "E".to_owned(),
            "S3".to_owned(),
            "S7".to_owned(),
            "OK".to_owned(),
        ];
        let s = SecretEnv::resolve(&names, |n| {
            Some(
                match n {
                    "E" => "",
                    "S3" => "abc",
                    "S7" => "abcdefg",
                    _ => "abcdefgh-long",
                }
                .into(),
            )
        })
        .unwrap();
        let warnings = s.short_value_warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with(
            "warning: secret S3 is shorter than 8 characters: hoist cannot reliably scrub it \
             from output"
        ));
        assert!(warnings[0].contains("not scrubbed at all"));
        assert!(warnings[1].contains("secret S7 is shorter"));
        assert!(!warnings[1].contains("not scrubbed at all"));
        assert_eq!(s.redact("abc abcdefg x"), "abc *** x");
        assert_eq!(s.redact(""), "", "an empty value masks nothing");
    }
}
