//! Workflow commands as the runner reads them: escaping, annotations, masks, `$GITHUB_OUTPUT`
//! entries, groups, and text the runner must not act on.

use std::fmt::Write as _;

/// Command data as the runner reads it back: `%`, CR and LF escaped.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A command property's value: as data, and `:` and `,` too (they delimit properties).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::error title=…::message`, or `::error::message` without a title; one line.
pub fn annotation(title: Option<&str>, message: &str) -> String {
    match title {
        Some(title) => format!(
            "::error title={}::{}\n",
            escape_property(title),
            escape_data(message)
        ),
        None => format!("::error::{}\n", escape_data(message)),
    }
}

/// The `::add-mask::` commands for one value: the value whole, and each non-empty line of a
/// value of several lines (the runner matches log lines one at a time). None for an empty
/// value.
pub fn mask_commands(value: &str) -> Vec<String> {
    let mut masked: Vec<&str> = Vec::new();
    if !value.is_empty() {
        masked.push(value);
    }
    if value.contains(['\n', '\r']) {
        for line in value.split(['\n', '\r']) {
            if !line.is_empty() && !masked.contains(&line) {
                masked.push(line);
            }
        }
    }
    masked
        .into_iter()
        .map(|v| format!("::add-mask::{}", escape_data(v)))
        .collect()
}

/// One `$GITHUB_OUTPUT` entry: `name=value`, or for a value with a line break the heredoc
/// form `name<<DELIMITER`, the value, `DELIMITER` (the delimiter must not occur in it).
pub fn output_entry(name: &str, value: &str, delimiter: &str) -> String {
    if value.contains(['\n', '\r']) {
        format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
    } else {
        format!("{name}={value}\n")
    }
}

/// A random heredoc delimiter that does not occur in `value`.
pub(super) fn delimiter_for(value: &str) -> String {
    loop {
        let delimiter = format!("ghadelimiter_{}", random_hex());
        if !value.contains(&delimiter) {
            return delimiter;
        }
    }
}

/// 128 random bits, in hex (the clock and pid when `/dev/urandom` cannot be read).
fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = (nanos ^ u128::from(std::process::id()).rotate_left(64)).to_be_bytes();
    }
    hex::encode(bytes)
}

/// A collapsible group of the log titled `title`, holding `body` as text: the runner acts
/// on no workflow command in it (`::stop-commands::` with a random token around it).
pub fn group(title: &str, body: &str) -> String {
    let token = format!("hoist-{}", random_hex());
    let mut out = format!(
        "::group::{}\n::stop-commands::{token}\n",
        escape_data(title)
    );
    out.push_str(body);
    if !body.is_empty() && !body.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "::{token}::\n::endgroup::");
    out
}

/// `text` shown as it is, with no workflow command in it acted on (a host's stderr in the
/// summary table could hold one).
pub fn inert(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let token = format!("hoist-{}", random_hex());
    let mut out = format!("::stop-commands::{token}\n{text}");
    if !text.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "::{token}::");
    out
}
