//! What `hoist logs` and `hoist exec` print: each target's lines prefixed with the target on
//! stdout (escaped: a host's output cannot move the cursor or hide text), what went wrong on
//! stderr; or one JSON document.

use super::write::{errln, outln};
use crate::config::text::escape;
use crate::ops::remote::TargetOutput;

/// Prints each target's lines as `[target] line`.
pub fn lines(outputs: &[TargetOutput]) {
    for out in outputs {
        for line in &out.output {
            outln!("[{}] {}", out.target, escape(line, false));
        }
    }
}

/// On stderr, per target: what kept it from answering, and output cut at the host's bound.
pub fn problems(outputs: &[TargetOutput], what: &str) {
    for out in outputs {
        if let Some(problem) = &out.problem {
            errln!("[{}] {what}: {}", out.target, escape(problem, false));
        }
        if out.said.cut {
            errln!(
                "[{}] the output was cut at {} bytes (what SSM returns of a command): narrow \
                 it (--tail, --since)",
                out.target,
                crate::plan::LOGS_MAX_BYTES
            );
        }
    }
}

/// `hoist exec`'s table: each target's release and the command's exit status.
pub fn exec_table(outputs: &[TargetOutput]) {
    outln!("{:<22}  {:<14}  EXIT", "TARGET", "RELEASE");
    for out in outputs {
        let code = out
            .said
            .code
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        outln!(
            "{:<22}  {:<14}  {code}",
            out.target,
            escape(&out.said.release, false)
        );
    }
}

pub fn json(outputs: &[TargetOutput]) {
    outln!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({ "targets": outputs }))
            .expect("outputs serialize")
    );
}

/// `exec --dry-run`: what each target would run, and the script itself (or the phase as
/// JSON).
pub fn script(what: &str, phase: &crate::domain::Phase, json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(phase).expect("a phase serializes")
        );
        return;
    }
    outln!(
        "{} on {} via {} transport (script {} sha256 {})",
        escape(what, false),
        phase.on,
        phase.transport.as_str(),
        phase.script.body,
        phase.script.sha256
    );
    super::write::out(&escape(&phase.script.text, true));
}

/// `hoist remove`'s table: per target, the containers removed and whether the app is gone.
pub fn remove_table(outputs: &[TargetOutput]) {
    outln!("{:<22}  {:<10}  REMOVED", "TARGET", "RESULT");
    for out in outputs {
        let result = if out.problem.is_some() {
            "failed"
        } else {
            "removed"
        };
        outln!(
            "{:<22}  {:<10}  {} container(s){}",
            out.target,
            result,
            out.said.containers.len(),
            if out.said.nginx { ", nginx file" } else { "" }
        );
    }
}
