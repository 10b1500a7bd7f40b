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
        let summary = self.write_summary(command, &plan.render(Format::Markdown));
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
    eprintln!("warning: {message}");
    write_all(
        &mut std::io::stderr().lock(),
        &format!("::warning::{}\n", escape_data(&message)),
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
mod tests {
    use std::time::Duration;

    use super::summary::table;
    use super::*;
    use crate::ops::execute::StepStatus;

    #[test]
    fn annotation_data_and_properties_are_escaped_as_the_runner_reads_them() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(
            escape_data("%0A"),
            "%250A",
            "a literal escape stays literal"
        );
        assert_eq!(
            escape_property("a: b, c%\n"),
            "a%3A b%2C c%25%0A",
            "`:` and `,` end a property"
        );
        assert_eq!(
            annotation(Some("hoist deploy failed on i-0a,b:c"), "line 1\nline 2"),
            "::error title=hoist deploy failed on i-0a%2Cb%3Ac::line 1%0Aline 2\n"
        );
        assert_eq!(
            annotation(None, "a: b, c"),
            "::error::a: b, c\n",
            "data keeps `:` and `,`"
        );
    }

    #[test]
    fn a_value_with_a_line_break_is_written_as_a_heredoc() {
        assert_eq!(output_entry("release", "abc123", "D"), "release=abc123\n");
        assert_eq!(
            output_entry("plan", "/tmp/a\nb.json", "ghadelimiter_x"),
            "plan<<ghadelimiter_x\n/tmp/a\nb.json\nghadelimiter_x\n"
        );
        assert_eq!(output_entry("x", "a\rb", "D"), "x<<D\na\rb\nD\n");
        let d = delimiter_for("value");
        assert!(d.starts_with("ghadelimiter_") && d.len() == 13 + 32, "{d}");
        assert_ne!(d, delimiter_for("value"), "random");
    }

    #[test]
    fn outputs_are_written_in_order_and_only_when_set() {
        let outputs = Outputs {
            release: Some("r1".into()),
            result: Some("deployed"),
            command_id: Some(String::new()),
            ..Outputs::default()
        };
        let names: Vec<&str> = outputs.entries().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["release", "command-id", "result"]);
    }

    #[test]
    fn table_cells_escape_pipes_markup_and_line_breaks() {
        assert_eq!(md_cell("a|b"), "a\\|b");
        assert_eq!(md_cell("one\r\ntwo\nthree"), "one<br>two<br>three");
        assert_eq!(md_cell("<b>x</b>"), "\\<b\\>x\\</b\\>");
        assert_eq!(md_cell("tab\tand \u{1b}[1m"), "tab\tand \\\\u{1b}\\[1m");
        let mut out = String::new();
        table(&mut out, &["a", "b"], &[vec!["x|y".into(), "1\n2".into()]]);
        assert_eq!(out, "| a | b |\n|---|---|\n| x\\|y | 1<br>2 |\n");
    }

    #[test]
    fn mask_lines_cover_the_value_and_each_of_its_lines() {
        assert_eq!(mask_commands("s3cr3t-value"), ["::add-mask::s3cr3t-value"]);
        assert!(mask_commands("").is_empty());
        assert_eq!(
            mask_commands("first\n\nsecond\r\n100%"),
            [
                "::add-mask::first%0A%0Asecond%0D%0A100%25",
                "::add-mask::first",
                "::add-mask::second",
                "::add-mask::100%25",
            ]
        );
    }

    #[test]
    fn a_group_acts_on_no_command_its_body_holds() {
        let g = group("deploy · i-0abc", "::add-mask::x\n::endgroup::\nlast");
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(lines[0], "::group::deploy · i-0abc");
        let token = lines[1].strip_prefix("::stop-commands::").unwrap();
        assert!(token.len() > 32, "{token}");
        assert_eq!(&lines[2..5], ["::add-mask::x", "::endgroup::", "last"]);
        assert_eq!(lines[5], format!("::{token}::"));
        assert_eq!(lines[6], "::endgroup::");
        assert_eq!(lines.len(), 7);
        assert_eq!(inert(""), "");
    }

    fn plan() -> Plan {
        let yaml = "app: web\ntargets:\n  tags:\n    Env: [prod]\n";
        let config = crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
        let inputs = crate::plan::Inputs::new(
            crate::revision::Revision::clean("0123456789abcdef0123456789abcdef01234567"),
            crate::plan::TransportKind::Local,
        );
        crate::plan::build(&config, &inputs).unwrap()
    }

    fn invocation(target: &str, result: &str, command: Option<&str>) -> Invocation {
        use crate::transport::InvocationStatus;
        let deployed = result.contains("deployed");
        let mut inv = Invocation {
            target: target.into(),
            status: if deployed {
                InvocationStatus::Success
            } else {
                InvocationStatus::Failed
            },
            exit_code: Some(i32::from(!deployed)),
            stdout: format!("HOIST-RESULT {result}\n"),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            duration: Duration::from_secs(1),
            result: None,
            outcome: None,
            command_id: command.map(str::to_owned),
        };
        inv.result = crate::domain::outcome::parse(&inv.stdout);
        inv
    }

    fn report(invocations: Vec<Invocation>) -> Report {
        Report {
            app: "web".into(),
            release: "r1".into(),
            plan: plan(),
            steps: Vec::new(),
            deployed: invocations.iter().filter(|i| i.deployed()).count(),
            failed: invocations.iter().filter(|i| !i.deployed()).count(),
            phases: vec![crate::ops::execute::PhaseReport {
                name: "deploy".into(),
                invocations,
            }],
            mixed_version_window_ms: None,
            cancelled: false,
            reviewed: None,
            timings: None,
            lock: None,
        }
    }

    #[test]
    fn the_result_is_rolled_back_only_when_every_failed_target_was_seen_back() {
        let ok = || invocation("a", r#"{"status":"deployed"}"#, None);
        let back = || invocation("b", r#"{"status":"failed","rolled_back":true}"#, None);
        let failed = || invocation("c", r#"{"status":"failed","rolled_back":false}"#, None);
        assert_eq!(deploy_result(&report(vec![ok(), ok()])), "deployed");
        assert_eq!(deploy_result(&report(vec![ok(), back()])), "rolled-back");
        assert_eq!(deploy_result(&report(vec![back(), back()])), "rolled-back");
        assert_eq!(deploy_result(&report(vec![back(), failed()])), "failed");
        assert_eq!(deploy_result(&report(Vec::new())), "failed", "nothing ran");
        let mut cut = ok();
        cut.stdout = "hoist: deploying\n".into();
        cut.result = None;
        assert_eq!(
            deploy_result(&report(vec![cut])),
            "failed",
            "no result line"
        );
    }

    #[test]
    fn summaries_have_a_heading_a_row_per_target_and_a_timeline() {
        let back = invocation(
            "i-0a",
            r#"{"status":"failed","rolled_back":true,"reason":"health | check\nfailed"}"#,
            None,
        );
        let mut deploy = report(vec![back.clone()]);
        deploy.steps.push(crate::ops::execute::StepReport {
            step: crate::plan::StepKind::RunPhase,
            phase: Some("deploy".into()),
            status: StepStatus::Failed,
            detail: "0 of 1 target(s) succeeded".into(),
            duration: Duration::from_millis(1500),
        });
        let md = deploy_summary(&deploy, deploy_result(&deploy));
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "### hoist deploy: `web` release `r1`: rolled-back"
        );
        assert_eq!(
            lines[2],
            "| target | status | release | duration | detail |"
        );
        assert_eq!(
            lines[4],
            "| i-0a | rolled back | r1 | 1.0s | health \\| check<br>failed |"
        );
        assert!(
            md.contains("| run-phase deploy | failed | 1.5s | 0 of 1 target(s) succeeded |"),
            "{md}"
        );
        assert!(
            !md.contains("Fleet lock") && !md.contains("Mixed-version"),
            "{md}"
        );
        // Over SSM: the lock it held (and how long it waited), and the mixed-version window.
        deploy.lock = Some(crate::lock::LockReport {
            parameter: "/hoist/web/lock/0123456789ab".into(),
            waited: Duration::from_millis(12_300),
        });
        deploy.mixed_version_window_ms = Some(2_500);
        let md = deploy_summary(&deploy, deploy_result(&deploy));
        assert!(
            md.contains(
                "Fleet lock `/hoist/web/lock/0123456789ab`: waited 12.3s for it, released at \
                 the end\n"
            ) && md.contains("Mixed-version window: 2.5s (from the first target's switch"),
            "{md}"
        );

        let config = crate::config::parse(
            "app: web\ntargets:\n  tags:\n    Env: [prod]\n",
            "hoist.yaml".as_ref(),
            ".".as_ref(),
        )
        .unwrap();
        let rolled = invocation("local", r#"{"status":"deployed","release":"v1"}"#, None);
        let rollback = RollbackReport {
            app: "web".into(),
            to: None,
            phase: crate::plan::rollback_phase(&config, crate::plan::TransportKind::Local, None)
                .unwrap(),
            invocations: vec![rolled],
            rolled_back: 1,
            failed: 0,
            cancelled: false,
            lock: None,
        };
        let md = rollback_summary(&rollback, "rolled-back");
        assert!(
            md.starts_with("### hoist rollback: `web` to the previous release: rolled-back\n"),
            "{md}"
        );
        assert!(md.contains("| local | rolled back | v1 | 1.0s | "), "{md}");
        assert!(
            md.contains("| run-phase rollback | done | 1.0s | 1 of 1 target(s) rolled back |"),
            "{md}"
        );
    }

    #[test]
    fn command_ids_are_listed_once_each_in_order() {
        let invocations = [
            invocation("a", "{}", Some("c-2")),
            invocation("b", "{}", Some("c-1")),
            invocation("c", "{}", Some("c-2")),
            invocation("d", "{}", None),
        ];
        assert_eq!(command_ids(invocations.iter()), "c-2 c-1");
        assert_eq!(command_ids(invocations[3..].iter()), "");
    }

    #[test]
    fn the_digest_output_is_set_only_for_a_reference_pinned_in_a_registry() {
        let mut plan = plan();
        let digest = format!("sha256:{}", "b".repeat(64));
        plan.image.reference = format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@{digest}");
        plan.image.pinned = true;
        assert_eq!(
            image_outputs(&plan),
            (plan.image.reference.clone(), digest.clone())
        );
        plan.image.reference.clone_from(&digest);
        assert_eq!(
            image_outputs(&plan),
            (digest, String::new()),
            "a local image id is in no registry"
        );
        plan.image.reference = "web:0123456".into();
        plan.image.pinned = false;
        assert_eq!(image_outputs(&plan).1, "", "a tag is not pinned");
    }

    #[test]
    fn github_mode_needs_github_actions_true() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).into())
            }
        };
        assert!(Actions::from_lookup(env(&[])).is_none());
        assert!(Actions::from_lookup(env(&[("GITHUB_ACTIONS", "false")])).is_none());
        let on = Actions::from_lookup(env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", "/tmp/out"),
            ("RUNNER_TEMP", ""),
        ]))
        .unwrap();
        assert_eq!(on.output.as_deref(), Some(Path::new("/tmp/out")));
        assert_eq!(on.runner_temp, None, "empty is unset");
    }
}
