//! The validated `hoist.yaml`: every field already checked, every default filled in.
//!
//! These types are the only way the rest of hoist sees configuration; they are produced by
//! [`super::decode`] and serialize into the plan.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub app: String,
    /// The environment (`--environment`, or `environment:`): it scopes the app's SSM names
    /// (`/hoist/<app>/<environment>/…`). `None`: the names of an app without environments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub region: Option<String>,
    pub image: Image,
    pub targets: Targets,
    pub container: Container,
    pub healthcheck: Healthcheck,
    pub env: Env,
    pub strategy: Strategy,
    /// `blue_green:`, with its defaults filled in: `Some` exactly when `strategy` is
    /// blue-green.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreen>,
    /// How a deploy spreads over the fleet: one phase (each host stages and switches in one
    /// run, `max_concurrency` at a time) or two (stage everywhere, then switch).
    pub rollout: Rollout,
    /// `rollout.canary`: switch a few targets first and watch them before the rest (a
    /// two-phase blue-green rollout only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    pub retain: u32,
    pub secrets: Secrets,
    /// `lock:`: the fleet-wide deploy lock (SSM only).
    pub lock: Lock,
}

impl Config {
    /// What the strategy spends on a host beyond the health gate and the stop: blue-green's
    /// drain and post-switch check; nothing for recreate.
    pub fn switch_time(&self) -> Duration {
        self.blue_green
            .as_ref()
            .map_or(Duration::ZERO, BlueGreen::switch_time)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Image {
    /// ECR repository name (default: the app name).
    pub repository: String,
    /// Build context, resolved against the config file's directory.
    pub context: PathBuf,
    /// Dockerfile path relative to the context.
    pub dockerfile: String,
    pub target: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub platform: Option<String>,
    /// Tags to push; empty means "the git commit SHA".
    pub tags: Vec<String>,
    /// Which of the engine's builders builds the image.
    pub builder: Builder,
    /// Create the ECR repository with IMMUTABLE tags (applies when hoist creates it).
    pub immutable_tags: bool,
    /// Create the ECR repository with scan on push (applies when hoist creates it).
    pub scan_on_push: bool,
}

/// The engine's image builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Builder {
    /// `BuildKit` when the engine's API has it (Linux, API 1.39 / Docker 18.09 and later),
    /// else classic; classic also when the engine refuses a `BuildKit` build before it begins.
    Auto,
    Buildkit,
    Classic,
}

impl Builder {
    pub fn as_str(self) -> &'static str {
        match self {
            Builder::Auto => "auto",
            Builder::Buildkit => "buildkit",
            Builder::Classic => "classic",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Targets {
    pub instance_ids: Vec<String>,
    pub tags: BTreeMap<String, Vec<String>>,
    pub max_concurrency: Rate,
    pub max_errors: Rate,
}

/// SSM's "a number or a percentage" form, used by `MaxConcurrency` and `MaxErrors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Count(u32),
    Percent(u8),
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Count(n) => write!(f, "{n}"),
            Rate::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for Rate {
    type Err = String;

    /// `10` or `25%`, as SSM writes them (`Percent` at most 100).
    fn from_str(text: &str) -> Result<Rate, String> {
        let bad = || format!("`{text}` is not a number or a percentage such as 10 or 25%");
        match text.strip_suffix('%') {
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= 100 => Ok(Rate::Percent(p)),
                _ => Err(bad()),
            },
            None => text.parse().map(Rate::Count).map_err(|_| bad()),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Container {
    pub port: u16,
    pub publish: Option<u16>,
    pub command: Vec<String>,
    pub volumes: Vec<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub restart: String,
    pub labels: BTreeMap<String, String>,
    #[serde(with = "secs")]
    pub stop_timeout: Duration,
    /// Run an init process as PID 1 (`docker run --init`): it forwards signals and reaps
    /// zombies, so an app that ignores SIGTERM as PID 1 stops at once instead of after
    /// `stop_timeout`.
    pub init: bool,
    /// The further `docker create` options production asks for.
    pub docker: DockerOptions,
}

/// `container:`'s Docker options beyond the basics: each maps to one `docker create` flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DockerOptions {
    /// `--log-driver` and its `--log-opt KEY=VALUE`s (`awslogs`: to `CloudWatch` Logs).
    pub log_driver: Option<String>,
    pub log_options: BTreeMap<String, String>,
    /// `--user NAME|UID[:GROUP|GID]`.
    pub user: Option<String>,
    /// `--read-only`, with `--tmpfs PATH[:OPTIONS]` mounts for what must be written.
    pub read_only: bool,
    pub tmpfs: Vec<String>,
    /// `--cap-drop` / `--cap-add`, upper case without `CAP_` (`ALL`, `NET_BIND_SERVICE`).
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: BTreeMap<String, String>,
    /// `--add-host NAME:ADDRESS` (an IP address or `host-gateway`).
    pub extra_hosts: BTreeMap<String, String>,
    /// `--network NAME` (a network that exists on each host, or `bridge`).
    pub network: Option<String>,
    /// `--entrypoint EXECUTABLE` (its arguments go in `command`); `""` clears the image's.
    pub entrypoint: Option<String>,
    /// `--shm-size SIZE`.
    pub shm_size: Option<String>,
    /// `--stop-signal SIGNAL`, what `docker stop` sends first.
    pub stop_signal: Option<String>,
}

impl DockerOptions {
    /// The `docker create` arguments, in a fixed order.
    pub fn create_args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut put = |flag: &str, value: &str| {
            a.push(flag.to_owned());
            a.push(value.to_owned());
        };
        if let Some(d) = &self.log_driver {
            put("--log-driver", d);
        }
        for (k, v) in &self.log_options {
            put("--log-opt", &format!("{k}={v}"));
        }
        if let Some(u) = &self.user {
            put("--user", u);
        }
        for t in &self.tmpfs {
            put("--tmpfs", t);
        }
        for c in &self.cap_drop {
            put("--cap-drop", c);
        }
        for c in &self.cap_add {
            put("--cap-add", c);
        }
        for (k, v) in &self.ulimits {
            put("--ulimit", &format!("{k}={v}"));
        }
        for (host, address) in &self.extra_hosts {
            put("--add-host", &format!("{host}:{address}"));
        }
        if let Some(n) = &self.network {
            put("--network", n);
        }
        if let Some(e) = &self.entrypoint {
            put("--entrypoint", e);
        }
        if let Some(s) = &self.shm_size {
            put("--shm-size", s);
        }
        if let Some(s) = &self.stop_signal {
            put("--stop-signal", s);
        }
        if self.read_only {
            a.push("--read-only".to_owned());
        }
        a
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Healthcheck {
    pub path: Option<String>,
    pub expect_status: u16,
    #[serde(with = "secs")]
    pub interval: Duration,
    #[serde(with = "secs")]
    pub timeout: Duration,
    #[serde(with = "secs")]
    pub start_period: Duration,
    /// Successful probes in a row the gate needs (1-10).
    pub consecutive: u32,
    /// A command run in the container (`docker exec`) that exits 0 when healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// A TCP connection to the port is the check.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    /// The image's own `HEALTHCHECK` must report healthy (an image without one fails).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub docker: bool,
    /// With no check at all: how long the container must keep running (same start, no
    /// restart) to count as healthy.
    #[serde(with = "secs")]
    pub min_running: Duration,
}

impl Healthcheck {
    /// The check as a release's `hoist.health-check` label holds it (what every probe of
    /// the release uses, also after a rollback to it): empty with a path (the
    /// `hoist.health-path` label), `command:<base64 of the words, NUL-separated>`, `tcp`,
    /// `docker`, or `running:<seconds>` with none.
    pub fn label(&self) -> String {
        use base64::Engine as _;
        if self.path.is_some() {
            String::new()
        } else if !self.command.is_empty() {
            let words = self.command.join("\0");
            format!(
                "command:{}",
                base64::engine::general_purpose::STANDARD.encode(words)
            )
        } else if self.tcp {
            "tcp".to_owned()
        } else if self.docker {
            "docker".to_owned()
        } else {
            format!("running:{}", self.min_running.as_secs())
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Env {
    pub clear: BTreeMap<String, String>,
    /// Every secret name, in the config's order.
    pub secret: Vec<String>,
    /// The secrets each host resolves itself, with its own role; the others come from hoist's
    /// environment.
    pub sources: BTreeMap<String, SecretSource>,
}

impl Env {
    /// The secret names whose values hoist reads from its own environment.
    pub fn from_environment(&self) -> Vec<String> {
        self.secret
            .iter()
            .filter(|n| !self.sources.contains_key(*n))
            .cloned()
            .collect()
    }
}

/// Where a host reads a secret itself: the value never passes through hoist or the runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretSource {
    /// An SSM parameter (`SecureString` or String), by name, ARN, `name:version` or
    /// `name:label`.
    Ssm(String),
    /// A Secrets Manager secret (name or ARN); `key` picks one field of a JSON `SecretString`.
    SecretsManager { secret: String, key: Option<String> },
}

impl SecretSource {
    /// How the plan and the host's messages name it: `ssm:/prod/db`,
    /// `secretsmanager:prod/db#password`.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Ssm(name) => format!("ssm:{name}"),
            SecretSource::SecretsManager { secret, key: None } => {
                format!("secretsmanager:{secret}")
            }
            SecretSource::SecretsManager {
                secret,
                key: Some(k),
            } => format!("secretsmanager:{secret}#{k}"),
        }
    }
}

/// How the per-deploy `SecureString` parameter that carries hoist's secrets is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretTier {
    /// Standard when the secrets fit in 4096 bytes, advanced above that.
    #[default]
    Auto,
    /// Standard parameters only: free, at most 4096 bytes; more is refused before anything
    /// changes.
    Standard,
    /// Advanced parameters: up to 8192 bytes, charged, and carry an Expiration policy so
    /// that SSM deletes a leftover itself.
    Advanced,
}

impl SecretTier {
    /// The largest value a parameter of this tier holds, in bytes.
    pub fn max_bytes(self) -> usize {
        match self {
            SecretTier::Standard => 4096,
            SecretTier::Auto | SecretTier::Advanced => 8192,
        }
    }

    /// The tier a payload of `len` bytes is stored in.
    pub fn for_payload(self, len: usize) -> SecretTier {
        match self {
            SecretTier::Auto if len <= 4096 => SecretTier::Standard,
            SecretTier::Auto => SecretTier::Advanced,
            tier => tier,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SecretTier::Auto => "auto",
            SecretTier::Standard => "standard",
            SecretTier::Advanced => "advanced",
        }
    }
}

/// `secrets:`: how secret values travel.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Secrets {
    pub tier: SecretTier,
}

/// `lock:`: the fleet-wide lock a deploy or rollback over SSM holds (an SSM parameter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// How long the lock is good for without renewal: a running hoist renews it every third
    /// of it; one that was killed leaves a lock that is reported stale once it passed.
    #[serde(with = "secs")]
    pub lease: Duration,
}

impl Lock {
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);
    pub const MIN_LEASE: Duration = Duration::from_secs(10);
    pub const MAX_LEASE: Duration = Duration::from_secs(3600);
}

impl Default for Lock {
    fn default() -> Self {
        Lock {
            lease: Self::DEFAULT_LEASE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Stop the running release, start the new one in its place, health-gated.
    Recreate,
    /// Start the new release beside the running one on the other loopback port, health-gate
    /// it, switch nginx over to it, verify, then drain and stop the old one.
    BlueGreen,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Recreate => "recreate",
            Strategy::BlueGreen => "blue-green",
        }
    }
}

/// `rollout:`: how a deploy spreads over the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rollout {
    /// One phase: each host runs its whole deploy (stage, switch, verify, retire) in one
    /// script, `max_concurrency` hosts at a time. The default for recreate.
    OnePhase,
    /// Two phases: stage the release on every target at once (pull, create, health-gate the
    /// idle color); only when staging passed on enough targets (`max_errors`), switch, in
    /// batches of `max_concurrency`. Otherwise the staged containers are discarded and
    /// nothing switches. The default for blue-green (which it needs).
    TwoPhase,
}

impl Rollout {
    pub fn as_str(self) -> &'static str {
        match self {
            Rollout::OnePhase => "one-phase",
            Rollout::TwoPhase => "two-phase",
        }
    }
}

/// `rollout.canary` and `rollout.canary_window`: a two-phase blue-green rollout switches
/// `count` of the staged targets first (phase `canary`), watches them for `window` (health
/// through nginx, the container staying up), and switches the rest only when every canary
/// held; a canary that fails switches itself back, and nothing else changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Canary {
    /// How many of the staged targets: a number, or a percentage (rounded up, at least one).
    pub count: Rate,
    /// How long each canary is watched after its switch (it replaces the post-switch check
    /// there when longer).
    #[serde(with = "secs")]
    pub window: Duration,
}

impl Canary {
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
    pub const MIN_WINDOW: Duration = Duration::from_secs(1);
    pub const MAX_WINDOW: Duration = Duration::from_secs(3600);

    /// How many of `staged` targets are canaries: `count` (at most `staged`), or the
    /// percentage rounded up, at least one (none when nothing is staged).
    pub fn of(count: Rate, staged: usize) -> usize {
        if staged == 0 {
            return 0;
        }
        match count {
            Rate::Count(n) => (n as usize).min(staged),
            Rate::Percent(p) => (staged * p as usize).div_ceil(100).clamp(1, staged),
        }
    }
}

/// `blue_green:`: how a blue-green deploy switches. nginx listens on `container.publish` and
/// proxies to the live color, a release published on `127.0.0.1:<port>` of its color.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreen {
    /// How long the old color keeps serving the requests it has after the switch, before it
    /// is stopped.
    #[serde(with = "secs")]
    pub drain: Duration,
    /// How long the new color is probed through nginx after the switch; a failure switches
    /// back to the old color (still running).
    #[serde(with = "secs")]
    pub post_switch_check: Duration,
    /// Install nginx on a host that lacks it (otherwise its absence fails the deploy).
    pub install_proxy: bool,
    /// The loopback ports of the two colors, `[blue, green]`.
    pub ports: [u16; 2],
    /// The HTTP contract nginx gives the app.
    #[serde(default)]
    pub proxy: Proxy,
}

/// `blue_green.proxy:`: what nginx lets through to the app. The defaults are what a port of
/// the app's own would give: no body limit, idle connections (`WebSockets`, server-sent events,
/// long polls) kept for an hour, IPv6 as well as IPv4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proxy {
    /// The largest request body nginx passes on, in bytes (`None`: no limit).
    pub max_body: Option<u64>,
    /// How long a request may wait for the app, or a response for the client, with nothing
    /// sent either way (nginx's read, send and client send timeouts).
    #[serde(with = "secs")]
    pub read_timeout: Duration,
    /// Whether nginx also listens on IPv6 (`[::]:<publish>`) on hosts that have IPv6.
    pub ipv6: bool,
}

impl Proxy {
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(3600);
    pub const MIN_READ_TIMEOUT: Duration = Duration::from_secs(1);
    pub const MAX_READ_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    /// The largest `max_body` (1024g), far beyond any upload nginx would buffer.
    pub const MAX_BODY: u64 = 1 << 40;
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy {
            max_body: None,
            read_timeout: Self::DEFAULT_READ_TIMEOUT,
            ipv6: true,
        }
    }
}

impl BlueGreen {
    pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);
    pub const MAX_DRAIN: Duration = Duration::from_secs(600);
    pub const DEFAULT_POST_SWITCH_CHECK: Duration = Duration::from_secs(10);
    pub const MIN_POST_SWITCH_CHECK: Duration = Duration::from_secs(1);
    pub const MAX_POST_SWITCH_CHECK: Duration = Duration::from_secs(600);
    /// What the default ports add to `container.publish`: blue, then green.
    pub const PORT_OFFSETS: [u16; 2] = [10000, 20000];

    /// The default `[blue, green]` ports for nginx listening on `publish`: `publish + 10000`
    /// and `publish + 20000`, when both are valid ports.
    pub fn default_ports(publish: u16) -> Option<[u16; 2]> {
        let [blue, green] = Self::PORT_OFFSETS;
        Some([publish.checked_add(blue)?, publish.checked_add(green)?])
    }

    /// Drain plus post-switch check: the time a switch adds to a host's run.
    pub fn switch_time(&self) -> Duration {
        self.drain.saturating_add(self.post_switch_check)
    }

    /// The nginx file that routes the app's listen port to its live color.
    pub fn nginx_conf(app: &str) -> String {
        format!("/etc/nginx/conf.d/hoist-{app}.conf")
    }
}

/// Durations serialize as whole seconds (`"30s"`), the same form the config accepts.
pub mod secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&crate::config::duration::format(*d))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        crate::config::duration::parse(&text).map_err(serde::de::Error::custom)
    }
}
