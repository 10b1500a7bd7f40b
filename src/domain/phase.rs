//! The steps of a plan: what `deploy` executes, in order, each with its own inputs.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::carry::Carried;
use super::script::Script;
use crate::config::{Builder, Rate, SecretTier};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Step {
    /// Check, on every target at once, that the host has what the deploy's scripts need
    /// (tools, the engine, nginx, a tmpfs): read-only, run beside the publishing steps, and
    /// the deploy stops before any host changes when a target fails a check.
    CheckHosts {
        /// What the script checks, by name (`doctor.sh`'s checks).
        checks: Vec<String>,
        phase: Phase,
    },
    /// Make sure the ECR repository exists; create it with these settings when it does not
    /// (an existing repository keeps its own).
    EnsureRepository {
        repository: String,
        immutable_tags: bool,
        scan_on_push: bool,
    },
    /// Build the image with the Docker engine hoist talks to.
    Build {
        builder: Builder,
        context: String,
        dockerfile: String,
        target: Option<String>,
        platform: Option<String>,
        build_args: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        tags: Vec<String>,
        /// When this tag still holds the digest hoist recorded when it pushed this commit's
        /// image, the build (and the push) are skipped and that digest is deployed; a tag
        /// that holds another digest is refused; without a record hoist builds, pushes and
        /// records. Set only for tags named after a clean commit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reuse: Option<RepositoryTag>,
    },
    /// Push the built image to the registry (ECR) under each tag a tag does not already
    /// hold.
    Push {
        repository: String,
        /// The registry host, when known (the account's ECR registry, at deploy time).
        registry: Option<String>,
        tags: Vec<String>,
    },
    /// Put the secret values from hoist's environment in a `SecureString` parameter that
    /// only this run's hosts read (values never appear in a plan).
    PutSecretParameter {
        name: String,
        tier: SecretTier,
        /// The variables it carries (names only).
        names: Vec<String>,
    },
    /// Run one phase's script on its targets through the transport.
    RunPhase(Phase),
    /// Delete the run's secret parameter. Runs however the phases ended, and as soon as a
    /// deploy is cancelled.
    DeleteSecretParameter { name: String },
}

impl Step {
    /// The step's kind, as the JSON plan names it.
    pub fn kind(&self) -> StepKind {
        match self {
            Step::CheckHosts { .. } => StepKind::CheckHosts,
            Step::EnsureRepository { .. } => StepKind::EnsureRepository,
            Step::Build { .. } => StepKind::Build,
            Step::Push { .. } => StepKind::Push,
            Step::PutSecretParameter { .. } => StepKind::PutSecretParameter,
            Step::RunPhase(_) => StepKind::RunPhase,
            Step::DeleteSecretParameter { .. } => StepKind::DeleteSecretParameter,
        }
    }

    /// Steps that run before any host is changed: the host checks and the publishing steps.
    pub fn precedes_hosts(&self) -> bool {
        matches!(self, Step::CheckHosts { .. }) || self.publishes()
    }

    /// Steps that make the image exist (before any host is touched).
    pub fn publishes(&self) -> bool {
        matches!(
            self,
            Step::EnsureRepository { .. } | Step::Build { .. } | Step::Push { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    CheckHosts,
    EnsureRepository,
    Build,
    Push,
    PutSecretParameter,
    RunPhase,
    DeleteSecretParameter,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::CheckHosts => "check-hosts",
            StepKind::EnsureRepository => "ensure-repository",
            StepKind::Build => "build",
            StepKind::Push => "push",
            StepKind::PutSecretParameter => "put-secret-parameter",
            StepKind::RunPhase => "run-phase",
            StepKind::DeleteSecretParameter => "delete-secret-parameter",
        }
    }
}

/// A tag in a repository of the account's registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryTag {
    pub repository: String,
    pub tag: String,
    /// The parameter where hoist records the digest it pushed under the tag
    /// ([`super::names::image_record_parameter`]): only that digest is ever reused.
    pub record: String,
}

/// One script run on a set of targets, with its own timeout and rollout policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// The phase's name within its strategy (`deploy`; `stage`, `switch` and `discard` for
    /// a two-phase rollout).
    pub name: String,
    pub transport: TransportKind,
    /// The targets, in words (`instances tagged Env=prod`, `this machine`).
    pub on: String,
    pub targets: PhaseTargets,
    /// Whether it runs at all, given how an earlier phase went.
    #[serde(default, skip_serializing_if = "PhaseWhen::is_always")]
    pub when: PhaseWhen,
    /// Whether its script reads the run's secrets (writes an env file for `docker create`):
    /// only such a phase gets them, and the run's secret parameter is deleted once the last
    /// such phase has ended.
    pub reads_secrets: bool,
    pub policy: RolloutPolicy,
    /// Hard limit for one host's run of the script.
    #[serde(with = "crate::config::secs")]
    pub timeout: Duration,
    /// Exactly the bytes each host runs.
    pub script: Script,
    /// What the transport carries for the script ([`Phase::measure`]), filled in when the
    /// plan is built.
    #[serde(default)]
    pub carried: Carried,
}

impl Phase {
    /// What the phase's transport carries for its script.
    pub fn measure(&self) -> Carried {
        match self.transport {
            TransportKind::Local => Carried::local(&self.script),
            TransportKind::Ssm => Carried::ssm(&self.script, self.timeout),
        }
    }
}

/// Which targets a phase runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseTargets {
    /// Every target the deploy resolved.
    All,
    /// The targets where the named earlier phase succeeded.
    Passed(String),
    /// The targets where the named earlier phase staged the release (not those where it found
    /// the release already running, unchanged: there is nothing to switch).
    Staged(String),
    /// The first `count` of the targets where phase `stage` staged the release, in the order
    /// the deploy resolved them (a percentage rounds up, to at least one): the canaries,
    /// each watched for `window` after its switch.
    Canary {
        stage: String,
        count: Rate,
        #[serde(with = "crate::config::secs")]
        window: Duration,
    },
    /// The targets where phase `stage` staged the release, but for those phase `canary` was
    /// given: the rest of the fleet, after the canaries.
    AfterCanary { stage: String, canary: String },
    /// The targets phase `stage` staged the release on where none of the phases `switches`
    /// started (they did not run, or stopped past their max errors before they reached
    /// them): what is left staged.
    Unswitched {
        stage: String,
        switches: Vec<String>,
    },
}

impl PhaseTargets {
    /// The targets, in words.
    pub fn describe(&self, all: &str) -> String {
        match self {
            PhaseTargets::All => all.to_owned(),
            PhaseTargets::Passed(earlier) => format!("the targets that passed phase {earlier}"),
            PhaseTargets::Staged(earlier) => format!("the targets phase {earlier} staged"),
            PhaseTargets::Canary {
                stage,
                count,
                window,
            } => format!(
                "the first {count} of the targets phase {stage} staged (the canaries, each \
                 watched for {} after its switch)",
                crate::config::duration::format(*window)
            ),
            PhaseTargets::AfterCanary { stage, canary } => format!(
                "the targets phase {stage} staged but for phase {canary}'s (the rest, once \
                 every canary held)"
            ),
            PhaseTargets::Unswitched { stage, switches } => {
                let phases: Vec<String> = switches.iter().map(|p| format!("phase {p}")).collect();
                match phases.as_slice() {
                    [one] => format!("the targets phase {stage} staged where {one} did not start"),
                    _ => format!(
                        "the targets phase {stage} staged where neither {} started",
                        phases.join(" nor ")
                    ),
                }
            }
        }
    }
}

/// Whether a phase runs, given how an earlier one went: "passed" is failing on no more of its
/// targets than its `max_errors` allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseWhen {
    #[default]
    Always,
    /// Only when the named phase passed.
    Passed(String),
    /// Only when the named phase failed on more targets than its `max_errors` allows.
    Failed(String),
}

impl PhaseWhen {
    pub fn is_always(&self) -> bool {
        *self == PhaseWhen::Always
    }

    /// The condition, in words (none for `Always`).
    pub fn describe(&self) -> Option<String> {
        match self {
            PhaseWhen::Always => None,
            PhaseWhen::Passed(p) => Some(format!(
                "only if phase {p} succeeded on enough targets (its max errors)"
            )),
            PhaseWhen::Failed(p) => Some(format!(
                "only if phase {p} failed on more targets than its max errors allow"
            )),
        }
    }
}

/// How a phase spreads over its targets: SSM's `MaxConcurrency` and `MaxErrors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutPolicy {
    pub max_concurrency: Rate,
    pub max_errors: Rate,
}

/// Which transport carries the script to the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// This machine is the host.
    Local,
    /// AWS SSM Run Command.
    Ssm,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Local => "local",
            TransportKind::Ssm => "ssm",
        }
    }
}
