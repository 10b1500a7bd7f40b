//! AWS errors in plain words: where credentials were looked for and how to provide them, a
//! profile that does not exist, a missing region, and an access denied with the action and
//! the policy that grants it. The SDK's own words ("dispatch failure: other: …") say what
//! broke, not what to do.

use std::path::PathBuf;

/// What hoist says when no source in the SDK's chain gave credentials: each source, in the
/// chain's order, with what hoist can see of it, and how to provide one.
pub(super) fn no_credentials() -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (config, credentials) = (config_file(), credentials_file());
    if let Some(missing) = missing_profile() {
        return missing;
    }
    let set = |names: &[&str]| {
        if names.iter().all(|n| env(n).is_some()) {
            "set, but not usable"
        } else {
            "not set"
        }
    };
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let imds = if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        "disabled by AWS_EC2_METADATA_DISABLED"
    } else {
        "no answer: not on EC2, or no role attached"
    };
    format!(
        "no AWS credentials found. Looked at, in order: the environment (AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY: {}); profile `{profile}` in {} and {} (keys, SSO, \
         credential_process: none usable); web identity (AWS_WEB_IDENTITY_TOKEN_FILE and \
         AWS_ROLE_ARN: {}); the ECS container endpoint; the EC2 instance profile (IMDS: \
         {imds}). Provide them with `export AWS_PROFILE=NAME` (after `aws configure` or `aws sso \
         login`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions, assume an \
         OIDC role (aws-actions/configure-aws-credentials)",
        set(&["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]),
        config.display(),
        credentials.display(),
        set(&["AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"]),
    )
}

/// Where the SDK's default chain takes credentials from here: the first source in its order
/// that is set (it is the one used, when usable).
pub fn credential_source() -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if env("AWS_ACCESS_KEY_ID").is_some() && env("AWS_SECRET_ACCESS_KEY").is_some() {
        return "the environment (AWS_ACCESS_KEY_ID)".to_owned();
    }
    if let Some(profile) = env("AWS_PROFILE") {
        return format!("profile `{profile}` (AWS_PROFILE)");
    }
    if profile_exists("default") {
        return format!(
            "profile `default` ({} or {})",
            config_file().display(),
            credentials_file().display()
        );
    }
    if env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
        return format!(
            "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, role {})",
            env("AWS_ROLE_ARN").unwrap_or_else(|| "not set".to_owned())
        );
    }
    if env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
    {
        return "the container credentials endpoint".to_owned();
    }
    "the EC2 instance profile (IMDS)".to_owned()
}

/// When `AWS_PROFILE` names a profile that neither shared file has: says so.
pub(super) fn missing_profile() -> Option<String> {
    let profile = std::env::var("AWS_PROFILE")
        .ok()
        .filter(|v| !v.is_empty())?;
    (!profile_exists(&profile)).then(|| {
        format!(
            "no AWS credentials: AWS_PROFILE names profile `{profile}`, which does not exist \
             in {} or {} (`aws configure list-profiles` lists those that do; or unset \
             AWS_PROFILE)",
            config_file().display(),
            credentials_file().display()
        )
    })
}

/// What hoist says when no region was found for an AWS call.
pub(super) const NO_REGION: &str = "no AWS region: set `region:` in the config, or AWS_REGION \
                                     (or the region of the profile AWS_PROFILE names)";

/// An access denied, with the action AWS names and where the policy granting it is; `None`
/// for any other error.
pub(super) fn access_denied(code: &str, message: &str) -> Option<String> {
    let denied = code.starts_with("AccessDenied")
        || code == "UnauthorizedOperation"
        || code == "UnrecognizedClientException" && message.contains("not authorized")
        || message.contains("is not authorized to perform");
    if !denied {
        return None;
    }
    let action = message
        .split_once("perform: ")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or_default())
        .map(|a| a.trim_end_matches([',', '.', ';']))
        .filter(|a| a.contains(':'));
    let grant = match action {
        Some(action) => format!("the caller's IAM policy must allow `{action}`"),
        None => "the caller's IAM policy must allow the call".to_owned(),
    };
    Some(format!(
        "{code}: {message} ({grant}; README.md's \"The caller\" lists every action hoist needs, \
         and examples/github-actions/iam/ci-deploy-role.json (ci-plan-role.json for `plan \
         --resolve-targets`) grants them)"
    ))
}

/// The shared config file, as the SDK finds it.
fn config_file() -> PathBuf {
    std::env::var_os("AWS_CONFIG_FILE").map_or_else(|| home().join(".aws/config"), PathBuf::from)
}

/// The shared credentials file, as the SDK finds it.
fn credentials_file() -> PathBuf {
    std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map_or_else(|| home().join(".aws/credentials"), PathBuf::from)
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("~"), PathBuf::from)
}

/// Whether profile `name` has a section in the config file (`[profile NAME]`, or `[default]`)
/// or the credentials file (`[NAME]`).
fn profile_exists(name: &str) -> bool {
    let sections = |path: PathBuf| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']').map(str::trim))
            .map(str::to_owned)
            .collect()
    };
    let in_config = sections(config_file()).iter().any(|s| {
        s.strip_prefix("profile")
            .filter(|rest| rest.starts_with(char::is_whitespace))
            .map_or(s == "default" && name == "default", |rest| {
                rest.trim() == name
            })
    });
    in_config || sections(credentials_file()).iter().any(|s| s == name)
}

#[cfg(test)]
mod tests {
    use super::access_denied;

    #[test]
    fn an_access_denied_names_the_action_and_the_policy() {
        let said = access_denied(
            "AccessDeniedException",
            "User: arn:aws:sts::1:assumed-role/ci/x is not authorized to perform: \
             ssm:SendCommand on resource: arn:aws:ssm:us-east-1::document/AWS-RunShellScript",
        )
        .unwrap();
        assert!(said.contains("must allow `ssm:SendCommand`"), "{said}");
        assert!(said.contains("ci-deploy-role.json"), "{said}");
        assert_eq!(access_denied("ThrottlingException", "slow down"), None);
    }
}
