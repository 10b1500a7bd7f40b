//! The instances' metadata service (IMDSv2), so the AWS CLI on an instance
//! gets its region-less, environment-less credentials the way it does on EC2:
//! `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`, then
//! GETs carrying `X-aws-ec2-metadata-token` (without a valid token: 401) for
//! the instance profile's credentials and the identity document.
//!
//! It listens on the world's gateway (`World::imds`). Full instances reach it
//! as 169.254.169.254:80 through a DNAT rule in their own network namespace
//! and are told apart by their source address; light instances share the
//! host's network and are pointed at `http://GATEWAY:PORT/INSTANCE-ID/` by
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::world::{Instance, World};

/// The instance profile's role (every instance has the same one).
pub const ROLE: &str = "hoist-fleet-instance";
/// The address instances use, and where their DNAT sends it.
pub const ADDRESS: &str = "169.254.169.254";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// How long credentials are said to last (the SDKs refresh before then).
const CREDENTIALS_LIFETIME: f64 = 6.0 * 3600.0;

#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    #[error("binding the metadata service on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

struct Imds {
    world: World,
    /// Token -> expiry (epoch seconds).
    tokens: Mutex<HashMap<String, f64>>,
}

pub async fn serve(world: World) -> Result<(), ImdsError> {
    let addr = world.imds();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ImdsError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let imds = Arc::new(Imds {
        world,
        tokens: Mutex::new(HashMap::new()),
    });
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let imds = imds.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let imds = imds.clone();
                async move { Ok::<_, Infallible>(imds.handle(peer, req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply(status: u16, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .header("server", "EC2ws")
        .body(Full::new(Bytes::from(body)))
        .expect("response builds")
}

fn text(status: u16, body: &str) -> Response<Full<Bytes>> {
    reply(status, "text/plain", body.to_string())
}

/// `2026-05-01T12:34:56Z`, as IMDS writes its timestamps.
fn stamp(t: f64) -> String {
    let s = crate::clock::iso8601(t.floor());
    format!("{}Z", &s[..19])
}

impl Imds {
    /// Which instance asks: a full instance by its address, a light one by
    /// the path prefix its endpoint names.
    fn caller<'a>(&'a self, peer: SocketAddr, path: &'a str) -> Option<(&'a Instance, &'a str)> {
        if let Some(rest) = path.strip_prefix('/')
            && let Some((id, _)) = rest.split_once('/')
            && let Some(inst) = self.world.instances.iter().find(|i| i.id == id)
        {
            return Some((inst, &path[id.len() + 1..]));
        }
        let ip = peer.ip().to_string();
        self.world
            .instances
            .iter()
            .find(|i| i.netns.is_some() && i.address == ip)
            .map(|i| (i, path))
    }

    fn handle(&self, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let Some((inst, path)) = self.caller(peer, &path) else {
            return text(404, "Not Found");
        };
        let headers = req.headers();
        if path == "/latest/api/token" {
            if req.method() != Method::PUT {
                return text(405, "Method Not Allowed");
            }
            // IMDSv2 refuses a token request that went through a proxy.
            if headers.contains_key("x-forwarded-for") {
                return text(403, "Forbidden");
            }
            let ttl = headers
                .get(TTL_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok());
            let Some(ttl) = ttl.filter(|t| (1..=21_600).contains(t)) else {
                return text(400, "Bad Request");
            };
            let token = crate::random::token(56);
            self.tokens
                .lock()
                .expect("tokens")
                .insert(token.clone(), crate::clock::now() + f64::from(ttl));
            let mut r = text(200, &token);
            r.headers_mut()
                .insert(TTL_HEADER, ttl.to_string().parse().expect("header"));
            return r;
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(405, "Method Not Allowed");
        }
        let valid = headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|t| self.tokens.lock().expect("tokens").get(t).copied())
            .is_some_and(|expiry| expiry > crate::clock::now());
        if !valid {
            return text(401, "Unauthorized");
        }
        self.answer(inst, path)
    }

    fn answer(&self, inst: &Instance, path: &str) -> Response<Full<Bytes>> {
        let w = &self.world;
        let now = crate::clock::now();
        let az = format!("{}a", w.region);
        match path.trim_end_matches('/') {
            "/latest/meta-data" => text(
                200,
                "ami-id\nhostname\niam/\ninstance-id\ninstance-type\nlocal-ipv4\nplacement/",
            ),
            "/latest/meta-data/instance-id" => text(200, &inst.id),
            "/latest/meta-data/instance-type" => text(200, "t3.micro"),
            "/latest/meta-data/ami-id" => text(200, "ami-0fleet0000000000"),
            "/latest/meta-data/local-ipv4" => text(200, &inst.address),
            "/latest/meta-data/hostname" => text(
                200,
                &format!(
                    "{}.ec2.internal",
                    crate::instance::hostname(&inst.address)
                ),
            ),
            "/latest/meta-data/placement" => text(200, "availability-zone\nregion"),
            "/latest/meta-data/placement/region" => text(200, &w.region),
            "/latest/meta-data/placement/availability-zone" => text(200, &az),
            "/latest/meta-data/iam" => text(200, "info\nsecurity-credentials/"),
            "/latest/meta-data/iam/info" => reply(
                200,
                "text/plain",
                serde_json::to_string_pretty(&json!({
                    "Code": "Success",
                    "LastUpdated": stamp(now),
                    "InstanceProfileArn": format!("arn:aws:iam::{}:instance-profile/{ROLE}", w.account),
                    "InstanceProfileId": "AIPAFLEETINSTANCEPROFILE",
                }))
                .expect("json"),
            ),
            "/latest/meta-data/iam/security-credentials" => text(200, ROLE),
            p if p == format!("/latest/meta-data/iam/security-credentials/{ROLE}") => reply(
                200,
                "text/plain",
                serde_json::to_string_pretty(&json!({
                    "Code": "Success",
                    "LastUpdated": stamp(now),
                    "Type": "AWS-HMAC",
                    "AccessKeyId": w.instance_access_key_id,
                    "SecretAccessKey": w.instance_secret_access_key,
                    "Token": w.instance_session_token,
                    "Expiration": stamp(now + CREDENTIALS_LIFETIME),
                }))
                .expect("json"),
            ),
            "/latest/dynamic/instance-identity/document" => reply(
                200,
                "text/plain",
                serde_json::to_string_pretty(&json!({
                    "accountId": w.account,
                    "architecture": "x86_64",
                    "availabilityZone": az,
                    "billingProducts": null,
                    "devpayProductCodes": null,
                    "marketplaceProductCodes": null,
                    "imageId": "ami-0fleet0000000000",
                    "instanceId": inst.id,
                    "instanceType": "t3.micro",
                    "kernelId": null,
                    "pendingTime": stamp(now),
                    "privateIp": inst.address,
                    "ramdiskId": null,
                    "region": w.region,
                    "version": "2017-09-30",
                }))
                .expect("json"),
            ),
            _ => text(404, "Not Found"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_whole_seconds_in_utc() {
        assert_eq!(stamp(1_700_000_000.9), "2023-11-14T22:13:20Z");
    }
}
