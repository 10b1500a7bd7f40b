//! Characters a reviewer cannot see, and values SSM would rewrite: what config strings may not
//! hold, and how any that reach a rendering anyway are shown.
//!
//! A plan is only worth reviewing if what it shows is what runs. Control characters (ANSI
//! escapes, carriage returns, NUL) and Unicode bidi overrides change what a terminal or a
//! browser displays without changing the bytes a host executes; SSM Run Command resolves
//! `{{ssm:…}}` / `{{resolve:…}}` references in a command's parameters on its own side, so the
//! host would run other text than the plan showed and hashed.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A character that changes how text displays without being visible itself: C0 controls
/// except tab, DEL, C1 controls, and the bidi embedding/override/isolate controls.
pub fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\t') || is_bidi_control(c)
}

/// The Unicode bidi embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069),
/// which reorder the text around them on screen ("Trojan Source").
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A readable name for a hidden character, for messages: `U+001B (ESC)`.
pub fn describe(c: char) -> String {
    let name = match c {
        '\0' => " (NUL)",
        '\n' => " (line feed)",
        '\r' => " (carriage return)",
        '\u{1b}' => " (ESC)",
        '\u{7f}' => " (DEL)",
        '\u{80}'..='\u{9f}' => " (C1 control)",
        c if is_bidi_control(c) => " (bidi control)",
        _ => "",
    };
    format!("U+{:04X}{name}", c as u32)
}

/// `s` with every hidden character written as a visible escape (`\u{1b}`, `\r`, `\0`, …);
/// borrowed when there is none. Tabs and line feeds are kept unless `keep_newlines` is false.
pub fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let hidden = |c: char| is_hidden(c) && !(keep_newlines && c == '\n');
    if !s.contains(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !hidden(c) {
            out.push(c);
            continue;
        }
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// A copy of config text safe to print in a snippet: every hidden character replaced by a
/// visible one of the same UTF-8 length, so byte offsets into the text stay valid. Line
/// feeds, tabs and CR LF pairs are kept.
pub fn sanitize_same_len(text: &str) -> Cow<'_, str> {
    let mut chars = text.chars().peekable();
    let mut out: Option<String> = None;
    let mut at = 0;
    while let Some(c) = chars.next() {
        let keep = !is_hidden(c) || c == '\n' || (c == '\r' && chars.peek() == Some(&'\n'));
        if !keep {
            let out = out.get_or_insert_with(|| text[..at].to_owned());
            out.push(match c.len_utf8() {
                1 => '?',
                2 => '¿',
                _ => '\u{FFFD}',
            });
        } else if let Some(out) = &mut out {
            out.push(c);
        }
        at += c.len_utf8();
    }
    match out {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(text),
    }
}

/// The first `{{ssm:`, `{{ssm-secure:` or `{{resolve:` reference in `s` (any case, with
/// optional whitespace after `{{`), as written. SSM Run Command replaces these in a
/// command's parameters with the parameter's value before the host sees the script.
pub fn ssm_reference(s: &str) -> Option<&str> {
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        let start = &rest[i..];
        let after = start[2..].trim_start();
        let word_len = after
            .find(|c: char| !(c.is_ascii_alphabetic() || c == '-'))
            .unwrap_or(after.len());
        let word = after[..word_len].to_ascii_lowercase();
        let colon = after[word_len..].trim_start().starts_with(':');
        if colon && (word.starts_with("ssm") || word == "resolve") {
            let end = start.find(':').map_or(start.len(), |c| c + 1);
            return Some(&start[..end]);
        }
        rest = &rest[i + 2..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_characters_are_c0_but_tab_del_c1_and_bidi() {
        for c in [
            '\0', '\r', '\n', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}', '\u{202e}',
        ] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['\u{2069}', '\u{2066}', '\u{202a}'] {
            assert!(is_hidden(c), "{c:?}");
        }
        for c in ['\t', ' ', 'a', 'é', '\u{a0}', '\u{2065}', '\u{202f}', '🙂'] {
            assert!(!is_hidden(c), "{c:?}");
        }
    }

    #[test]
    fn escape_makes_hidden_characters_visible() {
        assert_eq!(escape("plain\ttext", false), "plain\ttext");
        assert_eq!(escape("a\u{1b}[2Jb", false), "a\\u{1b}[2Jb");
        assert_eq!(escape("x\ry\0z", false), "x\\ry\\0z");
        assert_eq!(escape("l1\nl2", true), "l1\nl2");
        assert_eq!(escape("l1\nl2", false), "l1\\nl2");
        assert_eq!(escape("\u{202e}abc", true), "\\u{202e}abc");
        assert_eq!(escape("\u{85}", true), "\\u{85}");
    }

    #[test]
    fn sanitizing_keeps_byte_offsets() {
        let text = "a: \"\u{1b}\u{85}\u{202e}\"\r\nb: c\rd\n";
        let clean = sanitize_same_len(text);
        assert_eq!(clean.len(), text.len());
        assert!(!clean.contains(|c: char| is_hidden(c) && c != '\n' && c != '\r'));
        assert!(clean.contains("\r\n") && !clean.contains("c\rd"));
        assert!(matches!(sanitize_same_len("a: b\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn ssm_references_are_found_in_any_case_and_spacing() {
        assert_eq!(ssm_reference("x {{ssm:/a/b}}"), Some("{{ssm:"));
        assert_eq!(ssm_reference("{{ SSM:/a}}"), Some("{{ SSM:"));
        assert_eq!(
            ssm_reference("{{\tssm-secure:/a}}"),
            Some("{{\tssm-secure:")
        );
        assert_eq!(
            ssm_reference("{{Resolve:ssm:/a}}"),
            Some("{{Resolve:"),
            "CloudFormation-style dynamic references"
        );
        assert_eq!(ssm_reference("{{ {{ssm:x}}"), Some("{{ssm:"));
        assert_eq!(ssm_reference("{{ .Name }}"), None, "Go templates are fine");
        assert_eq!(ssm_reference("{{ssmx}} {{ resolved }}"), None);
        assert_eq!(ssm_reference("{{"), None);
    }
}
