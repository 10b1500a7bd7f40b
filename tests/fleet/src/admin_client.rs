//! A tiny HTTP/1.0 client for the world's admin API (`/_fleet/...`), so the
//! command line needs no HTTP client crate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::error::{FleetError, Result};

fn request(addr: &str, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).map_err(|e| FleetError::Admin(format!("{addr}: {e}")))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(120)));
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| FleetError::Admin(format!("{addr}: {e}")))?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .map_err(|e| FleetError::Admin(format!("{addr}: {e}")))?;
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| FleetError::Admin(format!("bad answer from {addr}")))?;
    Ok((status, rest.to_string()))
}

/// GET; a status other than 200 is an error.
pub fn get(addr: &str, path: &str) -> Result<String> {
    match request(addr, "GET", path, "")? {
        (200, body) => Ok(body),
        (status, body) => Err(FleetError::Admin(format!("{status}: {body}"))),
    }
}

/// POST a JSON body; a status other than 200 is an error carrying the answer.
pub fn post(addr: &str, path: &str, body: &str) -> Result<String> {
    match request(addr, "POST", path, body)? {
        (200, body) => Ok(body),
        (status, body) => Err(FleetError::Admin(format!("{status}: {body}"))),
    }
}
