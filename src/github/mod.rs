//! GitHub Actions mode: when `GITHUB_ACTIONS=true`, hoist speaks to the runner as well as
//! to people.
//!
//! - **Masks** every secret value it read from its environment first (`::add-mask::`, on
//!   stdout; on stderr under `--format json`, whose stdout is the machine's — the runner
//!   reads workflow commands from both), so the runner scrubs them from the log too.
//! - **Groups** each target's output (`::group::<phase> · <target>`), printed once the target
//!   is judged: groups cannot interleave, so nothing is streamed live. Host output cannot
//!   issue workflow commands: each group's body is fenced with `::stop-commands::`.
//! - **Annotates** each target that did not end deployed (`::error title=hoist <command>
//!   failed on <target>::<reason>`) and the error that ended a command (`::error::…`).
//! - **Writes outputs** to `$GITHUB_OUTPUT` ([`Outputs`]) and a **job summary** to
//!   `$GITHUB_STEP_SUMMARY`, the same markdown also to a file whose path is the `summary`
//!   output.
//!
//! Nothing written for the workflow holds a secret value: reports are redacted before they
//! are read (see [`crate::secrets`]), and every text written here is redacted once more.
//! A file that cannot be written is a warning, not a failure: the deploy happened.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

mod summary;
mod workflow;

use std::sync::Arc;

use crate::domain::secrets::SecretEnv;
use crate::domain::{Invocation, Phase};
use crate::ops::build::Built;
use crate::ops::rollback::{self, RollbackReport};
use crate::ops::status::StatusReport;
use crate::ops::steps::Report;
use crate::ops::{Error, Events, LockStatus, Output};
use crate::output::progress::{Reporter, Verbosity};
use crate::output::summary as deploy;
use crate::plan::{Format, Plan};
pub use summary::*;
pub use workflow::*;

/// The runner's files and directories, from its environment.
pub struct Actions {
    /// `$GITHUB_OUTPUT`: `name=value` lines (or heredocs) the step's outputs are read from.
    output: Option<PathBuf>,
    /// `$GITHUB_STEP_SUMMARY`: markdown appended to the job's summary page.
    step_summary: Option<PathBuf>,
    /// `$RUNNER_TEMP`: where the summary's own file goes (else the temp directory).
    runner_temp: Option<PathBuf>,
    /// The secret values read, once read: every text written here is redacted of them.
    secrets: Mutex<SecretEnv>,
    /// The command wrote its outputs: an error after that does not write them again.
    finished: AtomicBool,
}

/// What a command writes to `$GITHUB_OUTPUT`. An output that does not apply to a command
/// is not written (an unwritten output reads as empty in a workflow).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// The release id.
    pub release: Option<String>,
    /// What hosts run: `registry/repository@sha256:…`, or the image id for local.
    pub image: Option<String>,
    /// `sha256:…` when the image is pinned in a registry, else empty.
    pub digest: Option<String>,
    /// The SSM command ids of the run, space-separated; empty for the local transport.
    pub command_id: Option<String>,
    /// The plan file: `hoist plan --out`, or the plan a deploy applied.
    pub plan: Option<PathBuf>,
    /// `deployed`, `rolled-back` or `failed`.
    pub result: Option<&'static str>,
    /// The markdown file holding what was appended to the job summary.
    pub summary: Option<PathBuf>,
}

impl Outputs {
    /// `(name, value)` of every output set, in a fixed order.
    fn entries(&self) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        [
            ("release", self.release.clone()),
            ("image", self.image.clone()),
            ("digest", self.digest.clone()),
            ("command-id", self.command_id.clone()),
            ("plan", self.plan.as_deref().map(path)),
            ("result", self.result.map(str::to_owned)),
            ("summary", self.summary.as_deref().map(path)),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect()
    }
}

impl Actions {
    /// GitHub Actions mode, when `GITHUB_ACTIONS` is `true` in hoist's environment.
    pub fn from_env() -> Option<Actions> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// As [`Self::from_env`], reading variables from `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<Actions> {
        if lookup("GITHUB_ACTIONS")? != "true" {
            return None;
        }
        let path = |name: &str| lookup(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        Some(Actions {
            output: path("GITHUB_OUTPUT"),
            step_summary: path("GITHUB_STEP_SUMMARY"),
            runner_temp: path("RUNNER_TEMP"),
            secrets: Mutex::new(SecretEnv::default()),
            finished: AtomicBool::new(false),
        })
    }

    /// Masks every value of `secrets` (and each line of a multi-line one) in the runner's
    /// log, on stdout or (`to_stderr`, under `--format json`) stderr, and remembers them:
    /// nothing written for the workflow afterwards may hold one.
    pub fn mask(&self, secrets: &SecretEnv, to_stderr: bool) {
        let mut text = String::new();
        for value in secrets.values() {
            for line in mask_commands(value) {
                let _ = writeln!(text, "{line}");
            }
        }
        if !text.is_empty() {
            if to_stderr {
                write_all(&mut std::io::stderr().lock(), &text);
            } else {
                write_all(&mut std::io::stdout().lock(), &text);
            }
        }
        *self.secrets.lock().expect("not poisoned") = secrets.clone();
    }

    fn redact(&self, text: &str) -> String {
        self.secrets.lock().expect("not poisoned").redact(text)
    }

    /// `hoist plan` (and `deploy --dry-run`): the markdown plan as the job summary, and the
    /// plan's release, image and file.
    pub fn plan(&self, command: &str, plan: &Plan, out: Option<&Path>) {
        // The short plan (no script text): what a pull request comment carries, cut to fit
        // one in the rare plan that is longer; the whole plan is the JSON file.
        let note = format!(
            "*The plan is cut here to fit a comment ({} KB): the whole plan, every script \
             included, is the plan file (`hoist plan --out`), or `hoist plan --scripts`.*",
            PLAN_SUMMARY_MAX / 1024
        );
        let markdown = fit(&plan.render(Format::Markdown), PLAN_SUMMARY_MAX, &note);
        let summary = self.write_summary(command, &markdown);
        let (image, digest) = image_outputs(plan);
        self.write_outputs(&Outputs {
            release: Some(plan.release.clone()),
            image: Some(image),
            digest: Some(digest),
            plan: out.map(Path::to_path_buf),
            summary,
            ..Outputs::default()
        });
    }

    /// `hoist deploy`: an annotation per target that did not end deployed, the summary
    /// (heading, per-target table, timeline) and the outputs. `plan_path` is the plan file
    /// the deploy applied, when it applied one; otherwise the plan it executed is written to
    /// a file of its own (JSON, beside the summary's), which the `plan` output names.
    pub fn deploy(&self, report: &Report, plan_path: Option<&Path>) {
        let executed = if plan_path.is_none() {
            self.write_file("plan-deploy", "json", &report.plan.render(Format::Json))
        } else {
            None
        };
        let plan_path = plan_path.or(executed.as_deref());
        let result = deploy_result(report);
        let invocations: Vec<&Invocation> =
            report.phases.iter().flat_map(|p| &p.invocations).collect();
        self.annotate_targets("deploy", &invocations);
        let summary = self.write_summary("deploy", &deploy_summary(report, result));
        let (image, digest) = image_outputs(&report.plan);
        self.write_outputs(&Outputs {
            release: Some(report.release.clone()),
            image: Some(image),
            digest: Some(digest),
            command_id: Some(command_ids(invocations.iter().copied())),
            plan: plan_path.map(Path::to_path_buf),
            result: Some(result),
            summary,
        });
    }

    /// `hoist build`: what hosts would run (the image and its digest) and the release, and a
    /// one-line summary.
    pub fn build(&self, release: &str, image: &str, digest: Option<&str>) {
        let summary = self.write_summary(
            "build",
            &format!(
                "### hoist build: release `{}`\n\nimage `{}`\n",
                md_cell(release),
                md_cell(image)
            ),
        );
        self.write_outputs(&Outputs {
            release: Some(release.to_owned()),
            image: Some(image.to_owned()),
            digest: Some(digest.unwrap_or_default().to_owned()),
            summary,
            ..Outputs::default()
        });
    }

    /// `hoist rollback`: as a deploy; `result` is `rolled-back` when every target runs the
    /// release it was asked to go back to, else `failed`.
    pub fn rollback(&self, report: &RollbackReport) {
        let result = if report.ok() { "rolled-back" } else { "failed" };
        let invocations: Vec<&Invocation> = report.invocations.iter().collect();
        self.annotate_targets("rollback", &invocations);
        let summary = self.write_summary("rollback", &rollback_summary(report, result));
        let release = report
            .to
            .clone()
            .or_else(|| report.invocations.first().map(rollback::release_of));
        self.write_outputs(&Outputs {
            release,
            command_id: Some(command_ids(invocations.iter().copied())),
            result: Some(result),
            summary,
            ..Outputs::default()
        });
    }

    /// `hoist status`: a per-target table as the summary.
    pub fn status(&self, report: &StatusReport, invocations: &[Invocation]) {
        let summary = self.write_summary("status", &status_summary(report));
        self.write_outputs(&Outputs {
            command_id: Some(command_ids(invocations.iter())),
            summary,
            ..Outputs::default()
        });
    }

    /// `hoist lock status` and `hoist unlock`: what they printed, under `heading`, as the
    /// job summary.
    pub fn note(&self, command: &str, heading: &str, text: &str) {
        let summary = self.write_summary(
            command,
            &format!("### {}\n\n{}", md_cell(heading), md_fence(text.trim_end())),
        );
        self.write_outputs(&Outputs {
            summary,
            ..Outputs::default()
        });
    }

    /// The error that ended `command`: one `::error::` annotation (none for a deploy or a
    /// rollback whose targets were annotated already: `message` is then `None`), and for a
    /// deploy or rollback that wrote no outputs yet, `result=failed` and a summary saying why.
    pub fn failed(&self, command: &str, message: Option<&str>) {
        if let Some(message) = message {
            let message = self.redact(message);
            write_all(&mut std::io::stderr().lock(), &annotation(None, &message));
            if matches!(command, "deploy" | "rollback") && !self.finished.load(Ordering::SeqCst) {
                let text = format!(
                    "### hoist {command}: failed\n\n{}",
                    md_fence(message.trim_end())
                );
                let summary = self.write_summary(command, &text);
                self.write_outputs(&Outputs {
                    result: Some("failed"),
                    summary,
                    ..Outputs::default()
                });
            }
        }
    }

    fn annotate_targets(&self, command: &str, invocations: &[&Invocation]) {
        let mut text = String::new();
        for inv in invocations.iter().filter(|i| !i.deployed()) {
            let reason = inv
                .failure_reason()
                .unwrap_or_else(|| "did not end deployed".to_owned());
            text.push_str(&annotation(
                Some(&format!("hoist {command} failed on {}", inv.target)),
                &self.redact(&reason),
            ));
        }
        if !text.is_empty() {
            write_all(&mut std::io::stderr().lock(), &text);
        }
    }

    /// Appends `markdown` to the job summary and writes it to a file of its own; returns
    /// that file's path.
    fn write_summary(&self, command: &str, markdown: &str) -> Option<PathBuf> {
        if let Some(path) = &self.step_summary
            && let Err(e) = append(path, &self.redact(markdown))
        {
            warn("GITHUB_STEP_SUMMARY", path, &e);
        }
        self.write_file(&format!("summary-{command}"), "md", markdown)
    }

    /// Writes `text` (redacted) to `hoist-<name>-<pid>.<ext>` in `$RUNNER_TEMP` (else the
    /// temp directory); returns its path.
    fn write_file(&self, name: &str, ext: &str, text: &str) -> Option<PathBuf> {
        let dir = self.runner_temp.clone().unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!("hoist-{name}-{}.{ext}", std::process::id()));
        match std::fs::write(&path, self.redact(text)) {
            Ok(()) => Some(path),
            Err(e) => {
                warn("a file for the workflow", &path, &e);
                None
            }
        }
    }

    fn write_outputs(&self, outputs: &Outputs) {
        self.finished.store(true, Ordering::SeqCst);
        let Some(path) = &self.output else { return };
        let entries: Vec<(&str, String)> = outputs
            .entries()
            .into_iter()
            .map(|(name, value)| (name, self.redact(&value)))
            .collect();
        let mut text = String::new();
        for (name, value) in &entries {
            text.push_str(&output_entry(name, value, &delimiter_for(value)));
        }
        if let Err(e) = append(path, &text) {
            warn("GITHUB_OUTPUT", path, &e);
        }
    }
}

/// The `image` and `digest` outputs of a plan: the reference hosts run, and its digest when
/// the reference is a registry's (`…@sha256:…`).
fn image_outputs(plan: &Plan) -> (String, String) {
    let image = &plan.image;
    let digest = match image.reference.split_once('@') {
        Some((_, digest)) if image.pinned => digest.to_owned(),
        _ => String::new(),
    };
    (image.reference.clone(), digest)
}

/// The distinct SSM command ids of `invocations`, in order, space-separated.
fn command_ids<'a>(invocations: impl Iterator<Item = &'a Invocation>) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for id in invocations.filter_map(|i| i.command_id.as_deref()) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids.join(" ")
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

fn write_all(out: &mut impl std::io::Write, text: &str) {
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn warn(what: &str, path: &Path, e: &std::io::Error) {
    let message = format!("cannot write {what} ({}): {e}", path.display());
    write_all(
        &mut std::io::stderr().lock(),
        &format!("warning: {message}\n::warning::{}\n", escape_data(&message)),
    );
}

/// Progress under GitHub Actions: secret values masked first; hosts' output never shown
/// live, but each target's once the target is judged, in a group of its own (groups cannot
/// interleave). The rest is the plain reporter's (timestamped lines; never a spinner).
pub struct Grouped {
    pub actions: Arc<Actions>,
    pub reporter: Reporter,
    /// `--format json`: stdout is the machine's, so masks go to stderr.
    pub json: bool,
}

impl Events for Grouped {
    fn activity(&self, msg: &str) {
        self.reporter.activity(msg);
    }
    fn detail(&self, msg: &str) {
        self.reporter.detail(msg);
    }
    fn done(&self, msg: &str) {
        self.reporter.done(msg);
    }
    fn info(&self, msg: &str) {
        self.reporter.info(msg);
    }
    fn warn(&self, msg: &str) {
        self.reporter.warn(msg);
    }
    fn verbose(&self, msg: &str) {
        self.reporter.verbose(msg);
    }
    fn host_line(&self, _: &str, _: &str) {}
    fn secrets(&self, secrets: &SecretEnv) {
        self.actions.mask(secrets, self.json);
    }
    fn judged(&self, phase: &str, inv: &Invocation) {
        if self.reporter.verbosity() > Verbosity::Quiet {
            self.reporter.block(&group(
                &format!("{phase} · {}", inv.target),
                &deploy::host_output(inv),
            ));
        }
    }
}

/// Results under GitHub Actions: what `inner` prints (result tables fenced so the runner
/// acts on nothing in them), then the runner's outputs, job summary and annotations.
pub struct Reported {
    pub actions: Arc<Actions>,
    pub inner: Box<dyn Output>,
}

impl Output for Reported {
    fn plan(&self, command: &str, plan: &Plan, saved: Option<&Path>) {
        self.inner.plan(command, plan, saved);
        self.actions.plan(command, plan, saved);
    }
    fn reviewed(&self, plan: &Plan) {
        self.inner.reviewed(plan);
    }
    fn deploy(&self, report: &Report, applied: Option<&Path>) {
        self.inner.deploy(report, applied);
        self.actions.deploy(report, applied);
    }
    fn built(&self, built: &Built) {
        self.inner.built(built);
        self.actions
            .build(&built.release, &built.image, built.digest.as_deref());
    }
    fn status(&self, report: &StatusReport, invocations: &[Invocation]) {
        self.inner.status(report, invocations);
        self.actions.status(report, invocations);
    }
    fn rollback(&self, report: &RollbackReport) {
        self.inner.rollback(report);
        self.actions.rollback(report);
    }
    fn rollback_script(&self, app: &str, to: Option<&str>, phase: &Phase) {
        self.inner.rollback_script(app, to, phase);
    }
    fn lock(&self, status: &LockStatus) {
        self.inner.lock(status);
        self.actions
            .note("lock", "hoist lock status", &status.to_text());
    }
    fn unlock(&self, text: &str) {
        self.inner.unlock(text);
        self.actions.note("unlock", "hoist unlock", text);
    }
    fn failed(&self, command: &str, error: &Error) {
        self.inner.failed(command, error);
        let message = match error {
            Error::Failed => None,
            Error::Config(e) | Error::ConfigReported(e) => Some(e.headlines()),
            e => Some(e.to_string()),
        };
        self.actions.failed(command, message.as_deref());
    }
}

#[cfg(test)]
mod tests;
