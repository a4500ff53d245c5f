//! Notation plugins as signers, against a real plugin executable: this test binary is its own
//! plugin. Copied into a notation plugin directory as `notation-<name>`, it answers the plugin
//! contract (argv[0] starts with `notation-`); otherwise it runs the tests below. Behaviour is
//! chosen per call by `pluginConfig.mode`, so one binary covers the good path and every
//! failure the caller must catch. (Hence `harness = false`: libtest would treat the plugin
//! command as a test filter.)

#[path = "support/one_signature.rs"]
mod one_signature;
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use sign_action::crypto::{KeySpec, LocalSigner, Signer};
use sign_action::signers::{Plugin, PluginError, PluginSigner};
use support::{copy_dir, make_test_chain};

// ---------------------------------------------------------------- the plugin side

fn plugin_main(name: &str) -> ! {
    let command = std::env::args().nth(1).unwrap_or_default();
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("stdin");
    let request: Value = serde_json::from_str(&input).unwrap_or(Value::Null);
    let config = &request["pluginConfig"];
    let mode = config["mode"].as_str().unwrap_or("ok");
    let fail = |code: &str, message: &str| -> ! {
        eprint!("{}", json!({"errorCode": code, "errorMessage": message}));
        std::process::exit(1)
    };
    let key_id = request["keyId"].as_str().unwrap_or_default();
    let response = match command.as_str() {
        "get-plugin-metadata" => {
            let capabilities = if mode.starts_with("envelope") {
                vec!["SIGNATURE_GENERATOR.ENVELOPE"]
            } else if mode == "verify-revocation-only" {
                vec!["SIGNATURE_VERIFIER.REVOCATION_CHECK"]
            } else if mode.starts_with("verify") {
                vec![
                    "SIGNATURE_VERIFIER.TRUSTED_IDENTITY",
                    "SIGNATURE_VERIFIER.REVOCATION_CHECK",
                ]
            } else {
                vec!["SIGNATURE_GENERATOR.RAW"]
            };
            json!({
                "name": if mode == "wrong-name" { "someone-else" } else { name },
                "description": "sign-action test plugin",
                "version": if mode == "verify-old" { "0.9.0-rc.1" } else { "1.0.0" },
                "url": "https://example.invalid/plugin",
                "supportedContractVersions": if mode == "contract-2" { vec!["2.0"] } else { vec!["1.0"] },
                "capabilities": capabilities,
            })
        }
        "describe-key" => {
            if mode == "access-denied" {
                fail("ACCESS_DENIED", "the caller may not use key\nsecret-key-1");
            }
            let spec = load_signer(config).key_spec();
            json!({"keyId": key_id, "keySpec": spec.name()})
        }
        "generate-signature" => {
            if request["contractVersion"] != "1.0" {
                fail("UNSUPPORTED_CONTRACT_VERSION", "want 1.0");
            }
            match mode {
                "validation-error" => fail("VALIDATION_ERROR", "payload rejected"),
                "garbage" => {
                    print!("this is not JSON");
                    std::process::exit(0)
                }
                "exit" => {
                    eprint!("segfault-ish crash");
                    std::process::exit(3)
                }
                "oversize" => {
                    let chunk = vec![b' '; 1 << 20];
                    let mut out = std::io::stdout().lock();
                    for _ in 0..65 {
                        if out.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                    std::process::exit(0)
                }
                "sleep" => {
                    std::thread::sleep(Duration::from_secs(30));
                    std::process::exit(0)
                }
                _ => {}
            }
            let signer = load_signer(config);
            let expected_hash = match signer.key_spec().signature_algorithm().hash() {
                sign_action::crypto::HashAlgorithm::Sha256 => "SHA-256",
                sign_action::crypto::HashAlgorithm::Sha384 => "SHA-384",
                sign_action::crypto::HashAlgorithm::Sha512 => "SHA-512",
            };
            if request["hashAlgorithm"] != expected_hash
                || request["keySpec"] != signer.key_spec().name()
            {
                fail(
                    "VALIDATION_ERROR",
                    "keySpec or hashAlgorithm do not fit the key",
                );
            }
            let payload = B64
                .decode(request["payload"].as_str().unwrap_or_default())
                .unwrap_or_else(|_| fail("VALIDATION_ERROR", "payload is not base64"));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let mut signature = runtime
                .block_on(signer.sign(&payload))
                .expect("local signing");
            if mode == "bad-signature" {
                signature[5] ^= 1;
            }
            let mut chain: Vec<String> = signer
                .certificate_chain()
                .iter()
                .map(|c| B64.encode(c))
                .collect();
            if mode == "chain-changes" && payload.starts_with(b"ey") {
                chain.pop();
            }
            json!({
                "keyId": if mode == "wrong-key-id" { "other" } else { key_id },
                "signature": B64.encode(signature),
                "signingAlgorithm": if mode == "wrong-algorithm" {
                    "RSASSA-PSS-SHA-512"
                } else {
                    signer.key_spec().signature_algorithm().plugin_name()
                },
                "certificateChain": chain,
            })
        }
        "generate-envelope" => generate_envelope(&request, mode),
        "verify-signature" => verify_signature(&request, mode),
        _ => fail("VALIDATION_ERROR", "unknown command"),
    };
    print!("{response}");
    std::process::exit(0)
}

/// A verifier that checks the request has the shape digest §9 gives (refusing it otherwise),
/// then answers per mode: process everything and succeed, forget an attribute, distrust the
/// identity, or leave a requested capability unanswered.
fn verify_signature(request: &Value, mode: &str) -> Value {
    let fail = |message: &str| -> ! {
        eprint!(
            "{}",
            json!({"errorCode": "VALIDATION_ERROR", "errorMessage": message})
        );
        std::process::exit(1)
    };
    if request["contractVersion"] != "1.0" {
        fail("contractVersion");
    }
    let signature = &request["signature"];
    let critical = &signature["criticalAttributes"];
    if critical["contentType"] != "application/vnd.cncf.notary.payload.v1+json"
        || critical["signingScheme"] != "notary.x509"
        || critical["expiry"] != "2120-11-09T07:00:00Z"
        || critical["extendedAttributes"] != json!({"SomeKey": "SomeValue"})
    {
        fail(&format!("criticalAttributes {critical}"));
    }
    if signature["unprocessedAttributes"] != json!(["SomeKey"]) {
        fail("unprocessedAttributes");
    }
    let chain = signature["certificateChain"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let chain_ok = chain.len() == 2
        && chain.iter().all(|c| {
            c.as_str()
                .and_then(|c| B64.decode(c).ok())
                .is_some_and(|der| sign_action::x509::Certificate::from_der(&der).is_ok())
        });
    if !chain_ok {
        fail("certificateChain");
    }
    let policy = &request["trustPolicy"];
    if policy["trustedIdentities"]
        != json!(["x509.subject:CN=Notation Test Root,O=Notary,L=Seattle,ST=WA,C=US"])
    {
        fail("trustedIdentities");
    }
    let requested: Vec<String> = policy["signatureVerification"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.as_str().map(String::from))
        .collect();
    let expected = request["pluginConfig"]["expect"]
        .as_str()
        .unwrap_or_default();
    if requested.join(",") != expected {
        fail(&format!(
            "signatureVerification {requested:?}, expected {expected}"
        ));
    }
    let mut results = serde_json::Map::new();
    for capability in &requested {
        if mode == "verify-no-revocation-result" && capability.ends_with("REVOCATION_CHECK") {
            continue;
        }
        let success = !(mode == "verify-untrusted" && capability.ends_with("TRUSTED_IDENTITY"));
        results.insert(
            capability.clone(),
            json!({"success": success, "reason": if success { "ok" } else { "signing job is not trusted" }}),
        );
    }
    let processed = if mode == "verify-omit" {
        json!([])
    } else {
        json!(["SomeKey"])
    };
    json!({"verificationResults": results, "processedAttributes": processed})
}

/// The plugin builds the whole envelope with our own encoder and its local key; modes make
/// it retarget the payload, drop an annotation or answer with another envelope type.
fn generate_envelope(request: &Value, mode: &str) -> Value {
    let signer = load_signer(&request["pluginConfig"]);
    let mut payload = B64
        .decode(request["payload"].as_str().unwrap_or_default())
        .expect("payload base64");
    if request["payloadType"] != "application/vnd.cncf.notary.payload.v1+json" {
        eprint!(r#"{{"errorCode":"VALIDATION_ERROR","errorMessage":"payloadType"}}"#);
        std::process::exit(1);
    }
    let mut json: Value = serde_json::from_slice(&payload).expect("payload json");
    match mode {
        "envelope-retarget" => {
            json["targetArtifact"]["digest"] = json!(format!("sha256:{}", "0".repeat(64)));
        }
        "envelope-drop-annotation" => {
            json["targetArtifact"]["annotations"] = json!({});
        }
        _ => {}
    }
    if mode != "envelope" {
        payload = serde_json::to_vec(&json).expect("json");
    }
    let media_type = request["signatureEnvelopeType"]
        .as_str()
        .unwrap_or_default();
    let format = sign_action::envelope::EnvelopeFormat::from_media_type(media_type)
        .expect("known envelope type");
    let now = std::time::SystemTime::now();
    let now = sign_action::sign::truncate_to_seconds(now);
    let options = sign_action::envelope::SignOptions {
        payload,
        signing_time: now,
        expiry: request["expiryDurationInSeconds"]
            .as_u64()
            .map(|s| now + Duration::from_secs(s)),
        signing_agent: "test-plugin/1.0".into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let envelope = runtime
        .block_on(sign_action::envelope::sign(format, &options, &signer, None))
        .expect("envelope");
    json!({
        "signatureEnvelope": B64.encode(envelope),
        "signatureEnvelopeType": if mode == "envelope-wrong-type" {
            "application/x-other"
        } else {
            media_type
        },
        "annotations": {"com.example.plugin/signed-by": "test-plugin"},
    })
}

fn load_signer(config: &Value) -> LocalSigner {
    let key = std::fs::read(config["key"].as_str().unwrap_or_default()).expect("key file");
    let chain_pem = std::fs::read(config["chain"].as_str().unwrap_or_default()).expect("chain");
    let chain = sign_action::x509::parse_certificates(&chain_pem, "chain")
        .expect("chain")
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    LocalSigner::from_pem(&key, None, chain).expect("key")
}

// ---------------------------------------------------------------- the test side

struct Setup {
    dir: tempfile::TempDir,
    config_dir: PathBuf,
    key: support::TestKey,
}

/// A notation config dir with this binary installed as plugin `name`, and a test key + chain.
fn setup(name: &str, spec: KeySpec) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_dir = dir.path().join("notation");
    let plugin_dir = config_dir.join("plugins").join(name);
    std::fs::create_dir_all(&plugin_dir).expect("mkdir");
    let exe = plugin_dir.join(format!("notation-{name}"));
    std::fs::copy(std::env::current_exe().expect("current exe"), &exe).expect("install plugin");
    let key = make_test_chain(dir.path(), "plugin-leaf", spec);
    Setup {
        dir,
        config_dir,
        key,
    }
}

impl Setup {
    fn config(&self, mode: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("mode".to_string(), mode.to_string()),
            ("key".to_string(), self.key.key.display().to_string()),
            ("chain".to_string(), self.key.chain.display().to_string()),
        ])
    }

    fn plugin(&self, name: &str) -> Plugin {
        Plugin::installed(&self.config_dir, name).expect("installed")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn open_err(s: &Setup, name: &str, mode: &str, timeout: Duration) -> PluginError {
    let plugin = s.plugin(name).with_timeout(timeout);
    runtime()
        .block_on(PluginSigner::open(plugin, "key-1", s.config(mode)))
        .expect_err("opening must fail")
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sign-action"));
    cmd.env_remove("SIGN_ACTION_KEY_PASSWORD")
        .env_remove("SIGN_ACTION_PKCS11_PIN")
        .env("DOCKER_CONFIG", "/nonexistent-docker-config");
    cmd
}

/// End to end through the binary: the plugin found in notation's plugin directory signs in
/// both formats; our verifier and the Python implementation accept the signatures.
fn signs_through_the_binary(spec: KeySpec, alg: &str, mode: &str) -> Vec<Value> {
    let s = setup("com.example.test", spec);
    let layout = s.dir.path().join("layout");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-layout"),
        &layout,
    );
    let reference = format!("{}:v1", layout.display());
    let mut manifests = Vec::new();
    for format in ["jws", "cose"] {
        let mut cmd = bin();
        cmd.env("XDG_CONFIG_HOME", s.dir.path())
            .env("HOME", s.dir.path())
            .args(["sign", "--oci-layout", &reference, "-o", "json"])
            .args(["--signature-format", format])
            .args(["--plugin", "com.example.test", "--id", "key-1"])
            .args(["-m", "build=42", "--expiry", "1d"]);
        for (k, v) in s.config(mode) {
            cmd.arg("--plugin-config").arg(format!("{k}={v}"));
        }
        let out = cmd.output().expect("sign");
        check(&out, "sign --plugin");
        let report: Value = serde_json::from_slice(&out.stdout).expect("json");
        let sig = report["signatures"][0]["signature-digest"]
            .as_str()
            .expect("signature digest");
        let blobs = layout.join("blobs/sha256");
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(blobs.join(&sig[7..])).expect("manifest"))
                .expect("manifest json");
        manifests.push(manifest.clone());
        let layer = manifest["layers"][0]["digest"].as_str().expect("layer");
        let out = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_envelope.py"))
            .arg(format)
            .arg(blobs.join(&layer[7..]))
            .output()
            .expect("python3");
        check(&out, "verify_envelope.py");
        let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
        assert_eq!(summary["alg"], alg, "{summary}");
    }
    // Our verifier, trusting the chain's root.
    let store = s.dir.path().join("trust");
    let ca = store.join("truststore/x509/ca/plugin");
    std::fs::create_dir_all(&ca).expect("mkdir");
    std::fs::copy(&s.key.root, ca.join("root.pem")).expect("root");
    let policy = store.join("trustpolicy.json");
    std::fs::write(
        &policy,
        r#"{"version":"1.0","trustPolicies":[{"name":"p","registryScopes":["*"],
            "signatureVerification":{"level":"strict"},"trustStores":["ca:plugin"],
            "trustedIdentities":["*"]}]}"#,
    )
    .expect("policy");
    let out = bin()
        .args([
            "verify",
            "--oci-layout",
            &reference,
            "--scope",
            "example.local/hello",
        ])
        .arg("--trust-policy")
        .arg(&policy)
        .arg("--trust-store")
        .arg(&store)
        .output()
        .expect("verify");
    check(&out, "verify");
    manifests
}

fn rsa_plugin_signs_and_verifies() {
    signs_through_the_binary(KeySpec::Rsa3072, "PS384", "ok");
}

fn ec_plugin_signs_and_verifies() {
    signs_through_the_binary(KeySpec::EcP256, "ES256", "ok");
}

fn envelope_plugin_signs_and_keeps_its_annotations() {
    for manifest in signs_through_the_binary(KeySpec::EcP384, "ES384", "envelope") {
        assert_eq!(
            manifest["annotations"]["com.example.plugin/signed-by"], "test-plugin",
            "{manifest}"
        );
        assert!(manifest["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"].is_string());
    }
}

/// Envelopes that sign something else, lose our annotations or have the wrong type fail.
fn bad_generated_envelopes_are_refused() {
    let s = setup("com.example.env", KeySpec::EcP256);
    let layout = s.dir.path().join("layout");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-layout"),
        &layout,
    );
    let reference = format!("{}:v1", layout.display());
    for (mode, needle) in [
        ("envelope-retarget", "targetArtifact.digest differs"),
        ("envelope-drop-annotation", "annotation \"build\""),
        ("envelope-wrong-type", "signatureEnvelopeType"),
    ] {
        let mut cmd = bin();
        cmd.env("XDG_CONFIG_HOME", s.dir.path())
            .env("HOME", s.dir.path())
            .args(["sign", "--oci-layout", &reference, "-m", "build=42"])
            .args(["--plugin", "com.example.env", "--id", "key-1"]);
        for (k, v) in s.config(mode) {
            cmd.arg("--plugin-config").arg(format!("{k}={v}"));
        }
        let out = cmd.output().expect("sign");
        assert_eq!(out.status.code(), Some(1), "{mode}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{mode}: {text}");
    }
    // Nothing was stored.
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "{index}"
    );
}

fn error_responses_are_reported_with_their_code() {
    let s = setup("errors", KeySpec::EcP256);
    let t = Duration::from_secs(20);
    let err = open_err(&s, "errors", "validation-error", t);
    assert!(
        matches!(&err, PluginError::Failed { code, command, .. }
            if code == "VALIDATION_ERROR" && command == "generate-signature"),
        "{err}"
    );
    assert!(err.to_string().contains("payload rejected"), "{err}");
    let err = open_err(&s, "errors", "access-denied", t);
    assert!(
        matches!(&err, PluginError::Failed { code, command, .. }
            if code == "ACCESS_DENIED" && command == "describe-key"),
        "{err}"
    );
    // The plugin's message is kept on one line.
    assert!(!err.to_string().contains('\n'), "{err}");
}

fn garbage_and_crashes_are_failures() {
    let s = setup("broken", KeySpec::EcP256);
    let t = Duration::from_secs(20);
    let err = open_err(&s, "broken", "garbage", t);
    assert!(
        matches!(err, PluginError::BadResponse { .. }) && err.to_string().contains("not JSON"),
        "{err}"
    );
    let err = open_err(&s, "broken", "exit", t);
    assert!(
        matches!(&err, PluginError::Failed { code, .. } if code == "exit status 3"),
        "{err}"
    );
    let err = open_err(&s, "broken", "oversize", t);
    assert!(matches!(err, PluginError::Oversize { .. }), "{err}");
}

fn slow_plugins_are_stopped() {
    let s = setup("slow", KeySpec::EcP256);
    let started = std::time::Instant::now();
    let err = open_err(&s, "slow", "sleep", Duration::from_secs(2));
    assert!(matches!(err, PluginError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

fn dishonest_responses_are_refused() {
    let s = setup("liar", KeySpec::EcP256);
    let t = Duration::from_secs(20);
    for (mode, needle) in [
        ("wrong-key-id", "keyId"),
        ("wrong-algorithm", "signingAlgorithm"),
        ("bad-signature", "does not verify"),
        ("wrong-name", "calls itself"),
        ("contract-2", "contract version 1.0"),
    ] {
        let err = open_err(&s, "liar", mode, t);
        assert!(err.to_string().contains(needle), "{mode}: {err}");
    }
    // The chain may not change after the first signature.
    let plugin = s.plugin("liar");
    let rt = runtime();
    let signer = rt
        .block_on(PluginSigner::open(
            plugin,
            "key-1",
            s.config("chain-changes"),
        ))
        .expect("the probe signature is fine");
    let err = rt.block_on(signer.sign(b"eyJhbGciOi.payload")).unwrap_err();
    assert!(err.to_string().contains("chain changed"), "{err}");
    assert!(rt.block_on(signer.sign(b"other")).is_ok());
}

/// The action's `plugin`, `plugin-key-id` and multi-line `plugin-config` inputs reach the
/// plugin installed under notation's configuration directory.
fn action_inputs_select_the_plugin() {
    let s = setup("com.example.action", KeySpec::EcP256);
    let layout = s.dir.path().join("layout");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-layout"),
        &layout,
    );
    let output_file = s.dir.path().join("github_output");
    std::fs::write(&output_file, "").expect("output file");
    let config: Vec<String> = s
        .config("ok")
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let out = bin()
        .args(["action", "sign"])
        .env("XDG_CONFIG_HOME", s.dir.path())
        .env("HOME", s.dir.path())
        .env("INPUT_IMAGES", format!("{}:v1", layout.display()))
        .env("INPUT_OCI-LAYOUT", "true")
        .env("INPUT_PLUGIN", "com.example.action")
        .env("INPUT_PLUGIN-KEY-ID", "key-1")
        .env("INPUT_PLUGIN-CONFIG", config.join("\n"))
        .env("GITHUB_OUTPUT", &output_file)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .expect("action");
    check(&out, "action sign with a plugin");
    let outputs = std::fs::read_to_string(&output_file).expect("outputs");
    assert!(outputs.contains("plugin-leaf"), "{outputs}");
    // A plugin combined with a key is a usage error.
    let out = bin()
        .args(["action", "sign"])
        .env("INPUT_IMAGES", "x:v1")
        .env("INPUT_PLUGIN", "com.example.action")
        .env("INPUT_PLUGIN-KEY-ID", "key-1")
        .env("INPUT_KEY", "/nonexistent.pem")
        .env("GITHUB_OUTPUT", &output_file)
        .output()
        .expect("action");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot be combined"));
}

fn missing_plugin_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = bin()
        .env("XDG_CONFIG_HOME", dir.path())
        .env("HOME", dir.path())
        .args(["sign", "--oci-layout", "x:v1"])
        .args(["--plugin", "com.example.absent", "--plugin-key-id", "k"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("com.example.absent") && err.contains("not installed"),
        "{err}"
    );
}

// ------------------------------------------------ verification plugins (digest §8, §9)

mod verify_vector {
    use super::*;
    use crate::one_signature::{vector_subject, OneSignatureStore};
    use sign_action::oci::Reference;
    use sign_action::policy::{TrustPolicyDocument, TrustStore};
    use sign_action::verify::{verify_artifact, EffectivePolicy, VerifySettings};

    const REFERENCE: &str = "registry.acme-rockets.io/software/net-monitor@sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e";

    fn vector(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/vectors")
            .join(rel)
    }

    /// Verify the notation-go plugin vector at `level`, with this binary installed as
    /// `plugin-name` (unless `install` is false) answering in `mode`. No revocation checker
    /// is given: revocation passes only when the plugin takes it over.
    pub fn run(level: &str, revocation: &str, mode: &str, expect: &str, install: bool) -> Value {
        let dir = tempfile::tempdir().expect("tempdir");
        let plugins = dir.path().join("plugins");
        if install {
            let plugin_dir = plugins.join("plugin-name");
            std::fs::create_dir_all(&plugin_dir).expect("mkdir");
            std::fs::copy(
                std::env::current_exe().expect("current exe"),
                plugin_dir.join("notation-plugin-name"),
            )
            .expect("install plugin");
        }
        let mut doc: Value = serde_json::from_slice(
            &std::fs::read(vector("derived/mock-trustpolicy.oci.json")).expect("policy"),
        )
        .expect("policy json");
        doc["trustPolicies"][0]["signatureVerification"] =
            json!({"level": level, "override": {"revocation": revocation}});
        let policy = TrustPolicyDocument::parse_str(&doc.to_string()).expect("policy");
        let reference = Reference::parse(REFERENCE).expect("reference");
        let statement = policy
            .select(&reference.fully_qualified_without_digest())
            .expect("statement");
        let store = TrustStore::open(&vector("envelopes-mock/truststore")).expect("store");
        let effective = EffectivePolicy::from_statement(statement, &store).expect("effective");
        let settings = VerifySettings {
            plugin_dir: Some(plugins),
            plugin_config: BTreeMap::from([
                ("mode".to_string(), mode.to_string()),
                ("expect".to_string(), expect.to_string()),
            ]),
            ..VerifySettings::default()
        };
        let envelope =
            std::fs::read(vector("envelopes-mock/ca_plugin_sig_env.json")).expect("envelope");
        let storage = OneSignatureStore::with_subject(vector_subject(), envelope);
        let result = runtime().block_on(verify_artifact(
            &storage, REFERENCE, &reference, &effective, &settings,
        ));
        serde_json::to_value(&result).expect("json")
    }

    pub fn failure(r: &Value) -> String {
        r["failed-signatures"][0]["failure"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn check<'a>(sig: &'a Value, name: &str) -> &'a Value {
        sig["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["check"] == name))
            .unwrap_or(&Value::Null)
    }
}

// ------------------------------------------------ plugin download (action inputs)

/// Serve `body` over plain HTTP on loopback for every request; returns the URL base.
fn serve(body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// A `.tar.gz` made by the system tar from the files in `staging`.
fn tarball(staging: &Path, out: &Path) -> Vec<u8> {
    let status = Command::new("tar")
        .arg("czf")
        .arg(out)
        .arg("-C")
        .arg(staging)
        .arg(".")
        .status()
        .expect("tar");
    assert!(status.success());
    std::fs::read(out).expect("tarball")
}

fn action_downloads_and_installs_the_plugin() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup("com.example.keyholder", KeySpec::EcP256);
    let staging = s.dir.path().join("staging");
    std::fs::create_dir_all(staging.join("docs")).expect("mkdir");
    std::fs::write(staging.join("docs/LICENSE"), "test").expect("license");
    std::fs::copy(
        std::env::current_exe().expect("exe"),
        staging.join("notation-com.example.dl"),
    )
    .expect("copy");
    let archive = tarball(&staging, &s.dir.path().join("plugin.tar.gz"));
    let checksum = sign_action::crypto::sha256_hex(&archive);
    let url = format!("{}/plugin.tar.gz", serve(archive));
    let home = s.dir.path().join("home");
    let installed = home.join("notation/plugins/com.example.dl/notation-com.example.dl");
    let layout = s.dir.path().join("layout");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello-layout"),
        &layout,
    );
    let output_file = s.dir.path().join("github_output");
    std::fs::write(&output_file, "").expect("output file");
    let config: Vec<String> = s
        .config("ok")
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let run = |checksum: &str| {
        bin()
            .args(["action", "sign"])
            .env("XDG_CONFIG_HOME", &home)
            .env("HOME", &home)
            .env("INPUT_IMAGES", format!("{}:v1", layout.display()))
            .env("INPUT_OCI-LAYOUT", "true")
            .env("INPUT_PLUGIN", "com.example.dl")
            .env("INPUT_PLUGIN-KEY-ID", "key-1")
            .env("INPUT_PLUGIN-CONFIG", config.join("\n"))
            .env("INPUT_PLUGIN-URL", &url)
            .env("INPUT_PLUGIN-CHECKSUM", checksum)
            .env("GITHUB_OUTPUT", &output_file)
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .expect("action")
    };
    // A wrong checksum: refused before anything is written.
    let out = run(&"0".repeat(64));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("nothing was installed"), "{stdout}");
    assert!(!home.join("notation").exists());
    // Only one of the two inputs: a usage error.
    let out = bin()
        .args(["action", "sign"])
        .env("XDG_CONFIG_HOME", &home)
        .env("INPUT_PLUGIN-URL", &url)
        .env("GITHUB_OUTPUT", &output_file)
        .output()
        .expect("action");
    assert_eq!(out.status.code(), Some(2));
    // The right checksum: installed with mode 0755, then it signs.
    let out = run(&checksum.to_uppercase());
    check(&out, "action sign with a downloaded plugin");
    let mode = std::fs::metadata(&installed)
        .expect("installed")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let outputs = std::fs::read_to_string(&output_file).expect("outputs");
    assert!(outputs.contains("plugin-leaf"), "{outputs}");
}

fn unsafe_archives_are_refused() {
    use sign_action::signers::install::install_archive;
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    // A symlink named like the plugin.
    let staging = dir.path().join("link");
    std::fs::create_dir_all(&staging).expect("mkdir");
    std::os::unix::fs::symlink("/bin/sh", staging.join("notation-evil")).expect("symlink");
    let archive = tarball(&staging, &dir.path().join("link.tar.gz"));
    let err = install_archive(&archive, &plugins).expect_err("symlink");
    assert!(err.to_string().contains("not a regular file"), "{err}");
    // A path climbing out of the directory, written by hand (tar tools refuse to).
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..18].copy_from_slice(b"../notation-escape");
    header.set_size(4);
    header.set_mode(0o755);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut raw = header.as_bytes().to_vec();
    raw.extend_from_slice(b"evil");
    raw.resize(raw.len() + 508 + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).expect("gzip");
    let archive = gz.finish().expect("gzip");
    let err = install_archive(&archive, &plugins).expect_err("traversal");
    assert!(
        err.to_string().contains("not a plain relative path"),
        "{err}"
    );
    // Not gzip at all, and a tarball without a plugin.
    assert!(install_archive(b"PK\x03\x04zip", &plugins).is_err());
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    std::fs::write(empty.join("README"), "x").expect("readme");
    let archive = tarball(&empty, &dir.path().join("empty.tar.gz"));
    let err = install_archive(&archive, &plugins).expect_err("no plugin");
    assert!(err.to_string().contains("no notation-<name> file"), "{err}");
    assert!(
        !plugins.exists(),
        "nothing may be written for a refused archive"
    );
}

const BOTH: &str = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY,SIGNATURE_VERIFIER.REVOCATION_CHECK";
const TI: &str = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY";

fn plugin_vector_passes_with_the_plugin() {
    use verify_vector::*;
    // Without the plugin: an integrity failure naming it, at every level.
    for level in ["strict", "permissive", "audit"] {
        let r = run(level, "enforce", "verify-ok", BOTH, false);
        assert_eq!(r["verified"], false, "{level}: {r}");
        assert!(
            failure(&r).starts_with("integrity validation failed")
                && failure(&r).contains("\"plugin-name\"")
                && failure(&r).contains("not installed"),
            "{r}"
        );
    }
    // With it: both capabilities answered, SomeKey processed; the plugin's revocation
    // answer replaces ours (there is no revocation checker here).
    for level in ["strict", "permissive", "audit"] {
        let r = run(level, "enforce", "verify-ok", BOTH, true);
        assert_eq!(r["verified"], true, "{level}: {r}");
        let sig = &r["signature"];
        assert_eq!(check(sig, "authenticity")["status"], "passed", "{r}");
        assert_eq!(check(sig, "revocation")["status"], "passed", "{r}");
    }
    // Revocation skipped: only TRUSTED_IDENTITY is requested (the plugin checks the list).
    let r = run("strict", "skip", "verify-ok", TI, true);
    assert_eq!(r["verified"], true, "{r}");
    assert_eq!(check(&r["signature"], "revocation")["status"], "skipped");
}

fn plugin_must_process_every_critical_attribute() {
    use verify_vector::*;
    for level in ["strict", "audit"] {
        let r = run(level, "enforce", "verify-omit", BOTH, true);
        assert_eq!(r["verified"], false, "{level}: {r}");
        assert!(
            failure(&r).contains("extended critical attribute \"SomeKey\" was not processed"),
            "{r}"
        );
    }
}

fn plugin_identity_verdict_follows_the_level() {
    use verify_vector::*;
    let r = run("strict", "enforce", "verify-untrusted", BOTH, true);
    assert_eq!(r["verified"], false, "{r}");
    assert!(
        failure(&r).starts_with("authenticity validation failed")
            && failure(&r).contains("signing job is not trusted"),
        "{r}"
    );
    let r = run("audit", "enforce", "verify-untrusted", BOTH, true);
    assert_eq!(r["verified"], true, "{r}");
    let authenticity = check(&r["signature"], "authenticity");
    assert_eq!(authenticity["status"], "failed", "{r}");
    assert_eq!(authenticity["enforcement"], "logged", "{r}");
}

fn plugin_verifier_misbehaviour_fails() {
    use verify_vector::*;
    // A requested capability without a result.
    let r = run(
        "audit",
        "enforce",
        "verify-no-revocation-result",
        BOTH,
        true,
    );
    assert_eq!(r["verified"], false, "{r}");
    assert!(
        failure(&r).contains("no result for SIGNATURE_VERIFIER.REVOCATION_CHECK"),
        "{r}"
    );
    // Too old for the signature's minimum version? The vector names none, so 0.9.0-rc.1
    // passes; metadata without a verifier capability is refused.
    let r = run("strict", "enforce", "verify-old", BOTH, true);
    assert_eq!(r["verified"], true, "{r}");
    let r = run("strict", "enforce", "ok", BOTH, true);
    assert_eq!(r["verified"], false, "{r}");
    assert!(
        failure(&r).contains("no SIGNATURE_VERIFIER capability"),
        "{r}"
    );
    // Revocation-only plugin: identity is ours (the vector's leaf is not the trusted
    // identity's subject, so strict fails on identity) and its revocation answer is used.
    let r = run(
        "audit",
        "enforce",
        "verify-revocation-only",
        "SIGNATURE_VERIFIER.REVOCATION_CHECK",
        true,
    );
    let sig = if r["verified"] == true {
        &r["signature"]
    } else {
        &r["failed-signatures"][0]
    };
    assert_eq!(check(sig, "revocation")["status"], "passed", "{r}");
}

fn main() {
    let exe = std::env::args().next().unwrap_or_default();
    let file = Path::new(&exe)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default()
        .to_string();
    if let Some(name) = file.strip_prefix("notation-") {
        plugin_main(name);
    }
    let tests: &[(&str, fn())] = &[
        (
            "rsa_plugin_signs_and_verifies",
            rsa_plugin_signs_and_verifies,
        ),
        ("ec_plugin_signs_and_verifies", ec_plugin_signs_and_verifies),
        (
            "envelope_plugin_signs_and_keeps_its_annotations",
            envelope_plugin_signs_and_keeps_its_annotations,
        ),
        (
            "bad_generated_envelopes_are_refused",
            bad_generated_envelopes_are_refused,
        ),
        (
            "error_responses_are_reported_with_their_code",
            error_responses_are_reported_with_their_code,
        ),
        (
            "garbage_and_crashes_are_failures",
            garbage_and_crashes_are_failures,
        ),
        ("slow_plugins_are_stopped", slow_plugins_are_stopped),
        (
            "dishonest_responses_are_refused",
            dishonest_responses_are_refused,
        ),
        (
            "action_inputs_select_the_plugin",
            action_inputs_select_the_plugin,
        ),
        ("missing_plugin_is_named", missing_plugin_is_named),
        (
            "action_downloads_and_installs_the_plugin",
            action_downloads_and_installs_the_plugin,
        ),
        ("unsafe_archives_are_refused", unsafe_archives_are_refused),
        (
            "plugin_vector_passes_with_the_plugin",
            plugin_vector_passes_with_the_plugin,
        ),
        (
            "plugin_must_process_every_critical_attribute",
            plugin_must_process_every_critical_attribute,
        ),
        (
            "plugin_identity_verdict_follows_the_level",
            plugin_identity_verdict_follows_the_level,
        ),
        (
            "plugin_verifier_misbehaviour_fails",
            plugin_verifier_misbehaviour_fails,
        ),
    ];
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
