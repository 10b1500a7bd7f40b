//! Secret env values: read from hoist's own environment at deploy time, handed to a
//! transport's secret channel, and scrubbed from anything hoist prints.

use std::ffi::OsString;
use std::fmt;

use crate::config::{MAX_ENV_LINE, SecretTier};

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
    #[error(
        "secret {0} is set in hoist's environment, but its value is not valid UTF-8; Docker \
         env files and SSM parameters hold UTF-8 text (nothing was changed)"
    )]
    NotUnicode(String),
    #[error(
        "secret {name}: the env line {name}=… is {len} bytes; Docker reads env files a line at \
         a time and refuses lines over {MAX_ENV_LINE} bytes (nothing was changed)"
    )]
    LineTooLong { name: String, len: usize },
    #[error(
        "the secret env ({}) is {len} bytes as NAME=value lines; the SSM SecureString \
         parameter that carries it holds at most {max} in the {tier} tier. {} \
         (nothing was changed)",
        names.join(", "),
        if *max < 8192 {
            "Set `secrets.tier: auto` or `advanced` (8192 bytes, charged), let the hosts read \
             large values themselves (`- NAME: {ssm: …}` in env.secret), or shorten them"
        } else {
            "Let the hosts read large values themselves (`- NAME: {ssm: …}` in env.secret), \
             or shorten them"
        }
    )]
    TooLargeForParameter {
        names: Vec<String>,
        len: usize,
        max: usize,
        tier: &'static str,
    },
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
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, SecretError> {
        let mut values = Vec::new();
        let mut missing = Vec::new();
        for name in names {
            let Some(value) = lookup(name) else {
                missing.push(name.clone());
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| SecretError::NotUnicode(name.clone()))?;
            if value.contains(['\n', '\r', '\0']) {
                return Err(SecretError::Multiline(name.clone()));
            }
            let len = name.len() + 1 + value.len();
            if len > MAX_ENV_LINE {
                return Err(SecretError::LineTooLong {
                    name: name.clone(),
                    len,
                });
            }
            values.push((name.clone(), value));
        }
        if missing.is_empty() {
            Ok(SecretEnv { values })
        } else {
            Err(SecretError::Missing(missing))
        }
    }

    pub fn from_env(names: &[String]) -> Result<Self, SecretError> {
        Self::resolve(names, |name| std::env::var_os(name))
    }

    /// Whether the payload fits the SSM parameter that carries it (the SSM transport).
    pub fn check_parameter_size(&self, tier: SecretTier) -> Result<(), SecretError> {
        let len = self.payload().len();
        if len > tier.max_bytes() {
            return Err(SecretError::TooLargeForParameter {
                names: self.values.iter().map(|(k, _)| k.clone()).collect(),
                len,
                max: tier.max_bytes(),
                tier: tier.as_str(),
            });
        }
        Ok(())
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

    #[test]
    fn a_non_utf8_secret_is_named_as_such_not_as_missing() {
        use std::os::unix::ffi::OsStringExt as _;
        let err = SecretEnv::resolve(&["K".to_owned()], |_| {
            Some(OsString::from_vec(vec![b'a', 0xff, b'b']))
        })
        .unwrap_err();
        assert_eq!(err, SecretError::NotUnicode("K".into()));
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        assert!(!err.to_string().contains("not set"), "{err}");
    }

    #[test]
    fn a_secret_line_over_dockers_env_file_limit_is_refused() {
        let names = ["K".to_owned()];
        // `K=` + value + newline must fit bufio.Scanner's 64 KiB buffer.
        let fits = "x".repeat(MAX_ENV_LINE - 2);
        assert!(SecretEnv::resolve(&names, |_| Some(fits.clone().into())).is_ok());
        let over = "x".repeat(MAX_ENV_LINE - 1);
        let err = SecretEnv::resolve(&names, |_| Some(over.clone().into())).unwrap_err();
        assert_eq!(
            err,
            SecretError::LineTooLong {
                name: "K".into(),
                len: MAX_ENV_LINE + 1
            }
        );
    }

    #[test]
    fn a_payload_over_the_ssm_parameter_limit_is_refused() {
        let names = ["A".to_owned(), "B".to_owned()];
        // "A=" + 2046 + "\n" = 2049 bytes, twice: 4098.
        let s = SecretEnv::resolve(&names, |_| Some("x".repeat(2046).into())).unwrap();
        let err = s.check_parameter_size(SecretTier::Standard).unwrap_err();
        assert_eq!(
            err,
            SecretError::TooLargeForParameter {
                names: names.to_vec(),
                len: 4098,
                max: 4096,
                tier: "standard",
            }
        );
        assert!(s.check_parameter_size(SecretTier::Advanced).is_ok());
        assert!(s.check_parameter_size(SecretTier::Auto).is_ok());
        let s = SecretEnv::resolve(&names, |_| Some("x".repeat(2045).into())).unwrap();
        assert_eq!(s.payload().len(), 4096);
        assert!(s.check_parameter_size(SecretTier::Standard).is_ok());
    }
}
