//! Printing a plan for people (`text`), machines (`json`) and pull requests (`markdown`).
//!
//! What a reviewer sees must be what runs. Config strings cannot hold control or bidi
//! characters, but values also come from git and the command line, so the text and
//! markdown renderings show any such character as a visible escape (`\u{1b}`), never raw.
//! Markdown puts every value in a code span or a fence longer than any backtick run in it,
//! so no value can close it and turn into markup (an HTML comment would hide the rest).

use std::fmt::Write as _;

use super::{Plan, Step, TransportKind};
use crate::domain::waves::{Spread, command_timeout};

use crate::config::text::escape;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

impl Plan {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).expect("a plan serializes");
                s.push('\n');
                s
            }
            Format::Text => self.to_text(false),
            Format::Markdown => self.to_markdown(false),
        }
    }

    /// As [`Plan::render`]; with `scripts`, the text and markdown renderings end with every
    /// phase's whole script (JSON always holds them).
    pub fn render_with(&self, format: Format, scripts: bool) -> String {
        match format {
            Format::Json => self.render(format),
            Format::Text => self.to_text(scripts),
            Format::Markdown => self.to_markdown(scripts),
        }
    }

    pub(super) fn image_line(&self) -> String {
        if self.image.pinned {
            format!("{} ({})", self.image.name, self.image.reference)
        } else if self.steps.iter().any(|s| matches!(s, Step::Build { .. })) {
            format!("{} (digest pinned once built)", self.image.name)
        } else {
            format!(
                "{} (a tag, not pinned: hosts run what it names when they pull)",
                self.image.name
            )
        }
    }

    /// With blue-green: where nginx listens, its file, the colors' loopback ports, the
    /// post-switch check and the drain, and what nginx lets through (`blue_green.proxy`).
    pub(super) fn proxy_line(&self) -> Option<String> {
        let bg = self.blue_green.as_ref()?;
        let format = crate::config::duration::format;
        Some(format!(
            "nginx on port {} ({}) -> blue 127.0.0.1:{}, green 127.0.0.1:{}; post-switch \
             check {}, drain {}; {}; {}, idle timeout {}, {}",
            bg.listen,
            bg.nginx_conf,
            bg.ports[0],
            bg.ports[1],
            format(bg.post_switch_check),
            format(bg.drain),
            if bg.install_proxy {
                "nginx is installed where missing"
            } else {
                "hosts must have nginx"
            },
            match bg.proxy.max_body {
                None => "no body limit".to_owned(),
                Some(bytes) => format!("body limit {}", size(bytes)),
            },
            format(bg.proxy.read_timeout),
            if bg.proxy.ipv6 {
                "IPv4 and IPv6 (where the host has it)"
            } else {
                "IPv4 only"
            }
        ))
    }

    /// Over SSM: the fleet-wide lock's parameter and lease.
    pub(super) fn lock_line(&self) -> Option<String> {
        let lock = self.lock.as_ref()?;
        Some(format!(
            "{} (lease {}, renewed while the deploy runs; another deploy of these targets \
             fails, or waits with --lock-wait)",
            lock.parameter,
            crate::config::duration::format(lock.lease)
        ))
    }

    /// With more than one phase: how they follow each other.
    pub(super) fn rollout_line(&self) -> Option<String> {
        let phases: Vec<_> = self.phases().collect();
        if phases.len() < 2 {
            return None;
        }
        let switch = phases.iter().find(|p| p.name == "switch")?;
        let stage = phases.iter().find(|p| p.name == "stage")?;
        let canary = phases.iter().find_map(|p| match &p.targets {
            super::PhaseTargets::Canary { count, window, .. } => Some((count, *window)),
            _ => None,
        });
        if self.strategy == crate::config::Strategy::Recreate {
            return Some(format!(
                "two-phase: stage (pull the image, touching nothing that runs) on every target \
                 at once (max errors {}), then, only if staging passed, switch the targets \
                 staged in batches of {} (max concurrency)",
                stage.policy.max_errors, switch.policy.max_concurrency
            ));
        }
        Some(match canary {
            None => format!(
                "two-phase: stage on every target at once (max errors {}), then, only if \
                 staging passed, switch the targets staged in batches of {} (max \
                 concurrency); then phase discard removes what stays staged where no switch \
                 started",
                stage.policy.max_errors, switch.policy.max_concurrency
            ),
            Some((count, window)) => format!(
                "two-phase with a canary: stage on every target at once (max errors {}); only \
                 if staging passed, switch {count} of the staged targets first (phase canary) \
                 and watch them for {} (health through nginx, the container staying up); only \
                 if every canary held, switch the rest in batches of {} (max concurrency); \
                 then phase discard removes what stays staged where no switch started",
                stage.policy.max_errors,
                crate::config::duration::format(window),
                switch.policy.max_concurrency
            ),
        })
    }

    /// How many of `n` resolved targets `phase` runs on at most: the canaries' count, the
    /// rest after them, else all.
    pub(super) fn at_most(&self, phase: &super::Phase, n: usize) -> usize {
        use super::PhaseTargets;
        let canaries = |name: &str| {
            self.phases()
                .find(|p| p.name == name)
                .and_then(|p| match &p.targets {
                    PhaseTargets::Canary { count, .. } => {
                        Some(crate::config::Canary::of(*count, n))
                    }
                    _ => None,
                })
                .unwrap_or(0)
        };
        match &phase.targets {
            PhaseTargets::Canary { count, .. } => crate::config::Canary::of(*count, n),
            PhaseTargets::AfterCanary { canary, .. } => n - canaries(canary),
            _ => n,
        }
    }

    pub(super) fn targets_line(&self) -> String {
        let mut parts = Vec::new();
        if !self.targets.instance_ids.is_empty() {
            parts.push(self.targets.instance_ids.join(", "));
        }
        for (k, v) in &self.targets.tags {
            parts.push(format!("tag {k} in [{}]", v.join(", ")));
        }
        let resolved = match &self.targets.resolved {
            Some(ids) => format!(" = {} instance(s): {}", ids.len(), ids.join(", ")),
            None => String::new(),
        };
        format!(
            "{}{resolved} (max concurrency {}, max errors {})",
            parts.join(" + "),
            self.targets.max_concurrency,
            self.targets.max_errors
        )
    }

    pub(super) fn step_lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|step| match step {
                Step::CheckHosts { checks, phase } => format!(
                    "check hosts: run {} (sha256 {}) on {} at once via {} transport: {}; \
                     read-only, beside the build and push; a failed check stops the deploy before any host changes",
                    phase.script.body,
                    &phase.script.sha256[..16],
                    phase.on,
                    phase.transport.as_str(),
                    checks.join(", ")
                ),
                Step::Build {
                    builder,
                    context,
                    dockerfile,
                    target,
                    tags,
                    build_args,
                    reuse,
                    ..
                } => {
                    let mut s = format!("build {dockerfile} in {context}");
                    if *builder != crate::config::Builder::Auto {
                        let _ = write!(s, " with {}", builder.as_str());
                    }
                    if let Some(t) = target {
                        let _ = write!(s, " (target {t})");
                    }
                    if !build_args.is_empty() {
                        let args: Vec<String> =
                            build_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        let _ = write!(s, " with {}", args.join(" "));
                    }
                    let _ = write!(s, ", tag {}", tags.join(", "));
                    if let Some(reuse) = reuse {
                        let _ = write!(
                            s,
                            "; skipped only when tag {} of repository {} still holds the digest \
                             hoist recorded in {} when it pushed this commit's image (that \
                             digest is reused; a tag that moved is refused; without a record \
                             hoist builds, pushes and records)",
                            reuse.tag, reuse.repository, reuse.record
                        );
                    }
                    s
                }
                Step::EnsureRepository {
                    repository,
                    immutable_tags,
                    scan_on_push,
                } => format!(
                    "ensure ECR repository {repository} exists (when created: tags {}, scan on \
                     push {})",
                    if *immutable_tags {
                        "immutable"
                    } else {
                        "mutable"
                    },
                    if *scan_on_push { "on" } else { "off" }
                ),
                Step::Push {
                    repository,
                    registry,
                    tags,
                } => format!(
                    "push to {} repository {repository} as {} (tags that already hold the image \
                     are skipped)",
                    registry.as_deref().unwrap_or("the account's ECR registry"),
                    tags.join(", ")
                ),
                Step::PutSecretParameter { name, tier, names } => format!(
                    "put {} in SecureString parameter {name} ({} tier)",
                    names.join(", "),
                    tier.as_str()
                ),
                Step::RunPhase(phase) => {
                    let on = phase.targets.describe(&phase.on);
                    let mut s = format!(
                        "phase {}: run {} (sha256 {}) on {on} via {} transport, timeout {}{}",
                        phase.name,
                        phase.script.body,
                        &phase.script.sha256[..16],
                        phase.transport.as_str(),
                        crate::config::duration::format(phase.timeout),
                        match phase.transport {
                            TransportKind::Ssm => format!(
                                ", max concurrency {}, max errors {}",
                                phase.policy.max_concurrency, phase.policy.max_errors
                            ),
                            TransportKind::Local => String::new(),
                        }
                    );
                    if let (TransportKind::Ssm, Some(ids)) =
                        (phase.transport, &self.targets.resolved)
                    {
                        let n = self.at_most(phase, ids.len());
                        let spread = Spread::of(phase.policy.max_concurrency, n);
                        let waves = spread.total_waves();
                        if waves <= 1 {
                            let _ = write!(s, "; {n} target(s) at once");
                        } else {
                            let _ = write!(
                                s,
                                "; in batches of {}: {waves} batches for {n} target(s)",
                                spread.at_once
                            );
                        }
                        let commands = spread.commands.len();
                        if commands > 1 {
                            let _ = write!(
                                s,
                                " as {commands} SSM commands of at most 50 instances, {}",
                                if spread.one_after_another {
                                    "one after another (SSM counts max concurrency per command)"
                                } else {
                                    "at once (each at its share)"
                                }
                            );
                        }
                    }
                    if let Some(when) = phase.when.describe() {
                        let _ = write!(s, "; {when}");
                    }
                    if !phase.reads_secrets && self.env.delivery != super::Delivery::None {
                        s.push_str("; reads no secret");
                    }
                    if let (TransportKind::Ssm, Some(ids)) =
                        (phase.transport, &self.targets.resolved)
                    {
                        let n = self.at_most(phase, ids.len());
                        let spread = Spread::of(phase.policy.max_concurrency, n);
                        if let Some(&most) = spread.waves.iter().max() {
                            let _ = write!(
                                s,
                                "; SSM timeout {} per command, at most {} in all",
                                crate::config::duration::format(command_timeout(
                                    most,
                                    phase.timeout
                                )),
                                crate::config::duration::format(spread.worst_case(phase.timeout))
                            );
                        }
                    }
                    s
                }
                Step::DeleteSecretParameter { name } => {
                    format!("delete {name} (also when the deploy fails or is cancelled)")
                }
            })
            .collect()
    }

    pub(super) fn env_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .env
            .clear
            .iter()
            .map(|(k, v)| format!("{k}={v}  (clear)"))
            .collect();
        let via = match &self.env.parameter {
            Some(name) => format!("SecureString parameter {name}, deleted after the deploy"),
            None => self.env.delivery.as_str().to_owned(),
        };
        lines.extend(
            self.env
                .secret
                .iter()
                .map(|k| match self.env.sources.get(k) {
                    Some(source) => format!("{k}=<secret, read by each host from {source}>"),
                    None => format!("{k}=<secret, from hoist's environment, delivered by {via}>"),
                }),
        );
        lines
    }
}

/// The longest run of any one of `chars` in `s`.
pub(crate) fn longest_run(s: &str, chars: &[char]) -> usize {
    let (mut longest, mut run, mut prev) = (0, 0, None);
    for c in s.chars() {
        run = if chars.contains(&c) && prev == Some(c) {
            run + 1
        } else {
            usize::from(chars.contains(&c))
        };
        prev = Some(c);
        longest = longest.max(run);
    }
    longest
}

/// `s` as a markdown code span, shown verbatim: delimited by more backticks than any run
/// in it (padded with a space where it starts or ends with a backtick or space, which
/// `CommonMark` strips again), with hidden characters escaped.
pub(crate) fn md_code(s: &str) -> String {
    let s = escape(s, false);
    let ticks = "`".repeat(longest_run(&s, &['`']) + 1);
    let pad = if s.is_empty() || s.starts_with(['`', ' ']) || s.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A code span inside a table row: GFM splits cells on `|` even in code spans.
pub(super) fn md_cell(s: &str) -> String {
    md_code(s).replace('|', "\\|")
}

/// Plain markdown text: every character markdown or HTML could act on is backslash-escaped.
pub(crate) fn md_text(s: &str) -> String {
    let s = escape(s, false);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\`*_[]<>&|~#!".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A byte count as nginx writes sizes: `10m` when it is whole mebibytes, and so on.
fn size(bytes: u64) -> String {
    for (shift, unit) in [(30, "g"), (20, "m"), (10, "k")] {
        if bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_span_cannot_be_closed_by_its_content() {
        assert_eq!(md_code("plain"), "`plain`");
        assert_eq!(md_code("a`b"), "``a`b``");
        assert_eq!(md_code("```"), "```` ``` ````");
        assert_eq!(md_code(" x"), "`  x `");
        assert_eq!(md_code("<!-- a \u{1b}[8m"), "`<!-- a \\u{1b}[8m`");
        assert_eq!(md_cell("a|b"), "`a\\|b`");
    }

    #[test]
    fn markdown_text_cannot_open_html_or_links() {
        assert_eq!(md_text("<!-- x -->"), "\\<\\!-- x --\\>");
        assert_eq!(md_text("[a](b) `c`"), "\\[a\\](b) \\`c\\`");
    }

    #[test]
    fn the_longest_run_counts_each_character_separately() {
        assert_eq!(longest_run("a``b~~~c`", &['`', '~']), 3);
        assert_eq!(longest_run("`~`~", &['`', '~']), 1);
        assert_eq!(longest_run("", &['`']), 0);
    }
}
