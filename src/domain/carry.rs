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
//! A rendered script is larger than that quota allows with room to spare, so SSM carries it
//! compressed: `commands` holds [`BOOTSTRAP`] (`src/scripts/bootstrap.sh`) under a header of
//! the script's sha256 and its gzip+base64 payload. On the host the bootstrap decodes the
//! script beside itself, refuses it unless its sha256 is the plan's, and `exec`s it: what runs
//! is byte for byte the script the plan shows and hashes.
//!
//! No I/O: `plan` refuses a script that SSM would refuse before anything changes, and keeps a
//! margin below the quota for the document's own content.

use std::io::Write as _;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::script::{Script, quote, sha256_hex};

/// The SSM bootstrap's source: decode, check, `exec` (see the module's documentation).
pub const BOOTSTRAP: &str = include_str!("../scripts/bootstrap.sh");
/// Its path in the repository, as the plan names it.
pub const BOOTSTRAP_FILE: &str = "src/scripts/bootstrap.sh";

/// SSM's quota on a document's content plus its runtime parameters (64 KB, read as 64 KiB;
/// the margin below makes the reading moot).
pub const SSM_DOCUMENT_QUOTA: usize = 64 * 1024;
/// hoist refuses to send parameters larger than this: the rest of the quota is left to
/// `AWS-RunShellScript`'s own content.
pub const SSM_PARAMETERS_LIMIT: usize = 60 * 1024;

/// The bootstrap that carries `script` over SSM: [`BOOTSTRAP`]'s shebang, a header of the
/// script's sha256 and its payload (gzip at the best level, no file name, no time: the same
/// script always gives the same bytes; then base64), then the rest of [`BOOTSTRAP`].
pub fn bootstrap(script: &Script) -> String {
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    gz.write_all(script.text.as_bytes())
        .expect("writing to memory");
    let payload =
        base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("writing to memory"));
    let (shebang, body) = BOOTSTRAP
        .split_once('\n')
        .expect("bootstrap.sh has a shebang");
    format!(
        "{shebang}\nHOIST_SHA256={}\nHOIST_PAYLOAD={}\n{body}",
        quote(&script.sha256),
        quote(&payload)
    )
}

/// The `AWS-RunShellScript` runtime parameters for `script`: `commands` (one element, the
/// [`bootstrap`] without its last newline: the agent joins the elements with "\n" and ends
/// the file with one, so `_script.sh` is byte-identical to the bootstrap) and
/// `executionTimeout` (whole seconds, at least 1).
pub fn ssm_parameters(script: &Script, timeout: Duration) -> [(&'static str, String); 2] {
    let boot = bootstrap(script);
    let commands = boot.strip_suffix('\n').unwrap_or(&boot).to_owned();
    [
        ("commands", commands),
        ("executionTimeout", timeout.as_secs().max(1).to_string()),
    ]
}

/// What one script costs its transport, as the plan shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// The script's own bytes (what a host writes to disk and runs).
    pub script_bytes: usize,
    /// The bytes of the `SendCommand` parameters that carry it, as JSON (`{"commands":[…],
    /// "executionTimeout":[…]}`, escapes included); `None` for the local transport, which
    /// pipes the script to `bash` and has no quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm_parameter_bytes: Option<usize>,
    /// Over SSM: the bootstrap that carries the script (`src/scripts/bootstrap.sh sha256 …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
}

impl Carried {
    /// The local transport: the script alone.
    pub fn local(script: &Script) -> Carried {
        Carried {
            script_bytes: script.bytes(),
            ssm_parameter_bytes: None,
            bootstrap: None,
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
            script_bytes: script.bytes(),
            ssm_parameter_bytes: Some(json.len()),
            bootstrap: Some(format!(
                "{BOOTSTRAP_FILE} sha256 {}",
                sha256_hex(BOOTSTRAP.as_bytes())
            )),
        }
    }

    /// In words, for the plan: `31204 bytes; SendCommand parameters 32010 of the 61440 hoist
    /// allows under SSM's 64 KB quota`.
    pub fn describe(&self) -> String {
        match self.ssm_parameter_bytes {
            Some(sent) => format!(
                "{} bytes, sent gzipped by {BOOTSTRAP_FILE} in {} bytes of SendCommand \
                 parameters (hoist allows {} under SSM's 64 KB quota)",
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
    use std::process::Command;

    use super::*;

    /// A script of the rendered shape (header, then code), whatever the library's size.
    fn script_with(value: &str) -> Script {
        let text = format!(
            "#!/bin/bash\nHOIST_APP={}\necho \"app $HOIST_APP\"\n",
            quote(value)
        );
        Script {
            body: "status.sh".into(),
            sha256: sha256_hex(text.as_bytes()),
            text,
            modules: Vec::new(),
        }
    }

    /// Text that gzip cannot shrink much: pseudo-random base64 characters.
    fn incompressible(len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ALPHABET[(state >> 58) as usize] as char
            })
            .collect()
    }

    #[test]
    fn the_parameters_are_the_json_that_send_command_carries() {
        let script = script_with(&incompressible(2000));
        let carried = Carried::ssm(&script, Duration::from_secs(90));
        let [(_, commands), (_, timeout)] = ssm_parameters(&script, Duration::from_secs(90));
        let expected = serde_json::json!({"commands": [commands], "executionTimeout": [timeout]});
        assert_eq!(
            carried.ssm_parameter_bytes,
            Some(expected.to_string().len())
        );
        assert_eq!(carried.script_bytes, script.text.len());
        assert!(carried.bootstrap.unwrap().starts_with(BOOTSTRAP_FILE));
        assert_eq!(timeout, "90");
    }

    #[test]
    fn the_bootstrap_is_the_same_bytes_for_the_same_script_and_the_agents_newline_ends_it() {
        let script = script_with("x");
        let [(_, commands), (_, timeout)] = ssm_parameters(&script, Duration::from_millis(10));
        assert_eq!(format!("{commands}\n"), bootstrap(&script));
        assert_eq!(bootstrap(&script), bootstrap(&script.clone()));
        assert!(commands.starts_with("#!/bin/sh\nHOIST_SHA256="));
        assert_eq!(timeout, "1");
    }

    /// Runs `text` as the agent does: written to `_script.sh`, then `sh -c <path>`.
    fn run_as_the_agent(text: &str) -> (std::process::Output, tempfile::TempDir) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("_script.sh");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(&path)
            .current_dir("/usr/bin")
            .output()
            .unwrap();
        (out, dir)
    }

    #[test]
    fn the_bootstrap_runs_exactly_the_plans_script_and_leaves_it_beside_itself() {
        let script = script_with("it's \"quoted\" $HOME");
        let (out, dir) = run_as_the_agent(&bootstrap(&script));
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "app it's \"quoted\" $HOME\n"
        );
        let decoded = dir.path().join(format!("hoist-{}.sh", script.sha256));
        assert_eq!(std::fs::read_to_string(decoded).unwrap(), script.text);
    }

    #[test]
    fn the_bootstrap_refuses_a_script_whose_sha256_is_not_the_plans() {
        let script = script_with("x");
        let forged = bootstrap(&script).replace(&script.sha256, &"0".repeat(64));
        let (out, _dir) = run_as_the_agent(&forged);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stdout.is_empty(), "the script did not run: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("has sha256 {}", script.sha256)) && stderr.contains("not run"),
            "{stderr}"
        );
    }

    #[test]
    fn a_script_over_the_limit_is_refused_naming_the_quota_and_one_under_it_passes() {
        let small = script_with("x");
        assert!(
            Carried::ssm(&small, Duration::from_secs(60))
                .check(&small)
                .is_ok()
        );
        // Compressed, a large script of shell code fits; incompressible bytes do not.
        let repetitive = script_with(&"x".repeat(2 * SSM_PARAMETERS_LIMIT));
        assert!(
            Carried::ssm(&repetitive, Duration::from_secs(60))
                .check(&repetitive)
                .is_ok()
        );
        let big = script_with(&incompressible(SSM_PARAMETERS_LIMIT));
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
