//! `Error`'s tests: every error prints its cause once, as hoist reports it and as a reporter
//! that walks `source()` would.

use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;

use aws_sdk_ssm::error::SdkError;
use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationError;

use super::*;
use crate::ecr::EcrError;
use crate::image::{BuildError, ContextError, PushError};
use crate::lock::{self, LockError};
use crate::ops::steps::DeployError;
use crate::output::text::report;
use crate::revision::RevisionError;
use crate::transport::TransportError;
use crate::transport::ssm::SsmError;

/// The texts of an error and of every error down its `source()` chain.
fn chain(err: &(dyn StdError + 'static)) -> Vec<String> {
    std::iter::successors(Some(err), |&e| e.source())
        .map(ToString::to_string)
        .collect()
}

/// As hoist reports `err`, and as a reporter that walks `source()` would (miette, anyhow's
/// `{:#}`), each of `causes` and each text down the chain is printed exactly once.
#[track_caller]
fn prints_each_cause_once(err: &Error, causes: &[&str]) {
    let texts = chain(err);
    let reporters = [
        ("hoist", report(err, false)),
        ("a chain-walking reporter", texts.join(": ")),
    ];
    let wanted = causes
        .iter()
        .map(std::string::ToString::to_string)
        .chain(texts[1..].to_vec());
    for cause in wanted {
        for (name, out) in &reporters {
            assert_eq!(
                out.matches(cause.as_str()).count(),
                1,
                "{name} prints `{cause}` other than once:\n{out}\n{err:?}"
            );
        }
    }
}

fn io_error(text: &str) -> io::Error {
    io::Error::other(text.to_owned())
}

fn ssm_api(operation: &'static str, message: &str) -> SsmError {
    SsmError::Api {
        operation,
        message: message.to_owned(),
    }
}

#[test]
fn every_error_prints_its_cause_once() {
    // An SSM API error as hoist makes it from an SDK error with a chain of its own.
    let sdk = SdkError::<DescribeInstanceInformationError>::construction_failure(io::Error::new(
        io::ErrorKind::ConnectionRefused,
        "Connection refused by 127.0.0.9",
    ));
    let message = crate::aws::error_message(&sdk);
    prints_each_cause_once(
        &Error::Preflight(ssm_api("DescribeInstanceInformation", &message)),
        &["Connection refused by 127.0.0.9"],
    );
    let denied = "AccessDeniedException: not allowed to ssm:PutParameter";
    prints_each_cause_once(
        &Error::Deploy(DeployError::SecretParameter(ssm_api(
            "PutParameter",
            denied,
        ))),
        &[denied],
    );
    prints_each_cause_once(
        &Error::Deploy(DeployError::Transport(TransportError::Ssm(ssm_api(
            "SendCommand",
            denied,
        )))),
        &[denied],
    );
    // Build errors: the engine's, the context's.
    let engine = || bollard::errors::Error::IOError {
        err: io_error("the engine hung up"),
    };
    prints_each_cause_once(
        &Error::Deploy(DeployError::Build(BuildError::Engine(engine()))),
        &["the engine hung up"],
    );
    prints_each_cause_once(
        &Error::Deploy(DeployError::Build(BuildError::Context(ContextError::Io {
            path: PathBuf::from("/srv/app/key.pem"),
            cause: io_error("permission denied to the test"),
        }))),
        &["permission denied to the test"],
    );
    let glob = globset::Glob::new("a[").unwrap_err();
    prints_each_cause_once(
        &Error::Deploy(DeployError::Build(BuildError::Context(
            ContextError::Pattern {
                file: PathBuf::from(".dockerignore"),
                line: 3,
                pattern: "a[".into(),
                cause: glob.clone(),
            },
        ))),
        &[&glob.to_string()],
    );
    // git, through `?` as revision.rs converts it.
    prints_each_cause_once(
        &Error::Revision(RevisionError::from(io::Error::new(
            io::ErrorKind::NotFound,
            "no git on the test's PATH",
        ))),
        &["no git on the test's PATH"],
    );
    // Deploy errors wrapping the rest.
    prints_each_cause_once(
        &Error::Deploy(DeployError::Transport(TransportError::from(io_error(
            "broken pipe to the test's script",
        )))),
        &["broken pipe to the test's script"],
    );
    prints_each_cause_once(
        &Error::Deploy(DeployError::Transport(TransportError::Spawn {
            shell: "/bin/bash".into(),
            cause: io_error("no shell in the test"),
        })),
        &["no shell in the test"],
    );
    prints_each_cause_once(
        &Error::Deploy(DeployError::Push(PushError::Tag {
            image: "sha256:ab".into(),
            name: "reg/web:r1".into(),
            cause: engine(),
        })),
        &["the engine hung up"],
    );
    prints_each_cause_once(
        &Error::Deploy(DeployError::Ecr(EcrError::Api {
            operation: "BatchGetImage",
            message: "ThrottlingException: Rate exceeded".into(),
        })),
        &["ThrottlingException: Rate exceeded"],
    );
    prints_each_cause_once(
        &Error::Deploy(DeployError::Docker(engine())),
        &["the engine hung up"],
    );
    prints_each_cause_once(&Error::Docker(engine()), &["the engine hung up"]);
    prints_each_cause_once(
        &Error::Write {
            path: PathBuf::from("plan.json"),
            cause: io_error("no space left for the test"),
        },
        &["no space left for the test"],
    );
    prints_each_cause_once(
        &Error::Config(ConfigError::Read {
            path: PathBuf::from("hoist.yaml"),
            cause: io_error("unreadable for the test"),
        }),
        &["unreadable for the test"],
    );
    prints_each_cause_once(
        &Error::Lock(LockError::AccessDenied {
            action: "ssm:PutParameter",
            parameter: "/hoist/web/lock/0123456789ab".into(),
            message: message.clone(),
        }),
        &[&message],
    );
    prints_each_cause_once(
        &Error::Lock(LockError::Api {
            operation: "GetParameter",
            parameter: "/hoist/web/lock/0123456789ab".into(),
            message: message.clone(),
        }),
        &[&message],
    );
}

/// A lock in the way exits 3 (nothing changed), a lock call that failed 1, a wait cut
/// short by Ctrl-C 130.
#[test]
fn lock_errors_have_their_exit_codes() {
    let record: lock::Record = serde_json::from_value(serde_json::json!({
        "holder": "octo/web run 42 attempt 1 (mona)", "host": "runner", "operation": "deploy",
        "release": "r1", "started": "2026-12-06T17:00:00Z", "expires": "2026-12-06T17:05:00Z",
        "token": "t",
    }))
    .unwrap();
    let parameter = "/hoist/web/lock/0123456789ab".to_owned();
    let held = Error::Lock(LockError::Held {
        parameter: parameter.clone(),
        record: Box::new(record.clone()),
        waited: None,
    });
    let stale = Error::Lock(LockError::Stale {
        parameter: parameter.clone(),
        record: Box::new(record),
    });
    assert_eq!(held.exit_code(), 3);
    assert_eq!(stale.exit_code(), 3);
    assert!(report(&held, false).contains("held by octo/web run 42 attempt 1 (mona)"));
    let denied = Error::Lock(LockError::AccessDenied {
        action: "ssm:GetParameter",
        parameter: parameter.clone(),
        message: "AccessDeniedException: no".into(),
    });
    assert_eq!(denied.exit_code(), 1);
    assert_eq!(
        Error::Lock(LockError::Interrupted(parameter)).exit_code(),
        130
    );
}

/// Refusals about the image (a tag pushed over since hoist recorded its digest, a
/// repository whose tags are mutable against `image.immutable_tags: true`, an unreadable
/// record) are bad input with nothing changed: exit 2. A record call that failed is a
/// failure: exit 1, its cause printed once.
#[test]
fn image_refusals_exit_2_and_a_failed_record_call_1() {
    let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let moved = Error::Deploy(DeployError::TagMoved {
        repository: "hello".into(),
        tag: "0123456789abcdef0123456789abcdef01234567".into(),
        found: digest('f'),
        recorded: digest('a'),
        parameter: "/hoist/hello/images/0123456789abcdef0123456789abcdef01234567".into(),
    });
    let text = report(&moved, false);
    for part in [
        "tag 0123456789abcdef0123456789abcdef01234567 of ECR repository hello",
        &digest('f'),
        &digest('a'),
        "/hoist/hello/images/0123456789abcdef0123456789abcdef01234567",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let mutable = Error::Deploy(DeployError::Ecr(EcrError::MutableRepository {
        repository: "hello".into(),
        mutability: "MUTABLE".into(),
    }));
    let bad = Error::Deploy(DeployError::Ecr(EcrError::BadRecord {
        parameter: "/hoist/hello/images/x".into(),
        value: "hello@latest".into(),
    }));
    for refusal in [&moved, &mutable, &bad] {
        assert_eq!(refusal.exit_code(), 2, "{refusal}");
    }
    let failed = Error::Deploy(DeployError::Ecr(EcrError::Record {
        operation: "GetParameter",
        parameter: "/hoist/hello/images/x".into(),
        message: "AccessDeniedException: not allowed to ssm:GetParameter".into(),
    }));
    assert_eq!(failed.exit_code(), 1);
    prints_each_cause_once(
        &failed,
        &["AccessDeniedException: not allowed to ssm:GetParameter"],
    );
}
