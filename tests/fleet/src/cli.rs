//! The command line: `up`, `down`, `env`, `fault` and the hidden `serve`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::error::{FleetError, Result};
use crate::faults::Offline;
use crate::up::UpOptions;
use crate::world::World;

#[derive(Debug, Parser)]
#[command(
    name = "hoist-fleet",
    version,
    about = "An emulated AWS fleet for hoist's tests"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Shell,
    Json,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Bring a world up and print the environment a client needs.
    Up {
        /// Full instances (own network, mounts and dockerd).
        #[arg(long, default_value_t = 3)]
        instances: usize,
        /// Light instances (no engine; a stateful, recording `docker` stub).
        #[arg(long, default_value_t = 0)]
        light: usize,
        /// The world's directory (state, logs, instance roots). Not under /tmp or /run.
        #[arg(long)]
        dir: PathBuf,
        /// Extra tags: KEY=VALUE for every instance, N:KEY=VALUE for instance N.
        #[arg(long = "tag", value_name = "[N:]KEY=VALUE")]
        tags: Vec<String>,
        /// The world's subnet 10.213.K.0/24 (1-99); the first free one by default.
        #[arg(long)]
        index: Option<u8>,
        #[arg(long, default_value_t = 4566)]
        api_port: u16,
        #[arg(long, default_value_t = 5443)]
        registry_port: u16,
        /// The instance metadata service's port on the gateway (instances see 169.254.169.254:80).
        #[arg(long, default_value_t = 4570)]
        imds_port: u16,
        /// How long a CancelCommand takes to reach an instance's agent, which then SIGKILLs the script.
        #[arg(long, default_value_t = 1500)]
        cancel_delay_ms: u64,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// How long the light instances' `docker` stub sleeps per call.
        #[arg(long, default_value_t = 100)]
        light_docker_sleep_ms: u64,
        /// How long an invocation answers InvocationDoesNotExist after SendCommand.
        #[arg(long, default_value_t = 500)]
        invocation_visibility_ms: u64,
        #[command(flatten)]
        api: crate::api::settings::ApiSettings,
        /// What to print on stdout (both forms are written to DIR/env.sh and DIR/env.json).
        #[arg(long, value_enum, default_value = "shell")]
        format: Format,
    },
    /// Remove everything a world made (also after a crashed `up`).
    Down {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print the environment of a running world.
    Env {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "shell")]
        format: Format,
    },
    /// Inject or clear faults in a running world.
    Fault {
        #[arg(long)]
        dir: PathBuf,
        #[command(subcommand)]
        fault: FaultCmd,
    },
    /// Show the faults in force.
    Faults {
        #[arg(long)]
        dir: PathBuf,
    },
    /// The API server (started by `up`).
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OfflineMode {
    /// Agent stopped: invocations wait (Delayed), then DeliveryTimedOut.
    Timeout,
    /// Instance gone: invocations fail Undeliverable at once.
    Undeliverable,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DiskMode {
    Full,
    Readonly,
    Ok,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EngineMode {
    Down,
    Hang,
    Ok,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ToolMode {
    Missing,
    Ok,
}

#[derive(Debug, Subcommand)]
enum FaultCmd {
    /// Hide a tool (`flock`, `curl`, ...) on an instance, as on an image without it (or
    /// bring it back).
    Tool {
        instance: String,
        tool: String,
        #[arg(value_enum)]
        mode: ToolMode,
    },
    /// ThrottlingException for OPERATION (or `*`): the next N calls, or above a rate.
    Throttle {
        operation: String,
        #[arg(long)]
        next: Option<u32>,
        /// Calls per second allowed.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Add latency to OPERATION (or `*`).
    Latency { operation: String, ms: u64 },
    /// Stop an instance's agent.
    Offline {
        instance: String,
        #[arg(long, value_enum, default_value = "timeout")]
        mode: OfflineMode,
    },
    /// Start an instance's agent again.
    Online { instance: String },
    /// Make /var/lib/hoist on an instance full or read-only (or fix it).
    Disk {
        instance: String,
        #[arg(value_enum)]
        mode: DiskMode,
    },
    /// Stop or freeze an instance's dockerd (or bring it back).
    Engine {
        instance: String,
        #[arg(value_enum)]
        mode: EngineMode,
    },
    /// Carry out the next N calls of OPERATION, then hold each connection HOLD ms and close
    /// it without an answer (a lost response: the SDK sees a connection error).
    DropResponse {
        operation: String,
        #[arg(long, default_value_t = 1)]
        next: u32,
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
    },
    /// Clear throttling, latency, offline and dropped-response faults.
    Clear,
}

fn print_env(world: &World, format: Format) {
    match format {
        Format::Shell => print!("{}", world.exports()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&world.env_json()).unwrap_or_default()
        ),
    }
}

fn admin_addr(world: &World) -> String {
    format!("{}:{}", world.gateway, world.api_port)
}

fn fault_json(f: FaultCmd) -> serde_json::Value {
    let lower = |v: &dyn std::fmt::Debug| format!("{v:?}").to_ascii_lowercase();
    match f {
        FaultCmd::Throttle {
            operation,
            next,
            rate,
        } => json!({"kind": "throttle", "operation": operation, "next": next, "rate": rate}),
        FaultCmd::Latency { operation, ms } => {
            json!({"kind": "latency", "operation": operation, "ms": ms})
        }
        FaultCmd::Offline { instance, mode } => {
            let mode = match mode {
                OfflineMode::Timeout => Offline::Timeout,
                OfflineMode::Undeliverable => Offline::Undeliverable,
            };
            json!({"kind": "offline", "instance": instance, "mode": mode})
        }
        FaultCmd::Online { instance } => json!({"kind": "online", "instance": instance}),
        FaultCmd::Disk { instance, mode } => {
            json!({"kind": "disk", "instance": instance, "mode": lower(&mode)})
        }
        FaultCmd::Engine { instance, mode } => {
            json!({"kind": "engine", "instance": instance, "mode": lower(&mode)})
        }
        FaultCmd::Tool {
            instance,
            tool,
            mode,
        } => {
            json!({"kind": "tool", "instance": instance, "tool": tool, "mode": lower(&mode)})
        }
        FaultCmd::DropResponse {
            operation,
            next,
            hold_ms,
        } => {
            json!({"kind": "dropresponse", "operation": operation, "next": next, "hold_ms": hold_ms})
        }
        FaultCmd::Clear => json!({"kind": "clear"}),
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Up {
            instances,
            light,
            dir,
            tags,
            index,
            api_port,
            registry_port,
            imds_port,
            cancel_delay_ms,
            region,
            light_docker_sleep_ms,
            invocation_visibility_ms,
            api,
            format,
        } => {
            let world = crate::up::up(&UpOptions {
                dir,
                instances,
                light,
                index,
                api_port,
                registry_port,
                imds_port,
                cancel_delay_ms,
                region,
                tags,
                light_docker_sleep_ms,
                invocation_visibility_ms,
                api,
            })?;
            print_env(&world, format);
            Ok(())
        }
        Cmd::Down { dir } => {
            if !dir.join(crate::ledger::LEDGER_FILE).exists() {
                eprintln!("hoist-fleet: nothing to remove in {}", dir.display());
                return Ok(());
            }
            let problems = crate::ledger::teardown(&dir);
            if problems.is_empty() {
                Ok(())
            } else {
                Err(FleetError::Invalid(format!(
                    "could not remove: {}",
                    problems.join(", ")
                )))
            }
        }
        Cmd::Env { dir, format } => {
            print_env(&World::load(&dir)?, format);
            Ok(())
        }
        Cmd::Fault { dir, fault } => {
            let world = World::load(&dir)?;
            let answer = crate::admin_client::post(
                &admin_addr(&world),
                "/_fleet/fault",
                &fault_json(fault).to_string(),
            )?;
            println!("{answer}");
            Ok(())
        }
        Cmd::Faults { dir } => {
            let world = World::load(&dir)?;
            println!(
                "{}",
                crate::admin_client::get(&admin_addr(&world), "/_fleet/faults")?
            );
            Ok(())
        }
        Cmd::Serve { dir } => {
            let world = World::load(&dir)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(FleetError::io("starting the runtime"))?;
            rt.block_on(async move {
                let imds = world.clone();
                tokio::spawn(async move {
                    if let Err(e) = crate::imds::serve(imds).await {
                        eprintln!("hoist-fleet: {e}");
                        std::process::exit(1);
                    }
                });
                crate::api::serve(world).await
            })
        }
    }
}
