//! hoist: build a container image, push it, and roll it out to hosts through a plan you can
//! read before it runs.
//!
//! # Errors
//!
//! Every error prints its cause once. hoist reports an error by its `Display` alone (`error:
//! {e}`; config errors with their snippets), and the same text goes into step reports and
//! warnings, so each error's message is whole:
//!
//! - a variant that says something of its own and includes the error it wraps (`cannot run
//!   git: {0}`) keeps that error as a plain field: never `#[source]` or `#[from]`, and never
//!   a field named `source`, which thiserror takes for one (hence `cause`). Where `?` should
//!   convert, a hand-written `From` does what `#[from]` would;
//! - a variant that only passes another error on is `#[error(transparent)]` (and may be
//!   `#[from]`): it prints, and returns as its source, exactly what the inner error does.
//!
//! So `source()` never returns text the message already holds, and a reporter that walks the
//! chain (miette, anyhow) prints each cause once too. `cli`'s tests check both reporters.

pub mod aws;
pub mod cli;
pub mod config;
pub mod domain;
pub mod ecr;
pub mod github;
pub mod image;
pub mod lock;
pub mod ops;
pub mod output;
pub mod plan;
pub mod revision;
pub mod transport;

mod layers;
