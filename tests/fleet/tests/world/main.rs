//! The world's own tests: one world (3 full and 6 light instances) shared by
//! every check, brought up with the built `hoist-fleet` binary and always
//! taken down again (a drop guard runs `down`, also after a panic).
//!
//! A custom harness (`harness = false`) so the world is made once and its
//! teardown is itself checked. `cargo test -p hoist-fleet --test world -- NAME`
//! runs only the checks whose name contains NAME. Listed (`--list`), the run is one
//! test, `world`, which is how cargo-nextest runs it: every check, in one process.
//!
//! Needs root, a running Docker engine, `ip`, `nsenter`, `openssl`,
//! Debian's `docker-registry` and the AWS CLI: when one is missing the checks
//! are skipped with a reason, or fail when `CI=true`.

mod support;

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use support::{Ctx, Guard, prerequisites_missing};

type Check = fn(&Ctx);

/// Run in this order: the first starts a command that a later one checks
/// (a delivery timeout needs TimeoutSeconds, at least 30 s, to pass).
const CHECKS: &[(&str, Check)] = &[
    (
        "offline_agent_delays_then_delivery_times_out::start",
        checks::delivery_timeout_start,
    ),
    (
        "cli_send_command_shows_the_instances_own_stdout",
        checks::cli_send_command,
    ),
    (
        "cli_ecr_login_push_and_pull_inside_instances",
        checks::cli_ecr_inside_instances,
    ),
    (
        "host_engine_logs_in_and_pushes_to_the_registry",
        checks::host_engine_push,
    ),
    (
        "cli_parameter_store_round_trip",
        checks::cli_parameter_store,
    ),
    ("isolation_between_instances", checks::isolation),
    (
        "sdk_ssm_run_command_operations",
        checks::sdk_ssm_run_command,
    ),
    (
        "sdk_parameter_store_operations_and_errors",
        checks::sdk_parameters,
    ),
    ("sdk_ecr_and_sts_operations_and_errors", checks::sdk_ecr_sts),
    (
        "cli_tagged_parameter_and_json_secret_read_inside_an_instance_journal_callers",
        checks::cli_tags_secrets_and_callers,
    ),
    (
        "sdk_parameter_tiers_policies_and_expiry",
        checks::sdk_parameter_tiers_and_expiry,
    ),
    (
        "sdk_describe_parameters_filters_paging_and_tags",
        checks::sdk_describe_parameters_and_tags,
    ),
    ("statuses_and_status_details", checks::statuses),
    (
        "invocation_does_not_exist_right_after_send",
        checks::invocation_window,
    ),
    (
        "max_concurrency_ramps_and_max_errors_stops",
        checks::concurrency_and_errors,
    ),
    ("output_truncation", checks::truncation),
    (
        "light_instances_record_docker_calls",
        checks::light_instances,
    ),
    (
        "agent_runs_script_0700_from_usr_bin_with_the_agents_environment_only",
        checks::agent_script_and_environment,
    ),
    (
        "agent_gets_instance_profile_credentials_from_imdsv2_and_no_region",
        checks::imds_credentials,
    ),
    (
        "agent_output_is_piped_and_the_invocation_waits_for_every_holder",
        checks::output_pipes,
    ),
    (
        "agent_output_is_cut_at_24000_bytes_with_the_agents_suffix",
        checks::output_bytes_and_suffix,
    ),
    (
        "agent_exit_codes_168_169_137_and_the_failure_line",
        checks::exit_codes,
    ),
    (
        "agent_execution_timeout_under_5_seconds_becomes_an_hour",
        checks::execution_timeout_floor,
    ),
    (
        "agent_cancel_lands_after_a_delay_and_kills_the_process_group",
        checks::cancel_delay_and_group_kill,
    ),
    (
        "agent_runs_5_commands_queues_5_and_refuses_the_11th",
        checks::five_running_five_queued,
    ),
    ("agent_exit_194_reboots_the_instance", checks::reboot_on_194),
    (
        "offline_agent_delays_then_delivery_times_out",
        checks::delivery_timeout_finish,
    ),
    (
        "faults_throttle_latency_disk_engine_and_journal",
        checks::faults,
    ),
    ("bad_input_is_an_error_not_a_panic", checks::bad_input),
    // --- issue 18, the API side (src/api/ssm.rs, params.rs, throttle.rs) ---
    (
        "send_command_over_the_64_kb_document_quota_is_refused_with_http_400",
        checks::document_quota,
    ),
    (
        "plugin_output_is_cut_at_2400_bytes_with_the_agents_markers",
        checks::plugin_output,
    ),
    (
        "get_command_invocation_lags_list_command_invocations_after_the_end",
        checks::invocation_lag,
    ),
    (
        "parameter_store_reads_share_one_bucket_of_40_a_second",
        checks::parameter_read_throttling,
    ),
    (
        "put_parameter_is_throttled_at_3_a_second",
        checks::parameter_write_throttling,
    ),
    (
        "expired_parameters_are_deleted_by_a_later_background_scan",
        checks::expiry_scan,
    ),
];

mod checks;

/// The name the whole run is listed under.
const WHOLE: &str = "world";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // libtest's options that take a value (the value is not a filter).
    const WITH_VALUE: &[&str] = &[
        "--test-threads",
        "--skip",
        "--format",
        "--color",
        "--logfile",
        "-Z",
    ];
    let mut filter = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') && filter.is_none() {
            filter = Some(a.clone());
        }
    }
    // To a runner that lists the tests and runs each in a process of its own (cargo-nextest),
    // the checks are one test, `world`: they share one world, which one process brings up.
    // None is ignored.
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("{WHOLE}: test");
        }
        return;
    }
    if filter.as_deref() == Some(WHOLE) {
        filter = None;
    }
    if let Some(reason) = prerequisites_missing() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the fleet tests need {reason} (CI=true: not skipping)");
        }
        println!("skipping the fleet tests: {reason}");
        return;
    }
    let selected = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let mut failed: Vec<String> = Vec::new();
    let mut passed = 0;
    let mut run = |name: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
        let secs = t.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({secs:.1}s)");
            }
            Err(_) => {
                failed.push(name.to_string());
                println!("test {name} ... FAILED ({secs:.1}s)");
            }
        }
    };

    let started = Instant::now();
    let wanted: Vec<&(&str, Check)> = CHECKS.iter().filter(|(n, _)| selected(n)).collect();
    if !wanted.is_empty() || selected("down_leaves_nothing_behind") {
        let t = Instant::now();
        let mut guard = Guard::up(
            "main",
            &[
                // Its own index, from the top: the hoist suite's worlds take the
                // first free ones and could take a number this one just gave
                // back, and the check after down would find their bridge.
                "--index",
                "99",
                "--instances",
                "3",
                "--light",
                "6",
                "--tag",
                "3:Role=batch",
                "--tag",
                "4:Role=batch",
                "--tag",
                "5:Role=batch",
                "--tag",
                "6:Role=batch",
            ],
        );
        let up_secs = t.elapsed().as_secs_f64();
        println!("hoist-fleet up (3 full, 6 light instances) took {up_secs:.1}s");
        let ctx = Ctx::new(&guard);
        run("up_takes_under_a_minute", &mut || {
            assert!(up_secs < 60.0, "up took {up_secs:.1}s")
        });
        for (name, check) in &wanted {
            run(name, &mut || check(&ctx));
        }
        drop(ctx);
        let t = Instant::now();
        let leftovers = guard.down();
        println!("hoist-fleet down took {:.1}s", t.elapsed().as_secs_f64());
        run("down_leaves_nothing_behind", &mut || {
            support::assert_nothing_left(&leftovers)
        });
    }
    if selected("light_instances_at_scale") {
        run("light_instances_at_scale", &mut checks::light_scale);
    }
    if selected("down_after_a_crashed_up") {
        run(
            "down_after_a_crashed_up",
            &mut support::crashed_up_then_down,
        );
    }

    println!(
        "\ntest result: {}. {passed} passed; {} failed; finished in {:.1}s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        for f in &failed {
            println!("    {f}");
        }
        std::process::exit(101);
    }
}
