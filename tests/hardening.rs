//! "Nothing lost, nothing let in": concurrent signers, faults between signer and registry,
//! endless answers and downgrade attempts, driven through the `sign-action` binary and the
//! library against the real registry. Secrets: tests/secrets.rs; fuzz corpora:
//! tests/fuzz_corpus.rs.

#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/pki.rs"]
mod pki;
mod support;

use std::path::PathBuf;
use std::process::Stdio;

use e2e::{bin, text, verify, TrustConfig};
use sign_action::crypto::KeySpec;
use sign_action::oci::reference::Reference;
use sign_action::oci::ArtifactStore;
use support::{make_named_test_key, push_test_image, Registry, RegistryConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_signer_processes_lose_no_signature() {
    // docker-registry has no Referrers API and ignores If-Match: every signer goes through the
    // tag-schema index read-modify-write with read-back confirmation.
    const SIGNERS: usize = 16;
    let reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    let subject = push_test_image(&client, &reg.host, "conc16", "v1").await;
    let reference = format!("{}/conc16@{}", reg.host, subject.digest);
    let keys_dir = tempfile::tempdir().unwrap();
    let keys: Vec<_> = (0..SIGNERS)
        .map(|i| make_named_test_key(keys_dir.path(), &format!("signer{i}"), KeySpec::EcP256))
        .collect();

    let children: Vec<_> = keys
        .iter()
        .map(|k| {
            bin()
                .arg("sign")
                .arg(&reference)
                .arg("--key")
                .arg(&k.key)
                .arg("--cert")
                .arg(&k.chain)
                .args(["--output", "json", "--no-revocation-check"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn sign-action")
        })
        .collect();
    let mut pushed = Vec::new();
    let mut retries = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent signer failed: {}",
            text(&out)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let signed = &report["signatures"][0];
        assert_eq!(signed["storage"], "tag-schema", "{report}");
        pushed.push(signed["signature-digest"].as_str().unwrap().to_string());
        retries.push(signed["index-retries"].as_u64().unwrap_or(0));
    }

    let r = Reference::parse(&reference).unwrap();
    let mut listed: Vec<String> = client
        .list_signatures(&r, &subject)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.digest)
        .collect();
    listed.sort();
    pushed.sort();
    pushed.dedup();
    assert_eq!(
        pushed.len(),
        SIGNERS,
        "signers must produce distinct signatures"
    );
    assert_eq!(
        listed, pushed,
        "every concurrent signature must be discoverable"
    );
    eprintln!(
        "16 concurrent signers (docker-registry, tag schema, no If-Match): {} signatures listed, {} index retries in total (per signer: {retries:?})",
        listed.len(),
        retries.iter().sum::<u64>()
    );

    // Each signer's signature verifies on its own: a trust store holding only that signer's
    // certificate passes only if its signature is listed and intact.
    for (i, k) in keys.iter().enumerate() {
        let config = TrustConfig::new();
        config.add_store("ca", "one", &[&k.root]);
        let policy = config.policy("p.json", "strict", &["ca:one"], None);
        let (out, _) = verify(&config, &policy, &[&reference]);
        assert!(
            out.status.success(),
            "signer {i} did not verify: {}",
            text(&out)
        );
    }
}

/// Every signature manifest the registry stores for `repo` (read from its storage directory,
/// so manifests pushed but never indexed count too), each checked over raw HTTP to have all
/// its blobs. Returns how many signature manifests were found.
async fn assert_no_dangling_signature_manifest(reg: &support::Registry, repo: &str) -> usize {
    let revisions = reg
        .dir()
        .join("storage/docker/registry/v2/repositories")
        .join(repo)
        .join("_manifests/revisions/sha256");
    let mut found = 0;
    for entry in std::fs::read_dir(&revisions).unwrap() {
        let digest = format!("sha256:{}", entry.unwrap().file_name().to_string_lossy());
        let (status, _, body) = reg
            .raw_get(
                &format!("/v2/{repo}/manifests/{digest}"),
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
            )
            .await;
        assert_eq!(status, 200, "{digest}");
        let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if m["config"]["mediaType"] != "application/vnd.cncf.notary.signature" {
            continue;
        }
        found += 1;
        let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_string()];
        for l in m["layers"].as_array().unwrap() {
            blobs.push(l["digest"].as_str().unwrap().to_string());
        }
        for b in blobs {
            let (status, _, _) = reg.raw_get(&format!("/v2/{repo}/blobs/{b}"), "*/*").await;
            assert_eq!(status, 200, "signature manifest {digest} misses blob {b}");
        }
    }
    found
}

/// Registry request timeout for runs through a stalling proxy (the stall lasts longer).
const FAULT_TIMEOUT_SECS: &str = "2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_and_verifying_through_every_fault_kind_succeed_or_fail_clearly() {
    use support::fault_proxy::{Fault::*, FaultProxy, Plan};
    let reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    let mut plan = Plan::new(&[
        Forward, Status503, Forward, Status429, Forward, Status500, Forward, Reset, Forward, Stall,
        Forward, Truncate,
    ]);
    plan.stall = std::time::Duration::from_secs(3);
    let proxy = FaultProxy::with_plan(&reg.host, plan);
    let dir = tempfile::tempdir().unwrap();
    let k = make_named_test_key(dir.path(), "faulty", KeySpec::EcP256);
    let mut refs = Vec::new();
    for i in 0..3 {
        let d = push_test_image(&client, &reg.host, "faulty/app", &format!("v{i}")).await;
        refs.push(format!("{}/faulty/app@{}", proxy.addr, d.digest));
    }
    let started = std::time::Instant::now();
    let out = bin()
        .arg("sign")
        .args(&refs)
        .arg("--key")
        .arg(&k.key)
        .arg("--cert")
        .arg(&k.chain)
        .args(["--output", "json", "--no-revocation-check"])
        .env("SIGN_ACTION_REGISTRY_TIMEOUT", FAULT_TIMEOUT_SECS)
        .output()
        .unwrap();
    // Every artifact is either signed or reported failed with a message.
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON report: {}", text(&out)));
    let signed = report["signatures"].as_array().unwrap().clone();
    let failures = report["failures"].as_array().cloned().unwrap_or_default();
    assert_eq!(signed.len() + failures.len(), refs.len(), "{}", text(&out));
    assert_eq!(out.status.success(), failures.is_empty(), "{}", text(&out));
    for f in &failures {
        let e = f["error"].as_str().unwrap();
        assert!(e.contains(&proxy.addr), "the error names the registry: {e}");
        eprintln!("faulty sign failure: {e}");
    }
    eprintln!(
        "faulty sign ({:?}): {}; {} signed, {} failed",
        started.elapsed(),
        proxy.summary(),
        signed.len(),
        failures.len()
    );
    assert!(
        !signed.is_empty(),
        "retries must get some signatures through: {}",
        text(&out)
    );
    let c = &proxy.counts;
    for (what, n) in [
        ("503", &c.status_503),
        ("429", &c.status_429),
        ("500", &c.status_500),
        ("reset", &c.resets),
        ("stall", &c.stalls),
    ] {
        assert!(
            n.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "no {what} injected"
        );
    }

    // Straight at the registry, over raw HTTP: no signature manifest without its blobs.
    let stored = assert_no_dangling_signature_manifest(&reg, "faulty/app").await;
    assert!(stored >= signed.len());

    // Verification through the same faults: passes through retries (a GET whose body broke
    // off is sent again; what passes was digest-checked whole), or fails naming the registry.
    // That a truncated envelope never passes is `a_truncated_envelope_never_verifies`.
    let config = TrustConfig::new();
    config.add_store("ca", "one", &[&k.root]);
    let policy = config.policy("p.json", "strict", &["ca:one"], None);
    let (mut passed, mut failed) = (0, 0);
    for s in &signed {
        let vout = bin()
            .arg("verify")
            .arg(s["reference"].as_str().unwrap())
            .arg("--trust-policy")
            .arg(&policy)
            .arg("--trust-store")
            .arg(config.root())
            .args(["--output", "json"])
            .env("SIGN_ACTION_REGISTRY_TIMEOUT", FAULT_TIMEOUT_SECS)
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&vout.stdout)
            .unwrap_or_else(|_| panic!("no JSON report: {}", text(&vout)));
        if vout.status.success() {
            passed += 1;
            assert_eq!(doc["results"][0]["verified"], true, "{doc}");
        } else {
            failed += 1;
            eprintln!("faulty verify failure: {}", doc["results"][0]["error"]);
            assert_eq!(doc["results"][0]["verified"], false);
            assert!(doc.to_string().contains(&proxy.addr), "{doc}");
        }
    }
    eprintln!(
        "after verify: {}; {passed} verified, {failed} failed clearly; truncated: {:?}",
        proxy.summary(),
        proxy.truncated.lock().unwrap()
    );
    assert!(passed > 0, "retries must get verifications through");
    assert!(
        proxy
            .counts
            .truncations
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0,
        "no body was truncated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_envelope_never_verifies() {
    use support::fault_proxy::{Fault, FaultProxy, Plan};
    let reg = Registry::start(RegistryConfig::default());
    let subject = push_test_image(&reg.client(), &reg.host, "cut/app", "v1").await;
    let dir = tempfile::tempdir().unwrap();
    let k = make_named_test_key(dir.path(), "cut", KeySpec::EcP256);
    let direct = format!("{}/cut/app@{}", reg.host, subject.digest);
    for format in ["jws", "cose"] {
        e2e::sign_ok(
            &[&direct],
            &k.key,
            &k.chain,
            &["--no-revocation-check", "--signature-format", format],
        );
    }
    // Every blob GET (the envelopes) is cut in half; everything else passes.
    let mut plan = Plan::new(&[Fault::Truncate]);
    plan.applies = |method, path| method == "GET" && path.contains("/blobs/");
    let proxy = FaultProxy::with_plan(&reg.host, plan);
    let through = format!("{}/cut/app@{}", proxy.addr, subject.digest);
    let config = TrustConfig::new();
    config.add_store("ca", "one", &[&k.root]);
    for level in ["strict", "permissive", "audit"] {
        let policy = config.policy(&format!("{level}.json"), level, &["ca:one"], None);
        let (out, doc) = verify(&config, &policy, &[&through]);
        assert!(!out.status.success(), "{level}: {}", text(&out));
        assert_eq!(doc["results"][0]["verified"], false, "{level}: {doc}");
        // Both signatures were tried, each fetched 1 + 3 times, and each failure names the
        // envelope blob that broke off.
        let failed = doc["results"][0]["failed-signatures"].as_array().unwrap();
        assert_eq!(failed.len(), 2, "{level}: {doc}");
        for f in failed {
            let why = f["failure"].as_str().unwrap_or_default();
            assert!(
                why.contains("integrity validation failed")
                    && why.contains("blob sha256:")
                    && why.contains("broke off"),
                "{level}: {why}"
            );
        }
        // The same signatures verify straight from the registry.
        let (ok, _) = verify(&config, &policy, &[&direct]);
        assert!(ok.status.success(), "{level}: {}", text(&ok));
    }
    eprintln!("truncated envelopes: {}", proxy.summary());
    assert!(
        proxy
            .counts
            .truncations
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 6
    );
}

// ------------------------------------------------------------------------------------------
// Downgrades: hostile envelopes, validly signed by a key the verifier has reason to trust,
// attached to artifacts in the real registry and verified through the binary at every level
// that enforces integrity and authenticity.

/// An ECDSA P-256 signer over raw messages (fixed-size r‖s, as JWS and COSE want it).
struct RawSigner(aws_lc_rs::signature::EcdsaKeyPair);

impl RawSigner {
    fn from_pem(path: &std::path::Path) -> RawSigner {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_file(path).unwrap();
        RawSigner(
            aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                der.secret_pkcs8_der(),
            )
            .unwrap(),
        )
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0
            .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .to_vec()
    }
}

fn pem_certs_der(path: &std::path::Path) -> Vec<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(|c| c.unwrap().as_ref().to_vec())
        .collect()
}

/// The pieces of a JWS that a forgery changes; `build` signs what it is given.
#[derive(Clone)]
struct Jws {
    /// Protected header JSON, as text (so duplicate members survive).
    protected: String,
    payload: Vec<u8>,
    header: serde_json::Value,
    /// base64url with `=` padding for the payload member.
    pad_payload: bool,
    /// Replace the signature with this (for `alg: none`).
    signature: Option<Vec<u8>>,
}

impl Jws {
    fn from_template(envelope: &[u8], payload: serde_json::Value) -> Jws {
        use base64::Engine as _;
        let v: serde_json::Value = serde_json::from_slice(envelope).unwrap();
        let protected = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v["protected"].as_str().unwrap())
            .unwrap();
        Jws {
            protected: String::from_utf8(protected).unwrap(),
            payload: serde_json::to_vec(&payload).unwrap(),
            header: v["header"].clone(),
            pad_payload: false,
            signature: None,
        }
    }

    fn protected_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.protected).unwrap()
    }

    fn build(&self, signer: &RawSigner) -> Vec<u8> {
        use base64::Engine as _;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let protected = url.encode(&self.protected);
        let mut payload = url.encode(&self.payload);
        if self.pad_payload {
            while payload.len() % 4 != 0 {
                payload.push('=');
            }
        }
        let signature = self
            .signature
            .clone()
            .unwrap_or_else(|| signer.sign(format!("{protected}.{payload}").as_bytes()));
        serde_json::to_vec(&serde_json::json!({
            "protected": protected,
            "payload": payload,
            "header": self.header,
            "signature": url.encode(signature),
        }))
        .unwrap()
    }
}

/// The pieces of a COSE_Sign1 that a forgery changes.
#[derive(Clone)]
struct Cose {
    protected: Vec<(ciborium::Value, ciborium::Value)>,
    unprotected: ciborium::Value,
    payload: Vec<u8>,
    tagged: bool,
}

impl Cose {
    fn from_template(envelope: &[u8], payload: serde_json::Value) -> Cose {
        use ciborium::Value as C;
        let C::Tag(18, inner) = ciborium::from_reader::<C, _>(envelope).unwrap() else {
            panic!("not a tagged COSE_Sign1")
        };
        let C::Array(items) = *inner else {
            panic!("not an array")
        };
        let C::Bytes(protected) = &items[0] else {
            panic!("protected is not a bstr")
        };
        let C::Map(protected) = ciborium::from_reader::<C, _>(protected.as_slice()).unwrap() else {
            panic!("protected is not a map")
        };
        Cose {
            protected,
            unprotected: items[1].clone(),
            payload: serde_json::to_vec(&payload).unwrap(),
            tagged: true,
        }
    }

    fn build(&self, signer: &RawSigner) -> Vec<u8> {
        use ciborium::Value as C;
        let enc = |v: &C| {
            let mut out = Vec::new();
            ciborium::into_writer(v, &mut out).unwrap();
            out
        };
        let protected = enc(&C::Map(self.protected.clone()));
        let to_be_signed = enc(&C::Array(vec![
            C::Text("Signature1".into()),
            C::Bytes(protected.clone()),
            C::Bytes(Vec::new()),
            C::Bytes(self.payload.clone()),
        ]));
        let sign1 = C::Array(vec![
            C::Bytes(protected),
            self.unprotected.clone(),
            C::Bytes(self.payload.clone()),
            C::Bytes(signer.sign(&to_be_signed)),
        ]);
        enc(&if self.tagged {
            C::Tag(18, Box::new(sign1))
        } else {
            sign1
        })
    }
}

/// Leaf (valid now), intermediate (expired yesterday) and root, made with Python's
/// `cryptography` (openssl 3.0's CLI cannot back-date a certificate); the leaf key is PKCS#8.
fn chain_with_expired_intermediate(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
day = datetime.timedelta(days=1)
def name(cn): return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Notary Test"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def cert(subject, key, issuer, issuer_key, start, end, ca):
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())
rk, ik, lk = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
root = cert("expired-inter Root", rk, "expired-inter Root", rk, now - 30 * day, now + 30 * day, True)
inter = cert("expired-inter Intermediate", ik, "expired-inter Root", rk, now - 30 * day, now - day, True)
leaf = cert("expired-inter Leaf", lk, "expired-inter Intermediate", ik, now - 2 * day, now + 30 * day, False)
pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
open(out + "/ei-chain.pem", "wb").write(pem(leaf) + pem(inter) + pem(root))
open(out + "/ei-root.pem", "wb").write(pem(root))
open(out + "/ei-leaf.key", "wb").write(lk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    (
        dir.join("ei-leaf.key"),
        dir.join("ei-chain.pem"),
        dir.join("ei-root.pem"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgraded_signatures_fail_integrity_or_authenticity_at_every_enforcing_level() {
    use base64::Engine as _;
    use ciborium::Value as C;
    use serde_json::json;
    let std64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    let reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trusted = support::make_test_chain(d, "trusted", KeySpec::EcP256);
    let stranger = support::make_test_chain(d, "stranger", KeySpec::EcP256);
    let unrelated = make_named_test_key(d, "unrelated", KeySpec::EcP256);
    let (ei_key, ei_chain, ei_root) = chain_with_expired_intermediate(d);
    let signer = RawSigner::from_pem(&trusted.key);
    let stranger_signer = RawSigner::from_pem(&stranger.key);
    let ei_signer = RawSigner::from_pem(&ei_key);
    let trusted_x5c: Vec<String> = pem_certs_der(&trusted.chain)
        .iter()
        .map(|c| std64(c))
        .collect();

    // Templates: genuine JWS and COSE envelopes made by sign-action for a throwaway subject.
    let template_subject = push_test_image(&client, &reg.host, "downgrade/template", "t").await;
    let template_ref = format!(
        "{}/downgrade/template@{}",
        reg.host, template_subject.digest
    );
    let mut templates = std::collections::BTreeMap::new();
    let mut annotations = std::collections::BTreeMap::new();
    for format in ["jws", "cose"] {
        let sig = e2e::sign_ok(
            &[&template_ref],
            &trusted.key,
            &trusted.chain,
            &["--no-revocation-check", "--signature-format", format],
        )
        .remove(0);
        let (media_type, envelope) = e2e::fetch_envelope(&reg, "downgrade/template", &sig).await;
        let (_, _, manifest) = reg
            .raw_get(
                &format!("/v2/downgrade/template/manifests/{sig}"),
                "application/vnd.oci.image.manifest.v1+json",
            )
            .await;
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        annotations = serde_json::from_value(manifest["annotations"].clone()).unwrap();
        templates.insert(format, (media_type, envelope));
    }
    let jws_for = |payload: serde_json::Value| Jws::from_template(&templates["jws"].1, payload);
    let cose_for = |payload: serde_json::Value| Cose::from_template(&templates["cose"].1, payload);
    let target = |desc: &sign_action::oci::Descriptor| json!({"targetArtifact": {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}});

    type Forge<'a> = Box<dyn Fn(&sign_action::oci::Descriptor) -> (&'static str, Vec<u8>) + 'a>;
    let jws_type = "application/jose+json";
    let cose_type = "application/cose";
    // (case, expected failing check, forgery for the case's subject, trust store roots)
    let mut cases: Vec<(&str, &str, Forge, Vec<PathBuf>)> = Vec::new();
    let trusted_roots = vec![trusted.root.clone()];
    cases.push((
        "control: re-signed genuine JWS",
        "",
        Box::new(|s| (jws_type, jws_for(target(s)).build(&signer))),
        trusted_roots.clone(),
    ));
    cases.push((
        "control: re-signed genuine COSE",
        "",
        Box::new(|s| (cose_type, cose_for(target(s)).build(&signer))),
        trusted_roots.clone(),
    ));
    cases.push((
        "signature over a different digest",
        "integrity",
        Box::new(|_| (jws_type, jws_for(target(&template_subject)).build(&signer))),
        trusted_roots.clone(),
    ));
    cases.push((
        "payload descriptor with an extra field and another size",
        "integrity",
        Box::new(|s| {
            let mut p = target(s);
            p["targetArtifact"]["size"] = json!(s.size + 1);
            p["targetArtifact"]["urls"] = json!(["https://example.com/extra"]);
            (jws_type, jws_for(p).build(&signer))
        }),
        trusted_roots.clone(),
    ));
    cases.push((
        "alg none",
        "integrity",
        Box::new(|s| {
            let mut j = jws_for(target(s));
            let mut p = j.protected_json();
            p["alg"] = json!("none");
            j.protected = p.to_string();
            j.signature = Some(Vec::new());
            (jws_type, j.build(&signer))
        }),
        trusted_roots.clone(),
    ));
    let (signer_ref, jws_for_ref) = (&signer, &jws_for);
    for alg in ["ES384", "PS256"] {
        cases.push((
            if alg == "ES384" {
                "alg ES384 for a P-256 key"
            } else {
                "alg PS256 for an EC key"
            },
            "integrity",
            Box::new(move |s| {
                let mut j = jws_for_ref(target(s));
                let mut p = j.protected_json();
                p["alg"] = json!(alg);
                j.protected = p.to_string();
                (jws_type, j.build(signer_ref))
            }),
            trusted_roots.clone(),
        ));
    }
    cases.push((
        "chain with an extra unrelated certificate",
        "integrity",
        Box::new(|s| {
            let mut j = jws_for(target(s));
            let mut x5c = trusted_x5c.clone();
            x5c.push(std64(&pem_certs_der(&unrelated.cert)[0]));
            j.header["x5c"] = json!(x5c);
            (jws_type, j.build(&signer))
        }),
        trusted_roots.clone(),
    ));
    cases.push((
        "untagged COSE_Sign1",
        "integrity",
        Box::new(|s| {
            let mut c = cose_for(target(s));
            c.tagged = false;
            (cose_type, c.build(&signer))
        }),
        trusted_roots.clone(),
    ));
    cases.push((
        "duplicate CBOR map key in the COSE protected header",
        "integrity",
        Box::new(|s| {
            let mut c = cose_for(target(s));
            let scheme = c
                .protected
                .iter()
                .find(|(k, _)| matches!(k, C::Text(t) if t == "io.cncf.notary.signingScheme"))
                .cloned()
                .expect("signingScheme in the protected header");
            c.protected
                .push((scheme.0, C::Text("notary.x509.signingAuthority".into())));
            (cose_type, c.build(&signer))
        }),
        trusted_roots.clone(),
    ));
    cases.push((
        "JWS payload with base64 padding",
        "integrity",
        Box::new(|s| {
            let mut j = jws_for(target(s));
            // A payload length that needs padding.
            while j.payload.len() % 3 == 0 {
                j.payload.push(b' ');
            }
            j.pad_payload = true;
            (jws_type, j.build(&signer))
        }),
        trusted_roots.clone(),
    ));
    cases.push((
        "certificate chain in the protected header only",
        "integrity",
        Box::new(|s| {
            let mut j = jws_for(target(s));
            let mut p = j.protected_json();
            p["x5c"] = j.header["x5c"].clone();
            j.protected = p.to_string();
            j.header.as_object_mut().unwrap().remove("x5c");
            (jws_type, j.build(&signer))
        }),
        trusted_roots.clone(),
    ));
    // Spec §6: at verification, certificate validity is judged by the authentic-timestamp
    // check (enforced in strict, logged in permissive and audit), not by integrity.
    cases.push((
        "expired intermediate",
        "authenticTimestamp",
        Box::new(|s| {
            let mut j = jws_for(target(s));
            let x5c: Vec<String> = pem_certs_der(&ei_chain).iter().map(|c| std64(c)).collect();
            j.header["x5c"] = json!(x5c);
            (jws_type, j.build(&ei_signer))
        }),
        vec![ei_root.clone()],
    ));
    cases.push((
        "trusted certificate only as an extra chain member",
        "integrity",
        Box::new(|s| {
            let mut j = jws_for(target(s));
            let mut x5c: Vec<String> = pem_certs_der(&stranger.chain)
                .iter()
                .map(|c| std64(c))
                .collect();
            x5c.push(std64(&pem_certs_der(&trusted.root)[0]));
            j.header["x5c"] = json!(x5c);
            (jws_type, j.build(&stranger_signer))
        }),
        trusted_roots.clone(),
    ));
    cases.push((
        "well-formed stranger signature (untrusted chain)",
        "authenticity",
        Box::new(|s| {
            let mut j = jws_for(target(s));
            let x5c: Vec<String> = pem_certs_der(&stranger.chain)
                .iter()
                .map(|c| std64(c))
                .collect();
            j.header["x5c"] = json!(x5c);
            (jws_type, j.build(&stranger_signer))
        }),
        trusted_roots.clone(),
    ));

    let levels = ["strict", "permissive", "audit"];
    let (mut checked, mut logged) = (0, 0);
    for (i, (case, expect, forge, roots)) in cases.iter().enumerate() {
        let repo = format!("downgrade/case{i}");
        let subject = push_test_image(&client, &reg.host, &repo, "v1").await;
        let reference = format!("{}/{repo}@{}", reg.host, subject.digest);
        let r = Reference::parse(&reference).unwrap();
        let (media_type, envelope) = forge(&subject);
        client
            .push_signature(
                &r,
                &subject,
                media_type,
                &envelope,
                annotations.clone(),
                sign_action::oci::ManifestForm::Legacy,
            )
            .await
            .unwrap();
        let config = TrustConfig::new();
        let root_refs: Vec<&std::path::Path> = roots.iter().map(|p| p.as_path()).collect();
        config.add_store("ca", "one", &root_refs);
        for level in levels {
            let policy = config.policy(&format!("{level}.json"), level, &["ca:one"], None);
            let (out, doc) = verify(&config, &policy, &[&reference]);
            let result = &doc["results"][0];
            if expect.is_empty() {
                assert!(out.status.success(), "{case} at {level}: {}", text(&out));
                continue;
            }
            // Spec §8: authenticity is only logged under audit, the authentic timestamp
            // under permissive and audit; a logged failure must still be reported as failed.
            let enforced = match *expect {
                "integrity" => true,
                "authenticity" => level != "audit",
                _ => level == "strict",
            };
            let sig = if enforced {
                assert!(
                    !out.status.success(),
                    "{case} passed at {level}: {}",
                    text(&out)
                );
                assert_eq!(result["verified"], false, "{case} at {level}: {doc}");
                &result["failed-signatures"][0]
            } else {
                &result["signature"]
            };
            let c = e2e::check(sig, expect);
            assert_eq!(c["status"], "failed", "{case} at {level}: {doc}");
            if enforced {
                let failure = sig["failure"].as_str().unwrap_or_default();
                assert!(
                    failure.starts_with(&format!("{expect} validation failed")),
                    "{case} at {level}: {failure}"
                );
                eprintln!("downgrade {case:?} at {level}: {failure}");
                checked += 1;
            } else {
                assert!(out.status.success(), "{case} at {level}: {}", text(&out));
                assert_eq!(c["enforcement"], "logged", "{case} at {level}: {doc}");
                logged += 1;
            }
        }
    }
    let forgeries = cases.iter().filter(|c| !c.1.is_empty()).count();
    eprintln!(
        "downgrades: {forgeries} forgeries × {} levels: {checked} refusals with the check named, {logged} failures logged where the level only logs that check",
        levels.len()
    );
}

/// A server whose every answer is 200 with a chunked body that never ends, paced at `chunk`
/// bytes per millisecond so that what it managed to write approximates what the client read
/// (loopback socket buffers would otherwise absorb megabytes the client never asked for).
/// `/referrers/` answers are image indexes, `/ocsp` and `/crl` answers DER.
async fn endless_server(chunk: usize) -> (String, Written) {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let sent = Written::default();
    let connections = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            connections.0.lock().unwrap().push(counter.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head);
                // Repositories named `tagschema` have no Referrers API, so clients read the
                // tag-schema index (endless like everything else).
                if head.contains("/tagschema/referrers/") {
                    let _ = s
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let ct = if head.contains("/ocsp") {
                    "application/ocsp-response"
                } else if head.contains("/crl") {
                    "application/pkix-crl"
                } else {
                    "application/vnd.oci.image.index.v1+json"
                };
                let start = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nDocker-Content-Digest: sha256:{}\r\nTransfer-Encoding: chunked\r\n\r\n",
                    "0".repeat(64)
                );
                if s.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                let piece = format!("{chunk:x}\r\n{}\r\n", "[".repeat(chunk));
                while s.write_all(piece.as_bytes()).await.is_ok() {
                    counter.fetch_add(chunk as u64, SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            });
        }
    });
    (addr, sent)
}

/// Body bytes an endless server wrote, per connection.
#[derive(Clone, Default)]
struct Written(std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<std::sync::atomic::AtomicU64>>>>);

impl Written {
    /// The most written to any one connection since the last call (then forgotten).
    fn take_max(&self) -> u64 {
        let mut all = self.0.lock().unwrap();
        let max = all
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::SeqCst))
            .max()
            .unwrap_or(0);
        all.clear();
        max
    }
}

/// One refusal at a bound: what the server wrote before the client hung up.
struct BoundResult {
    what: &'static str,
    bound: u64,
    written: u64,
    error: String,
}

fn check_bound(results: &mut Vec<BoundResult>, r: BoundResult, slack: u64) {
    eprintln!(
        "endless {}: refused at the {}-byte bound after the server wrote {} bytes ({:+} past the bound): {}",
        r.what,
        r.bound,
        r.written,
        r.written as i64 - r.bound as i64,
        r.error
    );
    assert!(
        r.error.contains(&r.bound.to_string()),
        "{}: the error must name the bound {}: {}",
        r.what,
        r.bound,
        r.error
    );
    assert!(
        r.written <= r.bound + slack,
        "{}: {} bytes written for a {}-byte bound",
        r.what,
        r.written,
        r.bound
    );
    results.push(r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_registry_bodies_are_cut_at_their_bound() {
    use sign_action::oci::registry::{RegistryClient, RegistryOptions, MAX_INDEX_BYTES};
    use sign_action::oci::{Descriptor, MAX_ENVELOPE_BYTES, MAX_MANIFEST_BYTES};
    const CHUNK: usize = 64 * 1024;
    let (addr, sent) = endless_server(CHUNK).await;
    let client = RegistryClient::new(RegistryOptions {
        plain_http: true,
        use_docker_config: false,
        retries: 0,
        ..Default::default()
    })
    .unwrap();
    let r = Reference::parse(&format!("{addr}/endless/app:v1")).unwrap();
    let digest = format!("sha256:{}", "d".repeat(64));
    let started = std::time::Instant::now();
    let mut results = Vec::new();
    // A few chunks may be in flight when the client hangs up.
    let slack = 8 * CHUNK as u64;

    // An envelope whose descriptor claims the largest size accepted.
    let envelope = Descriptor::new("application/jose+json", digest.clone(), MAX_ENVELOPE_BYTES);
    let e = client
        .fetch_blob(&r, &envelope, MAX_ENVELOPE_BYTES)
        .await
        .unwrap_err();
    let written = sent.take_max();
    let r1 = BoundResult {
        what: "envelope blob",
        bound: MAX_ENVELOPE_BYTES,
        written,
        error: e.to_string(),
    };
    check_bound(&mut results, r1, slack);

    let manifest = Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        digest.clone(),
        1000,
    );
    let e = client.fetch_manifest(&r, &manifest).await.unwrap_err();
    let r2 = BoundResult {
        what: "manifest",
        bound: MAX_MANIFEST_BYTES,
        written: sent.take_max(),
        error: e.to_string(),
    };
    check_bound(&mut results, r2, slack);

    // The Referrers API page of a subject.
    let subject = Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        digest.clone(),
        10,
    );
    let e = client.list_signatures(&r, &subject).await.unwrap_err();
    let r3 = BoundResult {
        what: "referrers index page",
        bound: MAX_INDEX_BYTES,
        written: sent.take_max(),
        error: e.to_string(),
    };
    check_bound(&mut results, r3, slack);
    assert!(
        results[2].error.contains("referrers"),
        "{}",
        results[2].error
    );

    // The tag-schema index of a subject, where there is no Referrers API.
    let r = Reference::parse(&format!("{addr}/tagschema:v1")).unwrap();
    let e = client.list_signatures(&r, &subject).await.unwrap_err();
    let r4 = BoundResult {
        what: "tag-schema index",
        bound: MAX_INDEX_BYTES,
        written: sent.take_max(),
        error: e.to_string(),
    };
    check_bound(&mut results, r4, slack);
    assert!(
        results[3]
            .error
            .contains(&sign_action::oci::manifest::referrers_tag(&digest)),
        "{}",
        results[3].error
    );

    let elapsed = started.elapsed();
    eprintln!("endless registry answers refused in {elapsed:?}");
    assert!(elapsed < std::time::Duration::from_secs(20), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_ocsp_and_crl_answers_are_cut_at_their_bound() {
    use sign_action::revocation::{RevocationChecker, RevocationStatus};
    let mut results = Vec::new();
    for (what, ocsp, crl, chunk, bound) in [
        ("OCSP response", true, false, 1024usize, 20 * 1024u64),
        ("CRL", false, true, 64 * 1024, 32 * 1024 * 1024),
    ] {
        let (addr, sent) = endless_server(chunk).await;
        let pki = pki::TestPki::new_with(ocsp, crl);
        let chain: Vec<sign_action::x509::Certificate> = pki
            .chain_files()
            .iter()
            .flat_map(|f| pki::pem_certs(f))
            .map(|der| sign_action::x509::Certificate::from_der(&der).unwrap())
            .collect();
        let kind = if ocsp { "ocsp" } else { "crl" };
        let checker = RevocationChecker::new()
            .unwrap()
            .with_url_rewrite(move |_| format!("http://{addr}/{kind}"));
        let started = std::time::Instant::now();
        let r = checker.check_chain(&chain, None).await;
        let elapsed = started.elapsed();
        assert_eq!(r.status, RevocationStatus::Unknown, "{what}: {r}");
        let leaf = &r.certificates[0];
        let error = leaf
            .ocsp_fallback
            .clone()
            .or(leaf.detail.clone())
            .unwrap_or_default();
        eprintln!("endless {what}: answered in {elapsed:?}");
        let written = sent.take_max();
        check_bound(
            &mut results,
            BoundResult {
                what,
                bound,
                written,
                error,
            },
            8 * chunk as u64,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_restart_mid_run_fails_only_the_artifacts_it_hit() {
    const ARTIFACTS: usize = 10;
    let mut reg = Registry::start(RegistryConfig::default());
    let client = reg.client();
    let mut refs = Vec::new();
    for i in 0..ARTIFACTS {
        let d = push_test_image(&client, &reg.host, "restart/app", &format!("v{i}")).await;
        refs.push(format!("{}/restart/app@{}", reg.host, d.digest));
    }
    let dir = tempfile::tempdir().unwrap();
    let k = make_named_test_key(dir.path(), "restart", KeySpec::EcP256);
    let child = bin()
        .arg("sign")
        .args(&refs)
        .arg("--key")
        .arg(&k.key)
        .arg("--cert")
        .arg(&k.chain)
        .args([
            "--output",
            "json",
            "--no-revocation-check",
            "--concurrency",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first artifact's referrers tag appears, take the registry down for longer
    // than the retry budget (250+500+1000 ms backoff), then bring it back.
    let first_tag = sign_action::oci::manifest::referrers_tag(refs[0].split('@').nth(1).unwrap());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _, _) = reg
            .raw_get(
                &format!("/v2/restart/app/manifests/{first_tag}"),
                "application/vnd.oci.image.index.v1+json",
            )
            .await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "first signature never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    reg.stop();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    reg.resume();
    let out = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON report: {}", text(&out)));
    let signed = report["signatures"].as_array().unwrap();
    let failed = report["failures"].as_array().unwrap();
    eprintln!(
        "registry restart: {} signed, {} failed of {ARTIFACTS}",
        signed.len(),
        failed.len()
    );
    assert_eq!(signed.len() + failed.len(), ARTIFACTS, "{}", text(&out));
    assert!(
        !failed.is_empty(),
        "the outage hit no artifact: {}",
        text(&out)
    );
    assert!(!signed.is_empty(), "{}", text(&out));
    assert!(!out.status.success(), "failures must fail the run");
    for f in failed {
        let r = f["reference"].as_str().unwrap();
        assert!(refs.iter().any(|x| x == r), "{f}");
        assert!(!f["error"].as_str().unwrap_or("").is_empty(), "{f}");
    }
    // What was reported signed is discoverable and verifies after the restart.
    let config = TrustConfig::new();
    config.add_store("ca", "one", &[&k.root]);
    let policy = config.policy("p.json", "strict", &["ca:one"], None);
    let signed_refs: Vec<&str> = signed
        .iter()
        .map(|s| s["reference"].as_str().unwrap())
        .collect();
    let (vout, _) = verify(&config, &policy, &signed_refs);
    assert!(vout.status.success(), "{}", text(&vout));
}

/// A subject manifest stored directly in an [`support::oci_server::OciServer`].
fn oci_server_subject(server: &support::oci_server::OciServer, repo: &str) -> String {
    let layer = server.put_blob(support::random_hex(8).as_bytes());
    let config = server.put_blob(b"{\"os\":\"linux\"}");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 14},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 16}],
    })
    .to_string();
    server.put_manifest(
        repo,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
        Some("v1"),
    )
}

fn index_digests(index: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(index).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_registry_honouring_if_match_makes_the_signer_re_merge_after_412() {
    use std::sync::atomic::Ordering::SeqCst;
    use support::oci_server::{Mode, OciServer};
    let server = OciServer::start_with(
        10,
        Mode {
            tag_schema_if_match: true,
            ..Default::default()
        },
    );
    let subject = oci_server_subject(&server, "cond/app");
    let reference = format!("{}/cond/app@{subject}", server.addr);
    let tag = sign_action::oci::manifest::referrers_tag(&subject);
    let dir = tempfile::tempdir().unwrap();
    let k = make_named_test_key(dir.path(), "cond", KeySpec::EcP256);
    let sign = || {
        let (out, report) = e2e::sign(&[&reference], &k.key, &k.chain, &["--no-revocation-check"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(report["signatures"][0]["storage"], "tag-schema", "{report}");
        report["signatures"][0].clone()
    };

    // First signature: no index yet, so it is created with If-None-Match and no retry.
    let first = sign();
    assert!(first.get("index-retries").is_none(), "{first}");
    assert_eq!(server.conditional.conditional_puts.load(SeqCst), 1);

    // Two other writers get in before each of the next two conditional PUTs.
    server.conditional.interfere.store(2, SeqCst);
    let second = sign();
    assert_eq!(server.conditional.precondition_failed.load(SeqCst), 2);
    assert_eq!(server.conditional.conditional_puts.load(SeqCst), 4);
    assert_eq!(second["index-retries"], 2, "{second}");
    // Nothing lost: both signatures and both foreign entries are in the index.
    let listed = index_digests(&server.tagged("cond/app", &tag).unwrap());
    assert_eq!(listed.len(), 4, "{listed:?}");
    for s in [&first, &second] {
        assert!(listed.contains(&s["signature-digest"].as_str().unwrap().to_string()));
    }
    eprintln!(
        "If-Match registry: {} conditional PUTs, {} answered 412, signer reported {} retries",
        server.conditional.conditional_puts.load(SeqCst),
        server.conditional.precondition_failed.load(SeqCst),
        second["index-retries"]
    );
}

#[test]
fn a_registry_refusing_if_none_match_for_an_absent_tag_still_gets_the_index() {
    use std::sync::atomic::Ordering::SeqCst;
    use support::oci_server::{Mode, OciServer};
    let server = OciServer::start_with(
        10,
        Mode {
            tag_schema_if_match: true,
            refuse_if_none_match: true,
        },
    );
    let subject = oci_server_subject(&server, "nonematch/app");
    let reference = format!("{}/nonematch/app@{subject}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let k = make_named_test_key(dir.path(), "nonematch", KeySpec::EcP256);
    let (out, report) = e2e::sign(&[&reference], &k.key, &k.chain, &["--no-revocation-check"]);
    assert!(out.status.success(), "{}", text(&out));
    // One refused conditional creation, then an unconditional one confirmed by read-back.
    assert_eq!(report["signatures"][0]["index-retries"], 1, "{report}");
    assert_eq!(server.conditional.precondition_failed.load(SeqCst), 1);
    let tag = sign_action::oci::manifest::referrers_tag(&subject);
    let listed = index_digests(&server.tagged("nonematch/app", &tag).unwrap());
    assert_eq!(
        listed,
        [report["signatures"][0]["signature-digest"]
            .as_str()
            .unwrap()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signers_against_an_if_match_registry_lose_nothing() {
    use std::sync::atomic::Ordering::SeqCst;
    use support::oci_server::{Mode, OciServer};
    const SIGNERS: usize = 16;
    let server = OciServer::start_with(
        10,
        Mode {
            tag_schema_if_match: true,
            ..Default::default()
        },
    );
    let subject_digest = oci_server_subject(&server, "cond16/app");
    let r = Reference::parse(&format!("{}/cond16/app@{subject_digest}", server.addr)).unwrap();
    let options = sign_action::oci::registry::RegistryOptions {
        plain_http: true,
        use_docker_config: false,
        ..Default::default()
    };
    let probe = sign_action::oci::registry::RegistryClient::new(options.clone()).unwrap();
    let subject = probe.resolve(&r).await.unwrap();
    let tasks: Vec<_> = (0..SIGNERS)
        .map(|i| {
            let client = sign_action::oci::registry::RegistryClient::new(options.clone()).unwrap();
            let (r, subject) = (r.clone(), subject.clone());
            tokio::spawn(async move {
                let envelope = format!(
                    r#"{{"payload":"{}","protected":"e30","signature":"AA"}}"#,
                    support::random_hex(24)
                );
                let annotations = std::collections::BTreeMap::from([(
                    sign_action::oci::manifest::THUMBPRINT_ANNOTATION.to_string(),
                    format!("[\"{i:064x}\"]"),
                )]);
                client
                    .push_signature(
                        &r,
                        &subject,
                        "application/jose+json",
                        envelope.as_bytes(),
                        annotations,
                        sign_action::oci::ManifestForm::Legacy,
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut pushed = Vec::new();
    let mut retries = 0;
    for t in tasks {
        let p = t.await.unwrap();
        retries += p.index_retries;
        pushed.push(p.manifest.digest);
    }
    let tag = sign_action::oci::manifest::referrers_tag(&subject.digest);
    let mut listed = index_digests(&server.tagged("cond16/app", &tag).unwrap());
    listed.sort();
    pushed.sort();
    assert_eq!(listed, pushed, "every concurrent signature is in the index");
    let failed = server.conditional.precondition_failed.load(SeqCst);
    eprintln!(
        "{SIGNERS} concurrent signers (If-Match honoured): {} listed, {} conditional PUTs, {failed} answered 412, {retries} retries reported",
        listed.len(),
        server.conditional.conditional_puts.load(SeqCst)
    );
    // Every 412 made exactly one signer start over (read-back losses cannot happen here).
    assert_eq!(u64::from(retries), failed);
}
