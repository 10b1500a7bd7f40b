//! A rendered script, as a plan holds it and a transport runs it: exactly the bytes a host
//! executes, their sha256, and the sources they were rendered from.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One header parameter: a scalar or a bash array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Str(String),
    Array(Vec<String>),
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Str(s.to_owned())
    }
}
impl From<String> for Param {
    fn from(s: String) -> Self {
        Param::Str(s)
    }
}
impl From<Vec<String>> for Param {
    fn from(v: Vec<String>) -> Self {
        Param::Array(v)
    }
}

/// A rendered script: exactly the bytes a host executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// The body it was rendered from (`recreate.sh`, `blue-green.sh`, `status.sh`,
    /// `rollback.sh`).
    pub body: String,
    pub sha256: String,
    pub text: String,
    /// The source files rendered into it, in order (the library's modules, then the body),
    /// each with the sha256 of the commented file in the repository: what a reviewer reads.
    /// Empty in a plan saved by a hoist that rendered one library file.
    #[serde(default)]
    pub modules: Vec<Source>,
}

impl Script {
    /// Its size in bytes, as a transport sends it.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }
}

/// A source file a script was rendered from: its path in the repository and the sha256 of
/// its (commented) text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub path: String,
    pub sha256: String,
}

/// Quotes a word for POSIX shells: single quotes, with `'` written as `'\''`.
pub fn quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
