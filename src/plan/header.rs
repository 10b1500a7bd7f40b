//! The rendered header's parameters: what a deploy's, a status's and a rollback's script
//! are given, quoted, before their body.

use crate::config::{BlueGreen, Config, SecretSource};

use super::script::Param;
use super::{EnvPlan, Inputs};

pub(super) fn header_params(
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
    let run_opts = run_opts(config);
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
        ("HOIST_HEALTH_CHECK", h.label().into()),
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
        (
            "HOIST_SETTINGS",
            serde_json::to_string(&super::live::settings(config))
                .expect("strings serialize")
                .into(),
        ),
        (
            "HOIST_ENV_LABEL",
            serde_json::to_string(&super::live::env(config))
                .expect("strings serialize")
                .into(),
        ),
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
/// check in seconds, whether to install nginx, the proxy's body limit (bytes, 0: none), idle
/// timeout (seconds) and IPv6 listen, and the nginx file hoist owns.
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
            "HOIST_BG_MAX_BODY",
            bg.proxy.max_body.unwrap_or(0).to_string().into(),
        ),
        ("HOIST_BG_READ_TIMEOUT", secs(bg.proxy.read_timeout).into()),
        (
            "HOIST_BG_DUAL_STACK",
            if bg.proxy.ipv6 { "true" } else { "false" }.into(),
        ),
        (
            "HOIST_NGINX_CONF",
            BlueGreen::nginx_conf(&config.app).into(),
        ),
    ]
}

/// The options of a release's `docker create` (`HOIST_RUN_OPTS`): memory, CPUs, the stop
/// timeout, an init, volumes, labels and the Docker options, in a fixed order.
pub(super) fn run_opts(config: &Config) -> Vec<String> {
    let c = &config.container;
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
    run_opts.extend(c.docker.create_args());
    run_opts
}
