//! One JSON line per API call: time, service, operation, caller, parameters, outcome.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::error::{FleetError, Result};

pub struct Journal {
    file: Mutex<std::fs::File>,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(FleetError::io(format!("opening {}", path.display())))?;
        Ok(Journal {
            file: Mutex::new(file),
        })
    }

    /// `caller` is the access key id of the request's SigV4 credential.
    pub fn write(
        &self,
        service: &str,
        operation: &str,
        caller: Option<&str>,
        params: &Value,
        error: Option<&str>,
    ) {
        let line = json!({
            "time": crate::clock::now(),
            "service": service,
            "operation": operation,
            "caller": caller,
            "params": params,
            "error": error,
        });
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
}
