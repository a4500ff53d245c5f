//! Issue 4 acceptance: RFC 3161 timestamping end to end through the `sign-action` binary
//! (real `docker-registry`, real `openssl ts -reply` TSA), the upstream timestamp vectors
//! through the verifier, and every signing error the TSA can cause.
//!
//! Exit codes of timestamping failures while signing: a TSA that is down or answers wrongly
//! fails the artifact being signed (exit 1, reported per artifact, nothing pushed) — the
//! configuration was well-formed and another run may succeed. Configuration that can never
//! work (a non-http(s) TSA URL, an unreadable or non-certificate TSA root) is a usage error
//! (exit 2) reported before anything is signed.

mod support;

#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/one_signature.rs"]
mod one_signature;
#[path = "support/pki.rs"]
mod pki;
#[path = "support/tsa.rs"]
mod tsa;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use e2e::{check, extract_cose, extract_jws, fetch_envelope, sign, sign_ok, verify, TrustConfig};
use one_signature::OneSignatureStore;
use serde_json::Value;
use sign_action::crypto::KeySpec;
use sign_action::oci::Reference;
use sign_action::policy::store::TrustStore;
use sign_action::policy::TrustPolicyDocument;
use sign_action::revocation::{RevocationChecker, RevocationStatus};
use sign_action::timestamp::{self, TimestampError};
use sign_action::verify::{verify_artifact, EffectivePolicy, VerifySettings};
use sign_action::x509::Certificate;
use support::{make_test_chain, push_test_image, Registry, RegistryConfig};
use tsa::{HttpReply, TsaPki, TsaServer};

fn parse_time(s: &str) -> SystemTime {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
        .into()
}

fn ts_args(server: &TsaServer, root: &str) -> Vec<String> {
    vec![
        "--timestamp-url".into(),
        server.url.clone(),
        "--timestamp-root-cert".into(),
        root.into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamped_signatures_in_both_formats_verify_and_openssl_agrees() {
    // Accuracy 1.5 s and millisecond genTime: the reported range is genTime ± 1.5 s.
    let pki = Arc::new(TsaPki::with_options(tsa::TsaOptions {
        accuracy: Some("secs:1, millisecs:500".into()),
        clock_precision_digits: 3,
        ..Default::default()
    }));
    let server = TsaServer::start(pki.clone());
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let dir = tempfile::tempdir().unwrap();
    // One key type per imprint hash: SHA-256, SHA-384, SHA-512 of the signature bytes.
    let cases = [
        ("jws", KeySpec::EcP256),
        ("cose", KeySpec::EcP384),
        ("jws", KeySpec::EcP521),
        ("cose", KeySpec::EcP256),
    ];
    let keys: Vec<_> = [KeySpec::EcP256, KeySpec::EcP384, KeySpec::EcP521]
        .into_iter()
        .map(|spec| {
            (
                spec,
                make_test_chain(dir.path(), &format!("ts-{}", spec.name()), spec),
            )
        })
        .collect();
    // The certificates are valid from the second they were made; the whole range
    // [genTime − 1.5 s, genTime + 1.5 s] must lie inside that validity (digest §5 step 7),
    // so a signature timestamped within 1.5 s of the certificate's birth rightly fails.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let root = pki.path("root.pem").display().to_string();
    let mut args = ts_args(&server, &root);

    let config = TrustConfig::new();
    let roots: Vec<&Path> = keys.iter().map(|(_, k)| k.root.as_path()).collect();
    config.add_store("ca", "signer", &roots);
    config.add_store("tsa", "tsa", &[&pki.path("root.pem")]);
    let policy = config.policy(
        "policy.json",
        "strict",
        &["ca:signer", "tsa:tsa"],
        Some("always"),
    );
    // A tsa store holding the wrong root: the token's chain cannot be built.
    let wrong = TrustConfig::new();
    wrong.add_store("ca", "signer", &roots);
    wrong.add_store("tsa", "tsa", &[roots[0]]);
    let wrong_policy = wrong.policy("policy.json", "strict", &["ca:signer", "tsa:tsa"], None);

    for (i, (format, spec)) in cases.into_iter().enumerate() {
        let key = &keys.iter().find(|(s, _)| *s == spec).unwrap().1;
        let repo = format!("app/ts-{format}-{i}");
        let subject = push_test_image(&client, &registry.host, &repo, "v1").await;
        let reference = format!("{}/{repo}@{}", registry.host, subject.digest);
        args.extend(["--signature-format".into(), format.into()]);
        let before = SystemTime::now() - Duration::from_secs(2);
        let sigs = sign_ok(&[&reference], &key.key, &key.chain, &strs(&args));
        let after = SystemTime::now() + Duration::from_secs(2);
        args.truncate(4);

        // The embedded token, checked independently by `openssl ts -verify`.
        let (media_type, envelope) = fetch_envelope(&registry, &repo, &sigs[0]).await;
        let extracted = if format == "jws" {
            assert_eq!(media_type, "application/jose+json");
            extract_jws(&envelope)
        } else {
            assert_eq!(media_type, "application/cose");
            extract_cose(&envelope)
        };
        let token = extracted
            .token
            .expect("the envelope carries a timestamp token");
        pki.openssl_verify(&token, &extracted.signature)
            .unwrap_or_else(|e| panic!("openssl ts -verify ({format}): {e}"));
        let mut other = extracted.signature.clone();
        other[0] ^= 1;
        assert!(
            pki.openssl_verify(&token, &other).is_err(),
            "openssl must reject the token for other bytes"
        );

        // inspect shows it.
        let out = e2e::run(
            e2e::bin()
                .args(["inspect", &reference, "--output", "json"])
                .env("XDG_CONFIG_HOME", dir.path()),
        );
        assert!(out.status.success(), "{}", e2e::text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["signatures"][0]["timestamped"], true, "{report}");

        // verify under strict with a tsa store relies on the timestamp and reports it.
        let (out, doc) = verify(&config, &policy, &[&reference]);
        assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
        let result = &doc["results"][0];
        assert_eq!(result["verified"], true);
        let sig = &result["signature"];
        assert_eq!(sig["format"], format);
        assert_eq!(check(sig, "authenticTimestamp")["status"], "passed");
        let ts = &sig["timestamp"];
        assert!(
            ts["tsa-subject"].as_str().unwrap().contains("Test TSA"),
            "{ts}"
        );
        let chain = ts["tsa-chain"].as_array().unwrap();
        assert_eq!(chain.len(), 3, "TSA, intermediate, root: {ts}");
        assert_eq!(
            chain[2],
            Certificate::from_der(&pki.root_der())
                .unwrap()
                .sha256_fingerprint()
        );
        let (start, end) = (
            parse_time(ts["range-start"].as_str().unwrap()),
            parse_time(ts["range-end"].as_str().unwrap()),
        );
        let gen = parse_time(ts["gen-time"].as_str().unwrap());
        assert_eq!(gen - Duration::from_millis(1500), start, "{ts}");
        assert_eq!(gen + Duration::from_millis(1500), end, "{ts}");
        assert!(before <= start && end <= after, "{ts}");

        let (out, doc) = verify(&wrong, &wrong_policy, &[&reference]);
        assert_eq!(out.status.code(), Some(1), "{}", e2e::text(&out));
        let failed = &doc["results"][0]["failed-signatures"][0];
        assert_eq!(check(failed, "authenticTimestamp")["status"], "failed");
        assert_eq!(check(failed, "authenticity")["status"], "passed");
    }
}

/// One sign run timestamps several artifacts concurrently: each token is its own (own
/// nonce, own serial) and covers its own signature.
#[tokio::test(flavor = "multi_thread")]
async fn one_run_timestamps_many_artifacts() {
    let pki = Arc::new(TsaPki::new());
    let server = TsaServer::start(pki.clone());
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let dir = tempfile::tempdir().unwrap();
    let key = make_test_chain(dir.path(), "many", KeySpec::EcP256);
    let mut refs = Vec::new();
    for i in 0..6 {
        let d = push_test_image(&client, &registry.host, "app/many-ts", &format!("v{i}")).await;
        refs.push(format!("{}/app/many-ts@{}", registry.host, d.digest));
    }
    let r: Vec<&str> = refs.iter().map(String::as_str).collect();
    let root = pki.path("root.pem").display().to_string();
    let mut args = ts_args(&server, &root);
    args.extend(["--concurrency".into(), "6".into()]);
    let sigs = sign_ok(&r, &key.key, &key.chain, &strs(&args));
    let mut serials = std::collections::BTreeSet::new();
    for sig in &sigs {
        let (_, envelope) = fetch_envelope(&registry, "app/many-ts", sig).await;
        let e = extract_jws(&envelope);
        let token = e.token.unwrap();
        pki.openssl_verify(&token, &e.signature).unwrap();
        serials.insert(timestamp::parse_token_info(&token).unwrap().serial);
    }
    assert_eq!(serials.len(), refs.len(), "one token per signature");

    let config = TrustConfig::new();
    config.add_store("ca", "signer", &[&key.root]);
    config.add_store("tsa", "tsa", &[&pki.path("root.pem")]);
    let policy = config.policy("policy.json", "strict", &["ca:signer", "tsa:tsa"], None);
    let (out, doc) = verify(&config, &policy, &r);
    assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
    for result in doc["results"].as_array().unwrap() {
        assert_eq!(
            check(&result["signature"], "authenticTimestamp")["status"],
            "passed"
        );
    }
}

/// A TSA whose certificate is issued by the revocation test PKI (AIA and CDP on
/// 127.0.0.1): `openssl ts -reply` signing with it. Returns the TSA files' PKI (its
/// `root.pem` is the revocation PKI's root) and the TSA certificate's path.
fn revocable_tsa(rev: &pki::TestPki) -> (Arc<TsaPki>, std::path::PathBuf) {
    let cnf = rev.inter.path("ca.cnf");
    let text = std::fs::read_to_string(&cnf).unwrap();
    let leaf_section = text
        .split("[v3_leaf]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap()
        .to_string();
    let tsa_section = leaf_section.replace(
        "extendedKeyUsage = codeSigning",
        "extendedKeyUsage = critical,timeStamping",
    );
    assert_ne!(tsa_section, leaf_section);
    std::fs::write(&cnf, format!("{text}\n[v3_tsa]{tsa_section}\n")).unwrap();
    let tsa_cert = rev.inter.issue("tsa", "Revocable TSA", "v3_tsa", false);
    // Reuse TsaPki's openssl TSA configuration with this certificate, key and chain.
    let tsa = TsaPki::new();
    std::fs::copy(&tsa_cert, tsa.path("tsa.pem")).unwrap();
    std::fs::copy(rev.inter.path("tsa.key"), tsa.path("tsa.key")).unwrap();
    std::fs::copy(rev.inter.path("ca.pem"), tsa.path("chain.pem")).unwrap();
    std::fs::copy(rev.root.path("ca.pem"), tsa.path("root.pem")).unwrap();
    let untrusted = [
        std::fs::read(&tsa_cert).unwrap(),
        std::fs::read(rev.inter.path("ca.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(tsa.path("untrusted.pem"), untrusted).unwrap();
    (Arc::new(tsa), tsa_cert)
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_tsa_certificate_fails_the_authentic_timestamp() {
    let rev = pki::TestPki::new();
    let (tsa, tsa_cert) = revocable_tsa(&rev);
    let server = TsaServer::start(tsa.clone());
    let registry = Registry::start(RegistryConfig::default());
    let subject = push_test_image(&registry.client(), &registry.host, "app/tsa-rev", "v1").await;
    let reference = format!("{}/app/tsa-rev@{}", registry.host, subject.digest);
    let dir = tempfile::tempdir().unwrap();
    // The signing chain has no AIA/CDP: only the TSA chain has revocation information.
    let key = make_test_chain(dir.path(), "signer", KeySpec::EcP256);
    let root = tsa.path("root.pem").display().to_string();
    let sigs = sign_ok(
        &[&reference],
        &key.key,
        &key.chain,
        &strs(&ts_args(&server, &root)),
    );
    let (_, envelope) = fetch_envelope(&registry, "app/tsa-rev", &sigs[0]).await;
    let e = extract_jws(&envelope);
    tsa.openssl_verify(&e.token.unwrap(), &e.signature).unwrap();

    let config = TrustConfig::new();
    config.add_store("ca", "signer", &[&key.root]);
    config.add_store("tsa", "tsa", &[&tsa.path("root.pem")]);
    let strict = config.policy("strict.json", "strict", &["ca:signer", "tsa:tsa"], None);
    let permissive = config.policy("perm.json", "permissive", &["ca:signer", "tsa:tsa"], None);

    // Good TSA chain, answered by the real OCSP responders.
    {
        let _responders = rev.start_responders();
        let (out, doc) = verify(&config, &strict, &[&reference]);
        assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
        let sig = &doc["results"][0]["signature"];
        assert_eq!(check(sig, "authenticTimestamp")["status"], "passed");
        assert!(sig["timestamp"]["tsa-subject"]
            .as_str()
            .unwrap()
            .contains("Revocable TSA"));
    }
    // Responders gone; the CRL says the TSA certificate is revoked.
    rev.inter.revoke(&tsa_cert, &[]);
    rev.publish_crls();
    let (out, doc) = verify(&config, &strict, &[&reference]);
    assert_eq!(out.status.code(), Some(1), "{}", e2e::text(&out));
    let failed = &doc["results"][0]["failed-signatures"][0];
    let ts = check(failed, "authenticTimestamp");
    assert_eq!(ts["status"], "failed");
    let detail = ts["detail"].as_str().unwrap();
    assert!(
        detail.contains("TSA") && detail.contains("revoked"),
        "{detail}"
    );
    // The signing chain itself is fine.
    assert_eq!(check(failed, "revocation")["status"], "passed");
    let (out, doc) = verify(&config, &permissive, &[&reference]);
    assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
    let w = e2e::warnings(&doc["results"][0]);
    assert!(
        w.contains("authenticTimestamp") && w.contains("revoked"),
        "{w}"
    );
}

/// A self-signed code-signing certificate (rcgen: openssl cannot make one that expires in
/// seconds) valid from yesterday until `not_after`.
fn short_lived_cert(
    dir: &Path,
    not_after: time::OffsetDateTime,
) -> (std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    };
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Notary Test");
    params
        .distinguished_name
        .push(DnType::CommonName, "short-lived");
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let cert = params.self_signed(&key).unwrap();
    let key_path = dir.join("short.key");
    let cert_path = dir.join("short.pem");
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    std::fs::write(&cert_path, cert.pem()).unwrap();
    (key_path, cert_path)
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_signing_certificate_verifies_only_through_a_timestamp_inside_its_validity() {
    let pki = Arc::new(TsaPki::new());
    let server = TsaServer::start(pki.clone());
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let mut refs = Vec::new();
    for name in ["stamped", "unstamped", "late"] {
        let d = push_test_image(&client, &registry.host, &format!("app/{name}"), "v1").await;
        refs.push(format!("{}/app/{name}@{}", registry.host, d.digest));
    }
    // The certificate lives 6 s (long enough to sign twice on a loaded machine, short
    // enough to wait for). rcgen writes whole seconds.
    let not_after = time::OffsetDateTime::now_utc() + time::Duration::seconds(6);
    let not_after = not_after.replace_nanosecond(0).unwrap();
    // A TSA that waits until the certificate has expired before timestamping: its genTime
    // lies after the certificate's notAfter (and the wait stays below the client's 10 s
    // timeout).
    let p = pki.clone();
    let late = TsaServer::with_handler(Arc::new(move |q| {
        let wait = not_after + time::Duration::milliseconds(1200) - time::OffsetDateTime::now_utc();
        if wait.is_positive() {
            std::thread::sleep(Duration::from_millis(wait.whole_milliseconds() as u64));
        }
        HttpReply::ok(p.reply(q).unwrap())
    }));
    let dir = tempfile::tempdir().unwrap();
    let root = pki.path("root.pem").display().to_string();

    let (key, cert) = short_lived_cert(dir.path(), not_after);
    let late_args = ts_args(&late, &root);
    let late_sign = {
        let (key, cert, reference) = (key.clone(), cert.clone(), refs[2].clone());
        std::thread::spawn(move || sign(&[&reference], &key, &cert, &strs(&late_args)))
    };
    sign_ok(&[&refs[0]], &key, &cert, &strs(&ts_args(&server, &root)));
    sign_ok(&[&refs[1]], &key, &cert, &["--signature-format", "cose"]);
    assert!(
        time::OffsetDateTime::now_utc() < not_after,
        "signing took longer than the certificate lived; the test cannot judge anything"
    );
    let (out, _) = late_sign.join().unwrap();
    assert!(
        out.status.success(),
        "signing does not judge the timestamp against the signing certificate: {}",
        e2e::text(&out)
    );
    let wait = (not_after - time::OffsetDateTime::now_utc()).whole_milliseconds() + 1500;
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }

    let config = TrustConfig::new();
    config.add_store("ca", "signer", &[&cert]);
    config.add_store("tsa", "tsa", &[&pki.path("root.pem")]);
    let strict = config.policy("strict.json", "strict", &["ca:signer", "tsa:tsa"], None);
    let after_expiry = config.policy(
        "after.json",
        "strict",
        &["ca:signer", "tsa:tsa"],
        Some("afterCertExpiry"),
    );
    let permissive = config.policy("perm.json", "permissive", &["ca:signer", "tsa:tsa"], None);
    let no_tsa = config.policy("notsa.json", "strict", &["ca:signer"], None);

    // Timestamped while the certificate was valid: passes under strict.
    for policy in [&strict, &after_expiry] {
        let (out, doc) = verify(&config, policy, &[&refs[0]]);
        assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
        let sig = &doc["results"][0]["signature"];
        assert_eq!(check(sig, "authenticTimestamp")["status"], "passed");
        let end = parse_time(sig["timestamp"]["range-end"].as_str().unwrap());
        assert!(end <= SystemTime::from(not_after));
    }

    // Not timestamped: strict fails authenticTimestamp, permissive passes with a warning.
    let (out, doc) = verify(&config, &strict, &[&refs[1]]);
    assert_eq!(out.status.code(), Some(1), "{}", e2e::text(&out));
    let failed = &doc["results"][0]["failed-signatures"][0];
    let ts = check(failed, "authenticTimestamp");
    assert_eq!(ts["status"], "failed");
    assert!(
        ts["detail"]
            .as_str()
            .unwrap()
            .contains("no timestamp countersignature"),
        "{ts}"
    );
    assert!(doc["results"][0]["error"]
        .as_str()
        .unwrap()
        .contains("authenticTimestamp"));
    let (out, doc) = verify(&config, &no_tsa, &[&refs[1]]);
    assert_eq!(out.status.code(), Some(1), "{}", e2e::text(&out));
    let ts = check(
        &doc["results"][0]["failed-signatures"][0],
        "authenticTimestamp",
    );
    assert!(ts["detail"].as_str().unwrap().contains("expired"), "{ts}");
    let (out, doc) = verify(&config, &permissive, &[&refs[1]]);
    assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
    let result = &doc["results"][0];
    assert_eq!(result["verified"], true);
    assert_eq!(
        check(&result["signature"], "authenticTimestamp")["enforcement"],
        "logged"
    );
    let w = e2e::warnings(result);
    assert!(
        w.contains("authenticTimestamp") && w.contains("no timestamp countersignature"),
        "{w}"
    );

    // Timestamped after the certificate expired: fails.
    let (out, doc) = verify(&config, &strict, &[&refs[2]]);
    assert_eq!(out.status.code(), Some(1), "{}", e2e::text(&out));
    let failed = &doc["results"][0]["failed-signatures"][0];
    let ts = check(failed, "authenticTimestamp");
    assert_eq!(ts["status"], "failed");
    assert!(
        ts["detail"]
            .as_str()
            .unwrap()
            .contains("timestamp can be after certificate"),
        "{ts}"
    );
    let start = parse_time(failed["timestamp"]["range-start"].as_str().unwrap());
    assert!(start > SystemTime::from(not_after), "{failed}");
}

// ---------------------------------------------------------------------------------------
// Upstream vectors (README §6, §7) through the verifier.

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vectors");

/// A revocation checker whose every OCSP/CRL URL points at a closed local port. The
/// GlobalSign TSA chains of the vectors name real OCSP/CRL services that cannot be reached
/// offline; pointing them at a closed port makes the outcome (unknown) the same whether or
/// not this machine happens to be online, and fast.
fn offline_checker() -> RevocationChecker {
    let port = support::free_port();
    RevocationChecker::new()
        .unwrap()
        .with_url_rewrite(move |_| format!("http://127.0.0.1:{port}/unreachable"))
}

fn vector_policy(level: &str, with_tsa: bool) -> TrustPolicyDocument {
    let stores = if with_tsa {
        r#"[ "ca:valid-trust-store", "tsa:test-timestamp" ]"#
    } else {
        r#"[ "ca:valid-trust-store" ]"#
    };
    // As derived/timestamp-trustpolicy.oci.json, with the level and stores varied.
    TrustPolicyDocument::parse_str(&format!(
        r#"{{"version":"1.0","trustPolicies":[{{"name":"test-timestamp","registryScopes":["*"],
            "signatureVerification":{{"level":"{level}","verifyTimestamp":"always"}},
            "trustStores":{stores},"trustedIdentities":["*"]}}]}}"#
    ))
    .unwrap()
}

async fn verify_vector(
    file: &str,
    policy: &TrustPolicyDocument,
) -> sign_action::verify::ArtifactVerification {
    let envelope =
        std::fs::read(Path::new(VECTORS).join("envelopes-timestamp").join(file)).unwrap();
    let store = OneSignatureStore::new(envelope);
    let reference =
        Reference::parse(&format!("localhost:5000/vectors@{}", store.artifact.digest)).unwrap();
    let trust_store = TrustStore::open(&Path::new(VECTORS).join("envelopes-timestamp")).unwrap();
    let statement = policy.select("localhost:5000/vectors").unwrap();
    let effective = EffectivePolicy::from_statement(statement, &trust_store).unwrap();
    let settings = VerifySettings {
        revocation: Some(Arc::new(offline_checker())),
        ..VerifySettings::default()
    };
    verify_artifact(&store, file, &reference, &effective, &settings).await
}

fn vector_envelope(file: &str) -> sign_action::envelope::ParsedEnvelope {
    let bytes = std::fs::read(Path::new(VECTORS).join("envelopes-timestamp").join(file)).unwrap();
    let media_type = if bytes[0] == b'{' {
        "application/jose+json"
    } else {
        "application/cose"
    };
    sign_action::envelope::parse(media_type, &bytes).unwrap()
}

fn globalsign_r6() -> Certificate {
    let der = std::fs::read(
        Path::new(VECTORS)
            .join("envelopes-timestamp/truststore/x509/tsa/test-timestamp/globalsignRoot.cer"),
    )
    .unwrap();
    sign_action::x509::parse_certificates(&der, "GlobalSign R6")
        .unwrap()
        .remove(0)
}

fn ts_check(
    sig: &sign_action::verify::SignatureVerification,
) -> &sign_action::verify::CheckOutcome {
    sig.checks
        .iter()
        .find(|c| c.check == "authenticTimestamp")
        .expect("authenticTimestamp check")
}

/// The token verifies on its own (signature, ESS, chain to GlobalSign R6 at genTime) and its
/// range, genTime ± the token's 1 s accuracy, lies within the leaf's validity or not.
fn assert_token_and_range(file: &str, within: Result<(), &str>) {
    let env = vector_envelope(file);
    let token = env.timestamp_token.as_ref().expect("token");
    let info = timestamp::verify_token(token, &env.signature, &[globalsign_r6()])
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(info.accuracy, Duration::from_secs(1), "{file}");
    assert_eq!(info.range.0 + Duration::from_secs(1), info.gen_time);
    assert_eq!(info.range.1 - Duration::from_secs(1), info.gen_time);
    assert!(
        info.tsa_subject.contains("GlobalSign"),
        "{}",
        info.tsa_subject
    );
    let leaf = Certificate::from_der(&env.certificate_chain[0]).unwrap();
    match (info.check_within_validity(&leaf), within) {
        (Ok(()), Ok(())) => {}
        (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{file}: {e}"),
        (got, want) => panic!("{file}: range check gave {got:?}, expected {want:?}"),
    }
}

#[tokio::test]
async fn vector_timestamped_envelopes_through_the_verifier() {
    let strict = vector_policy("strict", true);
    for file in [
        "jwsWithTimestamp.sig",
        "coseWithTimestamp.sig",
        "jwsExpiredWithTimestamp.sig",
    ] {
        // Upstream expects these to pass the authentic-timestamp step. The token and its
        // range are right ...
        assert_token_and_range(file, Ok(()));
        // ... but the GlobalSign TSA chain's revocation cannot be checked offline, and once
        // a timestamp is relied on its chain's revocation status is mandatory (digest §5
        // step 6): the verifier reports the TSA chain as unknown, failing the check under
        // strict. This is the expected offline outcome, asserted rather than skipped.
        let result = verify_vector(file, &strict).await;
        assert!(!result.verified, "{file}: {result:?}");
        let sig = &result.failed_signatures[0];
        let ts = ts_check(sig);
        assert_eq!(
            ts.status,
            sign_action::verify::CheckStatus::Failed,
            "{file}"
        );
        let detail = ts.detail.as_deref().unwrap();
        assert!(
            detail.contains("TSA") && detail.contains("unknown"),
            "{file}: {detail}"
        );
        // The verified timestamp is still reported, with GlobalSign as the TSA.
        let report = sig.timestamp.as_ref().expect("timestamp report");
        assert!(report.tsa_subject.contains("GlobalSign"), "{report:?}");
        assert_eq!(
            sig.checks[0].status,
            sign_action::verify::CheckStatus::Passed
        );
    }
    // The leaf of the unexpired pair is in the ca store: under permissive the unknown TSA
    // revocation is only logged and the signature verifies with a warning.
    let permissive = vector_policy("permissive", true);
    for file in ["jwsWithTimestamp.sig", "coseWithTimestamp.sig"] {
        let result = verify_vector(file, &permissive).await;
        assert!(result.verified, "{file}: {result:?}");
        let w = result.warnings.join("\n");
        assert!(w.contains("authenticTimestamp") && w.contains("TSA"), "{w}");
    }
}

#[tokio::test]
async fn vector_timestamps_outside_the_leaf_validity_fail() {
    let strict = vector_policy("strict", true);
    for (file, needle) in [
        (
            "timestampBeforeNotBefore.sig",
            "timestamp can be before certificate",
        ),
        (
            "timestampAfterNotAfter.sig",
            "timestamp can be after certificate",
        ),
    ] {
        let date = if file.contains("Before") {
            "will be valid from \"Fri, 18 Sep 2099 11:54:34 +0000\""
        } else {
            "it was expired at \"Tue, 18 Sep 2001 11:54:34 +0000\""
        };
        assert_token_and_range(file, Err(needle));
        // The verifier judges the range before the (unknowable) TSA revocation, so it
        // gives upstream's reason, not "unknown".
        let result = verify_vector(file, &strict).await;
        assert!(!result.verified);
        let ts = ts_check(&result.failed_signatures[0]);
        assert_eq!(ts.status, sign_action::verify::CheckStatus::Failed);
        let detail = ts.detail.as_deref().unwrap();
        assert!(
            detail.contains(needle) && detail.contains(date),
            "{file}: {detail}"
        );
    }
}

#[tokio::test]
async fn vector_without_timestamp() {
    let result = verify_vector("withoutTimestamp.sig", &vector_policy("strict", true)).await;
    assert!(!result.verified);
    let ts = ts_check(&result.failed_signatures[0]);
    assert_eq!(
        ts.detail.as_deref(),
        Some("no timestamp countersignature was found in the signature envelope")
    );
    // Without a tsa store nothing triggers timestamp verification: the certificate is valid
    // until 2033 and the self-signed chain has nothing to check for revocation.
    let result = verify_vector("withoutTimestamp.sig", &vector_policy("strict", false)).await;
    assert!(result.verified, "{result:?}");
    let sig = result.signature.unwrap();
    assert_eq!(
        ts_check(&sig).status,
        sign_action::verify::CheckStatus::Passed
    );
    assert!(sig.timestamp.is_none());
}

#[tokio::test]
async fn vector_timestamp_tokens() {
    let dir = Path::new(VECTORS).join("timestamp-tokens");
    let root = sign_action::x509::parse_certificates(
        &std::fs::read(dir.join("GlobalSignRootCA.crt")).unwrap(),
        "root",
    )
    .unwrap();
    let token = std::fs::read(dir.join("TimeStampToken.p7s")).unwrap();
    let (info, chain) = timestamp::verify_token_with_chain(&token, b"notation", &root).unwrap();
    let gen: SystemTime = time::macros::datetime!(2021-09-17 14:09:10 UTC).into();
    assert_eq!(info.gen_time, gen);
    assert_eq!(
        info.range,
        (gen - Duration::from_secs(1), gen + Duration::from_secs(1))
    );
    let err = timestamp::verify_token(&token, b"notation!", &root).unwrap_err();
    assert!(
        matches!(err, TimestampError::ImprintMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("mismatched message"), "{err}");
    let bad = std::fs::read(dir.join("TimeStampTokenWithMismatchCertHash.p7s")).unwrap();
    let err = timestamp::verify_token(&bad, b"notation", &root).unwrap_err();
    assert!(err.to_string().contains("signing certificate"), "{err}");
    // The validated chain's revocation, as the verifier would check it: unknown offline
    // (see offline_checker), never good.
    let r = offline_checker().check_chain(&chain, None).await;
    assert_eq!(r.status, RevocationStatus::Unknown, "{r}");
}

// ---------------------------------------------------------------------------------------
// Signing errors through the CLI.

/// DER TimeStampResp { PKIStatusInfo { status }, token }.
fn tsp_response(status: u8, token: &[u8]) -> Vec<u8> {
    let status_info = der::Any::new(der::Tag::Sequence, [0x02, 0x01, status].as_slice())
        .unwrap()
        .to_der()
        .unwrap();
    der::Any::new(der::Tag::Sequence, [status_info.as_slice(), token].concat())
        .unwrap()
        .to_der()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamping_failures_fail_signing_clearly() {
    let pki = Arc::new(TsaPki::new());
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let subject = push_test_image(&client, &registry.host, "app/tsa-errors", "v1").await;
    let reference = format!("{}/app/tsa-errors@{}", registry.host, subject.digest);
    let dir = tempfile::tempdir().unwrap();
    let key = make_test_chain(dir.path(), "signer", KeySpec::EcP256);
    let root = pki.path("root.pem").display().to_string();

    let down = format!("http://127.0.0.1:{}/tsa", support::free_port());
    let p = pki.clone();
    let replay = TsaServer::with_handler(Arc::new(move |_| {
        HttpReply::ok(p.reply(&p.query(b"some other data", "sha256")).unwrap())
    }));
    let p = pki.clone();
    let other_imprint = TsaServer::with_handler(Arc::new(move |q| {
        // Keeps the nonce, timestamps another hash.
        let req = x509_tsp::TimeStampReq::from_der(q).unwrap();
        let hashed = req.message_imprint.hashed_message.as_bytes().to_vec();
        let mut q = q.to_vec();
        let pos = q
            .windows(hashed.len())
            .position(|w| w == hashed.as_slice())
            .unwrap();
        q[pos] ^= 0xff;
        HttpReply::ok(p.reply(&q).unwrap())
    }));
    let garbage = TsaServer::with_handler(Arc::new(|_| HttpReply::ok(b"<html>hi</html>".to_vec())));
    let rejecting = TsaServer::with_handler(Arc::new(|_| HttpReply::ok(tsp_response(2, &[]))));

    let cases: [(&str, &str, &[&str]); 5] = [
        (down.as_str(), "TSA down", &["TSA", "127.0.0.1"]),
        (garbage.url.as_str(), "garbage", &["TSA", "TimeStampResp"]),
        (rejecting.url.as_str(), "rejection", &["TSA", "rejection"]),
        (replay.url.as_str(), "wrong nonce", &["TSA", "nonce"]),
        (
            other_imprint.url.as_str(),
            "wrong imprint",
            &["TSA", "message imprint"],
        ),
    ];
    for (url, what, needles) in cases {
        let (out, report) = sign(
            &[&reference],
            &key.key,
            &key.chain,
            &["--timestamp-url", url, "--timestamp-root-cert", &root],
        );
        assert_eq!(out.status.code(), Some(1), "{what}: {}", e2e::text(&out));
        assert_eq!(report["signatures"].as_array().unwrap().len(), 0, "{what}");
        let error = report["failures"][0]["error"].as_str().unwrap_or_default();
        for n in needles {
            assert!(
                error.to_lowercase().contains(&n.to_lowercase()),
                "{what}: the error should mention {n:?}: {error}"
            );
        }
        assert!(!error.contains('\n'), "one line: {error}");
    }
    // A genuine TSA whose chain does not lead to the configured root: the token is
    // validated before it is embedded, so signing fails.
    let good = TsaServer::start(pki.clone());
    let other_root = key.root.display().to_string();
    let (out, report) = sign(
        &[&reference],
        &key.key,
        &key.chain,
        &[
            "--timestamp-url",
            &good.url,
            "--timestamp-root-cert",
            &other_root,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", e2e::text(&out));
    let error = report["failures"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("TSA"), "{error}");
    assert!(
        error.contains("root") || error.contains("authority") || error.contains("chain"),
        "{error}"
    );
    // Nothing was pushed by any failed run.
    let out = e2e::run(e2e::bin().args(["list", &reference, "--output", "json"]));
    assert!(out.status.success(), "{}", e2e::text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed["signatures"].as_array().unwrap().len(),
        0,
        "{listed}"
    );

    // Configuration that can never work: exit 2 before signing.
    let not_a_cert = dir.path().join("not-a-cert.pem");
    std::fs::write(&not_a_cert, "hello").unwrap();
    let bad_configs: [(&[&str], &str); 4] = [
        (
            &[
                "--timestamp-url",
                "ftp://127.0.0.1/tsa",
                "--timestamp-root-cert",
                &root,
            ],
            "ftp",
        ),
        (
            &[
                "--timestamp-url",
                &replay.url,
                "--timestamp-root-cert",
                not_a_cert.to_str().unwrap(),
            ],
            "TSA root certificate",
        ),
        (
            &[
                "--timestamp-url",
                &replay.url,
                "--timestamp-root-cert",
                "/nonexistent/root.pem",
            ],
            "/nonexistent/root.pem",
        ),
        (&["--timestamp-url", &replay.url], "timestamp-root-cert"),
    ];
    for (args, needle) in bad_configs {
        let (out, _) = sign(&[&reference], &key.key, &key.chain, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", e2e::text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}: {}",
            e2e::text(&out)
        );
    }
}
