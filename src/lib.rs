//! hoist: build a container image, push it, and roll it out to hosts through a plan you can
//! read before it runs.

pub mod aws;
pub mod cli;
pub mod config;
pub mod deploy;
pub mod ecr;
pub mod image;
pub mod outcome;
pub mod plan;
pub mod progress;
pub mod revision;
pub mod rollback;
pub mod script;
pub mod secrets;
pub mod status;
pub mod strategy;
pub mod transport;
