//! Progress for people: an `indicatif` spinner on a terminal, plain timestamped lines
//! otherwise (CI logs). Everything goes to stderr; stdout is kept for results.
//!
//! How much is said is the command line's choice ([`Verbosity`]): `--quiet` says nothing
//! but warnings (results and errors are printed by their commands), the default says what
//! hoist does and what each host's script logs of its own steps (`hoist: …` lines), and
//! `--verbose` adds every line the hosts print, as it arrives, and every line of the build.
//! Under GitHub Actions hosts' output is never shown live: each target's output is printed
//! once the target is judged, in a collapsible group (see [`crate::github`]).

use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How much hoist says besides results and errors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Results and errors only (and warnings): no progress lines, no hosts' output.
    Quiet,
    /// What hoist does, and the steps each host's script logs (`hoist: …`).
    #[default]
    Normal,
    /// Also every line the hosts and the build print, as it arrives.
    Verbose,
}

/// The prefix of the lines a host's script logs of its own steps (`log`/`warn` in `src/scripts/lib/core.sh`).
pub use crate::domain::events::SCRIPT_LOG_PREFIX;

pub struct Reporter {
    tty: bool,
    verbosity: Verbosity,
    spinner: Mutex<Option<ProgressBar>>,
}

impl Reporter {
    /// The default verbosity, a spinner on a terminal outside CI.
    pub fn new() -> Self {
        Self::with(Verbosity::Normal, true)
    }

    /// A reporter of this verbosity: a spinner only when `spinner` allows one, stderr is a
    /// terminal, and not in CI.
    pub fn with(verbosity: Verbosity, spinner: bool) -> Self {
        Reporter {
            tty: spinner && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
            verbosity,
            spinner: Mutex::new(None),
        }
    }

    /// A reporter that never draws a spinner (tests, `--format json`).
    pub fn plain() -> Self {
        Reporter {
            tty: false,
            verbosity: Verbosity::Normal,
            spinner: Mutex::new(None),
        }
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// A line that stays in the log (nothing under `--quiet`).
    pub fn info(&self, msg: &str) {
        if self.verbosity > Verbosity::Quiet {
            self.line(msg);
        }
    }

    /// A warning: shown at every verbosity, `--quiet` included.
    pub fn warn(&self, msg: &str) {
        self.line(msg);
    }

    /// Detail only `--verbose` shows, as a line.
    pub fn verbose(&self, msg: &str) {
        if self.verbosity >= Verbosity::Verbose {
            self.line(msg);
        }
    }

    fn line(&self, msg: &str) {
        let guard = self.spinner.lock().expect("not poisoned");
        match guard.as_ref() {
            Some(bar) => bar.println(msg),
            None if self.tty => super::write::err(&format!("{msg}\n")),
            None => super::write::err(&format!("{} {msg}\n", timestamp())),
        }
    }

    /// A block printed whole, in one write (GitHub Actions groups: nothing else may come
    /// between its lines).
    pub fn block(&self, text: &str) {
        let guard = self.spinner.lock().expect("not poisoned");
        match guard.as_ref() {
            Some(bar) => bar.suspend(|| write_stderr(text)),
            None => write_stderr(text),
        }
    }

    /// Starts (or retitles) the activity shown while work is under way.
    pub fn activity(&self, msg: &str) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        if !self.tty {
            self.info(msg);
            return;
        }
        let mut guard = self.spinner.lock().expect("not poisoned");
        let bar = guard.get_or_insert_with(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                    .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        bar.set_message(msg.to_owned());
    }

    /// Detail under the current activity: the spinner's message on a terminal, a log
    /// line otherwise.
    pub fn detail(&self, msg: &str) {
        let guard = self.spinner.lock().expect("not poisoned");
        if let Some(bar) = guard.as_ref() {
            bar.set_message(msg.to_owned());
        } else {
            drop(guard);
            self.info(msg);
        }
    }

    /// Ends the current activity, leaving `msg` in the log.
    pub fn done(&self, msg: &str) {
        if let Some(bar) = self.spinner.lock().expect("not poisoned").take() {
            bar.finish_and_clear();
        }
        self.info(msg);
    }
}

impl crate::domain::Events for Reporter {
    fn activity(&self, msg: &str) {
        Reporter::activity(self, msg);
    }
    fn detail(&self, msg: &str) {
        Reporter::detail(self, msg);
    }
    fn done(&self, msg: &str) {
        Reporter::done(self, msg);
    }
    fn info(&self, msg: &str) {
        Reporter::info(self, msg);
    }
    fn warn(&self, msg: &str) {
        Reporter::warn(self, msg);
    }
    fn verbose(&self, msg: &str) {
        Reporter::verbose(self, msg);
    }

    /// The lines a script logs of its own steps (`hoist: …`) by default, every line with
    /// `--verbose`, none with `--quiet`.
    fn host_line(&self, target: &str, line: &str) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let shown = format!("[{target}] {line}");
        if line.starts_with(SCRIPT_LOG_PREFIX) {
            self.info(&shown);
        } else {
            self.verbose(&shown);
        }
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Self::new()
    }
}

fn write_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Whether hoist may colour what it writes to stderr: a terminal, and `NO_COLOR` unset or
/// empty (<https://no-color.org>).
pub fn color() -> bool {
    std::io::stderr().is_terminal() && color_allowed(std::env::var_os("NO_COLOR").as_deref())
}

/// `NO_COLOR` (its value, when set) allows colour only when empty.
pub fn color_allowed(no_color: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(std::ffi::OsStr::is_empty)
}

fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_set_to_anything_but_empty_turns_colour_off() {
        assert!(color_allowed(None));
        assert!(color_allowed(Some("".as_ref())));
        assert!(!color_allowed(Some("1".as_ref())));
        assert!(!color_allowed(Some("0".as_ref())));
    }
}
