use std::time::Duration;

use super::summary::table;
use super::*;
use crate::ops::execute::StepStatus;

mod markdown;

#[test]
fn annotation_data_and_properties_are_escaped_as_the_runner_reads_them() {
    assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
    assert_eq!(
        escape_data("%0A"),
        "%250A",
        "a literal escape stays literal"
    );
    assert_eq!(
        escape_property("a: b, c%\n"),
        "a%3A b%2C c%25%0A",
        "`:` and `,` end a property"
    );
    assert_eq!(
        annotation(Some("hoist deploy failed on i-0a,b:c"), "line 1\nline 2"),
        "::error title=hoist deploy failed on i-0a%2Cb%3Ac::line 1%0Aline 2\n"
    );
    assert_eq!(
        annotation(None, "a: b, c"),
        "::error::a: b, c\n",
        "data keeps `:` and `,`"
    );
}

#[test]
fn a_value_with_a_line_break_is_written_as_a_heredoc() {
    assert_eq!(output_entry("release", "abc123", "D"), "release=abc123\n");
    assert_eq!(
        output_entry("plan", "/tmp/a\nb.json", "ghadelimiter_x"),
        "plan<<ghadelimiter_x\n/tmp/a\nb.json\nghadelimiter_x\n"
    );
    assert_eq!(output_entry("x", "a\rb", "D"), "x<<D\na\rb\nD\n");
    let d = delimiter_for("value");
    assert!(d.starts_with("ghadelimiter_") && d.len() == 13 + 32, "{d}");
    assert_ne!(d, delimiter_for("value"), "random");
}

#[test]
fn outputs_are_written_in_order_and_only_when_set() {
    let outputs = Outputs {
        release: Some("r1".into()),
        result: Some("deployed"),
        command_id: Some(String::new()),
        ..Outputs::default()
    };
    let names: Vec<&str> = outputs.entries().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["release", "command-id", "result"]);
}

#[test]
fn table_cells_escape_pipes_markup_and_line_breaks() {
    assert_eq!(md_cell("a|b"), "a\\|b");
    assert_eq!(md_cell("one\r\ntwo\nthree"), "one<br>two<br>three");
    assert_eq!(md_cell("<b>x</b>"), "\\<b\\>x\\</b\\>");
    assert_eq!(md_cell("tab\tand \u{1b}[1m"), "tab\tand \\\\u{1b}\\[1m");
    let mut out = String::new();
    table(&mut out, &["a", "b"], &[vec!["x|y".into(), "1\n2".into()]]);
    assert_eq!(out, "| a | b |\n|---|---|\n| x\\|y | 1<br>2 |\n");
}

#[test]
fn mask_lines_cover_the_value_and_each_of_its_lines() {
    assert_eq!(mask_commands("s3cr3t-value"), ["::add-mask::s3cr3t-value"]);
    assert!(mask_commands("").is_empty());
    assert_eq!(
        mask_commands("first\n\nsecond\r\n100%"),
        [
            "::add-mask::first%0A%0Asecond%0D%0A100%25",
            "::add-mask::first",
            "::add-mask::second",
            "::add-mask::100%25",
        ]
    );
}

#[test]
fn a_group_acts_on_no_command_its_body_holds() {
    let g = group("deploy · i-0abc", "::add-mask::x\n::endgroup::\nlast");
    let lines: Vec<&str> = g.lines().collect();
    assert_eq!(lines[0], "::group::deploy · i-0abc");
    let token = lines[1].strip_prefix("::stop-commands::").unwrap();
    assert!(token.len() > 32, "{token}");
    assert_eq!(&lines[2..5], ["::add-mask::x", "::endgroup::", "last"]);
    assert_eq!(lines[5], format!("::{token}::"));
    assert_eq!(lines[6], "::endgroup::");
    assert_eq!(lines.len(), 7);
    assert_eq!(inert(""), "");
}

fn plan() -> Plan {
    let yaml = "app: web\ntargets:\n  tags:\n    Env: [prod]\n";
    let config = crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
    let inputs = crate::plan::Inputs::new(
        crate::revision::Revision::clean("0123456789abcdef0123456789abcdef01234567"),
        crate::plan::TransportKind::Local,
    );
    crate::plan::build(&config, &inputs).unwrap()
}

fn invocation(target: &str, result: &str, command: Option<&str>) -> Invocation {
    use crate::transport::InvocationStatus;
    let deployed = result.contains("deployed");
    let mut inv = Invocation {
        target: target.into(),
        status: if deployed {
            InvocationStatus::Success
        } else {
            InvocationStatus::Failed
        },
        exit_code: Some(i32::from(!deployed)),
        stdout: format!("HOIST-RESULT {result}\n"),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        duration: Duration::from_secs(1),
        result: None,
        outcome: None,
        command_id: command.map(str::to_owned),
    };
    inv.result = crate::domain::outcome::parse(&inv.stdout);
    inv
}

fn report(invocations: Vec<Invocation>) -> Report {
    Report {
        app: "web".into(),
        release: "r1".into(),
        plan: plan(),
        steps: Vec::new(),
        deployed: invocations.iter().filter(|i| i.deployed()).count(),
        failed: invocations.iter().filter(|i| !i.deployed()).count(),
        phases: vec![crate::ops::execute::PhaseReport {
            name: "deploy".into(),
            invocations,
        }],
        mixed_version_window_ms: None,
        cancelled: false,
        reviewed: None,
        timings: None,
        lock: None,
    }
}

#[test]
fn the_result_is_rolled_back_only_when_every_failed_target_was_seen_back() {
    let ok = || invocation("a", r#"{"status":"deployed"}"#, None);
    let back = || invocation("b", r#"{"status":"failed","rolled_back":true}"#, None);
    let failed = || invocation("c", r#"{"status":"failed","rolled_back":false}"#, None);
    assert_eq!(deploy_result(&report(vec![ok(), ok()])), "deployed");
    assert_eq!(deploy_result(&report(vec![ok(), back()])), "rolled-back");
    assert_eq!(deploy_result(&report(vec![back(), back()])), "rolled-back");
    assert_eq!(deploy_result(&report(vec![back(), failed()])), "failed");
    assert_eq!(deploy_result(&report(Vec::new())), "failed", "nothing ran");
    let mut cut = ok();
    cut.stdout = "hoist: deploying\n".into();
    cut.result = None;
    assert_eq!(
        deploy_result(&report(vec![cut])),
        "failed",
        "no result line"
    );
}

#[test]
fn summaries_have_a_heading_a_row_per_target_and_a_timeline() {
    let back = invocation(
        "i-0a",
        r#"{"status":"failed","rolled_back":true,"reason":"health | check\nfailed"}"#,
        None,
    );
    let mut deploy = report(vec![back.clone()]);
    deploy.steps.push(crate::ops::execute::StepReport {
        step: crate::plan::StepKind::RunPhase,
        phase: Some("deploy".into()),
        status: StepStatus::Failed,
        detail: "0 of 1 target(s) succeeded".into(),
        duration: Duration::from_millis(1500),
    });
    let md = deploy_summary(&deploy, deploy_result(&deploy));
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[0],
        "### hoist deploy: `web` release `r1`: rolled-back"
    );
    assert_eq!(
        lines[2],
        "| target | status | release | duration | detail |"
    );
    assert_eq!(
        lines[4],
        "| i-0a | rolled back | r1 | 1.0s | health \\| check<br>failed |"
    );
    assert!(
        md.contains("| run-phase deploy | failed | 1.5s | 0 of 1 target(s) succeeded |"),
        "{md}"
    );
    assert!(
        !md.contains("Fleet lock") && !md.contains("Mixed-version"),
        "{md}"
    );
    // Over SSM: the lock it held (and how long it waited), and the mixed-version window.
    deploy.lock = Some(crate::lock::LockReport {
        parameter: "/hoist/web/lock/0123456789ab".into(),
        waited: Duration::from_millis(12_300),
    });
    deploy.mixed_version_window_ms = Some(2_500);
    let md = deploy_summary(&deploy, deploy_result(&deploy));
    assert!(
        md.contains(
            "Fleet lock `/hoist/web/lock/0123456789ab`: waited 12.3s for it, released at \
                 the end\n"
        ) && md.contains("Mixed-version window: 2.5s (from the first target's switch"),
        "{md}"
    );

    let config = crate::config::parse(
        "app: web\ntargets:\n  tags:\n    Env: [prod]\n",
        "hoist.yaml".as_ref(),
        ".".as_ref(),
    )
    .unwrap();
    let rolled = invocation("local", r#"{"status":"deployed","release":"v1"}"#, None);
    let rollback = RollbackReport {
        app: "web".into(),
        to: None,
        phase: crate::plan::rollback_phase(&config, crate::plan::TransportKind::Local, None)
            .unwrap(),
        invocations: vec![rolled],
        rolled_back: 1,
        failed: 0,
        cancelled: false,
        lock: None,
    };
    let md = rollback_summary(&rollback, "rolled-back");
    assert!(
        md.starts_with("### hoist rollback: `web` to the previous release: rolled-back\n"),
        "{md}"
    );
    assert!(md.contains("| local | rolled back | v1 | 1.0s | "), "{md}");
    assert!(
        md.contains("| run-phase rollback | done | 1.0s | 1 of 1 target(s) rolled back |"),
        "{md}"
    );
}

#[test]
fn command_ids_are_listed_once_each_in_order() {
    let invocations = [
        invocation("a", "{}", Some("c-2")),
        invocation("b", "{}", Some("c-1")),
        invocation("c", "{}", Some("c-2")),
        invocation("d", "{}", None),
    ];
    assert_eq!(command_ids(invocations.iter()), "c-2 c-1");
    assert_eq!(command_ids(invocations[3..].iter()), "");
}

#[test]
fn the_digest_output_is_set_only_for_a_reference_pinned_in_a_registry() {
    let mut plan = plan();
    let digest = format!("sha256:{}", "b".repeat(64));
    plan.image.reference = format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@{digest}");
    plan.image.pinned = true;
    assert_eq!(
        image_outputs(&plan),
        (plan.image.reference.clone(), digest.clone())
    );
    plan.image.reference.clone_from(&digest);
    assert_eq!(
        image_outputs(&plan),
        (digest, String::new()),
        "a local image id is in no registry"
    );
    plan.image.reference = "web:0123456".into();
    plan.image.pinned = false;
    assert_eq!(image_outputs(&plan).1, "", "a tag is not pinned");
}

#[test]
fn github_mode_needs_github_actions_true() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).into())
        }
    };
    assert!(Actions::from_lookup(env(&[])).is_none());
    assert!(Actions::from_lookup(env(&[("GITHUB_ACTIONS", "false")])).is_none());
    let on = Actions::from_lookup(env(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_OUTPUT", "/tmp/out"),
        ("RUNNER_TEMP", ""),
    ]))
    .unwrap();
    assert_eq!(on.output.as_deref(), Some(Path::new("/tmp/out")));
    assert_eq!(on.runner_temp, None, "empty is unset");
}
