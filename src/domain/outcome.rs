//! The script's machine-readable result: its last stdout line, `HOIST-RESULT {json}`.

use serde::{Deserialize, Serialize};

pub const MARKER: &str = "HOIST-RESULT ";

/// What a host script says of its run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultStatus {
    /// The release runs and passed its health gate.
    Deployed,
    /// The release already ran with the same image and configuration; nothing was touched.
    Unchanged,
    /// A two-phase rollout's stage: the release runs, healthy, in the idle color; nothing
    /// serves it yet.
    Staged,
    /// A two-phase rollout's discard: what this run staged is gone; nothing switched.
    Discarded,
    /// It did not; `rolled_back` says whether the previous release serves again.
    #[default]
    Failed,
    /// Another deploy or rollback held the app's lock.
    Locked,
    /// The script refused its parameters.
    Invalid,
    /// A word this hoist does not know (a newer script): judged as a failure.
    #[serde(other)]
    Unknown,
}

/// Which command the script served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    #[default]
    Deploy,
    Rollback,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScriptResult {
    pub app: String,
    pub release: String,
    pub status: ResultStatus,
    pub action: Action,
    pub container: String,
    pub previous: String,
    pub image: String,
    pub reason: String,
    pub rolled_back: bool,
    pub health: String,
    /// The phases the script went through, each with the milliseconds since it started.
    pub marks: Vec<(String, u64)>,
    /// When nginx started routing to the new release (epoch milliseconds, the host's clock):
    /// set by a blue-green switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched_at: Option<u64>,
}

/// Finds the last `HOIST-RESULT` line in a script's stdout. Output that SSM truncated may
/// have lost it: then there is no result, which callers treat as a failure.
pub fn parse(stdout: &str) -> Option<ScriptResult> {
    last_marked(stdout, MARKER)
}

/// The JSON after `marker` on the last line of `stdout` that starts with it, parsed; `None`
/// when there is no such line or it does not parse (output cut short).
pub fn last_marked<T: serde::de::DeserializeOwned>(stdout: &str, marker: &str) -> Option<T> {
    stdout
        .lines()
        .rev()
        .find_map(|line| line.trim_end().strip_prefix(marker))
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
        assert_eq!(r.status, ResultStatus::Deployed);
        assert_eq!(r.release, "abc");
    }

    #[test]
    fn an_unknown_status_is_not_deployed() {
        let r = parse("HOIST-RESULT {\"status\":\"promoted\",\"action\":\"rollback\"}\n").unwrap();
        assert_eq!(r.status, ResultStatus::Unknown);
        assert_eq!(r.action, Action::Rollback);
    }

    #[test]
    fn missing_or_garbled_result_is_none() {
        assert_eq!(parse("hoist: pulling\n"), None);
        assert_eq!(parse("HOIST-RESULT {not json\n"), None);
    }
}
