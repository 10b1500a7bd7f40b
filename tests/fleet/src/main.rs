//! `hoist-fleet`: an emulated AWS world (SSM Run Command, Parameter Store,
//! ECR, STS) with EC2-like instances, for hoist's tests. See README.md.

mod admin_client;
mod agent;
mod api;
mod cli;
mod clock;
mod error;
mod faults;
mod imds;
mod instance;
mod journal;
mod ledger;
mod random;
mod registry;
mod sys;
mod tls;
mod up;
mod world;

fn main() {
    let args = <cli::Cli as clap::Parser>::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("hoist-fleet: {e}");
        std::process::exit(1);
    }
}
