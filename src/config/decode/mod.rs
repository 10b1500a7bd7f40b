//! The `hoist.yaml` schema: walks the YAML tree, checks every field, fills in defaults, and
//! collects *all* problems (unknown keys, wrong types, bad values) with their locations.
//!
//! One file per section of the file (`image`, `targets`, `container`, …, and `top` for the
//! top level and the checks across sections). Each section declares its keys once, with
//! `keys!` (`fields.rs`): that declaration is what the section reads, what its unknown-key
//! message and did-you-mean list, and part of [`schema_keys`]; field paths are built from it.

mod blue_green;
mod container;
mod docker;
mod env;
mod fields;
mod health;
mod image;
mod names;
mod parameters;
mod rollout;
mod scalars;
mod targets;
mod top;

use std::path::Path;

use super::error::Issue;
use super::schema::Config;
use super::text;
use super::yaml::{Loc, Node, Value};
use fields::{Keys as _, join};

pub use env::MAX_ENV_LINE;
pub use names::{is_app_name, is_env_name, is_instance_id, is_tag};

/// Where fields that name files were written, for checks made after decoding.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Origins {
    pub context: Option<Loc>,
    pub dockerfile: Option<Loc>,
}

/// Decodes a parsed document. `base_dir` is the config file's directory (contexts resolve
/// against it); `selected` the environment chosen on the command line, which an
/// `environment:` key must agree with. Returns the config only when there is no issue at all.
pub(super) fn decode(
    root: &Node,
    base_dir: &Path,
    selected: Option<&str>,
) -> Result<(Config, Origins), Vec<Issue>> {
    let mut d = Decoder {
        selected: selected.map(str::to_owned),
        ..Decoder::default()
    };
    d.check_text(root, "");
    let config = d.config(root, base_dir);
    match config {
        Some(config) if d.issues.is_empty() => Ok((config, d.origins)),
        _ => {
            d.issues
                .sort_by_key(|i| i.loc.map(|l| (l.file, l.line, l.column)));
            Err(d.issues)
        }
    }
}

/// Every key the schema knows, at any level (for tools that generate configs, such as the
/// decoder's fuzz test): each section's `keys!`, in the order of the file's sections (a new
/// section adds its keys here).
pub fn schema_keys() -> impl Iterator<Item = &'static str> {
    [
        top::TopKeys::NAMES,
        image::ImageKeys::NAMES,
        targets::TargetKeys::NAMES,
        container::ContainerKeys::NAMES,
        health::HealthKeys::NAMES,
        env::EnvKeys::NAMES,
        parameters::SecretsKeys::NAMES,
        parameters::LockKeys::NAMES,
        rollout::RolloutKeys::NAMES,
        env::SourceKeys::NAMES,
        blue_green::BlueGreenKeys::NAMES,
        blue_green::ProxyKeys::NAMES,
    ]
    .into_iter()
    .flatten()
    .copied()
}

#[derive(Default)]
struct Decoder {
    issues: Vec<Issue>,
    origins: Origins,
    /// `container.publish` as written: where, and its port when valid (for blue-green).
    publish: Option<(Loc, Option<u16>)>,
    /// The environment selected on the command line, if any.
    selected: Option<String>,
}

impl Decoder {
    fn issue(&mut self, field: &str, loc: Loc, message: impl Into<String>) {
        self.issues.push(Issue {
            field: field.to_owned(),
            loc: Some(loc),
            message: message.into(),
            help: None,
        });
    }

    fn issue_help(&mut self, field: &str, loc: Loc, message: impl Into<String>, help: String) {
        self.issues.push(Issue {
            field: field.to_owned(),
            loc: Some(loc),
            message: message.into(),
            help: Some(help),
        });
    }

    fn wrong_type(&mut self, field: &str, node: &Node, expected: &str) {
        self.issue(
            field,
            node.loc,
            format!("expected {expected}, found {}", node.value.kind()),
        );
    }

    /// Checks every key and string value of the document, known fields or not: no
    /// character a reviewer cannot see, no SSM parameter reference, no repeated key.
    fn check_text(&mut self, node: &Node, path: &str) {
        match &node.value {
            Value::Str(s) => self.check_string(s, path, node.loc),
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_text(item, &format!("{path}[{i}]"));
                }
            }
            Value::Map(entries) => {
                let mut seen: Vec<(&str, Loc)> = Vec::new();
                for (k, v) in entries {
                    let Value::Str(key) = &k.value else {
                        continue;
                    };
                    let field = join(path, &text::escape(key, false));
                    self.check_string(key, &field, k.loc);
                    match seen.iter().find(|(s, _)| s == key) {
                        Some((_, first)) => self.issue(
                            &field,
                            k.loc,
                            format!(
                                "duplicate key `{}` (first at line {})",
                                text::escape(key, false),
                                first.line
                            ),
                        ),
                        None => seen.push((key, k.loc)),
                    }
                    self.check_text(v, &field);
                }
            }
            _ => {}
        }
    }

    fn check_string(&mut self, s: &str, field: &str, loc: Loc) {
        // A multi-line shell command is legitimate, and shows as lines in the plan.
        let is_command = field == "container.command" || field.starts_with("container.command[");
        if let Some(c) = s
            .chars()
            .find(|&c| text::is_hidden(c) && !(is_command && c == '\n'))
        {
            let (what, help) = if text::is_bidi_control(c) {
                (
                    "a bidi control, which reorders the text around it on screen",
                    "remove it: a plan must show exactly what runs",
                )
            } else {
                (
                    "a control character, which a terminal or browser acts on or hides \
                     instead of showing",
                    "remove it (tabs are fine): a plan must show exactly what runs, and Docker \
                     env files, labels and bash cannot carry every control character",
                )
            };
            self.issue_help(
                field,
                loc,
                format!("contains {}, {what}", text::describe(c)),
                help.into(),
            );
        }
        if let Some(reference) = text::ssm_reference(s) {
            self.issue_help(
                field,
                loc,
                format!(
                    "`{}` is an SSM parameter reference: SSM Run Command would replace it on \
                     its side, so hosts would run other text than the plan shows and hashes",
                    text::escape(reference, false)
                ),
                "to give the container a parameter's value, list its name in env.secret and \
                 export it to hoist at deploy time; hoist has no way to pass `{{ssm:` literally"
                    .into(),
            );
        }
    }
}

fn empty_map(loc: Loc) -> Node {
    Node::synthetic(Value::Map(Vec::new()), loc)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::fields::closest;

    #[test]
    fn suggestions() {
        let container = container::ContainerKeys::NAMES;
        let top = top::TopKeys::NAMES;
        assert_eq!(closest("prot", container), Some("port"));
        assert_eq!(closest("healthchek", top), Some("healthcheck"));
        assert_eq!(closest("zzzzzz", top), None);
        assert_eq!(closest("retian", top), Some("retain"));
    }
}
