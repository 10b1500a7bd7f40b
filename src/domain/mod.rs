//! The domain: what a plan is made of and what running it comes to, as plain data and pure
//! functions. No I/O, no tokio, no AWS: every other layer may use it, and it uses only
//! `config`.
//!
//! - [`phase`]: a plan's steps and phases, where they run and how they spread;
//! - [`script`] and [`carry`]: a rendered script, and how a transport carries it;
//! - [`names`]: release ids, secret parameters, the lock's parameter and scope, image records;
//! - [`invocation`] and [`outcome`]: what a target's run reports and how it is judged;
//! - [`events`]: what the layers below the command line report as it happens;
//! - [`revision`]: the commit a deploy is built from;
//! - [`live`]: what runs on a target now, as a plan against live state reads it;
//! - [`waves`]: how a phase spreads over SSM commands and waves, and how long it may take.

pub mod carry;
pub mod checks;
pub mod events;
pub mod invocation;
pub mod live;
pub mod names;
pub mod outcome;
pub mod phase;
pub mod revision;
pub mod script;
pub mod secrets;
pub mod ser;
pub mod waves;

pub use events::Events;
pub use invocation::{Invocation, InvocationStatus, Outcome};
pub use names::{
    LockSpec, REVISION_LABEL, image_record_parameter, is_content_addressed, is_release_id,
    is_secret_parameter_of, lock_parameter, lock_scope, parameter_root, secret_parameter,
};
pub use phase::{
    Phase, PhaseTargets, PhaseWhen, RepositoryTag, RolloutPolicy, Step, StepKind, TransportKind,
};
pub use revision::{PathChanges, Revision, SourceDigest};
pub use script::{Param, Script, Source, quote, sha256_hex};
