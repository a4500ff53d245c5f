//! Notary envelopes end to end: JWS and COSE signed for all six key types (keys and
//! certificates from the openssl CLI, signatures by aws-lc-rs directly), verified by an
//! independent Python implementation (jwcrypto, pycose, cryptography) that also checks the
//! header rules, parsed back by us; upstream vectors with their expected outcomes; and
//! hand-made envelopes that break one rule each (validly signed where the rule is in the
//! signed part, so only the rule can be why they fail).

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use futures::executor::block_on;
use serde_json::{json, Value};
use sign_action::crypto::{CryptoError, HashAlgorithm, KeySpec, SignatureAlgorithm, Signer};
use sign_action::envelope::{
    self, EnvelopeError, EnvelopeFormat, ParsedEnvelope, Payload, SignOptions, SigningScheme,
    Timestamper,
};
use sign_action::oci::Descriptor;

const JWS: &str = "application/jose+json";
const COSE: &str = "application/cose";

fn vectors() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vectors"
    ))
}

fn vector(path: &str) -> Vec<u8> {
    std::fs::read(vectors().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------------
// A signer independent of the crate's LocalSigner: PKCS#8 DER from `openssl pkcs8`, aws-lc-rs.

enum TestKeyPair {
    Rsa(RsaKeyPair, &'static dyn sig::RsaEncoding),
    Ec(EcdsaKeyPair),
}

struct TestSigner {
    spec: KeySpec,
    chain: Vec<Vec<u8>>,
    key: TestKeyPair,
}

impl TestSigner {
    fn load(dir: &Path, key: &support::TestKey, spec: KeySpec) -> TestSigner {
        let der = dir.join(format!("{}.pk8", spec.name()));
        let out = Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&key.key)
            .arg("-out")
            .arg(&der)
            .output()
            .expect("openssl pkcs8");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pkcs8 = std::fs::read(&der).unwrap();
        let key_pair = match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                let padding: &'static dyn sig::RsaEncoding = match spec {
                    KeySpec::Rsa2048 => &sig::RSA_PSS_SHA256,
                    KeySpec::Rsa3072 => &sig::RSA_PSS_SHA384,
                    _ => &sig::RSA_PSS_SHA512,
                };
                TestKeyPair::Rsa(RsaKeyPair::from_pkcs8(&pkcs8).unwrap(), padding)
            }
            KeySpec::EcP256 => TestKeyPair::Ec(
                EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).unwrap(),
            ),
            KeySpec::EcP384 => TestKeyPair::Ec(
                EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, &pkcs8).unwrap(),
            ),
            KeySpec::EcP521 => TestKeyPair::Ec(
                EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P521_SHA512_FIXED_SIGNING, &pkcs8).unwrap(),
            ),
        };
        let chain = sign_action::x509::parse_certificates(
            &std::fs::read(&key.chain).unwrap(),
            "test chain",
        )
        .unwrap()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
        TestSigner {
            spec,
            chain,
            key: key_pair,
        }
    }

    fn sign_now(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            TestKeyPair::Rsa(k, padding) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(*padding, &rng, message, &mut out).unwrap();
                out
            }
            TestKeyPair::Ec(k) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
        }
    }
}

#[async_trait]
impl Signer for TestSigner {
    fn key_spec(&self) -> KeySpec {
        self.spec
    }
    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(self.sign_now(message))
    }
}

/// Records what it was asked to timestamp and returns a recognisable token.
#[derive(Default)]
struct RecordingTimestamper {
    seen: Mutex<Vec<(Vec<u8>, HashAlgorithm)>>,
}

#[async_trait]
impl Timestamper for RecordingTimestamper {
    async fn timestamp(&self, signature: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>, String> {
        self.seen.lock().unwrap().push((signature.to_vec(), hash));
        let mut token = b"token over ".to_vec();
        token.extend(hash.digest(signature));
        Ok(token)
    }
}

struct FailingTimestamper;

#[async_trait]
impl Timestamper for FailingTimestamper {
    async fn timestamp(&self, _: &[u8], _: HashAlgorithm) -> Result<Vec<u8>, String> {
        Err("TSA unreachable".into())
    }
}

fn chain_signer(dir: &Path, spec: KeySpec) -> TestSigner {
    let key = support::make_test_chain(dir, &format!("env-{}", spec.name()), spec);
    TestSigner::load(dir, &key, spec)
}

fn self_signed_signer(dir: &Path, spec: KeySpec) -> TestSigner {
    let key = support::make_named_test_key(dir, &format!("self-{}", spec.name()), spec);
    TestSigner::load(dir, &key, spec)
}

fn artifact() -> Descriptor {
    Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
        517,
    )
}

/// Whole seconds, as the headers carry them.
fn whole(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap().as_secs())
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn options(expiry: bool) -> SignOptions {
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("buildId".to_string(), "42".to_string());
    let payload = Payload::for_artifact(&artifact(), &metadata).unwrap();
    let now = SystemTime::now();
    SignOptions {
        payload: payload.to_bytes(),
        // A fraction of a second that must be dropped.
        signing_time: whole(now) + Duration::from_millis(700),
        expiry: expiry.then(|| whole(now) + Duration::from_secs(86_400)),
        signing_agent: "sign-action/test".into(),
    }
}

/// Run the independent Python verifier; panics with its reason when it rejects.
fn python_verify(format: EnvelopeFormat, envelope: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("envelope.sig");
    std::fs::write(&file, envelope).unwrap();
    let out = python_run(format, &file);
    assert!(
        out.status.success(),
        "python rejected our {} envelope: {}",
        format.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python summary JSON")
}

fn python_run(format: EnvelopeFormat, file: &Path) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_envelope.py");
    Command::new("python3")
        .arg(script)
        .arg(format.name())
        .arg(file)
        .output()
        .expect("python3")
}

fn python_rejects(format: EnvelopeFormat, envelope: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("envelope.sig");
    std::fs::write(&file, envelope).unwrap();
    let out = python_run(format, &file);
    assert!(!out.status.success(), "python accepted a bad envelope");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Sign both formats with `signer`, verify each independently and parse it back.
fn sign_verify_round_trip(signer: &TestSigner) {
    let alg = signer.spec.signature_algorithm();
    for (format, media_type) in [(EnvelopeFormat::Jws, JWS), (EnvelopeFormat::Cose, COSE)] {
        for (expiry, timestamped) in [(true, true), (false, false)] {
            let opts = options(expiry);
            let timestamper = RecordingTimestamper::default();
            let ts: Option<&dyn Timestamper> = timestamped.then_some(&timestamper as _);
            let bytes = block_on(envelope::sign(format, &opts, signer, ts)).unwrap();
            let what = format!("{} {} expiry={expiry}", format.name(), alg);

            let py = python_verify(format, &bytes);
            assert_eq!(py["alg"], alg.jws_name(), "{what}");
            assert_eq!(py["signingTime"], epoch(opts.signing_time), "{what}");
            assert_eq!(py["expiry"], json!(opts.expiry.map(epoch)), "{what}");
            let fingerprints: Vec<String> = signer
                .chain
                .iter()
                .map(|c| sign_action::crypto::sha256_hex(c))
                .collect();
            assert_eq!(py["chain"], json!(fingerprints), "{what}");
            assert_eq!(py["signingAgent"], "sign-action/test", "{what}");
            assert_eq!(
                py["payload"].as_str().unwrap().as_bytes(),
                opts.payload.as_slice(),
                "{what}"
            );

            let parsed = envelope::parse(media_type, &bytes).unwrap();
            assert_eq!(parsed.format, format);
            assert_eq!(parsed.payload, opts.payload, "{what}");
            assert_eq!(parsed.algorithm, alg, "{what}");
            assert_eq!(parsed.signing_scheme, SigningScheme::X509);
            assert_eq!(
                parsed.signing_time,
                Some(whole(opts.signing_time)),
                "{what}"
            );
            assert_eq!(parsed.authentic_signing_time, None);
            assert_eq!(parsed.expiry, opts.expiry, "{what}");
            assert_eq!(parsed.certificate_chain, signer.chain, "{what}");
            assert_eq!(parsed.signing_agent.as_deref(), Some("sign-action/test"));
            assert!(parsed.extended_attributes.is_empty());
            assert!(parsed.unprocessed_critical_attributes().is_empty());
            assert_eq!(parsed.verification_plugin, None);
            envelope::verify_integrity(&parsed).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(Payload::parse(&parsed.payload)
                .unwrap()
                .matches(&artifact()));

            let seen = timestamper.seen.lock().unwrap();
            if timestamped {
                // The timestamper got the primitive signature and the algorithm's hash, and
                // its token is embedded as returned.
                assert_eq!(seen.as_slice(), &[(parsed.signature.clone(), alg.hash())]);
                let mut token = b"token over ".to_vec();
                token.extend(alg.hash().digest(&parsed.signature));
                assert_eq!(parsed.timestamp_token.as_deref(), Some(token.as_slice()));
                assert_eq!(
                    py["timestamp"],
                    sign_action::crypto::sha256_hex(&token),
                    "{what}"
                );
            } else {
                assert!(seen.is_empty());
                assert_eq!(parsed.timestamp_token, None);
                assert_eq!(py["timestamp"], Value::Null);
            }
        }
    }
}

macro_rules! six_key_types {
    ($($name:ident => $spec:expr,)*) => {$(
        #[test]
        fn $name() {
            let dir = tempfile::tempdir().unwrap();
            sign_verify_round_trip(&chain_signer(dir.path(), $spec));
        }
    )*};
}

six_key_types! {
    rsa_2048_ps256_jws_and_cose => KeySpec::Rsa2048,
    rsa_3072_ps384_jws_and_cose => KeySpec::Rsa3072,
    rsa_4096_ps512_jws_and_cose => KeySpec::Rsa4096,
    ec_p256_es256_jws_and_cose => KeySpec::EcP256,
    ec_p384_es384_jws_and_cose => KeySpec::EcP384,
    ec_p521_es512_jws_and_cose => KeySpec::EcP521,
}

#[test]
fn single_self_signed_certificate_is_still_an_array() {
    let dir = tempfile::tempdir().unwrap();
    let signer = self_signed_signer(dir.path(), KeySpec::EcP256);
    assert_eq!(signer.chain.len(), 1);
    sign_verify_round_trip(&signer);
    let bytes = block_on(envelope::sign(
        EnvelopeFormat::Jws,
        &options(false),
        &signer,
        None,
    ))
    .unwrap();
    let env: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(env["header"]["x5c"].is_array());
    // Exactly the four members, in notation's order.
    let keys: Vec<&String> = env.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4);
    let text = String::from_utf8(bytes).unwrap();
    let positions: Vec<usize> = [
        "\"payload\"",
        "\"protected\"",
        "\"header\"",
        "\"signature\"",
    ]
    .iter()
    .map(|k| text.find(k).unwrap())
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn local_signer_produces_envelopes_python_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let key = support::make_test_chain(dir.path(), "local", KeySpec::EcP384);
    let chain: Vec<Vec<u8>> =
        sign_action::x509::parse_certificates(&std::fs::read(&key.chain).unwrap(), "chain")
            .unwrap()
            .iter()
            .map(|c| c.der().to_vec())
            .collect();
    let signer =
        sign_action::crypto::LocalSigner::from_pem(&std::fs::read(&key.key).unwrap(), None, chain)
            .unwrap();
    for (format, media_type) in [(EnvelopeFormat::Jws, JWS), (EnvelopeFormat::Cose, COSE)] {
        let bytes = block_on(envelope::sign(format, &options(true), &signer, None)).unwrap();
        assert_eq!(python_verify(format, &bytes)["alg"], "ES384");
        envelope::verify_integrity(&envelope::parse(media_type, &bytes).unwrap()).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Signing refuses bad signers and failed timestamps.

/// Wraps a signer and corrupts what it returns.
struct BadSigner<'a> {
    inner: &'a TestSigner,
    spec: KeySpec,
    mangle: fn(Vec<u8>) -> Vec<u8>,
}

#[async_trait]
impl Signer for BadSigner<'_> {
    fn key_spec(&self) -> KeySpec {
        self.spec
    }
    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.inner.chain
    }
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok((self.mangle)(self.inner.sign_now(message)))
    }
}

#[test]
fn signing_checks_the_signer_and_the_timestamper() {
    let dir = tempfile::tempdir().unwrap();
    let signer = self_signed_signer(dir.path(), KeySpec::EcP256);
    for format in [EnvelopeFormat::Jws, EnvelopeFormat::Cose] {
        // A signature that does not verify under the leaf (e.g. DER instead of R‖S).
        let bad = BadSigner {
            inner: &signer,
            spec: KeySpec::EcP256,
            mangle: |mut s| {
                s[10] ^= 1;
                s
            },
        };
        let err = block_on(envelope::sign(format, &options(false), &bad, None)).unwrap_err();
        assert!(
            matches!(err, EnvelopeError::Crypto(CryptoError::BadSignature)),
            "{err}"
        );
        // A key spec that is not the leaf's.
        let wrong = BadSigner {
            inner: &signer,
            spec: KeySpec::EcP384,
            mangle: |s| s,
        };
        let err = block_on(envelope::sign(format, &options(false), &wrong, None)).unwrap_err();
        assert!(
            matches!(
                err,
                EnvelopeError::AlgorithmMismatch {
                    header: SignatureAlgorithm::Es384,
                    expected: SignatureAlgorithm::Es256
                }
            ),
            "{err}"
        );
        // Options our parser would refuse are refused before anything is signed.
        let mut opts = options(false);
        opts.expiry = Some(opts.signing_time);
        let err = block_on(envelope::sign(format, &opts, &signer, None)).unwrap_err();
        assert!(err.to_string().contains("expiry"), "{err}");
        let mut opts = options(false);
        opts.payload = b"{\"not\":\"a payload\"}".to_vec();
        let err = block_on(envelope::sign(format, &opts, &signer, None)).unwrap_err();
        assert!(matches!(err, EnvelopeError::Payload(_)), "{err}");
        // Timestamping failure fails signing.
        let err = block_on(envelope::sign(
            format,
            &options(false),
            &signer,
            Some(&FailingTimestamper),
        ))
        .unwrap_err();
        assert!(matches!(err, EnvelopeError::Timestamp(_)), "{err}");
    }
}

// ---------------------------------------------------------------------------------------
// Upstream vectors.

fn parse_file(media_type: &str, path: &str) -> Result<ParsedEnvelope, EnvelopeError> {
    envelope::parse(media_type, &vector(path))
}

#[test]
fn derived_vectors_have_the_expected_outcomes() {
    let control = parse_file(JWS, "derived/jws-control-valid.sig").unwrap();
    envelope::verify_integrity(&control).unwrap();
    assert_eq!(control.algorithm, SignatureAlgorithm::Ps256);
    assert_eq!(
        control.signing_agent.as_deref(),
        Some("spec-digest-derived/1.0")
    );
    assert!(control.unprocessed_critical_attributes().is_empty());

    let tampered = parse_file(JWS, "derived/jws-tampered-payload.sig").unwrap();
    let err = envelope::verify_integrity(&tampered).unwrap_err();
    assert!(
        matches!(err, EnvelopeError::Crypto(CryptoError::BadSignature)),
        "{err}"
    );

    let err = parse_file(JWS, "derived/jws-missing-crit.sig").unwrap_err();
    assert!(
        matches!(err, EnvelopeError::Header { .. }) && err.to_string().contains("crit"),
        "{err}"
    );

    let err = parse_file(JWS, "derived/jws-expiry-not-crit.sig").unwrap_err();
    assert!(
        err.to_string().contains("io.cncf.notary.expiry") && err.to_string().contains("crit"),
        "{err}"
    );

    let mismatch = parse_file(JWS, "derived/jws-alg-mismatch.sig").unwrap();
    let err = envelope::verify_integrity(&mismatch).unwrap_err();
    assert!(
        matches!(
            err,
            EnvelopeError::AlgorithmMismatch {
                header: SignatureAlgorithm::Ps384,
                expected: SignatureAlgorithm::Ps256
            }
        ),
        "{err}"
    );

    let unknown = parse_file(JWS, "derived/jws-unknown-crit.sig").unwrap();
    envelope::verify_integrity(&unknown).unwrap();
    assert_eq!(
        unknown.unprocessed_critical_attributes(),
        vec!["com.example.mustUnderstand"]
    );
}

#[test]
fn notation_go_mock_envelopes() {
    for name in [
        "ca_valid_sig_env",
        "ca_expired_sig_env",
        "sa_valid_sig_env",
        "ca_plugin_sig_env",
    ] {
        let parsed = parse_file(JWS, &format!("envelopes-mock/{name}.json"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        envelope::verify_integrity(&parsed).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.algorithm, SignatureAlgorithm::Ps384, "{name}");
        assert_eq!(parsed.certificate_chain.len(), 2, "{name}");
        // Spelled `io.cncf.notary.SigningAgent` there: a case-sensitive reader ignores it.
        assert_eq!(parsed.signing_agent, None, "{name}");
        let payload = Payload::parse(&parsed.payload).unwrap();
        assert!(payload.matches(&Descriptor::new(
            "application/vnd.docker.distribution.manifest.v2+json",
            "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e",
            528
        )));
    }
    let sa = parse_file(JWS, "envelopes-mock/sa_valid_sig_env.json").unwrap();
    assert_eq!(sa.signing_scheme, SigningScheme::X509SigningAuthority);
    assert_eq!(sa.signing_time, None);
    assert_eq!(
        sa.authentic_signing_time,
        Some(UNIX_EPOCH + Duration::from_secs(1_604_905_200))
    );
    let expired = parse_file(JWS, "envelopes-mock/ca_expired_sig_env.json").unwrap();
    assert_eq!(
        expired.expiry,
        Some(UNIX_EPOCH + Duration::from_secs(1_659_139_140))
    );
    let plugin = parse_file(JWS, "envelopes-mock/ca_plugin_sig_env.json").unwrap();
    assert_eq!(plugin.verification_plugin.as_deref(), Some("plugin-name"));
    assert_eq!(plugin.unprocessed_critical_attributes(), vec!["SomeKey"]);

    let invalid = parse_file(JWS, "envelopes-mock/ca_invalid_sig_env.json");
    assert!(
        invalid.is_err() || envelope::verify_integrity(&invalid.unwrap()).is_err(),
        "the corrupted signature must fail integrity"
    );
}

#[test]
fn timestamped_envelopes_from_notation() {
    let cases = [
        ("jwsWithTimestamp.sig", true),
        ("jwsExpiredWithTimestamp.sig", true),
        ("timestampBeforeNotBefore.sig", true),
        ("timestampAfterNotAfter.sig", true),
        ("coseWithTimestamp.sig", true),
        ("withoutTimestamp.sig", false),
    ];
    for (name, has_token) in cases {
        let bytes = vector(&format!("envelopes-timestamp/{name}"));
        let (media_type, format) = if bytes[0] == 0xd2 {
            (COSE, EnvelopeFormat::Cose)
        } else {
            (JWS, EnvelopeFormat::Jws)
        };
        let parsed = envelope::parse(media_type, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.format, format);
        envelope::verify_integrity(&parsed).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.algorithm, SignatureAlgorithm::Ps256, "{name}");
        match &parsed.timestamp_token {
            // A DER TimeStampToken (ContentInfo: SEQUENCE).
            Some(token) => assert!(
                has_token && token[0] == 0x30 && token.len() > 1000,
                "{name}"
            ),
            None => assert!(!has_token, "{name}"),
        }
    }
    let cose = envelope::parse(COSE, &vector("envelopes-timestamp/coseWithTimestamp.sig")).unwrap();
    assert_eq!(cose.format, EnvelopeFormat::Cose);
    assert_eq!(
        cose.signing_time,
        Some(UNIX_EPOCH + Duration::from_secs(1_718_692_031))
    );
    // notation writes local offsets; they are honoured.
    let jws = envelope::parse(JWS, &vector("envelopes-timestamp/jwsWithTimestamp.sig")).unwrap();
    assert_eq!(
        jws.signing_time,
        Some(UNIX_EPOCH + Duration::from_secs(1_718_692_173))
    );
}

// ---------------------------------------------------------------------------------------
// Hand-made negatives.

fn jws_envelope(signer: &TestSigner, protected: &Value, payload: &[u8], header: Value) -> Vec<u8> {
    let protected = URL_SAFE_NO_PAD.encode(serde_json::to_vec(protected).unwrap());
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let signature = signer.sign_now(format!("{protected}.{payload}").as_bytes());
    jws_bytes(&json!({
        "payload": payload,
        "protected": protected,
        "header": header,
        "signature": URL_SAFE_NO_PAD.encode(signature),
    }))
}

/// Serialise a JWS object with its members in notation's order (serde_json would sort
/// them), keeping any extra members after the four.
fn jws_bytes(env: &Value) -> Vec<u8> {
    let object = env.as_object().unwrap();
    let order = ["payload", "protected", "header", "signature"];
    let members: Vec<String> = order
        .iter()
        .filter_map(|k| object.get(*k).map(|v| format!("{}:{v}", json!(k))))
        .chain(
            object
                .iter()
                .filter(|(k, _)| !order.contains(&k.as_str()))
                .map(|(k, v)| format!("{}:{v}", json!(k))),
        )
        .collect();
    format!("{{{}}}", members.join(",")).into_bytes()
}

type JwsMutation = Box<dyn Fn(&mut Value)>;
type CoseMutation = Box<dyn Fn(&mut Vec<(Vec<u8>, Vec<u8>)>)>;

fn jws_protected(alg: &str) -> Value {
    json!({
        "alg": alg,
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2025-06-01T00:00:00Z",
    })
}

fn payload_bytes() -> Vec<u8> {
    Payload::for_artifact(&artifact(), &Default::default())
        .unwrap()
        .to_bytes()
}

fn x5c_header(signer: &TestSigner) -> Value {
    json!({"x5c": signer.chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>()})
}

fn header_error(result: Result<ParsedEnvelope, EnvelopeError>, needle: &str) {
    match result {
        Ok(_) => panic!("accepted; expected an error mentioning {needle:?}"),
        Err(e) => assert!(
            e.to_string().contains(needle),
            "error {e} does not mention {needle:?}"
        ),
    }
}

#[test]
fn jws_negatives() {
    let dir = tempfile::tempdir().unwrap();
    let signer = self_signed_signer(dir.path(), KeySpec::EcP256);
    let payload = payload_bytes();

    // The control: our hand-made envelope is valid, so each mutation below is the cause.
    let good = jws_envelope(
        &signer,
        &jws_protected("ES256"),
        &payload,
        x5c_header(&signer),
    );
    envelope::verify_integrity(&envelope::parse(JWS, &good).unwrap()).unwrap();
    python_verify(EnvelopeFormat::Jws, &good);

    // Padded base64url in each of the three segments: an envelope whose three segments all
    // have lengths that base64 pads (not multiples of 3), validly signed.
    let mut protected = jws_protected("ES256");
    while serde_json::to_vec(&protected).unwrap().len() % 3 == 0 {
        protected["x.pad"] = format!("{}x", protected["x.pad"].as_str().unwrap_or("")).into();
    }
    let mut padded_payload = payload.clone();
    while padded_payload.len() % 3 == 0 {
        padded_payload.insert(padded_payload.len() - 1, b' ');
    }
    let unpadded = jws_envelope(&signer, &protected, &padded_payload, x5c_header(&signer));
    envelope::verify_integrity(&envelope::parse(JWS, &unpadded).unwrap()).unwrap();
    let unpadded_json: Value = serde_json::from_slice(&unpadded).unwrap();
    let good_json: Value = serde_json::from_slice(&good).unwrap();
    for member in ["payload", "protected", "signature"] {
        let mut env = unpadded_json.clone();
        let raw = URL_SAFE_NO_PAD
            .decode(env[member].as_str().unwrap())
            .unwrap();
        let padded = URL_SAFE.encode(&raw);
        assert!(
            padded.ends_with('='),
            "{member} needs padding for this test"
        );
        env[member] = padded.into();
        let bytes = jws_bytes(&env);
        header_error(envelope::parse(JWS, &bytes), "base64url without padding");
        assert!(python_rejects(EnvelopeFormat::Jws, &bytes).contains("base64url"));
    }
    // url-alphabet, unpadded or over-padded x5c.
    let std_cert = STANDARD.encode(&signer.chain[0]);
    let url_cert = URL_SAFE.encode(&signer.chain[0]);
    assert!(
        url_cert.contains(['-', '_']),
        "a DER certificate uses + or / in base64"
    );
    let wrong_padding = match std_cert.strip_suffix('=') {
        Some(stripped) => stripped.to_string(),
        None => format!("{std_cert}=="),
    };
    for bad in [url_cert, wrong_padding] {
        let mut env = good_json.clone();
        env["header"]["x5c"][0] = bad.into();
        header_error(envelope::parse(JWS, &jws_bytes(&env)), "standard base64");
    }

    // alg none (no signature) and HMAC.
    let mut none = jws_protected("none");
    let none_env = jws_envelope(&signer, &none, &payload, x5c_header(&signer));
    header_error(envelope::parse(JWS, &none_env), "unsupported alg");
    none["alg"] = "HS256".into();
    header_error(
        envelope::parse(
            JWS,
            &jws_envelope(&signer, &none, &payload, x5c_header(&signer)),
        ),
        "unsupported alg",
    );

    // Validly signed header-rule violations.
    let cases: Vec<(JwsMutation, &str)> = vec![
        (Box::new(|p| p["cty"] = "application/json".into()), "cty"),
        (
            Box::new(|p| {
                p.as_object_mut().unwrap().remove("cty");
            }),
            "cty",
        ),
        (Box::new(|p| p["crit"] = json!([])), "crit"),
        (
            Box::new(|p| p["crit"] = json!(["io.cncf.notary.signingScheme", "alg"])),
            "registered header",
        ),
        (
            Box::new(|p| p["crit"] = json!(["io.cncf.notary.signingScheme", "x.absent"])),
            "not in the protected header",
        ),
        (
            Box::new(|p| p["crit"] = json!(["io.cncf.notary.signingTime"])),
            "signingScheme",
        ),
        (
            Box::new(|p| p["io.cncf.notary.signingScheme"] = "notary.x509.v2".into()),
            "unsupported signing scheme",
        ),
        (
            Box::new(|p| {
                p.as_object_mut()
                    .unwrap()
                    .remove("io.cncf.notary.signingTime");
            }),
            "signingTime",
        ),
        (
            Box::new(|p| p["io.cncf.notary.signingTime"] = "2025-06-01 00:00:00".into()),
            "RFC 3339",
        ),
        (
            Box::new(|p| p["io.cncf.notary.signingTime"] = json!(1748736000)),
            "not a string",
        ),
        (
            Box::new(|p| {
                p["io.cncf.notary.authenticSigningTime"] = "2025-06-01T00:00:00Z".into();
                p["crit"] = json!([
                    "io.cncf.notary.signingScheme",
                    "io.cncf.notary.authenticSigningTime"
                ]);
            }),
            "only allowed with the notary.x509.signingAuthority",
        ),
        (
            Box::new(|p| {
                p["io.cncf.notary.signingScheme"] = "notary.x509.signingAuthority".into();
            }),
            "only allowed with the notary.x509 scheme",
        ),
        (
            Box::new(|p| {
                p["io.cncf.notary.expiry"] = "2025-06-01T08:00:00+08:00".into();
                p["crit"] = json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]);
            }),
            "not after the signing time",
        ),
    ];
    for (mutate, needle) in cases {
        let mut protected = jws_protected("ES256");
        mutate(&mut protected);
        let bytes = jws_envelope(&signer, &protected, &payload, x5c_header(&signer));
        header_error(envelope::parse(JWS, &bytes), needle);
    }
    // Any offset is accepted when the rules hold.
    let mut protected = jws_protected("ES256");
    protected["io.cncf.notary.signingTime"] = "2025-06-01T08:00:00+08:00".into();
    protected["io.cncf.notary.expiry"] = "2025-06-01T00:00:01Z".into();
    protected["crit"] = json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]);
    let ok = envelope::parse(
        JWS,
        &jws_envelope(&signer, &protected, &payload, x5c_header(&signer)),
    )
    .unwrap();
    assert_eq!(
        ok.expiry
            .unwrap()
            .duration_since(ok.signing_time.unwrap())
            .unwrap(),
        Duration::from_secs(1)
    );

    // Payload must be a Notary payload object.
    for bad_payload in [&b"[1]"[..], b"{\"targetArtifact\":{}}", b"not json"] {
        let bytes = jws_envelope(
            &signer,
            &jws_protected("ES256"),
            bad_payload,
            x5c_header(&signer),
        );
        assert!(
            matches!(envelope::parse(JWS, &bytes), Err(EnvelopeError::Payload(_))),
            "{}",
            String::from_utf8_lossy(bad_payload)
        );
    }

    // Duplicate protected member (a second alg), the last of which would win elsewhere.
    let protected_text = serde_json::to_string(&jws_protected("ES256"))
        .unwrap()
        .replacen('{', "{\"alg\":\"ES256\",", 1);
    let mut env = good_json.clone();
    env["protected"] = URL_SAFE_NO_PAD.encode(protected_text).into();
    header_error(envelope::parse(JWS, &jws_bytes(&env)), "duplicate");

    // Unprotected header problems.
    for (header, needle) in [
        (json!({}), "missing x5c"),
        (json!({"x5c": []}), "x5c is empty"),
        (
            json!({"x5c": STANDARD.encode(&signer.chain[0])}),
            "not an array",
        ),
        (
            json!({"x5c": [STANDARD.encode(&signer.chain[0])], "io.cncf.notary.timestampSignature": "@@"}),
            "standard base64",
        ),
        (
            json!({"x5c": [STANDARD.encode(&signer.chain[0])], "alg": "ES256"}),
            "both the protected and the unprotected",
        ),
    ] {
        let bytes = jws_envelope(&signer, &jws_protected("ES256"), &payload, header);
        header_error(envelope::parse(JWS, &bytes), needle);
    }
    let mut env = good_json.clone();
    env.as_object_mut().unwrap().remove("header");
    header_error(envelope::parse(JWS, &jws_bytes(&env)), "missing \"header\"");
    let mut env = good_json.clone();
    env["signatures"] = json!([]);
    header_error(envelope::parse(JWS, &jws_bytes(&env)), "flattened");

    // A signature over other bytes fails integrity.
    let mut env = good_json.clone();
    let mut s = URL_SAFE_NO_PAD
        .decode(env["signature"].as_str().unwrap())
        .unwrap();
    s[5] ^= 0x80;
    env["signature"] = URL_SAFE_NO_PAD.encode(s).into();
    let parsed = envelope::parse(JWS, &jws_bytes(&env)).unwrap();
    assert!(matches!(
        envelope::verify_integrity(&parsed),
        Err(EnvelopeError::Crypto(CryptoError::BadSignature))
    ));
}

// Raw CBOR building blocks: the negatives need encodings coset will not produce.

fn cbor_head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | n as u8],
        24..=0xff => vec![m | 24, n as u8],
        0x100..=0xffff => [vec![m | 25], (n as u16).to_be_bytes().to_vec()].concat(),
        _ => [vec![m | 26], (n as u32).to_be_bytes().to_vec()].concat(),
    }
}
fn int(i: i64) -> Vec<u8> {
    if i >= 0 {
        cbor_head(0, i as u64)
    } else {
        cbor_head(1, (-1 - i) as u64)
    }
}
fn tstr(s: &str) -> Vec<u8> {
    [cbor_head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
}
fn bstr(b: &[u8]) -> Vec<u8> {
    [cbor_head(2, b.len() as u64), b.to_vec()].concat()
}
fn array(items: &[Vec<u8>]) -> Vec<u8> {
    [cbor_head(4, items.len() as u64), items.concat()].concat()
}
fn map(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = cbor_head(5, entries.len() as u64);
    for (k, v) in entries {
        out.extend(k);
        out.extend(v);
    }
    out
}
fn tag1(secs: i64) -> Vec<u8> {
    [vec![0xc1], int(secs)].concat()
}

const SCHEME_LABEL: &str = "io.cncf.notary.signingScheme";
const TIME_LABEL: &str = "io.cncf.notary.signingTime";

fn cose_protected_entries() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (int(1), int(-7)),
        (int(2), array(&[tstr(SCHEME_LABEL)])),
        (int(3), tstr("application/vnd.cncf.notary.payload.v1+json")),
        (tstr(TIME_LABEL), tag1(1_748_736_000)),
        (tstr(SCHEME_LABEL), tstr("notary.x509")),
    ]
}

fn cose_unprotected(signer: &TestSigner) -> Vec<u8> {
    map(&[(
        int(33),
        array(&signer.chain.iter().map(|c| bstr(c)).collect::<Vec<_>>()),
    )])
}

/// A COSE_Sign1 over `protected` (raw map bytes), validly signed by `signer`.
fn cose_envelope(
    signer: &TestSigner,
    protected: &[u8],
    unprotected: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let to_be_signed = array(&[
        tstr("Signature1"),
        bstr(protected),
        bstr(&[]),
        bstr(payload),
    ]);
    let signature = signer.sign_now(&to_be_signed);
    [
        vec![0xd2],
        array(&[
            bstr(protected),
            unprotected.to_vec(),
            bstr(payload),
            bstr(&signature),
        ]),
    ]
    .concat()
}

#[test]
fn cose_negatives() {
    let dir = tempfile::tempdir().unwrap();
    let signer = self_signed_signer(dir.path(), KeySpec::EcP256);
    let payload = payload_bytes();
    let unprotected = cose_unprotected(&signer);
    let build = |entries: &[(Vec<u8>, Vec<u8>)]| {
        cose_envelope(&signer, &map(entries), &unprotected, &payload)
    };

    // The control parses, verifies, and Python agrees.
    let good = build(&cose_protected_entries());
    let parsed = envelope::parse(COSE, &good).unwrap();
    envelope::verify_integrity(&parsed).unwrap();
    assert_eq!(
        parsed.signing_time,
        Some(UNIX_EPOCH + Duration::from_secs(1_748_736_000))
    );
    python_verify(EnvelopeFormat::Cose, &good);

    // Untagged COSE_Sign1.
    header_error(envelope::parse(COSE, &good[1..]), "tagged");
    assert!(python_rejects(EnvelopeFormat::Cose, &good[1..]).contains("tagged"));

    // Duplicate map key in the protected header (the second signingScheme), validly signed.
    let mut entries = cose_protected_entries();
    entries.push((tstr(SCHEME_LABEL), tstr("notary.x509.signingAuthority")));
    header_error(envelope::parse(COSE, &build(&entries)), "duplicate");
    // … and an integer key repeated in the unprotected header.
    let dup_unprotected = map(&[
        (int(33), array(&[bstr(&signer.chain[0])])),
        (int(33), array(&[bstr(&signer.chain[0])])),
    ]);
    header_error(
        envelope::parse(
            COSE,
            &cose_envelope(
                &signer,
                &map(&cose_protected_entries()),
                &dup_unprotected,
                &payload,
            ),
        ),
        "duplicate",
    );

    // Indefinite-length items (a signature bstr in chunks; otherwise identical content).
    let message = ciborium_items(&good);
    let mut chunked = vec![0xd2, 0x84];
    chunked.extend(bstr(&message[0]));
    chunked.extend(&unprotected);
    chunked.extend(bstr(&message[2]));
    chunked.push(0x5f);
    chunked.extend(bstr(&message[3][..10]));
    chunked.extend(bstr(&message[3][10..]));
    chunked.push(0xff);
    header_error(envelope::parse(COSE, &chunked), "indefinite-length");

    // Time rules: untagged, tag 0 string, tag 1 float.
    for (value, what) in [
        (int(1_748_736_000), "untagged"),
        ([vec![0xc0], tstr("2025-06-01T00:00:00Z")].concat(), "tag 0"),
        (
            [vec![0xc1, 0xfb], 1_748_736_000f64.to_be_bytes().to_vec()].concat(),
            "tag 1 float",
        ),
    ] {
        let mut entries = cose_protected_entries();
        entries[3].1 = value;
        let result = envelope::parse(COSE, &build(&entries));
        assert!(
            result
                .as_ref()
                .err()
                .is_some_and(|e| e.to_string().contains("tag 1 with an integer")),
            "{what}: {:?}",
            result.err()
        );
    }

    // Header rule violations, each validly signed.
    let cases: Vec<(CoseMutation, &str)> = vec![
        (Box::new(|e| e[2].1 = int(50)), "content type"),
        (
            Box::new(|e| e[2].1 = tstr("application/json")),
            "content type",
        ),
        (Box::new(|e| e[0].1 = int(-257)), "alg"),
        (Box::new(|e| e[0].1 = tstr("ES256")), "alg"),
        (
            Box::new(|e| e[1].1 = array(&[tstr(SCHEME_LABEL), int(1)])),
            "must not list the COSE header label 1",
        ),
        (
            Box::new(|e| e[1].1 = array(&[tstr(TIME_LABEL)])),
            "signingScheme",
        ),
        (
            Box::new(|e| e[1].1 = array(&[tstr(SCHEME_LABEL), tstr("x.absent")])),
            "not in the protected header",
        ),
        (
            Box::new(|e| e[4].1 = tstr("notary.other")),
            "unsupported signing scheme",
        ),
        (
            Box::new(|e| {
                e.remove(3);
            }),
            "signingTime",
        ),
        (
            Box::new(|e| e.push((tstr("io.cncf.notary.expiry"), tag1(1_748_736_000)))),
            "crit",
        ),
        (
            Box::new(|e| {
                e.push((tstr("io.cncf.notary.expiry"), tag1(1_748_736_000)));
                e[1].1 = array(&[tstr(SCHEME_LABEL), tstr("io.cncf.notary.expiry")]);
            }),
            "not after the signing time",
        ),
        (
            Box::new(|e| e.push((int(33), array(&[bstr(b"x")])))),
            "unprotected header",
        ),
    ];
    for (mutate, needle) in cases {
        let mut entries = cose_protected_entries();
        mutate(&mut entries);
        header_error(envelope::parse(COSE, &build(&entries)), needle);
    }

    // x5chain as a single bstr, missing, empty; wrong types of the other unprotected labels.
    let protected = map(&cose_protected_entries());
    for (unprotected, needle) in [
        (map(&[(int(33), bstr(&signer.chain[0]))]), "array"),
        (map(&[]), "missing x5chain"),
        (map(&[(int(33), array(&[]))]), "non-empty array"),
        (map(&[(int(33), array(&[tstr("cert")]))]), "non-bstr"),
        (
            map(&[
                (int(33), array(&[bstr(&signer.chain[0])])),
                (tstr("io.cncf.notary.timestampSignature"), tstr("x")),
            ]),
            "byte string",
        ),
        (
            map(&[
                (int(33), array(&[bstr(&signer.chain[0])])),
                (int(1), int(-7)),
            ]),
            "protected header only",
        ),
    ] {
        header_error(
            envelope::parse(
                COSE,
                &cose_envelope(&signer, &protected, &unprotected, &payload),
            ),
            needle,
        );
    }
    let single = cose_envelope(
        &signer,
        &protected,
        &map(&[(int(33), bstr(&signer.chain[0]))]),
        &payload,
    );
    assert!(python_rejects(EnvelopeFormat::Cose, &single).contains("x5chain"));

    // Detached payload (nil), and a payload that is not a Notary payload.
    let mut detached = vec![0xd2, 0x84];
    detached.extend(bstr(&protected));
    detached.extend(&unprotected);
    detached.push(0xf6);
    detached.extend(bstr(&[0; 64]));
    header_error(envelope::parse(COSE, &detached), "detached");
    assert!(matches!(
        envelope::parse(
            COSE,
            &cose_envelope(&signer, &protected, &unprotected, b"{}")
        ),
        Err(EnvelopeError::Payload(_))
    ));

    // A flipped payload byte parses (still a payload object) but fails integrity.
    let mut tampered_payload = payload.clone();
    let pos = tampered_payload.iter().position(|b| *b == b'5').unwrap();
    tampered_payload[pos] = b'6';
    let mut tampered = vec![0xd2, 0x84];
    tampered.extend(bstr(&protected));
    tampered.extend(&unprotected);
    tampered.extend(bstr(&tampered_payload));
    tampered.extend(bstr(&message[3]));
    let parsed = envelope::parse(COSE, &tampered).unwrap();
    assert!(matches!(
        envelope::verify_integrity(&parsed),
        Err(EnvelopeError::Crypto(CryptoError::BadSignature))
    ));
}

/// The four items of a tagged COSE_Sign1 as byte strings (the unprotected map re-encoded).
fn ciborium_items(bytes: &[u8]) -> Vec<Vec<u8>> {
    let value: ciborium::Value = ciborium::from_reader(bytes).unwrap();
    let ciborium::Value::Tag(18, inner) = value else {
        panic!("not tagged")
    };
    let ciborium::Value::Array(items) = *inner else {
        panic!("not an array")
    };
    items
        .into_iter()
        .map(|item| match item {
            ciborium::Value::Bytes(b) => b,
            other => {
                let mut out = Vec::new();
                ciborium::into_writer(&other, &mut out).unwrap();
                out
            }
        })
        .collect()
}

#[test]
fn oversized_and_unknown_envelopes_are_refused_up_front() {
    let big = vec![b' '; 32 * 1024 * 1024 + 1];
    header_error(envelope::parse(JWS, &big), "limit");
    let mut big_cose = big;
    big_cose[0] = 0xd2;
    header_error(envelope::parse(COSE, &big_cose), "limit");
    assert!(matches!(
        envelope::parse(
            "application/vnd.oci.image.layer.v1.tar",
            b"invalid signature\n"
        ),
        Err(EnvelopeError::UnsupportedMediaType(_))
    ));
    assert!(envelope::parse(JWS, b"").is_err());
    assert!(envelope::parse(COSE, b"").is_err());
    assert!(envelope::parse(JWS, b"[]").is_err());
}

/// Every truncation and every single-bit flip of a valid envelope is parsed without a
/// panic; whatever still parses must then fail integrity unless the flip was in a part the
/// signature does not cover (the unprotected header).
#[test]
fn truncated_and_bit_flipped_envelopes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let signer = self_signed_signer(dir.path(), KeySpec::EcP256);
    for (format, media_type) in [(EnvelopeFormat::Jws, JWS), (EnvelopeFormat::Cose, COSE)] {
        let good = block_on(envelope::sign(format, &options(true), &signer, None)).unwrap();
        let reference = envelope::parse(media_type, &good).unwrap();
        for len in 0..good.len() {
            assert!(
                envelope::parse(media_type, &good[..len]).is_err(),
                "prefix {len}"
            );
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bytes = good.clone();
                bytes[i] ^= 1 << bit;
                let Ok(parsed) = envelope::parse(media_type, &bytes) else {
                    continue;
                };
                let covered = parsed.signed_bytes != reference.signed_bytes
                    || parsed.signature != reference.signature;
                // Flips in the unprotected header (certificate, signing agent) can leave
                // the signed part intact; those are judged by the chain checks instead.
                if covered {
                    assert!(
                        envelope::verify_integrity(&parsed).is_err(),
                        "{} flip at {i}/{bit} still verifies",
                        format.name()
                    );
                }
            }
        }
    }
}
