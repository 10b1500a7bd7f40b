//! The job summary (`$GITHUB_STEP_SUMMARY`): markdown for a deploy, a rollback and a status.

use std::fmt::Write as _;
use std::time::Duration;

use crate::domain::{Invocation, Outcome};
use crate::ops::execute::StepStatus;
use crate::ops::rollback::{self, RollbackReport};
use crate::ops::status::StatusReport;
use crate::ops::steps::Report;
use crate::output::summary as deploy;
use crate::plan;

/// What `result` says of a deploy: `deployed` when it succeeded; `rolled-back` when it
/// failed and every target that did not end deployed was observed back on its previous
/// release; `failed` otherwise.
pub fn deploy_result(report: &Report) -> &'static str {
    if report.ok() {
        return "deployed";
    }
    let mut failed = report
        .phases
        .iter()
        .flat_map(|p| &p.invocations)
        .filter(|i| !i.deployed())
        .peekable();
    if failed.peek().is_some() && failed.all(|i| outcome(i) == Outcome::RolledBack) {
        "rolled-back"
    } else {
        "failed"
    }
}

fn outcome(inv: &Invocation) -> Outcome {
    inv.outcome.unwrap_or_else(|| inv.judge())
}

/// A markdown table cell: text with every character markdown or HTML acts on escaped
/// (`|` included), hidden characters shown as escapes, and line breaks as `<br>`.
pub fn md_cell(s: &str) -> String {
    s.split('\n')
        .map(|line| plan::md_text(line.strip_suffix('\r').unwrap_or(line)))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// `text` in a fenced code block no line of it can close.
pub(super) fn md_fence(text: &str) -> String {
    let text = crate::config::text::escape(text, true);
    let fence = "`".repeat(3.max(plan::longest_run(&text, &['`', '~']) + 1));
    format!("{fence}text\n{text}\n{fence}\n")
}

pub(super) fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// A deploy's job summary: heading (app, release, result), per-target table, timeline.
pub fn deploy_summary(report: &Report, result: &str) -> String {
    let mut out = format!(
        "### hoist deploy: {} release {}: {}\n\n",
        plan::md_code(&report.app),
        plan::md_code(&report.release),
        md_cell(result)
    );
    if let Some(lock) = &report.lock {
        let _ = writeln!(
            out,
            "Fleet lock {}: {}\n",
            plan::md_code(&lock.parameter),
            if lock.waited.is_zero() {
                "taken at once, released at the end".to_owned()
            } else {
                format!(
                    "waited {} for it, released at the end",
                    seconds(lock.waited)
                )
            }
        );
    }
    if let Some(ms) = report.mixed_version_window_ms {
        let _ = writeln!(
            out,
            "Mixed-version window: {} (from the first target's switch to the last's)\n",
            seconds(Duration::from_millis(ms))
        );
    }
    let several = report.phases.len() > 1;
    let rows: Vec<Vec<String>> = report
        .phases
        .iter()
        .flat_map(|phase| {
            phase.invocations.iter().map(move |inv| {
                let status = outcome(inv).as_str();
                vec![
                    inv.target.clone(),
                    if several {
                        format!("{}: {status}", phase.name)
                    } else {
                        status.to_owned()
                    },
                    report.release.clone(),
                    seconds(inv.duration),
                    deploy::detail(inv),
                ]
            })
        })
        .collect();
    table(
        &mut out,
        &["target", "status", "release", "duration", "detail"],
        &rows,
    );
    out.push_str("\n#### Timeline\n\n");
    let steps: Vec<Vec<String>> = report
        .steps
        .iter()
        .map(|s| {
            vec![
                match &s.phase {
                    Some(phase) => format!("{} {phase}", s.step.as_str()),
                    None => s.step.as_str().to_owned(),
                },
                s.status.as_str().to_owned(),
                seconds(s.duration),
                s.detail.clone(),
            ]
        })
        .collect();
    table(&mut out, &["step", "status", "duration", "detail"], &steps);
    if let Some(pairs) = &report.reviewed {
        out.push_str("\n#### Reviewed plan\n\n");
        let rows: Vec<Vec<String>> = pairs
            .iter()
            .map(|p| {
                vec![
                    p.phase.clone(),
                    p.reviewed_sha256.clone(),
                    p.executed_sha256.clone(),
                ]
            })
            .collect();
        table(
            &mut out,
            &["phase", "reviewed script sha256", "executed script sha256"],
            &rows,
        );
        out.push_str(
            "\nThe executed scripts differ from the reviewed ones only in the image reference \
             (`HOIST_IMAGE`, `HOIST_IMAGE_LABEL`, `HOIST_REGISTRY`).\n",
        );
    }
    out
}

/// A rollback's job summary, shaped as a deploy's: its one phase is the timeline.
pub fn rollback_summary(report: &RollbackReport, result: &str) -> String {
    let to = match &report.to {
        Some(release) => format!("release {}", plan::md_code(release)),
        None => "the previous release".to_owned(),
    };
    let mut out = format!(
        "### hoist rollback: {} to {to}: {}\n\n",
        plan::md_code(&report.app),
        md_cell(result)
    );
    let rows: Vec<Vec<String>> = report
        .invocations
        .iter()
        .map(|inv| {
            vec![
                inv.target.clone(),
                rollback::status_of(inv).to_owned(),
                rollback::release_of(inv),
                seconds(inv.duration),
                deploy::detail(inv),
            ]
        })
        .collect();
    table(
        &mut out,
        &["target", "status", "release", "duration", "detail"],
        &rows,
    );
    out.push_str("\n#### Timeline\n\n");
    let status = if report.ok() {
        StepStatus::Done
    } else {
        StepStatus::Failed
    };
    let longest = report
        .invocations
        .iter()
        .map(|i| i.duration)
        .max()
        .unwrap_or_default();
    table(
        &mut out,
        &["step", "status", "duration", "detail"],
        &[vec![
            format!("run-phase {}", report.phase.name),
            status.as_str().to_owned(),
            seconds(longest),
            format!(
                "{} of {} target(s) rolled back",
                report.rolled_back,
                report.invocations.len()
            ),
        ]],
    );
    out
}

/// A status's job summary: one row per target.
pub fn status_summary(report: &StatusReport) -> String {
    let mut out = format!("### hoist status: {}\n\n", plan::md_code(&report.app));
    let rows: Vec<Vec<String>> = report
        .targets
        .iter()
        .map(|t| {
            let running = t.host.as_ref().and_then(|h| h.running.as_ref());
            match (&t.error, running) {
                (Some(e), _) => vec![
                    t.target.clone(),
                    "?".into(),
                    format!("error: {e}"),
                    String::new(),
                    String::new(),
                ],
                (None, None) => vec![
                    t.target.clone(),
                    "(none)".into(),
                    "-".into(),
                    String::new(),
                    String::new(),
                ],
                (None, Some(r)) => vec![
                    t.target.clone(),
                    match &r.color {
                        Some(color) => format!("{} ({color})", r.release),
                        None => r.release.clone(),
                    },
                    r.health.clone(),
                    r.since.clone(),
                    r.digest.clone().unwrap_or_else(|| r.image.clone()),
                ],
            }
        })
        .collect();
    table(
        &mut out,
        &["target", "release", "health", "since", "image"],
        &rows,
    );
    out
}

/// The most of the plan's markdown a pull request comment carries, in bytes: the comment
/// stays under 10 KB with plan.yml's links.
pub const PLAN_SUMMARY_MAX: usize = 9 * 1024;

/// `markdown` in at most `max` bytes: whole when it fits; otherwise cut at the end of a
/// line, any fenced code block and `<details>` section open there closed, then `note`. A
/// cut inside a table, a list or a fence never leaves markup open that would swallow what
/// follows (the note, a comment's links).
pub fn fit(markdown: &str, max: usize, note: &str) -> String {
    if markdown.len() <= max {
        return markdown.to_owned();
    }
    let mut open = Open::default();
    let mut kept = 0;
    for line in markdown.split_inclusive('\n') {
        let mut next = open.clone();
        next.line(line.trim_end_matches('\n'));
        // What closing after this line would take: a blank line, the fence, the sections.
        let closing = next.closing();
        if kept + line.len() + closing.len() + note.len() + 2 > max {
            break;
        }
        kept += line.len();
        open = next;
    }
    let mut out = markdown[..kept].to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&open.closing());
    let _ = writeln!(out, "\n{note}");
    out
}

/// What is open at a line of markdown: a fenced code block (its character and length) and
/// how many `<details>` sections.
#[derive(Debug, Clone, Default)]
struct Open {
    fence: Option<(char, usize)>,
    details: usize,
}

impl Open {
    /// Follows one line (without its line feed), as `CommonMark` reads fences: up to three
    /// spaces, then three or more backticks or tildes; closed by at least as many of the
    /// same character with nothing after them but spaces.
    fn line(&mut self, line: &str) {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let t = &line[indent..];
        let run = |c: char| t.chars().take_while(|&x| x == c).count();
        if let Some((c, n)) = self.fence {
            if indent <= 3 && run(c) >= n && t[run(c)..].trim_end_matches(' ').is_empty() {
                self.fence = None;
            }
            return;
        }
        for c in ['`', '~'] {
            let n = run(c);
            // A backtick fence's info string holds no backtick.
            if indent <= 3 && n >= 3 && !(c == '`' && t[n..].contains('`')) {
                self.fence = Some((c, n));
                return;
            }
        }
        // A section opens and closes where an HTML block starts with its tag (markup
        // elsewhere on a line is in a code span or escaped).
        if t.starts_with("<details>") || t.starts_with("<details ") {
            self.details += 1;
        } else if t.starts_with("</details>") {
            self.details = self.details.saturating_sub(1);
        }
    }

    /// The lines that close what is open: the fence, then each `<details>` section.
    fn closing(&self) -> String {
        let mut out = String::new();
        if let Some((c, n)) = self.fence {
            let _ = writeln!(out, "{}", c.to_string().repeat(n));
        }
        for _ in 0..self.details {
            out.push_str("\n</details>\n");
        }
        out
    }
}
