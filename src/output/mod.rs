//! What hoist shows people and machines: progress on stderr ([`progress::Reporter`], an
//! implementation of [`crate::ops::Events`]) and what a command ends with, as text
//! ([`text::Text`]) or JSON ([`json::Json`]), both implementations of [`crate::ops::Output`].

pub mod doctor;
pub mod json;
pub mod progress;
pub mod remote;
pub mod status;
pub mod summary;
pub mod text;
pub mod write;
