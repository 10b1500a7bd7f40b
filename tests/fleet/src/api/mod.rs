//! The emulated AWS endpoint: one HTTP server answering SSM, Secrets Manager,
//! ECR and STS (JSON 1.1 with `X-Amz-Target`, STS also in the query
//! protocol), plus the world's admin API under `/_fleet/`.

mod admin;
mod ecr;
mod params;
mod secrets;
pub mod settings;
mod ssm;
mod sts;
mod throttle;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::faults::Faults;
use crate::journal::Journal;
use crate::world::World;

pub type Body = Full<Bytes>;

/// An error in AWS's shape: `__type` and `message`, HTTP 400 unless said.
#[derive(Debug)]
pub struct AwsError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(code: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            status: 400,
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> AwsError {
        AwsError::new("ValidationException", message)
    }
}

pub type ApiResult = Result<Value, AwsError>;

pub struct App {
    pub world: World,
    pub faults: Mutex<Faults>,
    pub journal: Journal,
    pub ssm: ssm::Ssm,
    pub params: params::Params,
    pub secrets: secrets::Secrets,
    pub ecr: ecr::Ecr,
    /// AWS's request-rate quotas (Parameter Store, Secrets Manager).
    pub throttles: throttle::Throttles,
}

pub async fn serve(world: World) -> crate::error::Result<()> {
    let addr: SocketAddr = format!("{}:{}", world.gateway, world.api_port)
        .parse()
        .map_err(|e| crate::error::FleetError::Invalid(format!("listen address: {e}")))?;
    let journal = Journal::open(&world.dir.join("run/journal.jsonl"))?;
    let app = Arc::new(App {
        ssm: ssm::Ssm::default(),
        params: params::Params::default(),
        secrets: secrets::Secrets::default(),
        ecr: ecr::Ecr::default(),
        throttles: throttle::Throttles::default(),
        faults: Mutex::new(Faults::default()),
        journal,
        world,
    });
    // Parameter Store's asynchronous, periodic scan for expired parameters.
    tokio::spawn(params::expiry_scans(app.clone()));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(crate::error::FleetError::io(format!("binding {addr}")))?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(app.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .header("x-amzn-requestid", crate::random::uuid())
        .body(Full::new(Bytes::from(body)))
        .expect("response builds")
}

fn json_error(e: &AwsError) -> Response<Body> {
    let mut r = response(
        e.status,
        "application/x-amz-json-1.1",
        // AWS leaves out a message it has none for (Parameter Store's ParameterNotFound).
        if e.message.is_empty() {
            json!({"__type": e.code})
        } else {
            json!({"__type": e.code, "message": e.message})
        }
        .to_string()
        .into_bytes(),
    );
    if let Ok(v) = e.code.parse() {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

/// A call whose answer the `drop-response` fault loses: hyper closes the connection.
#[derive(Debug)]
struct LostAnswer;

impl std::fmt::Display for LostAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the answer was dropped (fault)")
    }
}

impl std::error::Error for LostAnswer {}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, LostAnswer> {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(response(400, "text/plain", b"bad body".to_vec())),
    };
    if let Some(rest) = path.strip_prefix("/_fleet/") {
        let (status, v) = admin::handle(&app, rest, &body).await;
        return Ok(response(
            status,
            "application/json",
            v.to_string().into_bytes(),
        ));
    }
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let authorization = header("authorization");
    let authorized = authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 ") && a.contains("Credential="))
        && header("x-amz-date").is_some();
    let credential = authorization.as_deref().and_then(credential_scope);
    let caller = credential.as_ref().map(|(key, _)| key.as_str());

    if let Some(target) = header("x-amz-target") {
        let (prefix, op) = target.split_once('.').unwrap_or(("", target.as_str()));
        // The target's prefix names the service; an unknown prefix falls back
        // to the service named in the credential scope.
        let service = match prefix {
            "AmazonSSM" => "ssm",
            "secretsmanager" => "secretsmanager",
            "AmazonEC2ContainerRegistry_V20150921" => "ecr",
            "AWSSecurityTokenServiceV20110615" => "sts",
            _ => match credential.as_ref().map(|(_, s)| s.as_str()) {
                Some("ssm") => "ssm",
                Some("secretsmanager") => "secretsmanager",
                Some("ecr") => "ecr",
                Some("sts") => "sts",
                _ => "unknown",
            },
        };
        let params: Value = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => {
                    let err = AwsError::new("SerializationException", format!("invalid JSON: {e}"));
                    app.journal
                        .write(service, op, caller, &Value::Null, Some(err.code));
                    return Ok(json_error(&err));
                }
            }
        };
        let result = if !authorized {
            Err(AwsError {
                status: 400,
                code: "MissingAuthenticationTokenException",
                message: "Missing Authentication Token".into(),
            })
        } else {
            dispatch(&app, service, op, caller, &params).await
        };
        app.journal.write(
            service,
            op,
            caller,
            &redacted(service, op, &params),
            result.as_ref().err().map(|e| e.code),
        );
        // Carried out; its answer lost on the way back.
        let lost = app.faults.lock().expect("faults").drop_answer(op);
        if let Some(hold) = lost {
            tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
            return Err(LostAnswer);
        }
        return Ok(match result {
            Ok(v) => response(
                200,
                "application/x-amz-json-1.1",
                v.to_string().into_bytes(),
            ),
            Err(e) => json_error(&e),
        });
    }

    // The query protocol (STS as the SDKs and the CLI speak it).
    let form = parse_form(&body);
    let action = form
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone());
    let params = Value::Object(
        form.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    );
    let Some(action) = action else {
        return Ok(response(404, "text/plain", b"unknown operation".to_vec()));
    };
    let decision = app.faults.lock().expect("faults").before_call(&action);
    let result = if !authorized {
        Err(AwsError::new(
            "MissingAuthenticationToken",
            "Missing Authentication Token",
        ))
    } else if let Some(ms) = decision {
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        match action.as_str() {
            "GetCallerIdentity" => Ok(()),
            _ => Err(AwsError::new(
                "InvalidAction",
                format!("Could not find operation {action}"),
            )),
        }
    } else {
        Err(AwsError::new("Throttling", "Rate exceeded"))
    };
    app.journal.write(
        "sts",
        &action,
        caller,
        &params,
        result.as_ref().err().map(|e| e.code),
    );
    Ok(match result {
        Ok(()) => response(
            200,
            "text/xml",
            sts::caller_identity_xml(&app.world, caller).into_bytes(),
        ),
        Err(e) => response(e.status, "text/xml", sts::error_xml(&e).into_bytes()),
    })
}

async fn dispatch(
    app: &Arc<App>,
    service: &str,
    op: &str,
    caller: Option<&str>,
    p: &Value,
) -> ApiResult {
    let delay = app.faults.lock().expect("faults").before_call(op);
    match delay {
        None => return Err(AwsError::new("ThrottlingException", "Rate exceeded")),
        Some(ms) if ms > 0 => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
        _ => {}
    }
    if !app.throttles.admit(&app.world.api, service, op) {
        return Err(AwsError::new("ThrottlingException", "Rate exceeded"));
    }
    match (service, op) {
        ("ssm", "SendCommand") => ssm::send_command(app, p),
        ("ssm", "ListCommands") => ssm::list_commands(app, p),
        ("ssm", "ListCommandInvocations") => ssm::list_command_invocations(app, p),
        ("ssm", "GetCommandInvocation") => ssm::get_command_invocation(app, p),
        ("ssm", "CancelCommand") => ssm::cancel_command(app, p),
        ("ssm", "DescribeInstanceInformation") => ssm::describe_instance_information(app, p),
        ("ssm", "PutParameter") => params::put(app, p),
        ("ssm", "GetParameter") => params::get(app, p),
        ("ssm", "GetParameters") => params::get_many(app, p),
        ("ssm", "GetParametersByPath") => params::get_by_path(app, p),
        ("ssm", "DeleteParameter") => params::delete(app, p),
        ("ssm", "DeleteParameters") => params::delete_many(app, p),
        ("ssm", "DescribeParameters") => params::describe(app, p),
        ("ssm", "AddTagsToResource") => params::add_tags(app, p),
        ("ssm", "RemoveTagsFromResource") => params::remove_tags(app, p),
        ("ssm", "ListTagsForResource") => params::list_tags(app, p),
        ("secretsmanager", "CreateSecret") => secrets::create(app, p),
        ("secretsmanager", "PutSecretValue") => secrets::put_value(app, p),
        ("secretsmanager", "GetSecretValue") => secrets::get_value(app, p),
        ("secretsmanager", "DeleteSecret") => secrets::delete(app, p),
        ("secretsmanager", "DescribeSecret") => secrets::describe(app, p),
        ("ecr", "GetAuthorizationToken") => ecr::get_authorization_token(app, p),
        ("ecr", "CreateRepository") => ecr::create_repository(app, p),
        ("ecr", "DescribeRepositories") => ecr::describe_repositories(app, p),
        ("ecr", "DeleteRepository") => ecr::delete_repository(app, p),
        ("ecr", "DescribeImages") => ecr::describe_images(app, p),
        ("ecr", "BatchGetImage") => ecr::batch_get_image(app, p),
        ("ecr", "BatchDeleteImage") => ecr::batch_delete_image(app, p),
        ("sts", "GetCallerIdentity") => Ok(sts::caller_identity_json(&app.world, caller)),
        _ => Err(AwsError::new(
            "UnknownOperationException",
            format!("hoist-fleet does not emulate {service} {op}"),
        )),
    }
}

/// `Credential=AKID/20240101/us-east-1/ssm/aws4_request` in a SigV4
/// `Authorization` header: the access key id and the scope's service.
fn credential_scope(authorization: &str) -> Option<(String, String)> {
    let rest = authorization.split("Credential=").nth(1)?;
    let credential = rest.split([',', ' ']).next()?;
    let mut parts = credential.split('/');
    let key = parts.next().filter(|k| !k.is_empty())?.to_string();
    let service = parts.nth(2).unwrap_or_default().to_string();
    Some((key, service))
}

/// The request as the journal keeps it: a SecureString's value and a
/// secret's `SecretString`/`SecretBinary` are replaced, so a sweep of the
/// journal for a secret finds only real leaks (e.g. in SendCommand
/// parameters), not the call that stored it.
fn redacted(service: &str, op: &str, params: &Value) -> Value {
    let mut p = params.clone();
    if service == "secretsmanager" {
        for field in ["SecretString", "SecretBinary"] {
            if p.get(field).is_some() {
                p[field] = json!(format!("**redacted {field}**"));
            }
        }
        return p;
    }
    let plain = matches!(
        str_field(params, "Type"),
        Some("String") | Some("StringList")
    );
    if op == "PutParameter" && !plain && p.get("Value").is_some() {
        p["Value"] = json!("**redacted SecureString**");
    }
    p
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// Helpers for reading request fields.
pub fn str_field<'a>(p: &'a Value, name: &str) -> Option<&'a str> {
    p.get(name).and_then(Value::as_str)
}

pub fn required<'a>(p: &'a Value, name: &str) -> Result<&'a str, AwsError> {
    str_field(p, name).filter(|s| !s.is_empty()).ok_or_else(|| {
        AwsError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(name)
        ))
    })
}

pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

pub fn string_list(p: &Value, name: &str) -> Vec<String> {
    p.get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Offset-based pagination with an opaque-looking token.
pub fn page<T: Clone>(
    items: &[T],
    p: &Value,
    default_max: usize,
    max_cap: usize,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let max = p
        .get("MaxResults")
        .or_else(|| p.get("maxResults"))
        .and_then(Value::as_u64)
        .map(|m| m as usize)
        .unwrap_or(default_max)
        .clamp(1, max_cap);
    let start = match str_field(p, "NextToken").or_else(|| str_field(p, "nextToken")) {
        None => 0,
        Some(t) => t
            .strip_prefix("hf-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| AwsError::new("InvalidNextToken", "The specified token isn't valid."))?,
    };
    let end = (start + max).min(items.len());
    let slice = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < items.len()).then(|| format!("hf-{end}"));
    Ok((slice, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_caller_from_the_credential_scope() {
        let auth = "AWS4-HMAC-SHA256 Credential=ASIAFLEETINSTANCEABC/20240101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
        assert_eq!(
            credential_scope(auth),
            Some((
                "ASIAFLEETINSTANCEABC".to_string(),
                "secretsmanager".to_string()
            ))
        );
        assert_eq!(credential_scope("AWS4-HMAC-SHA256 Signature=00"), None);
    }

    #[test]
    fn redacts_secret_values_only() {
        let create = json!({"Name": "db", "SecretString": "s3cr3t", "Description": "d"});
        let r = redacted("secretsmanager", "CreateSecret", &create);
        assert_eq!(r["SecretString"], "**redacted SecretString**");
        assert_eq!(r["Name"], "db");
        let put = json!({"SecretId": "db", "SecretBinary": "AAEC"});
        let r = redacted("secretsmanager", "PutSecretValue", &put);
        assert_eq!(r["SecretBinary"], "**redacted SecretBinary**");
        let plain = json!({"Name": "/a", "Type": "String", "Value": "v"});
        assert_eq!(redacted("ssm", "PutParameter", &plain)["Value"], "v");
        let secure = json!({"Name": "/a", "Type": "SecureString", "Value": "v"});
        assert_eq!(
            redacted("ssm", "PutParameter", &secure)["Value"],
            "**redacted SecureString**"
        );
    }
}
