//! The script's machine-readable result: its last stdout line, `HOIST-RESULT {json}`.

use serde::{Deserialize, Serialize};

pub const MARKER: &str = "HOIST-RESULT ";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScriptResult {
    pub app: String,
    pub release: String,
    /// deployed | failed | locked | invalid
    pub status: String,
    pub container: String,
    pub previous: String,
    pub image: String,
    pub reason: String,
    pub rolled_back: bool,
    pub health: String,
}

/// Finds the last `HOIST-RESULT` line in a script's stdout. Output that SSM truncated may
/// have lost it: then there is no result, which callers treat as a failure.
pub fn parse(stdout: &str) -> Option<ScriptResult> {
    stdout
        .lines()
        .rev()
        .find_map(|line| line.trim_end().strip_prefix(MARKER))
        .and_then(|json| serde_json::from_str(json).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_result_line() {
        let out = "hoist: pulling\nHOIST-RESULT {\"status\":\"failed\"}\nnoise\n\
                   HOIST-RESULT {\"status\":\"deployed\",\"release\":\"abc\",\"rolled_back\":false}\n";
        let r = parse(out).unwrap();
        assert_eq!(r.status, "deployed");
        assert_eq!(r.release, "abc");
    }

    #[test]
    fn missing_or_garbled_result_is_none() {
        assert_eq!(parse("hoist: pulling\n"), None);
        assert_eq!(parse("HOIST-RESULT {not json\n"), None);
    }
}
