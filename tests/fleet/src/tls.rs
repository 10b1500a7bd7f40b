//! The world's certificate authority and the registry's server certificate,
//! made with the `openssl` command-line tool.

use std::path::{Path, PathBuf};

use crate::error::{FleetError, Result};
use crate::sys::run;

pub struct Tls {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

pub fn make(dir: &Path, ip: &str) -> Result<Tls> {
    std::fs::create_dir_all(dir).map_err(FleetError::io(format!("creating {}", dir.display())))?;
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let (ca_key, ca_cert, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.crt"),
        p("server.key"),
        p("server.csr"),
        p("server.crt"),
        p("server.ext"),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &ca_key,
        "-out",
        &ca_cert,
        "-days",
        "7",
        "-subj",
        "/CN=hoist-fleet test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run("openssl", &args)?;
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        "/CN=hoist-fleet registry",
    ]);
    run("openssl", &args)?;
    std::fs::write(
        &ext,
        format!(
            "subjectAltName=IP:{ip},IP:127.0.0.1,DNS:localhost\n\
             extendedKeyUsage=serverAuth\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n"
        ),
    )
    .map_err(FleetError::io("writing the certificate extensions"))?;
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "7",
            "-extfile",
            &ext,
        ],
    )?;
    Ok(Tls {
        ca_cert: ca_cert.into(),
        server_cert: cert.into(),
        server_key: key.into(),
    })
}
