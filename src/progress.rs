//! Progress for people: an `indicatif` spinner on a terminal, plain timestamped lines
//! otherwise (CI logs). Everything goes to stderr; stdout is kept for results.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Reporter {
    tty: bool,
    spinner: Mutex<Option<ProgressBar>>,
}

impl Reporter {
    pub fn new() -> Self {
        Reporter {
            tty: std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
            spinner: Mutex::new(None),
        }
    }

    /// A reporter that never draws a spinner (tests, `--format json`).
    pub fn plain() -> Self {
        Reporter {
            tty: false,
            spinner: Mutex::new(None),
        }
    }

    /// A line that stays in the log.
    pub fn info(&self, msg: &str) {
        let guard = self.spinner.lock().expect("not poisoned");
        match guard.as_ref() {
            Some(bar) => bar.println(msg),
            None if self.tty => eprintln!("{msg}"),
            None => eprintln!("{} {msg}", timestamp()),
        }
    }

    /// Starts (or retitles) the activity shown while work is under way.
    pub fn activity(&self, msg: &str) {
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

impl Default for Reporter {
    fn default() -> Self {
        Self::new()
    }
}

fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}
