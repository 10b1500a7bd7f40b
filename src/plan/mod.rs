//! The plan: a pure function of (config, revision, options, resolved inputs) to data.
//!
//! `hoist plan` prints it; `hoist deploy` executes it. Nothing here does I/O, so the same
//! inputs always give byte-identical output, and the script a host runs is the one shown.

mod maintenance;
mod render;
pub mod review;
pub mod script;
mod strategy;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{BlueGreen, Config, Rate, SecretSource, SecretTier, Strategy};
use crate::domain::Revision;
use script::{Param, Script};
use strategy::PhaseInputs;

pub use crate::domain::{
    LockSpec, Phase, PhaseTargets, PhaseWhen, RepositoryTag, RolloutPolicy, Step, StepKind,
    TransportKind, is_content_addressed, is_release_id, secret_parameter, secret_parameter_root,
};
pub use maintenance::{rollback_phase, rollback_script, status_phase, status_script};
pub use render::Format;
pub(crate) use render::{longest_run, md_code, md_text};
pub use strategy::stage_only;

/// The JSON schema identifier; bump on any incompatible change to the serialized plan.
pub const SCHEMA: &str = "hoist.plan/v5";

/// Inputs resolved outside the plan (git, the image build, the CLI).
#[derive(Debug, Clone)]
pub struct Inputs {
    pub revision: Revision,
    /// `--release`: overrides the release id derived from the revision.
    pub release: Option<String>,
    pub transport: TransportKind,
    /// What hosts run, once known: the built (or `--image`) image's id (`sha256:…`, local
    /// transport), `registry/repository@sha256:…` after the push or a digest lookup, or an
    /// `--image` tag hoist could not resolve to a digest (not pinned: hosts pull it every
    /// time). `None` while only planning.
    pub image_id: Option<String>,
    /// The registry hosts pull from (the account's ECR host), once known; hosts log in to it
    /// with their own role. `None` for local deploys and images that need no login.
    pub registry: Option<String>,
    /// `--image URI`: deploy this existing image; the plan has no build and no push.
    pub prebuilt: Option<String>,
    /// The instance ids SSM resolved the targets to, when hoist asked (deploy, or
    /// `plan --resolve-targets`); `None` offline.
    pub instances: Option<Vec<String>>,
    /// The deploy run's id (`20261126T001500Z-1a2b3c4d`), once a deploy is under way: it
    /// names the run's secret parameter. `None` while only planning.
    pub run: Option<String>,
    /// `deploy --force`: replace a release that already runs with the same image and
    /// configuration (otherwise such a host reports `unchanged` and is left alone).
    pub force: bool,
    /// The AWS region hosts' own AWS calls use ([`crate::aws::region`]): the config's, else
    /// the one the SDK resolved. `None`: none is known (an offline plan on a machine with no
    /// region configured).
    pub region: Option<String>,
    pub hoist_version: String,
}

impl Inputs {
    /// What is known before anything is resolved: the revision and the transport (no
    /// image, no registry, no instances, no run), for this hoist's version.
    pub fn new(revision: Revision, transport: TransportKind) -> Inputs {
        Inputs {
            revision,
            release: None,
            transport,
            image_id: None,
            registry: None,
            prebuilt: None,
            instances: None,
            run: None,
            force: false,
            region: None,
            hoist_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// How a phase spreads over the config's targets.
pub fn rollout_policy(config: &Config) -> RolloutPolicy {
    RolloutPolicy {
        max_concurrency: config.targets.max_concurrency,
        max_errors: config.targets.max_errors,
    }
}

/// One host's budget for a switch: pull, stop, health gate, the strategy's own switch
/// (blue-green's post-switch check and drain) and slack for prune. A decoded config keeps it
/// within SSM's 48 h; any other is clamped to it (checked sums, no overflow).
pub fn switch_timeout(config: &Config) -> std::time::Duration {
    crate::config::duration::run_budget(
        config.healthcheck.timeout,
        config.healthcheck.start_period,
        config.container.stop_timeout,
        config.switch_time(),
    )
    .unwrap_or(crate::config::duration::MAX)
}

/// The targets in words: `this machine`, or the config's instance ids and tag filters.
pub fn describe_on(config: &Config, transport: TransportKind) -> String {
    match transport {
        TransportKind::Local => "this machine".to_owned(),
        TransportKind::Ssm => describe_targets(config),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// [`SCHEMA`]: a plan of another schema is not read back.
    pub schema: String,
    /// The deploy run this plan was made for (it names the run's secret parameter); absent
    /// in a plan made for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub hoist_version: String,
    pub app: String,
    /// The sha256 of the decoded config (every setting, defaults filled in, as JSON): a
    /// reviewed plan applies only with the config it was made from.
    pub config_sha256: String,
    pub release: String,
    pub revision: Revision,
    pub strategy: Strategy,
    /// With the blue-green strategy: the proxy and the colors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenPlan>,
    pub transport: TransportKind,
    pub image: ImagePlan,
    pub targets: TargetsPlan,
    pub env: EnvPlan,
    /// Over SSM: the fleet-wide lock a deploy takes before anything changes (the local
    /// transport has each host's lock only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<crate::domain::LockSpec>,
    /// What `deploy` executes, in order; each step carries its own inputs.
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
}

/// How a blue-green deploy switches on each host: nginx listens on `listen` and proxies to
/// the live color, a release published on `127.0.0.1:<its port>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueGreenPlan {
    /// The nginx file hoist writes and owns on each host.
    pub nginx_conf: String,
    /// The port nginx listens on (`container.publish`).
    pub listen: u16,
    /// The colors' loopback ports, `[blue, green]`.
    pub ports: [u16; 2],
    /// How long the new color is probed through nginx after the switch.
    #[serde(with = "crate::config::secs")]
    pub post_switch_check: std::time::Duration,
    /// How long the old color keeps serving its requests after the switch.
    #[serde(with = "crate::config::secs")]
    pub drain: std::time::Duration,
    /// Whether a host without nginx gets it installed (otherwise the deploy fails there).
    pub install_proxy: bool,
}

impl BlueGreenPlan {
    fn of(config: &Config, bg: &BlueGreen) -> BlueGreenPlan {
        BlueGreenPlan {
            nginx_conf: BlueGreen::nginx_conf(&config.app),
            listen: config.container.publish.unwrap_or_default(),
            ports: bg.ports,
            post_switch_check: bg.post_switch_check,
            drain: bg.drain,
            install_proxy: bg.install_proxy,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePlan {
    pub repository: String,
    pub tags: Vec<String>,
    /// The name the image is built and tagged under.
    pub name: String,
    /// What hosts run: a digest or image id once known, otherwise the tag.
    pub reference: String,
    /// True when `reference` is content-addressed (cannot change under the deploy).
    pub pinned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetsPlan {
    pub instance_ids: Vec<String>,
    pub tags: BTreeMap<String, Vec<String>>,
    pub max_concurrency: Rate,
    pub max_errors: Rate,
    /// The instances the targets resolved to, when SSM was asked; absent offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Vec<String>>,
}

/// How the secret values from hoist's environment reach the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// There are none.
    None,
    /// On the script's standard input (local transport).
    Stdin,
    /// In a per-run `SecureString` parameter the hosts read with their own role (SSM).
    SsmParameter,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::None => "none",
            Delivery::Stdin => "stdin",
            Delivery::SsmParameter => "ssm-parameter",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvPlan {
    /// Clear values are shown: they are part of the reviewed config.
    pub clear: BTreeMap<String, String>,
    /// Secret names only; values are read from hoist's environment at deploy time and
    /// never appear in a plan, script, log or command.
    pub secret: Vec<String>,
    /// The secrets each host reads itself with its own role (name → `ssm:…` or
    /// `secretsmanager:…[#key]`); the others come from hoist's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, String>,
    /// How the secret values from hoist's environment reach the host.
    pub delivery: Delivery,
    /// With `ssm-parameter`: the parameter's tier (`secrets.tier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<SecretTier>,
    /// With `ssm-parameter`: the `SecureString` parameter that carries them for the deploy's
    /// duration (deleted when it ends).
    pub parameter: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: not a hoist plan: {cause}")]
    Json {
        path: String,
        cause: serde_json::Error,
    },
    #[error("{path}: plan schema `{found}`; this hoist reads `{SCHEMA}` (make the plan again)")]
    Schema { path: String, found: String },
}

impl Plan {
    /// Reads a plan written by `hoist plan --format json` (`path` names it in errors).
    pub fn read(json: &str, path: &str) -> Result<Plan, ReadError> {
        #[derive(Deserialize)]
        struct Head {
            schema: String,
        }
        let json_error = |cause| ReadError::Json {
            path: path.to_owned(),
            cause,
        };
        let head: Head = serde_json::from_str(json).map_err(json_error)?;
        if head.schema != SCHEMA {
            return Err(ReadError::Schema {
                path: path.to_owned(),
                found: head.schema,
            });
        }
        serde_json::from_str(json).map_err(json_error)
    }

    /// The phases the plan runs, in order.
    pub fn phases(&self) -> impl Iterator<Item = &Phase> {
        self.steps.iter().filter_map(|s| match s {
            Step::RunPhase(phase) => Some(phase),
            _ => None,
        })
    }

    /// Every script the plan runs on hosts, in the order its steps run them.
    pub fn scripts(&self) -> Vec<&Script> {
        self.phases().map(|p| &p.script).collect()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("--release `{0}` is not a valid release id (letters, digits, _ . -, at most 64)")]
    BadRelease(String),
    #[error(transparent)]
    TooLarge(#[from] crate::domain::carry::TooLarge),
}

/// Builds the plan. Pure: no clock, no environment, no file system.
pub fn build(config: &Config, inputs: &Inputs) -> Result<Plan, PlanError> {
    let release = match &inputs.release {
        Some(r) if is_release_id(r) => r.clone(),
        Some(r) => return Err(PlanError::BadRelease(r.clone())),
        None => inputs.revision.release_id(),
    };
    let mut warnings = Vec::new();
    if inputs.revision.dirty {
        warnings.push(format!(
            "the build context has uncommitted changes: the image is not exactly commit {} \
             (release {release})",
            short(&inputs.revision.sha)
        ));
    }

    let tags = if config.image.tags.is_empty() {
        vec![inputs.revision.default_tag()]
    } else {
        config.image.tags.clone()
    };
    if tags.iter().any(|t| t == "latest") {
        warnings.push(
            "image tag `latest` is mutable: hosts run the pinned digest, but `latest` in the \
             registry will move"
                .into(),
        );
    }
    let repo_path = match &inputs.registry {
        Some(r) => format!("{r}/{}", config.image.repository),
        None => config.image.repository.clone(),
    };
    let name = match &inputs.prebuilt {
        Some(uri) => uri.clone(),
        None => format!("{repo_path}:{}", tags[0]),
    };
    let (reference, pinned) = match &inputs.image_id {
        Some(id) => (id.clone(), is_content_addressed(id)),
        None => (name.clone(), false),
    };
    // A tag hosts resolve themselves: pulled on every deploy, so that a host that cached an
    // older image under the tag does not keep running it.
    let pull_tag = inputs.transport == TransportKind::Ssm && inputs.image_id.is_some() && !pinned;
    if pull_tag {
        warnings.push(format!(
            "image {reference} is a tag, not a digest: every host pulls it when the deploy \
             runs and gets whatever the tag points to then, which may differ between hosts \
             and from the image you tested; deploy `repository@sha256:…` to pin it"
        ));
    }

    let health = &config.healthcheck;
    if health.path.is_none() {
        warnings.push(
            "no healthcheck.path: hoist uses the image's own HEALTHCHECK if it has one, \
             otherwise only checks that the container keeps running"
                .into(),
        );
    }
    if config.container.publish.is_none() {
        warnings.push(
            "container.publish is not set: the app is reachable only on the Docker network \
             of the host"
                .into(),
        );
    }
    if inputs.transport == TransportKind::Local {
        warnings.push("local transport: `targets` is ignored, this machine is the host".into());
    } else if inputs.region.is_none() && config.region.is_none() {
        warnings.push(
            "no AWS region is known here (`region:` in the config, AWS_REGION or the \
             profile): the hosts' script carries none; a deploy uses the region the SDK \
             resolves, and refuses when there is none"
                .into(),
        );
    }
    if let Some(bg) = &config.blue_green
        && bg.post_switch_check < health.interval
    {
        warnings.push(format!(
            "blue_green.post_switch_check ({}) is shorter than healthcheck.interval ({}): the \
             check after the switch has time for one probe at most",
            crate::config::duration::format(bg.post_switch_check),
            crate::config::duration::format(health.interval)
        ));
    }

    let from_hoist = config.env.from_environment();
    let delivery = match (inputs.transport, from_hoist.is_empty()) {
        (_, true) => Delivery::None,
        (TransportKind::Local, false) => Delivery::Stdin,
        (TransportKind::Ssm, false) => Delivery::SsmParameter,
    };
    let parameter = (delivery == Delivery::SsmParameter)
        .then(|| secret_parameter(config, &release, inputs.run.as_deref()));
    let env = EnvPlan {
        clear: config.env.clear.clone(),
        secret: config.env.secret.clone(),
        sources: config
            .env
            .sources
            .iter()
            .map(|(k, v)| (k.clone(), v.describe()))
            .collect(),
        delivery,
        tier: parameter.as_ref().map(|_| config.secrets.tier),
        parameter,
    };

    let mut labels = BTreeMap::new();
    labels.insert(
        crate::domain::REVISION_LABEL.to_owned(),
        inputs.revision.sha.clone(),
    );
    if let Some(created) = &inputs.revision.committed_at {
        labels.insert(
            "org.opencontainers.image.created".to_owned(),
            created.clone(),
        );
    }
    if let Some(source) = &inputs.revision.source {
        labels.insert("org.opencontainers.image.source".to_owned(), source.clone());
    }
    // Not `hoist.app`/`hoist.release`: containers inherit their image's labels, and those
    // keys (with `hoist.deployed-at`, which only hoist's `docker create` sets) mark releases.
    labels.insert("hoist.build.app".to_owned(), config.app.clone());
    labels.insert("hoist.build.release".to_owned(), release.clone());

    let pull = match inputs.transport {
        TransportKind::Local => "never",
        TransportKind::Ssm if pull_tag => "always",
        TransportKind::Ssm => "if-missing",
    };
    let params = header_params(config, &release, &name, &reference, pull, inputs, &env);
    let strategy = strategy::of(config.strategy);
    let mut phases = strategy.phases(&PhaseInputs {
        config,
        run: inputs.run.as_deref().unwrap_or("<run>"),
        transport: inputs.transport,
        on: describe_on(config, inputs.transport),
        params,
        comment: vec![
            format!(
                "hoist {} — {} deploy of app {} release {}",
                inputs.hoist_version,
                config.strategy.as_str(),
                config.app,
                release
            ),
            format!("source revision {}", inputs.revision.sha),
        ],
        timeout: switch_timeout(config),
        policy: rollout_policy(config),
    });
    // What SSM would refuse is refused here, before anything changes.
    for phase in &mut phases {
        phase.carried = phase.measure().check(&phase.script)?;
    }

    let mut steps = Vec::new();
    if inputs.prebuilt.is_none() {
        let ssm = inputs.transport == TransportKind::Ssm;
        if ssm {
            steps.push(Step::EnsureRepository {
                repository: config.image.repository.clone(),
                immutable_tags: config.image.immutable_tags,
                scan_on_push: config.image.scan_on_push,
            });
        }
        // Tags named after a clean commit: a registry that holds the tag holds its image.
        let commit_tagged = config.image.tags.is_empty() && !inputs.revision.dirty;
        steps.push(Step::Build {
            builder: config.image.builder,
            context: config.image.context.display().to_string(),
            dockerfile: config.image.dockerfile.clone(),
            target: config.image.target.clone(),
            platform: config.image.platform.clone(),
            build_args: config.image.build_args.clone(),
            labels,
            tags: tags
                .iter()
                .map(|t| format!("{}:{t}", config.image.repository))
                .collect(),
            reuse: (ssm && commit_tagged).then(|| RepositoryTag {
                repository: config.image.repository.clone(),
                tag: tags[0].clone(),
            }),
        });
        if ssm {
            steps.push(Step::Push {
                repository: config.image.repository.clone(),
                registry: inputs.registry.clone(),
                tags: tags.clone(),
            });
        }
    }
    if let (Some(name), Some(tier)) = (&env.parameter, env.tier) {
        steps.push(Step::PutSecretParameter {
            name: name.clone(),
            tier,
            names: from_hoist.clone(),
        });
    }
    // The secret parameter goes as soon as the last phase that reads it has ended (a
    // two-phase rollout's stage: its switch reads none).
    let last_reader = phases.iter().rposition(|p| p.reads_secrets);
    for (i, phase) in phases.into_iter().enumerate() {
        steps.push(Step::RunPhase(phase));
        if let (Some(name), Some(true)) = (&env.parameter, last_reader.map(|r| r == i)) {
            steps.push(Step::DeleteSecretParameter { name: name.clone() });
        }
    }
    if let (Some(name), None) = (&env.parameter, last_reader) {
        steps.push(Step::DeleteSecretParameter { name: name.clone() });
    }

    Ok(Plan {
        schema: SCHEMA.to_owned(),
        run: inputs.run.clone(),
        hoist_version: inputs.hoist_version.clone(),
        app: config.app.clone(),
        config_sha256: config_sha256(config),
        release,
        revision: inputs.revision.clone(),
        strategy: config.strategy,
        blue_green: config
            .blue_green
            .as_ref()
            .map(|bg| BlueGreenPlan::of(config, bg)),
        transport: inputs.transport,
        image: ImagePlan {
            repository: config.image.repository.clone(),
            tags,
            name,
            reference,
            pinned,
        },
        targets: TargetsPlan {
            instance_ids: config.targets.instance_ids.clone(),
            tags: config.targets.tags.clone(),
            max_concurrency: config.targets.max_concurrency,
            max_errors: config.targets.max_errors,
            resolved: inputs.instances.clone(),
        },
        env,
        lock: (inputs.transport == TransportKind::Ssm).then(|| crate::domain::LockSpec::of(config)),
        steps,
        warnings,
    })
}

/// The sha256 of `config` as JSON: what a reviewed plan binds its config by. Comments and
/// formatting of the file do not count; every value, defaulted or not, does.
pub fn config_sha256(config: &Config) -> String {
    crate::plan::script::sha256_hex(&serde_json::to_vec(config).expect("a config serializes"))
}

fn header_params(
    config: &Config,
    release: &str,
    image_name: &str,
    reference: &str,
    pull: &str,
    inputs: &Inputs,
    env: &EnvPlan,
) -> Vec<(&'static str, Param)> {
    let c = &config.container;
    let h = &config.healthcheck;
    let mut run_opts: Vec<String> = Vec::new();
    if let Some(m) = &c.memory {
        run_opts.extend(["--memory".into(), m.clone()]);
    }
    if let Some(cpus) = &c.cpus {
        run_opts.extend(["--cpus".into(), cpus.clone()]);
    }
    run_opts.extend([
        "--stop-timeout".into(),
        c.stop_timeout.as_secs().to_string(),
    ]);
    if c.init {
        run_opts.push("--init".into());
    }
    for v in &c.volumes {
        run_opts.extend(["--volume".into(), v.clone()]);
    }
    for (k, v) in &c.labels {
        run_opts.extend(["--label".into(), format!("{k}={v}")]);
    }
    let mut params = vec![
        ("HOIST_APP", config.app.as_str().into()),
        ("HOIST_RELEASE", release.into()),
        ("HOIST_IMAGE", reference.into()),
        ("HOIST_IMAGE_LABEL", image_name.into()),
        ("HOIST_PULL", pull.into()),
        ("HOIST_CONTAINER_PORT", c.port.to_string().into()),
        (
            "HOIST_PUBLISH",
            c.publish.map(|p| p.to_string()).unwrap_or_default().into(),
        ),
        ("HOIST_RUN_OPTS", run_opts.into()),
        ("HOIST_RESTART", c.restart.clone().into()),
        ("HOIST_COMMAND", c.command.clone().into()),
        (
            "HOIST_STOP_TIMEOUT",
            c.stop_timeout.as_secs().to_string().into(),
        ),
        (
            "HOIST_HEALTH_PATH",
            h.path.clone().unwrap_or_default().into(),
        ),
        ("HOIST_HEALTH_STATUS", h.expect_status.to_string().into()),
        ("HOIST_HEALTH_INTERVAL", secs(h.interval).into()),
        ("HOIST_HEALTH_TIMEOUT", secs(h.timeout).into()),
        (
            "HOIST_HEALTH_START_PERIOD",
            h.start_period.as_secs().to_string().into(),
        ),
        ("HOIST_HEALTH_CONSECUTIVE", h.consecutive.to_string().into()),
        (
            "HOIST_ENV_CLEAR",
            env.clear
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .into(),
        ),
        ("HOIST_ENV_SECRETS", config.env.from_environment().into()),
        (
            "HOIST_HOST_SECRETS",
            config
                .env
                .sources
                .iter()
                .map(|(name, source)| match source {
                    SecretSource::Ssm(p) => format!("{name}|ssm|{p}|"),
                    SecretSource::SecretsManager { secret, key } => format!(
                        "{name}|secretsmanager|{secret}|{}",
                        key.as_deref().unwrap_or_default()
                    ),
                })
                .collect::<Vec<_>>()
                .into(),
        ),
        ("HOIST_ENV_SOURCE", env.delivery.as_str().into()),
        ("HOIST_RETAIN", config.retain.to_string().into()),
        (
            "HOIST_SECRET_PARAMETER",
            env.parameter.clone().unwrap_or_default().into(),
        ),
        (
            "HOIST_REGION",
            inputs
                .region
                .as_ref()
                .or(config.region.as_ref())
                .cloned()
                .unwrap_or_default()
                .into(),
        ),
        (
            "HOIST_REGISTRY",
            inputs.registry.clone().unwrap_or_default().into(),
        ),
        (
            "HOIST_FORCE",
            if inputs.force { "true" } else { "false" }.into(),
        ),
        ("HOIST_RUN_DIR", "/run/hoist".into()),
        ("HOIST_STATE_DIR", "/var/lib/hoist".into()),
    ];
    params.extend(blue_green_params(config));
    params
}

/// Seconds for a header: rounded down, but never to 0 for a non-zero duration.
pub(crate) fn secs(d: std::time::Duration) -> String {
    d.as_secs().max(u64::from(!d.is_zero())).to_string()
}

/// The blue-green parameters of a deploy's, a status's and a rollback's header (none for
/// another strategy): the colors' loopback ports `(blue green)`, the drain and post-switch
/// check in seconds, whether to install nginx, and the nginx file hoist owns.
pub(crate) fn blue_green_params(config: &Config) -> Vec<(&'static str, Param)> {
    let Some(bg) = &config.blue_green else {
        return Vec::new();
    };
    vec![
        (
            "HOIST_BG_PORTS",
            bg.ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .into(),
        ),
        ("HOIST_BG_DRAIN", secs(bg.drain).into()),
        (
            "HOIST_BG_POST_SWITCH_CHECK",
            secs(bg.post_switch_check).into(),
        ),
        (
            "HOIST_BG_INSTALL_PROXY",
            if bg.install_proxy { "true" } else { "false" }.into(),
        ),
        (
            "HOIST_NGINX_CONF",
            BlueGreen::nginx_conf(&config.app).into(),
        ),
    ]
}

fn describe_targets(config: &Config) -> String {
    let mut parts = Vec::new();
    if !config.targets.instance_ids.is_empty() {
        parts.push(config.targets.instance_ids.join(", "));
    }
    for (k, vs) in &config.targets.tags {
        parts.push(format!("instances tagged {k}={}", vs.join("|")));
    }
    parts.join(" and ")
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

    fn config() -> Config {
        let yaml = "app: web\nimage:\n  repository: web\ntargets:\n  tags:\n    Env: [prod]\n\
                    container:\n  port: 8080\n";
        crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap()
    }

    fn inputs(transport: TransportKind, prebuilt: &str, image_id: Option<&str>) -> Inputs {
        Inputs {
            image_id: image_id.map(str::to_owned),
            prebuilt: Some(prebuilt.to_owned()),
            ..Inputs::new(
                Revision::clean("0123456789abcdef0123456789abcdef01234567"),
                transport,
            )
        }
    }

    fn pull_of(plan: &Plan) -> &str {
        let line = plan.scripts()[0]
            .text
            .lines()
            .find(|l| l.starts_with("HOIST_PULL="))
            .expect("the header sets HOIST_PULL");
        line.trim_start_matches("HOIST_PULL=").trim_matches('\'')
    }

    fn header(plan: &Plan) -> Vec<&str> {
        plan.scripts()[0]
            .text
            .lines()
            .skip_while(|l| !l.starts_with("HOIST_"))
            .take_while(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn every_deploy_header_has_the_gates_consecutive_successes() {
        let plan = build(
            &config(),
            &inputs(TransportKind::Local, "web:1", Some(DIGEST)),
        )
        .unwrap();
        let header = header(&plan);
        assert!(
            header.contains(&"HOIST_HEALTH_CONSECUTIVE='1'"),
            "{header:?}"
        );
        assert!(
            !header.iter().any(|l| l.starts_with("HOIST_BG_")),
            "{header:?}"
        );
        assert!(plan.blue_green.is_none());
    }

    #[test]
    fn a_blue_green_plan_gets_its_parameters_timeout_and_section() {
        let yaml = "app: web\ntargets:\n  tags:\n    Env: [prod]\n\
                    container:\n  publish: 8080\nstrategy: blue-green\n\
                    healthcheck:\n  interval: 20s\n\
                    blue_green:\n  drain: 1500ms\n  post_switch_check: 15s\n";
        let config = crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
        let plan = build(&config, &inputs(TransportKind::Ssm, "web:1", Some(DIGEST))).unwrap();
        let header = header(&plan);
        assert_eq!(
            header[header.len() - 6..],
            [
                "HOIST_BG_PORTS=('18080' '28080')",
                "HOIST_BG_DRAIN='1'",
                "HOIST_BG_POST_SWITCH_CHECK='15'",
                "HOIST_BG_INSTALL_PROXY='false'",
                "HOIST_NGINX_CONF='/etc/nginx/conf.d/hoist-web.conf'",
                "HOIST_RUN='<run>'",
            ]
        );
        assert!(header.contains(&"HOIST_PUBLISH='8080'"));
        // 60s gate + 10s stop + 1.5s drain + 15s check + 10m slack.
        let phase = plan.phases().next().unwrap();
        assert_eq!(phase.timeout, std::time::Duration::from_millis(686_500));
        assert_eq!(phase.script.body, "bg-stage.sh");
        assert_eq!(
            plan.blue_green,
            Some(BlueGreenPlan {
                nginx_conf: "/etc/nginx/conf.d/hoist-web.conf".into(),
                listen: 8080,
                ports: [18080, 28080],
                post_switch_check: std::time::Duration::from_secs(15),
                drain: std::time::Duration::from_millis(1500),
                install_proxy: false,
            })
        );
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains("post_switch_check (15s) is shorter than")),
            "{:?}",
            plan.warnings
        );
        let text = plan.render(Format::Text);
        assert!(
            text.contains(
                "  proxy     nginx on port 8080 (/etc/nginx/conf.d/hoist-web.conf) -> blue \
                 127.0.0.1:18080, green 127.0.0.1:28080; post-switch check 15s, drain \
                 1500ms; hosts must have nginx\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_ssm_plan_shows_the_fleet_lock_and_a_local_one_has_none() {
        let yaml = "app: web\ntargets:\n  tags:\n    Env: [prod]\nlock:\n  lease: 2m\n";
        let config = crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
        let plan = build(&config, &inputs(TransportKind::Ssm, "web:1", Some(DIGEST))).unwrap();
        let lock = plan
            .lock
            .clone()
            .expect("over SSM a deploy takes the fleet lock");
        assert_eq!(lock.parameter, crate::domain::lock_parameter(&config));
        assert!(lock.parameter.starts_with("/hoist/web/lock/"));
        assert_eq!(lock.lease, std::time::Duration::from_secs(120));
        let text = plan.render(Format::Text);
        assert!(
            text.contains(&format!("  lock      {} (lease 2m,", lock.parameter)),
            "{text}"
        );
        let markdown = plan.render(Format::Markdown);
        assert!(
            markdown.contains("| lock | `/hoist/web/lock/"),
            "{markdown}"
        );
        let json = plan.render(Format::Json);
        assert_eq!(Plan::read(&json, "plan.json").unwrap(), plan, "reads back");
        let local = build(
            &config,
            &inputs(TransportKind::Local, "web:1", Some(DIGEST)),
        )
        .unwrap();
        assert!(local.lock.is_none());
        assert!(!local.render(Format::Text).contains("  lock "));
    }

    #[test]
    fn only_digests_and_image_ids_are_content_addressed() {
        assert!(is_content_addressed(DIGEST));
        assert!(is_content_addressed(&format!(
            "r.example.com/team/web@{DIGEST}"
        )));
        assert!(!is_content_addressed("r.example.com/team/web:v1"));
        assert!(!is_content_addressed("web:latest"));
        assert!(!is_content_addressed("r.example.com/web@sha256:abc"));
    }

    #[test]
    fn a_foreign_tag_over_ssm_is_unpinned_pulled_always_and_warned_about() {
        let uri = "r.example.com/team/web:v1";
        let plan = build(&config(), &inputs(TransportKind::Ssm, uri, Some(uri))).unwrap();
        assert!(!plan.image.pinned, "a tag can move under the deploy");
        assert_eq!(plan.image.reference, uri);
        assert_eq!(
            pull_of(&plan),
            "always",
            "a host's cached copy of the tag may be stale"
        );
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains(uri) && w.contains("pulls it")),
            "{:?}",
            plan.warnings
        );
        let text = plan.render(Format::Text);
        assert!(text.contains("a tag, not pinned"), "{text}");
        assert!(!text.contains("pinned once built"), "{text}");
    }

    #[test]
    fn a_foreign_digest_over_ssm_is_pinned_and_pulled_only_when_missing() {
        let uri = format!("r.example.com/team/web@{DIGEST}");
        let plan = build(&config(), &inputs(TransportKind::Ssm, &uri, Some(&uri))).unwrap();
        assert!(plan.image.pinned);
        assert_eq!(pull_of(&plan), "if-missing");
        assert!(!plan.warnings.iter().any(|w| w.contains("pulls it")));
    }

    #[test]
    fn a_local_image_resolved_to_its_id_is_pinned_and_shows_name_and_id() {
        let plan = build(
            &config(),
            &inputs(TransportKind::Local, "web:stable", Some(DIGEST)),
        )
        .unwrap();
        assert!(plan.image.pinned);
        assert_eq!(plan.image.name, "web:stable");
        assert_eq!(plan.image.reference, DIGEST);
        assert_eq!(pull_of(&plan), "never");
        let text = plan.render(Format::Text);
        assert!(
            text.contains("web:stable") && text.contains(DIGEST),
            "{text}"
        );
    }
}
