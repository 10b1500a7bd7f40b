//! Building the image with the Docker Engine API.

mod build;
mod context;
mod push;
mod revision;

pub use build::{BuildError, BuildRequest, build};
pub use context::{ContextError, DockerIgnore, digest, pack, pack_blocking};
pub use push::{Credentials, PushError, push};
pub use revision::{REVISION_LABEL, RevisionError, revision_of};
