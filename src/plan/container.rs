//! How a release's container runs, as a plan shows it: the ports, the restart policy, the
//! `docker create` options (memory, CPUs, volumes, labels and the Docker options) and the
//! command. What the host runs is the script's header; this is its summary for people.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPlan {
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<u16>,
    /// Applied once the release passed its health gate.
    pub restart: String,
    /// The options of its `docker create` (`HOIST_RUN_OPTS` in the script's header).
    pub create_args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

impl ContainerPlan {
    pub fn of(config: &Config, create_args: Vec<String>) -> ContainerPlan {
        let c = &config.container;
        ContainerPlan {
            port: c.port,
            publish: c.publish,
            restart: c.restart.clone(),
            create_args,
            command: c.command.clone(),
        }
    }

    /// One line: ports, restart policy, the `docker create` options, the command.
    pub fn line(&self) -> String {
        // Quoted as a shell would need them, only where needed.
        let quoted = |words: &[String]| {
            words
                .iter()
                .map(|w| {
                    let plain = !w.is_empty()
                        && w.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_./:=,+-@%".contains(c));
                    if plain {
                        w.clone()
                    } else {
                        crate::domain::quote(w)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut s = match self.publish {
            Some(p) => format!("port {} published on {p}", self.port),
            None => format!("port {} (not published)", self.port),
        };
        let _ = write!(
            s,
            "; restart {} once healthy; docker create {}",
            self.restart,
            quoted(&self.create_args)
        );
        if !self.command.is_empty() {
            let _ = write!(s, "; command {}", quoted(&self.command));
        }
        s
    }
}
