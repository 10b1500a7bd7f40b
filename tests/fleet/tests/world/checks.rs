//! The checks, each a function of the shared world. Instances: full 0-2;
//! light 0-3 carry the tag Role=batch; light 4 is for faults and the stub;
//! light 5 is offline for the delivery-timeout check.

// The SDK's error types are large; these closures only return them to assert on.
#![allow(clippy::result_large_err)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_ecr::types::{ImageIdentifier, ImageScanningConfiguration, ImageTagMutability};
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{
    CommandInvocation, InstanceInformationStringFilter, ParameterMetadata, ParameterStringFilter,
    ParameterType, ResourceTypeForTagging, Tag, Target,
};
use base64::Engine;
use serde_json::Value;

use crate::support::{Ctx, assert_success, describe, status_of, stdout_of};

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

fn secret() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("s3cr3t-{t:x}-{}", std::process::id())
}

/// The host's `docker` CLI; panics with its stderr on failure.
fn docker(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running docker");
    if let Some(input) = stdin {
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes());
    }
    let out = child.wait_with_output().expect("docker");
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The registry password the emulated GetAuthorizationToken hands out.
fn registry_password(ctx: &Ctx) -> String {
    let out = ctx
        .rt
        .block_on(ctx.ecr.get_authorization_token().send())
        .expect("GetAuthorizationToken");
    let token = out.authorization_data()[0]
        .authorization_token()
        .expect("token");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("base64 token");
    let text = String::from_utf8(raw).expect("utf-8 token");
    text.strip_prefix("AWS:").expect("AWS:password").to_string()
}

/// Pushes the world's busybox image from the host's engine as REPO:TAG.
fn host_push(ctx: &Ctx, repo: &str, tag: &str) {
    let base = ctx.host_image();
    if Command::new("docker")
        .args(["image", "inspect", &base])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| !s.success())
    {
        docker(
            &["import", &ctx.var("HOIST_FLEET_BUSYBOX_TAR"), &base],
            None,
        );
    }
    let password = registry_password(ctx);
    docker(
        &[
            "login",
            "--username",
            "AWS",
            "--password-stdin",
            &ctx.registry,
        ],
        Some(&password),
    );
    let target = format!("{}/{repo}:{tag}", ctx.registry);
    docker(&["tag", &base, &target], None);
    docker(&["push", &target], None);
    docker(&["rmi", &target], None);
}

// ---------------------------------------------------------------- AWS CLI

pub fn cli_send_command(ctx: &Ctx) {
    let i0 = &ctx.full[0];
    let params = serde_json::json!({"commands": [
        "ip -4 -o addr show eth0",
        "docker info --format 'engine={{.DockerRootDir}}'",
        "echo \"instance=$AWS_SSM_INSTANCE_ID\"",
        "echo \"host=$(hostname)\"",
    ]})
    .to_string();
    let id = ctx.aws_ok(&[
        "ssm",
        "send-command",
        "--instance-ids",
        &i0.id,
        "--document-name",
        "AWS-RunShellScript",
        "--comment",
        "from the AWS CLI",
        "--parameters",
        &params,
        "--query",
        "Command.CommandId",
        "--output",
        "text",
    ]);
    let id = id.trim();
    let deadline = Instant::now() + Duration::from_secs(60);
    let invocation: Value = loop {
        let out = ctx.aws(&[
            "ssm",
            "get-command-invocation",
            "--command-id",
            id,
            "--instance-id",
            &i0.id,
            "--output",
            "json",
        ]);
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).expect("json");
            if !["Pending", "InProgress", "Delayed"].contains(&v["Status"].as_str().unwrap_or("")) {
                break v;
            }
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("InvocationDoesNotExist"), "aws failed: {err}");
        }
        assert!(Instant::now() < deadline, "the command did not finish");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(invocation["Status"], "Success", "{invocation}");
    assert_eq!(invocation["ResponseCode"], 0);
    let stdout = invocation["StandardOutputContent"]
        .as_str()
        .unwrap_or_default();
    assert!(
        stdout.contains(&format!("inet {}/24", i0.address)),
        "{stdout}"
    );
    let engine_root = i0.root.join("docker-data");
    assert!(
        stdout.contains(&format!("engine={}", engine_root.display())),
        "not the instance's own engine: {stdout}"
    );
    assert!(stdout.contains(&format!("instance={}", i0.id)), "{stdout}");
    let name = format!("ip-{}", i0.address.replace('.', "-"));
    assert!(stdout.contains(&format!("host={name}\n")), "{stdout}");
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert_ne!(host_name.trim(), name, "the host's own name changed");
    for other in &ctx.full[1..] {
        assert!(!stdout.contains(&other.address), "{stdout}");
    }
    let listed = ctx.aws_ok(&[
        "ssm",
        "list-command-invocations",
        "--command-id",
        id,
        "--details",
        "--output",
        "json",
    ]);
    let listed: Value = serde_json::from_str(&listed).expect("json");
    let inv = &listed["CommandInvocations"][0];
    assert_eq!(inv["InstanceId"], i0.id.as_str());
    assert_eq!(inv["CommandPlugins"][0]["Name"], "aws:runShellScript");
    assert!(
        inv["CommandPlugins"][0]["Output"]
            .as_str()
            .unwrap_or_default()
            .contains(&i0.address)
    );
    let commands = ctx.aws_ok(&[
        "ssm",
        "list-commands",
        "--command-id",
        id,
        "--output",
        "json",
    ]);
    let commands: Value = serde_json::from_str(&commands).expect("json");
    assert_eq!(commands["Commands"][0]["Status"], "Success", "{commands}");
    assert_eq!(commands["Commands"][0]["Comment"], "from the AWS CLI");
    let info = ctx.aws_ok(&["ssm", "describe-instance-information", "--output", "json"]);
    let info: Value = serde_json::from_str(&info).expect("json");
    let list = info["InstanceInformationList"].as_array().expect("list");
    assert_eq!(list.len(), ctx.full.len() + ctx.light.len());
    assert!(list.iter().all(|i| i["PlatformType"] == "Linux"));
}

pub fn cli_ecr_inside_instances(ctx: &Ctx) {
    let reg = &ctx.registry;
    let tar = ctx.var("HOIST_FLEET_BUSYBOX_TAR");
    ctx.aws_ok(&[
        "ecr",
        "create-repository",
        "--repository-name",
        "fleet-test/app",
    ]);
    let login = format!(
        "aws ecr get-login-password --region \"$AWS_SSM_REGION_NAME\" | docker login --username AWS --password-stdin {reg}"
    );
    let image = format!("{reg}/fleet-test/app:v1");
    let push = ctx.run(
        &ctx.full[0].id,
        &[
            "set -e",
            &format!("docker import {tar} fleet-test/base:1 >/dev/null"),
            &login,
            &format!("docker tag fleet-test/base:1 {image}"),
            &format!("docker push {image}"),
        ],
    );
    let out = assert_success(&push);
    assert!(out.contains("Login Succeeded"), "{out}");
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    let pull = ctx.run(
        &ctx.full[1].id,
        &[
            "set -e",
            &login,
            &format!("docker pull {image}"),
            &format!("docker run --rm {image} echo pulled-and-ran"),
        ],
    );
    let out = assert_success(&pull);
    assert!(out.contains("pulled-and-ran"), "{out}");
    let images = ctx.aws_ok(&[
        "ecr",
        "describe-images",
        "--repository-name",
        "fleet-test/app",
    ]);
    assert!(images.contains("\"v1\""), "{images}");
    // A wrong password is refused by the registry.
    let refused = ctx.run(
        &ctx.full[1].id,
        &[&format!(
            "echo wrong | docker login --username AWS --password-stdin {reg}"
        )],
    );
    assert_eq!(status_of(&refused).0, "Failed", "{}", describe(&refused));
}

pub fn host_engine_push(ctx: &Ctx) {
    let ca = std::path::Path::new("/etc/docker/certs.d")
        .join(&ctx.registry)
        .join("ca.crt");
    assert!(ca.is_file(), "{} missing", ca.display());
    host_push(ctx, "fleet-test/host", "v1");
    let image = format!("{}/fleet-test/host:v1", ctx.registry);
    docker(&["pull", "-q", &image], None);
    docker(&["rmi", &image], None);
    let images = ctx.aws_ok(&[
        "ecr",
        "describe-images",
        "--repository-name",
        "fleet-test/host",
    ]);
    assert!(images.contains("\"v1\""), "{images}");
}

pub fn cli_parameter_store(ctx: &Ctx) {
    let secret = secret();
    let name = "/fleet-test/cli/db-password";
    // The secret reaches the instance through a file, not the command (which the journal keeps).
    let file = ctx.dir.join("run/cli-secret");
    std::fs::write(&file, &secret).expect("writing the secret file");
    let on_instance = ctx.run(
        &ctx.full[2].id,
        &[
            "set -e",
            // The agent gives no region: a script names it, as on EC2.
            "export AWS_DEFAULT_REGION=\"$AWS_SSM_REGION_NAME\"",
            &format!("aws ssm put-parameter --name {name} --type SecureString --value \"$(cat {})\" >/dev/null", file.display()),
            &format!("aws ssm get-parameter --name {name} --with-decryption --query Parameter.Value --output text"),
        ],
    );
    assert_eq!(assert_success(&on_instance).trim(), secret);
    let plain = ctx.aws_ok(&["ssm", "get-parameter", "--name", name, "--output", "json"]);
    let plain: Value = serde_json::from_str(&plain).expect("json");
    assert_eq!(plain["Parameter"]["Type"], "SecureString");
    assert!(
        !plain.to_string().contains(&secret),
        "value shown without decryption"
    );
    let clear = ctx.aws_ok(&[
        "ssm",
        "get-parameter",
        "--name",
        name,
        "--with-decryption",
        "--query",
        "Parameter.Value",
        "--output",
        "text",
    ]);
    assert_eq!(clear.trim(), secret);
    let again = ctx.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        name,
        "--type",
        "SecureString",
        "--value",
        "x",
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("ParameterAlreadyExists"));
    let over = ctx.aws_ok(&[
        "ssm",
        "put-parameter",
        "--name",
        name,
        "--type",
        "SecureString",
        "--value",
        "y",
        "--overwrite",
        "--query",
        "Version",
        "--output",
        "text",
    ]);
    assert_eq!(over.trim(), "2");
    ctx.aws_ok(&["ssm", "delete-parameter", "--name", name]);
    // The journal keeps the PutParameter calls, not the SecureString's value.
    let journal = std::fs::read_to_string(ctx.dir.join("run/journal.jsonl")).expect("journal");
    assert!(journal.contains(name));
    assert!(!journal.contains(&secret), "the journal holds the secret");
}

pub fn isolation(ctx: &Ctx) {
    let tar = ctx.var("HOIST_FLEET_BUSYBOX_TAR");
    let first = ctx.run(
        &ctx.full[0].id,
        &[
            "set -e",
            &format!("docker import {tar} iso:1 >/dev/null"),
            "docker run -d --name only-on-0 iso:1 sleep 600 >/dev/null",
            "echo mark > /run/only-on-0",
            "echo mark > /var/lib/hoist/only-on-0",
            "echo mark > /etc/nginx/only-on-0",
            "echo mark > /var/log/nginx/only-on-0",
            "docker ps --format 'name={{.Names}}'",
        ],
    );
    assert!(assert_success(&first).contains("name=only-on-0"));
    for other in &ctx.full[1..] {
        let out = ctx.run(
            &other.id,
            &[
                "for f in /run/only-on-0 /var/lib/hoist/only-on-0 /etc/nginx/only-on-0 /var/log/nginx/only-on-0; do test -e $f && echo visible:$f; done",
                "docker ps -a --format 'name={{.Names}}'",
                "true",
            ],
        );
        let out = assert_success(&out);
        assert!(!out.contains("visible:"), "{}: {out}", other.id);
        assert!(!out.contains("name=only-on-0"), "{}: {out}", other.id);
    }
    assert!(!std::path::Path::new("/run/only-on-0").exists());
    for f in [
        "/var/lib/hoist/only-on-0",
        "/etc/nginx/only-on-0",
        "/var/log/nginx/only-on-0",
    ] {
        assert!(!std::path::Path::new(f).exists(), "{f} on the host");
    }
    assert!(!docker(&["ps", "-a", "--format", "{{.Names}}"], None).contains("only-on-0"));
}

// ---------------------------------------------------------------- SDK

pub fn sdk_ssm_run_command(ctx: &Ctx) {
    let i0 = &ctx.full[0];
    // Targets by tag, with the optional fields AWS accepts.
    let id = ctx.send(
        &[],
        &["echo targeted; hostname -I 2>/dev/null || true"],
        |r| {
            r.targets(Target::builder().key("tag:Name").values("fleet-0").build())
                .comment("sdk")
                .timeout_seconds(60)
                .max_concurrency("50%")
                .max_errors("0")
                .parameters("executionTimeout", vec!["120".into()])
                .cloud_watch_output_config(
                    aws_sdk_ssm::types::CloudWatchOutputConfig::builder()
                        .cloud_watch_output_enabled(true)
                        .build(),
                )
        },
    );
    let got = ctx.wait(&id, &i0.id, Duration::from_secs(60));
    assert!(assert_success(&got).contains("targeted"));
    assert_eq!(got.plugin_name(), Some("aws:runShellScript"));
    assert!(
        got.execution_start_date_time()
            .is_some_and(|s| s.ends_with('Z'))
    );
    let listed = ctx
        .rt
        .block_on(ctx.ssm.list_commands().command_id(&id).send())
        .expect("ListCommands");
    let cmd = &listed.commands()[0];
    assert_eq!(cmd.status().map(|s| s.as_str()), Some("Success"));
    assert_eq!(cmd.target_count(), 1);
    assert_eq!(cmd.completed_count(), 1);
    assert_eq!(cmd.comment(), Some("sdk"));
    assert_eq!(cmd.targets().len(), 1);
    assert!(
        cmd.cloud_watch_output_config()
            .is_some_and(|c| c.cloud_watch_output_enabled())
    );
    let invs = ctx
        .rt
        .block_on(
            ctx.ssm
                .list_command_invocations()
                .command_id(&id)
                .details(true)
                .send(),
        )
        .expect("ListCommandInvocations");
    let inv = &invs.command_invocations()[0];
    assert_eq!(inv.instance_id(), Some(i0.id.as_str()));
    assert!(
        inv.instance_name()
            .is_some_and(|n| n.contains(&i0.address.replace('.', "-")))
    );
    let plugin = &inv.command_plugins()[0];
    assert!(plugin.output().is_some_and(|o| o.contains("targeted")));
    assert!(plugin.response_start_date_time().is_some());
    // All commands, paginated.
    let all = ctx
        .rt
        .block_on(ctx.ssm.list_commands().max_results(1).send())
        .expect("ListCommands");
    assert_eq!(all.commands().len(), 1);
    assert!(all.next_token().is_some());
    // As the agent runs it: a _script.sh under the orchestration directory,
    // run through sh (a shebang is honoured), in workingDirectory if given.
    let script = ctx.send(
        &[&i0.id],
        &[
            "#!/bin/bash",
            "echo \"shell=${BASH_VERSION:+bash} script=$0 pwd=$(pwd)\"",
        ],
        |r| r.parameters("workingDirectory", vec!["/var/lib/hoist".into()]),
    );
    let out = assert_success(&ctx.wait(&script, &i0.id, Duration::from_secs(30)));
    let expected = format!(
        "shell=bash script=/var/lib/amazon/ssm/{}/document/orchestration/{script}/awsrunShellScript/0.awsrunShellScript/_script.sh pwd=/var/lib/hoist",
        i0.id
    );
    assert_eq!(out.trim(), expected);
    // Cancelling a finished command is accepted and changes nothing.
    ctx.rt
        .block_on(ctx.ssm.cancel_command().command_id(&id).send())
        .expect("CancelCommand");
    // Errors in AWS's shape, parsed by the SDK.
    let err = |r: Result<_, aws_sdk_ssm::error::SdkError<_, _>>| -> String {
        let e: aws_sdk_ssm::error::SdkError<
            aws_sdk_ssm::operation::send_command::SendCommandError,
            _,
        > = r.expect_err("an error");
        e.code().unwrap_or_default().to_string()
    };
    let base = || {
        ctx.ssm
            .send_command()
            .document_name("AWS-RunShellScript")
            .parameters("commands", vec!["true".into()])
    };
    assert_eq!(
        err(ctx
            .rt
            .block_on(base().instance_ids("i-0123456789abcdef0").send())),
        "InvalidInstanceId"
    );
    assert_eq!(
        err(ctx.rt.block_on(
            base()
                .document_name("AWS-RunPowerShellScript")
                .instance_ids(&i0.id)
                .send()
        )),
        "InvalidDocument"
    );
    let mut many = base();
    for n in 0..51 {
        many = many.instance_ids(format!("i-0{n:016x}"));
    }
    assert_eq!(err(ctx.rt.block_on(many.send())), "ValidationException");
    assert_eq!(
        err(ctx
            .rt
            .block_on(base().instance_ids(&i0.id).max_concurrency("0").send())),
        "ValidationException"
    );
    assert_eq!(
        err(ctx.rt.block_on(
            base()
                .instance_ids(&i0.id)
                .parameters("executionTimeout", vec!["soon".into()])
                .send()
        )),
        "InvalidParameters"
    );
    let cancel = ctx.rt.block_on(
        ctx.ssm
            .cancel_command()
            .command_id("00000000-0000-4000-8000-000000000000")
            .send(),
    );
    assert_eq!(
        cancel
            .err()
            .and_then(|e| e.code().map(str::to_string))
            .as_deref(),
        Some("InvalidCommandId")
    );
    // DescribeInstanceInformation, all and filtered.
    let info = ctx
        .rt
        .block_on(ctx.ssm.describe_instance_information().send())
        .expect("DescribeInstanceInformation");
    let list = info.instance_information_list();
    assert_eq!(list.len(), ctx.full.len() + ctx.light.len());
    let me = list
        .iter()
        .find(|i| i.instance_id() == Some(i0.id.as_str()))
        .expect("instance 0 listed");
    assert_eq!(me.ping_status().map(|p| p.as_str()), Some("Online"));
    assert_eq!(me.platform_type().map(|p| p.as_str()), Some("Linux"));
    assert_eq!(me.ip_address(), Some(i0.address.as_str()));
    let filtered = ctx
        .rt
        .block_on(
            ctx.ssm
                .describe_instance_information()
                .filters(
                    InstanceInformationStringFilter::builder()
                        .key("tag:Role")
                        .values("batch")
                        .build()
                        .expect("filter"),
                )
                .send(),
        )
        .expect("DescribeInstanceInformation");
    assert_eq!(filtered.instance_information_list().len(), 4);
}

pub fn sdk_parameters(ctx: &Ctx) {
    let secret = secret();
    let code = |e: &dyn ProvideErrorMetadata| e.code().unwrap_or_default().to_string();
    let put = |name: &str, kind: ParameterType, value: &str, overwrite: bool| {
        ctx.rt.block_on(
            ctx.ssm
                .put_parameter()
                .name(name)
                .r#type(kind)
                .value(value)
                .overwrite(overwrite)
                .send(),
        )
    };
    let plain = "/fleet-test/sdk/plain";
    let hidden = "/fleet-test/sdk/hidden";
    assert_eq!(
        put(plain, ParameterType::String, "one", false)
            .expect("put")
            .version(),
        1
    );
    let exists = put(plain, ParameterType::String, "two", false).expect_err("exists");
    assert_eq!(code(&exists), "ParameterAlreadyExists");
    assert_eq!(
        put(plain, ParameterType::String, "two", true)
            .expect("put")
            .version(),
        2
    );
    put(hidden, ParameterType::SecureString, &secret, false).expect("put secure");
    let get = |name: &str, decrypt: bool| {
        ctx.rt.block_on(
            ctx.ssm
                .get_parameter()
                .name(name)
                .with_decryption(decrypt)
                .send(),
        )
    };
    let p = get(plain, false).expect("get");
    let p = p.parameter().expect("parameter");
    assert_eq!((p.value(), p.version()), (Some("two"), 2));
    let enc = get(hidden, false).expect("get");
    let enc = enc.parameter().expect("parameter");
    assert_eq!(enc.r#type(), Some(&ParameterType::SecureString));
    assert_ne!(enc.value(), Some(secret.as_str()));
    let dec = get(hidden, true).expect("get");
    assert_eq!(
        dec.parameter().and_then(|p| p.value()),
        Some(secret.as_str())
    );
    let many = ctx
        .rt
        .block_on(
            ctx.ssm
                .get_parameters()
                .names(plain)
                .names(hidden)
                .names("/fleet-test/sdk/missing")
                .with_decryption(true)
                .send(),
        )
        .expect("GetParameters");
    assert_eq!(many.parameters().len(), 2);
    assert_eq!(
        many.invalid_parameters(),
        ["/fleet-test/sdk/missing".to_string()]
    );
    assert!(
        many.parameters()
            .iter()
            .any(|p| p.value() == Some(secret.as_str()))
    );
    let bad = put("/aws/reserved", ParameterType::String, "x", false).expect_err("reserved");
    assert_eq!(code(&bad), "ValidationException");
    for name in [plain, hidden] {
        ctx.rt
            .block_on(ctx.ssm.delete_parameter().name(name).send())
            .expect("DeleteParameter");
    }
    let gone = get(plain, false).expect_err("deleted");
    assert_eq!(code(&gone), "ParameterNotFound");
    assert_eq!(gone.message(), None, "AWS sends no message with it");
    let again = ctx
        .rt
        .block_on(ctx.ssm.delete_parameter().name(plain).send())
        .expect_err("deleted twice");
    assert_eq!(code(&again), "ParameterNotFound");
}

pub fn sdk_ecr_sts(ctx: &Ctx) {
    let who = ctx
        .rt
        .block_on(ctx.sts.get_caller_identity().send())
        .expect("GetCallerIdentity");
    assert_eq!(who.account(), Some(ctx.var("HOIST_FLEET_ACCOUNT").as_str()));
    assert!(who.arn().is_some_and(|a| a.starts_with("arn:aws:sts::")));

    let auth = ctx
        .rt
        .block_on(ctx.ecr.get_authorization_token().send())
        .expect("GetAuthorizationToken");
    let data = &auth.authorization_data()[0];
    assert_eq!(
        data.proxy_endpoint(),
        Some(format!("https://{}", ctx.registry).as_str())
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let expires = data.expires_at().expect("expiresAt").secs();
    assert!(
        (expires - now - 12 * 3600).abs() < 120,
        "expiresAt {expires}, now {now}"
    );

    let code =
        |e: &dyn aws_sdk_ecr::error::ProvideErrorMetadata| e.code().unwrap_or_default().to_string();
    let repo = "fleet-test/sdk";
    let created = ctx
        .rt
        .block_on(
            ctx.ecr
                .create_repository()
                .repository_name(repo)
                .image_tag_mutability(ImageTagMutability::Immutable)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder()
                        .scan_on_push(true)
                        .build(),
                )
                .send(),
        )
        .expect("CreateRepository");
    let r = created.repository().expect("repository");
    assert_eq!(
        r.repository_uri(),
        Some(format!("{}/{repo}", ctx.registry).as_str())
    );
    assert_eq!(
        r.image_tag_mutability(),
        Some(&ImageTagMutability::Immutable)
    );
    assert!(
        r.image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push())
    );
    let dup = ctx
        .rt
        .block_on(ctx.ecr.create_repository().repository_name(repo).send())
        .expect_err("exists");
    assert_eq!(code(&dup), "RepositoryAlreadyExistsException");
    let described = ctx
        .rt
        .block_on(
            ctx.ecr
                .describe_repositories()
                .repository_names(repo)
                .send(),
        )
        .expect("DescribeRepositories");
    assert_eq!(described.repositories().len(), 1);
    let missing = ctx
        .rt
        .block_on(
            ctx.ecr
                .describe_repositories()
                .repository_names("fleet-test/none")
                .send(),
        )
        .expect_err("missing");
    assert_eq!(code(&missing), "RepositoryNotFoundException");

    host_push(ctx, repo, "v1");
    host_push(ctx, repo, "v2");
    let images = |ids: Vec<ImageIdentifier>| {
        ctx.rt.block_on(
            ctx.ecr
                .describe_images()
                .repository_name(repo)
                .set_image_ids(if ids.is_empty() { None } else { Some(ids) })
                .send(),
        )
    };
    let tag = |t: &str| ImageIdentifier::builder().image_tag(t).build();
    let all = images(vec![]).expect("DescribeImages");
    assert_eq!(all.image_details().len(), 1, "{all:?}");
    let detail = &all.image_details()[0];
    assert_eq!(detail.image_tags(), ["v1".to_string(), "v2".to_string()]);
    assert!(detail.image_size_in_bytes().unwrap_or(0) > 100_000);
    assert!(
        detail
            .image_digest()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    let nothing = images(vec![tag("v9")]).expect_err("no such tag");
    assert_eq!(code(&nothing), "ImageNotFoundException");
    let got = ctx
        .rt
        .block_on(
            ctx.ecr
                .batch_get_image()
                .repository_name(repo)
                .image_ids(tag("v1"))
                .image_ids(tag("v9"))
                .send(),
        )
        .expect("BatchGetImage");
    assert_eq!(got.images().len(), 1);
    assert_eq!(got.failures().len(), 1);
    let manifest: Value =
        serde_json::from_str(got.images()[0].image_manifest().expect("manifest")).expect("json");
    assert_eq!(manifest["schemaVersion"], 2);
    let deleted = ctx
        .rt
        .block_on(
            ctx.ecr
                .batch_delete_image()
                .repository_name(repo)
                .image_ids(tag("v2"))
                .send(),
        )
        .expect("BatchDeleteImage");
    assert_eq!(deleted.image_ids().len(), 1);
    let left = images(vec![]).expect("DescribeImages");
    assert_eq!(left.image_details()[0].image_tags(), ["v1".to_string()]);
    ctx.rt
        .block_on(
            ctx.ecr
                .batch_delete_image()
                .repository_name(repo)
                .image_ids(tag("v1"))
                .send(),
        )
        .expect("BatchDeleteImage");
    assert!(
        images(vec![])
            .expect("DescribeImages")
            .image_details()
            .is_empty()
    );
}

// ---------------------------------------------------------------- behaviour

pub fn statuses(ctx: &Ctx) {
    let i = &ctx.full[2].id;
    let ok = ctx.run(i, &["echo fine"]);
    assert_eq!(assert_success(&ok).trim(), "fine");

    let failed = ctx.run(i, &["echo about to fail >&2", "exit 3"]);
    assert_eq!(
        status_of(&failed),
        pair("Failed", "Failed"),
        "{}",
        describe(&failed)
    );
    assert_eq!(failed.response_code(), 3);
    assert!(
        failed
            .standard_error_content()
            .is_some_and(|e| e.contains("about to fail"))
    );

    // As the agent does: exit code 137 reads as a timeout.
    let killed = ctx.run(i, &["exit 137"]);
    assert_eq!(
        status_of(&killed),
        pair("TimedOut", "ExecutionTimedOut"),
        "{}",
        describe(&killed)
    );

    let slow = ctx.send(&[i], &["echo started", "sleep 30"], |r| {
        r.parameters("executionTimeout", vec!["5".into()])
    });
    let t = Instant::now();
    let timed = ctx.wait(&slow, i, Duration::from_secs(30));
    assert_eq!(
        status_of(&timed),
        pair("TimedOut", "ExecutionTimedOut"),
        "{}",
        describe(&timed)
    );
    assert!(t.elapsed() < Duration::from_secs(13));
    assert!(stdout_of(&timed).contains("started"));
    assert_eq!(timed.response_code(), 137);

    let long = ctx.send(&[i], &["sleep 30"], |r| r);
    wait_in_progress(ctx, &long, i);
    ctx.rt
        .block_on(ctx.ssm.cancel_command().command_id(&long).send())
        .expect("CancelCommand");
    let cancelled = ctx.wait(&long, i, Duration::from_secs(20));
    assert_eq!(
        status_of(&cancelled),
        pair("Cancelled", "Cancelled"),
        "{}",
        describe(&cancelled)
    );
    let cmd = ctx
        .rt
        .block_on(ctx.ssm.list_commands().command_id(&long).send())
        .expect("ListCommands");
    assert_eq!(
        cmd.commands()[0].status().map(|s| s.as_str()),
        Some("Cancelled")
    );

    // An agent that comes back before the delivery timeout gets the command.
    let late = &ctx.light[3].id;
    ctx.fault(&["offline", late]);
    let id = ctx.send(&[late], &["echo late"], |r| r);
    std::thread::sleep(Duration::from_millis(800));
    let delayed = ctx
        .rt
        .block_on(
            ctx.ssm
                .get_command_invocation()
                .command_id(&id)
                .instance_id(late)
                .send(),
        )
        .expect("GetCommandInvocation");
    ctx.fault(&["online", late]);
    assert_eq!(status_of(&delayed), pair("Delayed", "Delayed"));
    assert_eq!(
        assert_success(&ctx.wait(&id, late, Duration::from_secs(30))).trim(),
        "late"
    );

    // An instance that is gone: Undeliverable at once, ResponseCode -1.
    let gone = &ctx.light[4].id;
    ctx.fault(&["offline", gone, "--mode", "undeliverable"]);
    let info = ctx
        .rt
        .block_on(ctx.ssm.describe_instance_information().send())
        .expect("DescribeInstanceInformation");
    let ping = info
        .instance_information_list()
        .iter()
        .find(|x| x.instance_id() == Some(gone.as_str()))
        .and_then(|x| x.ping_status().map(|p| p.as_str().to_string()));
    assert_eq!(ping.as_deref(), Some("ConnectionLost"));
    let lost = ctx.run(gone, &["echo never"]);
    ctx.fault(&["online", gone]);
    assert_eq!(
        status_of(&lost),
        pair("Failed", "Undeliverable"),
        "{}",
        describe(&lost)
    );
    assert_eq!(lost.response_code(), -1);
}

pub fn invocation_window(ctx: &Ctx) {
    let i = &ctx.light[1].id;
    // Long enough not to have ended (an ended invocation is visible at once).
    let id = ctx.send(&[i], &["sleep 1"], |r| r);
    let early = ctx
        .rt
        .block_on(
            ctx.ssm
                .get_command_invocation()
                .command_id(&id)
                .instance_id(i)
                .send(),
        )
        .expect_err("not visible yet");
    assert_eq!(early.code(), Some("InvocationDoesNotExist"));
    let listed = ctx
        .rt
        .block_on(ctx.ssm.list_command_invocations().command_id(&id).send())
        .expect("ListCommandInvocations");
    assert!(listed.command_invocations().is_empty());
    assert_success(&ctx.wait(&id, i, Duration::from_secs(30)));
}

fn invocations(ctx: &Ctx, id: &str) -> Vec<CommandInvocation> {
    ctx.rt
        .block_on(
            ctx.ssm
                .list_command_invocations()
                .command_id(id)
                .details(true)
                .send(),
        )
        .expect("ListCommandInvocations")
        .command_invocations()
        .to_vec()
}

fn wait_command(ctx: &Ctx, id: &str) -> aws_sdk_ssm::types::Command {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = ctx
            .rt
            .block_on(ctx.ssm.list_commands().command_id(id).send())
            .expect("ListCommands");
        let cmd = out.commands()[0].clone();
        let status = cmd
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if !["Pending", "InProgress", "Cancelling"].contains(&status.as_str()) {
            return cmd;
        }
        assert!(Instant::now() < deadline, "command {id} still {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn details(invs: &[CommandInvocation]) -> Vec<String> {
    let mut v: Vec<String> = invs
        .iter()
        .map(|i| i.status_details().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

pub fn concurrency_and_errors(ctx: &Ctx) {
    let batch = || Target::builder().key("tag:Role").values("batch").build();
    // MaxConcurrency 2 over four instances: never more than two at once.
    let id = ctx.send(&[], &["sleep 1"], |r| {
        r.targets(batch()).max_concurrency("2")
    });
    let cmd = wait_command(ctx, &id);
    assert_eq!(cmd.status().map(|s| s.as_str()), Some("Success"));
    assert_eq!((cmd.target_count(), cmd.completed_count()), (4, 4));
    let invs = invocations(ctx, &id);
    let spans: Vec<(f64, f64)> = invs
        .iter()
        .map(|i| {
            let p = &i.command_plugins()[0];
            (
                p.response_start_date_time().expect("start").as_secs_f64(),
                p.response_finish_date_time().expect("finish").as_secs_f64(),
            )
        })
        .collect();
    let overlap = spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0);
    assert_eq!(overlap, 2, "at most (and up to) two at once: {spans:?}");

    // MaxErrors 1, one at a time: the second failure stops further sends.
    let id = ctx.send(&[], &["exit 1"], |r| {
        r.targets(batch()).max_concurrency("1").max_errors("1")
    });
    let cmd = wait_command(ctx, &id);
    assert_eq!(cmd.status().map(|s| s.as_str()), Some("Failed"));
    assert_eq!(cmd.error_count(), 2);
    assert_eq!(
        details(&invocations(ctx, &id)),
        ["Failed", "Failed", "Terminated", "Terminated"]
    );

    // Undeliverable does not count as an error.
    let gone = &ctx.light[4].id;
    ctx.fault(&["offline", gone, "--mode", "undeliverable"]);
    let id = ctx.send(
        &[gone, &ctx.light[0].id, &ctx.light[1].id],
        &["true"],
        |r| r.max_errors("0").max_concurrency("1"),
    );
    let cmd = wait_command(ctx, &id);
    ctx.fault(&["online", gone]);
    assert_eq!(cmd.status().map(|s| s.as_str()), Some("Success"), "{cmd:?}");
    assert_eq!(
        details(&invocations(ctx, &id)),
        ["Success", "Success", "Undeliverable"]
    );
}

pub fn truncation(ctx: &Ctx) {
    let i = &ctx.light[4].id;
    let id = ctx.send(
        &[i],
        &[
            "head -c 30000 /dev/zero | tr '\\0' o",
            "head -c 10000 /dev/zero | tr '\\0' e >&2",
        ],
        |r| r,
    );
    let got = ctx.wait(&id, i, Duration::from_secs(30));
    let out = assert_success(&got);
    assert_eq!(out.len(), 24_000);
    assert_eq!(
        got.standard_error_content().unwrap_or_default().len(),
        8_000
    );
    // The plugin's Output: plugin_output_is_cut_at_2400_bytes_with_the_agents_markers.
}

pub fn light_instances(ctx: &Ctx) {
    let light = &ctx.light[4];
    let out = ctx.run(
        &light.id,
        &[
            "docker version",
            "docker run --rm example:1 echo hi",
            "echo light > /run/light-marker",
        ],
    );
    assert!(assert_success(&out).contains("hoist-fleet stub"));
    let calls = std::fs::read_to_string(light.root.join("run/hoist-fleet-docker-calls.log"))
        .expect("the stub's call log");
    assert!(
        calls.contains("docker run --rm example:1 echo hi"),
        "{calls}"
    );
    assert!(light.root.join("run/light-marker").exists());
    assert!(!std::path::Path::new("/run/light-marker").exists());

    // The stub keeps the instance's containers: a taken name is docker's conflict, a started
    // container runs until stopped, and a template field it does not answer is exit 2.
    let out = ctx.run(
        &light.id,
        &[
            "id=$(docker create --name web-1 --label hoist.app=web --publish 8080:80 app:1)",
            "echo \"id ${#id}\"",
            "docker create --name web-1 app:1 2>err >/dev/null; echo \"again $? $(cat err)\"",
            "docker start web-1 >/dev/null",
            "docker ps --filter label=hoist.app=web --format '{{.Names}} {{.State}} {{.Label \"hoist.app\"}}'",
            "docker inspect --format '{{.State.Status}}|{{index .Config.Labels \"hoist.app\"}}|{{.Name}}' \"$id\"",
            "docker inspect --format '{{.State.Pid}}' \"$id\" 2>err; echo \"unanswered $? $(cat err)\"",
            "docker stop web-1 >/dev/null",
            "docker ps -a --format '{{.Names}} {{.State}}'",
        ],
    );
    let text = assert_success(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id 64", "{text}");
    assert!(
        lines[1].starts_with("again 125 Error response from daemon: Conflict. The container name \"/web-1\" is already in use"),
        "{text}"
    );
    assert_eq!(lines[2], "web-1 running web", "{text}");
    assert_eq!(lines[3], "running|web|/web-1", "{text}");
    assert!(
        lines[4].starts_with("unanswered 2 ") && lines[4].contains(".Pid"),
        "{text}"
    );
    assert_eq!(lines[5..], ["web-1 exited"], "{text}");
    // Each light instance has its own engine state.
    let other = ctx.run(
        &ctx.light[0].id,
        &["docker container inspect web-1 >/dev/null 2>&1; echo $?"],
    );
    assert_eq!(assert_success(&other).trim(), "1");
}

pub fn faults(ctx: &Ctx) {
    // Throttling of the next call, parsed by the SDKs.
    ctx.fault(&["throttle", "SendCommand", "--next", "1"]);
    let throttled = ctx.rt.block_on(
        ctx.ssm_raw
            .send_command()
            .document_name("AWS-RunShellScript")
            .instance_ids(&ctx.light[0].id)
            .parameters("commands", vec!["true".into()])
            .send(),
    );
    assert_eq!(
        throttled
            .err()
            .and_then(|e| e.code().map(str::to_string))
            .as_deref(),
        Some("ThrottlingException")
    );
    assert_success(&ctx.run(&ctx.light[0].id, &["true"]));
    ctx.fault(&["throttle", "GetCallerIdentity", "--next", "1"]);
    let sts = ctx.rt.block_on(ctx.sts.get_caller_identity().send());
    assert_eq!(
        sts.err()
            .and_then(|e| e.code().map(str::to_string))
            .as_deref(),
        Some("Throttling")
    );
    // Latency.
    ctx.fault(&["latency", "DescribeInstanceInformation", "400"]);
    let t = Instant::now();
    ctx.rt
        .block_on(ctx.ssm.describe_instance_information().send())
        .expect("DescribeInstanceInformation");
    assert!(t.elapsed() >= Duration::from_millis(400));
    ctx.fault(&["clear"]);

    // A read-only disk and a stopped engine on an instance, then repaired.
    let i = &ctx.full[1].id;
    ctx.fault(&["disk", i, "readonly"]);
    let ro = ctx.run(i, &["touch /var/lib/hoist/x"]);
    assert_eq!(status_of(&ro).0, "Failed", "{}", describe(&ro));
    ctx.fault(&["disk", i, "ok"]);
    assert_success(&ctx.run(i, &["touch /var/lib/hoist/x"]));
    ctx.fault(&["disk", i, "full"]);
    let full = ctx.run(
        i,
        &["dd if=/dev/zero of=/var/lib/hoist/big bs=64k count=10"],
    );
    assert_eq!(status_of(&full).0, "Failed", "{}", describe(&full));
    assert!(
        full.standard_error_content()
            .is_some_and(|e| e.contains("No space left")),
        "{}",
        describe(&full)
    );
    ctx.fault(&["disk", i, "ok"]);
    assert_success(&ctx.run(
        i,
        &["dd if=/dev/zero of=/var/lib/hoist/big bs=64k count=10"],
    ));
    ctx.fault(&["engine", i, "down"]);
    let down = ctx.run(i, &["docker info >/dev/null"]);
    assert_eq!(status_of(&down).0, "Failed", "{}", describe(&down));
    ctx.fault(&["engine", i, "ok"]);
    assert_success(&ctx.run(i, &["docker info >/dev/null"]));

    // The journal: one JSON line per call.
    let journal = std::fs::read_to_string(ctx.dir.join("run/journal.jsonl")).expect("journal");
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let sends = lines
        .iter()
        .filter(|l| l["operation"] == "SendCommand")
        .count();
    assert!(sends >= 10, "{sends} SendCommand lines");
    assert!(
        lines
            .iter()
            .any(|l| l["operation"] == "SendCommand" && l["error"] == "ThrottlingException")
    );
    assert!(
        lines
            .iter()
            .all(|l| l["service"].is_string() && l["time"].is_number() && l["caller"].is_string())
    );
}

/// Takes light 5 offline (agent stopped) and sends it a command with the
/// shortest TimeoutSeconds; the last check sees it end DeliveryTimedOut. A second command,
/// at MaxConcurrency 1, goes to light 5 then light 4: light 4's wave waits its turn behind
/// the offline instance until the command's TimeoutSeconds has passed, and so never starts.
pub fn delivery_timeout_start(ctx: &Ctx) {
    let i = ctx.light[5].id.clone();
    ctx.fault(&["offline", &i]);
    let id = ctx.send(&[&i], &["echo never"], |r| r.timeout_seconds(30));
    let waiting = ctx.light[4].id.clone();
    let queued = ctx.send(&[&i, &waiting], &["echo never"], |r| {
        r.timeout_seconds(30).max_concurrency("1")
    });
    *ctx.queued.lock().expect("lock") = Some((queued, waiting));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = ctx.rt.block_on(
            ctx.ssm
                .get_command_invocation()
                .command_id(&id)
                .instance_id(&i)
                .send(),
        );
        if let Ok(g) = got
            && status_of(&g) == pair("Delayed", "Delayed")
        {
            break;
        }
        assert!(Instant::now() < deadline, "never Delayed");
        std::thread::sleep(Duration::from_millis(200));
    }
    *ctx.delivery.lock().expect("lock") = Some((id, i, Instant::now()));
}

pub fn delivery_timeout_finish(ctx: &Ctx) {
    let Some((id, i, sent)) = ctx.delivery.lock().expect("lock").take() else {
        panic!("the start of this check did not run or failed");
    };
    let left = Duration::from_secs(31).saturating_sub(sent.elapsed());
    std::thread::sleep(left);
    let got = ctx.wait(&id, &i, Duration::from_secs(20));
    ctx.fault(&["online", &i]);
    assert_eq!(
        status_of(&got),
        pair("TimedOut", "DeliveryTimedOut"),
        "{}",
        describe(&got)
    );
    assert_eq!(got.response_code(), -1);
    let (queued, waiting) = ctx
        .queued
        .lock()
        .expect("lock")
        .take()
        .expect("queued command");
    let got = ctx.wait(&queued, &waiting, Duration::from_secs(20));
    assert_eq!(
        status_of(&got),
        pair("TimedOut", "DeliveryTimedOut"),
        "a wave still waiting when TimeoutSeconds passed must never start: {}",
        describe(&got)
    );
    assert_eq!(stdout_of(&got), "");
}

/// Bad input is an error with a message and exit code 1, never a panic.
pub fn bad_input(ctx: &Ctx) {
    let d = ctx.dir.to_string_lossy().into_owned();
    let cases: &[(&[&str], &str)] = &[
        (
            &["up", "--dir", "/tmp/hoist-fleet-bad"],
            "must not be under /tmp",
        ),
        (&["up", "--dir", &d], "already up"),
        (
            &["up", "--dir", "/var/tmp/hoist-fleet-bad", "--index", "0"],
            "use 1 to 99",
        ),
        (&["env", "--dir", "/var/tmp/hoist-fleet-none"], "no world"),
        (
            &["fault", "--dir", &d, "offline", "i-0000000000000000a"],
            "no instance",
        ),
        (
            &["fault", "--dir", &d, "disk", &ctx.light[0].id, "full"],
            "full instance",
        ),
    ];
    for (args, message) in cases {
        let out = Command::new(crate::support::BIN)
            .args(*args)
            .output()
            .expect("hoist-fleet");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(!std::path::Path::new("/var/tmp/hoist-fleet-bad").exists());
    let env = Command::new(crate::support::BIN)
        .args(["env", "--dir", &d])
        .output()
        .expect("hoist-fleet env");
    let text = String::from_utf8_lossy(&env.stdout);
    assert!(
        text.contains("export AWS_ENDPOINT_URL=http://10.213."),
        "{text}"
    );
    assert!(text.contains("export HOIST_FLEET_REGISTRY="), "{text}");
}

/// A second world of 200 light instances: one command to all of them by tag,
/// 50 at a time, and the paginated listings.
pub fn light_scale() {
    let t = Instant::now();
    let mut guard = crate::support::Guard::up(
        "light",
        &[
            "--index",
            "98",
            "--instances",
            "0",
            "--light",
            "200",
            "--light-docker-sleep-ms",
            "50",
        ],
    );
    println!(
        "    up of 200 light instances took {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let ctx = Ctx::new(&guard);
    assert_eq!(ctx.light.len(), 200);
    let t = Instant::now();
    let id = ctx.send(&[], &["docker pull app:1", "docker run -d app:1"], |r| {
        r.targets(Target::builder().key("tag:Env").values("light").build())
            .max_concurrency("50")
    });
    let cmd = wait_command(&ctx, &id);
    let secs = t.elapsed().as_secs_f64();
    println!("    200 light invocations took {secs:.1}s");
    assert_eq!(cmd.status().map(|s| s.as_str()), Some("Success"), "{cmd:?}");
    assert_eq!((cmd.target_count(), cmd.completed_count()), (200, 200));
    let mut seen = 0;
    let mut token = None;
    loop {
        let page = ctx
            .rt
            .block_on(
                ctx.ssm
                    .list_command_invocations()
                    .command_id(&id)
                    .set_next_token(token.clone())
                    .send(),
            )
            .expect("ListCommandInvocations");
        seen += page.command_invocations().len();
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, 200);
    let mut listed = 0;
    let mut token = None;
    loop {
        let page = ctx
            .rt
            .block_on(
                ctx.ssm
                    .describe_instance_information()
                    .set_next_token(token.clone())
                    .send(),
            )
            .expect("DescribeInstanceInformation");
        listed += page.instance_information_list().len();
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(listed, 200);
    let calls =
        std::fs::read_to_string(ctx.light[199].root.join("run/hoist-fleet-docker-calls.log"))
            .expect("call log");
    assert_eq!(calls.lines().count(), 2, "{calls}");
    drop(ctx);
    let t = Instant::now();
    let made = guard.down();
    println!("    down took {:.1}s", t.elapsed().as_secs_f64());
    crate::support::assert_nothing_left(&made);
}

// ------------------------------------------- tags, tiers, policies, secrets

fn journal_lines(ctx: &Ctx) -> Vec<Value> {
    std::fs::read_to_string(ctx.dir.join("run/journal.jsonl"))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A tagged parameter and a JSON secret, made with the AWS CLI on the host and
/// read with the AWS CLI inside an instance (as hoist's remote script does),
/// with the instances' own credentials; the journal tells the callers apart.
pub fn cli_tags_secrets_and_callers(ctx: &Ctx) {
    let host_key = ctx.var("AWS_ACCESS_KEY_ID");
    let instance_key = ctx.var("HOIST_FLEET_INSTANCE_ACCESS_KEY_ID");
    assert!(
        instance_key.starts_with("ASIAFLEETINSTANCE") && instance_key != host_key,
        "instance key {instance_key:?}, host key {host_key:?}"
    );
    let i = &ctx.full[1].id;

    // A parameter with tags; tags with --overwrite is refused as in AWS.
    let name = "/fleet-test/cli-tags/db-url";
    let tagged = ctx.aws_ok(&[
        "ssm",
        "put-parameter",
        "--name",
        name,
        "--type",
        "String",
        "--value",
        "postgres://db:5432/app",
        "--tags",
        "Key=App,Value=web",
        "Key=Env,Value=test",
        "--output",
        "json",
    ]);
    let tagged: Value = serde_json::from_str(&tagged).expect("json");
    assert_eq!(tagged["Tier"], "Standard", "{tagged}");
    let both = ctx.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        name,
        "--type",
        "String",
        "--value",
        "x",
        "--tags",
        "Key=App,Value=api",
        "--overwrite",
    ]);
    let err = String::from_utf8_lossy(&both.stderr);
    assert!(!both.status.success());
    assert!(
        err.contains("ValidationException")
            && err.contains("tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag."),
        "{err}"
    );
    let tags = ctx.aws_ok(&[
        "ssm",
        "list-tags-for-resource",
        "--resource-type",
        "Parameter",
        "--resource-id",
        name,
        "--output",
        "json",
    ]);
    let tags: Value = serde_json::from_str(&tags).expect("json");
    assert_eq!(
        tags["TagList"],
        serde_json::json!([{"Key": "App", "Value": "web"}, {"Key": "Env", "Value": "test"}])
    );

    // A JSON secret, given to the CLI in a file (never on a command line).
    let secret = secret();
    let first = format!("{{\"username\":\"app\",\"password\":\"{secret}\"}}");
    let second_secret = format!("{secret}-rotated");
    let second = format!("{{\"username\":\"app\",\"password\":\"{second_secret}\"}}");
    let file = ctx.dir.join("run/cli-secret.json");
    std::fs::write(&file, &first).expect("writing the secret file");
    let secret_name = "fleet-test/cli/db";
    let created = ctx.aws_ok(&[
        "secretsmanager",
        "create-secret",
        "--name",
        secret_name,
        "--description",
        "database login",
        "--secret-string",
        &format!("file://{}", file.display()),
        "--tags",
        "Key=App,Value=web",
        "--output",
        "json",
    ]);
    let created: Value = serde_json::from_str(&created).expect("json");
    let arn = created["ARN"].as_str().expect("ARN").to_string();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:secretsmanager:{}:{}:secret:{secret_name}-",
            ctx.var("AWS_REGION"),
            ctx.var("HOIST_FLEET_ACCOUNT")
        )),
        "{arn}"
    );
    let first_version = created["VersionId"]
        .as_str()
        .expect("VersionId")
        .to_string();
    let dup = ctx.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        secret_name,
        "--secret-string",
        "x",
    ]);
    assert!(String::from_utf8_lossy(&dup.stderr).contains("ResourceExistsException"));

    let on_instance = ctx.run(
        i,
        &[
            "set -e",
            "export AWS_DEFAULT_REGION=\"$AWS_SSM_REGION_NAME\"",
            &format!("aws ssm get-parameter --name {name} --query Parameter.Value --output text"),
            &format!("aws secretsmanager get-secret-value --secret-id {secret_name} --query SecretString --output text"),
            &format!("aws secretsmanager get-secret-value --secret-id {arn} --query SecretString --output text"),
            "aws sts get-caller-identity --query Arn --output text",
        ],
    );
    let out = assert_success(&on_instance);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0], "postgres://db:5432/app");
    assert_eq!(lines[1], first);
    assert_eq!(lines[2], first);
    assert!(
        lines[3].contains(":assumed-role/hoist-fleet-instance/"),
        "{out}"
    );
    let serde_secret: Value = serde_json::from_str(lines[1]).expect("the SecretString is JSON");
    assert_eq!(serde_secret["password"], secret.as_str());

    // A new version: AWSCURRENT moves, the old one is AWSPREVIOUS.
    std::fs::write(&file, &second).expect("writing the secret file");
    let put = ctx.aws_ok(&[
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        secret_name,
        "--secret-string",
        &format!("file://{}", file.display()),
        "--output",
        "json",
    ]);
    let _ = std::fs::remove_file(&file);
    let put: Value = serde_json::from_str(&put).expect("json");
    assert_eq!(put["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    let get = |extra: &[&str]| -> Value {
        let mut args = vec![
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            secret_name,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--output", "json"]);
        serde_json::from_str(&ctx.aws_ok(&args)).expect("json")
    };
    let current = get(&[]);
    assert_eq!(current["SecretString"], second.as_str());
    assert_eq!(current["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    assert_eq!(current["Name"], secret_name);
    assert_eq!(current["ARN"], arn.as_str());
    assert!(current["CreatedDate"].is_number(), "{current}");
    let previous = get(&["--version-stage", "AWSPREVIOUS"]);
    assert_eq!(previous["SecretString"], first.as_str());
    assert_eq!(previous["VersionId"], first_version.as_str());
    let by_id = get(&["--version-id", &first_version]);
    assert_eq!(by_id["VersionStages"], serde_json::json!(["AWSPREVIOUS"]));
    let pending = ctx.aws(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        secret_name,
        "--version-stage",
        "AWSPENDING",
    ]);
    assert!(String::from_utf8_lossy(&pending.stderr).contains("ResourceNotFoundException"));

    // A binary secret, and deletion with and without recovery.
    let bin_file = ctx.dir.join("run/cli-secret.bin");
    std::fs::write(&bin_file, [0u8, 1, 2, 255]).expect("writing the binary secret");
    ctx.aws_ok(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "fleet-test/cli/bin",
        "--secret-binary",
        &format!("fileb://{}", bin_file.display()),
    ]);
    let _ = std::fs::remove_file(&bin_file);
    let bin = ctx.aws_ok(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "fleet-test/cli/bin",
        "--query",
        "SecretBinary",
        "--output",
        "text",
    ]);
    assert_eq!(bin.trim(), "AAEC/w==");
    ctx.aws_ok(&[
        "secretsmanager",
        "delete-secret",
        "--secret-id",
        "fleet-test/cli/bin",
    ]);
    let scheduled = ctx.aws(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "fleet-test/cli/bin",
    ]);
    assert!(
        String::from_utf8_lossy(&scheduled.stderr).contains("InvalidRequestException"),
        "{}",
        String::from_utf8_lossy(&scheduled.stderr)
    );
    ctx.aws_ok(&[
        "secretsmanager",
        "delete-secret",
        "--secret-id",
        &arn,
        "--force-delete-without-recovery",
    ]);
    let gone = ctx.aws(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        secret_name,
    ]);
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(
        err.contains("ResourceNotFoundException")
            && err.contains("Secrets Manager can't find the specified secret."),
        "{err}"
    );
    ctx.aws_ok(&["ssm", "delete-parameter", "--name", name]);

    // The journal: no secret value anywhere; who called is recorded.
    let journal = journal_lines(ctx);
    let text: String = journal.iter().map(Value::to_string).collect();
    for s in [&secret, &second_secret] {
        assert!(!text.contains(s.as_str()), "the journal holds a secret");
    }
    assert!(text.contains("**redacted SecretString**"));
    assert!(text.contains("**redacted SecretBinary**"));
    let callers = |op: &str| -> Vec<String> {
        journal
            .iter()
            .filter(|l| l["service"] == "secretsmanager" && l["operation"] == op)
            .map(|l| l["caller"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(callers("CreateSecret").iter().all(|c| *c == host_key));
    assert!(callers("PutSecretValue") == [host_key.clone()]);
    let gets = callers("GetSecretValue");
    assert_eq!(
        gets.iter().filter(|c| **c == instance_key).count(),
        2,
        "{gets:?}"
    );
    assert!(gets.iter().all(|c| *c == instance_key || *c == host_key));
    let from_instance = journal
        .iter()
        .filter(|l| l["caller"] == instance_key.as_str())
        .map(|l| l["operation"].as_str().unwrap_or_default())
        .collect::<Vec<_>>();
    assert!(
        from_instance.contains(&"GetParameter") && from_instance.contains(&"GetCallerIdentity"),
        "{from_instance:?}"
    );
    // Hoist's (the host's) SendCommand and polling are the host's.
    assert!(
        journal
            .iter()
            .filter(|l| l["operation"] == "SendCommand")
            .all(|l| l["caller"] == host_key.as_str())
    );
}

/// Tiers (sizes, Intelligent-Tiering), policies (Advanced only) and an
/// Expiration policy that deletes the parameter.
pub fn sdk_parameter_tiers_and_expiry(ctx: &Ctx) {
    use aws_sdk_ssm::types::ParameterTier;
    let code = |e: &dyn ProvideErrorMetadata| {
        (
            e.code().unwrap_or_default().to_string(),
            e.message().unwrap_or_default().to_string(),
        )
    };
    let put = |name: &str, value: &str, tier: Option<ParameterTier>, policies: Option<&str>| {
        ctx.rt.block_on(
            ctx.ssm
                .put_parameter()
                .name(name)
                .r#type(ParameterType::String)
                .value(value)
                .set_tier(tier)
                .set_policies(policies.map(str::to_string))
                .send(),
        )
    };
    let big = "x".repeat(6000);
    let (c, m) = code(&put("/fleet-test/tier/big", &big, None, None).expect_err("4 KB"));
    assert_eq!(c, "ValidationException");
    assert!(
        m.starts_with(
            "Standard tier parameters support a maximum parameter value of 4096 characters."
        ),
        "{m}"
    );
    assert!(put("/fleet-test/tier/edge", &"x".repeat(4096), None, None).is_ok());
    let adv = put(
        "/fleet-test/tier/big",
        &big,
        Some(ParameterTier::Advanced),
        None,
    )
    .expect("advanced");
    assert_eq!(adv.tier(), Some(&ParameterTier::Advanced));
    let (c, _) = code(
        &put(
            "/fleet-test/tier/huge",
            &"x".repeat(8193),
            Some(ParameterTier::Advanced),
            None,
        )
        .expect_err("8 KB"),
    );
    assert_eq!(c, "ValidationException");
    let it = put(
        "/fleet-test/tier/it-small",
        "small",
        Some(ParameterTier::IntelligentTiering),
        None,
    )
    .expect("intelligent");
    assert_eq!(it.tier(), Some(&ParameterTier::Standard));
    let it = put(
        "/fleet-test/tier/it-big",
        &big,
        Some(ParameterTier::IntelligentTiering),
        None,
    )
    .expect("intelligent");
    assert_eq!(it.tier(), Some(&ParameterTier::Advanced));
    // The tier stays Advanced on an overwrite without a tier; Standard is refused.
    let again = ctx
        .rt
        .block_on(
            ctx.ssm
                .put_parameter()
                .name("/fleet-test/tier/big")
                .value("now small")
                .overwrite(true)
                .send(),
        )
        .expect("overwrite");
    assert_eq!(
        (again.version(), again.tier()),
        (2, Some(&ParameterTier::Advanced))
    );

    // Policies: Advanced (or Intelligent-Tiering) only.
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3;
    let policy = format!(
        "[{{\"Type\":\"Expiration\",\"Version\":\"1.0\",\"Attributes\":{{\"Timestamp\":\"{}\"}}}}]",
        iso8601(soon)
    );
    let (c, _) =
        code(&put("/fleet-test/tier/expiring", "v", None, Some(&policy)).expect_err("standard"));
    assert_eq!(c, "ValidationException");
    let (c, _) = code(
        &put(
            "/fleet-test/tier/expiring",
            "v",
            Some(ParameterTier::Advanced),
            Some("[{\"Type\":\"Nope\"}]"),
        )
        .expect_err("bad type"),
    );
    assert_eq!(c, "InvalidPolicyTypeException");
    let exp = put(
        "/fleet-test/tier/expiring",
        "v",
        Some(ParameterTier::IntelligentTiering),
        Some(&policy),
    )
    .expect("expiring");
    assert_eq!(exp.tier(), Some(&ParameterTier::Advanced));
    let described = describe_names(ctx, "/fleet-test/tier");
    let meta = described
        .iter()
        .find(|m| m.name() == Some("/fleet-test/tier/expiring"))
        .expect("listed before it expires");
    let pol = &meta.policies()[0];
    assert_eq!(pol.policy_type(), Some("Expiration"));
    assert_eq!(pol.policy_status(), Some("Pending"));
    assert!(pol.policy_text().is_some_and(|t| t.contains("Timestamp")));
    // When it is deleted: expired_parameters_are_deleted_by_a_later_background_scan.
    ctx.rt
        .block_on(
            ctx.ssm
                .delete_parameters()
                .names("/fleet-test/tier/expiring")
                .names("/fleet-test/tier/big")
                .names("/fleet-test/tier/edge")
                .names("/fleet-test/tier/it-small")
                .names("/fleet-test/tier/it-big")
                .send(),
        )
        .expect("DeleteParameters");
}

fn iso8601(secs: u64) -> String {
    // Days to civil date (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn filter(key: &str, option: Option<&str>, values: &[&str]) -> ParameterStringFilter {
    let mut f = ParameterStringFilter::builder()
        .key(key)
        .set_option(option.map(str::to_string));
    for v in values {
        f = f.values(*v);
    }
    f.build().expect("filter")
}

/// Every page of DescribeParameters with these filters; and how many pages.
fn describe_all(
    ctx: &Ctx,
    filters: Vec<ParameterStringFilter>,
    max: i32,
) -> (Vec<ParameterMetadata>, usize) {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let got = ctx
            .rt
            .block_on(
                ctx.ssm
                    .describe_parameters()
                    .set_parameter_filters(Some(filters.clone()))
                    .max_results(max)
                    .set_next_token(token.clone())
                    .send(),
            )
            .expect("DescribeParameters");
        pages += 1;
        assert!(got.parameters().len() <= max as usize);
        out.extend(got.parameters().iter().cloned());
        match got.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return (out, pages),
        }
    }
}

/// The names under a path (recursive), all pages.
fn describe_names(ctx: &Ctx, path: &str) -> Vec<ParameterMetadata> {
    describe_all(ctx, vec![filter("Path", Some("Recursive"), &[path])], 3).0
}

/// DescribeParameters: filters by path, name, tag and type, paging, metadata
/// without values; and the tagging operations.
pub fn sdk_describe_parameters_and_tags(ctx: &Ctx) {
    let secret = secret();
    let names: Vec<String> = (0..7)
        .map(|n| format!("/fleet-test/desc/app/p{n}"))
        .chain((0..3).map(|n| format!("/fleet-test/desc/app/deep/q{n}")))
        .collect();
    for (n, name) in names.iter().enumerate() {
        let mut req = ctx
            .ssm
            .put_parameter()
            .name(name)
            .value(if n == 0 { secret.as_str() } else { "plain" })
            .r#type(if n == 0 {
                ParameterType::SecureString
            } else {
                ParameterType::String
            })
            .description(format!("parameter {n}"));
        if n % 2 == 0 {
            req = req.tags(
                Tag::builder()
                    .key("Team")
                    .value("blue")
                    .build()
                    .expect("tag"),
            );
        }
        ctx.rt.block_on(req.send()).expect("PutParameter");
    }
    let short = |items: &[ParameterMetadata]| -> Vec<String> {
        items
            .iter()
            .map(|m| {
                m.name()
                    .unwrap_or_default()
                    .trim_start_matches("/fleet-test/desc/app/")
                    .to_string()
            })
            .collect()
    };
    // Paging: 10 items, 3 a page.
    let (all, pages) = describe_all(
        ctx,
        vec![filter("Path", Some("Recursive"), &["/fleet-test/desc"])],
        3,
    );
    assert_eq!((all.len(), pages), (10, 4), "{:?}", short(&all));
    let (one, _) = describe_all(
        ctx,
        vec![filter("Path", Some("OneLevel"), &["/fleet-test/desc/app"])],
        50,
    );
    assert_eq!(short(&one), ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    let (default_level, _) = describe_all(
        ctx,
        vec![filter("Path", None, &["/fleet-test/desc/app/deep/"])],
        50,
    );
    assert_eq!(short(&default_level), ["deep/q0", "deep/q1", "deep/q2"]);
    let (begins, _) = describe_all(
        ctx,
        vec![filter(
            "Name",
            Some("BeginsWith"),
            &["/fleet-test/desc/app/deep"],
        )],
        50,
    );
    assert_eq!(begins.len(), 3);
    let (equals, _) = describe_all(
        ctx,
        vec![filter("Name", Some("Equals"), &["/fleet-test/desc/app/p3"])],
        50,
    );
    assert_eq!(short(&equals), ["p3"]);
    let (blue, _) = describe_all(
        ctx,
        vec![
            filter("Path", Some("Recursive"), &["/fleet-test/desc"]),
            filter("tag:Team", Some("Equals"), &["blue"]),
        ],
        50,
    );
    assert_eq!(short(&blue), ["deep/q1", "p0", "p2", "p4", "p6"]);
    let (secure, _) = describe_all(
        ctx,
        vec![
            filter("Path", Some("Recursive"), &["/fleet-test/desc"]),
            filter("Type", Some("Equals"), &["SecureString"]),
        ],
        50,
    );
    assert_eq!(short(&secure), ["p0"]);
    let p0 = &secure[0];
    assert_eq!(p0.version(), 1);
    assert_eq!(
        p0.tier(),
        Some(&aws_sdk_ssm::types::ParameterTier::Standard)
    );
    assert_eq!(p0.description(), Some("parameter 0"));
    assert!(p0.last_modified_date().is_some());
    assert!(
        p0.arn()
            .is_some_and(|a| a.ends_with(":parameter/fleet-test/desc/app/p0"))
    );
    assert!(p0.policies().is_empty());
    // Bad filters and limits.
    let err = |r: Result<_, aws_sdk_ssm::error::SdkError<_>>| -> String {
        let e: aws_sdk_ssm::error::SdkError<
            aws_sdk_ssm::operation::describe_parameters::DescribeParametersError,
        > = r
            .map(|_: aws_sdk_ssm::operation::describe_parameters::DescribeParametersOutput| ())
            .expect_err("an error");
        e.code().unwrap_or_default().to_string()
    };
    let bad_option = ctx.rt.block_on(
        ctx.ssm
            .describe_parameters()
            .parameter_filters(filter("Path", Some("Sideways"), &["/x"]))
            .send(),
    );
    assert_eq!(err(bad_option), "InvalidFilterOption");
    let bad_key = ctx.rt.block_on(
        ctx.ssm
            .describe_parameters()
            .parameter_filters(filter("Label", None, &["x"]))
            .send(),
    );
    assert_eq!(err(bad_key), "InvalidFilterKey");
    let bad_max = ctx
        .rt
        .block_on(ctx.ssm.describe_parameters().max_results(51).send());
    assert_eq!(err(bad_max), "ValidationException");
    let bad_token = ctx
        .rt
        .block_on(ctx.ssm.describe_parameters().next_token("nope").send());
    assert_eq!(err(bad_token), "InvalidNextToken");

    // Tagging operations.
    let p1 = "/fleet-test/desc/app/p1";
    let list = |id: &str| {
        ctx.rt.block_on(
            ctx.ssm
                .list_tags_for_resource()
                .resource_type(ResourceTypeForTagging::Parameter)
                .resource_id(id)
                .send(),
        )
    };
    assert!(list(p1).expect("ListTagsForResource").tag_list().is_empty());
    ctx.rt
        .block_on(
            ctx.ssm
                .add_tags_to_resource()
                .resource_type(ResourceTypeForTagging::Parameter)
                .resource_id(p1)
                .tags(
                    Tag::builder()
                        .key("Team")
                        .value("red")
                        .build()
                        .expect("tag"),
                )
                .tags(
                    Tag::builder()
                        .key("Owner")
                        .value("ops")
                        .build()
                        .expect("tag"),
                )
                .send(),
        )
        .expect("AddTagsToResource");
    ctx.rt
        .block_on(
            ctx.ssm
                .remove_tags_from_resource()
                .resource_type(ResourceTypeForTagging::Parameter)
                .resource_id(p1)
                .tag_keys("Owner")
                .send(),
        )
        .expect("RemoveTagsFromResource");
    let tags = list(p1).expect("ListTagsForResource");
    let tags: Vec<(&str, &str)> = tags
        .tag_list()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    assert_eq!(tags, [("Team", "red")]);
    let missing = list("/fleet-test/desc/none").expect_err("unknown parameter");
    assert_eq!(missing.code(), Some("InvalidResourceId"));

    // No value in any DescribeParameters answer (the SDK would have shown none;
    // the journal never holds responses, and the SecureString's request is redacted).
    let journal: String = journal_lines(ctx).iter().map(Value::to_string).collect();
    assert!(!journal.contains(&secret), "the journal holds the secret");
    ctx.rt
        .block_on(ctx.ssm.delete_parameters().set_names(Some(names)).send())
        .expect("DeleteParameters");
}

// ---------------------------------------------------------------------------
// Issue 18, the API side (src/api/ssm.rs, params.rs, throttle.rs): the
// document quota, the plugin Output's cut, GetCommandInvocation's lag, the
// request-rate quotas and the expiry scan. Rows: CONFORMANCE.md, "API".
// ---------------------------------------------------------------------------

/// AWS-RunShellScript's content, in bytes (`src/api/AWS-RunShellScript.json`).
const RUN_SHELL_SCRIPT_BYTES: usize = 1_321;
/// SSM's document quota as the emulator reads it: 64 KB = 64,000 bytes.
const DOCUMENT_QUOTA_BYTES: usize = 64_000;

fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// Every command id ListCommands knows, newest first.
fn all_command_ids(ctx: &Ctx) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = ctx
            .rt
            .block_on(ctx.ssm.list_commands().set_next_token(token.clone()).send())
            .expect("ListCommands");
        ids.extend(
            out.commands()
                .iter()
                .filter_map(|c| c.command_id().map(str::to_string)),
        );
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return ids;
        }
    }
}

/// How many invocations ListCommandInvocations knows, over every command.
fn all_invocations(ctx: &Ctx) -> usize {
    let mut n = 0;
    let mut token: Option<String> = None;
    loop {
        let out = ctx
            .rt
            .block_on(
                ctx.ssm
                    .list_command_invocations()
                    .set_next_token(token.clone())
                    .send(),
            )
            .expect("ListCommandInvocations");
        n += out.command_invocations().len();
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return n;
        }
    }
}

/// A SendCommand whose one command is `command`, without retries.
fn send_raw(
    ctx: &Ctx,
    instance: &str,
    command: String,
) -> Result<
    aws_sdk_ssm::operation::send_command::SendCommandOutput,
    aws_sdk_ssm::error::SdkError<aws_sdk_ssm::operation::send_command::SendCommandError>,
> {
    ctx.rt.block_on(
        ctx.ssm_raw
            .send_command()
            .document_name("AWS-RunShellScript")
            .instance_ids(instance)
            .parameters("commands", vec![command])
            .send(),
    )
}

/// The HTTP status, `x-amzn-ErrorType` and JSON body of an SDK error.
fn raw_error<E>(e: &aws_sdk_ssm::error::SdkError<E>) -> (u16, String, Value) {
    let raw = e.raw_response().expect("an HTTP response");
    let header = raw
        .headers()
        .get("x-amzn-errortype")
        .unwrap_or_default()
        .to_string();
    let body = raw
        .body()
        .bytes()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    (raw.status().as_u16(), header, body)
}

/// `send_command_over_the_64_kb_document_quota_is_refused_with_http_400`
pub fn document_quota(ctx: &Ctx) {
    let i = &ctx.light[2].id;
    // {"commands":["…"]}: 17 bytes around the one command.
    let fits = DOCUMENT_QUOTA_BYTES - RUN_SHELL_SCRIPT_BYTES - 17;
    let commands_before = all_command_ids(ctx);
    let invocations_before = all_invocations(ctx);

    let over = send_raw(ctx, i, format!("#{}", "x".repeat(fits))).expect_err("one byte over");
    let (status, header, body) = raw_error(&over);
    assert_eq!(status, 400, "{body}");
    assert_eq!(header, "MaxDocumentSizeExceeded");
    assert_eq!(body["__type"], "MaxDocumentSizeExceeded", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("64 KB")),
        "{body}"
    );
    assert_eq!(over.code(), Some("MaxDocumentSizeExceeded"));
    // Bytes, not characters: 40,000 two-byte characters are under the quota in
    // characters, over it in bytes.
    let wide = send_raw(ctx, i, format!("#{}", "é".repeat(40_000))).expect_err("bytes count");
    assert_eq!(wide.code(), Some("MaxDocumentSizeExceeded"));
    // Nothing was created.
    assert_eq!(all_command_ids(ctx), commands_before);
    assert_eq!(all_invocations(ctx), invocations_before);

    // At the quota exactly: accepted, and it runs.
    let at = send_raw(ctx, i, format!("#{}", "x".repeat(fits - 1)))
        .expect("at the quota")
        .command()
        .and_then(|c| c.command_id())
        .expect("a command id")
        .to_string();
    assert_success(&ctx.wait(&at, i, Duration::from_secs(60)));
    assert_eq!(all_command_ids(ctx)[0], at);
}

/// `plugin_output_is_cut_at_2400_bytes_with_the_agents_markers`
pub fn plugin_output(ctx: &Ctx) {
    let i = &ctx.light[2].id;
    let output_of = |commands: &[&str]| -> String {
        let id = ctx.send(&[i], commands, |r| r);
        assert_success(&ctx.wait(&id, i, Duration::from_secs(60)));
        let invs = invocations(ctx, &id);
        invs[0].command_plugins()[0]
            .output()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(output_of(&["echo hi"]), "hi\n");
    // Both long: the first 1,165 bytes of each, each with its marker.
    let both = output_of(&[
        "head -c 30000 /dev/zero | tr '\\0' o",
        "head -c 10000 /dev/zero | tr '\\0' e >&2",
    ]);
    assert_eq!(
        both,
        format!(
            "{}\n---Output truncated---\n----------ERROR-------\n{}\n---Error truncated----",
            "o".repeat(1_165),
            "e".repeat(1_165)
        )
    );
    assert_eq!(both.len(), 2_400);
    // A short stdout whole, stderr cut to what is left.
    let err = output_of(&["echo hello", "head -c 5000 /dev/zero | tr '\\0' e >&2"]);
    assert_eq!(
        err,
        format!(
            "hello\n\n----------ERROR-------\n{}\n---Error truncated----",
            "e".repeat(2_347)
        )
    );
}

/// `get_command_invocation_lags_list_command_invocations_after_the_end`
pub fn invocation_lag(ctx: &Ctx) {
    let i = &ctx.light[2].id;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let id = ctx.send(&[i], &["echo lag"], |r| r);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let listed = ctx.rt.block_on(
                ctx.ssm_raw
                    .list_command_invocations()
                    .command_id(&id)
                    .send(),
            );
            if let Ok(l) = listed
                && l.command_invocations()
                    .first()
                    .and_then(|v| v.status())
                    .is_some_and(|s| s.as_str() == "Success")
            {
                break;
            }
            assert!(Instant::now() < deadline, "never Success in the list");
            std::thread::sleep(Duration::from_millis(20));
        }
        let got = ctx
            .rt
            .block_on(
                ctx.ssm_raw
                    .get_command_invocation()
                    .command_id(&id)
                    .instance_id(i)
                    .send(),
            )
            .expect("GetCommandInvocation");
        let status = status_of(&got);
        seen.push(status.clone());
        if status == pair("InProgress", "InProgress") {
            assert_eq!(got.response_code(), -1, "{}", describe(&got));
            assert_eq!(stdout_of(&got), "", "{}", describe(&got));
            // And it catches up.
            let done = ctx.wait(&id, i, Duration::from_secs(10));
            assert_eq!(assert_success(&done), "lag\n");
            return;
        }
    }
    panic!(
        "GetCommandInvocation never lagged ListCommandInvocations (right after the list said Success it answered {seen:?})"
    );
}

/// Calls the closure `n` times at once on the check runtime; returns each
/// outcome (None for success, else the error code and message) and how long
/// the burst took.
fn burst<F, Fut>(ctx: &Ctx, n: usize, call: F) -> (Vec<Option<(String, String)>>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Option<(String, String)>> + Send + 'static,
{
    let t = Instant::now();
    let handles: Vec<_> = (0..n).map(|k| ctx.rt.spawn(call(k))).collect();
    let out = handles
        .into_iter()
        .map(|h| ctx.rt.block_on(h).expect("a call task"))
        .collect();
    (out, t.elapsed())
}

fn outcome<T, E: ProvideErrorMetadata>(r: Result<T, E>) -> Option<(String, String)> {
    r.err().map(|e| {
        (
            e.code().unwrap_or_default().to_string(),
            e.message().unwrap_or_default().to_string(),
        )
    })
}

/// Checks a burst against a bucket of `rate` a second (full at the start).
fn assert_throttled_at(outcomes: &[Option<(String, String)>], took: Duration, rate: f64) {
    let ok = outcomes.iter().filter(|o| o.is_none()).count();
    let throttled: Vec<&(String, String)> = outcomes.iter().flatten().collect();
    assert!(
        throttled
            .iter()
            .all(|(c, m)| c == "ThrottlingException" && m == "Rate exceeded"),
        "{throttled:?}"
    );
    let most = rate + rate * took.as_secs_f64() + 1.0;
    println!(
        "    {ok} of {} calls went through in {took:?} ({} throttled) at {rate} a second",
        outcomes.len(),
        throttled.len()
    );
    assert!(
        ok as f64 <= most,
        "{ok} of {} went through in {took:?}: more than {most:.0} at {rate} a second",
        outcomes.len()
    );
    assert!(
        ok as f64 >= rate,
        "only {ok} went through; the bucket holds {rate}"
    );
    assert!(!throttled.is_empty(), "none throttled");
}

/// `parameter_store_reads_share_one_bucket_of_40_a_second`
pub fn parameter_read_throttling(ctx: &Ctx) {
    let name = "/fleet-test/throttle/read";
    ctx.rt
        .block_on(
            ctx.ssm
                .put_parameter()
                .name(name)
                .value("v")
                .r#type(ParameterType::String)
                .overwrite(true)
                .send(),
        )
        .expect("PutParameter");
    std::thread::sleep(Duration::from_millis(1_100)); // a full bucket
    let ssm = ctx.ssm_raw.clone();
    let (outcomes, took) = burst(ctx, 150, |k| {
        let ssm = ssm.clone();
        async move {
            match k % 3 {
                0 => outcome(ssm.get_parameter().name(name).send().await),
                1 => outcome(ssm.get_parameters().names(name).send().await),
                _ => outcome(
                    ssm.get_parameters_by_path()
                        .path("/fleet-test/throttle")
                        .send()
                        .await,
                ),
            }
        }
    });
    assert_throttled_at(&outcomes, took, 40.0);
    // Each of the three calls was throttled (one bucket, not one each).
    for op in 0..3 {
        assert!(
            outcomes.iter().skip(op).step_by(3).any(Option::is_some),
            "call {op} of 3 never throttled: {outcomes:?}"
        );
    }
    // As AWS sends it: HTTP 400, x-amzn-ErrorType, __type and message.
    let throttled = loop {
        match ctx
            .rt
            .block_on(ctx.ssm_raw.get_parameter().name(name).send())
        {
            Err(e) => break e,
            Ok(_) => continue,
        }
    };
    let (status, header, body) = raw_error(&throttled);
    assert_eq!(
        (status, header.as_str(), &body),
        (
            400,
            "ThrottlingException",
            &serde_json::json!({"__type": "ThrottlingException", "message": "Rate exceeded"})
        )
    );
    // A second later the reads go through again; the SDK's retries ride it out.
    std::thread::sleep(Duration::from_millis(1_100));
    ctx.rt
        .block_on(ctx.ssm_raw.get_parameter().name(name).send())
        .expect("a refilled bucket");
    let journal = journal_lines(ctx);
    assert!(journal.iter().any(|l| l["operation"] == "GetParametersByPath"
        && l["error"] == "ThrottlingException"));
    ctx.rt
        .block_on(ctx.ssm.delete_parameter().name(name).send())
        .expect("DeleteParameter");
}

/// `put_parameter_is_throttled_at_3_a_second`
pub fn parameter_write_throttling(ctx: &Ctx) {
    std::thread::sleep(Duration::from_millis(1_100));
    let ssm = ctx.ssm_raw.clone();
    let (outcomes, took) = burst(ctx, 12, |k| {
        let ssm = ssm.clone();
        async move {
            outcome(
                ssm.put_parameter()
                    .name(format!("/fleet-test/throttle/w{k}"))
                    .value("v")
                    .r#type(ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await,
            )
        }
    });
    assert_throttled_at(&outcomes, took, 3.0);
    // Reads have their own bucket: not throttled by the writes.
    ctx.rt
        .block_on(
            ctx.ssm_raw
                .get_parameters_by_path()
                .path("/fleet-test/throttle")
                .send(),
        )
        .expect("a read");
    // With the SDK's standard retries, sequential writes all go through.
    for k in 0..12 {
        ctx.rt
            .block_on(
                ctx.ssm
                    .put_parameter()
                    .name(format!("/fleet-test/throttle/w{k}"))
                    .value("again")
                    .r#type(ParameterType::String)
                    .overwrite(true)
                    .send(),
            )
            .expect("PutParameter with retries");
    }
    let names: Vec<String> = (0..12)
        .map(|k| format!("/fleet-test/throttle/w{k}"))
        .collect();
    ctx.rt
        .block_on(ctx.ssm.delete_parameters().set_names(Some(names)).send())
        .expect("DeleteParameters");
}

/// `expired_parameters_are_deleted_by_a_later_background_scan`
pub fn expiry_scan(ctx: &Ctx) {
    use aws_sdk_ssm::types::ParameterTier;
    let world: Value = serde_json::from_str(
        &std::fs::read_to_string(ctx.dir.join("world.json")).expect("world.json"),
    )
    .expect("world.json is JSON");
    // The default (30 s) when the world does not say (an emulator without the scan).
    let every = world["api"]["param_expiry_scan_secs"]
        .as_u64()
        .unwrap_or(30) as f64;
    assert!(every >= 8.0, "this check needs scans at least 8 s apart");
    // Start right after a scan, so the next one is a known time away.
    let next = loop {
        let now = epoch_now();
        let next = ((now / every).floor() + 1.0) * every;
        if next - now >= 6.0 {
            break next;
        }
        std::thread::sleep(Duration::from_secs_f64(next - now + 0.3));
    };
    let expires = epoch_now().ceil() as u64 + 2;
    let name = "/fleet-test/expiry/scan";
    let policy = format!(
        "[{{\"Type\":\"Expiration\",\"Version\":\"1.0\",\"Attributes\":{{\"Timestamp\":\"{}\"}}}}]",
        iso8601(expires)
    );
    ctx.rt
        .block_on(
            ctx.ssm
                .put_parameter()
                .name(name)
                .value("v")
                .r#type(ParameterType::String)
                .tier(ParameterTier::Advanced)
                .policies(policy)
                .send(),
        )
        .expect("PutParameter");
    // Past its timestamp, before the next scan: still there.
    std::thread::sleep(Duration::from_secs_f64(
        (expires as f64 + 1.0 - epoch_now()).max(0.0),
    ));
    assert!(epoch_now() < next - 0.5, "the check was too slow");
    let read = ctx
        .rt
        .block_on(ctx.ssm.get_parameter().name(name).send())
        .expect("expired, not yet deleted");
    assert_eq!(read.parameter().and_then(|p| p.value()), Some("v"));
    assert!(
        describe_names(ctx, "/fleet-test/expiry")
            .iter()
            .any(|m| m.name() == Some(name))
    );
    // The scan deletes it.
    std::thread::sleep(Duration::from_secs_f64((next + 1.5 - epoch_now()).max(0.0)));
    let gone = ctx
        .rt
        .block_on(ctx.ssm.get_parameter().name(name).send())
        .expect_err("deleted by the scan");
    assert_eq!(gone.code(), Some("ParameterNotFound"));
    assert!(describe_names(ctx, "/fleet-test/expiry").is_empty());
}

// ---- The agent's behaviour (CONFORMANCE.md, "Agent") ----

/// systemd's default PATH for services, which the agent hands its scripts.
const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `KEY=VALUE` lines of `env` into pairs.
fn env_lines(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn agent_script_and_environment(ctx: &Ctx) {
    let os_name = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    for inst in [&ctx.full[0], &ctx.light[2]] {
        let id = ctx.send(
            &[&inst.id],
            &[
                "echo \"mode=$(stat -c %a \"$0\") name=$(basename \"$0\") pwd=$(pwd)\"",
                "env",
            ],
            |r| r,
        );
        let out = assert_success(&ctx.wait(&id, &inst.id, Duration::from_secs(60)));
        let first = out.lines().next().unwrap_or_default();
        assert_eq!(first, "mode=700 name=_script.sh pwd=/usr/bin", "{out}");
        let env = env_lines(&out);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert!(
            get("PATH").is_some_and(|p| p.ends_with(SYSTEMD_PATH)),
            "PATH: {:?}",
            get("PATH")
        );
        assert_eq!(get("AWS_SSM_INSTANCE_ID"), Some(inst.id.as_str()));
        assert_eq!(
            get("AWS_SSM_REGION_NAME"),
            Some(ctx.var("AWS_REGION").as_str())
        );
        assert_eq!(get("AWS_SSM_PLATFORM_NAME"), Some(os_name.as_str()));
        assert!(get("AWS_SSM_PLATFORM_VERSION").is_some(), "{out}");
        assert_eq!(get("SSM_COMMAND_ID"), Some(id.as_str()));
        for absent in [
            "HOME",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_EC2_METADATA_DISABLED",
            "LANG",
        ] {
            assert_eq!(get(absent), None, "{absent} is set: {out}");
        }
    }
    // A working directory that does not exist: the agent cannot start the script.
    let id = ctx.send(&[&ctx.light[2].id], &["echo ran"], |r| {
        r.parameters("workingDirectory", vec!["/nonexistent/dir".into()])
    });
    let got = ctx.wait(&id, &ctx.light[2].id, Duration::from_secs(30));
    assert_eq!(status_of(&got).0, "Failed", "{}", describe(&got));
    assert_eq!(stdout_of(&got), "");
    assert!(
        got.standard_error_content()
            .unwrap_or_default()
            .contains("failed to run commands: chdir /nonexistent/dir"),
        "{}",
        describe(&got)
    );
}

pub fn imds_credentials(ctx: &Ctx) {
    let key = ctx.var("HOIST_FLEET_INSTANCE_ACCESS_KEY_ID");
    let region = ctx.var("AWS_REGION");
    // A full instance reaches the metadata service at its link-local address.
    let got = ctx.run(
        &ctx.full[1].id,
        &[
            "M=http://169.254.169.254",
            "curl -s -o /dev/null -w 'without-token=%{http_code}\\n' $M/latest/meta-data/iam/security-credentials/",
            "curl -s -o /dev/null -w 'no-ttl=%{http_code}\\n' -X PUT $M/latest/api/token",
            "T=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' $M/latest/api/token)",
            "curl -s -o /dev/null -w 'bad-token=%{http_code}\\n' -H 'X-aws-ec2-metadata-token: nope' $M/latest/meta-data/instance-id",
            "ROLE=$(curl -sf -H \"X-aws-ec2-metadata-token: $T\" $M/latest/meta-data/iam/security-credentials/)",
            "echo \"role=$ROLE\"",
            "curl -sf -H \"X-aws-ec2-metadata-token: $T\" $M/latest/meta-data/iam/security-credentials/$ROLE | tr -d ' \\n'; echo",
            "curl -sf -H \"X-aws-ec2-metadata-token: $T\" $M/latest/dynamic/instance-identity/document | tr -d ' \\n'; echo",
            "aws sts get-caller-identity --region \"$AWS_SSM_REGION_NAME\" --query Arn --output text",
            "aws ssm describe-parameters --max-results 1 >/dev/null 2>&1 && echo region=found || echo region=missing",
        ],
    );
    let out = assert_success(&got);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    assert_eq!(lines[0], "without-token=401");
    assert_eq!(lines[1], "no-ttl=400");
    assert_eq!(lines[2], "bad-token=401");
    assert_eq!(lines[3], "role=hoist-fleet-instance");
    let creds: Value = serde_json::from_str(lines[4]).expect("credentials JSON");
    assert_eq!(creds["Code"], "Success");
    assert_eq!(creds["Type"], "AWS-HMAC");
    assert_eq!(creds["AccessKeyId"], key.as_str());
    for field in ["SecretAccessKey", "Token", "Expiration", "LastUpdated"] {
        assert!(
            creds[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {creds}"
        );
    }
    let doc: Value = serde_json::from_str(lines[5]).expect("identity document");
    assert_eq!(doc["region"], region.as_str());
    assert_eq!(doc["instanceId"], ctx.full[1].id.as_str());
    assert_eq!(doc["privateIp"], ctx.full[1].address.as_str());
    assert!(
        lines[6].contains(":assumed-role/hoist-fleet-instance/"),
        "{out}"
    );
    // The AWS CLI finds no region: the agent gives none.
    assert_eq!(lines[7], "region=missing");
    // A light instance shares the host's network: its SDK is pointed at the
    // world's listener, and the listener knows it by its path.
    let got = ctx.run(
        &ctx.light[2].id,
        &[
            "aws sts get-caller-identity --region \"$AWS_SSM_REGION_NAME\" --query Arn --output text",
            "T=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' ${AWS_EC2_METADATA_SERVICE_ENDPOINT}latest/api/token)",
            "curl -sf -H \"X-aws-ec2-metadata-token: $T\" ${AWS_EC2_METADATA_SERVICE_ENDPOINT}latest/meta-data/instance-id; echo",
        ],
    );
    let out = assert_success(&got);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains(":assumed-role/hoist-fleet-instance/"),
        "{out}"
    );
    assert_eq!(
        lines.get(1).copied(),
        Some(ctx.light[2].id.as_str()),
        "{out}"
    );
    // The journal tells the instances' calls by their own key.
    let journal = journal_lines(ctx);
    assert!(
        journal
            .iter()
            .any(|l| l.to_string().contains(&key) && l.to_string().contains("GetCallerIdentity")),
        "no GetCallerIdentity with the instance's key in the journal"
    );
}

/// Seconds from SendCommand to the invocation's end, as a client sees it.
fn timed_run(ctx: &Ctx, instance: &str, commands: &[&str]) -> (f64, String) {
    let t = Instant::now();
    let out = ctx.run(instance, commands);
    (t.elapsed().as_secs_f64(), assert_success(&out))
}

pub fn output_pipes(ctx: &Ctx) {
    let i = &ctx.light[3].id;
    let (_, out) = timed_run(
        ctx,
        i,
        &[
            "[ -p /dev/stdout ] && echo stdout=pipe",
            "[ -p /dev/stderr ] && echo stderr=pipe",
        ],
    );
    assert_eq!(out, "stdout=pipe\nstderr=pipe\n");
    // A background process that keeps the pipes keeps the invocation going.
    let (held, out) = timed_run(ctx, i, &["echo before", "sleep 5 &", "echo after"]);
    assert_eq!(out, "before\nafter\n");
    assert!(
        held >= 5.0,
        "ended after {held:.1}s, before the sleep closed stdout"
    );
    let (freed, out) = timed_run(ctx, i, &["sleep 5 >/dev/null 2>&1 &", "echo freed"]);
    assert_eq!(out, "freed\n");
    assert!(
        freed < 4.5,
        "a redirected background process held it {freed:.1}s"
    );
}

pub fn output_bytes_and_suffix(ctx: &Ctx) {
    let i = &ctx.light[3].id;
    // 13,000 two-byte characters (26,000 bytes, under 24,000 characters)
    // and a result line after them.
    let id = ctx.send(
        &[i],
        &[
            "i=0; while [ $i -lt 13000 ]; do printf 'é'; i=$((i+1)); done",
            "echo",
            "echo HOIST-RESULT ok",
            "i=0; while [ $i -lt 9000 ]; do printf 'e' >&2; i=$((i+1)); done",
        ],
        |r| r,
    );
    let got = ctx.wait(&id, i, Duration::from_secs(60));
    let out = assert_success(&got);
    assert_eq!(out.len(), 24_000, "bytes kept");
    assert!(
        out.ends_with("é--output truncated--"),
        "{}",
        &out[out.len() - 40..]
    );
    assert!(!out.contains("HOIST-RESULT"));
    let err = got.standard_error_content().unwrap_or_default();
    assert_eq!(err.len(), 8_000);
    assert!(err.ends_with("e--output truncated--"));
    // Exactly 24,000 bytes is cut too (the agent keeps only what is shorter).
    let id = ctx.send(&[i], &["head -c 24000 /dev/zero | tr '\\0' x"], |r| r);
    let out = assert_success(&ctx.wait(&id, i, Duration::from_secs(30)));
    assert_eq!(out.len(), 24_000);
    assert!(out.ends_with("x--output truncated--"));
    let id = ctx.send(&[i], &["head -c 23999 /dev/zero | tr '\\0' x"], |r| r);
    let out = assert_success(&ctx.wait(&id, i, Duration::from_secs(30)));
    assert_eq!(out, "x".repeat(23_999));
    // The whole output stays beside the script, as the agent keeps it.
    let light = &ctx.light[3];
    let dir = light.root.join("ssm").join(format!(
        "{}/document/orchestration/{id}/awsrunShellScript/0.awsrunShellScript",
        light.id
    ));
    let kept = std::fs::metadata(dir.join("stdout")).map(|m| m.len());
    assert_eq!(kept.ok(), Some(23_999));
}

pub fn exit_codes(ctx: &Ctx) {
    let i = &ctx.light[3].id;
    let run = |code: &str| ctx.run(i, &["echo said >&2", &format!("exit {code}")]);
    let three = run("3");
    assert_eq!(status_of(&three), pair("Failed", "Failed"));
    assert_eq!(three.response_code(), 3);
    assert_eq!(
        three.standard_error_content().unwrap_or_default(),
        "said\nfailed to run commands: exit status 3"
    );
    let done = run("168");
    assert_eq!(
        status_of(&done),
        pair("Success", "Success"),
        "{}",
        describe(&done)
    );
    assert_eq!(done.response_code(), 168);
    assert_eq!(done.standard_error_content().unwrap_or_default(), "said\n");
    let fail = run("169");
    assert_eq!(status_of(&fail), pair("Failed", "Failed"));
    assert_eq!(
        fail.standard_error_content().unwrap_or_default(),
        "said\nfailed to run commands: exit status 169"
    );
    let killed = run("137");
    assert_eq!(status_of(&killed), pair("TimedOut", "ExecutionTimedOut"));
    assert_eq!(
        killed.standard_error_content().unwrap_or_default(),
        "said\n"
    );
}

pub fn execution_timeout_floor(ctx: &Ctx) {
    let i = &ctx.light[3].id;
    // Under 5 s the agent uses its default (3,600 s): the script runs on.
    let id = ctx.send(&[i], &["sleep 4", "echo finished"], |r| {
        r.parameters("executionTimeout", vec!["2".into()])
    });
    let got = ctx.wait(&id, i, Duration::from_secs(30));
    assert_eq!(assert_success(&got), "finished\n");
}

/// Waits (20 s at most) until `GetCommandInvocation` says the invocation runs.
fn wait_in_progress(ctx: &Ctx, command_id: &str, instance: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = ctx.rt.block_on(
            ctx.ssm
                .get_command_invocation()
                .command_id(command_id)
                .instance_id(instance)
                .send(),
        );
        if got.is_ok_and(|g| status_of(&g).0 == "InProgress") {
            break;
        }
        assert!(Instant::now() < deadline, "never InProgress");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn cancel_delay_and_group_kill(ctx: &Ctx) {
    let i = &ctx.light[3].id;
    let marker = format!("sleep 31.{}", std::process::id());
    let id = ctx.send(&[i], &[&format!("({marker}) &"), "sleep 30"], |r| r);
    wait_in_progress(ctx, &id, i);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    ctx.rt
        .block_on(ctx.ssm.cancel_command().command_id(&id).send())
        .expect("CancelCommand");
    let got = ctx.wait(&id, i, Duration::from_secs(20));
    let took = t.elapsed().as_secs_f64();
    assert_eq!(
        status_of(&got),
        pair("Cancelled", "Cancelled"),
        "{}",
        describe(&got)
    );
    assert!(
        took >= 1.4,
        "the cancel landed after {took:.2}s, before the agent's delay"
    );
    assert!(took < 6.0, "the cancel took {took:.2}s");
    let left = Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .expect("pgrep");
    assert!(
        !left.status.success(),
        "the script's background process outlived the cancel"
    );
}

pub fn five_running_five_queued(ctx: &Ctx) {
    let i = &ctx.light[0].id;
    let ids: Vec<String> = (0..11)
        .map(|_| ctx.send(&[i], &["date +%s.%N", "sleep 6"], |r| r))
        .collect();
    let mut starts = Vec::new();
    let mut refused = Vec::new();
    for id in &ids {
        let got = ctx.wait(id, i, Duration::from_secs(60));
        match status_of(&got).0.as_str() {
            "Success" => starts.push(stdout_of(&got).trim().parse::<f64>().expect("a time")),
            "Failed" => refused.push(got.standard_error_content().unwrap_or_default().to_string()),
            other => panic!("{other}: {}", describe(&got)),
        }
    }
    assert_eq!(starts.len(), 10, "refused: {refused:?}");
    assert_eq!(refused.len(), 1);
    assert!(refused[0].contains("5 running, 5 queued"), "{refused:?}");
    starts.sort_by(f64::total_cmp);
    let wave = starts[5] - starts[0];
    assert!(
        wave >= 5.5,
        "the 6th started {wave:.1}s after the 1st: not queued"
    );
    assert!(
        starts[4] - starts[0] < 3.0,
        "the first 5 did not run together"
    );
}

pub fn reboot_on_194(ctx: &Ctx) {
    let i = &ctx.full[2];
    let tar = ctx.var("HOIST_FLEET_BUSYBOX_TAR");
    assert_success(&ctx.run(
        &i.id,
        &[
            "set -e",
            &format!("docker import {tar} fleet-test/reboot:1 >/dev/null"),
            "docker run -d --name survives --restart always fleet-test/reboot:1 sleep 1000 >/dev/null",
            "docker run -d --name stops fleet-test/reboot:1 sleep 1000 >/dev/null",
            "touch /tmp/before-reboot /var/lib/hoist/before-reboot",
        ],
    ));
    let t = Instant::now();
    let got = ctx.run(&i.id, &["echo rebooting", "exit 194"]);
    assert_eq!(
        status_of(&got),
        pair("Success", "Success"),
        "{}",
        describe(&got)
    );
    assert_eq!(got.response_code(), 194);
    assert_eq!(stdout_of(&got), "rebooting\n");
    println!(
        "    the emulated reboot took {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let after = assert_success(&ctx.run(
        &i.id,
        &[
            "docker ps --format '{{.Names}}'",
            "ls /tmp",
            "ls /var/lib/hoist",
            "docker rm -f survives stops >/dev/null",
            "rm -f /var/lib/hoist/before-reboot",
        ],
    ));
    assert_eq!(after, "survives\nbefore-reboot\n", "{after}");
}
