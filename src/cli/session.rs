//! What every command runs with besides its arguments, resolved once: the verbosity, GitHub
//! Actions mode, where progress and results go, and the cancel token Ctrl-C, SIGTERM and SIGHUP
//! trip.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::github::{self, Actions};
use crate::ops::{Events, Output};
use crate::output::json::Json;
use crate::output::progress::{Reporter, Verbosity};
use crate::output::text::{Nothing, Text};
use crate::plan::Format;

pub(super) struct Session {
    verbosity: Verbosity,
    /// GitHub Actions mode (`GITHUB_ACTIONS=true`).
    github: Option<Arc<Actions>>,
    /// Cancelled by Ctrl-C, SIGTERM or SIGHUP.
    cancel: CancellationToken,
    /// `-e/--environment`: the environment whose overlay is merged over the config file.
    environment: Option<String>,
}

impl Session {
    /// The session of this process; watches for Ctrl-C, SIGTERM and SIGHUP from now on (inside
    /// the runtime).
    pub(super) fn new(verbosity: Verbosity, environment: Option<String>) -> Session {
        let cancel = CancellationToken::new();
        let interrupted = cancel.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            interrupted.cancel();
        });
        Session {
            verbosity,
            github: Actions::from_env().map(Arc::new),
            cancel,
            environment,
        }
    }

    /// A line on stderr that only `--verbose` shows.
    pub(super) fn verbose(&self, msg: &str) {
        Reporter::with(self.verbosity, false).verbose(msg);
    }

    /// The environment `-e/--environment` selects, if any.
    pub(super) fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// Progress on stderr at the command line's verbosity: plain lines under `--format json`
    /// (stdout is the machine's) and GitHub Actions, a spinner on a terminal otherwise.
    pub(super) fn events(&self, format: Format) -> Arc<dyn Events> {
        let json = format == Format::Json;
        let reporter = Reporter::with(self.verbosity, self.github.is_none() && !json);
        match &self.github {
            Some(actions) => Arc::new(github::Grouped {
                actions: actions.clone(),
                reporter,
                json,
            }),
            None => Arc::new(reporter),
        }
    }

    /// Where a command's result goes: text or JSON on stdout (`None`: nothing on stdout),
    /// and under GitHub Actions the runner's outputs, summary and annotations as well.
    pub(super) fn output(&self, format: Option<Format>) -> Box<dyn Output> {
        self.output_with(format, false)
    }

    /// As [`Session::output`], with `deploy --timings`'s timeline after a deploy's summary.
    pub(super) fn output_with(&self, format: Option<Format>, timings: bool) -> Box<dyn Output> {
        self.output_shown(format, |text| text.timings = timings)
    }

    /// As [`Session::output`], for `hoist plan`: with `scripts`, a text or markdown plan ends
    /// with every phase's whole script.
    pub(super) fn plan_output(&self, format: Option<Format>, scripts: bool) -> Box<dyn Output> {
        self.output_shown(format, |text| text.scripts = scripts)
    }

    /// The output for `format`, its text rendering set up by `shown`.
    fn output_shown(
        &self,
        format: Option<Format>,
        shown: impl FnOnce(&mut Text),
    ) -> Box<dyn Output> {
        let inner: Box<dyn Output> = match format {
            None => Box::new(Nothing),
            Some(Format::Json) => Box::new(Json),
            Some(format) => {
                let mut text = Text::new(format);
                shown(&mut text);
                if self.github.is_some() {
                    // Result tables show hosts' stderr: the runner acts on nothing in them.
                    text.fence = github::inert;
                }
                Box::new(text)
            }
        };
        match &self.github {
            Some(actions) => Box::new(github::Reported {
                actions: actions.clone(),
                inner,
            }),
            None => inner,
        }
    }

    /// The token Ctrl-C, SIGTERM or SIGHUP cancels.
    pub(super) fn cancel(&self) -> CancellationToken {
        self.cancel.clone()
    }
}

/// Ctrl-C, SIGTERM, or SIGHUP (the terminal or the session went away, a runner lost its
/// shell): each interrupts the command the same way. Unhandled, a hangup would kill hoist
/// without cancelling the commands it sent.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A hangup ends the wait (and so cancels the command) as SIGTERM and Ctrl-C do; before,
    /// its default action killed hoist outright, and this test with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hangup_interrupts_like_sigterm() {
        let waiting = tokio::spawn(super::wait_for_signal());
        // Until the handlers are in place (the spawned task registers them when it first runs).
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished());
        // SAFETY: raise(3) on this process, whose SIGHUP tokio now handles.
        assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the hangup ends the wait")
            .unwrap();
    }
}
