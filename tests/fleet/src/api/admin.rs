//! The world's admin API (`/_fleet/...`): health, and faults on demand.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use crate::faults::{Offline, Throttle};
use crate::world::Kind;
use crate::{instance, sys};

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Fault {
    Throttle {
        operation: String,
        next: Option<u32>,
        rate: Option<f64>,
    },
    Latency {
        operation: String,
        ms: u64,
    },
    Offline {
        instance: String,
        mode: Option<Offline>,
    },
    Online {
        instance: String,
    },
    Disk {
        instance: String,
        mode: String,
    },
    Engine {
        instance: String,
        mode: String,
    },
    DropResponse {
        operation: String,
        next: u32,
        hold_ms: u64,
    },
    Tool {
        instance: String,
        tool: String,
        mode: String,
    },
    Clear,
}

pub async fn handle(app: &Arc<App>, path: &str, body: &[u8]) -> (u16, Value) {
    match path {
        "health" => (200, json!({"ok": true})),
        "faults" => {
            let f = app.faults.lock().expect("faults");
            (200, serde_json::to_value(&*f).unwrap_or_default())
        }
        "fault" => match serde_json::from_slice::<Fault>(body) {
            Ok(fault) => {
                let app = app.clone();
                // Disk and engine faults run tools; keep them off the reactor.
                match tokio::task::spawn_blocking(move || apply(&app, fault)).await {
                    Ok(Ok(v)) => (200, v),
                    Ok(Err(e)) => (400, json!({"error": e})),
                    Err(e) => (500, json!({"error": e.to_string()})),
                }
            }
            Err(e) => (400, json!({"error": format!("bad fault: {e}")})),
        },
        _ => (404, json!({"error": format!("no admin route {path}")})),
    }
}

fn apply(app: &App, fault: Fault) -> Result<Value, String> {
    let find = |id: &str| {
        app.world
            .instances
            .iter()
            .find(|i| i.id == id)
            .ok_or_else(|| format!("no instance {id}"))
    };
    let mut faults = app.faults.lock().expect("faults");
    match fault {
        Fault::Throttle {
            operation,
            next,
            rate,
        } => {
            faults
                .throttle
                .insert(operation, Throttle::new(next.unwrap_or(0), rate));
        }
        Fault::Latency { operation, ms } => {
            faults.latency_ms.insert(operation, ms);
        }
        Fault::DropResponse {
            operation,
            next,
            hold_ms,
        } => {
            faults.drop_response.insert(operation, (next, hold_ms));
        }
        Fault::Offline { instance, mode } => {
            find(&instance)?;
            faults
                .offline
                .insert(instance, mode.unwrap_or(Offline::Timeout));
        }
        Fault::Online { instance } => {
            faults.offline.remove(&instance);
        }
        Fault::Clear => {
            faults.throttle.clear();
            faults.latency_ms.clear();
            faults.offline.clear();
            faults.drop_response.clear();
        }
        Fault::Disk { instance, mode } => {
            let inst = find(&instance)?;
            if inst.kind != Kind::Full {
                return Err("disk faults need a full instance".into());
            }
            let holder = inst.holder_pid.ok_or("instance has no namespace holder")?;
            let staging = inst.root.join("disk-fault");
            let script = match mode.as_str() {
                "full" => format!(
                    "set -e; mkdir -p '{s}'; kb=$(du -sk /var/lib/hoist | cut -f1); \
                     mount -t tmpfs -o size=$((kb + 128))k hoist-fleet-disk '{s}'; \
                     cp -a /var/lib/hoist/. '{s}/'; \
                     dd if=/dev/zero of='{s}/.hoist-fleet-filler' bs=4k 2>/dev/null || true; \
                     mount --move '{s}' /var/lib/hoist",
                    s = staging.display()
                ),
                "readonly" => "mount -o remount,bind,ro /var/lib/hoist".to_string(),
                "ok" => "if grep -q ' /var/lib/hoist tmpfs ' /proc/self/mounts; then umount /var/lib/hoist; \
                         else mount -o remount,bind,rw /var/lib/hoist; fi"
                    .to_string(),
                m => return Err(format!("disk mode {m}: use full, readonly or ok")),
            };
            in_mounts(holder, &script)?;
            if mode == "ok" {
                faults.disk.remove(&instance);
            } else {
                faults.disk.insert(instance, mode);
            }
        }
        Fault::Tool {
            instance,
            tool,
            mode,
        } => {
            let inst = find(&instance)?;
            if inst.kind != Kind::Full {
                return Err("tool faults need a full instance".into());
            }
            if !tool
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!("tool {tool:?}: a command name"));
            }
            let holder = inst.holder_pid.ok_or("instance has no namespace holder")?;
            // The tool's file is hidden under an empty, non-executable one, as on an image
            // that never installed it: `command -v` finds nothing, running it fails.
            let blank = inst.root.join("tool-fault-blank");
            let script = match mode.as_str() {
                "missing" => format!(
                    "set -e; : > '{b}'; chmod 0644 '{b}'; \
                     for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do \
                       f=\"$d/{tool}\"; if [ -e \"$f\" ] && ! grep -q \" $f \" /proc/self/mounts; then \
                         mount --bind '{b}' \"$f\"; fi; done",
                    b = blank.display()
                ),
                "ok" => format!(
                    "for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do \
                       f=\"$d/{tool}\"; while grep -q \" $f \" /proc/self/mounts; do umount \"$f\" || break; done; done; true"
                ),
                m => return Err(format!("tool mode {m}: use missing or ok")),
            };
            in_mounts(holder, &script)?;
            if mode == "ok" {
                faults.tools.remove(&(instance, tool));
            } else {
                faults.tools.insert((instance, tool));
            }
        }
        Fault::Engine { instance, mode } => {
            let inst = find(&instance)?.clone();
            if inst.kind != Kind::Full {
                return Err("engine faults need a full instance".into());
            }
            // The engine's own pid file first: an emulated reboot (agent.rs) starts a new one.
            let pid = std::fs::read_to_string(inst.root.join("run/docker.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|p| sys::alive(*p))
                .or_else(|| faults.dockerd_pids.get(&instance).copied())
                .or(inst.dockerd_pid)
                .ok_or("instance has no engine")?;
            match mode.as_str() {
                "down" => sys::stop(sys::Proc::now(pid), std::time::Duration::from_secs(5)),
                "hang" => sys::signal(pid, libc::SIGSTOP),
                "ok" => {
                    if sys::alive(pid) {
                        sys::signal(pid, libc::SIGCONT);
                    } else {
                        let new = instance::start_dockerd(&app.world, &inst)
                            .map_err(|e| e.to_string())?;
                        faults.dockerd_pids.insert(instance.clone(), new);
                        let _ = crate::ledger::Ledger::open(&app.world.dir).process(
                            new,
                            &format!("dockerd {}", inst.id),
                            std::time::Duration::from_secs(10),
                        );
                        drop(faults);
                        instance::wait_engine(&inst).map_err(|e| e.to_string())?;
                        return Ok(json!({"ok": true, "dockerd": new}));
                    }
                }
                m => return Err(format!("engine mode {m}: use down, hang or ok")),
            }
            if mode == "ok" {
                faults.engine.remove(&instance);
            } else {
                faults.engine.insert(instance, mode);
            }
        }
    }
    Ok(json!({"ok": true}))
}

/// Runs `script` with `sh` in the mount namespace of an instance's holder process: what the
/// instance's scripts see of its filesystem (the disk and tool faults change it there).
fn in_mounts(holder: u32, script: &str) -> Result<(), String> {
    sys::run(
        "nsenter",
        &[
            "-t",
            &holder.to_string(),
            "-m",
            "--",
            "/bin/sh",
            "-c",
            script,
        ],
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}
