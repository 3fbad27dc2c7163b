//! A test CA and a server certificate it signed, for 127.0.0.1 and localhost, made with the
//! `openssl` command line (which `scripts/test` installs): for the tests of an https issuer
//! and of LDAPS.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes the CA (`ca.pem`) and the server's certificate and key (`server.pem`,
/// `server.key`) in `dir`; returns their paths in that order.
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let output =
            Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (scripts/test installs it)");
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca_subject = ["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Portcullis test CA"];
    openssl(&[&["req", "-x509"][..], &ec, &ca_subject].concat());
    openssl(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}
