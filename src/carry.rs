//! What a transport carries for one script, and whether SSM would accept it.
//!
//! SSM counts a document's content *and the runtime parameters* against one quota: "The
//! content of the document must not exceed 64KB. This quota also includes the content
//! specified for input parameters at runtime" (the `Content` member of `CreateDocument` in
//! AWS's SSM service model, `ssm/2014-11-06/service-2.json`); past it `SendCommand` fails with
//! `MaxDocumentSizeExceeded`. hoist sends `AWS-RunShellScript` with the whole script as its
//! `commands` parameter, so the script's size is the deploy's to watch. [`ssm_parameters`] is
//! the one place that builds those parameters: the SSM transport sends them and the plan
//! counts them, so what the plan reports is what is sent.
//!
//! Pure arithmetic, no I/O: `plan` refuses a script that SSM would refuse before anything
//! changes, and keeps a margin below the quota for the document's own content.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::script::Script;

/// SSM's quota on a document's content plus its runtime parameters (64 KB, read as 64 KiB;
/// the margin below makes the reading moot).
pub const SSM_DOCUMENT_QUOTA: usize = 64 * 1024;
/// hoist refuses to send parameters larger than this: the rest of the quota is left to
/// `AWS-RunShellScript`'s own content.
pub const SSM_PARAMETERS_LIMIT: usize = 60 * 1024;

/// The `AWS-RunShellScript` runtime parameters for `script`: `commands` (one element, the
/// script without its last newline: the agent joins the elements with "\n" and ends the file
/// with one, so `_script.sh` is byte-identical to the script) and `executionTimeout` (whole
/// seconds, at least 1).
pub fn ssm_parameters(script: &Script, timeout: Duration) -> [(&'static str, String); 2] {
    let commands = script
        .text
        .strip_suffix('\n')
        .unwrap_or(&script.text)
        .to_owned();
    [
        ("commands", commands),
        ("executionTimeout", timeout.as_secs().max(1).to_string()),
    ]
}

/// What one script costs its transport, as the plan shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// The script's own bytes (what a host writes to disk and runs).
    pub script_bytes: usize,
    /// The bytes of the `SendCommand` parameters that carry it, as JSON (`{"commands":[…],
    /// "executionTimeout":[…]}`, escapes included); `None` for the local transport, which
    /// pipes the script to `bash` and has no quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_parameter_bytes: Option<usize>,
}

impl Carried {
    /// The local transport: the script alone.
    pub fn local(script: &Script) -> Carried {
        Carried {
            script_bytes: script.text.len(),
            ssm_parameter_bytes: None,
        }
    }

    /// SSM: the script, and the JSON of the parameters that carry it.
    pub fn ssm(script: &Script, timeout: Duration) -> Carried {
        let map: serde_json::Map<String, serde_json::Value> = ssm_parameters(script, timeout)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::json!([v])))
            .collect();
        let json = serde_json::to_string(&map).expect("strings serialize");
        Carried {
            script_bytes: script.text.len(),
            ssm_parameter_bytes: Some(json.len()),
        }
    }

    /// In words, for the plan: `31204 bytes; SendCommand parameters 32010 of the 61440 hoist
    /// allows under SSM's 64 KB quota`.
    pub fn describe(self) -> String {
        match self.ssm_parameter_bytes {
            Some(sent) => format!(
                "{} bytes; SendCommand parameters {} of the {} hoist allows under SSM's \
                 64 KB quota",
                self.script_bytes, sent, SSM_PARAMETERS_LIMIT
            ),
            None => format!("{} bytes", self.script_bytes),
        }
    }

    /// Refuses what SSM would refuse, with the margin [`SSM_PARAMETERS_LIMIT`] leaves.
    pub fn check(self, script: &Script) -> Result<Carried, TooLarge> {
        match self.ssm_parameter_bytes {
            Some(bytes) if bytes > SSM_PARAMETERS_LIMIT => Err(TooLarge {
                body: script.body.clone(),
                script_bytes: self.script_bytes,
                parameter_bytes: bytes,
            }),
            _ => Ok(self),
        }
    }
}

/// A script SSM would refuse with `MaxDocumentSizeExceeded`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the rendered {body} is {script_bytes} bytes, and SendCommand would carry it in \
     {parameter_bytes} bytes of parameters: SSM refuses a command whose document content and \
     parameters pass its 64 KB quota (MaxDocumentSizeExceeded), and hoist refuses above \
     {limit} bytes to leave room for the document itself. Nothing was changed. Long header \
     values (env values, secret names, targets) count too: move large env values into a \
     secret source that hosts read themselves",
    limit = SSM_PARAMETERS_LIMIT
)]
pub struct TooLarge {
    pub body: String,
    pub script_bytes: usize,
    pub parameter_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{quote, sha256_hex};

    /// A script of the rendered shape (header, then code), whatever the library's size.
    fn script_with(value: &str) -> Script {
        let text = format!(
            "#!/bin/bash\nHOIST_APP={}\nlog \"$HOIST_APP\"\n",
            quote(value)
        );
        Script {
            body: "status.sh".into(),
            sha256: sha256_hex(text.as_bytes()),
            text,
        }
    }

    #[test]
    fn the_parameters_are_the_json_that_send_command_carries() {
        let script = script_with("hello \"world\"\n");
        let carried = Carried::ssm(&script, Duration::from_secs(90));
        let [(_, commands), (_, timeout)] = ssm_parameters(&script, Duration::from_secs(90));
        let expected = serde_json::json!({"commands": [commands], "executionTimeout": [timeout]});
        assert_eq!(
            carried.ssm_parameter_bytes,
            Some(expected.to_string().len())
        );
        // Newlines and quotes cost their escapes: more than the script's own bytes.
        assert!(carried.ssm_parameter_bytes.unwrap() > carried.script_bytes);
        assert_eq!(carried.script_bytes, script.text.len());
    }

    #[test]
    fn commands_plus_the_agents_final_newline_are_the_script() {
        let script = script_with("x");
        let [(_, commands), (_, timeout)] = ssm_parameters(&script, Duration::from_millis(10));
        assert_eq!(format!("{commands}\n"), script.text);
        assert_eq!(timeout, "1");
    }

    #[test]
    fn a_script_over_the_limit_is_refused_naming_the_quota_and_one_under_it_passes() {
        let small = script_with("x");
        assert!(
            Carried::ssm(&small, Duration::from_secs(60))
                .check(&small)
                .is_ok()
        );
        let big = script_with(&"x".repeat(SSM_PARAMETERS_LIMIT));
        let err = Carried::ssm(&big, Duration::from_secs(60))
            .check(&big)
            .unwrap_err();
        assert!(err.parameter_bytes > SSM_PARAMETERS_LIMIT);
        let text = err.to_string();
        assert!(text.contains("64 KB quota"), "{text}");
        assert!(text.contains("MaxDocumentSizeExceeded"), "{text}");
        assert!(text.contains("Nothing was changed"), "{text}");
        // The local transport has no such quota.
        assert!(Carried::local(&big).check(&big).is_ok());
    }
}
