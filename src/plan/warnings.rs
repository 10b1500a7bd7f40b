//! The warnings a plan carries about its config and inputs: what it does not check or
//! cannot know, said before anything runs.

use crate::config::Config;

use super::{Inputs, TransportKind};

/// The warnings of `config` and `inputs` that need nothing else of the plan.
pub(super) fn of_config(config: &Config, inputs: &Inputs) -> Vec<String> {
    let mut warnings = Vec::new();
    let health = &config.healthcheck;
    if health.path.is_none() && health.command.is_empty() && !health.tcp && !health.docker {
        warnings.push(
            "no health check (healthcheck.path, command, tcp or docker): hoist only checks \
             that the container keeps running for healthcheck.min_running"
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
    warnings
}
