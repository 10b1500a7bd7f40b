//! What the layers below the command line report while they work. The command line decides
//! how it is shown (a spinner, timestamped lines, GitHub Actions groups, nothing under
//! `--quiet`); the work only says what happens, through this trait.

use super::invocation::Invocation;
use super::secrets::SecretEnv;

/// The prefix of the lines a host's script logs of its own steps (`log`/`warn` in
/// `src/scripts/lib/core.sh`).
pub const SCRIPT_LOG_PREFIX: &str = "hoist: ";

pub trait Events: Send + Sync {
    /// Starts (or retitles) the activity under way.
    fn activity(&self, msg: &str);
    /// Detail under the current activity.
    fn detail(&self, msg: &str);
    /// Ends the current activity, with what it came to.
    fn done(&self, msg: &str);
    /// A line worth keeping in the log.
    fn info(&self, msg: &str);
    /// Something the user should know whatever the verbosity.
    fn warn(&self, msg: &str);
    /// Detail only `--verbose` shows (every line of a build, each target's exit).
    fn verbose(&self, msg: &str);
    /// A line a target's script printed, as it arrives, redacted of secret values.
    fn host_line(&self, target: &str, line: &str);
    /// What a transport says of a target or of the run (a command sent, a status change),
    /// redacted of secret values.
    fn host_status(&self, target: &str, message: &str) {
        self.info(&format!("[{target}] {message}"));
    }
    /// The secret values a deploy read from hoist's environment, before anything is
    /// printed (a CI runner masks them in its log).
    fn secrets(&self, secrets: &SecretEnv) {
        let _ = secrets;
    }
    /// A target of phase `phase` was judged; its output is whole and redacted.
    fn judged(&self, phase: &str, invocation: &Invocation) {
        let _ = (phase, invocation);
    }
}

/// Events nobody sees (tests, and work whose progress is not shown).
pub struct Silent;

impl Events for Silent {
    fn activity(&self, _: &str) {}
    fn detail(&self, _: &str) {}
    fn done(&self, _: &str) {}
    fn info(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn verbose(&self, _: &str) {}
    fn host_line(&self, _: &str, _: &str) {}
}
