//! The host checks: `hoist doctor`'s full set, and the cheap subset a deploy's check-hosts
//! step runs on every target before anything changes (the tools its scripts need, the
//! engine, nginx for blue-green, a tmpfs for secrets). One script, `doctor.sh`, told which
//! checks to run; read-only.

use std::time::Duration;

use super::maintenance::{RUN_DIR, STATE_DIR};
use crate::config::{Config, SecretSource, Strategy};
use crate::domain::carry::TooLarge;
use crate::domain::{Phase, TransportKind, parameter_root};
use crate::plan::script::{self, Body, Param, Script};

/// Which checks: all of them (`hoist doctor`), or those a deploy cannot do without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckSet {
    Doctor,
    Deploy,
}

/// How long one host may take to run its checks.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// Free space below which the disk checks fail (four times as much warns).
const MIN_FREE_MB: u32 = 512;
/// The name under the app's parameter path the doctor reads to learn whether the instance
/// role may: it need not exist (`ParameterNotFound` says the read was allowed).
const PROBE_PARAMETER: &str = "hoist-doctor-probe";

/// The checks of `set` for this config and transport, in the order they run.
pub fn checks(config: &Config, transport: TransportKind, set: CheckSet) -> Vec<&'static str> {
    let blue_green = config.strategy == Strategy::BlueGreen;
    let ssm = transport == TransportKind::Ssm;
    let host_secrets = !config.env.sources.is_empty();
    let secrets = host_secrets || !config.env.from_environment().is_empty();
    let doctor = set == CheckSet::Doctor;
    let mut checks = vec!["bash", "docker", "flock", "timeout"];
    if doctor {
        checks.push("setsid");
    }
    if doctor || blue_green || config.healthcheck.path.is_some() {
        checks.push("curl");
    }
    if ssm || host_secrets {
        // The deploy's: only that the CLI is there (it takes a second to start).
        checks.push(if doctor { "aws" } else { "aws-cli" });
    }
    if doctor || secrets {
        checks.push("tmpfs");
    }
    if blue_green {
        checks.push("nginx");
    }
    if doctor {
        checks.extend(["disk", "clock"]);
        if ssm || host_secrets {
            checks.push("parameters");
        }
    }
    checks
}

/// The doctor script for `set`; `region` is the one the hosts' AWS calls use.
pub fn doctor_script(
    config: &Config,
    transport: TransportKind,
    set: CheckSet,
    region: Option<&str>,
) -> Script {
    let ssm = transport == TransportKind::Ssm;
    let mut params: Vec<(&str, Param)> = vec![
        ("HOIST_APP", config.app.as_str().into()),
        (
            "HOIST_CHECKS",
            checks(config, transport, set)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .into(),
        ),
        ("HOIST_RUN_DIR", RUN_DIR.into()),
        ("HOIST_STATE_DIR", STATE_DIR.into()),
        ("HOIST_MIN_FREE_MB", MIN_FREE_MB.to_string().into()),
        ("HOIST_REGION", region.unwrap_or_default().into()),
        (
            "HOIST_NGINX_INSTALL",
            match &config.blue_green {
                Some(bg) if bg.install_proxy => "true",
                _ => "false",
            }
            .into(),
        ),
    ];
    if set == CheckSet::Doctor {
        params.push((
            "HOIST_PARAMETER_PROBE",
            if ssm {
                format!(
                    "{}{PROBE_PARAMETER}",
                    parameter_root(&config.app, config.environment.as_deref())
                )
            } else {
                String::new()
            }
            .into(),
        ));
        params.push((
            "HOIST_PARAMETERS",
            config
                .env
                .sources
                .values()
                .filter_map(|s| match s {
                    SecretSource::Ssm(p) => Some(p.clone()),
                    SecretSource::SecretsManager { .. } => None,
                })
                .collect::<Vec<_>>()
                .into(),
        ));
    }
    let what = match set {
        CheckSet::Doctor => format!("checks of this host for app {}", config.app),
        CheckSet::Deploy => format!("checks of this host before a deploy of app {}", config.app),
    };
    script::render(
        Body::Doctor,
        &[format!("hoist {} — {what}", env!("CARGO_PKG_VERSION"))],
        &params,
    )
}

/// The phase of the checks of `set`: every target at once, every one of them answering.
pub fn doctor_phase(
    config: &Config,
    transport: TransportKind,
    set: CheckSet,
    region: Option<&str>,
) -> Result<Phase, TooLarge> {
    let name = match set {
        CheckSet::Doctor => "doctor",
        CheckSet::Deploy => "check-hosts",
    };
    let script = doctor_script(config, transport, set, region);
    super::maintenance::everywhere_phase(name, config, transport, CHECK_TIMEOUT, script)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let yaml = format!("app: web\ntargets:\n  instance_ids: [i-0123456789abcdef0]\n{extra}");
        crate::config::parse(&yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap()
    }

    #[test]
    fn a_deploy_checks_what_its_strategy_and_transport_need() {
        let plain = config("");
        assert_eq!(
            checks(&plain, TransportKind::Local, CheckSet::Deploy),
            ["bash", "docker", "flock", "timeout"]
        );
        assert_eq!(
            checks(&plain, TransportKind::Ssm, CheckSet::Deploy),
            ["bash", "docker", "flock", "timeout", "aws-cli"]
        );
        let bg = config(
            "strategy: blue-green\ncontainer:\n  publish: 8080\n\
             env:\n  secret: [TOKEN]\n",
        );
        assert_eq!(
            checks(&bg, TransportKind::Ssm, CheckSet::Deploy),
            [
                "bash", "docker", "flock", "timeout", "curl", "aws-cli", "tmpfs", "nginx"
            ]
        );
    }

    #[test]
    fn the_doctor_checks_everything_and_probes_the_parameter_path() {
        let c = config("environment: staging\n");
        assert_eq!(
            checks(&c, TransportKind::Ssm, CheckSet::Doctor),
            [
                "bash",
                "docker",
                "flock",
                "timeout",
                "setsid",
                "curl",
                "aws",
                "tmpfs",
                "disk",
                "clock",
                "parameters"
            ]
        );
        let script = doctor_script(&c, TransportKind::Ssm, CheckSet::Doctor, Some("eu-west-1"));
        assert_eq!(script.body, "doctor.sh");
        assert!(
            script
                .text
                .contains("HOIST_PARAMETER_PROBE='/hoist/web/staging/hoist-doctor-probe'\n"),
            "{}",
            script.text
        );
        assert!(script.text.contains("HOIST_REGION='eu-west-1'\n"));
        let deploy = doctor_script(&c, TransportKind::Ssm, CheckSet::Deploy, None);
        assert!(!deploy.text.contains("HOIST_PARAMETER_PROBE='"));
    }
}
