//! What a valid name, tag, path or reference looks like: the checks behind the decoder's
//! messages (`config` also offers `is_app_name`, `is_env_name` and `is_tag`).

pub(super) fn not_env_name(name: &str) -> String {
    format!(
        "`{name}` is not a valid environment variable name (letters, digits and _, not \
         starting with a digit)"
    )
}

pub fn is_app_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

pub fn is_env_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=128).contains(&b.len())
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `os/arch[/variant]`, e.g. `linux/amd64`.
pub(super) fn is_platform(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty())
}

/// A URL path: starts with `/`, holds no space or control character.
pub(super) fn is_url_path(s: &str) -> bool {
    s.starts_with('/') && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An AWS region name such as `us-east-1`.
pub(super) fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

pub(super) fn is_repository_name(s: &str) -> bool {
    (2..=256).contains(&s.len())
        && s.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(&c))
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

pub(super) fn is_memory(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let (digits, mult) = match lower.strip_suffix(['b', 'k', 'm', 'g']) {
        Some(d) => (
            d,
            match lower.as_bytes()[lower.len() - 1] {
                b'k' => 1u64 << 10,
                b'm' => 1 << 20,
                b'g' => 1 << 30,
                _ => 1,
            },
        ),
        None => (lower.as_str(), 1),
    };
    // Docker refuses less than 6 MiB.
    digits
        .parse::<u64>()
        .is_ok_and(|n| n.saturating_mul(mult) >= 6 << 20)
}

pub(super) fn is_restart_policy(s: &str) -> bool {
    match s.split_once(':') {
        None => matches!(s, "no" | "always" | "unless-stopped" | "on-failure"),
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        Some(_) => false,
    }
}

pub(super) fn check_volume(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split(':').collect();
    let usage = "write host-path-or-volume:/container/path[:ro|rw]";
    if !(2..=3).contains(&parts.len()) || parts[0].is_empty() {
        return Err(format!("`{v}` is not a volume mapping ({usage})"));
    }
    if !parts[1].starts_with('/') {
        return Err(format!(
            "`{v}`: the container path must be absolute ({usage})"
        ));
    }
    if parts.len() == 3 && !matches!(parts[2], "ro" | "rw") {
        return Err(format!("`{v}`: unknown mode `{}` ({usage})", parts[2]));
    }
    Ok(())
}

/// An SSM parameter reference a host can pass to `get-parameter --name`: a name (with an
/// optional `:version` or `:label`) or an ARN.
pub(super) fn is_parameter_ref(s: &str) -> bool {
    let name = s.strip_prefix("arn:").map_or(s, |rest| {
        rest.split_once(":parameter").map_or("", |(_, n)| n)
    });
    let (name, selector) = match name.rsplit_once(':') {
        Some((n, sel)) => (n, Some(sel)),
        _ => (name, None),
    };
    !name.is_empty()
        && name.len() <= 2048
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && selector.is_none_or(|sel| {
            !sel.is_empty()
                && sel.len() <= 100
                && sel
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        })
}

/// A Secrets Manager secret name or ARN.
pub(super) fn is_secret_id(s: &str) -> bool {
    (1..=2048).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_app_name("hello"));
        assert!(is_app_name("web-2"));
        assert!(!is_app_name("Hello"));
        assert!(!is_app_name("2web"));
        assert!(!is_app_name("web-"));
        assert!(!is_app_name(&"a".repeat(33)));
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(is_instance_id("i-01234567"));
        assert!(!is_instance_id("i-0123456789ABCDEF0"));
        assert!(!is_instance_id("0123456789abcdef0"));
        assert!(is_env_name("API_TOKEN"));
        assert!(!is_env_name("1TOKEN"));
        assert!(!is_env_name("API-TOKEN"));
        assert!(is_memory("64m") && is_memory("1G") && !is_memory("1m") && !is_memory("lots"));
        assert!(is_restart_policy("on-failure:3") && !is_restart_policy("sometimes"));
    }
}
