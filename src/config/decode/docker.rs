//! `container:`'s Docker options (`log_driver`, `user`, `read_only`, `tmpfs`, `cap_drop`, …):
//! each checked at its line, as `docker create` would take it.

use std::collections::BTreeMap;

use super::Decoder;
use super::container::ContainerKeys;
use super::fields::{closest, join};
use crate::config::schema::DockerOptions;
use crate::config::yaml::{Loc, Node, Value};

/// Linux capabilities as `--cap-add` / `--cap-drop` take them (capabilities(7)), and `ALL`.
const CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// The resource names `--ulimit` takes (Docker's `units.ParseUlimit`).
const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Signal names `--stop-signal` takes (without `SIG`), besides numbers and `RTMIN+N`.
const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE",
    "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN",
    "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && s.len() <= 128
}

fn is_user(s: &str) -> bool {
    let mut parts = s.splitn(2, ':');
    parts.all(|p| {
        !p.is_empty()
            && p.len() <= 32
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    })
}

fn is_size(s: &str) -> bool {
    let digits = s.trim_end_matches(['b', 'k', 'm', 'g', 'B', 'K', 'M', 'G']);
    !digits.is_empty()
        && digits.len() + 1 >= s.len()
        && digits.chars().all(|c| c.is_ascii_digit())
        && digits.parse::<u64>().is_ok_and(|n| n > 0)
}

fn is_tmpfs(s: &str) -> Result<(), String> {
    let (path, options) = s.split_once(':').unwrap_or((s, ""));
    if !path.starts_with('/') || path.contains("..") || path.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{s}`: a tmpfs mount is an absolute path inside the container, optionally \
             followed by `:OPTIONS` (e.g. /tmp:size=64m)"
        ));
    }
    if !options
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | ',' | '.' | '-' | '_'))
    {
        return Err(format!(
            "`{s}`: mount options are `key=value` words separated by commas (e.g. \
             size=64m,mode=1777)"
        ));
    }
    Ok(())
}

fn is_ulimit_value(v: &str) -> bool {
    let number = |n: &str| n == "-1" || n.parse::<u64>().is_ok();
    match v.split_once(':') {
        Some((soft, hard)) => number(soft) && number(hard),
        None => number(v),
    }
}

fn is_signal(s: &str) -> bool {
    let name = s.strip_prefix("SIG").unwrap_or(s);
    if let Ok(n) = name.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    if let Some(rest) = name
        .strip_prefix("RTMIN+")
        .or_else(|| name.strip_prefix("RTMAX-"))
    {
        return rest.parse::<u32>().is_ok_and(|n| n <= 30);
    }
    SIGNALS.contains(&name) || name == "RTMIN" || name == "RTMAX"
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl Decoder {
    /// The Docker options of `container:`.
    pub(super) fn docker_options(&mut self, k: &ContainerKeys<'_>) -> DockerOptions {
        let log_driver = self.name_field(k.log_driver.node, &k.log_driver.path, "a log driver");
        let mut log_options = BTreeMap::new();
        if let Some(n) = k.log_options.node {
            for (key, kloc, value, vloc) in self.text_map(n, &k.log_options.path) {
                let field = join(&k.log_options.path, &key);
                if !is_name(&key) {
                    self.issue(&field, kloc, format!("`{key}` is not a log option name"));
                } else if value.contains(['\n', '\r']) {
                    self.issue(&field, vloc, "a log option's value is one line");
                } else {
                    log_options.insert(key, value);
                }
            }
            if log_driver.is_none() && !log_options.is_empty() {
                self.issue_help(
                    &k.log_options.path,
                    n.loc,
                    "log_options without log_driver",
                    "name the driver they are for: `log_driver: awslogs`, `json-file`, …".into(),
                );
            }
        }
        let user = k.user.node.and_then(|n| {
            let u = self.scalar_text(n, &k.user.path)?;
            self.accept(u, is_user, &k.user.path, n.loc, |u| {
                format!("`{u}` is not a user (NAME or UID, optionally :GROUP or :GID)")
            })
        });
        let read_only = self.flag(&k.read_only);
        let mut tmpfs = Vec::new();
        if let Some(n) = k.tmpfs.node {
            for (i, (t, loc)) in self.string_list(n, &k.tmpfs.path).into_iter().enumerate() {
                match is_tmpfs(&t) {
                    Ok(()) => tmpfs.push(t),
                    Err(e) => self.issue(&format!("{}[{i}]", k.tmpfs.path), loc, e),
                }
            }
        }
        let cap_drop = self.capabilities(k.cap_drop.node, &k.cap_drop.path);
        let cap_add = self.capabilities(k.cap_add.node, &k.cap_add.path);
        let mut ulimits = BTreeMap::new();
        if let Some(n) = k.ulimits.node {
            for (name, kloc, value, vloc) in self.text_map(n, &k.ulimits.path) {
                let field = join(&k.ulimits.path, &name);
                if !ULIMITS.contains(&name.as_str()) {
                    let hint = closest(&name, ULIMITS)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    self.issue(
                        &field,
                        kloc,
                        format!(
                            "`{name}` is not a ulimit{hint}; known: {}",
                            ULIMITS.join(", ")
                        ),
                    );
                } else if !is_ulimit_value(&value) {
                    self.issue(
                        &field,
                        vloc,
                        format!(
                            "`{value}` is not a limit: a number, or SOFT:HARD (e.g. 65536 or \
                             1024:65536; -1 for unlimited)"
                        ),
                    );
                } else {
                    ulimits.insert(name, value);
                }
            }
        }
        let mut extra_hosts = BTreeMap::new();
        if let Some(n) = k.extra_hosts.node {
            for (host, kloc, address, vloc) in self.text_map(n, &k.extra_hosts.path) {
                let field = join(&k.extra_hosts.path, &host);
                if !is_host_name(&host) {
                    self.issue(&field, kloc, format!("`{host}` is not a host name"));
                } else if address != "host-gateway" && address.parse::<std::net::IpAddr>().is_err()
                {
                    self.issue(
                        &field,
                        vloc,
                        format!(
                            "`{address}` is not an IP address (or `host-gateway`, the host's \
                             address as the container sees it)"
                        ),
                    );
                } else {
                    extra_hosts.insert(host, address);
                }
            }
        }
        let network = self.name_field(k.network.node, &k.network.path, "a network name");
        let entrypoint = k.entrypoint.node.and_then(|n| {
            let e = self.string(n, &k.entrypoint.path)?;
            if e.contains(['\n', '\r']) || e.trim() != e {
                self.issue_help(
                    &k.entrypoint.path,
                    n.loc,
                    format!("`{}` is not an executable", e.escape_debug()),
                    "entrypoint is the executable alone (e.g. /usr/local/bin/app); its \
                     arguments go in `command`"
                        .into(),
                );
                return None;
            }
            if e.contains(' ') {
                self.issue_help(
                    &k.entrypoint.path,
                    n.loc,
                    format!("`{e}` has a space: Docker would run a file of that whole name"),
                    "entrypoint is the executable alone; put its arguments in `command` (a \
                     list)"
                        .into(),
                );
                return None;
            }
            Some(e)
        });
        let shm_size = k.shm_size.node.and_then(|n| {
            let s = self.scalar_text(n, &k.shm_size.path)?;
            self.accept(s, is_size, &k.shm_size.path, n.loc, |s| {
                format!("`{s}` is not a size (e.g. 64m, 1g)")
            })
        });
        let stop_signal = k.stop_signal.node.and_then(|n| {
            let s = self.scalar_text(n, &k.stop_signal.path)?;
            self.accept(s, is_signal, &k.stop_signal.path, n.loc, |s| {
                format!("`{s}` is not a signal (e.g. SIGTERM, SIGQUIT, SIGINT, 15)")
            })
        });
        DockerOptions {
            log_driver,
            log_options,
            user,
            read_only,
            tmpfs,
            cap_drop,
            cap_add,
            ulimits,
            extra_hosts,
            network,
            entrypoint,
            shm_size,
            stop_signal,
        }
    }

    /// A name-like string field (a log driver, a network).
    fn name_field(&mut self, node: Option<&Node>, field: &str, what: &str) -> Option<String> {
        let n = node?;
        let s = self.string(n, field)?;
        let what = what.to_owned();
        self.accept(s, is_name, field, n.loc, move |s| {
            format!("`{s}` is not {what} (letters, digits, `_`, `.`, `-`)")
        })
    }

    /// A list of capabilities, upper-cased, `CAP_` dropped, each a known one.
    fn capabilities(&mut self, node: Option<&Node>, field: &str) -> Vec<String> {
        let Some(n) = node else {
            return Vec::new();
        };
        if !matches!(n.value, Value::Seq(_)) {
            self.wrong_type(field, n, "a list of capabilities (e.g. [ALL])");
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::new();
        for (i, (c, loc)) in self.string_list(n, field).into_iter().enumerate() {
            let upper = c.to_ascii_uppercase();
            let name = upper.strip_prefix("CAP_").unwrap_or(&upper).to_owned();
            if CAPABILITIES.contains(&name.as_str()) {
                if !out.contains(&name) {
                    out.push(name);
                }
            } else {
                self.unknown_capability(&format!("{field}[{i}]"), loc, &c, &name);
            }
        }
        out
    }

    fn unknown_capability(&mut self, field: &str, loc: Loc, written: &str, name: &str) {
        let hint = closest(name, CAPABILITIES)
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        self.issue(
            field,
            loc,
            format!("`{written}` is not a Linux capability{hint}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_docker_takes_them() {
        assert!(is_user("app") && is_user("1000:1000") && is_user("www-data:www-data"));
        assert!(!is_user("") && !is_user("a b") && !is_user("1000:"));
        assert!(is_size("64m") && is_size("1g") && is_size("1048576"));
        assert!(!is_size("m") && !is_size("64mb") && !is_size("0"));
        assert!(is_tmpfs("/tmp").is_ok() && is_tmpfs("/run:size=64m,mode=1777").is_ok());
        assert!(is_tmpfs("tmp").is_err() && is_tmpfs("/tmp:size=64m;rm").is_err());
        assert!(is_ulimit_value("65536") && is_ulimit_value("1024:65536"));
        assert!(is_ulimit_value("-1") && !is_ulimit_value("lots"));
        assert!(is_signal("SIGTERM") && is_signal("QUIT") && is_signal("15"));
        assert!(is_signal("SIGRTMIN+3") && !is_signal("SIGNOPE") && !is_signal("99"));
        assert!(is_host_name("db.internal") && !is_host_name("-bad") && !is_host_name("a b"));
    }
}
