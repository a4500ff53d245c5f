//! Acceptance tests of the verification gate, driven through the `sign-action` binary with
//! `--output json`: the upstream notation vectors (OCI layouts, trust policies, envelopes) at
//! every verification level with the outcomes the vectors' README states, round trips of our
//! own signatures over the real CNCF registry, an OCI layout and a Referrers-API registry, and
//! the GitHub Action mode. Only the mock envelopes, whose subject manifest cannot be produced,
//! go through the library with an in-memory storage double.

#[path = "support/one_signature.rs"]
mod one_signature;
#[path = "support/pki.rs"]
mod pki;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::{json, Value};
use sign_action::crypto::KeySpec;
use sign_action::oci::{Descriptor, OCI_MANIFEST};
use support::{make_named_test_key, make_test_key, push_test_image, Registry, RegistryConfig};

const ALL_SPECS: [KeySpec; 6] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EcP256,
    KeySpec::EcP384,
    KeySpec::EcP521,
];

/// Subject of every vector layout but the timestamped one.
const SUBJECT: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
const E2E_SIGNATURE: &str =
    "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f";
const E2E_SUBJECT: &str = "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US";
const LAYOUT_SCOPE: &str = "example.test/app";

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sign-action"));
    cmd.env_remove("SIGN_ACTION_KEY_PASSWORD")
        .env_remove("SIGN_ACTION_REGISTRY_USERNAME")
        .env_remove("SIGN_ACTION_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", "/nonexistent-docker-config")
        // No ambient notation configuration may leak in.
        .env("XDG_CONFIG_HOME", "/nonexistent-xdg-config");
    cmd
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn layout(name: &str) -> PathBuf {
    fixtures().join("oci-layouts").join(name)
}

fn vector(rel: &str) -> PathBuf {
    fixtures().join("vectors").join(rel)
}

fn policy(name: &str) -> PathBuf {
    vector(&format!("trustpolicies/{name}.json"))
}

/// A trust store directory (`x509/<type>/<name>/<file>`) holding the given certificates.
fn trust_store(entries: &[(&str, &str, &Path)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, (kind, name, cert)) in entries.iter().enumerate() {
        let d = dir.path().join("x509").join(kind).join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(cert, d.join(format!("cert{i}.pem"))).unwrap();
    }
    dir
}

/// notation e2e "BaseOptions": `ca/e2e` holding `e2e.crt`.
fn e2e_store() -> tempfile::TempDir {
    trust_store(&[("ca", "e2e", &vector("e2e-certs/e2e.crt"))])
}

struct Run {
    code: i32,
    json: Value,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(out: Output) -> Run {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Run {
            code: out.status.code().unwrap_or(-1),
            json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn result(&self, i: usize) -> &Value {
        &self.json["results"][i]
    }

    fn describe(&self) -> String {
        format!(
            "exit {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `verify --output json` of references with a policy file and a trust store.
fn verify(references: &[String], policy: &Path, store: &Path, extra: &[&str]) -> Run {
    let out = bin()
        .arg("verify")
        .args(references)
        .arg("--trust-policy")
        .arg(policy)
        .arg("--trust-store")
        .arg(store)
        .args(extra)
        .args(["--output", "json"])
        .output()
        .expect("run sign-action");
    Run::of(out)
}

fn verify_layout(dir: &Path, target: &str, policy: &Path, store: &Path) -> Run {
    verify(
        &[format!("{}{target}", dir.display())],
        policy,
        store,
        &["--oci-layout", "--scope", LAYOUT_SCOPE],
    )
}

fn check<'a>(signature: &'a Value, name: &str) -> &'a Value {
    signature["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {signature}"))
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {signature}"))
}

fn warnings(result: &Value) -> Vec<String> {
    result["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

fn error_of(result: &Value) -> String {
    result["error"].as_str().unwrap_or_default().to_string()
}

fn assert_verified(run: &Run) {
    assert_eq!(run.code, 0, "{}", run.describe());
    assert_eq!(run.json["verified"], true, "{}", run.describe());
}

fn assert_failed(run: &Run, fragments: &[&str]) {
    assert_eq!(run.code, 1, "{}", run.describe());
    assert_eq!(run.json["verified"], false, "{}", run.describe());
    let error = error_of(run.result(0));
    for f in fragments {
        assert!(error.contains(f), "error {error:?} lacks {f:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// §1 and §2: the upstream OCI layouts.

#[test]
fn valid_signature_passes_at_every_enforcing_level_and_skip_skips() {
    let store = e2e_store();
    for p in [
        "trustpolicy",
        "permissive_trustpolicy",
        "audit_trustpolicy",
        "override_strict_trustpolicy",
        "valid_trusted_identity_trustpolicy",
    ] {
        let run = verify_layout(
            &layout("e2e-valid-signature"),
            ":v1",
            &policy(p),
            store.path(),
        );
        assert_verified(&run);
        let r = run.result(0);
        assert_eq!(r["digest"], SUBJECT, "{p}");
        assert_eq!(r["signature"]["digest"], E2E_SIGNATURE, "{p}");
        assert_eq!(r["signature"]["signer-subject"], E2E_SUBJECT, "{p}");
        assert_eq!(r["signature"]["format"], "jws");
        for c in ["integrity", "authenticity", "expiry", "authenticTimestamp"] {
            assert_eq!(check(&r["signature"], c)["status"], "passed", "{p} {c}");
        }
        assert!(r["failed-signatures"].as_array().unwrap().is_empty());
    }
    let level = |p: &str| {
        verify_layout(
            &layout("e2e-valid-signature"),
            ":v1",
            &policy(p),
            store.path(),
        )
        .json["results"][0]["level"]
            .clone()
    };
    assert_eq!(level("permissive_trustpolicy"), "permissive");
    assert_eq!(level("audit_trustpolicy"), "audit");

    // skip: no trust store needed, nothing checked, and the report says so.
    let empty = tempfile::tempdir().unwrap();
    let run = verify_layout(
        &layout("e2e-valid-signature"),
        &format!("@{SUBJECT}"),
        &policy("skip_trustpolicy"),
        empty.path(),
    );
    assert_verified(&run);
    let r = run.result(0);
    assert!(r["signature"].is_null(), "{r}");
    assert!(
        warnings(r)
            .iter()
            .any(|w| w.contains("configured to skip signature verification")),
        "{r}"
    );
}

#[test]
fn store_without_the_signer_fails_authenticity_except_in_audit() {
    // A store named like the policy wants, but holding another certificate.
    let store = trust_store(&[("ca", "e2e", &vector("e2e-certs/expired_e2e.crt"))]);
    for p in ["trustpolicy", "permissive_trustpolicy"] {
        let run = verify_layout(
            &layout("e2e-valid-signature"),
            ":v1",
            &policy(p),
            store.path(),
        );
        assert_failed(
            &run,
            &[
                "authenticity validation failed",
                "does not contain any trusted certificate",
            ],
        );
        let sig = &run.result(0)["failed-signatures"][0];
        assert_eq!(check(sig, "authenticity")["status"], "failed");
        assert_eq!(check(sig, "authenticity")["enforcement"], "enforced");
    }
    // override_strict logs authenticity: passes, the failure reported as logged.
    let run = verify_layout(
        &layout("e2e-valid-signature"),
        ":v1",
        &policy("override_strict_trustpolicy"),
        store.path(),
    );
    assert_verified(&run);
    assert_eq!(
        check(&run.result(0)["signature"], "authenticity")["enforcement"],
        "logged"
    );
    let run = verify_layout(
        &layout("e2e-valid-signature"),
        ":v1",
        &policy("audit_trustpolicy"),
        store.path(),
    );
    assert_verified(&run);
    let r = run.result(0);
    assert_eq!(check(&r["signature"], "authenticity")["status"], "failed");
    assert_eq!(
        check(&r["signature"], "authenticity")["enforcement"],
        "logged"
    );
    assert!(
        warnings(r).iter().any(|w| w.contains(
            "the signature's certificate chain does not contain any trusted certificate"
        )),
        "{r}"
    );
}

#[test]
fn expired_signature_fails_strict_and_is_logged_otherwise() {
    let store = e2e_store();
    let dir = layout("e2e-expired-signature");
    let run = verify_layout(&dir, ":v1", &policy("trustpolicy"), store.path());
    assert_failed(&run, &["expiry validation failed", "expired"]);
    let sig = &run.result(0)["failed-signatures"][0];
    assert_eq!(check(sig, "expiry")["status"], "failed");
    assert_eq!(check(sig, "integrity")["status"], "passed");
    assert_eq!(check(sig, "authenticity")["status"], "passed");
    for p in [
        "permissive_trustpolicy",
        "audit_trustpolicy",
        "override_strict_trustpolicy",
    ] {
        let run = verify_layout(&dir, ":v1", &policy(p), store.path());
        assert_verified(&run);
        let r = run.result(0);
        let expiry = check(&r["signature"], "expiry");
        assert_eq!(expiry["status"], "failed", "{p}");
        assert_eq!(expiry["enforcement"], "logged", "{p}");
        assert!(
            warnings(r)
                .iter()
                .any(|w| w.contains("expiry") && w.contains("log") && w.contains("expired")),
            "{p}: {r}"
        );
    }
}

#[test]
fn invalid_signature_fails_integrity_at_every_level_but_skip() {
    let store = e2e_store();
    let dir = layout("e2e-invalid-signature");
    for p in ["trustpolicy", "permissive_trustpolicy", "audit_trustpolicy"] {
        let run = verify_layout(&dir, ":v1", &policy(p), store.path());
        assert_failed(
            &run,
            &[
                "integrity validation failed",
                "unsupported signature envelope media type",
            ],
        );
        let sig = &run.result(0)["failed-signatures"][0];
        assert_eq!(check(sig, "integrity")["status"], "failed");
        assert_eq!(check(sig, "integrity")["enforcement"], "enforced");
    }
    let run = verify_layout(&dir, ":v1", &policy("skip_trustpolicy"), store.path());
    assert_verified(&run);
    assert!(warnings(run.result(0))
        .iter()
        .any(|w| w.contains("skip signature verification")));
}

#[test]
fn expired_certificate_fails_authentic_timestamp_in_strict_only() {
    let store = trust_store(&[("ca", "e2e", &vector("e2e-certs/expired_e2e.crt"))]);
    let dir = layout("e2e-with-expired-cert");
    let run = verify_layout(&dir, ":v1", &policy("trustpolicy"), store.path());
    assert_failed(
        &run,
        &[
            "authenticTimestamp validation failed",
            "expired",
            "2023-06-27T06:10:00Z",
        ],
    );
    for p in [
        "permissive_trustpolicy",
        "audit_trustpolicy",
        "override_strict_trustpolicy",
    ] {
        let run = verify_layout(&dir, ":v1", &policy(p), store.path());
        assert_verified(&run);
        let r = run.result(0);
        assert_eq!(check(&r["signature"], "authenticity")["status"], "passed");
        assert_eq!(
            check(&r["signature"], "authenticTimestamp")["status"],
            "failed"
        );
        assert!(
            warnings(r)
                .iter()
                .any(|w| w.contains("authenticTimestamp") && w.contains("expired")),
            "{p}: {r}"
        );
    }
    // The e2e store does not trust this signer at all.
    let run = verify_layout(&dir, ":v1", &policy("trustpolicy"), e2e_store().path());
    assert_failed(&run, &["authenticity validation failed"]);
}

#[test]
fn multiple_signatures_first_passing_wins_and_both_are_listed() {
    let store = e2e_store();
    let dir = layout("e2e-valid-multiple-signatures");
    let run = verify_layout(&dir, ":v1", &policy("trustpolicy"), store.path());
    assert_verified(&run);
    let r = run.result(0);
    assert_eq!(r["signature"]["signer-subject"], E2E_SUBJECT);
    // Any signature tried before the passing one is the untrusted testcert11 one.
    for failed in r["failed-signatures"].as_array().unwrap() {
        assert!(failed["signer-subject"]
            .as_str()
            .unwrap()
            .contains("testcert11"));
        assert_eq!(check(failed, "authenticity")["status"], "failed");
    }
    // The second signature is only discoverable by its subject field: list must find it.
    let out = bin()
        .args(["list", "--oci-layout"])
        .arg(format!("{}:v1", dir.display()))
        .args(["--output", "json"])
        .output()
        .unwrap();
    let list = Run::of(out);
    assert_eq!(list.code, 0, "{}", list.describe());
    assert_eq!(list.json["signatures"].as_array().unwrap().len(), 2);
    // inspect stops at --max-signatures and says more exist.
    let out = bin()
        .args(["inspect", "--oci-layout"])
        .arg(format!("{}:v1", dir.display()))
        .args(["--max-signatures", "1", "--output", "json"])
        .output()
        .unwrap();
    let inspect = Run::of(out);
    assert_eq!(inspect.code, 0, "{}", inspect.describe());
    assert_eq!(inspect.json["signatures"].as_array().unwrap().len(), 1);
    assert_eq!(inspect.json["truncated"], true);
    // Trusting neither signer fails both.
    let other = trust_store(&[("ca", "e2e", &vector("e2e-certs/expired_e2e.crt"))]);
    let run = verify_layout(&dir, ":v1", &policy("trustpolicy"), other.path());
    assert_failed(&run, &["none of the 2 signatures verified"]);
    assert_eq!(
        run.result(0)["failed-signatures"].as_array().unwrap().len(),
        2
    );
}

/// The leaf certificate of a JWS envelope blob, as DER.
fn jws_leaf(envelope: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(envelope).unwrap();
    let b64 = v["header"]["x5c"][0].as_str().unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn blob(layout_dir: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        layout_dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

#[test]
fn timestamped_signature_fails_strict_on_expiry() {
    let dir = layout("e2e-with-timestamped-signature");
    let manifest: Value = serde_json::from_slice(&blob(
        &dir,
        "sha256:6a5cd3a886707a317935dcaf13954fc80ef9aeb665262b6ae4fe469ad7ea3aea",
    ))
    .unwrap();
    let envelope = blob(&dir, manifest["layers"][0]["digest"].as_str().unwrap());
    let certs = tempfile::tempdir().unwrap();
    let leaf = certs.path().join("testcert7.der");
    std::fs::write(&leaf, jws_leaf(&envelope)).unwrap();
    let store = trust_store(&[("ca", "e2e", &leaf)]);
    let run = verify_layout(&dir, ":v1", &policy("trustpolicy"), store.path());
    assert_failed(&run, &["expiry validation failed", "2025-01-21T12:39:46Z"]);
    let sig = &run.result(0)["failed-signatures"][0];
    assert_eq!(check(sig, "integrity")["status"], "passed");
    assert_eq!(check(sig, "authenticity")["status"], "passed");
    assert_eq!(check(sig, "expiry")["status"], "failed");

    // permissive, no tsa store: the leaf is judged at the time of verification, when it has
    // expired; both failures are logged.
    let run = verify_layout(&dir, ":v1", &policy("permissive_trustpolicy"), store.path());
    assert_verified(&run);
    let w = warnings(run.result(0));
    assert!(
        w.iter().any(|w| w.contains("expiry validation failed")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.contains("authenticTimestamp") && w.contains("2025-01-22T08:36:26Z")),
        "{w:?}"
    );
    // With a tsa store that lacks the Microsoft root the token cannot be trusted: the
    // timestamp is what fails, and the report says which root is missing.
    let tsa_store = trust_store(&[
        ("ca", "e2e", &leaf),
        (
            "tsa",
            "ms",
            &fixtures().join("timestamp/GlobalSignRootCA.crt"),
        ),
    ]);
    let tsa_policy = certs.path().join("tsa-policy.json");
    std::fs::write(
        &tsa_policy,
        json!({"version": "1.0", "trustPolicies": [{
            "name": "ts", "registryScopes": ["*"],
            "signatureVerification": {"level": "permissive"},
            "trustStores": ["ca:e2e", "tsa:ms"], "trustedIdentities": ["*"]}]})
        .to_string(),
    )
    .unwrap();
    let run = verify_layout(&dir, ":v1", &tsa_policy, tsa_store.path());
    assert_verified(&run);
    let ts = check(&run.result(0)["signature"], "authenticTimestamp");
    assert_eq!(ts["status"], "failed");
    let detail = ts["detail"].as_str().unwrap();
    assert!(
        detail.contains("timestamp countersignature")
            && detail.contains("Microsoft Identity Verification Root Certificate Authority 2020"),
        "{detail}"
    );
}

#[test]
fn artifact_type_form_signature_verifies() {
    let store = e2e_store();
    let run = verify_layout(
        &layout("e2e-valid-signature-artifacttype"),
        ":v1",
        &policy("trustpolicy"),
        store.path(),
    );
    assert_verified(&run);
    assert_eq!(
        run.result(0)["signature"]["digest"],
        "sha256:eb80d69be6bfd731bfeda36c8416ae5ea133780c5edfeb4f14b679ad151a9f76"
    );
}

// ---------------------------------------------------------------------------------------------
// §4: trust policies.

#[test]
fn invalid_trust_policies_are_configuration_errors() {
    let store = e2e_store();
    for (p, fragment) in [
        (
            "overlapped_trusted_identity_trustpolicy",
            "has overlapping x509 trustedIdentities",
        ),
        (
            "multi_statements_with_multi_wildcard_registry_scope_trustpolicy",
            "registry scope \"*\" is present in multiple oci trust policy statements",
        ),
    ] {
        let run = verify_layout(
            &layout("e2e-valid-signature"),
            ":v1",
            &policy(p),
            store.path(),
        );
        assert_eq!(run.code, 2, "{p}: {}", run.describe());
        assert!(run.stderr.contains(fragment), "{p}: {}", run.describe());
    }
    // An unreadable store named by the policy is a configuration error too, not a failure.
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(empty.path().join("x509/ca")).unwrap();
    let run = verify_layout(
        &layout("e2e-valid-signature"),
        ":v1",
        &policy("trustpolicy"),
        empty.path(),
    );
    assert_eq!(run.code, 2, "{}", run.describe());
    // A policy file that is missing or not JSON.
    let bad = tempfile::tempdir().unwrap();
    let not_json = bad.path().join("trustpolicy.json");
    std::fs::write(&not_json, "{\"version\": \"1.0\", ").unwrap();
    for p in [bad.path().join("missing.json"), not_json] {
        let run = verify_layout(&layout("e2e-valid-signature"), ":v1", &p, store.path());
        assert_eq!(run.code, 2, "{}", run.describe());
        assert!(
            run.stderr.contains("invalid trust policy"),
            "{}",
            run.describe()
        );
    }
    // And --oci-layout without --scope.
    let run = verify(
        &[format!("{}:v1", layout("e2e-valid-signature").display())],
        &policy("trustpolicy"),
        store.path(),
        &["--oci-layout"],
    );
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("--scope"), "{}", run.describe());
    // A scope that is not host[:port]/repository cannot name a policy statement: a usage
    // error, not a silent fall-through to "*".
    let run = verify(
        &[format!("{}:v1", layout("e2e-valid-signature").display())],
        &policy("trustpolicy"),
        store.path(),
        &["--oci-layout", "--scope", "not a scope"],
    );
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("invalid --scope"), "{}", run.describe());
    // --scope with a registry reference would be ignored: refused instead.
    let run = verify(
        &[format!("127.0.0.1:1/app@{SUBJECT}")],
        &policy("trustpolicy"),
        store.path(),
        &["--scope", LAYOUT_SCOPE],
    );
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(
        run.stderr.contains("only with --oci-layout"),
        "{}",
        run.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// §10: derived JWS envelopes, placed into a fresh layout next to the vectors' subject.

/// A layout holding only the vectors' subject (tag `v1`) and `envelope` as its one signature
/// (legacy manifest form, discoverable through the subject field).
fn layout_with_signature(envelope: &[u8], media_type: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = layout("e2e-valid-signature");
    let subject_bytes = blob(&src, SUBJECT);
    let subject_manifest: Value = serde_json::from_slice(&subject_bytes).unwrap();
    let blobs = dir.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let d = Descriptor::of_bytes("x", bytes);
        std::fs::write(blobs.join(d.digest.trim_start_matches("sha256:")), bytes).unwrap();
        d
    };
    put(&subject_bytes);
    let mut referenced = vec![subject_manifest["config"]["digest"].as_str().unwrap()];
    for l in subject_manifest["layers"].as_array().unwrap() {
        referenced.push(l["digest"].as_str().unwrap());
    }
    for d in referenced {
        put(&blob(&src, d));
    }
    let env = put(envelope);
    let config = put(b"{}");
    let signature = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.cncf.notary.signature", "digest": config.digest, "size": 2},
        "layers": [{"mediaType": media_type, "digest": env.digest, "size": env.size}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": SUBJECT, "size": subject_bytes.len()},
    });
    let sig_bytes = serde_json::to_vec(&signature).unwrap();
    let sig = put(&sig_bytes);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": SUBJECT, "size": subject_bytes.len(),
             "annotations": {"org.opencontainers.image.ref.name": "v1"}},
            {"mediaType": OCI_MANIFEST, "digest": sig.digest, "size": sig.size},
        ],
    });
    std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    dir
}

#[test]
fn derived_jws_envelopes() {
    let store = e2e_store();
    let derived = |name: &str| {
        let envelope = std::fs::read(vector(&format!("derived/{name}.sig"))).unwrap();
        let dir = layout_with_signature(&envelope, "application/jose+json");
        verify_layout(dir.path(), ":v1", &policy("trustpolicy"), store.path())
    };
    let run = derived("jws-control-valid");
    assert_verified(&run);
    assert_eq!(run.result(0)["signature"]["signer-subject"], E2E_SUBJECT);
    for (name, fragment) in [
        (
            "jws-tampered-payload",
            "the signature does not match the signed content",
        ),
        ("jws-missing-crit", "missing or empty \"crit\""),
        ("jws-expiry-not-crit", "must be marked critical"),
        (
            "jws-alg-mismatch",
            "PS384 does not match the leaf certificate's key, which requires PS256",
        ),
        // The spec: unknown critical attributes MUST fail (notation-go accepts this one).
        ("jws-unknown-crit", "com.example.mustUnderstand"),
    ] {
        let run = derived(name);
        assert_failed(&run, &["integrity validation failed", fragment]);
        let sig = &run.result(0)["failed-signatures"][0];
        assert_eq!(check(sig, "integrity")["status"], "failed", "{name}");
        // Nothing else is judged once integrity fails.
        assert_eq!(sig["checks"].as_array().unwrap().len(), 1, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// §5: the mock envelopes, through the library with a storage double.

mod mock {
    use super::*;
    use crate::one_signature::{vector_subject, OneSignatureStore};
    use sign_action::oci::Reference;
    use sign_action::policy::{TrustPolicyDocument, TrustStore};
    use sign_action::revocation::RevocationChecker;
    use sign_action::verify::{verify_artifact, EffectivePolicy, VerifySettings};
    use std::sync::Arc;

    const REFERENCE: &str = "registry.acme-rockets.io/software/net-monitor@sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e";

    /// The transcribed notation-go policy at `level`, optionally with other trust stores.
    async fn run(file: &str, level: &str, stores: Option<&[&str]>) -> Value {
        let mut doc: Value = serde_json::from_slice(
            &std::fs::read(vector("derived/mock-trustpolicy.oci.json")).unwrap(),
        )
        .unwrap();
        doc["trustPolicies"][0]["signatureVerification"]["level"] = json!(level);
        if let Some(stores) = stores {
            doc["trustPolicies"][0]["trustStores"] = json!(stores);
        }
        let policy = TrustPolicyDocument::parse_str(&doc.to_string()).unwrap();
        let reference = Reference::parse(REFERENCE).unwrap();
        let statement = policy
            .select(&reference.fully_qualified_without_digest())
            .unwrap();
        let store = TrustStore::open(&vector("envelopes-mock/truststore")).unwrap();
        let effective = EffectivePolicy::from_statement(statement, &store).unwrap();
        let settings = VerifySettings {
            revocation: Some(Arc::new(RevocationChecker::new().unwrap())),
            ..VerifySettings::default()
        };
        let envelope = std::fs::read(vector(&format!("envelopes-mock/{file}"))).unwrap();
        let storage = OneSignatureStore::with_subject(vector_subject(), envelope);
        let result = verify_artifact(&storage, REFERENCE, &reference, &effective, &settings).await;
        serde_json::to_value(&result).unwrap()
    }

    fn failure(result: &Value) -> String {
        result["failed-signatures"][0]["failure"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test]
    async fn ca_valid_passes_at_every_level() {
        for level in ["strict", "permissive", "audit"] {
            let r = run("ca_valid_sig_env.json", level, None).await;
            assert_eq!(r["verified"], true, "{level}: {r}");
            assert_eq!(r["signature"]["signing-scheme"], "notary.x509");
            assert!(
                warnings(&r)
                    .iter()
                    .all(|w| !w.contains("validation failed")),
                "{r}"
            );
        }
    }

    #[tokio::test]
    async fn ca_invalid_fails_integrity_at_every_level() {
        for level in ["strict", "permissive", "audit"] {
            let r = run("ca_invalid_sig_env.json", level, None).await;
            assert_eq!(r["verified"], false, "{level}: {r}");
            let sig = &r["failed-signatures"][0];
            assert_eq!(check(sig, "integrity")["status"], "failed");
            assert!(
                failure(&r).starts_with("integrity validation failed"),
                "{r}"
            );
            // The vector appends "=" to the payload (notation-go: "illegal base64 data at
            // input byte 242", the payload's length).
            assert!(failure(&r).contains("\"payload\" is not base64url"), "{r}");
        }
    }

    #[tokio::test]
    async fn ca_expired_fails_strict_and_is_logged_otherwise() {
        let r = run("ca_expired_sig_env.json", "strict", None).await;
        assert_eq!(r["verified"], false, "{r}");
        assert!(failure(&r).contains("expiry validation failed"), "{r}");
        assert!(failure(&r).contains("2022-07-29T23:59:00Z"), "{r}");
        for level in ["permissive", "audit"] {
            let r = run("ca_expired_sig_env.json", level, None).await;
            assert_eq!(r["verified"], true, "{level}: {r}");
            let expiry = check(&r["signature"], "expiry");
            assert_eq!(expiry["status"], "failed");
            assert_eq!(expiry["enforcement"], "logged");
        }
    }

    #[tokio::test]
    async fn signing_authority_needs_a_signing_authority_store() {
        let r = run("sa_valid_sig_env.json", "strict", None).await;
        assert_eq!(r["verified"], true, "{r}");
        assert_eq!(
            r["signature"]["signing-scheme"],
            "notary.x509.signingAuthority"
        );
        let r = run(
            "sa_valid_sig_env.json",
            "strict",
            Some(&["ca:valid-trust-store"]),
        )
        .await;
        assert_eq!(r["verified"], false, "{r}");
        assert!(
            failure(&r).contains("no trusted certificates are found to verify authenticity"),
            "{r}"
        );
        // And the converse: a notary.x509 signature is not trusted through signingAuthority.
        let r = run(
            "ca_valid_sig_env.json",
            "strict",
            Some(&["signingAuthority:valid-trust-store"]),
        )
        .await;
        assert_eq!(r["verified"], false, "{r}");
    }

    #[tokio::test]
    async fn verification_plugin_fails_at_every_level() {
        for level in ["strict", "permissive", "audit"] {
            let r = run("ca_plugin_sig_env.json", level, None).await;
            assert_eq!(r["verified"], false, "{level}: {r}");
            assert!(failure(&r).contains("plugin-name"), "{r}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// §5 of the task: our own signatures, over the real registry and over an OCI layout.

fn write_policy(dir: &Path, level: &str, store: &str, identities: &[&str]) -> PathBuf {
    let doc = json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "round-trip",
            "registryScopes": ["*"],
            "signatureVerification": {"level": level},
            "trustStores": [format!("ca:{store}")],
            "trustedIdentities": identities,
        }],
    });
    let path = dir.join(format!("policy-{level}-{}.json", support::random_hex(4)));
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

fn sign(references: &[String], key: &support::TestKey, extra: &[&str]) {
    let out = bin()
        .arg("sign")
        .args(references)
        .arg("--key")
        .arg(&key.key)
        .arg("--cert")
        .arg(&key.chain)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sign failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn every_key_type_and_format_round_trips_over_the_registry() {
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let dir = tempfile::tempdir().unwrap();
    let mut refs = Vec::new();
    let mut certs = Vec::new();
    let mut expected = Vec::new();
    for spec in ALL_SPECS {
        let key = make_test_key(dir.path(), spec);
        for format in ["jws", "cose"] {
            let repo = format!("rt/{}-{format}", spec.name().to_lowercase());
            let image = push_test_image(&client, &registry.host, &repo, "v1").await;
            let reference = format!("{}/{repo}@{}", registry.host, image.digest);
            sign(
                std::slice::from_ref(&reference),
                &key,
                &["--signature-format", format],
            );
            refs.push(reference);
            expected.push(format);
        }
        if spec == KeySpec::EcP256 {
            // The newer manifest form (artifactType + empty config) verifies too.
            let repo = "rt/artifact-type-form";
            let image = push_test_image(&client, &registry.host, repo, "v1").await;
            let reference = format!("{}/{repo}@{}", registry.host, image.digest);
            sign(
                std::slice::from_ref(&reference),
                &key,
                &[
                    "--manifest-form",
                    "artifact-type",
                    "--signature-format",
                    "cose",
                ],
            );
            refs.push(reference);
            expected.push("cose");
        }
        certs.push(key.cert);
    }
    let entries: Vec<(&str, &str, &Path)> =
        certs.iter().map(|c| ("ca", "rt", c.as_path())).collect();
    let store = trust_store(&entries);
    let policy = write_policy(dir.path(), "strict", "rt", &["*"]);
    let run = verify(&refs, &policy, store.path(), &[]);
    assert_verified(&run);
    for (i, format) in expected.iter().enumerate() {
        let r = run.result(i);
        assert_eq!(r["verified"], true, "{r}");
        assert_eq!(r["signature"]["format"], *format, "{r}");
        for c in ["integrity", "authenticity", "expiry", "authenticTimestamp"] {
            assert_eq!(check(&r["signature"], c)["status"], "passed", "{c}: {r}");
        }
    }

    // A trust store holding only some other certificate: authenticity fails for all.
    let other = make_named_test_key(dir.path(), "stranger", KeySpec::EcP256);
    let wrong_store = trust_store(&[("ca", "rt", &other.cert)]);
    let run = verify(&refs[..2], &policy, wrong_store.path(), &[]);
    assert_eq!(run.code, 1, "{}", run.describe());
    for i in 0..2 {
        assert!(
            error_of(run.result(i)).contains("authenticity validation failed"),
            "{}",
            run.describe()
        );
    }
}

#[tokio::test]
async fn registry_failures_tamper_identity_expiry_and_extra_signers() {
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let dir = tempfile::tempdir().unwrap();
    let key = make_named_test_key(dir.path(), "trusted", KeySpec::EcP256);
    let stranger = make_named_test_key(dir.path(), "stranger", KeySpec::EcP256);
    let store = trust_store(&[("ca", "rt", &key.cert)]);
    let strict = write_policy(dir.path(), "strict", "rt", &["*"]);
    let host = registry.host.clone();

    // Tampering: A's signature manifest re-pointed at B (a new manifest with B as subject,
    // listed in B's tag-schema index). The envelope still signs A.
    let a = push_test_image(&client, &host, "rt/tamper", "a").await;
    let b = push_test_image(&client, &host, "rt/tamper", "b").await;
    let ref_a = format!("{host}/rt/tamper@{}", a.digest);
    let ref_b = format!("{host}/rt/tamper@{}", b.digest);
    sign(std::slice::from_ref(&ref_a), &key, &[]);
    assert_verified(&verify(
        std::slice::from_ref(&ref_a),
        &strict,
        store.path(),
        &[],
    ));
    let tag_a = a.digest.replace(':', "-");
    let (status, _, index) = registry
        .raw_get(
            &format!("/v2/rt/tamper/manifests/{tag_a}"),
            "application/vnd.oci.image.index.v1+json",
        )
        .await;
    assert_eq!(status, 200);
    let index: Value = serde_json::from_slice(&index).unwrap();
    let sig_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let (_, _, sig) = registry
        .raw_get(
            &format!("/v2/rt/tamper/manifests/{sig_digest}"),
            OCI_MANIFEST,
        )
        .await;
    let mut sig: Value = serde_json::from_slice(&sig).unwrap();
    sig["subject"] = serde_json::to_value(&b).unwrap();
    let forged = serde_json::to_vec(&sig).unwrap();
    let forged_desc = Descriptor::of_bytes(OCI_MANIFEST, &forged);
    assert_eq!(
        registry
            .raw_put(
                &format!("/v2/rt/tamper/manifests/{}", forged_desc.digest),
                OCI_MANIFEST,
                forged
            )
            .await,
        201
    );
    let mut entry = index["manifests"][0].clone();
    entry["digest"] = json!(forged_desc.digest);
    entry["size"] = json!(forged_desc.size);
    let forged_index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry],
    });
    assert_eq!(
        registry
            .raw_put(
                &format!("/v2/rt/tamper/manifests/{}", b.digest.replace(':', "-")),
                "application/vnd.oci.image.index.v1+json",
                serde_json::to_vec(&forged_index).unwrap()
            )
            .await,
        201
    );
    let run = verify(std::slice::from_ref(&ref_b), &strict, store.path(), &[]);
    assert_failed(
        &run,
        &["integrity validation failed", "content descriptor mismatch"],
    );

    // By tag: verified, with a warning to pin the digest.
    let run = verify(&[format!("{host}/rt/tamper:a")], &strict, store.path(), &[]);
    assert_verified(&run);
    assert_eq!(run.result(0)["digest"], a.digest.as_str());
    assert!(warnings(run.result(0))
        .iter()
        .any(|w| w.contains("tag resolved to")));
    // Unsigned: fails, saying so.
    let n = push_test_image(&client, &host, "rt/unsigned", "v1").await;
    let run = verify(
        &[format!("{host}/rt/unsigned@{}", n.digest)],
        &strict,
        store.path(),
        &[],
    );
    assert_failed(&run, &["no signature is associated"]);

    // Scope selection: the statement naming the repository wins over "*", which here
    // trusts nobody; a policy without "*" leaves other repositories without a policy.
    let scoped = dir.path().join("scoped.json");
    std::fs::write(
        &scoped,
        json!({"version": "1.0", "trustPolicies": [
            {"name": "exact", "registryScopes": [format!("{host}/rt/tamper")],
             "signatureVerification": {"level": "strict"},
             "trustStores": ["ca:rt"], "trustedIdentities": ["*"]},
            {"name": "others", "registryScopes": [format!("{host}/rt/unsigned")],
             "signatureVerification": {"level": "skip"}},
        ]})
        .to_string(),
    )
    .unwrap();
    let run = verify(
        &[
            ref_a.clone(),
            format!("{host}/rt/unsigned@{}", n.digest),
            format!("{host}/rt/nowhere@{}", n.digest),
        ],
        &scoped,
        store.path(),
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.describe());
    assert_eq!(run.result(0)["verified"], true);
    assert_eq!(run.result(0)["policy"], "exact");
    assert_eq!(run.result(1)["verified"], true);
    assert_eq!(run.result(1)["policy"], "others");
    assert_eq!(run.result(2)["verified"], false);
    assert!(error_of(run.result(2)).contains("no applicable trust policy"));

    // A policy with a tsa store requires a timestamp; this signature has none (README §6
    // withoutTimestamp): strict fails the authentic-timestamp check.
    let tsa_store = trust_store(&[
        ("ca", "rt", &key.cert),
        (
            "tsa",
            "ts",
            &fixtures().join("timestamp/GlobalSignRootCA.crt"),
        ),
    ]);
    let tsa_policy = dir.path().join("tsa.json");
    std::fs::write(
        &tsa_policy,
        json!({"version": "1.0", "trustPolicies": [{
            "name": "tsa", "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:rt", "tsa:ts"], "trustedIdentities": ["*"]}]})
        .to_string(),
    )
    .unwrap();
    let run = verify(
        std::slice::from_ref(&ref_a),
        &tsa_policy,
        tsa_store.path(),
        &[],
    );
    assert_failed(
        &run,
        &[
            "authenticTimestamp validation failed",
            "no timestamp countersignature was found in the signature envelope",
        ],
    );

    // Wrong identity: the certificate is trusted but its subject is not the one required.
    let picky = write_policy(
        dir.path(),
        "strict",
        "rt",
        &["x509.subject: C=US, ST=WA, L=Seattle, O=Notary Test, CN=somebody-else"],
    );
    let run = verify(std::slice::from_ref(&ref_a), &picky, store.path(), &[]);
    assert_failed(
        &run,
        &[
            "authenticity validation failed",
            "does not match any trusted identity",
        ],
    );
    let right = write_policy(
        dir.path(),
        "strict",
        "rt",
        &["x509.subject: C=US, ST=WA, L=Seattle, O=Notary Test, CN=trusted"],
    );
    assert_verified(&verify(
        std::slice::from_ref(&ref_a),
        &right,
        store.path(),
        &[],
    ));

    // Expired signature: strict fails, permissive passes with a warning.
    let e = push_test_image(&client, &host, "rt/expiring", "v1").await;
    let ref_e = format!("{host}/rt/expiring@{}", e.digest);
    sign(std::slice::from_ref(&ref_e), &key, &["--expiry", "1s"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let run = verify(std::slice::from_ref(&ref_e), &strict, store.path(), &[]);
    assert_failed(&run, &["expiry validation failed"]);
    let permissive = write_policy(dir.path(), "permissive", "rt", &["*"]);
    let run = verify(std::slice::from_ref(&ref_e), &permissive, store.path(), &[]);
    assert_verified(&run);
    assert!(warnings(run.result(0))
        .iter()
        .any(|w| w.contains("expiry") && w.contains("expired")));

    // An untrusted signer next to a trusted one (signed first, so tried first).
    let m = push_test_image(&client, &host, "rt/multi", "v1").await;
    let ref_m = format!("{host}/rt/multi@{}", m.digest);
    sign(std::slice::from_ref(&ref_m), &stranger, &[]);
    sign(std::slice::from_ref(&ref_m), &key, &[]);
    let run = verify(std::slice::from_ref(&ref_m), &strict, store.path(), &[]);
    assert_verified(&run);
    assert!(run.result(0)["signature"]["signer-subject"]
        .as_str()
        .unwrap()
        .contains("CN=trusted"));
    // Only the stranger's signature: fails.
    let s = push_test_image(&client, &host, "rt/stranger", "v1").await;
    let ref_s = format!("{host}/rt/stranger@{}", s.digest);
    sign(std::slice::from_ref(&ref_s), &stranger, &[]);
    let run = verify(std::slice::from_ref(&ref_s), &strict, store.path(), &[]);
    assert_failed(&run, &["authenticity validation failed"]);

    // Required user metadata.
    let u = push_test_image(&client, &host, "rt/meta", "v1").await;
    let ref_u = format!("{host}/rt/meta@{}", u.digest);
    sign(
        std::slice::from_ref(&ref_u),
        &key,
        &["-m", "purpose=ci", "-m", "team=a"],
    );
    assert_verified(&verify(
        std::slice::from_ref(&ref_u),
        &strict,
        store.path(),
        &["-m", "purpose=ci", "-m", "team=a"],
    ));
    let run = verify(
        std::slice::from_ref(&ref_u),
        &strict,
        store.path(),
        &["-m", "purpose=prod"],
    );
    assert_failed(&run, &["purpose=prod", "purpose=ci"]);
    let run = verify(
        std::slice::from_ref(&ref_u),
        &strict,
        store.path(),
        &["-m", "stage=release"],
    );
    assert_failed(&run, &["stage", "does not carry"]);
    // A second signature carrying other metadata: the one that matches wins, whichever
    // order they are listed in.
    sign(std::slice::from_ref(&ref_u), &key, &["-m", "purpose=prod"]);
    for wanted in ["purpose=ci", "purpose=prod"] {
        let run = verify(
            std::slice::from_ref(&ref_u),
            &strict,
            store.path(),
            &["-m", wanted],
        );
        assert_verified(&run);
    }
    let run = verify(
        std::slice::from_ref(&ref_u),
        &strict,
        store.path(),
        &["-m", "purpose=qa"],
    );
    assert_failed(&run, &["none of the 2 signatures verified", "purpose=qa"]);
}

#[tokio::test]
async fn signature_limit_is_reported() {
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let dir = tempfile::tempdir().unwrap();
    let key = make_named_test_key(dir.path(), "trusted", KeySpec::EcP256);
    let stranger = make_named_test_key(dir.path(), "stranger", KeySpec::EcP256);
    let store = trust_store(&[("ca", "rt", &key.cert)]);
    let strict = write_policy(dir.path(), "strict", "rt", &["*"]);
    let image = push_test_image(&client, &registry.host, "rt/many", "v1").await;
    let reference = format!("{}/rt/many@{}", registry.host, image.digest);
    let many: Vec<String> = (0..101).map(|_| reference.clone()).collect();
    sign(&many, &stranger, &[]);
    let run = verify(
        std::slice::from_ref(&reference),
        &strict,
        store.path(),
        &["--max-signatures", "100"],
    );
    assert_failed(
        &run,
        &[
            "limit of 100 signatures was reached",
            "101 signatures exist",
        ],
    );
    assert_eq!(
        run.result(0)["failed-signatures"].as_array().unwrap().len(),
        100
    );
}

#[test]
fn round_trip_over_an_oci_layout() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("layout");
    support::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-layout"),
        &copy,
    );
    let target = format!("{}:v1", copy.display());
    let jws = make_named_test_key(dir.path(), "layout-jws", KeySpec::Rsa3072);
    let cose = make_named_test_key(dir.path(), "layout-cose", KeySpec::EcP384);
    sign(std::slice::from_ref(&target), &jws, &["--oci-layout"]);
    sign(
        std::slice::from_ref(&target),
        &cose,
        &["--oci-layout", "--signature-format", "cose"],
    );
    let strict = write_policy(dir.path(), "strict", "rt", &["*"]);
    for (key, format) in [(&jws, "jws"), (&cose, "cose")] {
        let store = trust_store(&[("ca", "rt", &key.cert)]);
        let run = verify_layout(&copy, ":v1", &strict, store.path());
        assert_verified(&run);
        assert_eq!(run.result(0)["signature"]["format"], format);
    }
    let nobody = make_named_test_key(dir.path(), "nobody", KeySpec::EcP256);
    let store = trust_store(&[("ca", "rt", &nobody.cert)]);
    let run = verify_layout(&copy, ":v1", &strict, store.path());
    assert_failed(&run, &["none of the 2 signatures verified"]);
}

// ---------------------------------------------------------------------------------------------
// Referrers API with pagination and client-side filtering.

#[test]
fn referrers_api_pages_are_followed_and_non_signatures_ignored() {
    let server = support::oci_server::OciServer::start(2);
    let dir = tempfile::tempdir().unwrap();
    let layer = server.put_blob(b"layer");
    let config = server.put_blob(b"{\"os\":\"linux\"}");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 14},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5}],
    })
    .to_string();
    let digest = server.put_manifest("ref/app", OCI_MANIFEST, manifest.as_bytes(), Some("v1"));
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len()});
    // Two SBOM referrers that are not signatures.
    let empty = server.put_blob(b"{}");
    for i in 0..2 {
        let sbom = server.put_blob(format!("{{\"sbom\":{i}}}").as_bytes());
        let m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/spdx+json", "digest": sbom, "size": 10}],
            "subject": subject,
        })
        .to_string();
        server.put_manifest("ref/app", OCI_MANIFEST, m.as_bytes(), None);
    }
    let reference = format!("{}/ref/app@{digest}", server.addr);
    let trusted = make_named_test_key(dir.path(), "trusted", KeySpec::EcP256);
    let stranger = make_named_test_key(dir.path(), "stranger", KeySpec::EcP256);
    sign(&[reference.clone(), reference.clone()], &stranger, &[]);
    sign(std::slice::from_ref(&reference), &trusted, &[]);
    // 5 referrers, 2 per page: 3 pages.
    let before = server.referrer_request_count();
    let out = bin()
        .args(["list", &reference, "--output", "json"])
        .output()
        .unwrap();
    let list = Run::of(out);
    assert_eq!(list.code, 0, "{}", list.describe());
    let sigs = list.json["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 3, "{}", list.describe());
    for s in sigs {
        assert_eq!(s["artifact-type"], "application/vnd.cncf.notary.signature");
    }
    assert!(
        server.referrer_request_count() - before >= 3,
        "pagination not followed: {} referrers requests",
        server.referrer_request_count() - before
    );
    let store = trust_store(&[("ca", "rt", &trusted.cert)]);
    let strict = write_policy(dir.path(), "strict", "rt", &["*"]);
    let before = server.referrer_request_count();
    let run = verify(std::slice::from_ref(&reference), &strict, store.path(), &[]);
    assert_verified(&run);
    assert!(run.result(0)["signature"]["signer-subject"]
        .as_str()
        .unwrap()
        .contains("CN=trusted"));
    assert!(server.referrer_request_count() - before >= 3);
    // SBOMs never reach the verifier: only the strangers' signatures may have failed.
    for f in run.result(0)["failed-signatures"].as_array().unwrap() {
        assert!(f["signer-subject"].as_str().unwrap().contains("stranger"));
    }
}

// ---------------------------------------------------------------------------------------------
// list / inspect.

#[test]
fn inspect_reports_the_timestamped_signature() {
    let dir = layout("e2e-with-timestamped-signature");
    let out = bin()
        .args(["inspect", "--oci-layout"])
        .arg(format!("{}:v1", dir.display()))
        .args(["--output", "json"])
        .output()
        .unwrap();
    let run = Run::of(out);
    assert_eq!(run.code, 0, "{}", run.describe());
    let j = &run.json;
    assert_eq!(
        j["digest"],
        "sha256:53b0191218aed9a3c1f7c661736ac40cfc8eb928642348fd843ba3f0483c0c20"
    );
    let sigs = j["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    let s = &sigs[0];
    assert_eq!(
        s["digest"],
        "sha256:6a5cd3a886707a317935dcaf13954fc80ef9aeb665262b6ae4fe469ad7ea3aea"
    );
    assert_eq!(s["media-type"], "application/jose+json");
    assert_eq!(s["signing-scheme"], "notary.x509");
    assert_eq!(s["signing-time"], "2025-01-21T09:17:46Z");
    assert_eq!(s["expiry"], "2025-01-21T12:39:46Z");
    assert_eq!(s["timestamped"], true);
    // The values notation's own e2e test asserts for this layout's timestamp.
    let ts = &s["timestamp"];
    assert_eq!(ts["range-start"], "2025-01-21T09:17:46.141Z");
    assert_eq!(ts["range-end"], "2025-01-21T09:17:47.141Z");
    let tsa: Vec<&str> = ts["tsa-certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(tsa.iter().any(|f| f.starts_with("36e731cf")), "{tsa:?}");
    assert!(tsa.iter().any(|f| f.starts_with("59283806")), "{tsa:?}");
    assert_eq!(s["user-metadata"]["purpose"], "e2e");
    let chain = s["certificate-chain"].as_array().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(
        chain[0]["sha256-fingerprint"],
        "1717fa9d18f7e9c0f609499474adfe2b8e44172454f1d6e2183d5d04f79af475"
    );
    assert_eq!(
        chain[0]["subject"],
        "CN=testcert7,O=Notary,L=Seattle,ST=WA,C=US"
    );

    // list names the signature without reading the envelope: it must not claim anything
    // about timestamps it has not looked at.
    let out = bin()
        .args(["list", "--oci-layout"])
        .arg(format!("{}:v1", dir.display()))
        .args(["--output", "json"])
        .output()
        .unwrap();
    let run = Run::of(out);
    assert_eq!(run.code, 0, "{}", run.describe());
    let s = &run.json["signatures"][0];
    assert_eq!(
        s["digest"],
        "sha256:6a5cd3a886707a317935dcaf13954fc80ef9aeb665262b6ae4fe469ad7ea3aea"
    );
    assert!(s.get("timestamped").is_none(), "{s}");
}

// ---------------------------------------------------------------------------------------------
// Action mode.

#[test]
fn action_verify_writes_outputs_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = e2e_store();
    let output_file = dir.path().join("output");
    let summary_file = dir.path().join("summary");
    std::fs::write(&output_file, "").unwrap();
    std::fs::write(&summary_file, "").unwrap();
    let inline_policy = std::fs::read_to_string(policy("trustpolicy")).unwrap();
    let action = |images: &str| {
        std::fs::write(&output_file, "").unwrap();
        std::fs::write(&summary_file, "").unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sign-action"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("INPUT_IMAGES", images)
            .env("INPUT_TRUST-POLICY", &inline_policy)
            .env("INPUT_TRUST-STORE", store.path())
            .env("INPUT_OCI-LAYOUT", "true")
            .env("INPUT_SCOPE", LAYOUT_SCOPE)
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_STEP_SUMMARY", &summary_file)
            .args(["action", "verify"])
            .output()
            .unwrap();
        let outputs = parse_github_output(&std::fs::read_to_string(&output_file).unwrap());
        let summary = std::fs::read_to_string(&summary_file).unwrap();
        (Run::of(out), outputs, summary)
    };
    let valid = format!("{}:v1", layout("e2e-valid-signature").display());
    let (run, outputs, summary) = action(&valid);
    assert_eq!(run.code, 0, "{}", run.describe());
    assert_eq!(outputs["verified"], "true");
    let results: Value = serde_json::from_str(&outputs["results"]).unwrap();
    assert_eq!(results[0]["verified"], true);
    assert_eq!(results[0]["signature"]["digest"], E2E_SIGNATURE);
    let rows = table_rows(&summary);
    assert_eq!(rows.len(), 1, "{summary}");
    assert!(
        rows[0].contains("✓ verified") && rows[0].contains(E2E_SUBJECT),
        "{summary}"
    );
    // Result column plus one ✓ per check (integrity … revocation).
    assert_eq!(rows[0].matches('✓').count(), 6, "{summary}");

    // Two artifacts in one layout: the signed v1 and an unsigned v2 added next to it.
    let copy = dir.path().join("two");
    support::copy_dir(&layout("e2e-valid-signature"), &copy);
    let unsigned = add_unsigned_image(&copy, "v2");
    let (run, outputs, summary) = action(&format!(
        "{}@{SUBJECT}\n{}@{}",
        copy.display(),
        copy.display(),
        unsigned.digest
    ));
    assert_eq!(run.code, 1, "{}", run.describe());
    assert_eq!(outputs["verified"], "false");
    let results: Value = serde_json::from_str(&outputs["results"]).unwrap();
    assert_eq!(results.as_array().unwrap().len(), 2);
    assert_eq!(results[0]["verified"], true);
    assert_eq!(results[1]["verified"], false);
    assert!(results[1]["error"]
        .as_str()
        .unwrap()
        .contains("no signature is associated"));
    let rows = table_rows(&summary);
    assert_eq!(rows.len(), 2, "{summary}");
    assert!(rows[0].contains("✓ verified"), "{summary}");
    assert!(rows[1].contains("✗ failed"), "{summary}");
    assert!(run.stdout.contains("::error"), "{}", run.describe());

    // A malformed input is a configuration error: exit 2, nothing verified.
    let out = Command::new(env!("CARGO_BIN_EXE_sign-action"))
        .env_clear()
        .env("INPUT_IMAGES", &valid)
        .env("INPUT_TRUST-POLICY", &inline_policy)
        .env("INPUT_TRUST-STORE", store.path())
        .env("INPUT_OCI-LAYOUT", "true")
        .env("INPUT_SCOPE", LAYOUT_SCOPE)
        .env("INPUT_MAX-SIGNATURES", "many")
        .args(["action", "verify"])
        .output()
        .unwrap();
    let run = Run::of(out);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stdout.contains("max-signatures"), "{}", run.describe());
}

/// Add a small unsigned image manifest tagged `tag` to a layout.
fn add_unsigned_image(dir: &Path, tag: &str) -> Descriptor {
    let write = |bytes: &[u8]| {
        let d = Descriptor::of_bytes(OCI_MANIFEST, bytes);
        std::fs::write(
            dir.join("blobs/sha256")
                .join(d.digest.trim_start_matches("sha256:")),
            bytes,
        )
        .unwrap();
        d
    };
    let config = write(b"{\"unsigned\":true}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
        "layers": [],
    }))
    .unwrap();
    let desc = write(&manifest);
    let index_path = dir.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": OCI_MANIFEST, "digest": desc.digest, "size": desc.size,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }));
    std::fs::write(&index_path, index.to_string()).unwrap();
    desc
}

/// `name=value` and `name<<DELIM … DELIM` entries of a GITHUB_OUTPUT file.
fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        }
    }
    out
}

/// Data rows of the first markdown table (header and separator skipped).
fn table_rows(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(String::from)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Trust cannot be borrowed: certificates spliced into the (unsigned) JWS x5c header.

/// Sign a copy of the vectors' layout with `key` (JWS) and return the envelope bytes.
fn sign_vector_subject(dir: &Path, key: &support::TestKey) -> Vec<u8> {
    let copy = dir.join(format!("signed-{}", support::random_hex(4)));
    support::copy_dir(&layout("e2e-valid-signature"), &copy);
    let target = format!("{}@{SUBJECT}", copy.display());
    let out = bin()
        .args(["sign", "--oci-layout", &target, "--key"])
        .arg(&key.key)
        .arg("--cert")
        .arg(&key.chain)
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sig = report["signatures"][0]["signature-digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no signature digest in {report}"))
        .to_string();
    let manifest: Value = serde_json::from_slice(&blob(&copy, &sig)).unwrap();
    blob(&copy, manifest["layers"][0]["digest"].as_str().unwrap())
}

fn pem_to_der(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[test]
fn spliced_trusted_certificates_do_not_make_a_stranger_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let stranger = make_named_test_key(dir.path(), "stranger", KeySpec::EcP256);
    let trusted_leaf = make_named_test_key(dir.path(), "trusted", KeySpec::EcP256);
    let trusted_ca = support::make_test_chain(dir.path(), "acme", KeySpec::EcP256);
    let envelope = sign_vector_subject(dir.path(), &stranger);
    let strict = write_policy(dir.path(), "strict", "rt", &["*"]);
    let store = trust_store(&[
        ("ca", "rt", &trusted_leaf.cert),
        ("ca", "rt", &trusted_ca.root),
    ]);
    // Control: the untouched envelope is well-formed and simply untrusted.
    let control = layout_with_signature(&envelope, "application/jose+json");
    let run = verify_layout(control.path(), ":v1", &strict, store.path());
    assert_failed(&run, &["authenticity validation failed"]);
    let b64 = |der: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(der);
    for spliced in [&trusted_leaf.cert, &trusted_ca.root] {
        let mut jws: Value = serde_json::from_slice(&envelope).unwrap();
        jws["header"]["x5c"]
            .as_array_mut()
            .unwrap()
            .push(json!(b64(pem_to_der(spliced))));
        let forged = serde_json::to_vec(&jws).unwrap();
        let dir = layout_with_signature(&forged, "application/jose+json");
        let run = verify_layout(dir.path(), ":v1", &strict, store.path());
        assert_failed(&run, &["integrity validation failed"]);
        let sig = &run.result(0)["failed-signatures"][0];
        assert_eq!(check(sig, "integrity")["status"], "failed");
    }
}

// ---------------------------------------------------------------------------------------------
// Revocation end to end: a CA-issued chain whose CRLs are served on 127.0.0.1.

#[test]
fn revoked_or_unknown_revocation_status_fails_strict_and_is_logged_when_permissive() {
    let pki = pki::TestPki::new_with(false, true);
    pki.publish_crls();
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.pem");
    let mut pem = Vec::new();
    for f in pki.chain_files() {
        pem.extend(std::fs::read(f).unwrap());
    }
    std::fs::write(&chain, pem).unwrap();
    let key = support::TestKey {
        key: pki.inter.path("leaf.key"),
        cert: pki.leaf.clone(),
        chain: chain.clone(),
        root: pki.root.path("ca.pem"),
    };
    let copy = dir.path().join("layout");
    support::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-layout"),
        &copy,
    );
    sign(&[format!("{}:v1", copy.display())], &key, &["--oci-layout"]);
    let store = trust_store(&[("ca", "rt", &key.root)]);
    let strict = write_policy(dir.path(), "strict", "rt", &["*"]);
    let permissive = write_policy(dir.path(), "permissive", "rt", &["*"]);

    let run = verify_layout(&copy, ":v1", &strict, store.path());
    assert_verified(&run);
    assert_eq!(
        check(&run.result(0)["signature"], "revocation")["status"],
        "passed"
    );
    let hits = pki.crl_server.hits();
    assert!(hits >= 2, "both CRLs fetched, {hits} requests");

    // The leaf is revoked.
    pki.inter.revoke(&pki.leaf, &[]);
    pki.publish_crls();
    let run = verify_layout(&copy, ":v1", &strict, store.path());
    assert_failed(&run, &["revocation validation failed", "revoked"]);
    let run = verify_layout(&copy, ":v1", &permissive, store.path());
    assert_verified(&run);
    let revocation = check(&run.result(0)["signature"], "revocation");
    assert_eq!(revocation["status"], "failed");
    assert_eq!(revocation["enforcement"], "logged");
    assert!(warnings(run.result(0))
        .iter()
        .any(|w| w.contains("revocation") && w.contains("revoked")));

    // No CRL to be had: the status is unknown, which strict treats as a failure too.
    for f in ["root.crl", "intermediate.crl"] {
        std::fs::remove_file(pki.crl_server.dir.join(f)).unwrap();
    }
    let run = verify_layout(&copy, ":v1", &strict, store.path());
    assert_failed(&run, &["revocation validation failed"]);
    let detail = check(&run.result(0)["failed-signatures"][0], "revocation")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("unknown"), "{detail}");
}
