//! Building the image with the Docker Engine API.

mod build;
mod context;

pub use build::{BuildError, BuildRequest, build};
pub use context::{ContextError, DockerIgnore, pack};
