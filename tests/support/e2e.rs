//! Helpers for end-to-end tests that drive the `sign-action` binary: trust stores and
//! policies written into temporary directories, sign/verify/inspect runs with JSON output,
//! and reading back the envelope of a stored signature.
//!
//! Use it from a test crate with `#[path = "support/e2e.rs"] mod e2e;` (next to `mod support;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sign-action"));
    // Independent of the machine's docker login, notation config and environment.
    cmd.env_remove("SIGN_ACTION_KEY_PASSWORD")
        .env_remove("SIGN_ACTION_REGISTRY_USERNAME")
        .env_remove("SIGN_ACTION_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", "/nonexistent-docker-config")
        .env("XDG_CONFIG_HOME", "/nonexistent-xdg-config");
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run sign-action")
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A notation configuration directory (`truststore/x509/TYPE/NAME/`) and trust policies,
/// all in one temporary directory.
pub struct TrustConfig {
    pub dir: tempfile::TempDir,
}

impl TrustConfig {
    pub fn new() -> TrustConfig {
        TrustConfig {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Copy PEM/DER certificate files into store `TYPE/NAME`.
    pub fn add_store(&self, store_type: &str, name: &str, certs: &[&Path]) {
        let d = self
            .dir
            .path()
            .join("truststore/x509")
            .join(store_type)
            .join(name);
        std::fs::create_dir_all(&d).unwrap();
        for (i, c) in certs.iter().enumerate() {
            std::fs::copy(c, d.join(format!("cert{i}.pem"))).unwrap();
        }
    }

    /// Write a one-statement policy for every scope; returns its path.
    pub fn policy(
        &self,
        file: &str,
        level: &str,
        stores: &[&str],
        verify_timestamp: Option<&str>,
    ) -> PathBuf {
        let mut sv = serde_json::json!({ "level": level });
        if let Some(v) = verify_timestamp {
            sv["verifyTimestamp"] = v.into();
        }
        let doc = serde_json::json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "e2e",
                "registryScopes": ["*"],
                "signatureVerification": sv,
                "trustStores": stores,
                "trustedIdentities": ["*"],
            }]
        });
        let p = self.dir.path().join(file);
        std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig::new()
    }
}

/// `sign` with JSON output; returns the process output and the report (Null if none).
pub fn sign(refs: &[&str], key: &Path, chain: &Path, extra: &[&str]) -> (Output, Value) {
    let out = run(bin()
        .arg("sign")
        .args(refs)
        .arg("--key")
        .arg(key)
        .arg("--cert")
        .arg(chain)
        .args(["--output", "json"])
        .args(extra));
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

/// `sign` that must succeed; returns the signature manifest digests in reference order.
pub fn sign_ok(refs: &[&str], key: &Path, chain: &Path, extra: &[&str]) -> Vec<String> {
    let (out, report) = sign(refs, key, chain, extra);
    assert!(out.status.success(), "sign failed: {}", text(&out));
    let sigs = report["signatures"].as_array().expect("signatures");
    assert_eq!(sigs.len(), refs.len(), "{report}");
    sigs.iter()
        .map(|s| s["signature-digest"].as_str().unwrap().to_string())
        .collect()
}

/// `verify --output json` with the config's trust store and the given policy.
pub fn verify(config: &TrustConfig, policy: &Path, refs: &[&str]) -> (Output, Value) {
    let out = run(bin()
        .arg("verify")
        .args(refs)
        .arg("--trust-policy")
        .arg(policy)
        .arg("--trust-store")
        .arg(config.root())
        .args(["--output", "json"]));
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, doc)
}

/// The outcome of `check` in a signature's report.
pub fn check<'a>(signature: &'a Value, check: &str) -> &'a Value {
    signature["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} check in {signature}"))
}

/// Every warning of a result as one string.
pub fn warnings(result: &Value) -> String {
    result["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|x| x.as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// An envelope's timestamp token and raw signature bytes, extracted independently of the
/// library's parsers.
pub struct Extracted {
    pub signature: Vec<u8>,
    pub token: Option<Vec<u8>>,
}

const TIMESTAMP_HEADER: &str = "io.cncf.notary.timestampSignature";

/// JWS: unprotected header `io.cncf.notary.timestampSignature` (standard base64) and the
/// base64url `signature`.
pub fn extract_jws(envelope: &[u8]) -> Extracted {
    let v: Value = serde_json::from_slice(envelope).expect("JWS JSON");
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v["signature"].as_str().expect("signature"))
        .expect("base64url signature");
    let token = v["header"][TIMESTAMP_HEADER].as_str().map(|t| {
        base64::engine::general_purpose::STANDARD
            .decode(t)
            .expect("standard base64 token")
    });
    Extracted { signature, token }
}

/// COSE: tagged COSE_Sign1 `[protected, unprotected, payload, signature]`; the token is the
/// bstr under the text label in the unprotected map.
pub fn extract_cose(envelope: &[u8]) -> Extracted {
    use ciborium::Value as C;
    let v: C = ciborium::from_reader(envelope).expect("CBOR");
    let C::Tag(18, inner) = v else {
        panic!("not a tagged COSE_Sign1: {v:?}")
    };
    let C::Array(items) = *inner else {
        panic!("COSE_Sign1 is not an array")
    };
    assert_eq!(items.len(), 4);
    let C::Bytes(signature) = items[3].clone() else {
        panic!("signature is not a bstr")
    };
    let C::Map(unprotected) = &items[1] else {
        panic!("unprotected header is not a map")
    };
    let token = unprotected.iter().find_map(|(k, v)| match (k, v) {
        (C::Text(k), C::Bytes(b)) if k == TIMESTAMP_HEADER => Some(b.clone()),
        _ => None,
    });
    Extracted { signature, token }
}

/// Read a signature's envelope from the registry over raw HTTP: manifest, then its layer.
pub async fn fetch_envelope(
    registry: &crate::support::Registry,
    repo: &str,
    signature_digest: &str,
) -> (String, Vec<u8>) {
    let (status, _, body) = registry
        .raw_get(
            &format!("/v2/{repo}/manifests/{signature_digest}"),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await;
    assert_eq!(status, 200);
    let manifest: Value = serde_json::from_slice(&body).unwrap();
    let layer = &manifest["layers"][0];
    let media_type = layer["mediaType"].as_str().unwrap().to_string();
    let (status, _, envelope) = registry
        .raw_get(
            &format!("/v2/{repo}/blobs/{}", layer["digest"].as_str().unwrap()),
            "*/*",
        )
        .await;
    assert_eq!(status, 200);
    (media_type, envelope)
}
