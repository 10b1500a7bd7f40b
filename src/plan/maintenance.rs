//! The scripts of the maintenance commands: `status` (a read-only report on each host) and
//! `rollback` (a retained release made live again). Like a deploy's, each is one rendered
//! file: a header of quoted `HOIST_*` parameters, the `src/scripts/lib/` modules it needs, and its body
//! (`status.sh`, `rollback.sh`), with the names a deploy's header uses wherever they mean
//! the same thing. Pure: the same config gives the same bytes.

use std::time::Duration;

use crate::config::Config;
use crate::plan::script::{self, Body, Param, Script};

/// Where hosts keep an app's history and a run's state file (as a deploy's header says).
pub(super) const STATE_DIR: &str = "/var/lib/hoist";
/// Where hosts keep an app's lock and private tmpfs (as a deploy's header says).
pub(super) const RUN_DIR: &str = "/run/hoist";
/// How many history records a status shows.
pub(super) const HISTORY_LIMIT: u32 = 10;
/// A status's health probe budget, at most: a look, not a gate.
pub(super) const STATUS_PROBE: Duration = Duration::from_secs(5);

use super::{blue_green_params, secs};
use crate::domain::carry::{Carried, TooLarge};
use crate::domain::{Phase, PhaseTargets, PhaseWhen, RolloutPolicy, TransportKind};

/// How long one host may take to answer `hoist status`.
pub(super) const STATUS_TIMEOUT: Duration = Duration::from_secs(120);

/// The one phase of `hoist status`: every target at once, none of them a failure that
/// stops the others; refused when its transport would refuse the script.
pub fn status_phase(config: &Config, transport: TransportKind) -> Result<Phase, TooLarge> {
    everywhere_phase(
        "status",
        config,
        transport,
        STATUS_TIMEOUT,
        status_script(config),
    )
}

/// The one phase of a rollback; refused when its transport would refuse the script.
pub fn rollback_phase(
    config: &Config,
    transport: TransportKind,
    to: Option<&str>,
) -> Result<Phase, TooLarge> {
    maintenance_phase(Phase {
        name: "rollback".to_owned(),
        transport,
        on: super::describe_on(config, transport),
        targets: PhaseTargets::All,
        when: PhaseWhen::Always,
        reads_secrets: false,
        policy: super::rollout_policy(config),
        timeout: super::switch_timeout(config),
        script: rollback_script(config, to),
        carried: Carried::default(),
    })
}

fn maintenance_phase(mut phase: Phase) -> Result<Phase, TooLarge> {
    phase.carried = phase.measure().check(&phase.script)?;
    Ok(phase)
}

/// What every maintenance script of a blue-green app adds to its header: the strategy, the
/// port nginx listens on, and the deploy's `HOIST_BG_*` and `HOIST_NGINX_CONF`.
fn strategy_params(config: &Config) -> Vec<(&'static str, Param)> {
    let mut params: Vec<(&'static str, Param)> =
        vec![("HOIST_STRATEGY", config.strategy.as_str().into())];
    if config.blue_green.is_some() {
        params.push((
            "HOIST_PUBLISH",
            config
                .container
                .publish
                .map(|p| p.to_string())
                .unwrap_or_default()
                .into(),
        ));
        params.extend(blue_green_params(config));
    }
    params
}

fn comment(what: &str) -> Vec<String> {
    vec![format!("hoist {} — {what}", env!("CARGO_PKG_VERSION"))]
}

/// The script that prints one `HOIST-STATUS {json}` line about the app on a host: its running
/// release (health probed now, for at most [`STATUS_PROBE`]), retained releases, the last
/// [`HISTORY_LIMIT`] history records and whether a deploy is in flight.
pub fn status_script(config: &Config) -> Script {
    let h = &config.healthcheck;
    let probe = h.timeout.clamp(Duration::from_secs(1), STATUS_PROBE);
    let mut params: Vec<(&str, Param)> = vec![
        ("HOIST_APP", config.app.as_str().into()),
        ("HOIST_HISTORY_LIMIT", HISTORY_LIMIT.to_string().into()),
        ("HOIST_HEALTH_INTERVAL", secs(h.interval).into()),
        ("HOIST_PROBE_TIMEOUT", secs(probe).into()),
        ("HOIST_RUN_DIR", RUN_DIR.into()),
        ("HOIST_STATE_DIR", STATE_DIR.into()),
    ];
    params.extend(strategy_params(config));
    script::render(
        Body::Status,
        &comment(&format!("status of app {}", config.app)),
        &params,
    )
}

/// The script that makes release `to` (or, with `None`, the newest retained release older
/// than the running one) the app's live release on a host, from its retained container,
/// gated by the config's health budget and restored to the running release on failure.
/// `to` is checked on the host (a bad id ends the run as `invalid`, exit 2).
pub fn rollback_script(config: &Config, to: Option<&str>) -> Script {
    let c = &config.container;
    let h = &config.healthcheck;
    let mut params: Vec<(&str, Param)> = vec![
        ("HOIST_APP", config.app.as_str().into()),
        ("HOIST_TO", to.unwrap_or_default().into()),
        (
            "HOIST_STOP_TIMEOUT",
            c.stop_timeout.as_secs().to_string().into(),
        ),
        ("HOIST_HEALTH_INTERVAL", secs(h.interval).into()),
        ("HOIST_HEALTH_TIMEOUT", secs(h.timeout).into()),
        (
            "HOIST_HEALTH_START_PERIOD",
            h.start_period.as_secs().to_string().into(),
        ),
        ("HOIST_HEALTH_CONSECUTIVE", h.consecutive.to_string().into()),
        ("HOIST_RUN_DIR", RUN_DIR.into()),
        ("HOIST_STATE_DIR", STATE_DIR.into()),
    ];
    params.extend(strategy_params(config));
    let what = match to {
        Some(release) => format!("rollback of app {} to release {release}", config.app),
        None => format!(
            "rollback of app {} to the newest retained release older than the running one",
            config.app
        ),
    };
    script::render(Body::Rollback, &comment(&what), &params)
}

/// What `hoist logs` reads on each host.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    /// A retained release instead of the live one.
    pub release: Option<String>,
    /// The last lines (0: all).
    pub tail: u32,
    /// Docker's `--since` (a duration such as `10m`, or an RFC 3339 time).
    pub since: Option<String>,
    /// `--follow`'s next read: where the last one ended on each target (`target=time`).
    pub since_by_target: Vec<String>,
}

/// How long one host may take to answer `hoist logs`.
const LOGS_TIMEOUT: Duration = Duration::from_secs(120);
/// The most log bytes one host prints: what SSM keeps of stdout (23,980 bytes) less room
/// for the script's own lines.
pub const LOGS_MAX_BYTES: u32 = 20_000;

/// The one phase of `hoist logs`: every target at once, none of them a failure that stops
/// the others.
pub fn logs_phase(
    config: &Config,
    transport: TransportKind,
    request: &LogsRequest,
) -> Result<Phase, TooLarge> {
    let params: Vec<(&str, Param)> = vec![
        ("HOIST_APP", config.app.as_str().into()),
        (
            "HOIST_RELEASE",
            request.release.clone().unwrap_or_default().into(),
        ),
        ("HOIST_TAIL", request.tail.to_string().into()),
        (
            "HOIST_SINCE",
            request.since.clone().unwrap_or_default().into(),
        ),
        (
            "HOIST_SINCE_BY_TARGET",
            request.since_by_target.clone().into(),
        ),
        ("HOIST_SECRET_NAMES", config.env.secret.clone().into()),
        ("HOIST_MAX_BYTES", LOGS_MAX_BYTES.to_string().into()),
    ];
    let script = script::render(
        Body::Logs,
        &comment(&format!("logs of app {}", config.app)),
        &params,
    );
    everywhere_phase("logs", config, transport, LOGS_TIMEOUT, script)
}

/// The one phase of `hoist exec`: `argv` in the live container of every target at once,
/// each for at most `timeout`, none of them a failure that stops the others.
pub fn exec_phase(
    config: &Config,
    transport: TransportKind,
    argv: &[String],
    timeout: Duration,
) -> Result<Phase, TooLarge> {
    let params: Vec<(&str, Param)> = vec![
        ("HOIST_APP", config.app.as_str().into()),
        ("HOIST_EXEC", argv.to_vec().into()),
        ("HOIST_EXEC_TIMEOUT", secs(timeout).into()),
        ("HOIST_SECRET_NAMES", config.env.secret.clone().into()),
        ("HOIST_MAX_BYTES", LOGS_MAX_BYTES.to_string().into()),
    ];
    let script = script::render(
        Body::Exec,
        &comment(&format!("exec in app {}", config.app)),
        &params,
    );
    everywhere_phase(
        "exec",
        config,
        transport,
        timeout + Duration::from_secs(60),
        script,
    )
}

/// How long one host may take to remove the app.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(300);

/// The one phase of `hoist remove`: every target at once, none of them a failure that stops
/// the others.
pub fn remove_phase(config: &Config, transport: TransportKind) -> Result<Phase, TooLarge> {
    let params: Vec<(&str, Param)> = vec![
        ("HOIST_APP", config.app.as_str().into()),
        ("HOIST_RUN_DIR", RUN_DIR.into()),
        ("HOIST_STATE_DIR", STATE_DIR.into()),
        (
            "HOIST_NGINX_CONF",
            config
                .blue_green
                .as_ref()
                .map(|_| crate::config::BlueGreen::nginx_conf(&config.app))
                .unwrap_or_default()
                .into(),
        ),
    ];
    let script = script::render(
        Body::Remove,
        &comment(&format!("removal of app {}", config.app)),
        &params,
    );
    everywhere_phase("remove", config, transport, REMOVE_TIMEOUT, script)
}

/// A phase on every target at once whose failures stop nothing (the name says nothing of
/// what the script does: `remove` changes hosts).
pub(super) fn everywhere_phase(
    name: &str,
    config: &Config,
    transport: TransportKind,
    timeout: Duration,
    script: Script,
) -> Result<Phase, TooLarge> {
    maintenance_phase(Phase {
        name: name.to_owned(),
        transport,
        on: super::describe_on(config, transport),
        targets: PhaseTargets::All,
        when: PhaseWhen::Always,
        reads_secrets: false,
        policy: RolloutPolicy {
            max_concurrency: crate::config::Rate::Percent(100),
            max_errors: crate::config::Rate::Percent(100),
        },
        timeout,
        script,
        carried: Carried::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let yaml = format!("app: web\ntargets:\n  instance_ids: [i-0123456789abcdef0]\n{extra}");
        crate::config::parse(&yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap()
    }

    fn header(script: &Script) -> Vec<&str> {
        script
            .text
            .lines()
            .take_while(|l| !l.is_empty())
            .filter(|l| l.starts_with("HOIST_"))
            .collect()
    }

    #[test]
    fn status_renders_its_parameters_and_a_short_probe() {
        let script = status_script(&config(
            "healthcheck:\n  path: /healthz\n  interval: 2s\n  timeout: 1m\n",
        ));
        assert_eq!(script.body, "status.sh");
        assert_eq!(
            header(&script),
            [
                "HOIST_APP='web'",
                "HOIST_HISTORY_LIMIT='10'",
                "HOIST_HEALTH_INTERVAL='2'",
                "HOIST_PROBE_TIMEOUT='5'",
                "HOIST_RUN_DIR='/run/hoist'",
                "HOIST_STATE_DIR='/var/lib/hoist'",
                "HOIST_STRATEGY='recreate'",
            ]
        );
        let short = status_script(&config("healthcheck:\n  timeout: 2s\n"));
        assert!(short.text.contains("HOIST_PROBE_TIMEOUT='2'\n"));
    }

    #[test]
    fn rollback_renders_the_target_and_the_deploys_budgets() {
        let yaml = "container:\n  stop_timeout: 30s\n\
                    healthcheck:\n  interval: 1s\n  timeout: 2m\n  start_period: 5s\n";
        let to = rollback_script(&config(yaml), Some("v1.2"));
        assert_eq!(to.body, "rollback.sh");
        assert_eq!(
            header(&to),
            [
                "HOIST_APP='web'",
                "HOIST_TO='v1.2'",
                "HOIST_STOP_TIMEOUT='30'",
                "HOIST_HEALTH_INTERVAL='1'",
                "HOIST_HEALTH_TIMEOUT='120'",
                "HOIST_HEALTH_START_PERIOD='5'",
                "HOIST_HEALTH_CONSECUTIVE='1'",
                "HOIST_RUN_DIR='/run/hoist'",
                "HOIST_STATE_DIR='/var/lib/hoist'",
                "HOIST_STRATEGY='recreate'",
            ]
        );
        assert!(to.text.contains("to release v1.2"));
        let previous = rollback_script(&config(yaml), None);
        assert!(previous.text.contains("HOIST_TO=''\n"));
        assert_ne!(previous.sha256, to.sha256);
    }

    #[test]
    fn blue_green_status_and_rollback_know_the_proxy_and_the_colors() {
        let config = config(
            "strategy: blue-green\ncontainer:\n  publish: 8080\n\
             healthcheck:\n  consecutive: 3\n\
             blue_green:\n  drain: 1m\n  install_proxy: true\n",
        );
        let bg = [
            "HOIST_STRATEGY='blue-green'",
            "HOIST_PUBLISH='8080'",
            "HOIST_BG_PORTS=('18080' '28080')",
            "HOIST_BG_DRAIN='60'",
            "HOIST_BG_POST_SWITCH_CHECK='10'",
            "HOIST_BG_INSTALL_PROXY='true'",
            "HOIST_BG_MAX_BODY='0'",
            "HOIST_BG_READ_TIMEOUT='3600'",
            "HOIST_BG_DUAL_STACK='true'",
            "HOIST_NGINX_CONF='/etc/nginx/conf.d/hoist-web.conf'",
        ];
        let status = status_script(&config);
        assert_eq!(header(&status)[6..], bg);
        let rollback = rollback_script(&config, None);
        let header = header(&rollback);
        assert!(
            header.contains(&"HOIST_HEALTH_CONSECUTIVE='3'"),
            "{header:?}"
        );
        assert_eq!(header[header.len() - bg.len()..], bg);
    }
}
