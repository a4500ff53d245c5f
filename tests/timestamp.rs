//! RFC 3161 timestamping against a real TSA (`openssl ts -reply` behind HTTP), cross-checked
//! with `openssl ts -verify`, plus the upstream Notary/tspclient-go token vectors.

#[path = "support/tsa.rs"]
mod tsa;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::{Decode, DecodePem, Encode};
use sign_action::crypto::HashAlgorithm;
use sign_action::envelope::Timestamper;
use sign_action::timestamp::{self, HttpTimestamper, TimestampError, TimestampInfo};
use sign_action::x509::Certificate;
use tsa::{HttpReply, TsaOptions, TsaPki, TsaServer};

const ALL_HASHES: [HashAlgorithm; 3] = [
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha384,
    HashAlgorithm::Sha512,
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/timestamp")
        .join(name)
}

fn cert_from_file(path: &std::path::Path) -> Certificate {
    let data = std::fs::read(path).unwrap();
    let der = if data.starts_with(b"-----BEGIN") {
        x509_cert::Certificate::from_pem(&data)
            .unwrap()
            .to_der()
            .unwrap()
    } else {
        data
    };
    Certificate::from_der(&der).unwrap()
}

/// Stand-in for primitive signature bytes: distinct per seed, 256 bytes like an RSA-2048
/// signature.
fn signature(seed: u8) -> Vec<u8> {
    (0..256u32)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn root_of(pki: &TsaPki) -> Certificate {
    Certificate::from_der(&pki.root_der()).unwrap()
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn utc(s: &str) -> SystemTime {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .into()
}

async fn request(
    pki: &Arc<TsaPki>,
    server: &TsaServer,
    sig: &[u8],
    hash: HashAlgorithm,
) -> Result<(Vec<u8>, TimestampInfo), TimestampError> {
    HttpTimestamper::new(&server.url, vec![root_of(pki)])
        .unwrap()
        .request_token(sig, hash)
        .await
}

// ---------------------------------------------------------------------------------------
// Against the real TSA
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn timestamps_with_each_hash_and_openssl_verifies_the_tokens() {
    let pki = Arc::new(TsaPki::new());
    let server = TsaServer::start(pki.clone());
    let tsa_fp = Certificate::from_der(&pki.tsa_der())
        .unwrap()
        .sha256_fingerprint();
    let root_fp = root_of(&pki).sha256_fingerprint();
    for (i, hash) in ALL_HASHES.into_iter().enumerate() {
        let sig = signature(i as u8);
        let before = SystemTime::now();
        let (token, info) = request(&pki, &server, &sig, hash).await.unwrap();
        let after = SystemTime::now();

        assert_eq!(info.hash_algorithm, hash);
        assert_eq!(info.message_imprint, hash.digest(&sig));
        // openssl writes whole seconds: genTime lies within the request, rounded down.
        assert!(unix(info.gen_time) >= unix(before).floor() && info.gen_time <= after);
        assert_eq!(info.accuracy, Duration::ZERO);
        assert!(!info.accuracy_in_token);
        assert_eq!(info.range, (info.gen_time, info.gen_time));
        assert_eq!(info.policy, "1.2.3.4.1");
        assert!(info.nonce.is_some());
        assert!(
            info.tsa_subject.contains("Test TSA"),
            "{}",
            info.tsa_subject
        );
        // TSA → intermediate (from the token) → root (from our roots; not in the token).
        assert_eq!(info.tsa_chain.len(), 3);
        assert_eq!(info.tsa_chain[0], tsa_fp);
        assert_eq!(info.tsa_chain[2], root_fp);

        // The token, not the TimeStampResp, is returned: verify it again on its own.
        let again = timestamp::verify_token(&token, &sig, &[root_of(&pki)]).unwrap();
        assert_eq!(again, info);
        let claimed = timestamp::parse_token_info(&token).unwrap();
        assert_eq!(claimed.gen_time, info.gen_time);
        assert_eq!(claimed.serial, info.serial);
        assert_eq!(claimed.tsa_chain[0], tsa_fp);

        // Independent implementation agrees, and would notice other data.
        pki.openssl_verify(&token, &sig)
            .unwrap_or_else(|e| panic!("openssl ts -verify rejected our {hash:?} token: {e}"));
        assert!(pki.openssl_verify(&token, &signature(99)).is_err());
    }
}

#[tokio::test]
async fn timestamper_trait_returns_a_verifiable_token() {
    let pki = Arc::new(TsaPki::new());
    let server = TsaServer::start(pki.clone());
    let timestamper = HttpTimestamper::new(&server.url, vec![root_of(&pki)]).unwrap();
    let dynamic: &dyn Timestamper = &timestamper;
    let sig = signature(7);
    let token = dynamic
        .timestamp(&sig, HashAlgorithm::Sha384)
        .await
        .unwrap();
    // A TimeStampToken is a ContentInfo { id-signedData, … }, not a TimeStampResp.
    let content_info = cms::content_info::ContentInfo::from_der(&token).unwrap();
    assert_eq!(
        content_info.content_type.to_string(),
        "1.2.840.113549.1.7.2"
    );
    let info = timestamp::verify_token(&token, &sig, &[root_of(&pki)]).unwrap();
    assert_eq!(info.hash_algorithm, HashAlgorithm::Sha384);
    pki.openssl_verify(&token, &sig).unwrap();
}

#[tokio::test]
async fn accuracy_and_baseline_policy_set_the_range() {
    let pki = Arc::new(TsaPki::with_options(TsaOptions {
        accuracy: Some("secs:1, millisecs:500, microsecs:100".into()),
        ..Default::default()
    }));
    let server = TsaServer::start(pki.clone());
    let sig = signature(1);
    let (token, info) = request(&pki, &server, &sig, HashAlgorithm::Sha256)
        .await
        .unwrap();
    assert!(info.accuracy_in_token);
    assert_eq!(info.accuracy, Duration::from_micros(1_500_100));
    assert_eq!(
        info.range,
        (info.gen_time - info.accuracy, info.gen_time + info.accuracy)
    );
    pki.openssl_verify(&token, &sig).unwrap();

    // Baseline policy without an accuracy field: 1 s either way (digest §5 step 7).
    let pki = Arc::new(TsaPki::with_options(TsaOptions {
        policy: "0.4.0.2023.1.1".into(),
        // And fractional genTime seconds.
        clock_precision_digits: 3,
        ..Default::default()
    }));
    let server = TsaServer::start(pki.clone());
    let (token, info) = request(&pki, &server, &sig, HashAlgorithm::Sha256)
        .await
        .unwrap();
    assert_eq!(info.policy, timestamp::BASELINE_POLICY_OID);
    assert!(!info.accuracy_in_token);
    assert_eq!(info.accuracy, Duration::from_secs(1));
    assert_eq!(
        info.range,
        (
            info.gen_time - Duration::from_secs(1),
            info.gen_time + Duration::from_secs(1)
        )
    );
    pki.openssl_verify(&token, &sig).unwrap();
}

#[tokio::test]
async fn ecdsa_tsa_and_root_carried_in_the_token() {
    let pki = Arc::new(TsaPki::with_options(TsaOptions {
        tsa_key: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]
            .map(String::from)
            .to_vec(),
        signer_digest: "sha384".into(),
        include_root_in_token: true,
        ..Default::default()
    }));
    let server = TsaServer::start(pki.clone());
    let sig = signature(2);
    let (token, info) = request(&pki, &server, &sig, HashAlgorithm::Sha512)
        .await
        .unwrap();
    // The path ends at the configured root even though the token carries its own copy.
    assert_eq!(info.tsa_chain.len(), 3);
    assert_eq!(info.tsa_chain[2], root_of(&pki).sha256_fingerprint());
    pki.openssl_verify(&token, &sig).unwrap();
}

/// A DER TSTInfo over `sig` (for `openssl cms -sign` tokens).
fn tst_info(sig: &[u8], hash: HashAlgorithm) -> Vec<u8> {
    tst_info_at(sig, hash, SystemTime::now(), None)
}

fn tst_info_at(
    sig: &[u8],
    hash: HashAlgorithm,
    gen_time: SystemTime,
    nonce: Option<der::asn1::Int>,
) -> Vec<u8> {
    let oid = match hash {
        HashAlgorithm::Sha256 => "2.16.840.1.101.3.4.2.1",
        HashAlgorithm::Sha384 => "2.16.840.1.101.3.4.2.2",
        HashAlgorithm::Sha512 => "2.16.840.1.101.3.4.2.3",
    };
    x509_tsp::TstInfo {
        version: x509_tsp::TspVersion::V1,
        policy: der::asn1::ObjectIdentifier::new_unwrap("1.2.3.4.1"),
        message_imprint: x509_tsp::MessageImprint {
            hash_algorithm: spki::AlgorithmIdentifier {
                oid: der::asn1::ObjectIdentifier::new_unwrap(oid),
                parameters: Some(der::Any::null()),
            },
            hashed_message: der::asn1::OctetString::new(hash.digest(sig)).unwrap(),
        },
        serial_number: der::asn1::Int::new(&[0x2a]).unwrap(),
        gen_time: der::asn1::GeneralizedTime::from_system_time(gen_time).unwrap(),
        accuracy: None,
        ordering: false,
        nonce,
        tsa: None,
        extensions: None,
    }
    .to_der()
    .unwrap()
}

#[test]
fn rsa_pss_token_with_signing_time_verifies() {
    let pki = TsaPki::new();
    let sig = signature(3);
    let token = pki.cms_sign(
        &tst_info(&sig, HashAlgorithm::Sha256),
        &pki.path("tsa.pem"),
        &pki.path("tsa.key"),
        &[
            "-md",
            "sha384",
            "-keyopt",
            "rsa_padding_mode:pss",
            "-keyopt",
            "rsa_pss_saltlen:48",
        ],
    );
    let info = timestamp::verify_token(&token, &sig, &[root_of(&pki)]).unwrap();
    assert_eq!(info.serial, "2a");
    pki.openssl_cms_verify(&token).unwrap();
    // Flip one byte of the PSS signature (the token's last bytes).
    let mut bad = token.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(matches!(
        timestamp::verify_token(&bad, &sig, &[root_of(&pki)]),
        Err(TimestampError::BadSignature(_))
    ));
    assert!(pki.openssl_cms_verify(&bad).is_err());
}

#[test]
fn gen_time_outside_tsa_certificate_validity() {
    let pki = TsaPki::new();
    let sig = signature(11);
    // A day before the TSA certificate was issued.
    let tst = tst_info_at(
        &sig,
        HashAlgorithm::Sha256,
        SystemTime::now() - Duration::from_secs(86_400),
        None,
    );
    let token = pki.cms_sign(&tst, &pki.path("tsa.pem"), &pki.path("tsa.key"), &[]);
    let err = timestamp::verify_token(&token, &sig, &[root_of(&pki)]).unwrap_err();
    assert!(
        matches!(err, TimestampError::TsaCertificate { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("not valid at the timestamp's genTime"),
        "{err}"
    );
}

#[test]
fn token_without_the_tsa_certificate_is_refused() {
    let pki = TsaPki::new();
    let sig = signature(12);
    let token = pki.cms_sign(
        &tst_info(&sig, HashAlgorithm::Sha256),
        &pki.path("tsa.pem"),
        &pki.path("tsa.key"),
        &["-nocerts"],
    );
    let err = timestamp::verify_token(&token, &sig, &[root_of(&pki)]).unwrap_err();
    assert!(matches!(err, TimestampError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("is not in the token"), "{err}");
    // What inspect shows for it: no TSA subject, only the carried intermediate.
    let claimed = timestamp::parse_token_info(&token).unwrap();
    assert_eq!(claimed.tsa_subject, "");
    assert_eq!(claimed.tsa_chain.len(), 1);
}

// ---------------------------------------------------------------------------------------
// verify_token failures on real tokens
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn tampered_and_misapplied_tokens_fail() {
    let pki = Arc::new(TsaPki::new());
    let server = TsaServer::start(pki.clone());
    let sig = signature(4);
    let roots = [root_of(&pki)];
    let (token, _) = request(&pki, &server, &sig, HashAlgorithm::Sha256)
        .await
        .unwrap();

    // Over other data.
    let err = timestamp::verify_token(&token, &signature(5), &roots).unwrap_err();
    assert!(
        matches!(err, TimestampError::ImprintMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("mismatched message"), "{err}");

    // The signature value (last bytes: openssl writes no unsigned attributes).
    let mut bad = token.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x01;
    let err = timestamp::verify_token(&bad, &sig, &roots).unwrap_err();
    assert!(matches!(err, TimestampError::BadSignature(_)), "{err}");
    assert!(pki.openssl_verify(&bad, &sig).is_err());

    // A genTime digit inside TSTInfo: message-digest no longer matches.
    let pos = token
        .windows(2)
        .position(|w| w == [0x18, 0x0f])
        .expect("genTime");
    let mut bad = token.clone();
    bad[pos + 2 + 13] = if bad[pos + 2 + 13] == b'1' {
        b'2'
    } else {
        b'1'
    };
    let err = timestamp::verify_token(&bad, &sig, &roots).unwrap_err();
    assert!(matches!(err, TimestampError::BadSignature(_)), "{err}");
    assert!(err.to_string().contains("message-digest"), "{err}");

    // Not a token at all.
    let err = timestamp::verify_token(b"\x30\x03\x02\x01\x00", &sig, &roots).unwrap_err();
    assert!(matches!(err, TimestampError::Malformed(_)), "{err}");

    // A different TSA root.
    let other = TsaPki::new();
    let err = timestamp::verify_token(&token, &sig, &[root_of(&other)]).unwrap_err();
    assert!(matches!(err, TimestampError::UntrustedTsa(_)), "{err}");
}

#[tokio::test]
async fn signing_certificate_v1_only_is_refused() {
    let pki = Arc::new(TsaPki::with_options(TsaOptions {
        ess_cert_id_alg: "sha1".into(),
        ..Default::default()
    }));
    let server = TsaServer::start(pki.clone());
    let sig = signature(6);
    let err = request(&pki, &server, &sig, HashAlgorithm::Sha256)
        .await
        .unwrap_err();
    let TimestampError::TokenRejected { source, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(**source, TimestampError::MissingSigningCertificateV2 { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("signing-certificate v1"), "{err}");
}

#[test]
fn tsa_certificate_rules_are_enforced() {
    let pki = TsaPki::new();
    let sig = signature(8);
    let roots = [root_of(&pki)];
    for (name, ext) in [
        (
            "eku-not-critical",
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=timeStamping",
        ),
        (
            "eku-extra",
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping,codeSigning",
        ),
        ("eku-missing", "keyUsage=critical,digitalSignature"),
    ] {
        let (cert, key) = pki.issue_cert(name, ext);
        // genTime after the certificate's notBefore (openssl issues from "now").
        std::thread::sleep(Duration::from_millis(1100));
        let tst = tst_info(&sig, HashAlgorithm::Sha256);
        let token = pki.cms_sign(&tst, &cert, &key, &["-md", "sha256"]);
        let err = timestamp::verify_token(&token, &sig, &roots).unwrap_err();
        assert!(
            matches!(err, TimestampError::TsaCertificate { .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains("extended key usage"),
            "{name}: {err}"
        );
        // openssl refuses these TSA certificates too.
        assert!(pki.openssl_verify(&token, &sig).is_err(), "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Client failures
// ---------------------------------------------------------------------------------------

fn misbehaving(reply: impl Fn(&[u8]) -> HttpReply + Send + Sync + 'static) -> TsaServer {
    TsaServer::with_handler(Arc::new(reply))
}

async fn expect_err(pki: &Arc<TsaPki>, url: &str, hash: HashAlgorithm) -> TimestampError {
    let err = HttpTimestamper::new(url, vec![root_of(pki)])
        .unwrap()
        .with_timeout(Duration::from_secs(2))
        .unwrap()
        .request_token(&signature(9), hash)
        .await
        .unwrap_err();
    // The Timestamper trait surfaces the same message.
    assert!(!err.to_string().is_empty());
    err
}

#[tokio::test]
async fn tsa_down() {
    let pki = Arc::new(TsaPki::new());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = expect_err(
        &pki,
        &format!("http://127.0.0.1:{port}/tsa"),
        HashAlgorithm::Sha256,
    )
    .await;
    assert!(matches!(err, TimestampError::Transport { .. }), "{err}");
    assert!(err.to_string().contains("cannot reach the TSA"), "{err}");
}

#[tokio::test]
async fn tsa_times_out() {
    let pki = Arc::new(TsaPki::new());
    let p = pki.clone();
    let server = misbehaving(move |q| HttpReply {
        delay: Duration::from_secs(4),
        ..HttpReply::ok(p.reply(q).unwrap())
    });
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
    assert!(matches!(err, TimestampError::Transport { .. }), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn tsa_answers_garbage() {
    let pki = Arc::new(TsaPki::new());
    let server = misbehaving(|_| HttpReply::ok(b"<html>hello</html>".to_vec()));
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
    assert!(matches!(err, TimestampError::BadResponse { .. }), "{err}");
}

#[tokio::test]
async fn tsa_rejects_the_request() {
    // The TSA only accepts SHA-256 imprints; openssl answers status rejection + badAlg.
    let pki = Arc::new(TsaPki::with_options(TsaOptions {
        digests: "sha256".into(),
        ..Default::default()
    }));
    let server = TsaServer::start(pki.clone());
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha512).await;
    assert!(matches!(err, TimestampError::Rejected { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("rejection"), "{msg}");
    assert!(msg.contains("badAlg"), "{msg}");
}

#[tokio::test]
async fn replayed_answer_has_the_wrong_nonce() {
    let pki = Arc::new(TsaPki::new());
    let p = pki.clone();
    // Answers every request with a reply made for another query.
    let server = misbehaving(move |_| {
        HttpReply::ok(p.reply(&p.query(b"some other data", "sha256")).unwrap())
    });
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
    assert!(
        matches!(err, TimestampError::ResponseMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nonce"), "{err}");
}

#[tokio::test]
async fn answer_over_another_imprint_is_refused() {
    let pki = Arc::new(TsaPki::new());
    let p = pki.clone();
    let digest = HashAlgorithm::Sha256.digest(&signature(9));
    // Keeps our nonce but timestamps a different hash.
    let server = misbehaving(move |q| {
        let mut q = q.to_vec();
        let pos = q
            .windows(digest.len())
            .position(|w| w == digest.as_slice())
            .expect("imprint in query");
        q[pos] ^= 0xff;
        HttpReply::ok(p.reply(&q).unwrap())
    });
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
    assert!(
        matches!(err, TimestampError::ResponseMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("message imprint"), "{err}");
}

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

#[tokio::test]
async fn gen_time_in_the_future_is_refused() {
    let pki = Arc::new(TsaPki::new());
    let p = pki.clone();
    // A TSA whose clock runs ten minutes ahead; answers our nonce and imprint correctly.
    let server = misbehaving(move |q| {
        let req = x509_tsp::TimeStampReq::from_der(q).unwrap();
        let tst = tst_info_at(
            &signature(9),
            HashAlgorithm::Sha256,
            SystemTime::now() + Duration::from_secs(600),
            req.nonce,
        );
        let token = p.cms_sign(&tst, &p.path("tsa.pem"), &p.path("tsa.key"), &[]);
        HttpReply::ok(tsp_response(0, &token))
    });
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
    assert!(
        matches!(err, TimestampError::ResponseMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("in the future"), "{err}");
}

#[tokio::test]
async fn granted_status_without_token_and_bare_rejection() {
    let pki = Arc::new(TsaPki::new());
    let server = misbehaving(|_| HttpReply::ok(tsp_response(0, &[])));
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
    assert!(matches!(err, TimestampError::BadResponse { .. }), "{err}");
    assert!(err.to_string().contains("no TimeStampToken"), "{err}");

    let server = misbehaving(|_| HttpReply::ok(tsp_response(3, &[])));
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
    assert!(err.to_string().contains("status 3 (waiting)"), "{err}");
}

#[tokio::test]
async fn http_500() {
    let pki = Arc::new(TsaPki::new());
    let server = misbehaving(|_| HttpReply {
        status: 500,
        content_type: Some("text/plain".into()),
        ..HttpReply::ok(b"boom".to_vec())
    });
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
    assert!(
        matches!(err, TimestampError::HttpStatus { status: 500, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_content_type() {
    let pki = Arc::new(TsaPki::new());
    let p = pki.clone();
    let server = misbehaving(move |q| HttpReply {
        content_type: Some("application/octet-stream".into()),
        ..HttpReply::ok(p.reply(q).unwrap())
    });
    let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
    assert!(matches!(err, TimestampError::ContentType { .. }), "{err}");
    assert!(
        err.to_string().contains("application/octet-stream"),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_reply_with_and_without_content_length() {
    let pki = Arc::new(TsaPki::new());
    for omit_length in [false, true] {
        let server = misbehaving(move |_| HttpReply {
            omit_length,
            ..HttpReply::ok(vec![0x30; timestamp::MAX_REPLY_BYTES + 1])
        });
        let err = expect_err(&pki, &server.url, HashAlgorithm::Sha256).await;
        assert!(
            matches!(err, TimestampError::TooLarge { .. }),
            "omit_length={omit_length}: {err}"
        );
    }
}

#[tokio::test]
async fn tsa_root_not_trusted() {
    let pki = Arc::new(TsaPki::new());
    let server = TsaServer::start(pki.clone());
    let other = TsaPki::new();
    let err = HttpTimestamper::new(&server.url, vec![root_of(&other)])
        .unwrap()
        .request_token(&signature(10), HashAlgorithm::Sha256)
        .await
        .unwrap_err();
    let TimestampError::TokenRejected {
        source, summary, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(matches!(**source, TimestampError::UntrustedTsa(_)), "{err}");
    assert!(summary.contains("Test TSA"), "{summary}");
    let via_trait = HttpTimestamper::new(&server.url, vec![root_of(&other)])
        .unwrap()
        .timestamp(&signature(10), HashAlgorithm::Sha256)
        .await
        .unwrap_err();
    assert!(via_trait.contains("not trusted"), "{via_trait}");
}

// ---------------------------------------------------------------------------------------
// Upstream vectors (tspclient-go / notation-go)
//
// Revocation of these GlobalSign TSA chains (digest §5 step 6) needs their OCSP responders
// and CRL endpoints on the Internet, which tests cannot reach offline. `verify_token` does
// not check revocation (it returns the validated path in `tsa_chain` for the verifier's
// revocation step); revocation against local OCSP/CRL servers is tested with that module.
// ---------------------------------------------------------------------------------------

#[test]
fn tspclient_token_vector() {
    let token = std::fs::read(fixture("TimeStampToken.p7s")).unwrap();
    let root = cert_from_file(&fixture("GlobalSignRootCA.crt"));
    let info = timestamp::verify_token(&token, b"notation", std::slice::from_ref(&root)).unwrap();
    assert_eq!(info.gen_time, utc("2021-09-17T14:09:10Z"));
    assert_eq!(info.accuracy, Duration::from_secs(1));
    assert_eq!(
        info.range,
        (utc("2021-09-17T14:09:09Z"), utc("2021-09-17T14:09:11Z"))
    );
    assert_eq!(info.policy, "1.3.6.1.4.1.4146.2.3");
    assert!(info
        .tsa_subject
        .contains("Globalsign TSA for Advanced - G4"));
    // TSA → GlobalSign Timestamping CA G4 → R6 (cross-signed by R3) → R3.
    assert_eq!(info.tsa_chain.len(), 4);
    assert_eq!(info.tsa_chain[3], root.sha256_fingerprint());

    let err =
        timestamp::verify_token(&token, b"notation!", std::slice::from_ref(&root)).unwrap_err();
    assert!(
        matches!(err, TimestampError::ImprintMismatch { .. }),
        "{err}"
    );
}

#[test]
fn tspclient_token_with_mismatched_cert_hash() {
    let token = std::fs::read(fixture("TimeStampTokenWithMismatchCertHash.p7s")).unwrap();
    let root = cert_from_file(&fixture("GlobalSignRootCA.crt"));
    let err = timestamp::verify_token(&token, b"notation", &[root]).unwrap_err();
    assert!(
        matches!(err, TimestampError::SigningCertificateMismatch(_)),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("signing certificate hash does not match CertHash"),
        "{err}"
    );
}

/// (signature bytes, timestamp token, leaf certificate) out of a Notary envelope, read
/// directly (the envelope parser is a separate module).
fn envelope_parts(name: &str) -> (Vec<u8>, Vec<u8>, Certificate) {
    use base64::Engine;
    let bytes = std::fs::read(fixture(name)).unwrap();
    if bytes.first() == Some(&b'{') {
        let jws: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let std = base64::engine::general_purpose::STANDARD;
        let sig = b64url.decode(jws["signature"].as_str().unwrap()).unwrap();
        let token = std
            .decode(
                jws["header"]["io.cncf.notary.timestampSignature"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let leaf = std
            .decode(jws["header"]["x5c"][0].as_str().unwrap())
            .unwrap();
        (sig, token, Certificate::from_der(&leaf).unwrap())
    } else {
        use ciborium::Value;
        let v: Value = ciborium::from_reader(bytes.as_slice()).unwrap();
        let Value::Tag(18, inner) = v else {
            panic!("not COSE_Sign1_Tagged")
        };
        let Value::Array(parts) = *inner else {
            panic!("COSE_Sign1 is an array")
        };
        let Value::Map(unprotected) = &parts[1] else {
            panic!("unprotected map")
        };
        let mut token = None;
        let mut leaf = None;
        for (k, v) in unprotected {
            match (k, v) {
                (Value::Text(t), Value::Bytes(b)) if t == "io.cncf.notary.timestampSignature" => {
                    token = Some(b.clone())
                }
                (Value::Integer(i), Value::Array(certs)) if i128::from(*i) == 33 => {
                    if let Value::Bytes(b) = &certs[0] {
                        leaf = Some(b.clone())
                    }
                }
                _ => {}
            }
        }
        let Value::Bytes(sig) = &parts[3] else {
            panic!("signature bstr")
        };
        (
            sig.clone(),
            token.expect("timestamp token"),
            Certificate::from_der(&leaf.expect("x5chain")).unwrap(),
        )
    }
}

fn globalsign_r6() -> Certificate {
    cert_from_file(&fixture("globalsignRoot.cer"))
}

#[test]
fn notation_envelope_tokens_verify() {
    let root = globalsign_r6();
    for name in [
        "jwsWithTimestamp.sig",
        "coseWithTimestamp.sig",
        "jwsExpiredWithTimestamp.sig",
    ] {
        let (sig, token, leaf) = envelope_parts(name);
        let info = timestamp::verify_token(&token, &sig, std::slice::from_ref(&root))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.hash_algorithm, HashAlgorithm::Sha256, "{name}");
        assert_eq!(info.accuracy, Duration::from_secs(1), "{name}");
        assert!(info.tsa_subject.contains("Globalsign TSA"), "{name}");
        // TSA → G4 CA → R6 (the configured root).
        assert_eq!(info.tsa_chain.len(), 3, "{name}");
        assert_eq!(info.tsa_chain[2], root.sha256_fingerprint(), "{name}");
        // Digest §5 step 7 against the signing leaf.
        info.check_within_validity(&leaf)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Over other bytes it is no countersignature of this signature.
        let mut other = sig.clone();
        other[0] ^= 1;
        assert!(matches!(
            timestamp::verify_token(&token, &other, std::slice::from_ref(&root)),
            Err(TimestampError::ImprintMismatch { .. })
        ));
    }
    let (sig, token, _) = envelope_parts("jwsWithTimestamp.sig");
    let info = timestamp::verify_token(&token, &sig, &[root]).unwrap();
    assert_eq!(info.gen_time, utc("2024-06-18T06:29:37Z"));
    assert_eq!(
        info.range,
        (utc("2024-06-18T06:29:36Z"), utc("2024-06-18T06:29:38Z"))
    );
}

#[test]
fn notation_envelope_timestamp_outside_leaf_validity() {
    let root = globalsign_r6();
    let (sig, token, leaf) = envelope_parts("timestampBeforeNotBefore.sig");
    let info = timestamp::verify_token(&token, &sig, std::slice::from_ref(&root)).unwrap();
    let err = info.check_within_validity(&leaf).unwrap_err();
    assert!(
        err.to_string()
            .contains("validity period, it will be valid from \"Fri, 18 Sep 2099 11:54:34 +0000\""),
        "{err}"
    );
    let (sig, token, leaf) = envelope_parts("timestampAfterNotAfter.sig");
    let info = timestamp::verify_token(&token, &sig, &[root]).unwrap();
    let err = info.check_within_validity(&leaf).unwrap_err();
    assert!(
        err.to_string()
            .contains("validity period, it was expired at \"Tue, 18 Sep 2001 11:54:34 +0000\""),
        "{err}"
    );
}

#[test]
fn notation_envelope_token_with_wrong_tsa_root() {
    // GlobalSign R3 instead of R6: the token carries R6 self-signed, which R3 did not issue.
    let (sig, token, _) = envelope_parts("jwsWithTimestamp.sig");
    let err = timestamp::verify_token(
        &token,
        &sig,
        &[cert_from_file(&fixture("GlobalSignRootCA.crt"))],
    )
    .unwrap_err();
    assert!(matches!(err, TimestampError::UntrustedTsa(_)), "{err}");
}
