//! The plan: a pure function of (config, revision, options, resolved inputs) to data.
//!
//! `hoist plan` prints it; `hoist deploy` executes it. Nothing here does I/O, so the same
//! inputs always give byte-identical output, and the script a host runs is the one shown.

mod container;
pub mod doctor;
mod header;
pub mod live;
mod maintenance;
mod readable;
mod render;
pub mod review;
pub mod script;
mod strategy;
mod warnings;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{BlueGreen, Config, Rate, SecretTier, Strategy};
use crate::domain::Revision;
use script::Script;
use strategy::PhaseInputs;

pub use crate::domain::{
    LockSpec, Phase, PhaseTargets, PhaseWhen, RepositoryTag, RolloutPolicy, Step, StepKind,
    TransportKind, is_content_addressed, is_release_id, secret_parameter,
};
pub use container::ContainerPlan;
use header::header_params;
pub(crate) use header::{blue_green_params, secs};
pub use maintenance::{
    LOGS_MAX_BYTES, LogsRequest, exec_phase, logs_phase, remove_phase, rollback_phase,
    rollback_script, status_phase, status_script,
};
pub use render::Format;
pub(crate) use render::{longest_run, md_code, md_text};
pub use strategy::stage_only;

/// The JSON schema identifier; bump on any incompatible change to the serialized plan.
pub const SCHEMA: &str = "hoist.plan/v6";

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
    /// The checkout's tree and build context (a reviewed plan binds its source by them);
    /// `None` where nothing was read (unit tests).
    pub source: Option<crate::domain::SourceDigest>,
    /// `--against-live`: each target's live state and the fleet lock's holder, as read.
    pub live: Option<live::LiveInputs>,
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
            source: None,
            live: None,
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
    /// The environment the deploy is for (`--environment`, `environment:`): it scopes the
    /// lock's and the secret parameter's names. Absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The sha256 of the decoded config (every setting, defaults filled in, as JSON): a
    /// reviewed plan applies only with the config it was made from.
    pub config_sha256: String,
    pub release: String,
    pub revision: Revision,
    /// The checkout's git tree and build-context digest: what a reviewed plan is bound by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::domain::SourceDigest>,
    pub strategy: Strategy,
    /// How the release's container runs (ports, restart policy, `docker create` options).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerPlan>,
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
    /// `--against-live`: what the deploy would change on each target, against what runs
    /// there now (and, saved for review, what `deploy --plan` must still find there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<live::LivePlan>,
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
    /// What nginx lets through: the body limit, the idle timeout, IPv6.
    #[serde(default)]
    pub proxy: crate::config::Proxy,
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
            proxy: bg.proxy.clone(),
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

    /// The check-hosts step's phase: what every target must have before anything changes.
    pub fn host_check(&self) -> Option<&Phase> {
        self.steps.iter().find_map(|s| match s {
            Step::CheckHosts { phase, .. } => Some(phase),
            _ => None,
        })
    }

    /// Every phase the plan runs on hosts, the check-hosts step's first.
    pub fn all_phases(&self) -> impl Iterator<Item = &Phase> {
        self.host_check().into_iter().chain(self.phases())
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
    #[error(
        "no git commit to name the release after: give --release ID (or an --image pinned \
         by its digest, `…@sha256:…`, whose first 12 hex digits name it)"
    )]
    NoRelease,
    #[error(transparent)]
    TooLarge(#[from] crate::domain::carry::TooLarge),
    #[error(
        "phase {phase}: {targets} target(s) at max concurrency {concurrency} take {waves} \
         wave(s) in one SSM command, each up to the phase's timeout ({budget}): the command \
         would need an SSM timeout of {needed}, past SSM's largest (30 days); raise \
         targets.max_concurrency or shorten the phase's timeouts"
    )]
    RolloutTooLong {
        phase: String,
        targets: usize,
        concurrency: crate::config::Rate,
        waves: usize,
        budget: String,
        needed: String,
    },
}

/// Past this, a rollout outlives a GitHub-hosted job (stopped after 6 hours).
const LONG_ROLLOUT: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Over SSM, with the targets known: refuses a phase whose waves need a command timeout SSM
/// does not take, and warns when the whole rollout may outlast a CI job.
fn check_durations(
    phases: &[Phase],
    targets: usize,
    warnings: &mut Vec<String>,
) -> Result<(), PlanError> {
    use crate::domain::waves::{Spread, too_long};
    let format = crate::config::duration::format;
    let mut total = std::time::Duration::ZERO;
    for phase in phases {
        let spread = Spread::of(phase.policy.max_concurrency, targets);
        if let Some(needed) = too_long(&spread, phase.timeout) {
            return Err(PlanError::RolloutTooLong {
                phase: phase.name.clone(),
                targets,
                concurrency: phase.policy.max_concurrency,
                waves: spread.waves.iter().copied().max().unwrap_or(0),
                budget: format(phase.timeout),
                needed: format(needed),
            });
        }
        total += spread.worst_case(phase.timeout);
    }
    if total > LONG_ROLLOUT {
        warnings.push(format!(
            "with every host using its whole timeout, this rollout takes up to {} over {targets} \
             target(s): longer than a GitHub-hosted job may run (6 h); a runner stopped \
             mid-rollout leaves its SSM commands running (the lock names them); raise \
             targets.max_concurrency or shorten the timeouts",
            format(total)
        ));
    }
    Ok(())
}

/// Builds the plan. Pure: no clock, no environment, no file system.
pub fn build(config: &Config, inputs: &Inputs) -> Result<Plan, PlanError> {
    let release = match &inputs.release {
        Some(r) if is_release_id(r) => r.clone(),
        Some(r) => return Err(PlanError::BadRelease(r.clone())),
        None if inputs.revision.is_known() => inputs.revision.release_id(),
        None => inputs
            .prebuilt
            .as_deref()
            .and_then(crate::domain::revision::image_release_id)
            .ok_or(PlanError::NoRelease)?,
    };
    let mut warnings = Vec::new();
    if inputs.revision.dirty {
        warnings.push(format!(
            "the build context has uncommitted changes: the image is not exactly commit {} \
             (release {release})",
            short(&inputs.revision.sha)
        ));
    }

    let tags = if config.image.tags.is_empty() && !inputs.revision.is_known() {
        vec![release.clone()]
    } else if config.image.tags.is_empty() {
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

    warnings.extend(warnings::of_config(config, inputs));

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
    if inputs.revision.is_known() {
        labels.insert(
            crate::domain::REVISION_LABEL.to_owned(),
            inputs.revision.sha.clone(),
        );
    }
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
    if let (TransportKind::Ssm, Some(ids)) = (inputs.transport, &inputs.instances) {
        check_durations(&phases, ids.len(), &mut warnings)?;
    }

    // Before anything changes: every target has what the scripts need.
    let mut steps = vec![Step::CheckHosts {
        checks: doctor::checks(config, inputs.transport, doctor::CheckSet::Deploy)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        phase: doctor::doctor_phase(
            config,
            inputs.transport,
            doctor::CheckSet::Deploy,
            inputs.region.as_deref().or(config.region.as_deref()),
        )?,
    }];
    if inputs.prebuilt.is_none() {
        let ssm = inputs.transport == TransportKind::Ssm;
        if ssm {
            steps.push(Step::EnsureRepository {
                repository: config.image.repository.clone(),
                immutable_tags: config.image.immutable_tags,
                scan_on_push: config.image.scan_on_push,
            });
        }
        // Tags named after a clean commit: the digest hoist recorded pushing may be reused.
        let commit_tagged =
            config.image.tags.is_empty() && !inputs.revision.dirty && inputs.revision.is_known();
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
                record: crate::domain::image_record_parameter(
                    &config.app,
                    config.environment.as_deref(),
                    &inputs.revision.sha,
                ),
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

    let mut plan = Plan {
        schema: SCHEMA.to_owned(),
        run: inputs.run.clone(),
        hoist_version: inputs.hoist_version.clone(),
        app: config.app.clone(),
        environment: config.environment.clone(),
        config_sha256: config_sha256(config),
        release,
        revision: inputs.revision.clone(),
        source: inputs.source.clone(),
        strategy: config.strategy,
        container: Some(ContainerPlan::of(config, header::run_opts(config))),
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
        live: None,
    };
    plan.live = inputs
        .live
        .as_ref()
        .map(|found| live::compare(&plan, config, found));
    Ok(plan)
}

/// The sha256 of `config` as JSON: what a reviewed plan binds its config by. Comments and
/// formatting of the file do not count; every value, defaulted or not, does.
pub fn config_sha256(config: &Config) -> String {
    crate::plan::script::sha256_hex(&serde_json::to_vec(config).expect("a config serializes"))
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
mod tests;
