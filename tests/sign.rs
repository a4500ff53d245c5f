//! Signing end to end through the `sign-action` binary against the real CNCF distribution
//! registry (and the in-process Referrers-API registry): every key type in both envelope
//! formats, read back over raw HTTP field by field and cross-checked by an independent
//! implementation (Python `cryptography` + `jwcrypto`/`pycose`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sign_action::crypto::KeySpec;
use support::{make_test_chain, make_test_key, push_test_image, Registry, RegistryConfig};

const ALL_SPECS: [KeySpec; 6] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EcP256,
    KeySpec::EcP384,
    KeySpec::EcP521,
];

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sign-action"));
    // Keep tests independent of the machine's docker login and environment.
    cmd.env_remove("SIGN_ACTION_KEY_PASSWORD")
        .env_remove("SIGN_ACTION_REGISTRY_USERNAME")
        .env_remove("SIGN_ACTION_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", "/nonexistent-docker-config");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run sign-action")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Verify the envelope with the independent Python implementation and check that it signs
/// exactly the expected target descriptor.
fn python_verify(envelope: &Path, media_type: &str, expected: &Value) {
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
    assert!(
        out.status.success(),
        "independent verification failed for {}: {}{}",
        envelope.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("verifier summary JSON");
    let payload: Value =
        serde_json::from_str(summary["payload"].as_str().expect("payload text")).unwrap();
    let target = &payload["targetArtifact"];
    for field in ["mediaType", "digest", "size"] {
        assert_eq!(target[field], expected[field], "payload {field}");
    }
}

async fn get_json(registry: &Registry, path: &str, accept: &str) -> (u16, Value, Vec<u8>) {
    let (status, _, body) = registry.raw_get(path, accept).await;
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, value, body)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", sign_action::crypto::sha256_hex(bytes))
}

/// Check the signature manifest, its blobs and the tag-schema index against digest §1, and
/// the envelope against §3/§4 with the Python verifier. Returns the envelope bytes.
#[allow(clippy::too_many_arguments)]
async fn assert_signature_stored(
    registry: &Registry,
    repo: &str,
    subject: &sign_action::oci::Descriptor,
    signature_digest: &str,
    format: &str,
    chain_pem: &Path,
    artifact_type_form: bool,
    dir: &Path,
) -> Vec<u8> {
    let (status, manifest, raw) = get_json(
        registry,
        &format!("/v2/{repo}/manifests/{signature_digest}"),
        "application/vnd.oci.image.manifest.v1+json",
    )
    .await;
    assert_eq!(status, 200, "signature manifest readable");
    assert_eq!(sha256(&raw), signature_digest);
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    if artifact_type_form {
        assert_eq!(
            manifest["artifactType"],
            "application/vnd.cncf.notary.signature"
        );
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
    } else {
        assert!(
            manifest.get("artifactType").is_none(),
            "legacy form has no artifactType"
        );
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.cncf.notary.signature"
        );
    }
    assert_eq!(
        manifest["config"]["digest"],
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(manifest["config"]["size"], 2);
    let (status, _, config) = registry
        .raw_get(
            &format!(
                "/v2/{repo}/blobs/{}",
                manifest["config"]["digest"].as_str().unwrap()
            ),
            "*/*",
        )
        .await;
    assert_eq!((status, config.as_slice()), (200, b"{}".as_slice()));

    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "exactly one layer");
    let media_type = if format == "jws" {
        "application/jose+json"
    } else {
        "application/cose"
    };
    assert_eq!(layers[0]["mediaType"], media_type);
    assert_eq!(
        manifest["subject"]["mediaType"],
        subject.media_type.as_str()
    );
    assert_eq!(manifest["subject"]["digest"], subject.digest.as_str());
    assert_eq!(manifest["subject"]["size"], subject.size);

    // Thumbprints: lowercase SHA-256 of every chain certificate, leaf first, as a JSON string.
    let chain = sign_action::x509::parse_certificates(&std::fs::read(chain_pem).unwrap(), "chain")
        .expect("chain");
    let expected: Vec<String> = chain.iter().map(|c| c.sha256_fingerprint()).collect();
    let annotations = &manifest["annotations"];
    let thumbprints: Vec<String> = serde_json::from_str(
        annotations["io.cncf.notary.x509chain.thumbprint#S256"]
            .as_str()
            .expect("thumbprint annotation is a string"),
    )
    .expect("thumbprint annotation holds a JSON array");
    assert_eq!(thumbprints, expected);
    let created = annotations["org.opencontainers.image.created"]
        .as_str()
        .expect("created annotation");
    assert!(
        created.len() == 20 && created.ends_with('Z'),
        "RFC 3339 UTC seconds: {created}"
    );

    let layer_digest = layers[0]["digest"].as_str().unwrap();
    let (status, _, envelope) = registry
        .raw_get(&format!("/v2/{repo}/blobs/{layer_digest}"), "*/*")
        .await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&envelope), layer_digest);
    assert_eq!(layers[0]["size"], envelope.len());

    // The referrers tag schema index lists the signature with artifactType and annotations.
    let tag = subject.digest.replace(':', "-");
    let (status, index, _) = get_json(
        registry,
        &format!("/v2/{repo}/manifests/{tag}"),
        "application/vnd.oci.image.index.v1+json",
    )
    .await;
    assert_eq!(status, 200, "tag schema index {tag} exists");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["digest"] == signature_digest)
        .expect("index lists the signature");
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        entry["artifactType"],
        "application/vnd.cncf.notary.signature"
    );
    assert_eq!(entry["size"], raw.len());
    assert_eq!(&entry["annotations"], annotations);

    let file = dir.join(format!("envelope-{}", &signature_digest[7..19]));
    std::fs::write(&file, &envelope).unwrap();
    let expected_target = serde_json::json!({
        "mediaType": subject.media_type,
        "digest": subject.digest,
        "size": subject.size,
    });
    python_verify(&file, media_type, &expected_target);
    envelope
}

fn sign_json(
    registry: &Registry,
    reference: &str,
    key: &Path,
    chain: &Path,
    extra: &[&str],
) -> Vec<Value> {
    let mut cmd = bin();
    cmd.args(["sign", reference, "--key"])
        .arg(key)
        .arg("--cert")
        .arg(chain)
        .args(["--output", "json"])
        .args(extra);
    if let Some(ca) = &registry.ca_pem {
        cmd.arg("--registry-ca").arg(ca);
    }
    if let Some((u, p)) = &registry.credentials {
        cmd.args(["--username", u])
            .env("SIGN_ACTION_REGISTRY_PASSWORD", p);
    }
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "sign failed ({:?}): {}",
        out.status.code(),
        stderr(&out)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    report["signatures"].as_array().expect("signatures").clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_key_type_in_both_formats_is_stored_as_notary_specifies() {
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let dir = tempfile::tempdir().unwrap();
    let subject = push_test_image(&client, &registry.host, "app/all-keys", "v1").await;
    let reference = format!("{}/app/all-keys@{}", registry.host, subject.digest);
    for spec in ALL_SPECS {
        let key = make_test_chain(dir.path(), &format!("k-{}", spec.name()), spec);
        for format in ["jws", "cose"] {
            let signed = sign_json(
                &registry,
                &reference,
                &key.key,
                &key.chain,
                &["--signature-format", format],
            );
            assert_eq!(signed.len(), 1);
            let s = &signed[0];
            assert_eq!(s["reference"], reference.as_str());
            assert_eq!(s["digest"], subject.digest.as_str());
            assert_eq!(s["signature-format"], format);
            assert_eq!(s["storage"], "tag-schema");
            let sig = s["signature-digest"].as_str().unwrap();
            assert_signature_stored(
                &registry,
                "app/all-keys",
                &subject,
                sig,
                format,
                &key.chain,
                false,
                dir.path(),
            )
            .await;
        }
    }
    // Twelve signatures, one index entry each, no duplicates.
    let tag = subject.digest.replace(':', "-");
    let (_, index, _) = get_json(
        &registry,
        &format!("/v2/app/all-keys/manifests/{tag}"),
        "application/vnd.oci.image.index.v1+json",
    )
    .await;
    let digests: std::collections::BTreeSet<_> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(digests.len(), 12);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn artifact_type_form_expiry_and_user_metadata() {
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let dir = tempfile::tempdir().unwrap();
    let subject = push_test_image(&client, &registry.host, "app/form", "v1").await;
    let key = make_test_key(dir.path(), KeySpec::EcP256);
    let reference = format!("{}/app/form@{}", registry.host, subject.digest);
    for format in ["jws", "cose"] {
        let signed = sign_json(
            &registry,
            &reference,
            &key.key,
            &key.chain,
            &[
                "--signature-format",
                format,
                "--manifest-form",
                "artifact-type",
                "--expiry",
                "2h",
                "-m",
                "build=42",
                "-m",
                "team=platform",
            ],
        );
        let sig = signed[0]["signature-digest"].as_str().unwrap();
        let envelope = assert_signature_stored(
            &registry,
            "app/form",
            &subject,
            sig,
            format,
            &key.chain,
            true,
            dir.path(),
        )
        .await;
        let parsed = sign_action::envelope::parse(
            if format == "jws" {
                "application/jose+json"
            } else {
                "application/cose"
            },
            &envelope,
        )
        .expect("our parser reads it");
        let signing = parsed.signing_time.expect("signing time");
        let expiry = parsed.expiry.expect("expiry");
        assert_eq!(expiry.duration_since(signing).unwrap().as_secs(), 7200);
        let payload: Value = serde_json::from_slice(&parsed.payload).unwrap();
        assert_eq!(payload["targetArtifact"]["annotations"]["build"], "42");
        assert_eq!(payload["targetArtifact"]["annotations"]["team"], "platform");
        assert_eq!(
            parsed.signing_agent.as_deref(),
            Some(format!("sign-action/{}", env!("CARGO_PKG_VERSION")).as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_and_tls_registries() {
    let dir = tempfile::tempdir().unwrap();
    let key = make_test_key(dir.path(), KeySpec::Rsa2048);
    for config in [
        RegistryConfig {
            htpasswd: Some(("signer".into(), "s3cret-pass".into())),
            ..Default::default()
        },
        RegistryConfig {
            tls: true,
            ..Default::default()
        },
        RegistryConfig {
            tls: true,
            htpasswd: Some(("signer".into(), "s3cret-pass".into())),
            ..Default::default()
        },
    ] {
        let registry = Registry::start(config);
        let client = registry.client();
        let subject = push_test_image(&client, &registry.host, "secure/app", "v1").await;
        let reference = format!("{}/secure/app@{}", registry.host, subject.digest);
        let signed = sign_json(&registry, &reference, &key.key, &key.chain, &[]);
        let sig = signed[0]["signature-digest"].as_str().unwrap();
        assert_signature_stored(
            &registry,
            "secure/app",
            &subject,
            sig,
            "jws",
            &key.chain,
            false,
            dir.path(),
        )
        .await;
    }
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

/// A self-signed certificate made with rcgen: for shapes openssl's `req` cannot make
/// (already expired, CA used as a leaf).
fn rcgen_cert(dir: &Path, name: &str, expired: bool, ca: bool) -> (PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CountryName, "US");
    params
        .distinguished_name
        .push(DnType::StateOrProvinceName, "WA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Notary Test");
    params.distinguished_name.push(DnType::CommonName, name);
    let now = time::OffsetDateTime::now_utc();
    if expired {
        params.not_before = now - time::Duration::days(30);
        params.not_after = now - time::Duration::days(1);
    } else {
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
    }
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    }
    let cert = params.self_signed(&key).unwrap();
    let key_path = dir.join(format!("{name}.key"));
    let cert_path = dir.join(format!("{name}.pem"));
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();
    (key_path, cert_path)
}

/// A single error line on stderr that names the problem, the given exit code, nothing on
/// stdout but the failure report.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    let all = format!("{}{}", stdout(out), err);
    assert_eq!(out.status.code(), Some(code), "exit code; output: {all}");
    assert!(
        all.to_lowercase().contains(&needle.to_lowercase()),
        "output should name the problem ({needle:?}): {all}"
    );
    let error_lines: Vec<&str> = all
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("FAILED"))
        .collect();
    assert_eq!(error_lines.len(), 1, "exactly one error line: {all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_fail_with_one_line_and_push_nothing() {
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let subject = push_test_image(&client, &registry.host, "bad/app", "v1").await;
    let reference = format!("{}/bad/app@{}", registry.host, subject.digest);
    let good = make_test_key(d, KeySpec::EcP256);
    let other = make_named_test_key_rsa(d);

    let sign = |key: &Path, cert: &Path, reference: &str| {
        run(bin()
            .args(["sign", reference, "--key"])
            .arg(key)
            .arg("--cert")
            .arg(cert))
    };

    // Configuration errors: exit 2, before any registry request.
    assert_fails(&sign(&other, &good.chain, &reference), 2, "does not match");
    let (expired_key, expired_cert) = rcgen_cert(d, "expired", true, false);
    assert_fails(
        &sign(&expired_key, &expired_cert, &reference),
        2,
        "not valid",
    );
    let (ca_key, ca_cert) = rcgen_cert(d, "ca-as-leaf", false, true);
    assert_fails(&sign(&ca_key, &ca_cert, &reference), 2, "certificate");
    openssl(
        &[
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "rsa:1024",
            "-keyout",
            "weak.key",
            "-out",
            "weak.pem",
            "-days",
            "5",
            "-subj",
            "/C=US/ST=WA/O=Test/CN=weak",
            "-addext",
            "keyUsage=critical,digitalSignature",
            "-addext",
            "extendedKeyUsage=codeSigning",
        ],
        d,
    );
    assert_fails(
        &sign(&d.join("weak.key"), &d.join("weak.pem"), &reference),
        2,
        "RSA-1024",
    );
    assert_fails(
        &sign(&good.key, &good.chain, "Not A//Reference!"),
        2,
        "invalid reference",
    );

    // Registry-side failures: exit 1, the artifact reported as failed.
    let unknown = format!("{}/bad/app@sha256:{}", registry.host, "0".repeat(64));
    assert_fails(&sign(&good.key, &good.chain, &unknown), 1, "not found");
    let down = format!(
        "127.0.0.1:{}/bad/app@{}",
        support::free_port(),
        subject.digest
    );
    assert_fails(&sign(&good.key, &good.chain, &down), 1, "127.0.0.1");

    // None of the failures left a signature a verifier would find.
    let tag = subject.digest.replace(':', "-");
    let (status, _, _) = registry
        .raw_get(
            &format!("/v2/bad/app/manifests/{tag}"),
            "application/vnd.oci.image.index.v1+json",
        )
        .await;
    assert_eq!(status, 404, "no referrers index was written");

    // 401: a registry that wants credentials we do not give.
    let locked = Registry::start(RegistryConfig {
        htpasswd: Some(("u".into(), "p".into())),
        ..Default::default()
    });
    let locked_subject = push_test_image(&locked.client(), &locked.host, "bad/app", "v1").await;
    let locked_ref = format!("{}/bad/app@{}", locked.host, locked_subject.digest);
    assert_fails(
        &sign(&good.key, &good.chain, &locked_ref),
        1,
        "refused our credentials",
    );
}

fn make_named_test_key_rsa(dir: &Path) -> PathBuf {
    support::make_named_test_key(dir, "other-rsa", KeySpec::Rsa2048).key
}

#[tokio::test(flavor = "multi_thread")]
async fn many_artifacts_finish_the_others_and_report_each() {
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let dir = tempfile::tempdir().unwrap();
    let key = make_test_key(dir.path(), KeySpec::EcP384);
    let mut refs = Vec::new();
    for i in 0..3 {
        let s = push_test_image(&client, &registry.host, &format!("many/app{i}"), "v1").await;
        refs.push(format!("{}/many/app{i}@{}", registry.host, s.digest));
    }
    refs.insert(
        1,
        format!("{}/many/missing@sha256:{}", registry.host, "1".repeat(64)),
    );
    // A tag is resolved with a warning.
    refs.push(format!("{}/many/app0:v1", registry.host));
    let out = run(bin()
        .arg("sign")
        .args(&refs)
        .arg("--key")
        .arg(&key.key)
        .arg("--cert")
        .arg(&key.chain)
        .args(["--output", "json"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let signed = report["signatures"].as_array().unwrap();
    let failed = report["failures"].as_array().unwrap();
    assert_eq!(signed.len(), 4);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["reference"], refs[1].as_str());
    assert!(
        stderr(&out).contains("tags are mutable"),
        "{}",
        stderr(&out)
    );
    for (i, s) in signed.iter().enumerate() {
        let expected = if i == 0 { &refs[0] } else { &refs[i + 1] };
        assert_eq!(s["reference"], expected.as_str(), "input order kept");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_api_registry_needs_no_tag_schema_index() {
    let server = support::oci_server::OciServer::start(10);
    let dir = tempfile::tempdir().unwrap();
    let key = make_test_key(dir.path(), KeySpec::Rsa2048);
    let layer = server.put_blob(b"layer");
    let config = server.put_blob(b"{\"os\":\"linux\"}");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 14},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5}],
    })
    .to_string();
    let digest = server.put_manifest(
        "api/app",
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
        Some("v1"),
    );
    let reference = format!("{}/api/app@{digest}", server.addr);
    let out = run(bin()
        .args(["sign", &reference, "--key"])
        .arg(&key.key)
        .arg("--cert")
        .arg(&key.chain)
        .args(["--output", "json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["signatures"][0]["storage"], "referrers-api");
    assert!(!server.has_tag("api/app", &digest.replace(':', "-")));
}

#[test]
fn action_mode_writes_outputs_and_summary_and_never_leaks_secrets() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let registry = Registry::start(RegistryConfig::default());
    let subject = rt.block_on(push_test_image(
        &registry.client(),
        &registry.host,
        "action/app",
        "v1",
    ));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = make_test_key(d, KeySpec::Rsa3072);
    let password = "correct-horse-battery-staple-42";
    openssl(
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            key.key.to_str().unwrap(),
            "-out",
            "encrypted.key",
            "-passout",
            &format!("pass:{password}"),
        ],
        d,
    );
    let key_pem = std::fs::read_to_string(d.join("encrypted.key")).unwrap();
    let chain_pem = std::fs::read_to_string(&key.chain).unwrap();
    let output_file = d.join("github_output");
    let summary_file = d.join("step_summary");
    std::fs::write(&output_file, "").unwrap();
    std::fs::write(&summary_file, "").unwrap();
    let reference = format!("{}/action/app@{}", registry.host, subject.digest);
    let out = Command::new(env!("CARGO_BIN_EXE_sign-action"))
        .args(["action", "sign"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", d)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .env("INPUT_IMAGES", format!("{reference}\n"))
        .env("INPUT_KEY", &key_pem)
        .env("INPUT_KEY-PASSWORD", password)
        .env("INPUT_CERTIFICATE-CHAIN", &chain_pem)
        .env("INPUT_SIGNATURE-FORMAT", "cose")
        .env("INPUT_EXPIRY", "")
        .env("INPUT_MANIFEST-FORM", "legacy")
        .env("INPUT_GITHUB-TOKEN", "ghs_notarealtokenbutsecret")
        .output()
        .unwrap();
    let stdout_text = stdout(&out);
    let stderr_text = stderr(&out);
    assert!(out.status.success(), "{stdout_text}{stderr_text}");

    // Masks come before anything else.
    let first = stdout_text.lines().next().unwrap_or("");
    assert!(
        first.starts_with("::add-mask::"),
        "first line masks: {first}"
    );

    let outputs = std::fs::read_to_string(&output_file).unwrap();
    let summary = std::fs::read_to_string(&summary_file).unwrap();
    let parsed = parse_github_output(&outputs);
    let signatures: Value = serde_json::from_str(&parsed["signatures"]).unwrap();
    assert_eq!(signatures.as_array().unwrap().len(), 1);
    assert_eq!(signatures[0]["digest"], subject.digest.as_str());
    assert_eq!(signatures[0]["signature-format"], "cose");
    assert_eq!(signatures[0]["storage"], "tag-schema");
    assert_eq!(
        parsed["signature-digest"],
        signatures[0]["signature-digest"].as_str().unwrap()
    );
    assert!(
        summary.contains("| Artifact | Digest | Signer subject |"),
        "{summary}"
    );
    assert!(summary.contains("action/app"), "{summary}");

    // No secret anywhere but in the masks.
    let unmasked_stdout: String = stdout_text
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    for haystack in [&unmasked_stdout, &stderr_text, &outputs, &summary] {
        assert!(!haystack.contains(password));
        assert!(!haystack.contains("ghs_notarealtokenbutsecret"));
        for line in key_pem
            .lines()
            .filter(|l| l.len() > 20 && !l.starts_with("-----"))
        {
            assert!(!haystack.contains(line), "a key line leaked");
        }
    }
}

/// Read `GITHUB_OUTPUT` the way the runner does: `name<<DELIM` … `DELIM`.
fn parse_github_output(text: &str) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let (name, delim) = line.split_once("<<").expect("heredoc form");
        let mut value = Vec::new();
        for l in lines.by_ref() {
            if l == delim {
                break;
            }
            value.push(l);
        }
        out.insert(name.to_string(), value.join("\n"));
    }
    out
}
