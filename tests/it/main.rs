//! hoist's integration tests, one binary with a module per area (one link of the AWS SDK and
//! bollard instead of one per file). `sudo tests/run` runs them under cargo-nextest, each
//! test in a process of its own; `.config/nextest.toml` groups them by what they share (the
//! emulated fleet, Docker) and by how many may run at once.
//!
//! - `cli`, `rough_edges`, `config_errors`, `config_fuzz`, `plan`, `plan_readable`, `release`,
//!   `scripts`, `script_secrets`, `aws_errors`, `workflows`: the binary and the library with no Docker
//!   (real bash, shellcheck and linters);
//! - `local_deploy`, `host_scripts`: real Docker on this machine; `quickstart`: the README's
//!   quick start as a user with sudo (a user it makes, a cold build of hoist as that user);
//! - `ssm_deploy`, `image_reuse`, `remote_commands`, `fleet_lock`, `fleet_scale`, `action`: the
//!   emulated AWS fleet (tests/fleet), with the GitHub Action end to end.

mod common;

mod action;
mod aws_errors;
mod cli;
mod config_errors;
mod config_fuzz;
mod doctor;
mod fleet_lock;
mod fleet_scale;
mod host_scripts;
mod image_reuse;
mod init;
mod local_deploy;
mod plan;
mod plan_readable;
mod quickstart;
mod release;
mod remote_commands;
mod rough_edges;
mod script_secrets;
mod scripts;
mod ssm_deploy;
mod workflows;
