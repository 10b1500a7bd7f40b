//! Building the image with the Docker Engine API.

mod build;
mod context;
mod push;

pub use build::{BuildError, BuildRequest, build};
pub use context::{ContextError, DockerIgnore, digest, pack, pack_blocking};
pub use push::{Credentials, PushError, push};
