//! The command line: parses arguments, runs one command, maps every outcome to an exit code
//! (0 ok, 1 deploy failed, 2 bad input or config, 3 the fleet lock is held, 130 interrupted;
//! each subcommand's `--help` lists its own), and under GitHub Actions reports to the runner
//! too ([`crate::github`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::aws;
use crate::config::{self, Config, ConfigError};
use crate::deploy::{self, DeployError, Registry, Services};
use crate::ecr::Ecr;
use crate::github::Actions;
use crate::lock::{self, LockError};
use crate::plan::{self, Format, Inputs, TransportKind};
use crate::progress::{Reporter, Verbosity};
use crate::revision::{self, RevisionError};
use crate::rollback;
use crate::secrets::{SecretEnv, SecretError};
use crate::status::{StatusReport, TargetStatus};
use crate::transport::secret_parameter;
use crate::transport::ssm::{self, SsmTransport};
use crate::transport::{LocalTransport, Transport};

#[derive(Debug, Parser)]
#[command(
    name = "hoist",
    version,
    about = "Deploy containers to EC2 through SSM: \
    reviewable plans, ephemeral secrets, no SSH"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print only results and errors (and warnings): no progress lines, no hosts' output.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print every line the hosts and the build print, as it arrives (by default only
    /// the steps each host's script logs, `hoist: …`).
    #[arg(short, long, global = true)]
    verbose: bool,
}

/// Each subcommand's exit codes, shown by its `--help` (and tabled in README.md).
const VALIDATE_EXIT: &str = "Exit codes:
  0  the config is valid
  2  the config is invalid or cannot be read (every problem is listed)";
const PLAN_EXIT: &str = "Exit codes:
  0  the plan was printed (or written to --out)
  1  --resolve-targets: SSM could not be asked, or a target is not usable (preflight)
  2  bad input or config, or --out cannot be written";
const DEPLOY_EXIT: &str = "Exit codes:
  0    every target deployed (or --dry-run printed the plan)
  1    a target did not deploy (the table says which, and whether it rolled back), or
       Docker, the build, ECR, SSM or preflight failed
  2    bad input or config: nothing was changed
  3    another deploy holds the fleet-wide lock (or a stale one does): nothing was changed
  130  interrupted (Ctrl-C, SIGTERM): the scripts were stopped and roll back";
const BUILD_EXIT: &str = "Exit codes:
  0    the image was built (and pushed): its reference is on stdout
  1    Docker, the build, ECR or the push failed
  2    bad input or config
  130  interrupted";
const STATUS_EXIT: &str = "Exit codes:
  0    every target was read
  1    a target could not be read, or SSM or preflight failed
  2    bad input or config
  130  interrupted";
const ROLLBACK_EXIT: &str = "Exit codes:
  0    every target runs the release it was asked to go back to (or --dry-run)
  1    a target did not roll back (the table says which, and whether the release that ran
       is back), or SSM or preflight failed
  2    bad input or config (--to not a release id): nothing was changed
  3    another deploy holds the fleet-wide lock (or a stale one does): nothing was changed
  130  interrupted";
const LOCK_STATUS_EXIT: &str = "Exit codes:
  0  the lock was read (locked, stale or not locked)
  1  SSM could not be asked
  2  bad input or config";
const UNLOCK_EXIT: &str = "Exit codes:
  0  the lock was broken, or there was none
  1  SSM could not be asked
  2  bad input or config";
const COMPLETIONS_EXIT: &str = "Exit codes:
  0  the script was printed
  2  unknown shell

Example: hoist completions bash > /etc/bash_completion.d/hoist";

#[derive(Debug, Subcommand)]
enum Command {
    /// Check hoist.yaml and print every problem found.
    #[command(after_help = VALIDATE_EXIT)]
    Validate(ValidateArgs),
    /// Print what a deploy would do, without touching Docker, AWS or the network.
    #[command(after_help = PLAN_EXIT)]
    Plan(PlanArgs),
    /// Build the image and roll it out (or apply a reviewed plan with --plan).
    #[command(after_help = DEPLOY_EXIT)]
    Deploy(DeployArgs),
    /// Build the image and push it to ECR; print what hosts would run
    /// (`registry/repository@sha256:…`), for `hoist deploy --image` to several environments.
    #[command(after_help = BUILD_EXIT)]
    Build(BuildArgs),
    /// Show what runs on each target: release, image, health, and what is retained.
    #[command(after_help = STATUS_EXIT)]
    Status(StatusArgs),
    /// Start a retained release again on every target (no build, no secret sent).
    #[command(after_help = ROLLBACK_EXIT)]
    Rollback(RollbackArgs),
    /// The app's fleet-wide deploy lock (an SSM parameter): `hoist lock status`.
    Lock(LockArgs),
    /// Break the app's fleet-wide deploy lock (a stale one, left by a killed hoist): says
    /// whose lock it was.
    #[command(after_help = UNLOCK_EXIT)]
    Unlock(UnlockArgs),
    /// Print the shell completion script for bash, zsh, fish or powershell.
    #[command(after_help = COMPLETIONS_EXIT)]
    Completions(CompletionsArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Validate(_) => "validate",
            Command::Plan(_) => "plan",
            Command::Deploy(_) => "deploy",
            Command::Build(_) => "build",
            Command::Status(_) => "status",
            Command::Rollback(_) => "rollback",
            Command::Lock(_) => "lock",
            Command::Unlock(_) => "unlock",
            Command::Completions(_) => "completions",
        }
    }
}

#[derive(Debug, Args)]
struct ValidateArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output format: `json` prints `{file, valid, app, strategy}`, or when invalid
    /// `{file, valid, errors: [{file, line, column, field, message, help}]}` (exit 2).
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    format: ValidateFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ValidateFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct LockArgs {
    #[command(subcommand)]
    command: LockCommand,
}

#[derive(Debug, Subcommand)]
enum LockCommand {
    /// Who holds the app's fleet-wide deploy lock over SSM (holder, release, since, lease),
    /// and whether it is stale.
    #[command(after_help = LOCK_STATUS_EXIT)]
    Status(LockStatusArgs),
}

#[derive(Debug, Args)]
struct LockStatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output format: `json` prints `{app, parameter, locked, stale, holder}`.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    format: ValidateFormat,
}

#[derive(Debug, Args)]
struct UnlockArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// `--lock-wait 5m`: a duration as the config writes them.
fn lock_wait(text: &str) -> Result<Duration, String> {
    config::duration::parse(text)
}

#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Read this machine (local transport) instead of the EC2 targets.
    #[arg(long)]
    local: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Args)]
struct RollbackArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Roll back this machine (local transport) instead of the EC2 targets.
    #[arg(long)]
    local: bool,
    /// The release to go back to; by default each target's newest retained release older
    /// than the one running.
    #[arg(long, value_name = "RELEASE")]
    to: Option<String>,
    /// Print the script each target would run, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format of the result (and of the script with --dry-run).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// When another deploy holds the fleet-wide lock, wait up to this long for it (`5m`)
    /// instead of failing at once.
    #[arg(long, value_name = "DURATION", value_parser = lock_wait, conflicts_with = "local")]
    lock_wait: Option<Duration>,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// The config file.
    #[arg(short = 'f', long = "file", default_value = config::DEFAULT_FILE)]
    file: PathBuf,
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output format on stdout (with --out: nothing on stdout unless a format is given).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Save the plan for review as JSON in this file; `hoist deploy --plan FILE` applies
    /// exactly it. Over SSM it needs --resolve-targets: a reviewed plan names its instances.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Plan for the local transport (this machine is the host).
    #[arg(long)]
    local: bool,
    /// Release id to use instead of the commit's short SHA.
    #[arg(long)]
    release: Option<String>,
    /// Ask SSM which instances the targets are now (needs AWS credentials), and check them
    /// as a deploy's preflight would. Without it the plan is made offline.
    #[arg(long, conflicts_with = "local")]
    resolve_targets: bool,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // command-line switches
struct DeployArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Deploy to this machine with its Docker engine instead of EC2 instances over SSM.
    #[arg(long)]
    local: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Release id to use instead of the commit's short SHA.
    #[arg(long)]
    release: Option<String>,
    /// Output format of the result (and of the plan with --dry-run).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Deploy this existing image (`registry/repository:tag` or `…@sha256:…`) without
    /// building or pushing.
    #[arg(long, value_name = "URI", conflicts_with = "plan")]
    image: Option<String>,
    /// Apply this reviewed plan (`hoist plan --out FILE`): refused, with every difference
    /// named, unless the config, commit, strategy, resolved targets and hoist's scripts are
    /// the reviewed ones; the executed scripts differ from it only in the image reference.
    /// With --dry-run: check, and change nothing.
    #[arg(long, value_name = "FILE", conflicts_with = "release")]
    plan: Option<PathBuf>,
    /// Replace the release even on hosts that already run it with the same image and
    /// configuration (by default they report `unchanged` and are left alone).
    #[arg(long, conflicts_with = "plan")]
    force: bool,
    /// Print the deploy's timeline once it ends: each step, each target's script phases, and
    /// hoist's own overhead (the JSON report always carries it, as `timings`).
    #[arg(long)]
    timings: bool,
    /// When another deploy holds the fleet-wide lock, wait up to this long for it (`5m`)
    /// instead of failing at once (a stale lock fails at once all the same).
    #[arg(long, value_name = "DURATION", value_parser = lock_wait, conflicts_with = "local")]
    lock_wait: Option<Duration>,
}

#[derive(Debug, Args)]
struct BuildArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Build only, into this machine's engine (no ECR): prints the image id.
    #[arg(long)]
    local: bool,
    /// Release id to use instead of the commit's short SHA.
    #[arg(long)]
    release: Option<String>,
    /// Output format of the result.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A config error already reported on stdout (`validate --format json`).
    #[error(transparent)]
    ConfigReported(ConfigError),
    #[error(transparent)]
    Revision(#[from] RevisionError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error("cannot connect to the Docker engine: {0}")]
    Docker(bollard::errors::Error),
    #[error("cannot write {}: {cause}", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Preflight(crate::transport::ssm::SsmError),
    #[error("deploy failed")]
    Failed,
    #[error("interrupted {0}")]
    Interrupted(&'static str),
    #[error("--to `{0}` is not a release id (letters, digits, _ . -, at most 64)")]
    BadTo(String),
    #[error("{0} of {1} target(s) could not be read")]
    Unread(usize, usize),
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    PlanFile(#[from] plan::ReadError),
    #[error(
        "--out saves a plan for review, and a reviewed SSM plan names the instances it was \
         reviewed for: add --resolve-targets (it asks SSM, with AWS credentials)"
    )]
    OutNeedsTargets,
    #[error(
        "no AWS region: set `region:` in the config, or AWS_REGION (or a profile's region) \
         where hoist runs; nothing was changed"
    )]
    NoRegion,
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_)
            | CliError::ConfigReported(_)
            | CliError::Revision(_)
            | CliError::Secret(_)
            | CliError::Plan(_)
            | CliError::Write { .. }
            | CliError::BadTo(_)
            | CliError::Read { .. }
            | CliError::PlanFile(_)
            | CliError::OutNeedsTargets
            | CliError::NoRegion
            | CliError::Deploy(
                DeployError::Plan(_)
                | DeployError::BadImage(..)
                | DeployError::Reviewed(_)
                | DeployError::WrongRevision { .. },
            ) => 2,
            CliError::Interrupted(_) | CliError::Lock(LockError::Interrupted(_)) => 130,
            CliError::Lock(e) if e.is_contention() => 3,
            CliError::Deploy(_)
            | CliError::Docker(_)
            | CliError::Preflight(_)
            | CliError::Unread(..)
            | CliError::Lock(_)
            | CliError::Failed => 1,
        }
    }
}

pub fn main() -> ExitCode {
    no_core_dumps();
    let cli = Cli::parse();
    let command = cli.command.name();
    let ctx = Context {
        verbosity: if cli.quiet {
            Verbosity::Quiet
        } else if cli.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        },
        github: Actions::from_env(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli.command, &ctx)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("{}", report(&err, crate::progress::color()));
            if let Some(github) = &ctx.github {
                github.failed(command, annotation(&err).as_deref());
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// What every command is run with besides its arguments.
struct Context {
    verbosity: Verbosity,
    /// GitHub Actions mode (`GITHUB_ACTIONS=true`).
    github: Option<Actions>,
}

/// What hoist prints for the error that ended a command: a config error with its snippets,
/// nothing for a failed deploy (its summary said it all) or for errors already reported
/// on stdout, else `error: ` and the error's `Display`, whose text holds its causes (see
/// the crate's documentation on errors).
fn report(err: &CliError, color: bool) -> String {
    match err {
        CliError::Config(e) => e.render(color),
        CliError::Failed | CliError::ConfigReported(_) => String::new(),
        e => format!("error: {e}\n"),
    }
}

/// The text of the `::error::` annotation for the error that ended a command under GitHub
/// Actions: none for a failed deploy or rollback (each target that failed has its own).
fn annotation(err: &CliError) -> Option<String> {
    match err {
        CliError::Failed => None,
        CliError::Config(e) | CliError::ConfigReported(e) => Some(e.headlines()),
        e => Some(e.to_string()),
    }
}

/// Sets the core file size limit to 0 (soft and hard) for hoist and everything it starts, so
/// a crash never writes secret values (hoist's environment, the script's stdin) to disk.
fn no_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit(2) reads the struct we pass; no other memory is involved.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &raw const zero);
    }
}

async fn run(command: Command, ctx: &Context) -> Result<(), CliError> {
    match command {
        Command::Validate(args) => validate(&args),
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "hoist",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Plan(args) => plan_command(args, ctx).await,
        Command::Deploy(args) => Box::pin(deploy(args, ctx)).await,
        Command::Build(args) => build(args, ctx).await,
        Command::Status(args) => status(args, ctx).await,
        Command::Rollback(args) => rollback(args, ctx).await,
        Command::Lock(LockArgs {
            command: LockCommand::Status(args),
        }) => lock_status(&args, ctx).await,
        Command::Unlock(args) => unlock(&args, ctx).await,
    }
}

async fn plan_command(args: PlanArgs, ctx: &Context) -> Result<(), CliError> {
    let transport = if args.local {
        TransportKind::Local
    } else {
        TransportKind::Ssm
    };
    if args.out.is_some() && transport == TransportKind::Ssm && !args.resolve_targets {
        return Err(CliError::OutNeedsTargets);
    }
    let (config, mut inputs) = prepare(
        &args.config.file,
        config::Files::ContextAndDockerfile,
        transport,
        args.release,
    )
    .await?;
    // A plan saved for review is the deploy it describes: its region is the one the deploy's
    // SDK resolves; an offline look only asks the environment and the profile.
    let lookup = if args.resolve_targets || args.out.is_some() {
        aws::RegionLookup::Sdk
    } else {
        aws::RegionLookup::Local
    };
    inputs.region = aws::region(config.region.as_deref(), lookup).await;
    if transport == TransportKind::Ssm && args.out.is_some() && inputs.region.is_none() {
        return Err(CliError::NoRegion);
    }
    if args.resolve_targets {
        let sdk = aws::sdk_config(config.region.as_deref()).await;
        let ids = ssm::preflight(&aws::ssm(&sdk), &config.targets)
            .await
            .map_err(CliError::Preflight)?;
        inputs.instances = Some(ids);
    }
    // A plan saved for review is the deploy run it describes: its secret parameter is named.
    if args.out.is_some() && transport == TransportKind::Ssm {
        inputs.run = Some(secret_parameter::new_run_id());
    }
    let plan = plan::build(&config, &inputs)?;
    if let Some(github) = &ctx.github {
        github.plan("plan", &plan, args.out.as_deref());
    }
    let Some(path) = args.out else {
        print!("{}", plan.render(args.format.unwrap_or(Format::Text)));
        return Ok(());
    };
    let json = plan.render(Format::Json);
    std::fs::write(&path, &json).map_err(|cause| CliError::Write {
        path: path.clone(),
        cause,
    })?;
    if let Some(format) = args.format {
        print!("{}", plan.render(format));
    }
    eprintln!(
        "saved the plan for review in {} (sha256 {}): release {}, {} phase(s); apply it with \
         `hoist deploy --plan {}`",
        path.display(),
        crate::script::sha256_hex(json.as_bytes()),
        plan.release,
        plan.phases().count(),
        path.display()
    );
    Ok(())
}

/// Reads a plan saved by `hoist plan --out`.
fn read_plan(path: &Path) -> Result<plan::Plan, CliError> {
    let text = std::fs::read_to_string(path).map_err(|cause| CliError::Read {
        path: path.to_owned(),
        cause,
    })?;
    Ok(plan::Plan::read(&text, &path.display().to_string())?)
}

/// Checks a reviewed plan against the plan made now from the same inputs (no image yet, no
/// registry): equal, or refused with every difference.
fn check_reviewed(
    reviewed: &plan::Plan,
    path: &Path,
    config: &Config,
    inputs: &Inputs,
) -> Result<(), CliError> {
    let now = plan::build(
        config,
        &Inputs {
            registry: None,
            ..inputs.clone()
        },
    )?;
    let differences = plan::review::differences(reviewed, &now);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(CliError::Deploy(DeployError::Reviewed(
            plan::review::Refusal {
                path: path.display().to_string(),
                differences,
            },
        )))
    }
}

/// `hoist validate`: the config and the files it names, checked; as text or JSON.
fn validate(args: &ValidateArgs) -> Result<(), CliError> {
    let file = &args.config.file;
    let loaded = config::load_checked(file, config::Files::Context);
    if args.format == ValidateFormat::Text {
        let config = loaded?;
        println!(
            "{} is valid: app {}, {} strategy",
            file.display(),
            config.app,
            config.strategy.as_str()
        );
        return Ok(());
    }
    let (json, result) = match loaded {
        Ok(config) => (
            serde_json::json!({
                "file": file.display().to_string(),
                "valid": true,
                "app": config.app,
                "strategy": config.strategy.as_str(),
            }),
            Ok(()),
        ),
        Err(e) => (
            serde_json::json!({
                "file": file.display().to_string(),
                "valid": false,
                "errors": e.to_json(),
            }),
            Err(CliError::ConfigReported(e)),
        ),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&json).expect("JSON serializes")
    );
    result
}

/// The instances a command addresses: `["local"]` for the local transport, else the config's
/// targets resolved and checked by preflight (cancellable).
async fn resolve_targets(
    local: bool,
    config: &Config,
    progress: &Reporter,
    cancel: &CancellationToken,
) -> Result<(Vec<String>, Option<Aws>), CliError> {
    if local {
        return Ok((vec!["local".to_owned()], None));
    }
    let sdk = aws::sdk_config(config.region.as_deref()).await;
    let ssm = aws::ssm(&sdk);
    progress.activity("preflight: asking SSM about the targets");
    let ids = tokio::select! {
        ids = ssm::preflight(&ssm, &config.targets) => ids.map_err(CliError::Preflight)?,
        () = cancel.cancelled() => return Err(CliError::Interrupted("before any host was changed")),
    };
    progress.done(&format!(
        "preflight: {} instance{} online: {}",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        ids.join(", ")
    ));
    Ok((ids, Some(Aws { ssm })))
}

/// The SSM client of the AWS configuration a command resolved.
struct Aws {
    ssm: aws_sdk_ssm::Client,
}

/// Progress on stderr at the command line's verbosity: plain lines under `--format json`
/// (stdout is the machine's) and GitHub Actions, a spinner on a terminal otherwise.
fn reporter(format: Format, ctx: &Context) -> Reporter {
    let reporter = Reporter::with(ctx.verbosity, ctx.github.is_some());
    if format == Format::Json {
        reporter.without_spinner()
    } else {
        reporter
    }
}

/// A result table for people; under GitHub Actions, with no workflow command in it acted on
/// (it shows hosts' stderr).
fn shown(text: &str, ctx: &Context) -> String {
    match ctx.github {
        Some(_) => crate::github::inert(text),
        None => text.to_owned(),
    }
}

/// A cancellation token that Ctrl-C or SIGTERM cancels.
fn cancel_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let interrupted = cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        interrupted.cancel();
    });
    cancel
}

async fn status(args: StatusArgs, ctx: &Context) -> Result<(), CliError> {
    let config = config::load_checked(&args.config.file, config::Files::None)?;
    let progress = reporter(args.format, ctx);
    let cancel = cancel_on_signal();
    let script = plan::status_script(&config);
    let timeout = std::time::Duration::from_secs(120);
    if !args.local {
        crate::carry::Carried::ssm(&script, timeout)
            .check(&script)
            .map_err(|e| CliError::Plan(e.into()))?;
    }
    let (targets, ssm) = resolve_targets(args.local, &config, &progress, &cancel).await?;
    let job = crate::transport::Job {
        script: &script,
        secrets: None,
        targets: &targets,
        policy: plan::RolloutPolicy {
            max_concurrency: config::Rate::Percent(100),
            max_errors: config::Rate::Percent(100),
        },
        timeout,
        comment: format!("hoist status {}", config.app),
    };
    progress.activity(&format!("reading {} target(s)", targets.len()));
    let invocations = match ssm {
        None => {
            LocalTransport::default()
                .run(&job, cancel.clone(), &Quiet)
                .await
        }
        Some(ssm) => {
            SsmTransport::new(ssm.ssm)
                .run(&job, cancel.clone(), &Quiet)
                .await
        }
    }
    .map_err(|e| CliError::Deploy(e.into()))?;
    progress.done(&format!("{} target(s) answered", invocations.len()));
    if cancel.is_cancelled() {
        return Err(CliError::Interrupted("while reading the targets"));
    }
    let report = StatusReport {
        app: config.app.clone(),
        targets: invocations
            .iter()
            .map(TargetStatus::from_invocation)
            .collect(),
    };
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a status serializes")
        ),
        _ => print!("{}", report.to_text()),
    }
    if let Some(github) = &ctx.github {
        github.status(&report, &invocations);
    }
    let unread = report.targets.iter().filter(|t| t.error.is_some()).count();
    if unread > 0 {
        return Err(CliError::Unread(unread, report.targets.len()));
    }
    Ok(())
}

async fn rollback(args: RollbackArgs, ctx: &Context) -> Result<(), CliError> {
    let config = config::load_checked(&args.config.file, config::Files::None)?;
    if let Some(to) = &args.to
        && !plan::is_release_id(to)
    {
        return Err(CliError::BadTo(
            config::text::escape(to, false).into_owned(),
        ));
    }
    let transport = if args.local {
        TransportKind::Local
    } else {
        TransportKind::Ssm
    };
    let phase = rollback::phase(&config, transport, args.to.as_deref())
        .map_err(|e| CliError::Plan(e.into()))?;
    if args.dry_run {
        if args.format == Format::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(&phase).expect("a phase serializes")
            );
        } else {
            println!(
                "Rollback of {} to {} on {} via {} transport (script {} sha256 {})",
                config.app,
                args.to.as_deref().unwrap_or("the previous release"),
                phase.on,
                transport.as_str(),
                phase.script.body,
                phase.script.sha256
            );
            print!("{}", config::text::escape(&phase.script.text, true));
        }
        return Ok(());
    }
    let progress = Arc::new(reporter(args.format, ctx));
    let cancel = cancel_on_signal();
    let (targets, ssm) = resolve_targets(args.local, &config, &progress, &cancel).await?;
    // Held until hoist ends (released when dropped, after the rollback's own cancel).
    let lock = match &ssm {
        Some(aws) => {
            let release = args.to.as_deref().unwrap_or("previous");
            let request = lock::Request::here("rollback", release, None);
            Some(
                take_lock(
                    &aws.ssm,
                    &config,
                    &request,
                    args.lock_wait,
                    &progress,
                    &cancel,
                )
                .await?,
            )
        }
        None => None,
    };
    // Nothing is built: the engine is not asked anything.
    let docker = bollard::Docker::connect_with_local_defaults().map_err(CliError::Docker)?;
    let secrets = SecretEnv::default();
    let local = LocalTransport::default();
    let remote = ssm.map(|aws| SsmTransport::new(aws.ssm));
    let services = Services {
        docker: &docker,
        registry: None,
        ssm: None,
        transport: match &remote {
            Some(t) => t,
            None => &local,
        },
        secrets: &secrets,
        progress: &progress,
    };
    let mut report = rollback::run(
        &config.app,
        args.to.as_deref(),
        phase,
        targets,
        &services,
        cancel,
    )
    .await?;
    report.lock = lock.as_ref().map(lock::Held::report);
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serializes")
        ),
        _ => print!("{}", shown(&report.summary(), ctx)),
    }
    if let Some(github) = &ctx.github {
        github.rollback(&report);
    }
    if report.cancelled {
        Err(CliError::Interrupted(
            "during the rollback: the scripts were stopped; each target's state is above",
        ))
    } else if report.ok() {
        Ok(())
    } else {
        Err(CliError::Failed)
    }
}

/// Drops hosts' output lines (status reads only the result).
struct Quiet;

impl crate::transport::OutputSink for Quiet {
    fn line(&self, _target: &str, _line: &str) {}
}

/// Loads the config and checks the files it names (`files`), then reads the revision (git,
/// off the async runtime's workers).
async fn prepare(
    file: &Path,
    files: config::Files,
    transport: TransportKind,
    release: Option<String>,
) -> Result<(Config, Inputs), CliError> {
    let config = config::load_checked(file, files)?;
    let context = config.image.context.clone();
    let revision = tokio::task::spawn_blocking(move || revision::resolve(&context))
        .await
        .expect("git's task does not panic")?;
    Ok((
        config,
        Inputs {
            release,
            ..Inputs::new(revision, transport)
        },
    ))
}

async fn deploy(args: DeployArgs, ctx: &Context) -> Result<(), CliError> {
    let transport = if args.local {
        TransportKind::Local
    } else {
        TransportKind::Ssm
    };
    // With --image nothing is built: no Dockerfile is needed.
    let files = match args.image {
        Some(_) => config::Files::Context,
        None => config::Files::ContextAndDockerfile,
    };
    let reviewed = args.plan.as_deref().map(read_plan).transpose()?;
    let (config, mut inputs) = prepare(&args.config.file, files, transport, args.release).await?;
    if let Some(uri) = &args.image {
        check_image_flag(uri)?;
        inputs.prebuilt = Some(uri.clone());
    }
    inputs.force = args.force;
    // A reviewed plan fixes the release and the deploy run (its secret parameter's name).
    if let Some(r) = &reviewed {
        inputs.release = Some(r.release.clone());
        inputs.run.clone_from(&r.run);
    }
    // Every input is checked before anything changes: config, revision, secrets, plan.
    let secrets = SecretEnv::from_env(&config.env.from_environment())?;
    // Before anything else is printed: the runner hides the values from its log too.
    if let Some(github) = &ctx.github {
        github.mask(&secrets, args.format == Format::Json);
    }
    if transport == TransportKind::Ssm {
        secrets.check_parameter_size(config.secrets.tier)?;
    }
    // Once, before anything changes (and with --dry-run too).
    for warning in secrets.short_value_warnings() {
        eprintln!("{warning}");
    }
    // The region the deploy's own SSM and ECR calls use; the hosts' calls get it too.
    inputs.region = match transport {
        TransportKind::Ssm => Some(
            aws::region(config.region.as_deref(), aws::RegionLookup::Sdk)
                .await
                .ok_or(CliError::NoRegion)?,
        ),
        TransportKind::Local => {
            aws::region(config.region.as_deref(), aws::RegionLookup::Local).await
        }
    };
    // The plan is made (and so checked) before anything changes, --dry-run or not.
    let draft = plan::build(&config, &inputs)?;
    if args.dry_run && reviewed.is_none() {
        print!("{}", draft.render(args.format));
        if let Some(github) = &ctx.github {
            github.plan("deploy", &draft, None);
        }
        return Ok(());
    }
    let started = std::time::Instant::now();
    let progress = Arc::new(reporter(args.format, ctx));
    let docker = bollard::Docker::connect_with_local_defaults().map_err(CliError::Docker)?;
    let cancel = cancel_on_signal();
    // What only reads comes first, at once: the engine answers, SSM resolves the targets,
    // ECR logs in.
    let ping = async {
        if !args.dry_run && (args.local || args.image.is_none()) {
            docker.ping().await.map_err(CliError::Docker)?;
        }
        Ok::<_, CliError>(())
    };
    let (ids, remote, login) = if args.local {
        ping.await?;
        (vec!["local".to_owned()], None, None)
    } else {
        let sdk = aws::sdk_config(config.region.as_deref()).await;
        let ssm = aws::ssm(&sdk);
        let ecr = Ecr::new(aws::ecr(&sdk));
        progress.activity("preflight: asking SSM about the targets; logging in to ECR");
        let (pinged, ids, login) = tokio::select! {
            all = async { tokio::join!(ping, ssm::preflight(&ssm, &config.targets), ecr.login()) } => all,
            () = cancel.cancelled() => return Err(CliError::Interrupted("before any host was changed")),
        };
        pinged?;
        let ids = ids.map_err(CliError::Preflight)?;
        let login = login.map_err(|e| CliError::Deploy(e.into()))?;
        progress.done(&format!(
            "preflight: {} instance{} online: {}",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            ids.join(", ")
        ));
        (ids, Some((Aws { ssm }, ecr)), Some(login))
    };
    if let (Some(r), Some(path)) = (&reviewed, &args.plan) {
        if remote.is_some() {
            inputs.instances = Some(ids.clone());
        }
        check_reviewed(r, path, &config, &inputs)?;
        progress.done(&format!(
            "{} applies: the config, commit {}, strategy, targets and hoist's scripts are the \
             reviewed ones",
            path.display(),
            &r.revision.sha[..r.revision.sha.len().min(12)]
        ));
        if args.dry_run {
            print!("{}", r.render(args.format));
            return Ok(());
        }
    }
    // Over SSM, the fleet-wide lock, before anything changes; held until hoist ends
    // (released when dropped: after the deploy's own cancel, on every path).
    let lock = match &remote {
        Some(aws) => {
            let run = inputs.run.get_or_insert_with(secret_parameter::new_run_id);
            let request = lock::Request::here("deploy", &draft.release, Some(run));
            Some(
                take_lock(
                    &aws.0.ssm,
                    &config,
                    &request,
                    args.lock_wait,
                    &progress,
                    &cancel,
                )
                .await?,
            )
        }
        None => None,
    };
    let before_steps = started.elapsed();
    let applying = reviewed.as_ref().zip(args.plan.as_deref());
    let apply =
        async |config: &Config, inputs: Inputs, services: &Services<'_>, cancel| match applying {
            Some((plan, path)) => {
                let path = path.display().to_string();
                deploy::apply(
                    config,
                    inputs,
                    deploy::Reviewed { plan, path: &path },
                    services,
                    cancel,
                )
                .await
            }
            None => deploy::deploy(config, inputs, services, cancel).await,
        };
    let result = if let (Some((Aws { ssm }, ecr)), Some(login)) = (remote, login) {
        let registry = Registry { ecr: &ecr, login };
        inputs.registry = Some(registry.login.registry.clone());
        if let Some(uri) = &args.image {
            let image = tokio::select! {
                image = deploy::resolve_prebuilt(uri, &registry.login.registry, &ecr, &docker, &progress) => image?,
                () = cancel.cancelled() => return Err(CliError::Interrupted("before any host was changed")),
            };
            inputs.image_id = Some(image.reference);
            inputs.registry = image.registry;
        }
        inputs.instances = Some(ids);
        if inputs.run.is_none() {
            inputs.run = Some(secret_parameter::new_run_id());
        }
        let transport = SsmTransport::new(ssm.clone());
        let services = Services {
            docker: &docker,
            registry: Some(&registry),
            ssm: Some(&ssm),
            transport: &transport,
            secrets: &secrets,
            progress: &progress,
        };
        // Parameters that killed runs of this app left behind, once they expired: swept
        // while the deploy runs (they are no run's).
        let (result, ()) = tokio::join!(
            apply(&config, inputs, &services, cancel),
            sweep(&ssm, &config.app, &progress)
        );
        result
    } else {
        if let Some(uri) = &args.image {
            // Hosts run the image id, not a tag that could move under the deploy.
            inputs.image_id = Some(deploy::resolve_local_image(&docker, uri, &progress).await?);
        }
        // The run names what a two-phase rollout stages (a reviewed plan keeps its own).
        if reviewed.is_none() {
            inputs.run = Some(secret_parameter::new_run_id());
        }
        let transport = LocalTransport::default();
        let services = Services {
            docker: &docker,
            registry: None,
            ssm: None,
            transport: &transport,
            secrets: &secrets,
            progress: &progress,
        };
        apply(&config, inputs, &services, cancel).await
    };
    let mut report = result.map_err(|e| match e {
        DeployError::Interrupted => CliError::Interrupted("before any host was changed"),
        e => CliError::Deploy(e),
    })?;
    report.lock = lock.as_ref().map(lock::Held::report);
    report.timings = Some(deploy::Timings::of(
        &report,
        before_steps,
        started.elapsed(),
    ));
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serializes")
        );
    } else {
        print!("{}", shown(&deploy::summary(&report), ctx));
        if args.timings {
            print!("{}", deploy::timeline(&report));
        }
    }
    if let Some(github) = &ctx.github {
        github.deploy(&report, args.plan.as_deref());
    }
    if report.cancelled {
        Err(CliError::Interrupted(
            "during the rollout: the scripts were stopped; hosts whose switch was not \
             verified restore their previous release (each target's state is above)",
        ))
    } else if report.ok() {
        Ok(())
    } else {
        Err(CliError::Failed)
    }
}

/// `hoist build`: the deploy's publishing steps only (ensure the repository, build, push),
/// then what hosts would run.
async fn build(args: BuildArgs, ctx: &Context) -> Result<(), CliError> {
    let transport = if args.local {
        TransportKind::Local
    } else {
        TransportKind::Ssm
    };
    let (config, mut inputs) = prepare(
        &args.config.file,
        config::Files::ContextAndDockerfile,
        transport,
        args.release,
    )
    .await?;
    let progress = reporter(args.format, ctx);
    let docker = bollard::Docker::connect_with_local_defaults().map_err(CliError::Docker)?;
    docker.ping().await.map_err(CliError::Docker)?;
    let cancel = cancel_on_signal();
    let interrupted = |e| match e {
        DeployError::Interrupted => CliError::Interrupted("before anything was pushed"),
        e => CliError::Deploy(e),
    };
    let (image, steps, plan) = if args.local {
        let plan = plan::build(&config, &inputs)?;
        let mut publisher = deploy::Publisher::new(&docker, None, &progress);
        let (_, steps) = deploy::publish(&plan, &mut publisher, &cancel)
            .await
            .map_err(interrupted)?;
        (publisher.published(), steps, plan)
    } else {
        let sdk = aws::sdk_config(config.region.as_deref()).await;
        let ecr = Ecr::new(aws::ecr(&sdk));
        let login = ecr_login(&ecr, &progress, &cancel, "before anything was pushed").await?;
        let registry = Registry { ecr: &ecr, login };
        inputs.registry = Some(registry.login.registry.clone());
        let plan = plan::build(&config, &inputs)?;
        let mut publisher = deploy::Publisher::new(&docker, Some(&registry), &progress);
        let (_, steps) = deploy::publish(&plan, &mut publisher, &cancel)
            .await
            .map_err(interrupted)?;
        (publisher.published(), steps, plan)
    };
    let image = image.ok_or_else(|| {
        CliError::Deploy(DeployError::Unsupported(
            "the plan has no build step".into(),
        ))
    })?;
    let digest = image.reference.rsplit_once('@').map(|(_, d)| d.to_owned());
    let built = Built {
        app: plan.app.clone(),
        release: plan.release.clone(),
        revision: plan.revision.sha.clone(),
        image: image.reference.clone(),
        digest,
        tags: plan.image.tags.clone(),
        steps,
    };
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&built).expect("a build serializes")
        ),
        _ => println!("{}", built.image),
    }
    if let Some(github) = &ctx.github {
        github.build(&built.release, &built.image, built.digest.as_deref());
    }
    Ok(())
}

/// What `hoist build` made.
#[derive(serde::Serialize)]
struct Built {
    app: String,
    release: String,
    revision: String,
    /// What hosts would run: `registry/repository@sha256:…` (an image id with --local).
    image: String,
    digest: Option<String>,
    tags: Vec<String>,
    steps: Vec<deploy::StepReport>,
}

/// Deletes the secret parameters of `app` that killed runs left behind, once expired; a
/// failure is a warning.
async fn sweep(ssm: &aws_sdk_ssm::Client, app: &str, progress: &Reporter) {
    match secret_parameter::sweep(ssm, app).await {
        Ok(swept) if swept.is_empty() => {}
        Ok(swept) => progress.done(&format!(
            "swept {} expired secret parameter{} left by killed deploys: {}",
            swept.len(),
            if swept.len() == 1 { "" } else { "s" },
            swept.join(", ")
        )),
        Err(e) => progress.warn(&format!(
            "warning: could not sweep expired secret parameters of {app}: {e}"
        )),
    }
}

/// Takes the fleet-wide lock of the config's app and targets for `request` (waiting up to
/// `wait` for another deploy to release it).
async fn take_lock(
    ssm: &aws_sdk_ssm::Client,
    config: &Config,
    request: &lock::Request,
    wait: Option<Duration>,
    progress: &Arc<Reporter>,
    cancel: &CancellationToken,
) -> Result<lock::Held, CliError> {
    Ok(lock::acquire(
        ssm,
        &lock::LockSpec::of(config),
        request,
        wait,
        lock::Timing::default(),
        progress.clone(),
        cancel,
    )
    .await?)
}

/// `hoist lock status`: who holds the app's fleet-wide lock.
async fn lock_status(args: &LockStatusArgs, ctx: &Context) -> Result<(), CliError> {
    let config = config::load_checked(&args.config.file, config::Files::None)?;
    let sdk = aws::sdk_config(config.region.as_deref()).await;
    let status = lock::status(&aws::ssm(&sdk), &config).await?;
    match args.format {
        ValidateFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&status).expect("a status serializes")
        ),
        ValidateFormat::Text => print!("{}", config::text::escape(&status.to_text(), true)),
    }
    if let Some(github) = &ctx.github {
        github.note("lock", "hoist lock status", &status.to_text());
    }
    Ok(())
}

/// `hoist unlock`: breaks the app's fleet-wide lock, saying whose it was.
async fn unlock(args: &UnlockArgs, ctx: &Context) -> Result<(), CliError> {
    let config = config::load_checked(&args.config.file, config::Files::None)?;
    let sdk = aws::sdk_config(config.region.as_deref()).await;
    let parameter = lock::parameter(&config);
    let text = match lock::unlock(&aws::ssm(&sdk), &config).await? {
        None => format!("{parameter}: not locked, nothing to break\n"),
        Some(was) => match &was.holder {
            Some(r) => format!(
                "broke the deploy lock {parameter}, held by {}{}\n",
                r.describe(),
                if was.stale {
                    ": its lease had expired"
                } else {
                    ": its lease had NOT expired, that deploy may still be running"
                }
            ),
            None => format!(
                "broke the deploy lock {parameter}, which held a value hoist cannot read ({})\n",
                was.unreadable.as_deref().unwrap_or_default()
            ),
        },
    };
    print!("{}", config::text::escape(&text, true));
    if let Some(github) = &ctx.github {
        github.note("unlock", "hoist unlock", &text);
    }
    Ok(())
}

/// Logs in to the account's registry; a cancel ends the command, interrupted `when`.
async fn ecr_login(
    ecr: &Ecr,
    progress: &Reporter,
    cancel: &CancellationToken,
    when: &'static str,
) -> Result<crate::ecr::Login, CliError> {
    progress.activity("logging in to ECR");
    tokio::select! {
        login = ecr.login() => login.map_err(|e| CliError::Deploy(e.into())),
        () = cancel.cancelled() => Err(CliError::Interrupted(when)),
    }
}

/// `--image` reaches the script a host runs: the same rules as config values apply.
fn check_image_flag(uri: &str) -> Result<(), CliError> {
    let bad = |why: String| {
        CliError::Deploy(DeployError::BadImage(
            config::text::escape(uri, false).into_owned(),
            why,
        ))
    };
    if let Some(c) = uri.chars().find(|&c| config::text::is_hidden(c)) {
        return Err(bad(format!(
            "contains {}, which a plan cannot show",
            config::text::describe(c)
        )));
    }
    if let Some(reference) = config::text::ssm_reference(uri) {
        return Err(bad(format!(
            "`{reference}` is an SSM parameter reference, which SSM would replace on its side"
        )));
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Every error prints its cause once (see the crate's documentation on errors).
#[cfg(test)]
mod tests;
