//! `container:`: how the release's container runs.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Decoder;
use super::fields::{join, keys};
use super::names::{check_volume, is_memory, is_restart_policy};
use super::scalars::describe;
use crate::config::schema::Container;
use crate::config::yaml::{Node, Value};

keys! {
    ContainerKeys {
        port,
        publish,
        command,
        volumes,
        memory,
        cpus,
        restart,
        labels,
        stop_timeout,
        init,
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

impl Decoder {
    /// `container:`; also records `container.publish` for the blue-green section.
    pub(super) fn container(&mut self, node: &Node, path: &str) -> Option<Container> {
        let (f, k) = self.section::<ContainerKeys>(node, path)?;
        let port = match k.port.node {
            Some(n) => self.port(n, &k.port.path),
            None => Some(80),
        };
        let publish = k.publish.node.and_then(|n| {
            let port = self.port(n, &k.publish.path);
            self.publish = Some((n.loc, port));
            port
        });
        let command = match k.command.node {
            None => Vec::new(),
            Some(n) => match &n.value {
                Value::Str(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
                _ => self
                    .string_list(n, &k.command.path)
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect(),
            },
        };
        let mut volumes = Vec::new();
        if let Some(n) = k.volumes.node {
            for (i, (v, loc)) in self.string_list(n, &k.volumes.path).into_iter().enumerate() {
                match check_volume(&v) {
                    Ok(()) => volumes.push(v),
                    Err(e) => self.issue(&format!("{}[{i}]", k.volumes.path), loc, e),
                }
            }
        }
        let memory = k.memory.node.and_then(|n| {
            let m = self.scalar_text(n, &k.memory.path)?;
            self.accept(m, is_memory, &k.memory.path, n.loc, |m| {
                format!("`{m}` is not a memory size (e.g. 256m, 1g; at least 6m)")
            })
        });
        let cpus = k.cpus.node.and_then(|n| match n.value {
            Value::Int(i) if i > 0 && i <= 1024 => Some(i.to_string()),
            Value::Float(x) if x > 0.0 && x <= 1024.0 => Some(x.to_string()),
            _ => {
                self.issue(
                    &k.cpus.path,
                    n.loc,
                    format!(
                        "expected a positive number of CPUs (e.g. 0.5), found {}",
                        describe(n)
                    ),
                );
                None
            }
        });
        let restart = match k.restart.node {
            // `restart: no` unquoted is YAML's boolean false, which can only mean the policy
            // `no` (`off` and `false` too); `true` has no such reading and is refused.
            Some(n) if matches!(n.value, Value::Bool(false)) => Some("no".into()),
            Some(n) => self.string(n, &k.restart.path).and_then(|r| {
                self.accept(r, is_restart_policy, &k.restart.path, n.loc, |r| {
                    format!(
                        "`{r}` is not a restart policy (no, always, unless-stopped, on-failure, \
                         on-failure:N)"
                    )
                })
            }),
            None => Some("unless-stopped".into()),
        };
        let mut labels = BTreeMap::new();
        if let Some(n) = k.labels.node {
            for (name, kloc, value, _) in self.text_map(n, &k.labels.path) {
                if name.starts_with("hoist.") {
                    self.issue(
                        &join(&k.labels.path, &name),
                        kloc,
                        "labels starting with `hoist.` are reserved for hoist's own bookkeeping",
                    );
                } else {
                    labels.insert(name, value);
                }
            }
        }
        let stop_timeout = match k.stop_timeout.node {
            Some(n) => self.duration(n, &k.stop_timeout.path),
            None => Some(Duration::from_secs(10)),
        };
        let init = self.flag(&k.init);
        let docker = self.docker_options(&k);
        self.check_network(&docker, &k, publish);
        self.finish(f);
        Some(Container {
            port: port?,
            publish,
            command,
            volumes,
            memory,
            cpus,
            restart: restart?,
            labels,
            stop_timeout: stop_timeout?,
            init,
            docker,
        })
    }

    /// A published port needs a network that publishes: `host` and `none` do not.
    fn check_network(
        &mut self,
        docker: &crate::config::schema::DockerOptions,
        k: &ContainerKeys<'_>,
        publish: Option<u16>,
    ) {
        if let (Some(network), Some(n), Some(_)) = (&docker.network, k.network.node, publish)
            && matches!(network.as_str(), "host" | "none")
        {
            self.issue_help(
                &k.network.path,
                n.loc,
                format!(
                    "network `{network}` publishes no port, and container.publish is set:                      hoist's health checks and nginx reach the app through the published port"
                ),
                "use a bridge network (the default, or one you created on each host)".into(),
            );
        }
    }
}
