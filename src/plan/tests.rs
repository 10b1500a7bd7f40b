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
        header[header.len() - 9..],
        [
            "HOIST_BG_PORTS=('18080' '28080')",
            "HOIST_BG_DRAIN='1'",
            "HOIST_BG_POST_SWITCH_CHECK='15'",
            "HOIST_BG_INSTALL_PROXY='false'",
            "HOIST_BG_MAX_BODY='0'",
            "HOIST_BG_READ_TIMEOUT='3600'",
            "HOIST_BG_DUAL_STACK='true'",
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
            proxy: crate::config::Proxy::default(),
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
            "  proxy       nginx on port 8080 (/etc/nginx/conf.d/hoist-web.conf) -> blue \
                 127.0.0.1:18080, green 127.0.0.1:28080; post-switch check 15s, drain \
                 1500ms; hosts must have nginx; no body limit, idle timeout 1h, IPv4 and \
                 IPv6 (where the host has it)\n"
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
        text.contains(&format!("\nLock: {} (lease 2m,", lock.parameter)),
        "{text}"
    );
    let markdown = plan.render(Format::Markdown);
    assert!(
        markdown.contains("\n**Lock**: `/hoist/web/lock/"),
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
    let text = local.render(Format::Text);
    assert!(
        !text.contains("Lock:") && !text.contains("fleet lock"),
        "{text}"
    );
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

fn ssm_plan(yaml_extra: &str, hosts: usize) -> Result<Plan, PlanError> {
    let yaml = format!(
        "app: web\nimage:\n  repository: web\ntargets:\n  tags:\n    Env: [prod]\n{yaml_extra}\
         container:\n  port: 8080\n"
    );
    let config = crate::config::parse(&yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
    let mut inputs = inputs(TransportKind::Ssm, "web:1", Some(DIGEST));
    inputs.instances = Some((0..hosts).map(|n| format!("i-{n:017x}")).collect());
    build(&config, &inputs)
}

/// The plan says how a count spreads over SSM's 50-instance commands, and the timeout each
/// command gets for its waves.
#[test]
fn the_plan_tells_the_waves_commands_and_timeouts_of_a_count() {
    let plan = ssm_plan("  max_concurrency: 2\n", 120).unwrap();
    let text = plan.render(Format::Text);
    assert!(
        text.contains(
            "in batches of 2: 60 batches for 120 target(s) as 3 SSM commands of at most 50 \
             instances, one after another"
        ),
        "{text}"
    );
    let timeout = plan.phases().next().unwrap().timeout;
    let per_command =
        crate::config::duration::format(std::time::Duration::from_secs(600) + timeout * 25);
    assert!(
        text.contains(&format!("SSM timeout {per_command} per command")),
        "{text}"
    );
    let share = ssm_plan("  max_concurrency: 10%\n", 120).unwrap();
    assert!(
        share
            .render(Format::Text)
            .contains("in batches of 12: 10 batches for 120 target(s) as 3 SSM commands of at most 50 instances, at once"),
        "{}",
        share.render(Format::Text)
    );
}

/// A rollout that may outlast a CI job is warned of; one whose waves need a command timeout
/// past SSM's largest is refused before anything changes.
#[test]
fn a_rollout_too_long_for_a_job_warns_and_one_too_long_for_ssm_is_refused() {
    let short = ssm_plan("  max_concurrency: 1\n", 3).unwrap();
    assert!(
        !short.warnings.iter().any(|w| w.contains("6 h")),
        "{:?}",
        short.warnings
    );
    let long = ssm_plan("  max_concurrency: 1\n", 500).unwrap();
    assert!(
        long.warnings
            .iter()
            .any(|w| w.contains("longer than a GitHub-hosted job may run (6 h)")),
        "{:?}",
        long.warnings
    );
    let slow = "  max_concurrency: 1\nhealthcheck:\n  timeout: 24h\n";
    let err = ssm_plan(slow, 60).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PlanError::RolloutTooLong { .. }), "{message}");
    assert!(
        message.contains("past SSM's largest (30 days)"),
        "{message}"
    );
}
