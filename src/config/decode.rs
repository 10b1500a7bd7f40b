//! The `hoist.yaml` schema: walks the YAML tree, checks every field, fills in defaults, and
//! collects *all* problems (unknown keys, wrong types, bad values) with their locations.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::duration;
use super::error::Issue;
use super::schema::{
    BlueGreen, Builder, Canary, Config, Container, Env, Healthcheck, Image, Lock, Rate, Rollout,
    SecretSource, SecretTier, Secrets, Strategy, Targets,
};
use super::text;
use super::yaml::{Loc, Node, Value};

/// Where fields that name files were written, for checks made after decoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origins {
    pub context: Option<Loc>,
    pub dockerfile: Option<Loc>,
}

/// Decodes a parsed document. `base_dir` is the config file's directory (contexts resolve
/// against it). Returns the config only when there is no issue at all.
pub fn decode(root: &Node, base_dir: &Path) -> Result<(Config, Origins), Vec<Issue>> {
    let mut d = Decoder::default();
    d.check_text(root, "");
    let config = d.config(root, base_dir);
    match config {
        Some(config) if d.issues.is_empty() => Ok((config, d.origins)),
        _ => {
            d.issues.sort_by_key(|i| i.loc.map(|l| (l.line, l.column)));
            Err(d.issues)
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "app",
    "region",
    "image",
    "targets",
    "container",
    "healthcheck",
    "env",
    "strategy",
    "blue_green",
    "rollout",
    "retain",
    "secrets",
    "lock",
];
const IMAGE_KEYS: &[&str] = &[
    "repository",
    "context",
    "dockerfile",
    "target",
    "build_args",
    "platform",
    "tags",
    "builder",
    "immutable_tags",
    "scan_on_push",
];
const TARGET_KEYS: &[&str] = &["instance_ids", "tags", "max_concurrency", "max_errors"];
const CONTAINER_KEYS: &[&str] = &[
    "port",
    "publish",
    "command",
    "volumes",
    "memory",
    "cpus",
    "restart",
    "labels",
    "stop_timeout",
    "init",
];
const HEALTH_KEYS: &[&str] = &[
    "path",
    "expect_status",
    "interval",
    "timeout",
    "start_period",
    "consecutive",
];
const ENV_KEYS: &[&str] = &["clear", "secret"];
const SECRETS_KEYS: &[&str] = &["tier"];
const LOCK_KEYS: &[&str] = &["lease"];
const ROLLOUT_KEYS: &[&str] = &["mode", "canary", "canary_window"];
const BLUE_GREEN_KEYS: &[&str] = &["drain", "post_switch_check", "install_proxy", "ports"];
const SOURCE_KEYS: &[&str] = &["ssm", "secretsmanager", "key"];

/// Every key the schema knows, at any level (for tools that generate configs, such as the
/// decoder's fuzz test).
pub fn schema_keys() -> impl Iterator<Item = &'static str> {
    [
        TOP_KEYS,
        IMAGE_KEYS,
        TARGET_KEYS,
        CONTAINER_KEYS,
        HEALTH_KEYS,
        ENV_KEYS,
        SECRETS_KEYS,
        LOCK_KEYS,
        ROLLOUT_KEYS,
        SOURCE_KEYS,
        BLUE_GREEN_KEYS,
    ]
    .into_iter()
    .flatten()
    .copied()
}

/// SSM accepts at most 5 tag filters per `SendCommand`, and 50 values each.
const MAX_TAG_KEYS: usize = 5;
const MAX_TAG_VALUES: usize = 50;

/// The longest `NAME=value` line Docker reads from an env file. The Docker CLI parses
/// `--env-file` with Go's `bufio.Scanner` at its default `MaxScanTokenSize` (64 KiB); the
/// buffer must hold the line and its newline, so a longer line fails the container's
/// creation with "bufio.Scanner: token too long".
pub const MAX_ENV_LINE: usize = 64 * 1024 - 1;

#[derive(Default)]
struct Decoder {
    issues: Vec<Issue>,
    origins: Origins,
    /// `container.publish` as written: where, and its port when valid (for blue-green).
    publish: Option<(Loc, Option<u16>)>,
}

/// A mapping being read: tracks which keys were consumed so leftovers are reported.
struct Fields<'n> {
    path: String,
    loc: Loc,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
    used: Vec<bool>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'n> Fields<'n> {
    fn get(&mut self, key: &str) -> Option<&'n Node> {
        let i = self.entries.iter().position(|(k, _, _)| *k == key)?;
        self.used[i] = true;
        Some(self.entries[i].2).filter(|n| n.value != Value::Null)
    }

    /// Where `key` is written, if it is (also with no value).
    fn key_loc(&self, key: &str) -> Option<Loc> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, knode, _)| knode.loc)
    }
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

    fn fields<'n>(&mut self, node: &'n Node, path: &str) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(path, node, "a mapping");
            return None;
        };
        let mut out: Vec<(&'n str, &'n Node, &'n Node)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match &k.value {
                // A repeated key was reported by `check_text`; the first one is read.
                Value::Str(key) if out.iter().any(|(seen, _, _)| seen == key) => {}
                Value::Str(key) => out.push((key.as_str(), k, v)),
                _ => self.wrong_type(path, k, "a string key"),
            }
        }
        let used = vec![false; out.len()];
        Some(Fields {
            path: path.to_owned(),
            loc: node.loc,
            entries: out,
            used,
        })
    }

    /// Reports every key of `f` that was not read, suggesting the closest known key.
    fn finish(&mut self, f: &Fields<'_>, known: &[&str]) {
        for (i, (key, knode, _)) in f.entries.iter().enumerate() {
            if f.used[i] {
                continue;
            }
            let field = join(&f.path, key);
            let help = match closest(key, known) {
                Some(k) => format!("did you mean `{k}`? Known keys here: {}", known.join(", ")),
                None => format!("known keys here: {}", known.join(", ")),
            };
            self.issue_help(&field, knode.loc, format!("unknown key `{key}`"), help);
        }
    }

    fn required<'n>(&mut self, f: &mut Fields<'n>, key: &str, what: &str) -> Option<&'n Node> {
        let node = f.get(key);
        if node.is_none() {
            let loc = f.loc;
            let field = join(&f.path, key);
            self.issue(
                &field,
                loc,
                format!("missing required field `{key}` ({what})"),
            );
        }
        node
    }

    fn string(&mut self, node: &Node, field: &str) -> Option<String> {
        if let Value::Str(s) = &node.value {
            Some(s.clone())
        } else {
            self.wrong_type(field, node, "a string");
            None
        }
    }

    fn boolean(&mut self, node: &Node, field: &str) -> Option<bool> {
        if let Value::Bool(b) = node.value {
            Some(b)
        } else {
            self.wrong_type(field, node, "true or false");
            None
        }
    }

    /// A scalar read as text: strings, numbers and booleans (env values, labels, build args).
    /// An unquoted number or boolean is taken exactly as written (`1.10`, `0123`, `off`),
    /// never as YAML's reading of it (`1.1`, `123`, `false`).
    fn scalar_text(&mut self, node: &Node, field: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                if let Some(raw) = &node.raw {
                    Some(raw.clone())
                } else {
                    self.issue_help(
                        field,
                        node.loc,
                        format!(
                            "{} where text is expected, and its exact spelling cannot be \
                         recovered",
                            node.value.kind()
                        ),
                        "quote it (e.g. \"1.10\") so YAML keeps the text as written".into(),
                    );
                    None
                }
            }
            _ => {
                self.wrong_type(field, node, "a string, number or boolean");
                None
            }
        }
    }

    fn int_in(&mut self, node: &Node, field: &str, lo: i128, hi: i128) -> Option<i128> {
        match node.value {
            Value::Int(i) if (lo..=hi).contains(&i) => Some(i),
            Value::Int(i) => {
                self.issue(field, node.loc, format!("{i} is out of range ({lo}-{hi})"));
                None
            }
            _ => {
                self.wrong_type(field, node, &format!("an integer ({lo}-{hi})"));
                None
            }
        }
    }

    fn port(&mut self, node: &Node, field: &str) -> Option<u16> {
        self.int_in(node, field, 1, 65535)
            .map(|p| u16::try_from(p).expect("checked to be 1-65535"))
    }

    fn duration(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            _ => {
                self.wrong_type(field, node, "a duration such as \"30s\" or \"2m\"");
                return None;
            }
        };
        match duration::parse(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.issue(field, node.loc, e);
                None
            }
        }
    }

    /// A duration within `range`; `help` says what it is for when it is not.
    fn duration_in(
        &mut self,
        node: &Node,
        field: &str,
        range: std::ops::RangeInclusive<Duration>,
        help: &str,
    ) -> Option<Duration> {
        let d = self.duration(node, field)?;
        if range.contains(&d) {
            return Some(d);
        }
        self.issue_help(
            field,
            node.loc,
            format!(
                "{} is out of range ({}-{})",
                duration::format(d),
                duration::format(*range.start()),
                duration::format(*range.end())
            ),
            help.to_owned(),
        );
        None
    }

    fn string_list(&mut self, node: &Node, field: &str) -> Vec<(String, Loc)> {
        let Value::Seq(items) = &node.value else {
            self.wrong_type(field, node, "a list of strings");
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let f = format!("{field}[{i}]");
                self.string(item, &f).map(|s| (s, item.loc))
            })
            .collect()
    }

    /// A mapping of names to scalar values (`build_args`, `labels`, `env.clear`).
    fn text_map(&mut self, node: &Node, field: &str) -> Vec<(String, Loc, String, Loc)> {
        let Some(mut f) = self.fields(node, field) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for i in 0..f.entries.len() {
            f.used[i] = true;
            let (key, knode, vnode) = f.entries[i];
            let vfield = join(field, key);
            if vnode.value == Value::Null {
                self.issue_help(
                    &vfield,
                    knode.loc,
                    format!("`{key}` has no value"),
                    "YAML reads an empty value, `~` and `null` as nothing: write \"\" for an \
                     empty string, or quote the text (\"~\")"
                        .into(),
                );
                continue;
            }
            if let Some(value) = self.scalar_text(vnode, &vfield) {
                out.push((key.to_owned(), knode.loc, value, vnode.loc));
            }
        }
        out
    }

    fn config(&mut self, root: &Node, base_dir: &Path) -> Option<Config> {
        if root.value == Value::Null {
            self.issues.push(Issue {
                field: String::new(),
                loc: None,
                message: "the file is empty: a hoist.yaml needs at least `app` and `targets`"
                    .into(),
                help: Some(
                    "e.g. `app: web` and `targets: {tags: {Env: [staging]}}`; everything else \
                     has a default"
                        .into(),
                ),
            });
            return None;
        }
        let mut f = self.fields(root, "")?;
        let app = self
            .required(&mut f, "app", "the application's name")
            .and_then(|n| self.app_name(n));
        let region = f.get("region").and_then(|n| self.region(n));
        let image = self.image(f.get("image"), app.as_deref(), base_dir, root.loc);
        let targets = match self.required(&mut f, "targets", "which instances to deploy to") {
            Some(n) => self.targets(n),
            None => None,
        };
        let container = match f.get("container") {
            Some(n) => self.container(n),
            None => self.container(&empty_map(root.loc)),
        };
        let container_node = f.get("container");
        let health_node = f.get("healthcheck");
        let healthcheck = match health_node {
            Some(n) => self.healthcheck(n),
            None => self.healthcheck(&empty_map(root.loc)),
        };
        let env = match f.get("env") {
            Some(n) => self.env(n),
            None => Some(Env::default()),
        };
        let strategy_node = f.get("strategy");
        let strategy = match strategy_node {
            Some(n) => self.strategy(n),
            None => Some(Strategy::Recreate),
        };
        let blue_green = self.blue_green(
            f.get("blue_green"),
            f.key_loc("blue_green"),
            strategy,
            container_node.or(strategy_node).map_or(root.loc, |n| n.loc),
        );
        if let (Some(c), Some(h)) = (&container, &healthcheck) {
            // With the blue-green section unknown (invalid), what is known must fit already.
            let bg = blue_green.as_ref().ok().and_then(Option::as_ref);
            self.check_budget(c, h, bg, health_node.map_or(root.loc, |n| n.loc));
        }
        let rollout = self.rollout(f.get("rollout"), strategy);
        let (rollout, canary) = match rollout {
            Some((r, c)) => (Some(r), Some(c)),
            None => (None, None),
        };
        let retain = match f.get("retain") {
            Some(n) => self
                .int_in(n, "retain", 0, 50)
                .map(|r| u32::try_from(r).expect("checked to be 0-50")),
            None => Some(3),
        };
        let secrets = match f.get("secrets") {
            Some(n) => self.secrets(n),
            None => Some(Secrets::default()),
        };
        let lock = match f.get("lock") {
            Some(n) => self.lock(n),
            None => Some(Lock::default()),
        };
        self.finish(&f, TOP_KEYS);
        Some(Config {
            app: app?,
            region,
            image: image?,
            targets: targets?,
            container: container?,
            healthcheck: healthcheck?,
            env: env?,
            strategy: strategy?,
            blue_green: blue_green.ok()?,
            rollout: rollout?,
            canary: canary?,
            retain: retain?,
            secrets: secrets?,
            lock: lock?,
        })
    }

    fn app_name(&mut self, node: &Node) -> Option<String> {
        let name = self.string(node, "app")?;
        if is_app_name(&name) {
            Some(name)
        } else {
            self.issue_help(
                "app",
                node.loc,
                format!("`{name}` is not a valid app name"),
                "use 1-32 lowercase letters, digits and hyphens, starting with a letter and \
                 not ending with a hyphen (it names containers, locks and paths on the host)"
                    .into(),
            );
            None
        }
    }

    fn region(&mut self, node: &Node) -> Option<String> {
        let region = self.string(node, "region")?;
        let ok = {
            let parts: Vec<&str> = region.split('-').collect();
            parts.len() >= 3
                && parts[..parts.len() - 1]
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
                && parts[parts.len() - 1].parse::<u8>().is_ok()
        };
        if ok {
            Some(region)
        } else {
            self.issue(
                "region",
                node.loc,
                format!("`{region}` is not an AWS region name (e.g. us-east-1)"),
            );
            None
        }
    }

    fn image(
        &mut self,
        node: Option<&Node>,
        app: Option<&str>,
        base_dir: &Path,
        root_loc: Loc,
    ) -> Option<Image> {
        let empty = empty_map(root_loc);
        let mut f = self.fields(node.unwrap_or(&empty), "image")?;
        let repository = match f.get("repository") {
            Some(n) => self.string(n, "image.repository").and_then(|r| {
                if is_repository_name(&r) {
                    Some(r)
                } else {
                    self.issue(
                        "image.repository",
                        n.loc,
                        format!(
                            "`{r}` is not a valid ECR repository name (lowercase letters, \
                             digits, and . _ - / separators, 2-256 characters)"
                        ),
                    );
                    None
                }
            }),
            None => app.map(str::to_owned),
        };
        let context = match f.get("context") {
            Some(n) => {
                self.origins.context = Some(n.loc);
                self.string(n, "image.context").map(|c| base_dir.join(c))
            }
            None => Some(base_dir.to_path_buf()),
        };
        let dockerfile = match f.get("dockerfile") {
            Some(n) => {
                self.origins.dockerfile = Some(n.loc);
                self.string(n, "image.dockerfile")
            }
            None => Some("Dockerfile".to_owned()),
        };
        let target = f.get("target").and_then(|n| self.string(n, "image.target"));
        let build_args = match f.get("build_args") {
            Some(n) => self
                .text_map(n, "image.build_args")
                .into_iter()
                .map(|(k, _, v, _)| (k, v))
                .collect(),
            None => BTreeMap::new(),
        };
        let platform = f.get("platform").and_then(|n| {
            let p = self.string(n, "image.platform")?;
            let parts: Vec<&str> = p.split('/').collect();
            if (2..=3).contains(&parts.len()) && parts.iter().all(|s| !s.is_empty()) {
                Some(p)
            } else {
                self.issue(
                    "image.platform",
                    n.loc,
                    format!("`{p}` is not a platform (os/arch[/variant], e.g. linux/amd64)"),
                );
                None
            }
        });
        let mut tags = Vec::new();
        if let Some(n) = f.get("tags") {
            for (i, (tag, loc)) in self.string_list(n, "image.tags").into_iter().enumerate() {
                if is_tag(&tag) {
                    tags.push(tag);
                } else {
                    self.issue(
                        &format!("image.tags[{i}]"),
                        loc,
                        format!(
                            "`{tag}` is not a valid image tag (letters, digits, _ . -, at most \
                             128 characters, not starting with . or -)"
                        ),
                    );
                }
            }
        }
        let builder = match f.get("builder") {
            None => Some(Builder::Auto),
            Some(n) => self
                .string(n, "image.builder")
                .and_then(|b| match b.as_str() {
                    "auto" => Some(Builder::Auto),
                    "buildkit" => Some(Builder::Buildkit),
                    "classic" => Some(Builder::Classic),
                    other => {
                        self.issue(
                            "image.builder",
                            n.loc,
                            format!("unknown builder `{other}` (auto, buildkit or classic)"),
                        );
                        None
                    }
                }),
        };
        let immutable_tags = f
            .get("immutable_tags")
            .and_then(|n| self.boolean(n, "image.immutable_tags"))
            .unwrap_or(false);
        let scan_on_push = f
            .get("scan_on_push")
            .and_then(|n| self.boolean(n, "image.scan_on_push"))
            .unwrap_or(false);
        self.finish(&f, IMAGE_KEYS);
        Some(Image {
            builder: builder?,
            immutable_tags,
            scan_on_push,
            repository: repository?,
            context: context?,
            dockerfile: dockerfile?,
            target,
            build_args,
            platform,
            tags,
        })
    }

    fn targets(&mut self, node: &Node) -> Option<Targets> {
        let mut f = self.fields(node, "targets")?;
        let mut instance_ids = Vec::new();
        if let Some(n) = f.get("instance_ids") {
            for (i, (id, loc)) in self
                .string_list(n, "targets.instance_ids")
                .into_iter()
                .enumerate()
            {
                if is_instance_id(&id) {
                    if !instance_ids.contains(&id) {
                        instance_ids.push(id);
                    }
                } else {
                    self.issue(
                        &format!("targets.instance_ids[{i}]"),
                        loc,
                        format!(
                            "`{id}` is not an EC2 instance id (i- followed by 8 or 17 \
                             lowercase hex digits)"
                        ),
                    );
                }
            }
        }
        let mut tags = BTreeMap::new();
        if let Some(n) = f.get("tags")
            && let Some(mut tf) = self.fields(n, "targets.tags")
        {
            if tf.entries.len() > MAX_TAG_KEYS {
                self.issue(
                    "targets.tags",
                    n.loc,
                    format!(
                        "{} tag keys given; SSM accepts at most {MAX_TAG_KEYS}",
                        tf.entries.len()
                    ),
                );
            }
            for i in 0..tf.entries.len() {
                tf.used[i] = true;
                let (key, knode, vnode) = tf.entries[i];
                let field = format!("targets.tags.{key}");
                if key.is_empty() || key.len() > 128 {
                    self.issue(&field, knode.loc, "tag keys are 1-128 characters");
                    continue;
                }
                let values: Vec<String> = match &vnode.value {
                    Value::Seq(_) => self
                        .string_list(vnode, &field)
                        .into_iter()
                        .map(|(v, _)| v)
                        .collect(),
                    Value::Null => Vec::new(),
                    _ => self.scalar_text(vnode, &field).into_iter().collect(),
                };
                if values.is_empty() {
                    self.issue(&field, vnode.loc, format!("tag `{key}` lists no value"));
                } else if values.len() > MAX_TAG_VALUES {
                    self.issue(
                        &field,
                        vnode.loc,
                        format!(
                            "{} values given; SSM accepts at most {MAX_TAG_VALUES} per tag",
                            values.len()
                        ),
                    );
                } else {
                    tags.insert(key.to_owned(), values);
                }
            }
        }
        let max_concurrency = match f.get("max_concurrency") {
            Some(n) => self.rate(n, "targets.max_concurrency", 1),
            None => Some(Rate::Count(50)),
        };
        let max_errors = match f.get("max_errors") {
            Some(n) => self.rate(n, "targets.max_errors", 0),
            None => Some(Rate::Count(0)),
        };
        let had_issue_here = self.issues.iter().any(|i| {
            i.field.starts_with("targets.instance_ids") || i.field.starts_with("targets.tags")
        });
        if instance_ids.is_empty() && tags.is_empty() && !had_issue_here {
            self.issue_help(
                "targets",
                node.loc,
                "no targets: give `instance_ids`, `tags`, or both",
                "e.g. `tags: {Env: [staging]}` or `instance_ids: [i-0123456789abcdef0]`".into(),
            );
        }
        self.finish(&f, TARGET_KEYS);
        Some(Targets {
            instance_ids,
            tags,
            max_concurrency: max_concurrency?,
            max_errors: max_errors?,
        })
    }

    /// SSM's `MaxConcurrency` / `MaxErrors`: an integer, or a percentage string `"10%"`.
    fn rate(&mut self, node: &Node, field: &str, min: u32) -> Option<Rate> {
        let bad = |d: &mut Self| {
            d.issue(
                field,
                node.loc,
                format!(
                    "expected a number ({min} or more) or a percentage such as \"10%\", \
                     found {}",
                    describe(node)
                ),
            );
            None
        };
        match &node.value {
            Value::Int(i) if *i >= i128::from(min) && *i <= 100_000 => Some(Rate::Count(
                u32::try_from(*i).expect("checked to be at most 100000"),
            )),
            Value::Str(s) => {
                if let Some(p) = s.strip_suffix('%') {
                    match p.parse::<u8>() {
                        Ok(p) if p <= 100 && u32::from(p) >= min => Some(Rate::Percent(p)),
                        _ => bad(self),
                    }
                } else {
                    match s.parse::<u32>() {
                        Ok(n) if n >= min => Some(Rate::Count(n)),
                        _ => bad(self),
                    }
                }
            }
            _ => bad(self),
        }
    }

    fn container(&mut self, node: &Node) -> Option<Container> {
        let mut f = self.fields(node, "container")?;
        let port = match f.get("port") {
            Some(n) => self.port(n, "container.port"),
            None => Some(80),
        };
        let publish = f.get("publish").and_then(|n| {
            let port = self.port(n, "container.publish");
            self.publish = Some((n.loc, port));
            port
        });
        let command = match f.get("command") {
            None => Vec::new(),
            Some(n) => match &n.value {
                Value::Str(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
                _ => self
                    .string_list(n, "container.command")
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect(),
            },
        };
        let mut volumes = Vec::new();
        if let Some(n) = f.get("volumes") {
            for (i, (v, loc)) in self
                .string_list(n, "container.volumes")
                .into_iter()
                .enumerate()
            {
                match check_volume(&v) {
                    Ok(()) => volumes.push(v),
                    Err(e) => self.issue(&format!("container.volumes[{i}]"), loc, e),
                }
            }
        }
        let memory = f.get("memory").and_then(|n| {
            let m = self.scalar_text(n, "container.memory")?;
            if is_memory(&m) {
                Some(m)
            } else {
                self.issue(
                    "container.memory",
                    n.loc,
                    format!("`{m}` is not a memory size (e.g. 256m, 1g; at least 6m)"),
                );
                None
            }
        });
        let cpus = f.get("cpus").and_then(|n| match n.value {
            Value::Int(i) if i > 0 && i <= 1024 => Some(i.to_string()),
            Value::Float(x) if x > 0.0 && x <= 1024.0 => Some(x.to_string()),
            _ => {
                self.issue(
                    "container.cpus",
                    n.loc,
                    format!(
                        "expected a positive number of CPUs (e.g. 0.5), found {}",
                        describe(n)
                    ),
                );
                None
            }
        });
        let restart = match f.get("restart") {
            Some(n) => self.string(n, "container.restart").and_then(|r| {
                if is_restart_policy(&r) {
                    Some(r)
                } else {
                    self.issue(
                        "container.restart",
                        n.loc,
                        format!(
                            "`{r}` is not a restart policy (no, always, unless-stopped, \
                             on-failure, on-failure:N)"
                        ),
                    );
                    None
                }
            }),
            None => Some("unless-stopped".into()),
        };
        let mut labels = BTreeMap::new();
        if let Some(n) = f.get("labels") {
            for (k, kloc, v, _) in self.text_map(n, "container.labels") {
                if k.starts_with("hoist.") {
                    self.issue(
                        &format!("container.labels.{k}"),
                        kloc,
                        "labels starting with `hoist.` are reserved for hoist's own bookkeeping",
                    );
                } else {
                    labels.insert(k, v);
                }
            }
        }
        let stop_timeout = match f.get("stop_timeout") {
            Some(n) => self.duration(n, "container.stop_timeout"),
            None => Some(Duration::from_secs(10)),
        };
        let init = f
            .get("init")
            .and_then(|n| self.boolean(n, "container.init"))
            .unwrap_or(false);
        self.finish(&f, CONTAINER_KEYS);
        Some(Container {
            port: port?,
            publish,
            command,
            volumes,
            memory,
            cpus,
            restart: restart?,
            labels,
            stop_timeout: stop_timeout?,
            init,
        })
    }

    fn healthcheck(&mut self, node: &Node) -> Option<Healthcheck> {
        let mut f = self.fields(node, "healthcheck")?;
        let path = f.get("path").and_then(|n| {
            let p = self.string(n, "healthcheck.path")?;
            if p.starts_with('/') && !p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Some(p)
            } else {
                self.issue(
                    "healthcheck.path",
                    n.loc,
                    format!("`{p}` is not a URL path (it must start with / and hold no spaces)"),
                );
                None
            }
        });
        let expect_status = match f.get("expect_status") {
            Some(n) => self
                .int_in(n, "healthcheck.expect_status", 100, 599)
                .map(|s| u16::try_from(s).expect("checked to be 100-599")),
            None => Some(200),
        };
        let mut dur = |d: &mut Self, key: &str, default: u64| match f.get(key) {
            Some(n) => d
                .duration(n, &format!("healthcheck.{key}"))
                .map(|v| (v, Some(n.loc))),
            None => Some((Duration::from_secs(default), None)),
        };
        let interval = dur(self, "interval", 2);
        let timeout = dur(self, "timeout", 60);
        let start_period = dur(self, "start_period", 0);
        let consecutive = match f.get("consecutive") {
            Some(n) => self
                .int_in(n, "healthcheck.consecutive", 1, 10)
                .map(|c| (u32::try_from(c).expect("checked to be 1-10"), Some(n.loc))),
            None => Some((1, None)),
        };
        if let (Some((i, iloc)), Some((t, tloc))) = (interval, timeout) {
            if i.is_zero() {
                self.issue(
                    "healthcheck.interval",
                    iloc.unwrap_or(node.loc),
                    "must be more than 0s",
                );
            } else if i > t {
                self.issue(
                    "healthcheck.timeout",
                    tloc.or(iloc).unwrap_or(node.loc),
                    format!(
                        "the overall budget ({}) is shorter than one probe interval ({})",
                        duration::format(t),
                        duration::format(i)
                    ),
                );
            } else if let Some((c, cloc)) = consecutive
                && c > 1
                && i.saturating_mul(c - 1) > t
            {
                self.issue_help(
                    "healthcheck.consecutive",
                    cloc.unwrap_or(node.loc),
                    format!(
                        "{c} successful probes in a row, one healthcheck.interval ({}) apart, \
                         take {} after the first: more than the whole budget, \
                         healthcheck.timeout ({})",
                        duration::format(i),
                        duration::format(i.saturating_mul(c - 1)),
                        duration::format(t)
                    ),
                    "lower healthcheck.consecutive or healthcheck.interval, or raise \
                     healthcheck.timeout"
                        .into(),
                );
            }
        }
        self.finish(&f, HEALTH_KEYS);
        Some(Healthcheck {
            path,
            expect_status: expect_status?,
            interval: interval?.0,
            timeout: timeout?.0,
            start_period: start_period?.0,
            consecutive: consecutive?.0,
        })
    }

    fn env(&mut self, node: &Node) -> Option<Env> {
        let mut f = self.fields(node, "env")?;
        let mut clear = BTreeMap::new();
        if let Some(n) = f.get("clear") {
            for (k, kloc, v, vloc) in self.text_map(n, "env.clear") {
                let field = format!("env.clear.{k}");
                if !is_env_name(&k) {
                    self.issue(&field, kloc, not_env_name(&k));
                } else if v.contains(['\n', '\r', '\0']) {
                    // Reported by `check_text` (control characters).
                } else if k.len() + 1 + v.len() > MAX_ENV_LINE {
                    self.issue(
                        &field,
                        vloc,
                        format!(
                            "the env line `{k}=…` is {} bytes; Docker reads env files a line \
                             at a time and refuses lines over {MAX_ENV_LINE} bytes",
                            k.len() + 1 + v.len()
                        ),
                    );
                } else {
                    clear.insert(k, v);
                }
            }
        }
        let mut secret: Vec<String> = Vec::new();
        let mut sources = BTreeMap::new();
        if let Some(n) = f.get("secret") {
            let items = if let Value::Seq(items) = &n.value {
                items.as_slice()
            } else {
                self.wrong_type("env.secret", n, "a list of names (or NAME: {ssm: …})");
                &[]
            };
            for (i, item) in items.iter().enumerate() {
                let field = format!("env.secret[{i}]");
                let (name, loc, source) = match &item.value {
                    Value::Str(name) => (name.clone(), item.loc, None),
                    Value::Map(entries) if entries.len() == 1 => {
                        let (k, v) = &entries[0];
                        let Value::Str(name) = &k.value else {
                            self.wrong_type(&field, k, "a name");
                            continue;
                        };
                        let source = self.secret_source(v, &format!("{field}.{name}"));
                        (name.clone(), k.loc, Some(source))
                    }
                    _ => {
                        self.issue_help(
                            &field,
                            item.loc,
                            "expected a name, or one `NAME: {source}` entry",
                            "write `- NAME` for a value from hoist's environment, \
                             `- NAME: {ssm: /path}` or `- NAME: {secretsmanager: id, key: field}` \
                             for one the host reads itself"
                                .into(),
                        );
                        continue;
                    }
                };
                if !is_env_name(&name) {
                    self.issue(&field, loc, not_env_name(&name));
                } else if clear.contains_key(&name) {
                    self.issue(
                        &field,
                        loc,
                        format!("`{name}` is listed in both env.clear and env.secret"),
                    );
                } else if secret.contains(&name) {
                    self.issue(&field, loc, format!("`{name}` is listed twice"));
                } else {
                    match source {
                        None => {}
                        Some(Some(source)) => {
                            sources.insert(name.clone(), source);
                        }
                        Some(None) => continue,
                    }
                    secret.push(name);
                }
            }
        }
        self.finish(&f, ENV_KEYS);
        Some(Env {
            clear,
            secret,
            sources,
        })
    }

    /// `{ssm: NAME}` or `{secretsmanager: ID, key: FIELD}`: where a host reads a secret.
    fn secret_source(&mut self, node: &Node, field: &str) -> Option<SecretSource> {
        let mut f = self.fields(node, field)?;
        let ssm = f.get("ssm");
        let sm = f.get("secretsmanager");
        let key = f.get("key");
        let source = match (ssm, sm) {
            (Some(n), None) => {
                let name = self.string(n, &join(field, "ssm"))?;
                if is_parameter_ref(&name) {
                    if let Some(k) = key {
                        self.issue(
                            &join(field, "key"),
                            k.loc,
                            "`key` picks a field of a Secrets Manager secret; an SSM parameter \
                             has one value",
                        );
                    }
                    Some(SecretSource::Ssm(name))
                } else {
                    self.issue_help(
                        &join(field, "ssm"),
                        n.loc,
                        format!("`{name}` is not an SSM parameter name"),
                        "a name like /prod/db-url (letters, digits, _ . - /), an ARN, or \
                         name:version / name:label"
                            .into(),
                    );
                    None
                }
            }
            (None, Some(n)) => {
                let id = self.string(n, &join(field, "secretsmanager"))?;
                let key = match key {
                    Some(k) => {
                        let k = self.string(k, &join(field, "key"))?;
                        if k.is_empty() || k.contains(['|', '\'']) {
                            self.issue(
                                &join(field, "key"),
                                node.loc,
                                "a JSON field name, not empty, without `|` or `'`",
                            );
                            return None;
                        }
                        Some(k)
                    }
                    None => None,
                };
                if is_secret_id(&id) {
                    Some(SecretSource::SecretsManager { secret: id, key })
                } else {
                    self.issue_help(
                        &join(field, "secretsmanager"),
                        n.loc,
                        format!("`{id}` is not a Secrets Manager secret name or ARN"),
                        "1-512 of letters, digits and /_+=.@- (a name), or its ARN".into(),
                    );
                    None
                }
            }
            _ => {
                self.issue_help(
                    field,
                    node.loc,
                    "name exactly one source",
                    "`{ssm: /path/to/parameter}` or `{secretsmanager: name-or-arn, key: field}`"
                        .into(),
                );
                None
            }
        };
        self.finish(&f, SOURCE_KEYS);
        source
    }

    fn secrets(&mut self, node: &Node) -> Option<Secrets> {
        let mut f = self.fields(node, "secrets")?;
        let tier = match f.get("tier") {
            Some(n) => match self.string(n, "secrets.tier")?.as_str() {
                "auto" => Some(SecretTier::Auto),
                "standard" => Some(SecretTier::Standard),
                "advanced" => Some(SecretTier::Advanced),
                other => {
                    self.issue_help(
                        "secrets.tier",
                        n.loc,
                        format!("`{other}` is not a parameter tier"),
                        "auto (standard when the secrets fit in 4096 bytes, advanced above), \
                         standard (free, at most 4096 bytes) or advanced (charged, up to 8192 \
                         bytes, with an expiration policy)"
                            .into(),
                    );
                    None
                }
            },
            None => Some(SecretTier::Auto),
        };
        self.finish(&f, SECRETS_KEYS);
        Some(Secrets { tier: tier? })
    }

    /// `lock: {lease: DURATION}`: the fleet lock's lease, within its bounds.
    fn lock(&mut self, node: &Node) -> Option<Lock> {
        let mut f = self.fields(node, "lock")?;
        let lease = match f.get("lease") {
            None => Some(Lock::DEFAULT_LEASE),
            Some(n) => self.duration_in(
                n,
                "lock.lease",
                Lock::MIN_LEASE..=Lock::MAX_LEASE,
                "the lease is how long the fleet lock stays good without renewal; a running \
                 hoist renews it every third of it (default 5m)",
            ),
        };
        self.finish(&f, LOCK_KEYS);
        Some(Lock { lease: lease? })
    }

    /// `rollout:`: a mode (`one-phase`, `two-phase`), or a mapping of `mode`, `canary` and
    /// `canary_window`. Two-phase by default for blue-green, one-phase for recreate (whose
    /// two-phase stage only pulls); a canary needs a two-phase blue-green rollout (it switches
    /// itself back to the color still running).
    fn rollout(
        &mut self,
        node: Option<&Node>,
        strategy: Option<Strategy>,
    ) -> Option<(Rollout, Option<Canary>)> {
        let default = match strategy {
            Some(Strategy::BlueGreen) => Rollout::TwoPhase,
            _ => Rollout::OnePhase,
        };
        let Some(node) = node else {
            return Some((default, None));
        };
        let (mode, canary) = if let Value::Map(_) = &node.value {
            let mut f = self.fields(node, "rollout")?;
            let mode = match f.get("mode") {
                Some(n) => self.rollout_mode(n, "rollout.mode"),
                None => Some(default),
            };
            let canary_node = f.get("canary");
            let count = canary_node.map(|n| (self.rate(n, "rollout.canary", 1), n.loc));
            let window_node = f.get("canary_window");
            let window = match window_node {
                None => Some(Canary::DEFAULT_WINDOW),
                Some(n) => self.duration_in(
                    n,
                    "rollout.canary_window",
                    Canary::MIN_WINDOW..=Canary::MAX_WINDOW,
                    "how long each canary is watched after its switch before the rest switch \
                     (default 1m)",
                ),
            };
            if count.is_none() && window_node.is_some() {
                let loc = f.key_loc("canary_window").unwrap_or(node.loc);
                self.issue_help(
                    "rollout.canary_window",
                    loc,
                    "`canary_window` without `canary`: no target is a canary",
                    "set `rollout.canary` (a number of targets, or a percentage such as \"10%\")"
                        .into(),
                );
            }
            self.finish(&f, ROLLOUT_KEYS);
            let canary = match count {
                None => Some(None),
                Some((Some(Rate::Percent(100)), loc)) => {
                    self.issue_help(
                        "rollout.canary",
                        loc,
                        "a canary of 100% is every target: nothing is left to protect",
                        "a number of targets, or a percentage below 100%".into(),
                    );
                    None
                }
                Some((Some(count), loc)) => {
                    let needs = if strategy != Some(Strategy::BlueGreen) {
                        Some("`strategy: blue-green`")
                    } else if mode == Some(Rollout::OnePhase) {
                        Some("`rollout.mode: two-phase`")
                    } else {
                        None
                    };
                    if let Some(needs) = needs {
                        self.issue_help(
                            "rollout.canary",
                            loc,
                            format!(
                                "a canary needs {needs}: it switches a few staged targets \
                                 first and, when one fails, switches it back to the color \
                                 still running there"
                            ),
                            "set `strategy: blue-green` with the two-phase rollout (its \
                             default), or remove `canary`"
                                .into(),
                        );
                        None
                    } else {
                        window.map(|window| Some(Canary { count, window }))
                    }
                }
                Some((None, _)) => None,
            };
            (mode, canary)
        } else {
            (self.rollout_mode(node, "rollout"), Some(None))
        };
        Some((mode?, canary?))
    }

    /// A rollout mode, `one-phase` or `two-phase`.
    fn rollout_mode(&mut self, node: &Node, field: &str) -> Option<Rollout> {
        let s = self.string(node, field)?;
        let rollout = match s.as_str() {
            "one-phase" => Rollout::OnePhase,
            "two-phase" => Rollout::TwoPhase,
            other => {
                self.issue_help(
                    field,
                    node.loc,
                    format!("unknown rollout `{other}` (known: one-phase, two-phase)"),
                    "`rollout: two-phase`, or a mapping such as `rollout: {mode: two-phase, \
                     canary: 1, canary_window: 60s}`"
                        .into(),
                );
                return None;
            }
        };
        Some(rollout)
    }

    fn strategy(&mut self, node: &Node) -> Option<Strategy> {
        let s = self.string(node, "strategy")?;
        match s.as_str() {
            "recreate" => Some(Strategy::Recreate),
            "blue-green" => Some(Strategy::BlueGreen),
            other => {
                self.issue(
                    "strategy",
                    node.loc,
                    format!("unknown strategy `{other}` (known: recreate, blue-green)"),
                );
                None
            }
        }
    }
}

impl Decoder {
    /// `blue_green:` for the strategy chosen: `Ok(None)` when it is not blue-green (and
    /// the section is absent), `Ok(Some(..))` with every default filled in when it is.
    /// `publish_missing_at` is where a missing `container.publish` is reported.
    fn blue_green(
        &mut self,
        node: Option<&Node>,
        key_loc: Option<Loc>,
        strategy: Option<Strategy>,
        publish_missing_at: Loc,
    ) -> Result<Option<BlueGreen>, Reported> {
        // The section's own fields are checked whatever the strategy.
        let section = match node {
            Some(n) => self.blue_green_section(n),
            None => Some(Section::default()),
        };
        match strategy {
            // The strategy itself is wrong: said already.
            None => Err(Reported),
            Some(Strategy::Recreate) => {
                if let Some(loc) = key_loc {
                    self.issue_help(
                        "blue_green",
                        loc,
                        "`blue_green` applies to `strategy: blue-green`, and this config's \
                         strategy is recreate",
                        "set `strategy: blue-green`, or remove the blue_green section".into(),
                    );
                    return Err(Reported);
                }
                Ok(None)
            }
            Some(Strategy::BlueGreen) => {
                let section = section.ok_or(Reported)?;
                let ports = match (self.publish, section.ports) {
                    (None, _) => {
                        self.issue_help(
                            "container.publish",
                            publish_missing_at,
                            "`strategy: blue-green` needs `container.publish`, the host port \
                             nginx listens on and proxies to the live color",
                            "e.g. `container: {publish: 80}`; each color is published on a \
                             loopback port of its own (blue_green.ports)"
                                .into(),
                        );
                        None
                    }
                    // An invalid port: said already.
                    (Some((_, None)), _) | (_, Ports::Invalid) => None,
                    (Some((_, Some(_))), Ports::Given(ports)) => Some(ports),
                    (Some((loc, Some(publish))), Ports::Default) => {
                        let derived = BlueGreen::default_ports(publish);
                        if derived.is_none() {
                            let [blue, green] = BlueGreen::PORT_OFFSETS;
                            self.issue_help(
                                "blue_green.ports",
                                node.map_or(loc, |n| n.loc),
                                format!(
                                    "no default ports for container.publish {publish}: they \
                                     are publish + {blue} and publish + {green}, and {} is \
                                     more than 65535",
                                    u32::from(publish) + u32::from(green)
                                ),
                                "set `blue_green.ports: [blue, green]`, two free host ports \
                                 the colors listen on (on 127.0.0.1)"
                                    .into(),
                            );
                        }
                        derived
                    }
                };
                let blue_green = BlueGreen {
                    drain: section.drain.ok_or(Reported)?,
                    post_switch_check: section.post_switch_check.ok_or(Reported)?,
                    install_proxy: section.install_proxy.ok_or(Reported)?,
                    ports: ports.ok_or(Reported)?,
                };
                Ok(Some(blue_green))
            }
        }
    }

    /// The fields of a `blue_green:` mapping, each `None` when invalid.
    fn blue_green_section(&mut self, node: &Node) -> Option<Section> {
        let mut f = self.fields(node, "blue_green")?;
        let mut bounded = |d: &mut Self, key: &str, default, min, max| match f.get(key) {
            None => Some(default),
            Some(n) => {
                let field = format!("blue_green.{key}");
                let value = d.duration(n, &field)?;
                if (min..=max).contains(&value) {
                    Some(value)
                } else {
                    d.issue(
                        &field,
                        n.loc,
                        format!(
                            "{} is out of range ({}-{})",
                            duration::format(value),
                            duration::format(min),
                            duration::format(max)
                        ),
                    );
                    None
                }
            }
        };
        let drain = bounded(
            self,
            "drain",
            BlueGreen::DEFAULT_DRAIN,
            Duration::ZERO,
            BlueGreen::MAX_DRAIN,
        );
        let post_switch_check = bounded(
            self,
            "post_switch_check",
            BlueGreen::DEFAULT_POST_SWITCH_CHECK,
            BlueGreen::MIN_POST_SWITCH_CHECK,
            BlueGreen::MAX_POST_SWITCH_CHECK,
        );
        let install_proxy = match f.get("install_proxy") {
            Some(n) => self.boolean(n, "blue_green.install_proxy"),
            None => Some(false),
        };
        let ports = match f.get("ports") {
            None => Ports::Default,
            Some(n) => self.color_ports(n).map_or(Ports::Invalid, Ports::Given),
        };
        self.finish(&f, BLUE_GREEN_KEYS);
        Some(Section {
            drain,
            post_switch_check,
            install_proxy,
            ports,
        })
    }

    /// `ports: [blue, green]`: two distinct ports, neither `container.publish`.
    fn color_ports(&mut self, node: &Node) -> Option<[u16; 2]> {
        const COLORS: [&str; 2] = ["blue", "green"];
        let Value::Seq(items) = &node.value else {
            self.wrong_type(
                "blue_green.ports",
                node,
                "a list of two ports, [blue, green]",
            );
            return None;
        };
        if items.len() != 2 {
            self.issue_help(
                "blue_green.ports",
                node.loc,
                format!(
                    "{} port{} given; blue-green needs two, [blue, green]",
                    items.len(),
                    if items.len() == 1 { "" } else { "s" }
                ),
                "e.g. `ports: [18080, 28080]`: the host ports (on 127.0.0.1) of the blue \
                 and the green release"
                    .into(),
            );
            return None;
        }
        let ports = [
            self.port(&items[0], "blue_green.ports[0]"),
            self.port(&items[1], "blue_green.ports[1]"),
        ];
        let mut ok = true;
        if let Some((_, Some(publish))) = self.publish {
            for (i, port) in ports.iter().enumerate() {
                if *port == Some(publish) {
                    ok = false;
                    self.issue(
                        &format!("blue_green.ports[{i}]"),
                        items[i].loc,
                        format!(
                            "{publish} is container.publish, the port nginx listens on; the \
                             {} release needs a port of its own",
                            COLORS[i]
                        ),
                    );
                }
            }
        }
        match ports {
            // A port is the publish port: said already.
            _ if !ok => None,
            [Some(blue), Some(green)] if blue == green => {
                self.issue(
                    "blue_green.ports[1]",
                    items[1].loc,
                    format!(
                        "the green port is the blue port ({blue}): each color needs a port of \
                         its own"
                    ),
                );
                None
            }
            [Some(blue), Some(green)] => Some([blue, green]),
            _ => None,
        }
    }

    /// One host's run must fit in SSM's 48 h: the health gate, the stop, the strategy's
    /// switch and the script's own slack.
    fn check_budget(
        &mut self,
        c: &Container,
        h: &Healthcheck,
        blue_green: Option<&BlueGreen>,
        loc: Loc,
    ) {
        let switch = blue_green.map_or(Duration::ZERO, BlueGreen::switch_time);
        if duration::run_budget(h.timeout, h.start_period, c.stop_timeout, switch).is_some() {
            return;
        }
        let switch_terms = if blue_green.is_some() {
            " + blue_green.drain + blue_green.post_switch_check"
        } else {
            ""
        };
        self.issue(
            "healthcheck.timeout",
            loc,
            format!(
                "healthcheck.timeout + healthcheck.start_period + container.stop_timeout\
                 {switch_terms} + {} for pull and prune ({}) is more than {}, the most SSM lets \
                 a command run",
                duration::format(duration::RUN_SLACK),
                duration::format(
                    h.timeout
                        .saturating_add(h.start_period)
                        .saturating_add(c.stop_timeout)
                        .saturating_add(switch)
                        .saturating_add(duration::RUN_SLACK)
                ),
                duration::format(duration::MAX)
            ),
        );
    }
}

/// An issue was reported (the value it concerns is unknown).
struct Reported;

/// A `blue_green:` mapping as read, before the strategy and `container.publish` are known;
/// `None` for a field that is invalid.
struct Section {
    drain: Option<Duration>,
    post_switch_check: Option<Duration>,
    install_proxy: Option<bool>,
    ports: Ports,
}

/// `blue_green.ports` as read.
enum Ports {
    /// Not given: derived from `container.publish`.
    Default,
    Given([u16; 2]),
    Invalid,
}

impl Default for Section {
    fn default() -> Section {
        Section {
            drain: Some(BlueGreen::DEFAULT_DRAIN),
            post_switch_check: Some(BlueGreen::DEFAULT_POST_SWITCH_CHECK),
            install_proxy: Some(false),
            ports: Ports::Default,
        }
    }
}

fn empty_map(loc: Loc) -> Node {
    Node::synthetic(Value::Map(Vec::new()), loc)
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("`{s}`"),
        Value::Int(i) => i.to_string(),
        Value::Float(x) => x.to_string(),
        other => other.kind().to_owned(),
    }
}

fn not_env_name(name: &str) -> String {
    format!(
        "`{name}` is not a valid environment variable name (letters, digits and _, not \
         starting with a digit)"
    )
}

pub fn is_app_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

pub fn is_env_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=128).contains(&b.len())
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn is_repository_name(s: &str) -> bool {
    (2..=256).contains(&s.len())
        && s.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c))
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

fn is_memory(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let (digits, mult) = match lower.strip_suffix(['b', 'k', 'm', 'g']) {
        Some(d) => (
            d,
            match lower.as_bytes()[lower.len() - 1] {
                b'k' => 1u64 << 10,
                b'm' => 1 << 20,
                b'g' => 1 << 30,
                _ => 1,
            },
        ),
        None => (lower.as_str(), 1),
    };
    // Docker refuses less than 6 MiB.
    digits
        .parse::<u64>()
        .is_ok_and(|n| n.saturating_mul(mult) >= 6 << 20)
}

fn is_restart_policy(s: &str) -> bool {
    match s.split_once(':') {
        None => matches!(s, "no" | "always" | "unless-stopped" | "on-failure"),
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        Some(_) => false,
    }
}

fn check_volume(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split(':').collect();
    let usage = "write host-path-or-volume:/container/path[:ro|rw]";
    if !(2..=3).contains(&parts.len()) || parts[0].is_empty() {
        return Err(format!("`{v}` is not a volume mapping ({usage})"));
    }
    if !parts[1].starts_with('/') {
        return Err(format!(
            "`{v}`: the container path must be absolute ({usage})"
        ));
    }
    if parts.len() == 3 && !matches!(parts[2], "ro" | "rw") {
        return Err(format!("`{v}`: unknown mode `{}` ({usage})", parts[2]));
    }
    Ok(())
}

/// The known key closest to `key` by edit distance, if it is close enough to be a typo.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    // Optimal string alignment: insertions, deletions, substitutions and transpositions.
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// An SSM parameter reference a host can pass to `get-parameter --name`: a name (with an
/// optional `:version` or `:label`) or an ARN.
fn is_parameter_ref(s: &str) -> bool {
    let name = s.strip_prefix("arn:").map_or(s, |rest| {
        rest.split_once(":parameter").map_or("", |(_, n)| n)
    });
    let (name, selector) = match name.rsplit_once(':') {
        Some((n, sel)) => (n, Some(sel)),
        _ => (name, None),
    };
    !name.is_empty()
        && name.len() <= 2048
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && selector.is_none_or(|sel| {
            !sel.is_empty()
                && sel.len() <= 100
                && sel
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        })
}

/// A Secrets Manager secret name or ARN.
fn is_secret_id(s: &str) -> bool {
    (1..=2048).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_app_name("hello"));
        assert!(is_app_name("web-2"));
        assert!(!is_app_name("Hello"));
        assert!(!is_app_name("2web"));
        assert!(!is_app_name("web-"));
        assert!(!is_app_name(&"a".repeat(33)));
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(is_instance_id("i-01234567"));
        assert!(!is_instance_id("i-0123456789ABCDEF0"));
        assert!(!is_instance_id("0123456789abcdef0"));
        assert!(is_env_name("API_TOKEN"));
        assert!(!is_env_name("1TOKEN"));
        assert!(!is_env_name("API-TOKEN"));
        assert!(is_memory("64m") && is_memory("1G") && !is_memory("1m") && !is_memory("lots"));
        assert!(is_restart_policy("on-failure:3") && !is_restart_policy("sometimes"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("prot", CONTAINER_KEYS), Some("port"));
        assert_eq!(closest("healthchek", TOP_KEYS), Some("healthcheck"));
        assert_eq!(closest("zzzzzz", TOP_KEYS), None);
        assert_eq!(closest("retian", TOP_KEYS), Some("retain"));
    }
}
