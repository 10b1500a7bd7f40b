//! The command line: parses arguments, runs one command, maps every outcome to an exit code
//! (0 ok, 1 deploy failed, 2 bad input or config, 3 the fleet lock is held, 130 interrupted;
//! each subcommand's `--help` lists its own), and under GitHub Actions reports to the runner
//! too ([`crate::github`]).
//!
//! One file per subcommand: its arguments, and a `run` that builds a request, calls one
//! [`crate::ops`] function and hands what it returns to the [`Session`]'s output.

mod args;
mod build;
mod completions;
mod deploy;
mod doctor;
mod exec;
mod init;
mod lock;
mod logs;
mod man;
mod plan;
mod remove;
mod rollback;
mod session;
mod status;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::ops::Error;
use crate::output::progress::Verbosity;
use session::Session;

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
    /// The environment to act on: merges `hoist.NAME.yaml` (beside the config file) over
    /// it, and scopes the app's SSM names (lock, secret parameters) to
    /// `/hoist/<app>/NAME/`. An `environment:` key in the files must name the same one.
    #[arg(short, long, global = true, value_name = "NAME")]
    environment: Option<String>,
}

/// Each subcommand's exit codes, shown by its `--help` (and tabled in README.md).
pub(crate) const INIT_EXIT: &str = "Exit codes:
  0  the file was written (it validates)
  2  the file exists already (never overwritten), a flag is refused, or it cannot be written

Example: hoist init --tags Env=staging && hoist plan";
pub(crate) const VALIDATE_EXIT: &str = "Exit codes:
  0  the config is valid
  2  the config is invalid or cannot be read (every problem is listed)";
pub(crate) const PLAN_EXIT: &str = "Exit codes:
  0  the plan was printed (or written to --out)
  1  --resolve-targets: SSM could not be asked, or a target is not usable (preflight)
  2  bad input or config, or --out cannot be written";
pub(crate) const DEPLOY_EXIT: &str = "Exit codes:
  0    every target deployed (or --dry-run printed the plan)
  1    a target did not deploy (the table says which, and whether it rolled back), or
       a host check (nothing was changed), Docker, the build, ECR, SSM or preflight failed
  2    bad input or config: nothing was changed
  3    another deploy holds the fleet-wide lock (or a stale one does): nothing was changed
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP): the scripts were stopped and roll back";
pub(crate) const BUILD_EXIT: &str = "Exit codes:
  0    the image was built (and pushed): its reference is on stdout
  1    Docker, the build, ECR or the push failed
  2    bad input or config
  130  interrupted";
pub(crate) const STATUS_EXIT: &str = "Exit codes:
  0    every target was read
  1    a target could not be read, or SSM or preflight failed
  2    bad input or config
  130  interrupted";
pub(crate) const ROLLBACK_EXIT: &str = "Exit codes:
  0    every target runs the release it was asked to go back to (or --dry-run)
  1    a target did not roll back (the table says which, and whether the release that ran
       is back), or SSM or preflight failed
  2    bad input or config (--to not a release id): nothing was changed
  3    another deploy holds the fleet-wide lock (or a stale one does): nothing was changed
  130  interrupted";
pub(crate) const LOCK_STATUS_EXIT: &str = "Exit codes:
  0  the lock was read (locked, stale or not locked)
  1  SSM could not be asked
  2  bad input or config";
pub(crate) const UNLOCK_EXIT: &str = "Exit codes:
  0  the lock was broken, or there was none
  1  SSM could not be asked
  2  bad input or config";
pub(crate) const LOGS_EXIT: &str = "Exit codes:
  0    every target's logs were read (with --follow: until interrupted)
  1    a target could not be read, or SSM or preflight failed
  2    bad input or config (--target not a target)";
pub(crate) const EXEC_EXIT: &str = "Exit codes:
  0    the command exited 0 on every target (or --dry-run printed the script)
  1    the command failed, or could not run, on a target (the table says which), or SSM
       or preflight failed
  2    bad input or config (--target not a target)
  130  interrupted";
pub(crate) const REMOVE_EXIT: &str = "Exit codes:
  0    the app is gone from every target (or --dry-run printed the script)
  1    a target could not be cleared (the table says which), or SSM or preflight failed
  2    bad input or config, or no terminal to ask on and no --yes: nothing was changed
  3    another deploy holds the fleet-wide lock: nothing was changed
  130  interrupted, or the question answered no";
pub(crate) const DOCTOR_EXIT: &str = "Exit codes:
  0    no check failed (warnings are shown, and pass)
  1    a check failed on this machine or a target (the table says which and why), or SSM
       could not be asked
  2    bad input or config (--target not a target)
  130  interrupted";
pub(crate) const COMPLETIONS_EXIT: &str = "Exit codes:
  0  the script was printed
  2  unknown shell

Installing it, per shell (for your user; a package installs to the system's directories):
  bash        hoist completions bash > ~/.local/share/bash-completion/completions/hoist
  zsh         hoist completions zsh > ~/.zfunc/_hoist   (with fpath+=~/.zfunc before compinit)
  fish        hoist completions fish > ~/.config/fish/completions/hoist.fish
  powershell  hoist completions powershell >> $PROFILE
  elvish      hoist completions elvish >> ~/.config/elvish/rc.elv";
pub(crate) const MAN_EXIT: &str = "Exit codes:
  0  the page was printed (or the pages written to --out-dir)
  2  --out-dir cannot be written

Examples:
  hoist man | man -l -
  hoist man --out-dir /usr/share/man/man1";

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a commented hoist.yaml for the app here: its port from the Dockerfile's
    /// EXPOSE, its name from the git remote, its health check from a HEALTHCHECK.
    #[command(after_help = INIT_EXIT)]
    Init(init::InitArgs),
    /// Check hoist.yaml and print every problem found.
    #[command(after_help = VALIDATE_EXIT)]
    Validate(validate::ValidateArgs),
    /// Print what a deploy would do, without touching Docker, AWS or the network.
    #[command(after_help = PLAN_EXIT)]
    Plan(plan::PlanArgs),
    /// Build the image and roll it out (or apply a reviewed plan with --plan).
    #[command(after_help = DEPLOY_EXIT)]
    Deploy(deploy::DeployArgs),
    /// Build the image and push it to ECR; print what hosts would run
    /// (`registry/repository@sha256:…`), for `hoist deploy --image` to several environments.
    #[command(after_help = BUILD_EXIT)]
    Build(build::BuildArgs),
    /// Show what runs on each target: release, image, health, and what is retained.
    #[command(after_help = STATUS_EXIT)]
    Status(status::StatusArgs),
    /// Start a retained release again on every target (no build, no secret sent).
    #[command(after_help = ROLLBACK_EXIT)]
    Rollback(rollback::RollbackArgs),
    /// The app container's logs on every target (or --target), secrets masked.
    #[command(after_help = LOGS_EXIT)]
    Logs(logs::LogsArgs),
    /// Run a command in the live container on every target (or --target), without a TTY.
    #[command(after_help = EXEC_EXIT)]
    Exec(exec::ExecArgs),
    /// Take the app off every target: its containers, images, nginx file, state and history.
    #[command(after_help = REMOVE_EXIT)]
    Remove(remove::RemoveArgs),
    /// Check this machine and every target (or --target) for what hoist needs: the SSM agent,
    /// Docker, bash, flock, setsid, curl, the AWS CLI, tmpfs, nginx, disk, clock, parameters.
    #[command(after_help = DOCTOR_EXIT)]
    Doctor(doctor::DoctorArgs),
    /// The app's fleet-wide deploy lock (an SSM parameter): `hoist lock status`.
    Lock(lock::LockArgs),
    /// Break the app's fleet-wide deploy lock (a stale one, left by a killed hoist): says
    /// whose lock it was.
    #[command(after_help = UNLOCK_EXIT)]
    Unlock(lock::UnlockArgs),
    /// Print the shell completion script for bash, zsh, fish, powershell or elvish.
    #[command(after_help = COMPLETIONS_EXIT)]
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff), or write every page into a directory.
    #[command(after_help = MAN_EXIT)]
    Man(man::ManArgs),
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Validate(_) => "validate",
            Command::Plan(_) => "plan",
            Command::Deploy(_) => "deploy",
            Command::Build(_) => "build",
            Command::Status(_) => "status",
            Command::Rollback(_) => "rollback",
            Command::Logs(_) => "logs",
            Command::Exec(_) => "exec",
            Command::Remove(_) => "remove",
            Command::Doctor(_) => "doctor",
            Command::Lock(_) => "lock",
            Command::Unlock(_) => "unlock",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
        }
    }
}

pub fn main() -> ExitCode {
    no_core_dumps();
    let cli = Cli::parse();
    let command = cli.command.name();
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        let session = Session::new(verbosity, cli.environment);
        let result = run(cli.command, &session).await;
        if let Err(err) = &result {
            session.output(None).failed(command, err);
        }
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(err.exit_code()),
    }
}

async fn run(command: Command, session: &Session) -> Result<(), Error> {
    match command {
        Command::Init(args) => args.run(),
        Command::Validate(args) => args.run(session),
        Command::Completions(args) => {
            args.run();
            Ok(())
        }
        Command::Man(args) => args.run(),
        Command::Plan(args) => args.run(session).await,
        Command::Deploy(args) => Box::pin(args.run(session)).await,
        Command::Build(args) => args.run(session).await,
        Command::Status(args) => args.run(session).await,
        Command::Rollback(args) => args.run(session).await,
        Command::Logs(args) => args.run(session).await,
        Command::Exec(args) => args.run(session).await,
        Command::Remove(args) => args.run(session).await,
        Command::Doctor(args) => args.run(session).await,
        Command::Lock(args) => args.run(session).await,
        Command::Unlock(args) => args.run(session).await,
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
