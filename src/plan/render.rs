//! Printing a plan for people (`text`), machines (`json`) and pull requests (`markdown`).

use std::fmt::Write as _;

use super::{Plan, Step};

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
            Format::Text => self.to_text(),
            Format::Markdown => self.to_markdown(),
        }
    }

    fn image_line(&self) -> String {
        if self.image.pinned {
            format!("{} ({})", self.image.name, self.image.reference)
        } else {
            format!("{} (digest pinned once built)", self.image.name)
        }
    }

    fn targets_line(&self) -> String {
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

    fn step_lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|step| match step {
                Step::Build {
                    builder,
                    context,
                    dockerfile,
                    target,
                    tags,
                    build_args,
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
                    s
                }
                Step::Push {
                    repository,
                    registry,
                    tags,
                } => format!(
                    "push to {} repository {repository} as {}",
                    registry.as_deref().unwrap_or("the account's ECR registry"),
                    tags.join(", ")
                ),
                Step::Run {
                    transport,
                    on,
                    script,
                    sha256,
                    timeout,
                } => format!(
                    "run {script} (sha256 {}) on {on} via {} transport, timeout {}",
                    &sha256[..16],
                    transport.as_str(),
                    crate::config::duration::format(*timeout)
                ),
            })
            .collect()
    }

    fn env_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .env
            .clear
            .iter()
            .map(|(k, v)| format!("{k}={v}  (clear)"))
            .collect();
        let via = match &self.env.parameter {
            Some(name) => format!("SecureString parameter {name}, deleted after the deploy"),
            None => self.env.delivery.to_owned(),
        };
        lines.extend(
            self.env
                .secret
                .iter()
                .map(|k| format!("{k}=<secret, from hoist's environment, delivered by {via}>")),
        );
        lines
    }

    fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Plan for {} release {} ({} strategy, {} transport)",
            self.app,
            self.release,
            self.strategy,
            self.transport.as_str()
        );
        let _ = writeln!(o, "  revision  {}", self.revision.sha);
        let _ = writeln!(o, "  image     {}", self.image_line());
        let _ = writeln!(o, "  targets   {}", self.targets_line());
        let _ = writeln!(
            o,
            "  script    {} sha256 {}",
            self.script.body, self.script.sha256
        );
        let _ = writeln!(o, "\nEnvironment:");
        let env = self.env_lines();
        if env.is_empty() {
            let _ = writeln!(o, "  (none)");
        }
        for line in env {
            let _ = writeln!(o, "  {line}");
        }
        let _ = writeln!(o, "\nSteps:");
        for (i, line) in self.step_lines().iter().enumerate() {
            let _ = writeln!(o, "  {}. {line}", i + 1);
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(o, "\nWarnings:");
            for w in &self.warnings {
                let _ = writeln!(o, "  ! {w}");
            }
        }
        let _ = writeln!(o, "\nScript ({} bytes):", self.script.text.len());
        for line in self.script.text.lines() {
            let _ = writeln!(o, "  | {line}");
        }
        o
    }

    fn to_markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "### hoist plan: `{}` release `{}`\n",
            self.app, self.release
        );
        let _ = writeln!(o, "| | |\n|---|---|");
        let _ = writeln!(o, "| strategy | {} |", self.strategy);
        let _ = writeln!(o, "| transport | {} |", self.transport.as_str());
        let _ = writeln!(o, "| revision | `{}` |", self.revision.sha);
        let _ = writeln!(o, "| image | `{}` |", md_cell(&self.image_line()));
        let _ = writeln!(o, "| targets | {} |", md_cell(&self.targets_line()));
        let _ = writeln!(
            o,
            "| script | `{}` sha256 `{}` |",
            self.script.body, self.script.sha256
        );
        let _ = writeln!(o, "\n**Environment**\n");
        let env = self.env_lines();
        if env.is_empty() {
            let _ = writeln!(o, "- (none)");
        }
        for line in env {
            let _ = writeln!(o, "- `{}`", md_cell(&line));
        }
        let _ = writeln!(o, "\n**Steps**\n");
        for (i, line) in self.step_lines().iter().enumerate() {
            let _ = writeln!(o, "{}. {}", i + 1, line);
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(o, "\n**Warnings**\n");
            for w in &self.warnings {
                let _ = writeln!(o, "- :warning: {w}");
            }
        }
        let fence = if self.script.text.contains("```") {
            "~~~~"
        } else {
            "```"
        };
        let _ = writeln!(
            o,
            "\n<details><summary>Script run on each host ({} bytes)</summary>\n\n{fence}bash\n{}{fence}\n\n</details>",
            self.script.text.len(),
            self.script.text
        );
        o
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('`', "'")
}
