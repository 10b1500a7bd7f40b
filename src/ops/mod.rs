//! The use cases: what each command does, in order, judged. `cli` calls one function here per
//! command and hands what it returns to an [`Output`]; the adapters (transport, lock,
//! registry, Docker) do the talking, and what happens meanwhile is told through [`Events`].

pub mod build;
pub mod deploy;
pub mod doctor;
pub mod error;
pub mod execute;
pub mod live;
pub mod output;
pub mod plan;
pub mod prepare;
pub mod remote;
pub mod rollback;
pub mod status;
pub mod steps;
pub mod timings;

pub use crate::domain::Events;
pub use crate::lock::Status as LockStatus;
pub use error::Error;
pub use output::Output;
