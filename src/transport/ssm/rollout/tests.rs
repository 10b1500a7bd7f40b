use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use aws_sdk_ssm::operation::list_command_invocations::{
    ListCommandInvocationsError, ListCommandInvocationsOutput,
};
use aws_sdk_ssm::operation::send_command::SendCommandOutput;
use aws_sdk_ssm::types::{Command, CommandInvocation};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

use super::*;
use crate::config::Rate;
use crate::domain::outcome;
use crate::plan::script::{Body, render};
use crate::transport::Transport;
use crate::transport::ssm::Poll;
use crate::transport::ssm::testing::DEPLOYED;

/// What deploy does with a transport's raw output: parse the result line.
fn parsed(mut out: Vec<Invocation>) -> Vec<Invocation> {
    for inv in &mut out {
        inv.result = outcome::parse(&inv.stdout);
    }
    out
}

struct Lines(std::sync::Mutex<Vec<String>>);
impl OutputSink for Lines {
    fn line(&self, target: &str, line: &str) {
        self.0.lock().unwrap().push(format!("[{target}] {line}"));
    }
}

fn job<'a>(
    script: &'a crate::plan::script::Script,
    targets: &'a [String],
    max_errors: Rate,
) -> Job<'a> {
    Job {
        script,
        secrets: None,
        targets,
        policy: crate::plan::RolloutPolicy {
            max_concurrency: Rate::Percent(50),
            max_errors,
        },
        timeout: Duration::from_secs(60),
        comment: "test".into(),
    }
}

/// SSM takes at most 50 instance ids per `SendCommand`: 120 targets go out as 50 + 50 + 20,
/// and every instance of every command is waited for and judged.
#[tokio::test]
async fn sends_at_most_50_instances_per_command() {
    // The instance ids of each command, in the order SSM got them (sent concurrently).
    let sent: Arc<std::sync::Mutex<Vec<Vec<String>>>> = Arc::default();
    let seen = sent.clone();
    let send = mock!(aws_sdk_ssm::Client::send_command).then_compute_output(move |r| {
        let mut sent = seen.lock().unwrap();
        sent.push(r.instance_ids().to_vec());
        SendCommandOutput::builder()
            .command(
                Command::builder()
                    .command_id(format!("cmd-{}", sent.len()))
                    .set_instance_ids(r.instance_ids.clone())
                    .build(),
            )
            .build()
    });
    let ids: Vec<String> = (0..120).map(|n| format!("i-{n:017x}")).collect();
    let commands = sent.clone();
    let list = mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |r| {
        let n: usize = r.command_id().unwrap()[4..].parse().unwrap();
        let rows = commands.lock().unwrap()[n - 1]
            .iter()
            .map(|id| {
                CommandInvocation::builder()
                    .instance_id(id)
                    .status(CommandInvocationStatus::Success)
                    .status_details("Success")
                    .build()
            })
            .collect();
        ListCommandInvocationsOutput::builder()
            .set_command_invocations(Some(rows))
            .build()
    });
    let get = deployed_everywhere();
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &[&send, &list, &get]);
    let transport = fast(client);
    let script = render(Body::Recreate, &[], &[]);
    let job = job(&script, &ids, Rate::Count(5));
    let out = transport
        .run(
            &job,
            CancellationToken::new(),
            &Lines(std::sync::Mutex::default()),
        )
        .await
        .unwrap();
    let out = parsed(out);
    let mut sizes: Vec<usize> = sent.lock().unwrap().iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [20, 50, 50]);
    assert_eq!(out.len(), 120);
    assert!(out.iter().all(Invocation::deployed));
    let targets: Vec<&str> = out.iter().map(|i| i.target.as_str()).collect();
    assert_eq!(targets, ids.iter().map(String::as_str).collect::<Vec<_>>());
    // Each invocation names the command it belongs to.
    let commands: Vec<&str> = out
        .iter()
        .map(|i| i.command_id.as_deref().unwrap())
        .collect();
    assert_eq!(commands[0], "cmd-1");
    assert_eq!(commands[50], "cmd-2");
    assert_eq!(commands[119], "cmd-3");
}

/// A count of max concurrency holds across commands: SSM applies `MaxConcurrency` per
/// command, so 120 targets at 2 go as three commands one after another, each sent once the
/// one before has ended (at once they ran 6 hosts at a time), and each with a `TimeoutSeconds`
/// that covers its waves (delivery + waves × the per-host timeout), not a fixed 600 s.
#[tokio::test]
async fn a_count_sends_the_commands_one_after_another_with_timeouts_for_their_waves() {
    let log: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let sent: Arc<std::sync::Mutex<Vec<Vec<String>>>> = Arc::default();
    let (seen, said) = (sent.clone(), log.clone());
    let send = mock!(aws_sdk_ssm::Client::send_command).then_compute_output(move |r| {
        let mut sent = seen.lock().unwrap();
        sent.push(r.instance_ids().to_vec());
        said.lock().unwrap().push(format!(
            "send {} ({} instances, TimeoutSeconds {}, MaxConcurrency {})",
            sent.len(),
            r.instance_ids().len(),
            r.timeout_seconds().unwrap_or_default(),
            r.max_concurrency().unwrap_or_default()
        ));
        SendCommandOutput::builder()
            .command(
                Command::builder()
                    .command_id(format!("cmd-{}", sent.len()))
                    .build(),
            )
            .build()
    });
    let polls: Arc<std::sync::Mutex<BTreeMap<usize, usize>>> = Arc::default();
    let (commands, said) = (sent.clone(), log.clone());
    let list = mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |r| {
        let n: usize = r.command_id().unwrap()[4..].parse().unwrap();
        let mut polls = polls.lock().unwrap();
        let count = polls.entry(n).or_default();
        *count += 1;
        // Running at the first poll, ended from the second on.
        let status = if *count == 1 {
            CommandInvocationStatus::InProgress
        } else {
            if *count == 2 {
                said.lock().unwrap().push(format!("command {n} ended"));
            }
            CommandInvocationStatus::Success
        };
        let rows = commands.lock().unwrap()[n - 1]
            .iter()
            .map(|id| {
                CommandInvocation::builder()
                    .instance_id(id)
                    .status(status.clone())
                    .status_details(status.as_str())
                    .build()
            })
            .collect();
        ListCommandInvocationsOutput::builder()
            .set_command_invocations(Some(rows))
            .build()
    });
    let get = deployed_everywhere();
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &[&send, &list, &get]);
    let ids: Vec<String> = (0..120).map(|n| format!("i-{n:017x}")).collect();
    let script = render(Body::Recreate, &[], &[]);
    let mut job = job(&script, &ids, Rate::Count(0));
    job.policy.max_concurrency = Rate::Count(2);
    let out = fast(client)
        .run(
            &job,
            CancellationToken::new(),
            &Lines(std::sync::Mutex::default()),
        )
        .await
        .unwrap();
    assert!(parsed(out).iter().all(Invocation::deployed));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "send 1 (50 instances, TimeoutSeconds 2100, MaxConcurrency 2)",
            "command 1 ended",
            "send 2 (50 instances, TimeoutSeconds 2100, MaxConcurrency 2)",
            "command 2 ended",
            "send 3 (20 instances, TimeoutSeconds 1200, MaxConcurrency 2)",
            "command 3 ended",
        ]
    );
}

/// `GetCommandInvocation`: every instance ended Success, its output a deployed result.
fn deployed_everywhere() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(|r| {
        GetCommandInvocationOutput::builder()
            .instance_id(r.instance_id().unwrap_or_default())
            .status("Success".into())
            .status_details("Success")
            .response_code(0)
            .standard_output_content(DEPLOYED)
            .build()
    })
}

fn fast(client: aws_sdk_ssm::Client) -> SsmTransport {
    SsmTransport::new(client).with_poll(Poll {
        first: Duration::from_millis(1),
        max: Duration::from_millis(5),
        throttled_max: Duration::from_millis(40),
        ..Poll::default()
    })
}

fn sent_one() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_ssm::Client::send_command).then_compute_output(|_| {
        SendCommandOutput::builder()
            .command(Command::builder().command_id("cmd-1").build())
            .build()
    })
}

fn listed(status: CommandInvocationStatus) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |_| {
        ListCommandInvocationsOutput::builder()
            .command_invocations(
                CommandInvocation::builder()
                    .instance_id("i-0123456789abcdef0")
                    .status(status.clone())
                    .status_details(status.as_str())
                    .build(),
            )
            .build()
    })
}

/// `ListCommandInvocations` may say an invocation ended while `GetCommandInvocation` still
/// says `InProgress`, with part of the output: hoist asks again until it has the end (the
/// result line), instead of judging the partial output.
#[tokio::test]
async fn an_invocation_that_get_still_reports_running_is_fetched_again_until_it_ended() {
    let gets = Arc::new(AtomicUsize::new(0));
    let counted = gets.clone();
    let get = mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(move |r| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        let b =
            GetCommandInvocationOutput::builder().instance_id(r.instance_id().unwrap_or_default());
        if n < 2 {
            b.status("InProgress".into())
                .status_details("InProgress")
                .response_code(-1)
                .standard_output_content("hoist: healthy\n")
                .build()
        } else {
            b.status("Success".into())
                .status_details("Success")
                .response_code(0)
                .standard_output_content(DEPLOYED)
                .build()
        }
    });
    let list = listed(CommandInvocationStatus::Success);
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &[&sent_one(), &list, &get]);
    let script = render(Body::Recreate, &[], &[]);
    let ids = ["i-0123456789abcdef0".to_owned()];
    let out = fast(client)
        .run(
            &job(&script, &ids, Rate::Count(0)),
            CancellationToken::new(),
            &Lines(std::sync::Mutex::default()),
        )
        .await
        .unwrap();
    let out = parsed(out);
    assert_eq!(gets.load(Ordering::SeqCst), 3);
    assert_eq!(out[0].status, InvocationStatus::Success);
    assert!(out[0].deployed(), "{:?}", out[0]);
}

/// SSM's `MaxDocumentSizeExceeded` is said in plain words: the quota, the script's size,
/// and that no host received it.
#[tokio::test]
async fn max_document_size_exceeded_is_explained_in_plain_words() {
    use aws_sdk_ssm::types::error::MaxDocumentSizeExceeded;
    let refused = mock!(aws_sdk_ssm::Client::send_command).then_error(|| {
        SendCommandError::MaxDocumentSizeExceeded(
            MaxDocumentSizeExceeded::builder()
                .message("Document content exceeds the maximum size")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &[&refused]);
    let script = render(Body::Recreate, &[], &[]);
    let ids = ["i-0123456789abcdef0".to_owned()];
    let out = fast(client)
        .run(
            &job(&script, &ids, Rate::Count(0)),
            CancellationToken::new(),
            &Lines(std::sync::Mutex::default()),
        )
        .await;
    let text = match out {
        Err(e) => e.to_string(),
        Ok(invs) => invs.iter().map(|i| i.stderr.clone()).collect(),
    };
    assert!(text.contains("64 KB quota"), "{text}");
    assert!(
        text.contains(&format!("({} bytes)", script.text.len())),
        "{text}"
    );
    assert!(text.contains("no host received it"), "{text}");
}

/// The agent cuts stdout by bytes and appends its suffix: multibyte output under 24,000
/// characters can be cut, and the suffix alone tells a cut.
#[test]
fn truncation_is_told_by_bytes_or_by_the_agents_suffix() {
    let multibyte = "é".repeat(12_000); // 12,000 characters, 24,000 bytes
    assert!(truncated(&multibyte, STDOUT_LIMIT));
    let cut = format!("{}{}", "a".repeat(100), crate::transport::ssm::TRUNCATED);
    assert!(truncated(&cut, STDOUT_LIMIT));
    assert!(!truncated(&"a".repeat(23_999), STDOUT_LIMIT));
    assert!(!truncated(DEPLOYED, STDOUT_LIMIT));
}

/// A command SSM refuses does not abandon the others, already sent: its instances are
/// reported not sent (failed), every other instance is waited for and judged.
#[tokio::test]
async fn a_refused_command_fails_its_instances_and_the_others_run() {
    use aws_sdk_ssm::operation::send_command::SendCommandError;
    use aws_sdk_ssm::types::error::InvalidInstanceId;
    let refused = mock!(aws_sdk_ssm::Client::send_command)
        .match_requests(|r| r.instance_ids().len() == 20)
        .then_error(|| {
            SendCommandError::InvalidInstanceId(
                InvalidInstanceId::builder()
                    .message("Instances [[i-0000000000000064]] not in a valid state")
                    .build(),
            )
        });
    let send = mock!(aws_sdk_ssm::Client::send_command).then_compute_output(|r| {
        SendCommandOutput::builder()
            .command(
                Command::builder()
                    .command_id(format!("cmd-{}", r.instance_ids()[0]))
                    .build(),
            )
            .build()
    });
    let ids: Vec<String> = (0..120).map(|n| format!("i-{n:016x}")).collect();
    let by_first: std::collections::HashMap<String, Vec<String>> = ids
        .chunks(50)
        .map(|c| (format!("cmd-{}", c[0]), c.to_vec()))
        .collect();
    let list = mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |r| {
        let rows = by_first[r.command_id().unwrap()]
            .iter()
            .map(|id| {
                CommandInvocation::builder()
                    .instance_id(id)
                    .status(CommandInvocationStatus::Success)
                    .status_details("Success")
                    .build()
            })
            .collect();
        ListCommandInvocationsOutput::builder()
            .set_command_invocations(Some(rows))
            .build()
    });
    let get = deployed_everywhere();
    let client = mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        &[&refused, &send, &list, &get]
    );
    let transport = fast(client);
    let script = render(Body::Recreate, &[], &[]);
    let job = job(&script, &ids, Rate::Percent(100));
    let out = parsed(
        transport
            .run(
                &job,
                CancellationToken::new(),
                &Lines(std::sync::Mutex::default()),
            )
            .await
            .unwrap(),
    );
    let targets: Vec<&str> = out.iter().map(|i| i.target.as_str()).collect();
    assert_eq!(targets, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out[..100].iter().all(Invocation::deployed));
    for inv in &out[100..] {
        assert_eq!(inv.status, InvocationStatus::Failed);
        assert!(
            inv.stderr.contains("was not sent") && inv.stderr.contains("SendCommand"),
            "{}",
            inv.stderr
        );
    }
}

/// Past `max_errors` hoist stops only what has not started: the pending instance is
/// cancelled, the one mid-deploy finishes (cancelling it would cost it its release).
#[tokio::test]
async fn past_max_errors_only_pending_instances_are_cancelled() {
    use aws_sdk_ssm::operation::cancel_command::CancelCommandOutput;
    let ids = [
        "i-0000000000000000a",
        "i-0000000000000000b",
        "i-0000000000000000c",
    ];
    let send = mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
        SendCommandOutput::builder()
            .command(Command::builder().command_id("cmd-1").build())
            .build()
    });
    let cancelled = Arc::new(std::sync::Mutex::new(Vec::<Vec<String>>::new()));
    let seen = cancelled.clone();
    let cancel = mock!(aws_sdk_ssm::Client::cancel_command).then_compute_output(move |r| {
        seen.lock().unwrap().push(r.instance_ids().to_vec());
        CancelCommandOutput::builder().build()
    });
    let after_cancel = cancelled.clone();
    let list =
        mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |_| {
            let row = |id: &str, s: &str| {
                CommandInvocation::builder()
                    .instance_id(id)
                    .status(CommandInvocationStatus::from(s))
                    .status_details(s)
                    .build()
            };
            let rows = if after_cancel.lock().unwrap().is_empty() {
                vec![
                    row(ids[0], "Failed"),
                    row(ids[1], "InProgress"),
                    row(ids[2], "Pending"),
                ]
            } else {
                vec![
                    row(ids[0], "Failed"),
                    row(ids[1], "Success"),
                    row(ids[2], "Cancelled"),
                ]
            };
            ListCommandInvocationsOutput::builder()
                .set_command_invocations(Some(rows))
                .build()
        });
    let get = mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(|r| {
        let id = r.instance_id().unwrap_or_default();
        let (status, code, out) = match id {
            "i-0000000000000000a" => ("Failed", 1, ""),
            "i-0000000000000000b" => ("Success", 0, DEPLOYED),
            _ => ("Cancelled", -1, ""),
        };
        GetCommandInvocationOutput::builder()
            .instance_id(id)
            .status(status.into())
            .status_details(status)
            .response_code(code)
            .standard_output_content(out)
            .build()
    });
    let client = mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        &[&send, &cancel, &list, &get]
    );
    let ids: Vec<String> = ids.iter().map(std::string::ToString::to_string).collect();
    let transport = SsmTransport::new(client).with_poll(Poll {
        first: Duration::from_millis(5),
        max: Duration::from_millis(20),
        throttled_max: Duration::from_millis(40),
        ..Poll::default()
    });
    let script = render(Body::Recreate, &[], &[]);
    let out = transport
        .run(
            &job(&script, &ids, Rate::Count(0)),
            CancellationToken::new(),
            &Lines(std::sync::Mutex::default()),
        )
        .await
        .unwrap();
    let out = parsed(out);
    assert_eq!(*cancelled.lock().unwrap(), [vec![ids[2].clone()]]);
    assert_eq!(out[0].status, InvocationStatus::Failed);
    assert!(
        out[1].deployed(),
        "the running instance finished its deploy"
    );
    assert_eq!(out[2].status, InvocationStatus::Cancelled);
}

/// Three instances: SSM's overall command would say Success (undeliverable instances do
/// not count as errors), but hoist judges each one: only `a` deployed.
#[tokio::test]
async fn judges_each_instance_not_the_command() {
    let ids = [
        "i-0000000000000000a",
        "i-0000000000000000b",
        "i-0000000000000000c",
    ];
    let send = mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
        SendCommandOutput::builder()
            .command(Command::builder().command_id("cmd-1").build())
            .build()
    });
    // First poll: nothing visible yet (eventual consistency); then throttled once; then
    // running; then final.
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let list = mock!(aws_sdk_ssm::Client::list_command_invocations)
        .match_requests(|r| r.command_id() == Some("cmd-1"))
        .then_compute_output(move |_| {
            let n = p.fetch_add(1, Ordering::SeqCst);
            let row = |id: &str, s: &str, d: &str| {
                CommandInvocation::builder()
                    .instance_id(id)
                    .status(CommandInvocationStatus::from(s))
                    .status_details(d)
                    .build()
            };
            let rows = match n {
                0 => vec![],
                1 => ids
                    .iter()
                    .map(|i| row(i, "InProgress", "InProgress"))
                    .collect(),
                _ => vec![
                    row(ids[0], "Success", "Success"),
                    row(ids[1], "Failed", "Undeliverable"),
                    row(ids[2], "Success", "Success"),
                ],
            };
            ListCommandInvocationsOutput::builder()
                .set_command_invocations(Some(rows))
                .build()
        });
    let throttle = mock!(aws_sdk_ssm::Client::list_command_invocations)
        .sequence()
        .error(|| {
            ListCommandInvocationsError::generic(
                aws_sdk_ssm::error::ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .build();
    let get = mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(|r| {
        let id = r.instance_id().unwrap_or_default();
        let (status, details, code, out) = match id {
            "i-0000000000000000a" => ("Success", "Success", 0, DEPLOYED),
            "i-0000000000000000b" => ("Failed", "Undeliverable", -1, ""),
            // Exit 0 but no result line: the script did not finish its job.
            _ => ("Success", "Success", 0, "hoist: starting\n"),
        };
        GetCommandInvocationOutput::builder()
            .instance_id(id)
            .status(status.into())
            .status_details(details)
            .response_code(code)
            .standard_output_content(out)
            .build()
    });
    let client = mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        &[&send, &throttle, &list, &get]
    );
    let ids: Vec<String> = ids.iter().map(std::string::ToString::to_string).collect();
    let transport = SsmTransport::new(client).with_poll(Poll {
        first: Duration::from_millis(5),
        max: Duration::from_millis(20),
        throttled_max: Duration::from_millis(40),
        ..Poll::default()
    });
    let script = render(Body::Recreate, &[], &[]);
    let job = job(&script, &ids, Rate::Count(5));
    let sink = Lines(std::sync::Mutex::default());
    let out = transport
        .run(&job, CancellationToken::new(), &sink)
        .await
        .unwrap();
    let out = parsed(out);
    assert_eq!(out.len(), 3);
    assert!(out[0].deployed());
    assert_eq!(out[1].status, InvocationStatus::Undeliverable);
    assert_eq!(out[1].exit_code, None, "ResponseCode -1: never ran");
    assert!(!out[1].deployed());
    assert!(!out[2].deployed());
    assert!(out[2].failure_reason().unwrap().contains("no HOIST-RESULT"));
    let (t, p) = (throttle.num_calls(), polls.load(Ordering::SeqCst));
    assert!(t >= 1 && p >= 3, "throttled {t}, polls {p}");
    let lines = sink.0.lock().unwrap().join("\n");
    assert!(lines.contains("Failed (Undeliverable)"), "{lines}");
}
