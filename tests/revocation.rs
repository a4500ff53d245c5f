//! Revocation checks against a real `openssl ca` PKI, the real `openssl ocsp` responder and
//! CRLs served over HTTP on 127.0.0.1, plus the upstream notation CRL scenario vectors.

#[path = "support/pki.rs"]
mod pki;

use std::path::{Path, PathBuf};

use pki::{pem_certs, OcspResponder, TestPki};
use sign_action::revocation::{
    ChainRevocation, RevocationChecker, RevocationSource, RevocationStatus,
};
use sign_action::x509::Certificate;

fn chain_of(files: &[PathBuf]) -> Vec<Certificate> {
    files
        .iter()
        .flat_map(|f| pem_certs(f))
        .map(|der| Certificate::from_der(&der).unwrap())
        .collect()
}

fn checker() -> RevocationChecker {
    RevocationChecker::new().unwrap()
}

fn assert_status(r: &ChainRevocation, want: RevocationStatus) {
    assert_eq!(r.status, want, "unexpected outcome: {r}\n{r:#?}");
}

fn source_of(r: &ChainRevocation, index: usize) -> Option<RevocationSource> {
    r.certificates[index].source.clone()
}

fn ocsp(port: u16) -> Option<RevocationSource> {
    Some(RevocationSource::Ocsp {
        url: format!("http://127.0.0.1:{port}"),
    })
}

#[tokio::test]
async fn good_chain_is_good_via_ocsp() {
    let pki = TestPki::new();
    let _resp = pki.start_responders();
    let chain = chain_of(&pki.chain_files());
    let c = checker();
    let r = c.check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Good);
    assert_eq!(r.certificates.len(), 2, "the root is not checked");
    assert_eq!(source_of(&r, 0), ocsp(pki.inter_ocsp_port));
    assert_eq!(source_of(&r, 1), ocsp(pki.root_ocsp_port));
    assert!(r.certificates.iter().all(|c| c.ocsp_fallback.is_none()));
    // No CRL was needed.
    assert_eq!(pki.crl_server.hits(), 0);
    assert_eq!(c.fetch_count(), 2);
}

#[tokio::test]
async fn revoked_leaf_via_ocsp() {
    let pki = TestPki::new();
    pki.inter
        .revoke(&pki.leaf, &["-crl_reason", "keyCompromise"]);
    let _resp = pki.start_responders();
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Revoked);
    let leaf = &r.certificates[0];
    assert_eq!(leaf.index, 0);
    assert_eq!(leaf.status, RevocationStatus::Revoked);
    assert!(leaf.subject.contains("Test Leaf"), "{}", leaf.subject);
    assert_eq!(leaf.source, ocsp(pki.inter_ocsp_port));
    assert!(
        leaf.detail.as_deref().unwrap().contains("KeyCompromise"),
        "{leaf}"
    );
    assert_eq!(r.certificates[1].status, RevocationStatus::Good);
    assert!(r.to_string().contains("revoked"), "{r}");
}

#[tokio::test]
async fn revoked_intermediate_via_ocsp() {
    let pki = TestPki::new();
    pki.root.revoke(&pki.inter.path("ca.pem"), &[]);
    let _resp = pki.start_responders();
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Revoked);
    assert_eq!(r.certificates[0].status, RevocationStatus::Good);
    assert_eq!(r.certificates[1].status, RevocationStatus::Revoked);
    assert_eq!(source_of(&r, 1), ocsp(pki.root_ocsp_port));
}

#[tokio::test]
async fn responder_down_falls_back_to_good_crl() {
    let pki = TestPki::new();
    pki.publish_crls();
    // No responder runs on the AIA ports: connection refused.
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Good);
    assert_eq!(
        source_of(&r, 0),
        Some(RevocationSource::Crl {
            url: pki.crl_url("intermediate.crl")
        })
    );
    assert_eq!(
        source_of(&r, 1),
        Some(RevocationSource::Crl {
            url: pki.crl_url("root.crl")
        })
    );
    for c in &r.certificates {
        let why = c.ocsp_fallback.as_deref().expect("fallback recorded");
        assert!(why.contains("127.0.0.1"), "{why}");
    }
    assert_eq!(r.fallback_notes().len(), 2);
}

#[tokio::test]
async fn responder_down_falls_back_to_crl_that_revokes() {
    let pki = TestPki::new();
    pki.inter.revoke(&pki.leaf, &[]);
    pki.publish_crls();
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Revoked);
    assert_eq!(r.certificates[0].status, RevocationStatus::Revoked);
    assert_eq!(
        source_of(&r, 0),
        Some(RevocationSource::Crl {
            url: pki.crl_url("intermediate.crl")
        })
    );
    assert!(r.certificates[0].ocsp_fallback.is_some());
}

#[tokio::test]
async fn expired_crl_is_unknown() {
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
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Unknown);
    assert_eq!(r.certificates[0].status, RevocationStatus::Unknown);
    assert!(
        r.certificates[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("expired"),
        "{r}"
    );
    assert_eq!(r.certificates[1].status, RevocationStatus::Good);
}

#[tokio::test]
async fn v1_crl_is_unknown() {
    let pki = TestPki::new();
    let d = pki.crl_server.dir.clone();
    pki.root.gen_crl(&d.join("root.crl"), false, &[]);
    pki.inter.gen_crl(&d.join("intermediate.crl"), true, &[]);
    // Independent check that openssl really wrote a v1 CRL.
    let text = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(d.join("intermediate.crl"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("Version 1"));
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Unknown);
    assert!(
        r.certificates[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("unsupported CRL version 1"),
        "{r}"
    );
}

#[tokio::test]
async fn responder_for_wrong_issuer_is_unknown_then_crl_decides() {
    let pki = TestPki::new();
    let other = TestPki::new();
    // A genuine responder, but for a different CA, answers on the leaf's AIA port; the
    // intermediate's responder is the real one.
    let _wrong = OcspResponder::start(&other.inter, "responder", pki.inter_ocsp_port);
    let _right = OcspResponder::start(&pki.root, "responder", pki.root_ocsp_port);
    let chain = chain_of(&pki.chain_files());

    // No CRL published yet: the CRL fetch gets 404 → unknown.
    let r = checker().check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Unknown);
    let leaf = &r.certificates[0];
    let why = leaf.ocsp_fallback.as_deref().expect("OCSP was tried first");
    assert!(
        why.contains("not signed by") || why.contains("issued by"),
        "{why}"
    );
    assert!(leaf.detail.as_deref().unwrap().contains("404"), "{leaf}");
    assert_eq!(r.certificates[1].status, RevocationStatus::Good);

    // With the CRL available the fallback decides.
    pki.publish_crls();
    let r = checker().check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Good);
    assert_eq!(
        source_of(&r, 0),
        Some(RevocationSource::Crl {
            url: pki.crl_url("intermediate.crl")
        })
    );
}

#[tokio::test]
async fn certs_without_revocation_info_are_not_revoked() {
    let pki = TestPki::new_with(false, false);
    let c = checker();
    let r = c.check_chain(&chain_of(&pki.chain_files()), None).await;
    assert_status(&r, RevocationStatus::Good);
    assert!(r.certificates.iter().all(|c| c.source.is_none()));
    assert_eq!(c.fetch_count(), 0);
}

#[tokio::test]
async fn broken_chain_is_unknown() {
    let pki = TestPki::new();
    let other = TestPki::new();
    // Leaf of one PKI with the intermediate of another: the link signature fails.
    let chain = chain_of(&[
        pki.leaf.clone(),
        other.inter.path("ca.pem"),
        other.root.path("ca.pem"),
    ]);
    let c = checker();
    let r = c.check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Unknown);
    assert!(
        r.detail.as_deref().unwrap().contains("invalid chain"),
        "{r}"
    );
    assert_eq!(c.fetch_count(), 0);
}

#[tokio::test]
async fn cache_fetches_each_answer_once() {
    let pki = TestPki::new();
    let _resp = pki.start_responders();
    let chain = chain_of(&pki.chain_files());
    let c = checker();
    for _ in 0..10 {
        assert_status(&c.check_chain(&chain, None).await, RevocationStatus::Good);
    }
    // Concurrent checks share the same in-flight fetches.
    let results = futures::future::join_all((0..10).map(|_| c.check_chain(&chain, None))).await;
    for r in &results {
        assert_status(r, RevocationStatus::Good);
    }
    assert_eq!(c.fetch_count(), 2, "one OCSP answer per certificate");
}

#[tokio::test]
async fn cache_fetches_each_crl_once_even_concurrently() {
    let pki = TestPki::new();
    pki.publish_crls();
    let chain = chain_of(&pki.chain_files());
    let c = checker();
    let results = futures::future::join_all((0..20).map(|_| c.check_chain(&chain, None))).await;
    for r in &results {
        assert_status(r, RevocationStatus::Good);
    }
    // Two failed OCSP attempts (refused) and two CRLs, each once.
    assert_eq!(c.fetch_count(), 4);
    assert_eq!(pki.crl_server.hits(), 2, "the CRL server saw each CRL once");
}

#[tokio::test]
async fn disk_cache_serves_a_later_checker() {
    let pki = TestPki::new();
    pki.publish_crls();
    let cache = tempfile::tempdir().unwrap();
    let chain = chain_of(&pki.chain_files());
    {
        let resp = pki.start_responders();
        let first = checker().with_cache_dir(cache.path());
        assert_status(
            &first.check_chain(&chain, None).await,
            RevocationStatus::Good,
        );
        assert_eq!(first.fetch_count(), 2);
        drop(resp);
    }
    // Responders are gone: a fresh checker answers from the disk cache alone.
    let second = checker().with_cache_dir(cache.path());
    let r = second.check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Good);
    assert_eq!(source_of(&r, 0), ocsp(pki.inter_ocsp_port));
    assert_eq!(second.fetch_count(), 0);

    // A checker without the cache has to go to the network (and falls back to the CRLs).
    let third = checker();
    assert_status(
        &third.check_chain(&chain, None).await,
        RevocationStatus::Good,
    );
    assert_eq!(third.fetch_count(), 4);
}

// ---- upstream notation CRL scenario (vectors README §8) ----

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vectors/crl");

/// Serve `leaf`/`intermediate` as leaf.crl/intermediate.crl and check the vector chain, the
/// certificates' `http://localhost:10086/` rewritten to the test server's port. The
/// intermediate's OCSP URL (`http://localhost.test/ocsp`) is left alone: it must fail.
async fn vector_case(leaf: &str, intermediate: &str) -> ChainRevocation {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(VECTORS).join(leaf), dir.path().join("leaf.crl")).unwrap();
    std::fs::copy(
        Path::new(VECTORS).join(intermediate),
        dir.path().join("intermediate.crl"),
    )
    .unwrap();
    let server = pki::FileServer::start(dir.path());
    let port = server.port;
    let chain = chain_of(&[Path::new(VECTORS).join("certchain_with_crl.pem")]);
    assert_eq!(chain.len(), 3);
    // The vector certificates are valid from 2024-11-11 to 2124-10-18; this module does not
    // judge validity, but say so if that ever stops holding.
    let now = std::time::SystemTime::now();
    assert!(
        chain.iter().all(|c| c.is_valid_at(now)),
        "vector certs expired"
    );
    let c = checker().with_url_rewrite(move |u| {
        u.replace(
            "http://localhost:10086/",
            &format!("http://127.0.0.1:{port}/"),
        )
    });
    let r = c.check_chain(&chain, None).await;
    assert_eq!(server.hits(), 2, "both CRLs fetched from the test server");
    r
}

#[tokio::test]
async fn vectors_good_with_ocsp_fallback_to_crl() {
    let r = vector_case("leaf.crl", "intermediate.crl").await;
    assert_status(&r, RevocationStatus::Good);
    let inter = &r.certificates[1];
    assert!(
        inter
            .ocsp_fallback
            .as_deref()
            .unwrap()
            .contains("localhost.test"),
        "{inter:?}"
    );
    assert!(
        matches!(inter.source, Some(RevocationSource::Crl { ref url }) if url == "http://localhost:10086/intermediate.crl")
    );
    assert!(
        r.certificates[0].ocsp_fallback.is_none(),
        "the leaf has no OCSP URL"
    );
    let notes = r.fallback_notes();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("certificate #2"), "{notes:?}");
}

#[tokio::test]
async fn vectors_leaf_revoked() {
    let r = vector_case("leaf_revoked.crl", "intermediate.crl").await;
    assert_status(&r, RevocationStatus::Revoked);
    assert_eq!(r.certificates[0].status, RevocationStatus::Revoked);
    assert_eq!(r.certificates[1].status, RevocationStatus::Good);
}

#[tokio::test]
async fn vectors_intermediate_revoked() {
    let r = vector_case("leaf.crl", "intermediate_revoked.crl").await;
    assert_status(&r, RevocationStatus::Revoked);
    assert_eq!(r.certificates[0].status, RevocationStatus::Good);
    assert_eq!(r.certificates[1].status, RevocationStatus::Revoked);
}

// ---- responder authorisation and freshness ----

#[tokio::test]
async fn ocsp_signed_by_the_issuer_itself_is_accepted() {
    let pki = TestPki::new();
    let _a = OcspResponder::start(&pki.inter, "ca", pki.inter_ocsp_port);
    let _b = OcspResponder::start(&pki.root, "ca", pki.root_ocsp_port);
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Good);
    assert_eq!(source_of(&r, 0), ocsp(pki.inter_ocsp_port));
    assert_eq!(source_of(&r, 1), ocsp(pki.root_ocsp_port));
}

#[tokio::test]
async fn responder_without_ocsp_signing_eku_is_unknown() {
    let pki = TestPki::new();
    // Issued by the right CA, but for code signing, not OCSP signing.
    pki.inter
        .issue("codesigner", "Not A Responder", "v3_leaf", true);
    let _a = OcspResponder::start(&pki.inter, "codesigner", pki.inter_ocsp_port);
    let _b = OcspResponder::start(&pki.root, "responder", pki.root_ocsp_port);
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Unknown);
    let why = r.certificates[0].ocsp_fallback.as_deref().unwrap();
    assert!(why.contains("OCSPSigning"), "{why}");
}

#[tokio::test]
async fn ocsp_answer_without_next_update_is_unknown() {
    let pki = TestPki::new();
    let _a = OcspResponder::start_with(&pki.inter, "responder", pki.inter_ocsp_port, &[]);
    let _b = OcspResponder::start(&pki.root, "responder", pki.root_ocsp_port);
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Unknown);
    let why = r.certificates[0].ocsp_fallback.as_deref().unwrap();
    assert!(why.contains("nextUpdate"), "{why}");
    assert_eq!(r.certificates[1].status, RevocationStatus::Good);
}

// ---- invalidity date, hold, PSS-signed CRLs ----

fn gen_time(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    t.format(&fmt).unwrap()
}

#[tokio::test]
async fn invalidity_date_after_authentic_signing_time_is_not_revoked() {
    let now = time::OffsetDateTime::now_utc();
    let compromised = now - time::Duration::hours(1);
    let pki = TestPki::new();
    pki.inter
        .revoke(&pki.leaf, &["-crl_compromise", &gen_time(compromised)]);
    pki.publish_crls();
    let chain = chain_of(&pki.chain_files());
    let before: std::time::SystemTime = (compromised - time::Duration::hours(1)).into();
    let after: std::time::SystemTime = (compromised + time::Duration::minutes(1)).into();

    // Over CRL (no responders).
    let c = checker();
    assert_status(
        &c.check_chain(&chain, None).await,
        RevocationStatus::Revoked,
    );
    assert_status(
        &c.check_chain(&chain, Some(after)).await,
        RevocationStatus::Revoked,
    );
    assert_status(
        &c.check_chain(&chain, Some(before)).await,
        RevocationStatus::Good,
    );

    // Over OCSP: openssl ocsp puts the compromise time in an invalidityDate extension.
    let _resp = pki.start_responders();
    let c = checker();
    let r = c.check_chain(&chain, Some(before)).await;
    assert_status(&r, RevocationStatus::Good);
    assert_eq!(source_of(&r, 0), ocsp(pki.inter_ocsp_port));
    assert_status(
        &c.check_chain(&chain, None).await,
        RevocationStatus::Revoked,
    );
    assert_status(
        &c.check_chain(&chain, Some(after)).await,
        RevocationStatus::Revoked,
    );
}

#[tokio::test]
async fn certificate_hold_in_crl_is_revoked() {
    let pki = TestPki::new();
    pki.inter
        .revoke(&pki.leaf, &["-crl_hold", "holdInstructionCallIssuer"]);
    pki.publish_crls();
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Revoked);
    assert!(
        r.certificates[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("CertificateHold"),
        "{r}"
    );
}

#[tokio::test]
async fn rsa_pss_signed_crl_is_verified() {
    let pki = TestPki::new();
    let d = pki.crl_server.dir.clone();
    // The root key is RSA: sign its CRL with RSASSA-PSS.
    pki.root.gen_crl(
        &d.join("root.crl"),
        false,
        &[
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
        ],
    );
    pki.inter.gen_crl(&d.join("intermediate.crl"), false, &[]);
    let text = std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(d.join("root.crl"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("rsassaPss"));
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Good);
    assert_eq!(
        source_of(&r, 1),
        Some(RevocationSource::Crl {
            url: pki.crl_url("root.crl")
        })
    );
}

// ---- delta CRLs (crafted with Python `cryptography`, signed by the intermediate's key) ----

const MAKE_CRL: &str = r#"
import datetime, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
spec = json.loads(sys.argv[1])
issuer = x509.load_pem_x509_certificate(open(spec["issuer_cert"], "rb").read())
key = serialization.load_pem_private_key(open(spec["issuer_key"], "rb").read(), None)
leaf = x509.load_pem_x509_certificate(open(spec["leaf"], "rb").read())
now = datetime.datetime.now(datetime.timezone.utc)
b = (x509.CertificateRevocationListBuilder()
     .issuer_name(issuer.subject)
     .last_update(now - datetime.timedelta(minutes=10))
     .next_update(now + datetime.timedelta(hours=24))
     .add_extension(x509.CRLNumber(spec["number"]), False))
if spec.get("delta_of") is not None:
    b = b.add_extension(x509.DeltaCRLIndicator(spec["delta_of"]), True)
if spec.get("freshest"):
    dp = x509.DistributionPoint([x509.UniformResourceIdentifier(spec["freshest"])], None, None, None)
    b = b.add_extension(x509.FreshestCRL([dp]), False)
for reason in spec.get("leaf_entries", []):
    e = (x509.RevokedCertificateBuilder().serial_number(leaf.serial_number)
         .revocation_date(now - datetime.timedelta(minutes=5))
         .add_extension(x509.CRLReason(x509.ReasonFlags[reason]), False).build())
    b = b.add_revoked_certificate(e)
crl = b.sign(key, hashes.SHA256())
open(spec["out"], "wb").write(crl.public_bytes(serialization.Encoding.DER))
"#;

fn make_crl(pki: &TestPki, file: &str, spec: serde_json::Value) {
    let mut spec = spec;
    spec["issuer_cert"] = pki.inter.path("ca.pem").display().to_string().into();
    spec["issuer_key"] = pki.inter.path("ca.key").display().to_string().into();
    spec["leaf"] = pki.leaf.display().to_string().into();
    spec["out"] = pki.crl_server.dir.join(file).display().to_string().into();
    pki::run(
        std::process::Command::new("python3")
            .args(["-c", MAKE_CRL])
            .arg(spec.to_string()),
    );
}

/// A PKI without OCSP, with the root CRL from openssl and the intermediate's base (and
/// delta) CRL crafted per case.
fn delta_pki() -> TestPki {
    let pki = TestPki::new_with(false, true);
    pki.root
        .gen_crl(&pki.crl_server.dir.join("root.crl"), false, &[]);
    pki
}

#[tokio::test]
async fn delta_crl_remove_from_crl_lifts_a_hold() {
    let pki = delta_pki();
    let delta_url = pki.crl_url("delta.crl");
    make_crl(
        &pki,
        "intermediate.crl",
        serde_json::json!({"number": 10, "freshest": delta_url, "leaf_entries": ["certificate_hold"]}),
    );
    // Empty delta: the hold of the base stands.
    make_crl(
        &pki,
        "delta.crl",
        serde_json::json!({"number": 11, "delta_of": 10}),
    );
    let chain = chain_of(&pki.chain_files());
    let r = checker().check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Revoked);

    // The delta releases the hold.
    make_crl(
        &pki,
        "delta.crl",
        serde_json::json!({"number": 12, "delta_of": 10, "leaf_entries": ["remove_from_crl"]}),
    );
    let c = checker();
    let r = c.check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Good);
    assert_eq!(c.fetch_count(), 3, "root CRL, base CRL and delta CRL");
}

#[tokio::test]
async fn delta_crl_can_revoke() {
    let pki = delta_pki();
    let delta_url = pki.crl_url("delta.crl");
    make_crl(
        &pki,
        "intermediate.crl",
        serde_json::json!({"number": 10, "freshest": delta_url}),
    );
    make_crl(
        &pki,
        "delta.crl",
        serde_json::json!({"number": 11, "delta_of": 10, "leaf_entries": ["key_compromise"]}),
    );
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Revoked);
    assert!(r.certificates[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("KeyCompromise"));
}

#[tokio::test]
async fn missing_or_mismatched_delta_crl_is_unknown() {
    let pki = delta_pki();
    let delta_url = pki.crl_url("delta.crl");
    make_crl(
        &pki,
        "intermediate.crl",
        serde_json::json!({"number": 10, "freshest": delta_url}),
    );
    let chain = chain_of(&pki.chain_files());
    // Advertised but not served.
    let r = checker().check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Unknown);
    assert!(
        r.certificates[0].detail.as_deref().unwrap().contains("404"),
        "{r}"
    );

    // A delta whose number does not exceed the base's.
    make_crl(
        &pki,
        "delta.crl",
        serde_json::json!({"number": 10, "delta_of": 10}),
    );
    let r = checker().check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Unknown);
    assert!(
        r.certificates[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("not greater"),
        "{r}"
    );

    // A delta CRL served where the certificate's CDP expects a complete CRL.
    make_crl(
        &pki,
        "intermediate.crl",
        serde_json::json!({"number": 12, "delta_of": 10}),
    );
    let r = checker().check_chain(&chain, None).await;
    assert_status(&r, RevocationStatus::Unknown);
    assert!(
        r.certificates[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("delta CRL was served"),
        "{r}"
    );
}

// ---- limits and wrong signers ----

#[tokio::test]
async fn silent_responder_times_out_after_two_seconds_then_crl_decides() {
    let pki = TestPki::new();
    pki.publish_crls();
    // Accepts connections on both AIA ports and never answers.
    let mut held = Vec::new();
    for port in [pki.inter_ocsp_port, pki.root_ocsp_port] {
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        held.push(std::thread::spawn(move || {
            let conns: Vec<_> = l.incoming().take(1).collect();
            std::thread::sleep(std::time::Duration::from_secs(6));
            drop(conns);
        }));
    }
    let start = std::time::Instant::now();
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    let took = start.elapsed();
    assert_status(&r, RevocationStatus::Good);
    assert!(took >= std::time::Duration::from_secs(2), "{took:?}");
    assert!(
        took < std::time::Duration::from_secs(4),
        "checks run concurrently: {took:?}"
    );
    for c in &r.certificates {
        let why = c.ocsp_fallback.as_deref().unwrap();
        assert!(why.contains("within 2 s"), "{why}");
    }
}

#[tokio::test]
async fn crl_signed_by_another_ca_is_unknown() {
    let pki = TestPki::new();
    let other = TestPki::new();
    pki.root
        .gen_crl(&pki.crl_server.dir.join("root.crl"), false, &[]);
    // Same file name, but the other PKI's intermediate issued it.
    other
        .inter
        .gen_crl(&pki.crl_server.dir.join("intermediate.crl"), false, &[]);
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Unknown);
    let why = r.certificates[0].detail.as_deref().unwrap();
    // Both PKIs name their intermediates alike, so the signature is what tells them apart.
    assert!(why.contains("not signed by the issuer"), "{why}");
}

#[tokio::test]
async fn oversized_crl_is_refused() {
    let pki = TestPki::new();
    pki.publish_crls();
    let big = pki.crl_server.dir.join("intermediate.crl");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(32 * 1024 * 1024 + 1).unwrap();
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Unknown);
    let why = r.certificates[0].detail.as_deref().unwrap();
    assert!(why.contains("exceeds 33554432 bytes"), "{why}");
}

#[tokio::test]
async fn disk_cache_refetches_after_next_update() {
    let pki = TestPki::new_with(false, true);
    let d = pki.crl_server.dir.clone();
    pki.root.gen_crl(&d.join("root.crl"), false, &[]);
    // The intermediate's first CRL is due again in 2 seconds.
    pki.inter
        .gen_crl(&d.join("intermediate.crl"), false, &["-crlsec", "2"]);
    let cache = tempfile::tempdir().unwrap();
    let chain = chain_of(&pki.chain_files());
    let first = checker().with_cache_dir(cache.path());
    assert_status(
        &first.check_chain(&chain, None).await,
        RevocationStatus::Good,
    );
    assert_eq!(first.fetch_count(), 2);

    // Fresh from disk: nothing fetched.
    let second = checker().with_cache_dir(cache.path());
    assert_status(
        &second.check_chain(&chain, None).await,
        RevocationStatus::Good,
    );
    assert_eq!(second.fetch_count(), 0);

    pki.inter.gen_crl(&d.join("intermediate.crl"), false, &[]);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // The cached intermediate CRL passed its nextUpdate: only it is fetched again.
    let third = checker().with_cache_dir(cache.path());
    assert_status(
        &third.check_chain(&chain, None).await,
        RevocationStatus::Good,
    );
    assert_eq!(third.fetch_count(), 1);
    assert_eq!(pki.crl_server.hits(), 3);
}

#[tokio::test]
async fn ocsp_status_unknown_falls_back_to_crl() {
    let pki = TestPki::new();
    pki.publish_crls();
    // Drop the leaf from the intermediate's database: the responder then answers a signed
    // "unknown" for it.
    let index = pki.inter.path("index.txt");
    let kept: String = std::fs::read_to_string(&index)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("Test Leaf"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&index, kept).unwrap();
    let _resp = pki.start_responders();
    let r = checker()
        .check_chain(&chain_of(&pki.chain_files()), None)
        .await;
    assert_status(&r, RevocationStatus::Good);
    let leaf = &r.certificates[0];
    assert!(
        leaf.ocsp_fallback
            .as_deref()
            .unwrap()
            .contains("does not know"),
        "{leaf:?}"
    );
    assert_eq!(
        leaf.source,
        Some(RevocationSource::Crl {
            url: pki.crl_url("intermediate.crl")
        })
    );
    assert_eq!(source_of(&r, 1), ocsp(pki.root_ocsp_port));
}
