//! What `hoist status` shows people.

use std::fmt::Write as _;

use crate::ops::status::StatusReport;

/// The table people read: one row per target, then each target's retained releases.
pub fn text(report: &StatusReport) -> String {
    let mut rows =
        vec![["TARGET", "RELEASE", "HEALTH", "SINCE", "CONTAINER", "IMAGE"].map(str::to_owned)];
    for t in &report.targets {
        let row = match (&t.error, t.host.as_ref().and_then(|h| h.running.as_ref())) {
            (Some(e), _) => [
                t.target.clone(),
                "?".into(),
                format!("error: {e}"),
                String::new(),
                String::new(),
                String::new(),
            ],
            (None, None) => [
                t.target.clone(),
                "(none)".into(),
                "-".into(),
                String::new(),
                String::new(),
                String::new(),
            ],
            (None, Some(r)) => [
                t.target.clone(),
                match &r.color {
                    Some(color) => format!("{} ({color})", r.release),
                    None => r.release.clone(),
                },
                r.health.clone(),
                r.since.clone(),
                short(&r.container).to_owned(),
                r.digest.clone().unwrap_or_else(|| r.image.clone()),
            ],
        };
        rows.push(row);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (c, w) in widths.iter().enumerate() {
            let _ = write!(out, "{:<w$}  ", row[c]);
        }
        let _ = writeln!(out, "{}", row[5]);
    }
    for t in &report.targets {
        let Some(host) = &t.host else { continue };
        if let (Some(idle), Some(live)) = (&host.idle_color, &host.live_color) {
            let _ = writeln!(
                out,
                "\n{}: nginx routes to {live}; idle color {idle}{}",
                t.target,
                host.idle_release
                    .as_ref()
                    .map(|r| format!(" holds release {r}"))
                    .unwrap_or_default()
            );
        }
        if host.deploying {
            let _ = writeln!(out, "\n{}: a deploy or rollback is in progress", t.target);
        }
        for s in &host.staged {
            let _ = writeln!(
                out,
                "\n{}: release {} staged{} by run {}, not serving (container {})",
                t.target,
                s.release,
                s.color
                    .as_ref()
                    .map(|c| format!(" on {c}"))
                    .unwrap_or_default(),
                s.run,
                short(&s.container)
            );
        }
        if host.retained.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}: retained for rollback (newest first)", t.target);
        for r in &host.retained {
            let _ = writeln!(
                out,
                "  {}  deployed {}  container {}  {}",
                r.release,
                r.deployed_at,
                short(&r.container),
                r.image
            );
        }
    }
    crate::config::text::escape(&out, true).into_owned()
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
