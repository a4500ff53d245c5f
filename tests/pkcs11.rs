//! Signing with keys generated inside a real SoftHSM2 token, through the `sign-action` binary:
//! the private key never exists outside the token. Each test gets its own token directory
//! (`SOFTHSM2_CONF` in a temp dir), so tests run in parallel. The certificate for the token key
//! is issued by a file-based test CA from the token's exported public key. Signatures are
//! verified by our verifier (`sign-action verify`, strict policy trusting the CA) and by the
//! independent Python implementation.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::copy_dir;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "7391-pkcs11-test-pin";
const SO_PIN: &str = "55512345";
const TOKEN: &str = "sign-action-test";

struct Hsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Hsm {
    /// A fresh SoftHSM2 store with one initialised token.
    fn new() -> Hsm {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("tokendir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("conf");
        let hsm = Hsm { dir, conf };
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &hsm.conf)
            .args(["--init-token", "--free", "--label", TOKEN])
            .args(["--so-pin", SO_PIN, "--pin", PIN])
            .output()
            .expect("softhsm2-util (install softhsm2)");
        check(&out, "softhsm2-util --init-token");
        hsm
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn tool(&self) -> Command {
        let mut cmd = Command::new("pkcs11-tool");
        cmd.env("SOFTHSM2_CONF", &self.conf)
            .args(["--module", MODULE, "--token-label", TOKEN]);
        cmd
    }

    /// Generate a key pair on the token and return its public key as PEM.
    fn generate(&self, key_type: &str, label: &str, id: &str) -> PathBuf {
        let out = self
            .tool()
            .args([
                "--login",
                "--pin",
                PIN,
                "--keypairgen",
                "--key-type",
                key_type,
            ])
            .args(["--label", label, "--id", id])
            .output()
            .expect("pkcs11-tool (install opensc)");
        check(&out, "pkcs11-tool --keypairgen");
        let der = self.path().join(format!("{label}.pub.der"));
        let out = self
            .tool()
            .args(["--read-object", "--type", "pubkey", "--id", id, "-o"])
            .arg(&der)
            .output()
            .expect("pkcs11-tool");
        check(&out, "pkcs11-tool --read-object");
        let pem = self.path().join(format!("{label}.pub.pem"));
        openssl(
            &["pkey", "-pubin", "-inform", "DER", "-in"],
            &der,
            &["-out"],
            &pem,
        );
        pem
    }

    /// Store a DER certificate on the token next to the key with `id`.
    fn write_cert(&self, cert_pem: &Path, id: &str, label: &str) {
        let der = self.path().join(format!("{label}.cert.der"));
        openssl(
            &["x509", "-outform", "DER", "-in"],
            cert_pem,
            &["-out"],
            &der,
        );
        let out = self
            .tool()
            .args(["--login", "--pin", PIN, "--write-object"])
            .arg(&der)
            .args(["--type", "cert", "--id", id, "--label", label])
            .output()
            .expect("pkcs11-tool");
        check(&out, "pkcs11-tool --write-object");
    }
}

fn openssl(before: &[&str], a: &Path, middle: &[&str], b: &Path) {
    let out = Command::new("openssl")
        .args(before)
        .arg(a)
        .args(middle)
        .arg(b)
        .output()
        .expect("openssl");
    check(&out, "openssl");
}

/// A fresh test root and a code-signing leaf for `pubkey_pem` (the token's key).
/// Returns (leaf PEM, chain PEM leaf+root, root PEM).
fn issue_for(dir: &Path, name: &str, pubkey_pem: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let issued = support::issue_for_public_key(dir, name, pubkey_pem);
    (issued.leaf, issued.chain, issued.root)
}

fn bin(hsm: &Hsm) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sign-action"));
    cmd.env_remove("SIGN_ACTION_KEY_PASSWORD")
        .env_remove("SIGN_ACTION_PKCS11_PIN")
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env("DOCKER_CONFIG", "/nonexistent-docker-config");
    cmd
}

fn layout(hsm: &Hsm) -> String {
    let path = hsm.path().join("layout");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-layout"),
        &path,
    );
    format!("{}:v1", path.display())
}

/// The envelope blob of the signature manifest `signature_digest` in the layout.
fn envelope_of(hsm: &Hsm, signature_digest: &str) -> (PathBuf, String) {
    let blobs = hsm.path().join("layout/blobs/sha256");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(blobs.join(&signature_digest["sha256:".len()..])).expect("manifest"),
    )
    .expect("manifest json");
    let layer = &manifest["layers"][0];
    let digest = layer["digest"].as_str().expect("layer digest");
    let media_type = layer["mediaType"].as_str().expect("media type").to_string();
    (blobs.join(&digest["sha256:".len()..]), media_type)
}

fn python_verify(envelope: &Path, media_type: &str) -> Value {
    let format = if media_type == "application/cose" {
        "cose"
    } else {
        "jws"
    };
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_envelope.py"))
        .arg(format)
        .arg(envelope)
        .output()
        .expect("python3");
    check(&out, "verify_envelope.py");
    serde_json::from_slice(&out.stdout).expect("python summary")
}

/// A notation-style trust store trusting `root` and a strict policy for every scope.
fn trust(hsm: &Hsm, root: &Path) -> (PathBuf, PathBuf) {
    let store = hsm.path().join("notation");
    let ca = store.join("truststore/x509/ca/hsm");
    let _ = std::fs::remove_dir_all(&ca);
    std::fs::create_dir_all(&ca).expect("mkdir");
    std::fs::copy(root, ca.join("root.pem")).expect("copy root");
    let policy = store.join("trustpolicy.json");
    std::fs::write(
        &policy,
        r#"{"version":"1.0","trustPolicies":[{"name":"hsm","registryScopes":["*"],
            "signatureVerification":{"level":"strict"},"trustStores":["ca:hsm"],
            "trustedIdentities":["*"]}]}"#,
    )
    .expect("policy");
    (policy, store)
}

fn verify_with_ours(hsm: &Hsm, reference: &str, root: &Path) -> Output {
    let (policy, store) = trust(hsm, root);
    bin(hsm)
        .args([
            "verify",
            "--oci-layout",
            reference,
            "--scope",
            "example.local/hello",
        ])
        .arg("--trust-policy")
        .arg(&policy)
        .arg("--trust-store")
        .arg(&store)
        .output()
        .expect("sign-action verify")
}

fn sign_json(cmd: &mut Command) -> (Output, Value) {
    let out = cmd.output().expect("sign-action sign");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

/// Sign in both formats with a token key, verify both ways, and make sure the PIN is never
/// printed.
fn sign_and_verify(key_type: &str, expected_alg: &str, chain_on_token: bool) {
    let hsm = Hsm::new();
    let id = "a1b2";
    let pubkey = hsm.generate(key_type, "signing-key", id);
    let (leaf, chain, root) = issue_for(hsm.path(), "hsm-leaf", &pubkey);
    if chain_on_token {
        hsm.write_cert(&leaf, id, "signing-cert");
        hsm.write_cert(&root, "ff00", "root-cert");
    }
    let reference = layout(&hsm);
    for format in ["jws", "cose"] {
        let mut cmd = bin(&hsm);
        cmd.args(["sign", "--oci-layout", &reference, "-o", "json"])
            .args(["--signature-format", format])
            .args(["--pkcs11-module", MODULE, "--pkcs11-token", TOKEN])
            .args(["--pkcs11-key", &format!("id:{id}")])
            .env("SIGN_ACTION_PKCS11_PIN", PIN);
        if !chain_on_token {
            cmd.arg("--cert").arg(&chain);
        }
        let (out, report) = sign_json(&mut cmd);
        check(&out, "sign-action sign --pkcs11-module");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(PIN), "the PIN was printed: {all}");
        let signed = &report["signatures"][0];
        assert_eq!(signed["signature-format"], format);
        let (envelope, media_type) =
            envelope_of(&hsm, signed["signature-digest"].as_str().expect("digest"));
        let summary = python_verify(&envelope, &media_type);
        assert_eq!(summary["alg"], expected_alg, "{summary}");
        // The whole chain is in the envelope, whichever way it was supplied.
        assert_eq!(
            summary["chain"].as_array().map(|c| c.len()),
            Some(2),
            "{summary}"
        );
    }
    let out = verify_with_ours(&hsm, &reference, &root);
    check(&out, "sign-action verify");
    // The same signatures under a trust store holding an unrelated root must not verify.
    let other_pub = hsm.generate("EC:prime256v1", "unrelated", "0e");
    let (_, _, other_root) = issue_for(hsm.path(), "unrelated-leaf", &other_pub);
    let out = verify_with_ours(&hsm, &reference, &other_root);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn rsa_3072_token_key_signs_ps384_with_chain_from_file() {
    sign_and_verify("rsa:3072", "PS384", false);
}

#[test]
fn p256_token_key_signs_es256_with_chain_from_token() {
    sign_and_verify("EC:prime256v1", "ES256", true);
}

#[test]
fn key_by_label_and_token_by_slot_default() {
    // No --pkcs11-token: the only token is used; the key is found by label.
    let hsm = Hsm::new();
    let pubkey = hsm.generate("EC:prime256v1", "by-label", "07");
    let (_, chain, root) = issue_for(hsm.path(), "label-leaf", &pubkey);
    let reference = layout(&hsm);
    let (out, report) = sign_json(
        bin(&hsm)
            .args(["sign", "--oci-layout", &reference, "-o", "json"])
            .args(["--pkcs11-module", MODULE, "--pkcs11-key", "label:by-label"])
            .args(["--pkcs11-pin", PIN])
            .arg("--cert")
            .arg(&chain),
    );
    check(&out, "sign by label");
    assert_eq!(report["signatures"].as_array().map(Vec::len), Some(1));
    check(&verify_with_ours(&hsm, &reference, &root), "verify");
}

#[test]
fn wrong_pin_fails_without_printing_it() {
    let hsm = Hsm::new();
    let pubkey = hsm.generate("EC:prime256v1", "k", "01");
    let (_, chain, _) = issue_for(hsm.path(), "pin-leaf", &pubkey);
    let reference = layout(&hsm);
    let wrong = "wrong-pin-0000-visible?";
    let out = bin(&hsm)
        .args(["sign", "--oci-layout", &reference])
        .args(["--pkcs11-module", MODULE, "--pkcs11-key", "id:01"])
        .env("SIGN_ACTION_PKCS11_PIN", wrong)
        .arg("--cert")
        .arg(&chain)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("login failed"), "{err}");
    assert!(!err.contains(wrong), "{err}");
    // No PIN at all: the token has no PIN pad, so this is refused before C_Login.
    let out = bin(&hsm)
        .args(["sign", "--oci-layout", &reference])
        .args(["--pkcs11-module", MODULE, "--pkcs11-key", "id:01"])
        .arg("--cert")
        .arg(&chain)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no PIN was given"), "{err}");
}

#[test]
fn certificate_of_another_key_is_refused() {
    let hsm = Hsm::new();
    let signing = hsm.generate("EC:prime256v1", "signing", "01");
    let other = hsm.generate("EC:prime256v1", "other", "02");
    let _ = signing;
    let (_, chain, _) = issue_for(hsm.path(), "other-leaf", &other);
    let reference = layout(&hsm);
    let out = bin(&hsm)
        .args(["sign", "--oci-layout", &reference])
        .args(["--pkcs11-module", MODULE, "--pkcs11-key", "id:01"])
        .env("SIGN_ACTION_PKCS11_PIN", PIN)
        .arg("--cert")
        .arg(&chain)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match the leaf certificate"), "{err}");
}

#[test]
fn missing_key_and_token_are_named() {
    let hsm = Hsm::new();
    let pubkey = hsm.generate("EC:prime256v1", "k", "01");
    let (_, chain, _) = issue_for(hsm.path(), "missing-leaf", &pubkey);
    let reference = layout(&hsm);
    let run = |token: &str, key: &str| {
        let out = bin(&hsm)
            .args(["sign", "--oci-layout", &reference])
            .args(["--pkcs11-module", MODULE, "--pkcs11-token", token])
            .args(["--pkcs11-key", key])
            .env("SIGN_ACTION_PKCS11_PIN", PIN)
            .arg("--cert")
            .arg(&chain)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(TOKEN, "id:99");
    assert!(err.contains("no private key with id 99"), "{err}");
    let err = run("no-such-token", "id:01");
    assert!(
        err.contains("no-such-token") && err.contains(TOKEN),
        "{err}"
    );
    // No certificate on the token and none given.
    let out = bin(&hsm)
        .args(["sign", "--oci-layout", &reference])
        .args(["--pkcs11-module", MODULE, "--pkcs11-key", "id:01"])
        .env("SIGN_ACTION_PKCS11_PIN", PIN)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--cert"), "{err}");
}

#[test]
fn key_sources_are_exclusive_and_required() {
    let hsm = Hsm::new();
    let out = bin(&hsm)
        .args(["sign", "x/y@sha256:00"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = bin(&hsm)
        .args(["sign", "x/y@sha256:00", "--key", "k.pem", "--cert", "c.pem"])
        .args(["--pkcs11-module", MODULE, "--pkcs11-key", "id:01"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot be used with"), "{err}");
    // A module without a key selector is a usage error.
    let out = bin(&hsm)
        .args(["sign", "x/y@sha256:00", "--pkcs11-module", MODULE])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pkcs11-key"));
}

#[test]
fn action_masks_the_pin_and_signs_with_the_token() {
    let hsm = Hsm::new();
    let pubkey = hsm.generate("rsa:3072", "action-key", "0c");
    let (_, chain, root) = issue_for(hsm.path(), "action-leaf", &pubkey);
    let reference = layout(&hsm);
    let output_file = hsm.path().join("github_output");
    std::fs::write(&output_file, "").expect("output file");
    let out = bin(&hsm)
        .args(["action", "sign"])
        .env("INPUT_IMAGES", &reference)
        .env("INPUT_OCI-LAYOUT", "true")
        .env("INPUT_PKCS11-MODULE", MODULE)
        .env("INPUT_PKCS11-TOKEN", format!("label:{TOKEN}"))
        .env("INPUT_PKCS11-KEY", "action-key")
        .env("INPUT_PKCS11-PIN", PIN)
        .env("INPUT_CERTIFICATE-CHAIN", &chain)
        .env("GITHUB_OUTPUT", &output_file)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("run action");
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(&out, "action sign");
    // The mask is registered before anything else, and the PIN appears nowhere else.
    let mask = format!("::add-mask::{PIN}");
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(first, mask, "{stdout}");
    assert_eq!(stdout.matches(PIN).count(), 1, "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(PIN));
    check(&verify_with_ours(&hsm, &reference, &root), "verify");
}
