//! The text and markdown plans: what a person reads before a deploy, in about a minute.
//!
//! They lead with what the deploy does (app, environment, release and commit, source,
//! image, targets, strategy; with `--against-live`, each target's changes; steps with their
//! phases and batches, env, lock), then what
//! happens if it fails, the warnings, and one line per script: name, bytes, sha256 and the
//! source files it is made of. The scripts' text comes only with `--scripts` (JSON and a
//! saved plan always hold it). Every line is escaped as in [`super::render`]: no hidden
//! character is printed raw, no value turns into markup.

use std::fmt::Write as _;

use super::render::{longest_run, md_cell, md_code, md_text};
use super::{Phase, PhaseTargets, Plan, TransportKind};
use crate::config::Strategy;
use crate::config::duration::format as duration;
use crate::config::text::escape;
use crate::domain::script::Source;

/// Where the scripts' text is when it is not shown.
const SCRIPTS_ELSEWHERE: &str =
    "their text: hoist plan --scripts, --format json, or the file --out saves";

impl Plan {
    /// The leading facts, as (label, value): the same in text and markdown.
    fn lead(&self) -> Vec<(&'static str, String)> {
        let mut lead = vec![
            ("app", self.app.clone()),
            (
                "environment",
                self.environment
                    .clone()
                    .unwrap_or_else(|| "none".to_owned()),
            ),
            (
                "release",
                format!(
                    "{} of commit {}{}; deploy --plan deploys the release and commit of the \
                     checkout it runs in (after a merge, the merged commit)",
                    self.release,
                    self.revision.sha,
                    if self.revision.dirty {
                        " with uncommitted changes"
                    } else {
                        ""
                    }
                ),
            ),
        ];
        if let Some(source) = &self.source {
            lead.push((
                "source",
                format!(
                    "tree {}, build context sha256 {} ({} files): the plan applies only to \
                     this source",
                    source.tree, source.context_sha256, source.context_files
                ),
            ));
        }
        lead.push(("image", self.image_line()));
        lead.push(("targets", self.targets_choice()));
        if let Some(container) = &self.container {
            lead.push(("container", container.line()));
        }
        if let Some(proxy) = self.proxy_line() {
            lead.push(("proxy", proxy));
        }
        lead.push(("strategy", self.strategy_line()));
        if let Some(super::Step::CheckHosts { checks, .. }) = self.steps.first() {
            lead.push((
                "checks",
                format!(
                    "before any host changes, every target must have: {} (read-only, checked \
                     beside the build; `hoist doctor` checks more)",
                    checks.join(", ")
                ),
            ));
        }
        lead
    }

    /// The targets and how they are chosen.
    fn targets_choice(&self) -> String {
        match (self.transport, &self.targets.resolved) {
            (TransportKind::Local, _) => "this machine (local transport)".to_owned(),
            (TransportKind::Ssm, Some(_)) => format!(
                "{}; a reviewed plan deploys to these instances only",
                self.targets_line()
            ),
            (TransportKind::Ssm, None) => format!(
                "{}; SSM resolves them when the deploy starts (--resolve-targets names them \
                 now)",
                self.targets_line()
            ),
        }
    }

    /// The strategy, its phases and how they follow each other.
    fn strategy_line(&self) -> String {
        let names: Vec<&str> = self.phases().map(|p| p.name.as_str()).collect();
        let what = match self.strategy {
            Strategy::Recreate => {
                "recreate (each host stops its release and starts the new one, health-gated)"
            }
            Strategy::BlueGreen => {
                "blue-green (the new release starts beside the old one, nginx switches to it)"
            }
        };
        match self.rollout_line() {
            Some(rollout) => format!("{what}; {rollout}"),
            None => format!(
                "{what}; one phase ({}) over {}",
                names.join(", "),
                self.transport.as_str()
            ),
        }
    }

    /// What happens when the deploy fails, derived from the strategy and the phases.
    fn failure_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let phases: Vec<&Phase> = self.phases().collect();
        let ssm = self.transport == TransportKind::Ssm;
        let before: Vec<&str> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                super::Step::CheckHosts { .. } => Some("a host check"),
                super::Step::Build { .. } => Some("the build"),
                super::Step::Push { .. } => Some("the push"),
                super::Step::PutSecretParameter { .. } => Some("the secret parameter's put"),
                _ => None,
            })
            .collect();
        if let Some((last, rest)) = before.split_last() {
            let steps = if rest.is_empty() {
                (*last).to_owned()
            } else {
                format!("{} or {last}", rest.join(", "))
            };
            lines.push(format!("{steps} fails: no host was touched; exit 1"));
        }
        lines.push(match self.strategy {
            Strategy::Recreate => "on a host, the new release fails to start or its health \
                                   gate (or the run times out, or is killed): it is removed and \
                                   the previous release started again (reported rolled back \
                                   once seen healthy)"
                .to_owned(),
            Strategy::BlueGreen => "on a host, the new colour fails its health gate: it is \
                                    removed, nginx stays on the old colour; it fails the check \
                                    through nginx after the switch (or the run times out, or is \
                                    killed): nginx is switched back to the old colour, which \
                                    never stopped"
                .to_owned(),
        });
        let stage = phases.iter().find(|p| p.name == "stage");
        let canary = phases.iter().find_map(|p| match &p.targets {
            PhaseTargets::Canary { window, .. } => {
                Some((p.name.as_str(), *window, p.policy.max_errors))
            }
            _ => None,
        });
        let discard = phases.iter().any(|p| p.name == "discard");
        if let Some(stage) = stage {
            lines.push(format!(
                "phase stage fails on more targets than max errors ({}) allow: nothing switches \
                 anywhere{}",
                stage.policy.max_errors,
                if discard {
                    "; phase discard removes what was staged"
                } else {
                    " (the pulled image stays; nothing that runs changed)"
                }
            ));
        }
        if let Some((name, window, max_errors)) = canary {
            lines.push(format!(
                "a canary fails within its {} window (health through nginx, the container \
                 staying up): it switches back to the old colour; past phase {name}'s max \
                 errors ({max_errors}) no other target switches, phase discard removes what \
                 stays staged",
                duration(window)
            ));
        }
        if ssm {
            for phase in phases
                .iter()
                .filter(|p| p.name == "deploy" || p.name == "switch")
            {
                lines.push(format!(
                    "more than max errors ({}) targets fail in phase {}: hoist stops the \
                     rollout; targets not yet started are {}, those under way finish, those \
                     done keep the new release; exit 1",
                    phase.policy.max_errors,
                    phase.name,
                    if discard {
                        "discarded (nothing switched there)"
                    } else {
                        "cancelled (they keep the old release)"
                    }
                ));
            }
        }
        if let Some(parameter) = &self.env.parameter {
            lines.push(format!(
                "the secret parameter {parameter} is deleted whatever happens"
            ));
        }
        if let Some(lock) = &self.lock {
            lines.push(format!(
                "the fleet lock is released on every way out; a hoist killed outright leaves \
                 it held: once its lease ({}) ran out and its commands ended, hoist unlock \
                 breaks it",
                duration(lock.lease)
            ));
        }
        let back = match self.strategy {
            Strategy::BlueGreen => " (nginx back on the old colour)",
            Strategy::Recreate => "",
        };
        lines.push(if ssm {
            format!(
                "Ctrl-C, SIGTERM or SIGHUP cancels the SSM commands: hosts under way restore \
                 their previous release{back}, those done keep the new one{}; exit 130",
                if discard {
                    "; no discard runs: a staged container stays, unserved, until the next \
                     deploy"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "Ctrl-C, SIGTERM or SIGHUP: this machine restores its previous release{back}; \
                 exit 130"
            )
        });
        lines
    }

    /// One line for a phase's script: name, bytes (and what SSM carries), sha256, sources.
    fn script_line(phase: &Phase) -> String {
        format!(
            "phase {}: {}, {}, sha256 {}; made of {}",
            phase.name,
            phase.script.body,
            phase.carried.describe(),
            phase.script.sha256,
            made_of(&phase.script.modules)
        )
    }

    pub(super) fn to_text(&self, scripts: bool) -> String {
        let mut o = String::new();
        // Every line goes through `escape`: one printed line is one line of output.
        let mut put = |line: String| {
            o.push_str(&escape(&line, false));
            o.push('\n');
        };
        put(format!(
            "Plan: deploy {} release {} ({} strategy, {} transport)",
            self.app,
            self.release,
            self.strategy.as_str(),
            self.transport.as_str()
        ));
        for (label, value) in self.lead() {
            put(format!("  {label:<11} {value}"));
        }
        if let Some(live) = &self.live {
            put(String::new());
            put("Against what runs now:".into());
            for line in live.lines() {
                put(format!("  {line}"));
            }
        }
        put(String::new());
        put("Steps:".into());
        for (i, line) in self.step_lines().iter().enumerate() {
            put(format!("  {}. {line}", i + 1));
        }
        put(String::new());
        put("Environment:".into());
        let env = self.env_lines();
        if env.is_empty() {
            put("  (none)".into());
        }
        for line in env {
            put(format!("  {line}"));
        }
        if let Some(lock) = self.lock_line() {
            put(String::new());
            put(format!("Lock: {lock}"));
        }
        put(String::new());
        put("If it fails:".into());
        for line in self.failure_lines() {
            put(format!("  - {line}"));
        }
        if !self.warnings.is_empty() {
            put(String::new());
            put("Warnings:".into());
            for w in &self.warnings {
                put(format!("  ! {w}"));
            }
        }
        put(String::new());
        if scripts {
            put("Scripts:".into());
        } else {
            put(format!("Scripts ({SCRIPTS_ELSEWHERE}):"));
        }
        for phase in self.all_phases() {
            put(format!("  {}", Self::script_line(phase)));
        }
        if scripts {
            for phase in self.all_phases() {
                let text = &phase.script.text;
                put(String::new());
                put(format!(
                    "Script of phase {} ({} bytes):",
                    phase.name,
                    text.len()
                ));
                // Split on line feeds only: `lines()` would also eat a carriage return.
                for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
                    put(format!("  | {line}"));
                }
            }
        }
        o
    }

    pub(super) fn to_markdown(&self, scripts: bool) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "### hoist plan: {} release {}\n",
            md_code(&self.app),
            md_code(&self.release)
        );
        let _ = writeln!(o, "| | |\n|---|---|");
        for (label, value) in self.lead() {
            let _ = writeln!(o, "| {label} | {} |", md_cell(&value));
        }
        if let Some(live) = &self.live {
            let _ = writeln!(o, "\n**Against what runs now**\n");
            for line in live.lines() {
                let indent = if line.starts_with("  ") { "  " } else { "" };
                let _ = writeln!(o, "{indent}- {}", md_code(line.trim_start()));
            }
        }
        let _ = writeln!(o, "\n**Steps**\n");
        for (i, line) in self.step_lines().iter().enumerate() {
            let _ = writeln!(o, "{}. {}", i + 1, md_code(line));
        }
        let _ = writeln!(o, "\n**Environment**\n");
        let env = self.env_lines();
        if env.is_empty() {
            let _ = writeln!(o, "- (none)");
        }
        for line in env {
            let _ = writeln!(o, "- {}", md_code(&line));
        }
        if let Some(lock) = self.lock_line() {
            let _ = writeln!(o, "\n**Lock**: {}", md_code(&lock));
        }
        let _ = writeln!(o, "\n**If it fails**\n");
        for line in self.failure_lines() {
            let _ = writeln!(o, "- {}", md_text(&line));
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(o, "\n**Warnings**\n");
            for w in &self.warnings {
                let _ = writeln!(o, "- :warning: {}", md_text(w));
            }
        }
        if scripts {
            let _ = writeln!(o, "\n**Scripts**\n");
        } else {
            let _ = writeln!(o, "\n**Scripts** ({})\n", md_text(SCRIPTS_ELSEWHERE));
        }
        for phase in self.all_phases() {
            let _ = writeln!(o, "- {}", md_code(&Self::script_line(phase)));
        }
        if scripts {
            for phase in self.all_phases() {
                let script = escape(&phase.script.text, true);
                let fence = "`".repeat(3.max(longest_run(&script, &['`', '~']) + 1));
                let _ = writeln!(
                    o,
                    "\n<details><summary>Script of phase {} run on each host ({} bytes)</summary>\n\n{fence}bash\n{}{fence}\n\n</details>",
                    md_text(&phase.name),
                    phase.script.text.len(),
                    script
                );
            }
        }
        o
    }
}

/// The source files a script is made of, the library's modules shortened to one brace list:
/// `src/scripts/lib/{core,engine}.sh + src/scripts/recreate.sh`.
fn made_of(sources: &[Source]) -> String {
    const LIB: &str = "src/scripts/lib/";
    if sources.is_empty() {
        return "(not recorded in this plan)".to_owned();
    }
    let lib: Vec<&str> = sources
        .iter()
        .filter_map(|s| s.path.strip_prefix(LIB)?.strip_suffix(".sh"))
        .filter(|name| !name.contains(['/', ',', '{', '}']))
        .collect();
    let mut parts = Vec::new();
    if !lib.is_empty() {
        parts.push(format!("{LIB}{{{}}}.sh", lib.join(",")));
    }
    for s in sources {
        let in_lib = s
            .path
            .strip_prefix(LIB)
            .and_then(|rest| rest.strip_suffix(".sh"))
            .is_some_and(|name| lib.contains(&name));
        if !in_lib {
            parts.push(s.path.clone());
        }
    }
    parts.join(" + ")
}
