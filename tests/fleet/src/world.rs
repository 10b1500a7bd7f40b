//! The description of a running world, kept in `DIR/world.json`: what a client
//! needs to reach it and what the server needs to run commands on instances.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{FleetError, Result};

pub const WORLD_FILE: &str = "world.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Own network namespace, mount namespace and `dockerd`.
    Full,
    /// No engine: a stateful `docker` stub (docker_stub.py) that records calls and sleeps.
    Light,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub index: usize,
    pub kind: Kind,
    pub address: String,
    pub tags: BTreeMap<String, String>,
    /// The instance's own directory on the host (its /run, /var/lib/hoist, ...).
    pub root: PathBuf,
    pub netns: Option<String>,
    /// The process holding the instance's mount (and network) namespace.
    pub holder_pid: Option<u32>,
    pub dockerd_pid: Option<u32>,
    /// The instance's engine socket as seen from the host.
    pub docker_host: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub dir: PathBuf,
    pub index: u8,
    pub bridge: String,
    pub gateway: String,
    pub api_port: u16,
    pub registry_port: u16,
    /// The instance metadata service's listener on the gateway (full
    /// instances reach it as 169.254.169.254:80 through a DNAT rule).
    #[serde(default = "default_imds_port")]
    pub imds_port: u16,
    /// How long a CancelCommand takes to reach the agent (then SIGKILL).
    #[serde(default = "default_cancel_delay_ms")]
    pub cancel_delay_ms: u64,
    pub region: String,
    pub account: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// The instances' own credentials (what an instance profile would hand
    /// out), distinct from the client's above so the journal tells them apart.
    #[serde(default)]
    pub instance_access_key_id: String,
    #[serde(default)]
    pub instance_secret_access_key: String,
    #[serde(default)]
    pub instance_session_token: String,
    pub registry_password: String,
    pub ca_cert: PathBuf,
    /// Directory holding the `aws` CLI, put first on the agent's PATH.
    pub aws_cli_dir: Option<String>,
    /// The host's `docker` CLI, replaced by the stub on light instances.
    pub docker_cli: Option<String>,
    /// How long the light instances' `docker` stub sleeps per call.
    pub light_docker_sleep_ms: u64,
    /// How long an invocation stays invisible (InvocationDoesNotExist) after SendCommand.
    pub invocation_visibility_ms: u64,
    /// The API's rates, lag and expiry scan (`api::settings`).
    #[serde(default)]
    pub api: crate::api::settings::ApiSettings,
    /// Path of the busybox image tarball (`docker import` it).
    pub busybox_tar: PathBuf,
    pub cgroup: Option<PathBuf>,
    pub instances: Vec<Instance>,
}

impl World {
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.gateway, self.api_port)
    }

    /// The metadata service's listener as the host (and light instances) reach it.
    pub fn imds(&self) -> String {
        format!("{}:{}", self.gateway, self.imds_port)
    }

    pub fn registry(&self) -> String {
        format!("{}:{}", self.gateway, self.registry_port)
    }

    pub fn load(dir: &Path) -> Result<World> {
        let path = dir.join(WORLD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                FleetError::NoWorld(dir.to_path_buf())
            } else {
                FleetError::Io {
                    context: format!("reading {}", path.display()),
                    source: e,
                }
            }
        })?;
        serde_json::from_str(&text).map_err(|source| FleetError::State { path, source })
    }

    pub fn save(&self) -> Result<()> {
        let path = self.dir.join(WORLD_FILE);
        let tmp = self.dir.join("world.json.tmp");
        let text = serde_json::to_string_pretty(self).expect("world serializes");
        std::fs::write(&tmp, text).map_err(FleetError::io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, &path)
            .map_err(FleetError::io(format!("renaming to {}", path.display())))
    }

    /// The variables a client (hoist, the AWS CLI, an SDK) needs.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let full: Vec<&Instance> = self
            .instances
            .iter()
            .filter(|i| i.kind == Kind::Full)
            .collect();
        let light: Vec<&Instance> = self
            .instances
            .iter()
            .filter(|i| i.kind == Kind::Light)
            .collect();
        let ids = |v: &[&Instance]| {
            v.iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint()),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_DEFAULT_REGION".into(), self.region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.secret_access_key.clone(),
            ),
            ("AWS_SESSION_TOKEN".into(), self.session_token.clone()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("HOIST_FLEET_DIR".into(), self.dir.display().to_string()),
            ("HOIST_FLEET_REGISTRY".into(), self.registry()),
            ("HOIST_FLEET_ACCOUNT".into(), self.account.clone()),
            ("HOIST_FLEET_CA".into(), self.ca_cert.display().to_string()),
            (
                "HOIST_FLEET_BUSYBOX_TAR".into(),
                self.busybox_tar.display().to_string(),
            ),
            ("HOIST_FLEET_INSTANCES".into(), ids(&full)),
            (
                "HOIST_FLEET_ADDRESSES".into(),
                full.iter()
                    .map(|i| i.address.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            ("HOIST_FLEET_LIGHT_INSTANCES".into(), ids(&light)),
            (
                "HOIST_FLEET_INSTANCE_ACCESS_KEY_ID".into(),
                self.instance_access_key_id.clone(),
            ),
        ]
    }

    pub fn exports(&self) -> String {
        self.client_env()
            .iter()
            .map(|(k, v)| format!("export {k}={}\n", shell_quote(v)))
            .collect()
    }

    pub fn env_json(&self) -> serde_json::Value {
        let env: serde_json::Map<String, serde_json::Value> = self
            .client_env()
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        let instances: Vec<serde_json::Value> = self
            .instances
            .iter()
            .map(|i| {
                serde_json::json!({
                    "InstanceId": i.id,
                    "Kind": i.kind,
                    "Address": i.address,
                    "Tags": i.tags,
                    "DockerHost": i.docker_host,
                    "Root": i.root,
                })
            })
            .collect();
        serde_json::json!({
            "env": env,
            "endpoint": self.endpoint(),
            "admin": format!("{}/_fleet", self.endpoint()),
            "registry": self.registry(),
            "region": self.region,
            "account": self.account,
            "instances": instances,
        })
    }
}

fn default_imds_port() -> u16 {
    4570
}

fn default_cancel_delay_ms() -> u64 {
    1500
}

pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
