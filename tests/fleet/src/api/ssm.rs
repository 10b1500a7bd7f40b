//! SSM Run Command: SendCommand and the calls that watch and cancel it, with
//! the statuses, counts and concurrency rules AWS documents.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};

use super::{ApiResult, App, AwsError, page, required, str_field, string_list};
use crate::agent::{self, Ending, Job};
use crate::clock;
use crate::faults::Offline;
use crate::world::Instance;

const DOCUMENT: &str = "AWS-RunShellScript";
const PLUGIN: &str = "aws:runShellScript";
/// AWS-RunShellScript's content (version 1), as `aws ssm get-document --name
/// AWS-RunShellScript` returns it (aws/aws-cli `awscli/examples/ssm/get-document.rst`).
const DOCUMENT_CONTENT: &str = include_str!("AWS-RunShellScript.json");
/// "The content of the document must not exceed 64KB. This quota also includes the
/// content specified for input parameters at runtime." (CreateDocument `Content`,
/// botocore `ssm/2014-11-06/service-2.json`). 64 KB read as 64,000 bytes, the
/// stricter of 64,000 and 65,536 (unverified).
pub const MAX_DOCUMENT_BYTES: usize = 64_000;
/// GetCommandInvocation: "The first 24,000 characters written by the plugin to stdout."
const API_STDOUT_CHARS: usize = 24_000;
/// GetCommandInvocation: "The first 8,000 characters written by the plugin to stderr."
const API_STDERR_CHARS: usize = 8_000;
/// The agent's `iohandler.MaximumPluginOutputSize`: the bytes of a plugin's
/// `Output` (stdout and stderr together) that ListCommandInvocations shows.
const PLUGIN_OUTPUT_BYTES: usize = 2_400;
/// How long the emulated service takes to hand a command to a reachable agent.
const DELIVERY_MS: u64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Delayed,
    InProgress,
    Cancelling,
    Success,
    Failed,
    ExecutionTimedOut,
    DeliveryTimedOut,
    Undeliverable,
    Terminated,
    Cancelled,
}

impl Phase {
    /// (Status, StatusDetails) as the API reports them.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Phase::Pending => ("Pending", "Pending"),
            Phase::Delayed => ("Delayed", "Delayed"),
            Phase::InProgress => ("InProgress", "InProgress"),
            Phase::Cancelling => ("Cancelling", "Cancelling"),
            Phase::Success => ("Success", "Success"),
            Phase::Failed => ("Failed", "Failed"),
            Phase::ExecutionTimedOut => ("TimedOut", "ExecutionTimedOut"),
            Phase::DeliveryTimedOut => ("TimedOut", "DeliveryTimedOut"),
            Phase::Undeliverable => ("Failed", "Undeliverable"),
            Phase::Terminated => ("Failed", "Terminated"),
            Phase::Cancelled => ("Cancelled", "Cancelled"),
        }
    }

    fn terminal(self) -> bool {
        !matches!(
            self,
            Phase::Pending | Phase::Delayed | Phase::InProgress | Phase::Cancelling
        )
    }

    /// Counts against MaxErrors (Undeliverable and DeliveryTimedOut do not).
    fn error(self) -> bool {
        matches!(self, Phase::Failed | Phase::ExecutionTimedOut)
    }
}

struct Invocation {
    instance_id: String,
    instance_name: String,
    phase: Phase,
    visible_at: f64,
    start: Option<f64>,
    end: Option<f64>,
    code: i32,
    stdout: String,
    stderr: String,
    cancel: Arc<Notify>,
    /// The phase it had before it ended: what GetCommandInvocation still
    /// answers for `invocation_lag_ms` after the end.
    before_end: Phase,
}

impl Invocation {
    /// Ends the invocation in `phase` (terminal) at `now`.
    fn finish(&mut self, phase: Phase, now: f64) {
        if !self.phase.terminal() {
            self.before_end = self.phase;
        }
        self.phase = phase;
        self.end = Some(now);
    }

    /// Invisible (InvocationDoesNotExist) for a short window after SendCommand,
    /// unless it has already ended.
    fn visible(&self, now: f64) -> bool {
        self.visible_at <= now || self.phase.terminal()
    }
}

struct Command {
    id: String,
    comment: String,
    document_version: String,
    parameters: Value,
    instance_ids: Vec<String>,
    targets: Value,
    requested: f64,
    timeout_seconds: u64,
    max_concurrency: String,
    max_errors: String,
    max_errors_n: usize,
    cloudwatch: Value,
    service_role: String,
    notification: Value,
    execution_timeout: u64,
    working_directory: String,
    commands: Vec<String>,
    invocations: Vec<Invocation>,
    cancel_all: bool,
    dispatch_done: bool,
}

#[derive(Default)]
pub struct Ssm {
    commands: Mutex<Vec<Command>>,
}

fn find<'a>(cmds: &'a mut [Command], id: &str) -> Option<&'a mut Command> {
    cmds.iter_mut().find(|c| c.id == id)
}

impl Command {
    fn errors(&self) -> usize {
        self.invocations.iter().filter(|i| i.phase.error()).count()
    }

    fn status(&self) -> (&'static str, &'static str) {
        let all_terminal = self.invocations.iter().all(|i| i.phase.terminal());
        if !(all_terminal && self.dispatch_done) {
            if self.cancel_all {
                return ("Cancelling", "Cancelling");
            }
            if self.invocations.iter().any(|i| i.phase != Phase::Pending) {
                return ("InProgress", "InProgress");
            }
            return ("Pending", "Pending");
        }
        if self.cancel_all {
            return ("Cancelled", "Cancelled");
        }
        let count = |p: Phase| self.invocations.iter().filter(|i| i.phase == p).count();
        let errors = self.errors();
        if errors > self.max_errors_n {
            return if count(Phase::Failed) > 0 {
                ("Failed", "Failed")
            } else {
                ("TimedOut", "ExecutionTimedOut")
            };
        }
        let delivery = count(Phase::DeliveryTimedOut);
        if delivery > self.max_errors_n {
            return ("TimedOut", "DeliveryTimedOut");
        }
        let considered = self
            .invocations
            .iter()
            .filter(|i| i.phase != Phase::Undeliverable);
        if considered.clone().all(|i| i.phase == Phase::Success) {
            ("Success", "Success")
        } else {
            ("Failed", "Incomplete")
        }
    }

    fn json(&self, region: &str) -> Value {
        let (status, details) = self.status();
        let completed = self
            .invocations
            .iter()
            .filter(|i| i.phase.terminal())
            .count();
        let delivery = self
            .invocations
            .iter()
            .filter(|i| i.phase == Phase::DeliveryTimedOut)
            .count();
        json!({
            "CommandId": self.id,
            "DocumentName": DOCUMENT,
            "DocumentVersion": self.document_version,
            "Comment": self.comment,
            "ExpiresAfter": clock::epoch_json(self.requested + (self.timeout_seconds + self.execution_timeout) as f64),
            "Parameters": self.parameters,
            "InstanceIds": self.instance_ids,
            "Targets": self.targets,
            "RequestedDateTime": clock::epoch_json(self.requested),
            "Status": status,
            "StatusDetails": details,
            "OutputS3Region": region,
            "OutputS3BucketName": "",
            "OutputS3KeyPrefix": "",
            "MaxConcurrency": self.max_concurrency,
            "MaxErrors": self.max_errors,
            "TargetCount": self.invocations.len(),
            "CompletedCount": completed,
            "ErrorCount": self.errors(),
            "DeliveryTimedOutCount": delivery,
            "ServiceRole": self.service_role,
            "NotificationConfig": self.notification,
            "CloudWatchOutputConfig": self.cloudwatch,
            "TimeoutSeconds": self.timeout_seconds,
        })
    }

    fn plugin_json(&self, inv: &Invocation, region: &str) -> Value {
        let (status, details) = inv.phase.names();
        let output = truncate_output(&inv.stdout, &inv.stderr, PLUGIN_OUTPUT_BYTES);
        let mut v = json!({
            "Name": PLUGIN,
            "Status": status,
            "StatusDetails": details,
            "ResponseCode": inv.code,
            "Output": output,
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "OutputS3Region": region,
            "OutputS3BucketName": "",
            "OutputS3KeyPrefix": "",
        });
        if let Some(s) = inv.start {
            v["ResponseStartDateTime"] = clock::epoch_json(s);
        }
        if let Some(e) = inv.end {
            v["ResponseFinishDateTime"] = clock::epoch_json(e);
        }
        v
    }

    fn invocation_json(&self, inv: &Invocation, details: bool, region: &str) -> Value {
        let (status, status_details) = inv.phase.names();
        let plugins = if details {
            vec![self.plugin_json(inv, region)]
        } else {
            Vec::new()
        };
        json!({
            "CommandId": self.id,
            "InstanceId": inv.instance_id,
            "InstanceName": inv.instance_name,
            "Comment": self.comment,
            "DocumentName": DOCUMENT,
            "DocumentVersion": self.document_version,
            "RequestedDateTime": clock::epoch_json(self.requested),
            "Status": status,
            "StatusDetails": status_details,
            "TraceOutput": "",
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": plugins,
            "ServiceRole": self.service_role,
            "NotificationConfig": self.notification,
            "CloudWatchOutputConfig": self.cloudwatch,
        })
    }
}

fn host_name(inst: &Instance, region: &str) -> String {
    format!(
        "ip-{}.{region}.compute.internal",
        inst.address.replace('.', "-")
    )
}

/// "50", "10%": concurrency rounds a percentage up (at least 1), errors down.
fn resolve(value: &str, targets: usize, round_up: bool) -> usize {
    match value.strip_suffix('%') {
        Some(p) => {
            let p: usize = p.parse().unwrap_or(0);
            let n = if round_up {
                (p * targets).div_ceil(100)
            } else {
                p * targets / 100
            };
            if round_up { n.max(1) } else { n }
        }
        None => value.parse().unwrap_or(0),
    }
}

fn valid_count(value: &str, allow_zero: bool) -> bool {
    let (digits, pct) = match value.strip_suffix('%') {
        Some(d) => (d, true),
        None => (value, false),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || digits.len() > 7 {
        return false;
    }
    let n: u64 = digits.parse().unwrap_or(0);
    (allow_zero || n > 0) && (!pct || n <= 100)
}

fn invalid_parameters(msg: impl Into<String>) -> AwsError {
    AwsError::new("InvalidParameters", msg)
}

fn resolve_targets(app: &App, targets: &[Value]) -> Result<Vec<Instance>, AwsError> {
    let mut selected: Vec<Instance> = app.world.instances.clone();
    for t in targets {
        let key = str_field(t, "Key").unwrap_or("");
        let values = string_list(t, "Values");
        if values.is_empty() && key != "tag-key" {
            return Err(AwsError::validation(format!("Target {key} has no values")));
        }
        selected.retain(|i| {
            if let Some(tag) = key.strip_prefix("tag:") {
                i.tags.get(tag).is_some_and(|v| values.contains(v))
            } else if key == "tag-key" {
                values.iter().any(|k| i.tags.contains_key(k))
            } else if key == "InstanceIds" {
                values.contains(&i.id)
            } else {
                false
            }
        });
        if !(key.starts_with("tag:") || key == "tag-key" || key == "InstanceIds") {
            return Err(AwsError::new(
                "InvalidTarget",
                format!("Target key {key} is not supported by hoist-fleet"),
            ));
        }
    }
    Ok(selected)
}

pub fn send_command(app: &Arc<App>, p: &Value) -> ApiResult {
    let document = required(p, "DocumentName")?;
    if document != DOCUMENT {
        return Err(AwsError::new(
            "InvalidDocument",
            format!("Document with name {document} does not exist."),
        ));
    }
    let comment = str_field(p, "Comment").unwrap_or("").to_string();
    if comment.chars().count() > 100 {
        return Err(AwsError::validation(
            "1 validation error detected: Value at 'comment' failed to satisfy constraint: Member must have length less than or equal to 100",
        ));
    }
    // Parameters of AWS-RunShellScript.
    let params = p.get("Parameters").cloned().unwrap_or_else(|| json!({}));
    let Some(pmap) = params.as_object() else {
        return Err(invalid_parameters("Parameters must be a map"));
    };
    for k in pmap.keys() {
        if !["commands", "workingDirectory", "executionTimeout"].contains(&k.as_str()) {
            return Err(invalid_parameters(format!(
                "Parameter \"{k}\" is not defined in document {DOCUMENT}."
            )));
        }
    }
    let size = document_size(&params);
    if size > MAX_DOCUMENT_BYTES {
        return Err(AwsError::new(
            "MaxDocumentSizeExceeded",
            format!(
                "The size limit of a document is 64 KB: the content of {DOCUMENT} and the parameters come to {size} bytes."
            ),
        ));
    }
    let commands = string_list(&params, "commands");
    if commands.is_empty() {
        return Err(invalid_parameters(
            "Parameter \"commands\" is required but was not provided.",
        ));
    }
    let execution_timeout = match string_list(&params, "executionTimeout").first() {
        None => 3600,
        Some(s) => match s.trim().parse::<u64>() {
            Ok(n) if (1..=172_800).contains(&n) => n,
            _ => {
                return Err(invalid_parameters(format!(
                    "Parameter executionTimeout \"{s}\" is invalid: it must be an integer from 1 to 172800."
                )));
            }
        },
    };
    let working_directory = string_list(&params, "workingDirectory")
        .first()
        .cloned()
        .unwrap_or_default();

    let ids = string_list(p, "InstanceIds");
    let targets: Vec<Value> = p
        .get("Targets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ids.len() > 50 {
        return Err(AwsError::validation(
            "1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50",
        ));
    }
    if targets.len() > 5 {
        return Err(AwsError::validation(
            "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length less than or equal to 5",
        ));
    }
    if ids.is_empty() == targets.is_empty() {
        return Err(AwsError::validation(
            "Specify either InstanceIds or Targets, and not both.",
        ));
    }
    let timeout_seconds = match p.get("TimeoutSeconds") {
        None | Some(Value::Null) => 3600,
        Some(v) => match v.as_u64() {
            Some(n) if (30..=2_592_000).contains(&n) => n,
            _ => {
                return Err(AwsError::validation(format!(
                    "1 validation error detected: Value '{v}' at 'timeoutSeconds' failed to satisfy constraint: Member must have value between 30 and 2592000"
                )));
            }
        },
    };
    let max_concurrency = str_field(p, "MaxConcurrency").unwrap_or("50").to_string();
    let max_errors = str_field(p, "MaxErrors").unwrap_or("0").to_string();
    if !valid_count(&max_concurrency, false) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{max_concurrency}' at 'maxConcurrency' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$"
        )));
    }
    if !valid_count(&max_errors, true) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{max_errors}' at 'maxErrors' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$"
        )));
    }

    let chosen: Vec<Instance> = if ids.is_empty() {
        resolve_targets(app, &targets)?
    } else {
        let unknown: Vec<&String> = ids
            .iter()
            .filter(|id| !app.world.instances.iter().any(|i| &i.id == *id))
            .collect();
        if !unknown.is_empty() {
            return Err(AwsError::new(
                "InvalidInstanceId",
                format!(
                    "Instances [{}] not in a valid state for account {}",
                    unknown
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    app.world.account
                ),
            ));
        }
        let mut seen = Vec::new();
        for id in &ids {
            if !seen.contains(id) {
                seen.push(id.clone());
            }
        }
        seen.iter()
            .filter_map(|id| app.world.instances.iter().find(|i| &i.id == id).cloned())
            .collect()
    };

    let now = clock::now();
    let visible_at = now + app.world.invocation_visibility_ms as f64 / 1000.0;
    let region = app.world.region.clone();
    let command = Command {
        id: crate::random::uuid(),
        comment,
        document_version: str_field(p, "DocumentVersion")
            .unwrap_or("$DEFAULT")
            .to_string(),
        parameters: params.clone(),
        instance_ids: ids.clone(),
        targets: Value::Array(targets.clone()),
        requested: now,
        timeout_seconds,
        max_concurrency: max_concurrency.clone(),
        max_errors: max_errors.clone(),
        max_errors_n: resolve(&max_errors, chosen.len(), false),
        cloudwatch: p.get("CloudWatchOutputConfig").cloned().map_or_else(
            || json!({"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false}),
            |mut v| {
                if v.get("CloudWatchLogGroupName").is_none() {
                    v["CloudWatchLogGroupName"] = json!("");
                }
                v
            },
        ),
        service_role: str_field(p, "ServiceRoleArn").unwrap_or("").to_string(),
        notification: p.get("NotificationConfig").cloned().unwrap_or_else(
            || json!({"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""}),
        ),
        execution_timeout,
        working_directory,
        commands,
        invocations: chosen
            .iter()
            .map(|i| Invocation {
                instance_id: i.id.clone(),
                instance_name: host_name(i, &region),
                phase: Phase::Pending,
                visible_at,
                start: None,
                end: None,
                code: -1,
                stdout: String::new(),
                stderr: String::new(),
                cancel: Arc::new(Notify::new()),
                before_end: Phase::Pending,
            })
            .collect(),
        cancel_all: false,
        dispatch_done: false,
    };
    let window = resolve(&max_concurrency, chosen.len(), true).max(1);
    let id = command.id.clone();
    let answer = json!({"Command": command.json(&region)});
    app.ssm.commands.lock().expect("ssm").push(command);
    tokio::spawn(dispatch(app.clone(), id, window));
    Ok(answer)
}

/// Sends the command to at most `window` instances at a time, in order, and
/// stops sending once more than MaxErrors invocations have failed.
async fn dispatch(app: Arc<App>, id: String, window: usize) {
    let sem = Arc::new(Semaphore::new(window));
    let count = {
        let cmds = app.ssm.commands.lock().expect("ssm");
        cmds.iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.invocations.len())
    };
    let mut tasks = Vec::new();
    for idx in 0..count {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        {
            let mut cmds = app.ssm.commands.lock().expect("ssm");
            let Some(cmd) = find(&mut cmds, &id) else {
                return;
            };
            let stop = if cmd.cancel_all {
                Some(Phase::Cancelled)
            } else if cmd.errors() > cmd.max_errors_n {
                Some(Phase::Terminated)
            } else {
                None
            };
            // TimeoutSeconds: "If this time is reached and the command hasn't already
            // started running, it won't run." A wave still waiting for its turn when the
            // command's timeout has passed never starts (the stricter reading: rate
            // control's queue counts).
            if stop.is_none()
                && clock::now() >= cmd.requested + cmd.timeout_seconds as f64
                && cmd.invocations[idx].phase == Phase::Pending
            {
                cmd.invocations[idx].finish(Phase::DeliveryTimedOut, clock::now());
                continue;
            }
            if let Some(phase) = stop {
                let now = clock::now();
                for inv in cmd.invocations[idx..].iter_mut() {
                    if inv.phase == Phase::Pending {
                        inv.finish(phase, now);
                    }
                }
                break;
            }
            if cmd.invocations[idx].phase.terminal() {
                continue; // cancelled on its own before it was sent
            }
        }
        let app = app.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            run_invocation(&app, &id, idx).await;
            drop(permit);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut cmds = app.ssm.commands.lock().expect("ssm");
    if let Some(cmd) = find(&mut cmds, &id) {
        cmd.dispatch_done = true;
    }
}

async fn run_invocation(app: &Arc<App>, id: &str, idx: usize) {
    let (instance_id, deadline, job, cancel) = {
        let cmds = app.ssm.commands.lock().expect("ssm");
        let Some(cmd) = cmds.iter().find(|c| c.id == id) else {
            return;
        };
        let inv = &cmd.invocations[idx];
        (
            inv.instance_id.clone(),
            cmd.requested + cmd.timeout_seconds as f64,
            Job {
                command_id: cmd.id.clone(),
                commands: cmd.commands.clone(),
                working_directory: cmd.working_directory.clone(),
                execution_timeout: Duration::from_secs(cmd.execution_timeout),
            },
            inv.cancel.clone(),
        )
    };
    let Some(instance) = app.world.instances.iter().find(|i| i.id == instance_id) else {
        return;
    };
    let update = |f: &dyn Fn(&mut Invocation)| {
        let mut cmds = app.ssm.commands.lock().expect("ssm");
        if let Some(cmd) = find(&mut cmds, id) {
            f(&mut cmd.invocations[idx]);
        }
    };
    let phase = || {
        let cmds = app.ssm.commands.lock().expect("ssm");
        cmds.iter()
            .find(|c| c.id == id)
            .map_or(Phase::Cancelled, |c| c.invocations[idx].phase)
    };
    // Delivery: wait while the agent is offline, up to the delivery timeout.
    let mut delivered = false;
    for _ in 0..(2_592_000 * 5) {
        if phase().terminal() {
            return; // cancelled while waiting
        }
        let offline = app.faults.lock().expect("faults").offline(&instance_id);
        match offline {
            None => {
                delivered = true;
                break;
            }
            Some(Offline::Undeliverable) => {
                update(&|i| i.finish(Phase::Undeliverable, clock::now()));
                return;
            }
            Some(Offline::Timeout) => {
                if clock::now() >= deadline {
                    update(&|i| i.finish(Phase::DeliveryTimedOut, clock::now()));
                    return;
                }
                update(&|i| {
                    if i.phase == Phase::Pending {
                        i.phase = Phase::Delayed;
                    }
                });
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    if !delivered {
        return;
    }
    tokio::time::sleep(Duration::from_millis(DELIVERY_MS)).await;
    {
        let mut cmds = app.ssm.commands.lock().expect("ssm");
        let Some(cmd) = find(&mut cmds, id) else {
            return;
        };
        let inv = &mut cmd.invocations[idx];
        if inv.phase.terminal() {
            return;
        }
        inv.phase = Phase::InProgress;
        inv.start = Some(clock::now());
    }
    let outcome = agent::run(&app.world, instance, &job, cancel).await;
    update(&|i| {
        i.code = outcome.code;
        i.stdout = outcome.stdout.clone();
        i.stderr = outcome.stderr.clone();
        // The agent's own status for the plugin (agent.rs maps exit codes).
        let phase = match outcome.ending {
            Ending::Success => Phase::Success,
            Ending::Failed => Phase::Failed,
            Ending::TimedOut => Phase::ExecutionTimedOut,
            Ending::Cancelled => Phase::Cancelled,
        };
        i.finish(phase, clock::now());
    });
}

fn command_filters(p: &Value) -> Vec<(String, String)> {
    p.get("Filters")
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| {
                    Some((
                        str_field(f, "key")?.to_string(),
                        str_field(f, "value")?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn passes(filters: &[(String, String)], status: &str, document: &str) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "Status" => status == v,
        "DocumentName" => document == v,
        _ => true,
    })
}

fn check_command_id(id: &str) -> Result<(), AwsError> {
    if id.len() != 36 {
        return Err(AwsError::new("InvalidCommandId", ""));
    }
    Ok(())
}

pub fn list_commands(app: &Arc<App>, p: &Value) -> ApiResult {
    let filters = command_filters(p);
    let cmds = app.ssm.commands.lock().expect("ssm");
    let region = &app.world.region;
    let wanted = str_field(p, "CommandId");
    if let Some(id) = wanted {
        check_command_id(id)?;
        if !cmds.iter().any(|c| c.id == id) {
            return Err(AwsError::new("InvalidCommandId", ""));
        }
    }
    let instance = str_field(p, "InstanceId");
    let items: Vec<Value> = cmds
        .iter()
        .rev()
        .filter(|c| wanted.is_none_or(|w| c.id == w))
        .filter(|c| instance.is_none_or(|i| c.invocations.iter().any(|v| v.instance_id == i)))
        .filter(|c| passes(&filters, c.status().0, DOCUMENT))
        .map(|c| c.json(region))
        .collect();
    let (items, next) = page(&items, p, 50, 50)?;
    let mut out = json!({"Commands": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn list_command_invocations(app: &Arc<App>, p: &Value) -> ApiResult {
    let filters = command_filters(p);
    let details = p.get("Details").and_then(Value::as_bool).unwrap_or(false);
    let wanted = str_field(p, "CommandId");
    if let Some(id) = wanted {
        check_command_id(id)?;
    }
    let instance = str_field(p, "InstanceId");
    let now = clock::now();
    let cmds = app.ssm.commands.lock().expect("ssm");
    let region = &app.world.region;
    let mut items = Vec::new();
    for c in cmds
        .iter()
        .rev()
        .filter(|c| wanted.is_none_or(|w| c.id == w))
    {
        for inv in &c.invocations {
            if !inv.visible(now) || instance.is_some_and(|i| i != inv.instance_id) {
                continue;
            }
            if passes(&filters, inv.phase.names().0, DOCUMENT) {
                items.push(c.invocation_json(inv, details, region));
            }
        }
    }
    let (items, next) = page(&items, p, 50, 50)?;
    let mut out = json!({"CommandInvocations": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn get_command_invocation(app: &Arc<App>, p: &Value) -> ApiResult {
    let id = required(p, "CommandId")?;
    let instance = required(p, "InstanceId")?;
    check_command_id(id)?;
    if let Some(plugin) = str_field(p, "PluginName")
        && plugin != PLUGIN
    {
        return Err(AwsError::new("InvalidPluginName", ""));
    }
    let cmds = app.ssm.commands.lock().expect("ssm");
    let now = clock::now();
    let Some((cmd, inv)) = cmds.iter().find(|c| c.id == id).and_then(|c| {
        c.invocations
            .iter()
            .find(|i| i.instance_id == instance && i.visible(now))
            .map(|i| (c, i))
    }) else {
        return Err(AwsError::new("InvocationDoesNotExist", ""));
    };
    // Stricter reading (unverified): for a while after the end, GetCommandInvocation
    // still answers what the invocation was before, while ListCommandInvocations
    // already shows the end.
    let lag = app.world.api.invocation_lag_ms as f64 / 1000.0;
    let lagging = inv.phase.terminal() && inv.end.is_some_and(|e| now < e + lag);
    let phase = if lagging { inv.before_end } else { inv.phase };
    let end = if lagging { None } else { inv.end };
    let (status, details) = phase.names();
    let done = phase.terminal();
    let elapsed = match (inv.start, end) {
        (Some(s), Some(e)) => clock::elapsed(s, e),
        (Some(s), None) => clock::elapsed(s, now),
        _ => String::new(),
    };
    let cut = |s: &str, max: usize| -> String {
        if done {
            s.chars().take(max).collect()
        } else {
            String::new()
        }
    };
    Ok(json!({
        "CommandId": cmd.id,
        "InstanceId": inv.instance_id,
        "Comment": cmd.comment,
        "DocumentName": DOCUMENT,
        "DocumentVersion": cmd.document_version,
        "PluginName": PLUGIN,
        "ResponseCode": if lagging { -1 } else { inv.code },
        "ExecutionStartDateTime": inv.start.map(clock::iso8601).unwrap_or_default(),
        "ExecutionElapsedTime": elapsed,
        "ExecutionEndDateTime": if inv.start.is_some() { end.map(clock::iso8601).unwrap_or_default() } else { String::new() },
        "Status": status,
        "StatusDetails": details,
        "StandardOutputContent": cut(&inv.stdout, API_STDOUT_CHARS),
        "StandardOutputUrl": "",
        "StandardErrorContent": cut(&inv.stderr, API_STDERR_CHARS),
        "StandardErrorUrl": "",
        "CloudWatchOutputConfig": cmd.cloudwatch,
    }))
}

pub fn cancel_command(app: &Arc<App>, p: &Value) -> ApiResult {
    let id = required(p, "CommandId")?;
    check_command_id(id)?;
    let only = string_list(p, "InstanceIds");
    let mut cmds = app.ssm.commands.lock().expect("ssm");
    let Some(cmd) = find(&mut cmds, id) else {
        return Err(AwsError::new("InvalidCommandId", ""));
    };
    if only.is_empty() {
        cmd.cancel_all = true;
    }
    let now = clock::now();
    for inv in cmd.invocations.iter_mut() {
        if !only.is_empty() && !only.contains(&inv.instance_id) {
            continue;
        }
        match inv.phase {
            Phase::Pending | Phase::Delayed => inv.finish(Phase::Cancelled, now),
            Phase::InProgress => {
                inv.phase = Phase::Cancelling;
                inv.cancel.notify_one();
            }
            _ => {}
        }
    }
    Ok(json!({}))
}

pub fn describe_instance_information(app: &Arc<App>, p: &Value) -> ApiResult {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(fs) = p.get("Filters").and_then(Value::as_array) {
        for f in fs {
            if let Some(k) = str_field(f, "Key") {
                filters
                    .entry(k.to_string())
                    .or_default()
                    .extend(string_list(f, "Values"));
            }
        }
    }
    if let Some(fs) = p
        .get("InstanceInformationFilterList")
        .and_then(Value::as_array)
    {
        for f in fs {
            if let Some(k) = str_field(f, "key") {
                filters
                    .entry(k.to_string())
                    .or_default()
                    .extend(string_list(f, "valueSet"));
            }
        }
    }
    let faults = app.faults.lock().expect("faults");
    let now = clock::now();
    let region = &app.world.region;
    let items: Vec<Value> = app
        .world
        .instances
        .iter()
        .filter_map(|i| {
            let ping = if faults.offline(&i.id).is_some() {
                "ConnectionLost"
            } else {
                "Online"
            };
            let ok = filters.iter().all(|(k, vs)| match k.as_str() {
                "InstanceIds" => vs.contains(&i.id),
                "PingStatus" => vs.iter().any(|v| v == ping),
                "PlatformTypes" => vs.iter().any(|v| v == "Linux"),
                "ResourceType" => vs.iter().any(|v| v == "EC2Instance"),
                "tag-key" => vs.iter().any(|v| i.tags.contains_key(v)),
                k => match k.strip_prefix("tag:") {
                    Some(t) => i.tags.get(t).is_some_and(|v| vs.contains(v)),
                    None => true,
                },
            });
            ok.then(|| {
                json!({
                    "InstanceId": i.id,
                    "PingStatus": ping,
                    "LastPingDateTime": clock::epoch_json(now),
                    "AgentVersion": "3.3.1142.0",
                    "IsLatestVersion": true,
                    "PlatformType": "Linux",
                    "PlatformName": "Amazon Linux",
                    "PlatformVersion": "2023",
                    "ResourceType": "EC2Instance",
                    "IPAddress": i.address,
                    "ComputerName": host_name(i, region),
                    "SourceId": i.id,
                    "SourceType": "AWS::EC2::Instance",
                })
            })
        })
        .collect();
    let (items, next) = page(&items, p, 50, 50)?;
    let mut out = json!({"InstanceInformationList": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// The bytes SendCommand counts against the 64 KB document quota: the
/// document's own content plus the runtime parameters as compact JSON
/// (unverified: how AWS serialises them is not documented).
fn document_size(params: &Value) -> usize {
    DOCUMENT_CONTENT.len() + params.to_string().len()
}

/// The agent's `iohandler.TruncateOutput` (aws/amazon-ssm-agent
/// `agent/framework/processor/executer/iohandler/iohandler.go`): stdout, then
/// stderr under an ERROR title, cut in bytes to `capacity` with its markers.
/// A cut inside a UTF-8 sequence leaves U+FFFD, as Go's JSON encoding does.
fn truncate_output(stdout: &str, stderr: &str, capacity: usize) -> String {
    const TRUNCATE_OUT: &[u8] = b"\n---Output truncated---";
    const TRUNCATE_ERR: &[u8] = b"\n---Error truncated----";
    let (out, err) = (stdout.as_bytes(), stderr.as_bytes());
    let title: &[u8] = if err.is_empty() {
        b""
    } else {
        b"\n----------ERROR-------\n"
    };
    let available = capacity.saturating_sub(title.len());
    let parts: Vec<&[u8]> = if out.len() + err.len() < available {
        vec![out, title, err]
    } else if out.len() > available / 2 && err.len() > available / 2 {
        let size = available.saturating_sub(TRUNCATE_ERR.len() + TRUNCATE_OUT.len()) / 2;
        vec![
            &out[..size],
            TRUNCATE_OUT,
            title,
            &err[..size],
            TRUNCATE_ERR,
        ]
    } else if out.len() < available / 2 {
        let size = available.saturating_sub(TRUNCATE_ERR.len() + out.len());
        vec![out, title, &err[..size.min(err.len())], TRUNCATE_ERR]
    } else {
        let size = available.saturating_sub(TRUNCATE_OUT.len() + err.len());
        vec![&out[..size.min(out.len())], TRUNCATE_OUT, title, err]
    };
    String::from_utf8_lossy(&parts.concat()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_output_is_cut_as_the_agent_cuts_it() {
        // The agent's own cases (iohandler_test.go), with its sample capacity.
        let long = "This is a sample text. ".repeat(20);
        assert_eq!(truncate_output("", "", 100), "");
        assert_eq!(truncate_output("out", "", 100), "out");
        assert_eq!(
            truncate_output("", "err", 100),
            "\n----------ERROR-------\nerr"
        );
        assert_eq!(
            truncate_output("out", "err", 100),
            "out\n----------ERROR-------\nerr"
        );
        assert_eq!(
            truncate_output(&long, "", 100),
            format!("{}\n---Output truncated---", &long[..77])
        );
        // Both long: half of what is left to each, each with its marker.
        let both = truncate_output(&"o".repeat(30_000), &"e".repeat(10_000), 2_400);
        assert_eq!(
            both,
            format!(
                "{}\n---Output truncated---\n----------ERROR-------\n{}\n---Error truncated----",
                "o".repeat(1_165),
                "e".repeat(1_165)
            )
        );
        assert_eq!(both.len(), 2_400);
        // Short stdout, long stderr: stderr gets the rest.
        let err = truncate_output("hello\n", &"e".repeat(5_000), 2_400);
        assert_eq!(
            err,
            format!(
                "hello\n\n----------ERROR-------\n{}\n---Error truncated----",
                "e".repeat(2_347)
            )
        );
        // Exactly the space left is already too much (the agent's `<`).
        let exact = truncate_output(&"o".repeat(2_400), "", 2_400);
        assert!(exact.ends_with("\n---Output truncated---"));
        assert_eq!(exact.len(), 2_400);
        // Bytes, not characters: 2,000 two-byte characters are cut.
        let wide = truncate_output(&"é".repeat(2_000), "", 2_400);
        assert!(wide.ends_with("\n---Output truncated---"), "{wide}");
        assert!(wide.len() <= 2_400 + 2);
    }

    #[test]
    fn the_document_quota_counts_the_content_and_the_parameters_in_bytes() {
        assert_eq!(DOCUMENT_CONTENT.len(), 1_321);
        let params = |s: &str| json!({"commands": [s]});
        // {"commands":["…"]} is 17 bytes around the command.
        let fits = MAX_DOCUMENT_BYTES - 1_321 - 17;
        assert_eq!(
            document_size(&params(&"x".repeat(fits))),
            MAX_DOCUMENT_BYTES
        );
        assert!(document_size(&params(&"x".repeat(fits + 1))) > MAX_DOCUMENT_BYTES);
        // A multibyte character counts its bytes; a newline counts as JSON's \n.
        assert_eq!(document_size(&params("é")) - document_size(&params("x")), 1);
        assert_eq!(
            document_size(&params("\n")) - document_size(&params("x")),
            1
        );
    }

    #[test]
    fn percentages_round_as_documented() {
        assert_eq!(resolve("10%", 50, false), 5);
        assert_eq!(resolve("10%", 3, true), 1);
        assert_eq!(resolve("50%", 3, true), 2);
        assert_eq!(resolve("0", 3, false), 0);
        assert!(valid_count("100%", false));
        assert!(!valid_count("0", false));
        assert!(valid_count("0", true));
        assert!(!valid_count("101%", true));
        assert!(!valid_count("x", true));
    }
}
