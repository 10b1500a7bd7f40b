//! `healthcheck:`: the gate a new release passes before it serves.

use std::time::Duration;

use super::Decoder;
use super::fields::{Field, keys};
use super::names::is_url_path;
use crate::config::duration;
use crate::config::schema::Healthcheck;
use crate::config::yaml::Node;

keys! {
    HealthKeys {
        path,
        expect_status,
        interval,
        timeout,
        start_period,
        consecutive,
        command,
        tcp,
        docker,
        min_running,
    }
}

impl Decoder {
    pub(super) fn healthcheck(&mut self, node: &Node, path: &str) -> Option<Healthcheck> {
        let (f, k) = self.section::<HealthKeys>(node, path)?;
        let url_path = k.path.node.and_then(|n| {
            let p = self.string(n, &k.path.path)?;
            self.accept(p, is_url_path, &k.path.path, n.loc, |p| {
                format!("`{p}` is not a URL path (it must start with / and hold no spaces)")
            })
        });
        let expect_status = match k.expect_status.node {
            Some(n) => self
                .int_in(n, &k.expect_status.path, 100, 599)
                .map(|s| u16::try_from(s).expect("checked to be 100-599")),
            None => Some(200),
        };
        let dur = |d: &mut Self, field: &Field<'_>, default: u64| match field.node {
            Some(n) => d.duration(n, &field.path).map(|v| (v, Some(n.loc))),
            None => Some((Duration::from_secs(default), None)),
        };
        let interval = dur(self, &k.interval, 2);
        let timeout = dur(self, &k.timeout, 60);
        let start_period = dur(self, &k.start_period, 0);
        let consecutive = match k.consecutive.node {
            Some(n) => self
                .int_in(n, &k.consecutive.path, 1, 10)
                .map(|c| (u32::try_from(c).expect("checked to be 1-10"), Some(n.loc))),
            None => Some((1, None)),
        };
        if let (Some((i, iloc)), Some((t, tloc))) = (interval, timeout) {
            if i.is_zero() {
                self.issue(
                    &k.interval.path,
                    iloc.unwrap_or(node.loc),
                    "must be more than 0s",
                );
            } else if i > t {
                self.issue(
                    &k.timeout.path,
                    tloc.or(iloc).unwrap_or(node.loc),
                    format!(
                        "the overall budget ({}) is shorter than one probe interval ({})",
                        duration::format(t),
                        duration::format(i)
                    ),
                );
            } else if let Some((c, cloc)) = consecutive
                && c > 1
                && i.saturating_mul(c - 1) > t
            {
                self.issue_help(
                    &k.consecutive.path,
                    cloc.unwrap_or(node.loc),
                    format!(
                        "{c} successful probes in a row, one healthcheck.interval ({}) apart, \
                         take {} after the first: more than the whole budget, \
                         healthcheck.timeout ({})",
                        duration::format(i),
                        duration::format(i.saturating_mul(c - 1)),
                        duration::format(t)
                    ),
                    "lower healthcheck.consecutive or healthcheck.interval, or raise \
                     healthcheck.timeout"
                        .into(),
                );
            }
        }
        let command = match k.command.node {
            None => Vec::new(),
            Some(n) => match &n.value {
                crate::config::yaml::Value::Str(s) => {
                    vec!["/bin/sh".into(), "-c".into(), s.clone()]
                }
                _ => self
                    .string_list(n, &k.command.path)
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect(),
            },
        };
        if command.iter().any(|w| w.contains('\0')) {
            self.issue(
                &k.command.path,
                k.command.node.map_or(node.loc, |n| n.loc),
                "a word of the command holds a NUL byte",
            );
        }
        let tcp = self.flag(&k.tcp);
        let docker = self.flag(&k.docker);
        let kinds: Vec<&str> = [
            ("path", url_path.is_some() || k.path.node.is_some()),
            ("command", !command.is_empty()),
            ("tcp", tcp),
            ("docker", docker),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if kinds.len() > 1 {
            let second = match kinds[1] {
                "command" => &k.command,
                "tcp" => &k.tcp,
                _ => &k.docker,
            };
            self.issue_help(
                &second.path,
                second.key_loc.unwrap_or(node.loc),
                format!(
                    "healthcheck.{} and healthcheck.{} are both set: a release has one check",
                    kinds[0], kinds[1]
                ),
                "keep the one that says the app works: path (HTTP), command (in the \
                 container), tcp (the port accepts) or docker (the image's HEALTHCHECK)"
                    .into(),
            );
        }
        // Unset: 10s, or the whole budget when that is shorter.
        let min_running = match (dur(self, &k.min_running, 10), timeout) {
            (Some((m, None)), Some((t, _))) => Some((m.min(t), None)),
            (m, _) => m,
        };
        if let (Some((m, Some(mloc))), Some((t, _))) = (min_running, timeout)
            && m > t
        {
            self.issue(
                &k.min_running.path,
                mloc,
                format!(
                    "the container must keep running {} to pass, longer than the whole \
                     budget, healthcheck.timeout ({})",
                    duration::format(m),
                    duration::format(t)
                ),
            );
        }
        self.finish(f);
        Some(Healthcheck {
            path: url_path,
            expect_status: expect_status?,
            interval: interval?.0,
            timeout: timeout?.0,
            start_period: start_period?.0,
            consecutive: consecutive?.0,
            command,
            tcp,
            docker,
            min_running: min_running?.0,
        })
    }
}
