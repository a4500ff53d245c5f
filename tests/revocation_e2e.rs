//! Issue 5 acceptance: revocation checking end to end. Signatures are made and verified by
//! the `sign-action` binary against the real `docker-registry`, with a PKI made by
//! `openssl ca` (root → intermediate → leaf, AIA and CDP on 127.0.0.1), the real
//! `openssl ocsp` responder and CRLs served over HTTP.
//!
//! The upstream CRL scenario (vectors README §8) names `http://localhost:10086/` in its
//! certificates. It is verified at library level through `verify_artifact` with
//! `RevocationChecker::with_url_rewrite` rather than by binding port 10086: a fixed port on
//! a machine shared with other test runs can be taken at any moment, which would make the
//! test fail for reasons unrelated to the code, and the binary builds exactly this
//! checker (without the rewrite) and hands it to the same verifier. The signature itself
//! is still made by the binary and read from the real registry.

mod support;

#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/pki.rs"]
mod pki;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use e2e::{check, sign_ok, verify, warnings, TrustConfig};
use pki::{OcspResponder, TestPki};
use serde_json::Value;
use sign_action::policy::store::TrustStore;
use sign_action::policy::TrustPolicyDocument;
use sign_action::revocation::RevocationChecker;
use sign_action::verify::{verify_artifact, CheckStatus, EffectivePolicy, VerifySettings};
use support::{push_test_image, Registry, RegistryConfig};

/// An artifact signed by the binary with the PKI's leaf, and a trust configuration that
/// trusts the PKI's root, with strict and permissive policies.
struct Signed {
    reference: String,
    config: TrustConfig,
    strict: PathBuf,
    permissive: PathBuf,
}

fn chain_pem(pki: &TestPki) -> PathBuf {
    let path = pki.tmp.path().join("chain.pem");
    let mut pem = Vec::new();
    for f in pki.chain_files() {
        pem.extend(std::fs::read(f).unwrap());
    }
    std::fs::write(&path, pem).unwrap();
    path
}

async fn sign_artifacts(pki: &TestPki, registry: &Registry, repo: &str, n: usize) -> Vec<String> {
    let client = registry.client();
    let mut refs = Vec::new();
    for i in 0..n {
        let d = push_test_image(&client, &registry.host, repo, &format!("v{i}")).await;
        refs.push(format!("{}/{repo}@{}", registry.host, d.digest));
    }
    let r: Vec<&str> = refs.iter().map(String::as_str).collect();
    // These tests are about the verifier: sign whatever the chain's state, so the signing-time
    // check (tested on its own below) neither refuses revoked chains nor fetches CRLs here.
    sign_ok(
        &r,
        &pki.inter.path("leaf.key"),
        &chain_pem(pki),
        &["--no-revocation-check"],
    );
    refs
}

async fn signed(pki: &TestPki, registry: &Registry, repo: &str) -> Signed {
    let reference = sign_artifacts(pki, registry, repo, 1).await.remove(0);
    let config = TrustConfig::new();
    config.add_store("ca", "pki", &[&pki.root.path("ca.pem")]);
    let strict = config.policy("strict.json", "strict", &["ca:pki"], None);
    let permissive = config.policy("permissive.json", "permissive", &["ca:pki"], None);
    Signed {
        reference,
        config,
        strict,
        permissive,
    }
}

impl Signed {
    fn verify(&self, policy: &Path) -> (Option<i32>, Value, String) {
        let (out, doc) = verify(&self.config, policy, &[&self.reference]);
        (out.status.code(), doc, e2e::text(&out))
    }

    /// Strict: passes, revocation passed.
    fn assert_passes(&self) -> Value {
        let (code, doc, text) = self.verify(&self.strict);
        assert_eq!(code, Some(0), "{text}");
        let result = doc["results"][0].clone();
        assert_eq!(
            check(&result["signature"], "revocation")["status"],
            "passed"
        );
        result
    }

    /// Strict fails on revocation with `needle`; permissive passes with a warning naming it.
    fn assert_fails_with(&self, needle: &str) {
        let (code, doc, text) = self.verify(&self.strict);
        assert_eq!(code, Some(1), "{text}");
        let result = &doc["results"][0];
        assert_eq!(result["verified"], false);
        let error = result["error"].as_str().unwrap();
        assert!(
            error.contains("revocation validation failed") && error.contains(needle),
            "{error}"
        );
        let rev = check(&result["failed-signatures"][0], "revocation");
        assert_eq!(rev["status"], "failed");
        assert_eq!(rev["enforcement"], "enforced");

        let (code, doc, text) = self.verify(&self.permissive);
        assert_eq!(code, Some(0), "{text}");
        let result = &doc["results"][0];
        assert_eq!(result["verified"], true);
        assert_eq!(
            check(&result["signature"], "revocation")["enforcement"],
            "logged"
        );
        let w = warnings(result);
        assert!(w.contains("revocation") && w.contains(needle), "{w}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn good_chain_passes_via_ocsp() {
    let registry = Registry::start(RegistryConfig::default());
    let pki = TestPki::new();
    let _responders = pki.start_responders();
    pki.publish_crls();
    let s = signed(&pki, &registry, "app/good").await;
    let result = s.assert_passes();
    assert!(warnings(&result).is_empty(), "{result}");
    let (code, _, text) = s.verify(&s.permissive);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(pki.crl_server.hits(), 0, "OCSP answered; no CRL needed");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_leaf_fails_strict_and_warns_permissive() {
    let registry = Registry::start(RegistryConfig::default());
    let pki = TestPki::new();
    pki.inter.revoke(&pki.leaf, &[]);
    let _responders = pki.start_responders();
    let s = signed(&pki, &registry, "app/revoked-leaf").await;
    s.assert_fails_with("revoked");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_intermediate_fails_strict_and_warns_permissive() {
    let registry = Registry::start(RegistryConfig::default());
    let pki = TestPki::new();
    pki.root.revoke(&pki.inter.path("ca.pem"), &[]);
    let _responders = pki.start_responders();
    let s = signed(&pki, &registry, "app/revoked-inter").await;
    s.assert_fails_with("revoked");
    // It is the intermediate (certificate #2) that is revoked.
    let (_, doc, _) = s.verify(&s.strict);
    let detail = check(&doc["results"][0]["failed-signatures"][0], "revocation")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("Test Intermediate"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn responder_down_the_crl_decides() {
    let registry = Registry::start(RegistryConfig::default());
    let pki = TestPki::new();
    // No responder listens on the AIA ports.
    pki.publish_crls();
    let s = signed(&pki, &registry, "app/crl-fallback").await;
    let result = s.assert_passes();
    let note = check(&result["signature"], "revocation")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        note.contains("127.0.0.1"),
        "the OCSP fallback is reported: {note}"
    );
    assert_eq!(pki.crl_server.hits(), 2, "both CRLs fetched");

    pki.inter.revoke(&pki.leaf, &[]);
    pki.publish_crls();
    s.assert_fails_with("revoked");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_crl_is_unknown() {
    let registry = Registry::start(RegistryConfig::default());
    let pki = TestPki::new();
    let d = pki.crl_server.dir.clone();
    pki.root.gen_crl(&d.join("root.crl"), false, &[]);
    // nextUpdate an hour ago.
    let past = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    let last = (past - time::Duration::hours(1)).format(&fmt).unwrap();
    let next = past.format(&fmt).unwrap();
    pki.inter.gen_crl(
        &d.join("intermediate.crl"),
        false,
        &["-crl_lastupdate", &last, "-crl_nextupdate", &next],
    );
    let s = signed(&pki, &registry, "app/expired-crl").await;
    s.assert_fails_with("unknown");
    let (_, doc, _) = s.verify(&s.strict);
    let detail = check(&doc["results"][0]["failed-signatures"][0], "revocation")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("expired"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn responder_for_the_wrong_issuer_is_unknown_unless_a_crl_decides() {
    let registry = Registry::start(RegistryConfig::default());
    let pki = TestPki::new();
    let other = TestPki::new();
    // A genuine responder for another CA answers on the leaf's AIA port.
    let _wrong = OcspResponder::start(&other.inter, "responder", pki.inter_ocsp_port);
    let _right = OcspResponder::start(&pki.root, "responder", pki.root_ocsp_port);
    let s = signed(&pki, &registry, "app/wrong-issuer").await;
    // No CRL published: the fallback gets 404.
    s.assert_fails_with("unknown");
    pki.publish_crls();
    s.assert_passes();
}

/// 20 artifacts signed by one chain, verified in ONE run: each CRL is fetched once.
#[tokio::test(flavor = "multi_thread")]
async fn one_verify_run_fetches_each_crl_once() {
    let registry = Registry::start(RegistryConfig::default());
    // CDP only: every check goes to the CRLs.
    let pki = TestPki::new_with(false, true);
    pki.publish_crls();
    let refs = sign_artifacts(&pki, &registry, "app/many", 20).await;
    assert_eq!(pki.crl_server.hits(), 0, "signing checks no revocation");
    let config = TrustConfig::new();
    config.add_store("ca", "pki", &[&pki.root.path("ca.pem")]);
    let strict = config.policy("strict.json", "strict", &["ca:pki"], None);
    let r: Vec<&str> = refs.iter().map(String::as_str).collect();
    let (out, doc) = verify(&config, &strict, &r);
    assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    for result in results {
        assert_eq!(result["verified"], true);
        assert_eq!(
            check(&result["signature"], "revocation")["status"],
            "passed"
        );
    }
    assert_eq!(
        pki.crl_server.hits(),
        2,
        "root.crl and intermediate.crl, once each, for 20 artifacts"
    );

    // With --revocation-cache the CRLs outlive the run: a second run fetches nothing.
    let cache = tempfile::tempdir().unwrap();
    for expected_hits in [4, 4] {
        let out = e2e::run(
            e2e::bin()
                .arg("verify")
                .args(&r[..2])
                .arg("--trust-policy")
                .arg(&strict)
                .arg("--trust-store")
                .arg(config.root())
                .arg("--revocation-cache")
                .arg(cache.path()),
        );
        assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
        assert_eq!(pki.crl_server.hits(), expected_hits, "CRL fetches so far");
    }
}

// ---------------------------------------------------------------------------------------
// Upstream CRL scenario (vectors README §8).

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vectors/crl");

/// Sign with the vector chain through the binary, serve `leaf`/`intermediate` as
/// leaf.crl/intermediate.crl, and verify at library level (see the module comment).
async fn vector_case(leaf: &str, intermediate: &str) -> sign_action::verify::ArtifactVerification {
    let registry = Registry::start(RegistryConfig::default());
    let reference = {
        let d = push_test_image(&registry.client(), &registry.host, "e2e/crl", "v1").await;
        format!("{}/e2e/crl@{}", registry.host, d.digest)
    };
    let v = Path::new(VECTORS);
    sign_ok(
        &[&reference],
        &v.join("leaf.key"),
        &v.join("certchain_with_crl.pem"),
        &[],
    );

    let crls = tempfile::tempdir().unwrap();
    std::fs::copy(v.join(leaf), crls.path().join("leaf.crl")).unwrap();
    std::fs::copy(v.join(intermediate), crls.path().join("intermediate.crl")).unwrap();
    let server = pki::FileServer::start(crls.path());
    let port = server.port;
    // Only the CRL host is redirected; the intermediate's OCSP URL
    // (http://localhost.test/ocsp) is left alone and must fail over to the CRL.
    let checker = RevocationChecker::new()
        .unwrap()
        .with_url_rewrite(move |u| {
            u.replace(
                "http://localhost:10086/",
                &format!("http://127.0.0.1:{port}/"),
            )
        });

    let config = TrustConfig::new();
    config.add_store("ca", "e2e", &[&v.join("root.crt")]);
    let policy = TrustPolicyDocument::load_file(&config.policy(
        "trustpolicy.json",
        "strict",
        &["ca:e2e"],
        None,
    ))
    .unwrap();
    let trust_store = TrustStore::open(config.root()).unwrap();
    let (store, parsed) =
        sign_action::oci::open_store(registry.options(), false, std::slice::from_ref(&reference))
            .unwrap();
    let statement = policy
        .select(&parsed[0].fully_qualified_without_digest())
        .unwrap();
    let effective = EffectivePolicy::from_statement(statement, &trust_store).unwrap();
    let settings = VerifySettings {
        revocation: Some(Arc::new(checker)),
        ..VerifySettings::default()
    };
    let result = verify_artifact(
        store.as_ref(),
        &reference,
        &parsed[0],
        &effective,
        &settings,
    )
    .await;
    assert_eq!(server.hits(), 2, "both CRLs fetched from the test server");
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn vector_crl_scenario_good_with_ocsp_fallback() {
    let result = vector_case("leaf.crl", "intermediate.crl").await;
    assert!(result.verified, "{result:?}");
    let sig = result.signature.unwrap();
    let rev = sig.checks.iter().find(|c| c.check == "revocation").unwrap();
    assert_eq!(rev.status, CheckStatus::Passed);
    // notation logs "OCSP check failed with unknown error and fallback to CRL check for
    // certificate #2"; the verifier keeps that note on the check.
    let note = rev.detail.as_deref().unwrap_or_default();
    assert!(
        note.contains("certificate #2") && note.contains("localhost.test"),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vector_crl_scenario_leaf_revoked() {
    let result = vector_case("leaf_revoked.crl", "intermediate.crl").await;
    assert!(!result.verified);
    let error = result.error.unwrap();
    assert!(error.contains("revoked"), "{error}");
    let rev = result.failed_signatures[0]
        .checks
        .iter()
        .find(|c| c.check == "revocation")
        .unwrap();
    assert!(
        rev.detail.as_deref().unwrap().contains("LeafCert"),
        "{rev:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vector_crl_scenario_intermediate_revoked() {
    let result = vector_case("leaf.crl", "intermediate_revoked.crl").await;
    assert!(!result.verified);
    let error = result.error.unwrap();
    assert!(error.contains("revoked"), "{error}");
    let rev = result.failed_signatures[0]
        .checks
        .iter()
        .find(|c| c.check == "revocation")
        .unwrap();
    assert!(
        rev.detail.as_deref().unwrap().contains("IntermediateCA"),
        "{rev:?}"
    );
}

/// A revoked signature does not sink the artifact when another signature verifies: the
/// first signature that passes wins, and the revoked one is reported as tried and failed.
#[tokio::test(flavor = "multi_thread")]
async fn a_good_signature_wins_over_a_revoked_one() {
    let registry = Registry::start(RegistryConfig::default());
    let revoked = TestPki::new();
    revoked.inter.revoke(&revoked.leaf, &[]);
    let _responders = revoked.start_responders();
    // The good chain's responders are down; its CRLs decide.
    let good = TestPki::new();
    good.publish_crls();
    let client = registry.client();
    let d = push_test_image(&client, &registry.host, "app/two-sigs", "v1").await;
    let reference = format!("{}/app/two-sigs@{}", registry.host, d.digest);
    let first = sign_ok(
        &[&reference],
        &revoked.inter.path("leaf.key"),
        &chain_pem(&revoked),
        &["--no-revocation-check"],
    );
    let second = sign_ok(
        &[&reference],
        &good.inter.path("leaf.key"),
        &chain_pem(&good),
        &["--signature-format", "cose"],
    );
    let config = TrustConfig::new();
    config.add_store(
        "ca",
        "pki",
        &[&revoked.root.path("ca.pem"), &good.root.path("ca.pem")],
    );
    let strict = config.policy("strict.json", "strict", &["ca:pki"], None);
    let (out, doc) = verify(&config, &strict, &[&reference]);
    assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
    let result = &doc["results"][0];
    assert_eq!(result["signature"]["digest"], second[0].as_str());
    let failed = result["failed-signatures"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{result}");
    assert_eq!(failed[0]["digest"], first[0].as_str());
    let rev = check(&failed[0], "revocation");
    assert!(rev["detail"].as_str().unwrap().contains("revoked"), "{rev}");
    // Only the revoked chain trusted: the artifact fails.
    let only = TrustConfig::new();
    only.add_store("ca", "pki", &[&revoked.root.path("ca.pem")]);
    let strict = only.policy("strict.json", "strict", &["ca:pki"], None);
    let (out, doc) = verify(&only, &strict, &[&reference]);
    assert_eq!(out.status.code(), Some(1), "{}", e2e::text(&out));
    let error = doc["results"][0]["error"].as_str().unwrap();
    assert!(error.contains("revoked"), "{error}");
}

/// Signing checks the signing chain: a revoked certificate is refused outright (exit 2,
/// nothing pushed), an unknown status is a warning, a good chain signs silently.
#[tokio::test(flavor = "multi_thread")]
async fn signing_refuses_a_revoked_chain_and_warns_on_unknown() {
    let registry = Registry::start(RegistryConfig::default());
    let client = registry.client();
    let d = push_test_image(&client, &registry.host, "app/sign-check", "v1").await;
    let reference = format!("{}/app/sign-check@{}", registry.host, d.digest);

    // Unknown: no responder, no CRL.
    let unknown = TestPki::new();
    let (out, report) = e2e::sign(
        &[&reference],
        &unknown.inter.path("leaf.key"),
        &chain_pem(&unknown),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
    assert_eq!(report["signatures"].as_array().unwrap().len(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains("could not confirm that the signing certificates are not revoked"),
        "{stderr}"
    );

    // Good: OCSP answers, no warning.
    let good = TestPki::new();
    let _good_responders = good.start_responders();
    let (out, _) = e2e::sign(
        &[&reference],
        &good.inter.path("leaf.key"),
        &chain_pem(&good),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", e2e::text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{}",
        e2e::text(&out)
    );

    // Revoked leaf: refused before anything is pushed.
    let revoked = TestPki::new();
    revoked.inter.revoke(&revoked.leaf, &[]);
    let _revoked_responders = revoked.start_responders();
    let other = push_test_image(&client, &registry.host, "app/sign-revoked", "v1").await;
    let other_ref = format!("{}/app/sign-revoked@{}", registry.host, other.digest);
    let (out, _) = e2e::sign(
        &[&other_ref],
        &revoked.inter.path("leaf.key"),
        &chain_pem(&revoked),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", e2e::text(&out));
    let text = e2e::text(&out);
    assert!(
        text.contains("revoked") && text.contains("refused"),
        "{text}"
    );
    let tag = other.digest.replace(':', "-");
    let (status, _, _) = registry
        .raw_get(
            &format!("/v2/app/sign-revoked/manifests/{tag}"),
            "application/vnd.oci.image.index.v1+json",
        )
        .await;
    assert_eq!(status, 404, "nothing was pushed");
}
