//! The lock against a fake Parameter Store (aws-smithy-mocks): one parameter, with AWS's
//! answers for a put without overwrite of an existing name, a read or delete of a missing
//! one, and injected throttling and access denial.

use std::sync::Mutex;

use aws_sdk_ssm::config::retry::RetryConfig;
use aws_sdk_ssm::error::ErrorMetadata;
use aws_sdk_ssm::operation::cancel_command::CancelCommandOutput;
use aws_sdk_ssm::operation::delete_parameter::{DeleteParameterError, DeleteParameterOutput};
use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
use aws_sdk_ssm::operation::list_command_invocations::{
    ListCommandInvocationsError, ListCommandInvocationsOutput,
};
use aws_sdk_ssm::operation::put_parameter::{PutParameterError, PutParameterOutput};
use aws_sdk_ssm::types::{CommandInvocation, CommandInvocationStatus, Parameter};
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};

use super::*;
use crate::domain::events::Silent;
use crate::domain::lock_parameter as parameter;

const NAME: &str = "/hoist/web/lock/0123456789ab";

/// What the fake store holds, and what it is told to answer instead.
#[derive(Default)]
struct Store {
    value: Option<String>,
    /// Puts answered `ThrottlingException` before one goes through.
    throttle_puts: usize,
    /// Every put answered `AccessDeniedException`.
    deny_puts: bool,
    /// Puts answered `TooManyUpdates` (another write under way) before one goes through.
    busy_puts: usize,
    puts: Vec<(String, bool)>,
    deletes: usize,
    /// SSM commands by id: the status of their one invocation (absent: SSM knows none).
    commands: std::collections::BTreeMap<String, CommandInvocationStatus>,
    cancels: Vec<String>,
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// An SSM client over `store`, without the SDK's own retries (hoist's are what is tested).
fn client(store: &Arc<Mutex<Store>>) -> (Client, [Rule; 5]) {
    let s = store.clone();
    let put = mock!(aws_sdk_ssm::Client::put_parameter).then_compute_response(move |r| {
        let mut st = s.lock().unwrap();
        if st.deny_puts {
            return MockResponse::Error(PutParameterError::generic(meta(
                "AccessDeniedException",
                "User: arn:aws:sts::123456789012:assumed-role/ci/x is not authorized to \
                 perform: ssm:PutParameter on resource: arn:aws:ssm:us-east-1:123456789012:\
                 parameter/hoist/web/lock/0123456789ab",
            )));
        }
        if st.busy_puts > 0 {
            st.busy_puts -= 1;
            return MockResponse::Error(PutParameterError::generic(meta(
                "TooManyUpdates",
                "There are concurrent updates for the resource that you are trying to modify.",
            )));
        }
        if st.throttle_puts > 0 {
            st.throttle_puts -= 1;
            return MockResponse::Error(PutParameterError::generic(meta(
                "ThrottlingException",
                "Rate exceeded",
            )));
        }
        let overwrite = r.overwrite().unwrap_or(false);
        assert!(
            !overwrite || r.tags().is_empty(),
            "Parameter Store refuses tags with an overwrite"
        );
        if st.value.is_some() && !overwrite {
            return MockResponse::Error(PutParameterError::generic(meta(
                "ParameterAlreadyExists",
                "The parameter already exists. To overwrite this value, set the overwrite \
                 option in the request to true.",
            )));
        }
        let value = r.value().unwrap().to_owned();
        st.puts.push((value.clone(), overwrite));
        st.value = Some(value);
        MockResponse::Output(PutParameterOutput::builder().version(1).build())
    });
    let s = store.clone();
    let get = mock!(aws_sdk_ssm::Client::get_parameter).then_compute_response(move |_| {
        match &s.lock().unwrap().value {
            Some(v) => MockResponse::Output(
                GetParameterOutput::builder()
                    .parameter(Parameter::builder().name(NAME).value(v).build())
                    .build(),
            ),
            None => MockResponse::Error(GetParameterError::generic(meta("ParameterNotFound", ""))),
        }
    });
    let s = store.clone();
    let delete = mock!(aws_sdk_ssm::Client::delete_parameter).then_compute_response(move |_| {
        let mut st = s.lock().unwrap();
        st.deletes += 1;
        match st.value.take() {
            Some(_) => MockResponse::Output(DeleteParameterOutput::builder().build()),
            None => {
                MockResponse::Error(DeleteParameterError::generic(meta("ParameterNotFound", "")))
            }
        }
    });
    let s = store.clone();
    let list =
        mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_response(move |r| {
            let st = s.lock().unwrap();
            let id = r.command_id().unwrap_or_default();
            match st.commands.get(id) {
                Some(status) => MockResponse::Output(
                    ListCommandInvocationsOutput::builder()
                        .command_invocations(
                            CommandInvocation::builder()
                                .command_id(id)
                                .instance_id("i-0123456789abcdef0")
                                .status(status.clone())
                                .build(),
                        )
                        .build(),
                ),
                None => MockResponse::Error(ListCommandInvocationsError::generic(meta(
                    "InvalidCommandId",
                    "",
                ))),
            }
        });
    let s = store.clone();
    let cancel = mock!(aws_sdk_ssm::Client::cancel_command).then_compute_response(move |r| {
        let mut st = s.lock().unwrap();
        let id = r.command_id().unwrap_or_default().to_owned();
        st.commands
            .insert(id.clone(), CommandInvocationStatus::Cancelled);
        st.cancels.push(id);
        MockResponse::Output(CancelCommandOutput::builder().build())
    });
    let client = mock_client!(
        aws_sdk_ssm,
        RuleMode::MatchAny,
        [&put, &get, &delete, &list, &cancel],
        |c| c.retry_config(RetryConfig::disabled())
    );
    (client, [put, get, delete, list, cancel])
}

fn spec() -> LockSpec {
    LockSpec {
        parameter: NAME.into(),
        lease: Duration::from_secs(300),
    }
}

fn request(holder: &str) -> Request {
    Request {
        operation: "deploy".into(),
        release: "5cddb29209fa".into(),
        run: Some("20261206T170000Z-1a2b3c4d".into()),
        holder: holder.into(),
        host: "ci-1".into(),
    }
}

fn fast() -> Timing {
    Timing {
        poll_min: Duration::from_millis(5),
        poll_max: Duration::from_millis(10),
        say_every: Duration::from_secs(30),
        renew_every: Some(Duration::from_secs(3600)),
    }
}

/// Another hoist's lock naming `commands`, whose lease ends `lease_left` from now.
fn theirs_with(lease_left: i64, commands: &[&str]) -> String {
    let mut record: Record = serde_json::from_str(&theirs(lease_left)).unwrap();
    record.commands = commands.iter().map(|c| (*c).to_owned()).collect();
    serde_json::to_string(&record).unwrap()
}

/// Another hoist's lock, whose lease ends `lease_left` from now (negative: ended).
fn theirs(lease_left: i64) -> String {
    let now = OffsetDateTime::now_utc();
    serde_json::to_string(&Record {
        holder: "octo/web run 42 attempt 1 (mona)".into(),
        host: "runner-7".into(),
        pid: Some(4242),
        operation: "deploy".into(),
        release: "aaaabbbbcccc".into(),
        run: None,
        started: rfc3339(now - Duration::from_secs(60)),
        expires: rfc3339(now + time::Duration::seconds(lease_left)),
        token: "their-token".into(),
        hoist_version: "0.1.0".into(),
        commands: Vec::new(),
        lease_secs: None,
        written: None,
    })
    .unwrap()
}

async fn take(client: &Client, holder: &str, wait: Option<Duration>) -> Result<Held, LockError> {
    acquire(
        client,
        &spec(),
        &request(holder),
        wait,
        fast(),
        Arc::new(Silent),
        &CancellationToken::new(),
    )
    .await
}

fn stored(store: &Arc<Mutex<Store>>) -> Option<Record> {
    store
        .lock()
        .unwrap()
        .value
        .as_deref()
        .map(|v| serde_json::from_str(v).unwrap())
}

#[tokio::test]
async fn a_free_lock_is_taken_with_who_when_and_a_lease_and_released_on_release() {
    let store = Arc::new(Mutex::new(Store::default()));
    let (client, [put, ..]) = client(&store);
    let held = take(&client, "alice@laptop", None).await.unwrap();
    assert_eq!(put.num_calls(), 1);
    let record = stored(&store).expect("the lock is stored");
    assert_eq!(record.holder, "alice@laptop");
    assert_eq!(record.release, "5cddb29209fa");
    assert_eq!(record.operation, "deploy");
    assert_eq!(record.run.as_deref(), Some("20261206T170000Z-1a2b3c4d"));
    assert_eq!(record.token.len(), 32);
    let started = OffsetDateTime::parse(&record.started, &Rfc3339).unwrap();
    let expires = OffsetDateTime::parse(&record.expires, &Rfc3339).unwrap();
    assert_eq!(expires - started, time::Duration::seconds(300));
    assert!(
        !store.lock().unwrap().puts[0].1,
        "created without overwrite"
    );
    assert_eq!(held.report().parameter, NAME);
    held.release().await;
    assert!(stored(&store).is_none(), "released");
    assert_eq!(store.lock().unwrap().deletes, 1);
}

#[tokio::test]
async fn a_held_lock_fails_at_once_naming_its_holder() {
    let store = Arc::new(Mutex::new(Store {
        value: Some(theirs(240)),
        ..Store::default()
    }));
    let (client, [put, get, delete, ..]) = client(&store);
    let Err(err) = take(&client, "alice@laptop", None).await else {
        panic!("taken although held")
    };
    assert!(
        matches!(err, LockError::Held { waited: None, .. }),
        "{err:?}"
    );
    assert!(err.is_contention());
    let text = err.to_string();
    for part in [
        NAME,
        "octo/web run 42 attempt 1 (mona)",
        "release aaaabbbbcccc",
        "lease until",
        "--lock-wait",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert_eq!(
        (put.num_calls(), get.num_calls(), delete.num_calls()),
        (1, 1, 0)
    );
    assert_eq!(stored(&store).unwrap().token, "their-token", "left alone");
}

#[tokio::test]
async fn an_expired_lock_is_stale_never_taken_over_even_when_waiting() {
    let store = Arc::new(Mutex::new(Store {
        value: Some(theirs(-5)),
        ..Store::default()
    }));
    let (client, _rules) = client(&store);
    for wait in [None, Some(Duration::from_secs(60))] {
        let Err(err) = take(&client, "alice@laptop", wait).await else {
            panic!("a stale lock was taken over")
        };
        assert!(matches!(err, LockError::Stale { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("stale")
                && text.contains("octo/web run 42 attempt 1 (mona)")
                && text.contains("hoist unlock"),
            "{text}"
        );
    }
    assert_eq!(stored(&store).unwrap().token, "their-token");
}

#[tokio::test]
async fn with_lock_wait_the_lock_is_taken_once_its_holder_releases_it() {
    let store = Arc::new(Mutex::new(Store {
        value: Some(theirs(240)),
        ..Store::default()
    }));
    let (client, [put, ..]) = client(&store);
    let releaser = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            store.lock().unwrap().value = None;
        })
    };
    let held = take(&client, "alice@laptop", Some(Duration::from_secs(30)))
        .await
        .unwrap();
    releaser.await.unwrap();
    assert!(put.num_calls() > 2, "polled: {} puts", put.num_calls());
    assert!(held.report().waited >= Duration::from_millis(100));
    assert!(
        held.report().to_string().contains("waited"),
        "{}",
        held.report()
    );
    assert_eq!(stored(&store).unwrap().holder, "alice@laptop");
    held.release().await;
}

#[tokio::test]
async fn with_lock_wait_a_lock_still_held_at_the_end_fails_naming_its_holder() {
    let store = Arc::new(Mutex::new(Store {
        value: Some(theirs(240)),
        ..Store::default()
    }));
    let (client, _rules) = client(&store);
    let started = Instant::now();
    let Err(err) = take(&client, "alice@laptop", Some(Duration::from_millis(200))).await else {
        panic!("taken although held")
    };
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        matches!(err, LockError::Held { waited: Some(w), .. } if w >= Duration::from_millis(200)),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("octo/web run 42") && text.contains("(waited 0s for it)"),
        "{text}"
    );
    assert!(!text.contains("--lock-wait"), "it was given: {text}");
}

#[tokio::test]
async fn a_cancel_ends_the_wait() {
    let store = Arc::new(Mutex::new(Store {
        value: Some(theirs(240)),
        ..Store::default()
    }));
    let (client, _rules) = client(&store);
    let cancel = CancellationToken::new();
    let cancelling = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        })
    };
    let result = acquire(
        &client,
        &spec(),
        &request("alice@laptop"),
        Some(Duration::from_secs(60)),
        fast(),
        Arc::new(Silent),
        &cancel,
    )
    .await;
    cancelling.await.unwrap();
    assert!(matches!(result, Err(LockError::Interrupted(_))));
}

#[tokio::test]
async fn a_throttled_put_is_retried_then_takes_the_lock() {
    let store = Arc::new(Mutex::new(Store {
        throttle_puts: 2,
        ..Store::default()
    }));
    let (client, [put, ..]) = client(&store);
    let held = take(&client, "alice@laptop", None).await.unwrap();
    assert_eq!(put.num_calls(), 3, "two throttled, one through");
    assert_eq!(stored(&store).unwrap().holder, "alice@laptop");
    held.release().await;
}

#[tokio::test]
async fn access_denied_names_the_parameter_and_the_permission() {
    let store = Arc::new(Mutex::new(Store {
        deny_puts: true,
        ..Store::default()
    }));
    let (client, [put, ..]) = client(&store);
    let Err(err) = take(&client, "alice@laptop", None).await else {
        panic!("taken although denied")
    };
    assert_eq!(put.num_calls(), 1, "access denied is not retried");
    assert!(!err.is_contention());
    let text = err.to_string();
    assert!(
        text.contains("not allowed to call ssm:PutParameter on the deploy lock")
            && text.contains(NAME)
            && text.contains("ssm:GetParameter")
            && text.contains("ssm:AddTagsToResource")
            && text.contains("AccessDeniedException"),
        "{text}"
    );
}

#[tokio::test]
async fn release_deletes_only_a_lock_that_still_holds_our_token() {
    let store = Arc::new(Mutex::new(Store::default()));
    let (client, _rules) = client(&store);
    let held = take(&client, "alice@laptop", None).await.unwrap();
    // Broken with `hoist unlock` and taken by another deploy meanwhile.
    store.lock().unwrap().value = Some(theirs(240));
    held.release().await;
    assert_eq!(
        stored(&store).unwrap().token,
        "their-token",
        "not ours: kept"
    );
    assert_eq!(store.lock().unwrap().deletes, 0);
    // Broken and not taken again: nothing to delete.
    let held = {
        store.lock().unwrap().value = None;
        take(&client, "alice@laptop", None).await.unwrap()
    };
    store.lock().unwrap().value = None;
    held.release().await;
    assert_eq!(store.lock().unwrap().deletes, 0);
}

#[tokio::test]
async fn renewal_extends_our_lease_and_notices_a_lock_that_is_no_longer_ours() {
    let store = Arc::new(Mutex::new(Store::default()));
    let (client, _rules) = client(&store);
    let held = take(&client, "alice@laptop", None).await.unwrap();
    let mut record = stored(&store).unwrap();
    let first = OffsetDateTime::parse(&record.expires, &Rfc3339).unwrap();
    let longer = LockSpec {
        lease: Duration::from_secs(900),
        ..spec()
    };
    let renewed = renew(&client, &longer, &mut record).await.unwrap();
    let Renewal::Renewed(until) = renewed else {
        panic!("{renewed:?}")
    };
    let until = OffsetDateTime::parse(&until, &Rfc3339).unwrap();
    assert!(
        until - first >= time::Duration::seconds(599),
        "{until} {first}"
    );
    let now = stored(&store).unwrap();
    assert_eq!(now.token, record.token);
    assert_eq!(now.started, record.started, "only the lease moves");
    assert!(store.lock().unwrap().puts.last().unwrap().1, "an overwrite");
    // Someone else's now: not renewed, not overwritten.
    store.lock().unwrap().value = Some(theirs(240));
    let lost = renew(&client, &spec(), &mut record).await.unwrap();
    assert!(
        matches!(&lost, Renewal::Lost(why) if why.contains("octo/web run 42")),
        "{lost:?}"
    );
    assert_eq!(stored(&store).unwrap().token, "their-token");
    // Gone: not put back.
    store.lock().unwrap().value = None;
    let puts = store.lock().unwrap().puts.len();
    let gone = renew(&client, &spec(), &mut record).await.unwrap();
    assert!(
        matches!(&gone, Renewal::Lost(why) if why.contains("gone")),
        "{gone:?}"
    );
    assert!(stored(&store).is_none());
    assert_eq!(store.lock().unwrap().puts.len(), puts);
    held.release().await;
}

/// A renewal whose write was refused (`TooManyUpdates`: another write under way) is no
/// renewal: an error, and the record still ends when the stored lease does.
#[tokio::test]
async fn a_renewal_that_wrote_nothing_is_not_a_renewal() {
    let store = Arc::new(Mutex::new(Store::default()));
    let (client, _rules) = client(&store);
    let held = take(&client, "alice@laptop", None).await.unwrap();
    let mut record = stored(&store).unwrap();
    let before = record.expires.clone();
    store.lock().unwrap().busy_puts = 1;
    let longer = LockSpec {
        lease: Duration::from_secs(900),
        ..spec()
    };
    let err = renew(&client, &longer, &mut record).await.unwrap_err();
    assert!(err.to_string().contains("TooManyUpdates"), "{err}");
    assert!(err.to_string().contains("not renewed"), "{err}");
    assert_eq!(record.expires, before, "the record keeps the lease it has");
    assert_eq!(
        stored(&store).unwrap().expires,
        before,
        "nothing was written"
    );
    // The next try writes.
    let renewed = renew(&client, &longer, &mut record).await.unwrap();
    assert!(matches!(renewed, Renewal::Renewed(_)), "{renewed:?}");
    assert_ne!(stored(&store).unwrap().expires, before);
    held.release().await;
}

#[tokio::test]
async fn the_background_renewal_keeps_the_lease_ahead() {
    let store = Arc::new(Mutex::new(Store::default()));
    let (client, _rules) = client(&store);
    let held = acquire(
        &client,
        &spec(),
        &request("alice@laptop"),
        None,
        Timing {
            renew_every: Some(Duration::from_millis(50)),
            ..fast()
        },
        Arc::new(Silent),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overwrites = store
        .lock()
        .unwrap()
        .puts
        .iter()
        .filter(|(_, overwrite)| *overwrite)
        .count();
    assert!(overwrites >= 2, "{overwrites} renewals");
    held.release().await;
    assert!(
        stored(&store).is_none(),
        "no renewal puts it back after the release"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(stored(&store).is_none());
}

#[test]
fn the_scope_is_the_fleet_whatever_the_order_it_is_written_in() {
    let parse = |targets: &str| {
        let yaml = format!("app: web\ntargets:\n{targets}");
        crate::config::parse(&yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap()
    };
    let prod = parse("  tags:\n    Env: [prod, canary]\n    Team: [web]\n");
    let prod_reordered = parse("  tags:\n    Team: [web]\n    Env: [canary, prod]\n");
    let staging = parse("  tags:\n    Env: [staging]\n");
    let ids = parse("  instance_ids: [i-0123456789abcdef0, i-00000000]\n");
    let ids_reordered = parse("  instance_ids: [i-00000000, i-0123456789abcdef0]\n");
    assert_eq!(parameter(&prod), parameter(&prod_reordered));
    assert_ne!(parameter(&prod), parameter(&staging));
    assert_eq!(parameter(&ids), parameter(&ids_reordered));
    assert_ne!(parameter(&staging), parameter(&ids));
    let name = parameter(&prod);
    let scope = name.strip_prefix("/hoist/web/lock/").unwrap();
    assert_eq!(scope.len(), 12);
    assert!(scope.bytes().all(|b| b.is_ascii_hexdigit()));
    // Never a secret parameter's name (`/hoist/<app>/<release>/<run>/env`), even for a
    // release called `lock`.
    let secret = crate::plan::secret_parameter(&prod, "lock", Some("20261206T170000Z-1a2b3c4d"));
    assert_ne!(name, secret);
    assert_eq!(name.matches('/').count() + 1, secret.matches('/').count());
    assert_eq!(LockSpec::of(&prod).lease, Duration::from_secs(300));
}

#[test]
fn the_holder_is_the_workflow_run_under_github_actions_else_user_at_host() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(
        holder_from_env(env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "octo/web"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_ACTOR", "mona"),
        ])),
        "octo/web run 42 attempt 2 (mona)"
    );
    let local = holder_from_env(env(&[("USER", "alice")]));
    assert_eq!(local, format!("alice@{}", hostname()));
    assert!(holder_from_env(env(&[])).starts_with("uid"));
}

#[test]
fn a_record_says_who_and_is_expired_only_past_its_lease() {
    let record: Record = serde_json::from_str(&theirs(60)).unwrap();
    let now = OffsetDateTime::now_utc();
    assert!(!record.expired(now));
    assert!(record.expired(now + time::Duration::seconds(120)));
    let text = record.describe();
    assert!(
        text.starts_with("octo/web run 42 attempt 1 (mona) (deploy of release aaaabbbbcccc since "),
        "{text}"
    );
}

mod live;

/// Staleness goes by AWS's clock when the record came from Parameter Store: its last write
/// (`LastModifiedDate`) plus the lease, whatever end the holder's own clock wrote.
#[test]
fn staleness_is_judged_by_when_aws_says_the_lock_was_written() {
    let now = OffsetDateTime::now_utc();
    let mut record: Record = serde_json::from_str(&theirs(3600)).unwrap();
    record.lease_secs = Some(300);
    // The holder's clock ran an hour fast: its `expires` is far off, but AWS wrote the lock
    // ten minutes ago with a 5-minute lease.
    record.written = Some(now - Duration::from_secs(600));
    assert!(record.expired(now));
    // The holder's clock ran slow: its `expires` has passed, but AWS wrote it a minute ago.
    let mut slow: Record = serde_json::from_str(&theirs(-600)).unwrap();
    slow.lease_secs = Some(300);
    slow.written = Some(now - Duration::from_secs(60));
    assert!(!slow.expired(now));
    // A record from an older hoist (no lease length) goes by its `expires`.
    slow.lease_secs = None;
    assert!(slow.expired(now));
    // What is stored carries the lease, never the time it was read with.
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(json["lease_secs"], 300);
    assert!(json.get("written").is_none());
}
