//! Secret env values: read from hoist's own environment at deploy time, handed to a
//! transport's secret channel, and scrubbed from anything hoist prints.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "secret{} {} named in env.secret {} not set in hoist's environment; export {} before \
         deploying (nothing was changed)",
        plural(.0),
        .0.join(", "),
        if .0.len() == 1 { "is" } else { "are" },
        if .0.len() == 1 { "it" } else { "them" }
    )]
    Missing(Vec<String>),
    #[error(
        "secret {0} contains a line break; Docker env files hold one NAME=value per line \
         (nothing was changed)"
    )]
    Multiline(String),
}

fn plural(v: &[String]) -> &'static str {
    if v.len() == 1 { "" } else { "s" }
}

/// Name/value pairs. `Debug` and `Display` never show values.
#[derive(Clone, Default)]
pub struct SecretEnv {
    values: Vec<(String, String)>,
}

impl fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.values.iter().map(|(k, _)| k.as_str()).collect();
        write!(f, "SecretEnv({} = <redacted>)", names.join(", "))
    }
}

impl SecretEnv {
    /// Reads every name from `lookup` (the process environment in production). Reports all
    /// missing names at once.
    pub fn resolve(
        names: &[String],
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretError> {
        let mut values = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            match lookup(name) {
                Some(v) if v.contains(['\n', '\r', '\0']) => {
                    return Err(SecretError::Multiline(name.clone()));
                }
                Some(v) => values.push((name.clone(), v)),
                None => missing.push(name.clone()),
            }
        }
        if missing.is_empty() {
            Ok(SecretEnv { values })
        } else {
            Err(SecretError::Missing(missing))
        }
    }

    pub fn from_env(names: &[String]) -> Result<Self, SecretError> {
        Self::resolve(names, |n| std::env::var(n).ok())
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The env-file lines for the secret channel: `NAME=value\n` each.
    pub fn payload(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect()
    }

    /// Replaces every secret value in `text` with `***` (values shorter than 4 characters
    /// are left alone: masking them would shred ordinary output).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (_, v) in &self.values {
            if v.len() >= 4 {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_all_missing_names() {
        let names = vec!["A".to_owned(), "B".to_owned(), "C".to_owned()];
        let err = SecretEnv::resolve(&names, |n| (n == "B").then(|| "x".into())).unwrap_err();
        assert_eq!(err, SecretError::Missing(vec!["A".into(), "C".into()]));
        assert!(
            err.to_string()
                .contains("secrets A, C named in env.secret are not set")
        );
    }

    #[test]
    fn never_shows_values() {
        let s = SecretEnv::resolve(&["TOKEN".to_owned()], |_| Some("hunter22".into())).unwrap();
        assert!(!format!("{s:?}").contains("hunter22"));
        assert_eq!(s.payload(), "TOKEN=hunter22\n");
        assert_eq!(s.redact("got hunter22!"), "got ***!");
    }

    #[test]
    fn refuses_multiline_values() {
        let err = SecretEnv::resolve(&["K".to_owned()], |_| Some("a\nb".into())).unwrap_err();
        assert_eq!(err, SecretError::Multiline("K".into()));
    }
}
