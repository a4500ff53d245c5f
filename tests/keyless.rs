//! Issue 6, keyless: an ephemeral key certified by a Fulcio CA for a GitHub Actions OIDC
//! identity, and verifying such signatures without trusting everyone the CA certifies.
//!
//! The CA and the token issuer are local fakes that follow the documented APIs and hold real
//! keys (tests/support/fulcio.rs, tests/support/oidc.rs); the registry is the real
//! `docker-registry` and the TSA the real `openssl ts -reply`. The envelope is cross-checked
//! with Python's `cryptography`/`jwcrypto` (tests/py/verify_envelope.py).

mod support;

#[path = "support/e2e.rs"]
mod e2e;
#[path = "support/tsa.rs"]
mod tsa;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine;
use e2e::{bin, fetch_envelope, text, TrustConfig};
use serde_json::{json, Value};
use sign_action::crypto::{verify_signature, KeySpec, Signer};
use sign_action::oidc::IdToken;
use sign_action::policy::identity::{matches_leaf, TrustedIdentity};
use sign_action::signers::keyless::KeylessError;
use sign_action::signers::KeylessSigner;
use sign_action::x509::Certificate;
use support::fulcio::{Answer, FakeFulcio};
use support::oidc::{FakeGitHubOidc, GITHUB_ISSUER};
use support::{push_test_image, Registry, RegistryConfig};
use tsa::{TsaPki, TsaServer};

const WORKFLOW: &str =
    "https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The CA and the issuer it trusts.
async fn fakes() -> (FakeGitHubOidc, FakeFulcio) {
    let oidc = FakeGitHubOidc::start().await;
    let fulcio = FakeFulcio::start(oidc.jwks()).await;
    (oidc, fulcio)
}

/// Every piece of a token that would identify it if printed: the whole JWT and its signature.
fn assert_no_token(haystack: &str, token: &str, what: &str) {
    assert!(!haystack.contains(token), "{what} contains the token");
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !haystack.contains(signature),
        "{what} contains the token's signature"
    );
}

// ------------------------------------------------------------ the Fulcio client, directly

#[tokio::test(flavor = "multi_thread")]
async fn the_ca_certifies_our_ephemeral_key_for_the_workflow_identity() {
    let (oidc, fulcio) = fakes().await;
    let raw = oidc.mint("sigstore", json!({}));
    let token = IdToken::parse(raw.clone()).unwrap();
    let signer = KeylessSigner::obtain(&fulcio.url(), &token).await.unwrap();

    // The request is the documented CSR-less v2 shape.
    let bodies = fulcio.request_bodies();
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert_eq!(body["credentials"]["oidcIdentityToken"], raw.as_str());
    let key = &body["publicKeyRequest"]["publicKey"];
    assert_eq!(key["algorithm"], "ECDSA");
    assert!(key["content"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let proof = base64::engine::general_purpose::STANDARD
        .decode(
            body["publicKeyRequest"]["proofOfPossession"]
                .as_str()
                .unwrap(),
        )
        .unwrap();

    // The chain: leaf (our key, 10 minutes, codeSigning) → intermediate → root.
    let chain: Vec<Certificate> = signer
        .certificate_chain()
        .iter()
        .map(|d| Certificate::from_der(d).unwrap())
        .collect();
    assert_eq!(chain.len(), 3);
    assert_eq!(chain[2].der(), fulcio.root_der());
    assert_eq!(fulcio.issued(), vec![chain[0].der().to_vec()]);
    assert_eq!(signer.key_spec(), KeySpec::EcP256);
    let life = chain[0]
        .not_after()
        .duration_since(chain[0].not_before())
        .unwrap();
    assert_eq!(life.as_secs(), 600);
    assert!(chain[0].is_valid_at(std::time::SystemTime::now()));
    // The proof of possession is the leaf key's ASN.1 ECDSA signature over `sub`.
    let spki = chain[0].spki_der();
    let point = spki::SubjectPublicKeyInfoRef::try_from(spki.as_slice())
        .unwrap()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        &point,
    )
    .verify(b"repo:octo-org/octo-repo:ref:refs/heads/main", &proof)
    .expect("proof of possession over sub");

    // Notary signatures from the signer verify with the leaf key (fixed-width R‖S).
    let message = b"JWS signing input";
    let signature = signer.sign(message).await.unwrap();
    assert_eq!(signature.len(), 64);
    verify_signature(
        KeySpec::EcP256.signature_algorithm(),
        &spki,
        message,
        &signature,
    )
    .unwrap();

    // The identity it binds.
    let id = signer.identity();
    assert_eq!(id.issuer.as_deref(), Some(GITHUB_ISSUER));
    assert_eq!(id.san_uris, vec![WORKFLOW.to_string()]);
    assert_eq!(
        id.repository.as_deref(),
        Some("https://github.com/octo-org/octo-repo")
    );
    assert_eq!(id.git_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(id.build_signer_uri.as_deref(), Some(WORKFLOW));
    assert_eq!(id.runner_environment.as_deref(), Some("github-hosted"));
    assert_eq!(id.trigger.as_deref(), Some("push"));
    assert_eq!(
        id.run_uri.as_deref(),
        Some("https://github.com/octo-org/octo-repo/actions/runs/1234567890/attempts/1")
    );
    let debug = format!("{signer:?}");
    assert_no_token(&debug, &raw, "the signer's Debug");

    // The identity forms match this leaf exactly as documented.
    let id = |s: &str| TrustedIdentity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    let issuer = format!("fulcio.issuer:{GITHUB_ISSUER}");
    let leaf = &chain[0];
    for (identity, expected) in [
        (format!("x509.san.uri:{WORKFLOW} {issuer}"), true),
        (format!("{issuer} x509.san.uri:{WORKFLOW}"), true),
        (
            format!("x509.san.uri:https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/* {issuer}"),
            true,
        ),
        (
            format!("x509.san.uri:https://github.com/octo-org/* {issuer}"),
            true,
        ),
        // Another workflow, another ref, another repository whose name starts the same.
        (
            format!("x509.san.uri:https://github.com/octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main {issuer}"),
            false,
        ),
        (
            format!("x509.san.uri:https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/tags/* {issuer}"),
            false,
        ),
        (
            format!("x509.san.uri:https://github.com/octo-org/octo-repo-fork/* {issuer}"),
            false,
        ),
        // The right SAN from another issuer, and a SAN pin without issuer.
        (
            format!("x509.san.uri:{WORKFLOW} fulcio.issuer:https://gitlab.com"),
            false,
        ),
        (format!("x509.san.uri:{WORKFLOW}"), false),
        // Subjects cannot name a keyless leaf: its subject is empty.
        ("x509.subject:C=US,ST=WA,O=sigstore.dev".to_string(), false),
        ("*".to_string(), true),
    ] {
        assert_eq!(matches_leaf(&id(&identity), leaf), expected, "{identity}");
    }
}

/// A token the client accepts as a JWT, whatever the CA will think of it.
fn parse(raw: &str) -> IdToken {
    IdToken::parse(raw.to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_refusal_of_the_ca_is_explained_without_the_token() {
    let (oidc, fulcio) = fakes().await;
    let t = now();
    struct Case {
        name: &'static str,
        token: String,
        setup: fn(&FakeFulcio),
        /// What the fake logged (the real reason), and what our error must say.
        logged: &'static str,
        said: &'static [&'static str],
    }
    let cases = vec![
        Case {
            name: "token signed by a key the issuer never published",
            token: oidc.mint_forged("sigstore"),
            setup: |_| {},
            logged: "signature is invalid",
            said: &[
                "refused the OIDC identity token",
                "There was an error processing the identity token",
                GITHUB_ISSUER,
            ],
        },
        Case {
            name: "wrong audience",
            token: oidc.mint("api://AzureADTokenExchange", json!({})),
            setup: |_| {},
            logged: "expected audience \"sigstore\"",
            said: &[
                "refused the OIDC identity token",
                "HTTP 400",
                "for audience [\"api://AzureADTokenExchange\"]",
                "\"sigstore\"",
                "--oidc-audience",
            ],
        },
        Case {
            name: "expired token",
            token: oidc.mint(
                "sigstore",
                json!({"exp": t - 600, "iat": t - 900, "nbf": t - 900}),
            ),
            setup: |_| {},
            logged: "token is expired",
            said: &["refused the OIDC identity token", "expired 6"],
        },
        Case {
            name: "proof of possession over another claim than the CA's challenge",
            // With an `email` claim the client signs the address; Fulcio's GitHub principal
            // challenges `sub`, so the proof does not verify.
            token: oidc.mint("sigstore", json!({"email": "octocat@example.com"})),
            setup: |_| {},
            logged: "proof of possession does not verify",
            said: &[
                "refused the certificate request",
                "The signature supplied in the request could not be verified",
            ],
        },
        Case {
            name: "key algorithm the CA refuses",
            token: oidc.mint("sigstore", json!({})),
            setup: |f| f.refuse_curve("P-256"),
            logged: "P-256 refused",
            said: &[
                "refused the certificate request",
                "The public key supplied in the request is insecure",
            ],
        },
        Case {
            name: "a CA that echoes the token in its error",
            token: oidc.mint_forged("sigstore"),
            setup: |f| f.set_answer(Answer::EchoToken),
            logged: "signature is invalid",
            said: &["refused the OIDC identity token", "***"],
        },
    ];
    for case in cases {
        let fulcio = FakeFulcio::start(oidc.jwks()).await;
        (case.setup)(&fulcio);
        let err = KeylessSigner::obtain(&fulcio.url(), &parse(&case.token))
            .await
            .expect_err(case.name);
        let message = err.to_string();
        for want in case.said {
            assert!(message.contains(want), "{}: {message}", case.name);
        }
        assert_no_token(&message, &case.token, case.name);
        assert_no_token(&format!("{err:?}"), &case.token, case.name);
        let logged = fulcio.rejections();
        assert_eq!(logged.len(), 1, "{}: {logged:?}", case.name);
        assert!(
            logged[0].contains(case.logged),
            "{}: the CA refused for another reason: {logged:?}",
            case.name
        );
        assert!(fulcio.issued().is_empty(), "{}", case.name);
    }
    drop(fulcio);
}

/// The fake refuses what Fulcio refuses even from a client other than ours.
#[tokio::test(flavor = "multi_thread")]
async fn the_fake_ca_refuses_bad_keys_and_proofs_from_any_client() {
    let (oidc, fulcio) = fakes().await;
    let token = oidc.mint("sigstore", json!({}));
    let client = reqwest::Client::new();
    let post = |body: Value| {
        let client = client.clone();
        let url = format!("{}/api/v2/signingCert", fulcio.url());
        async move {
            let resp = client.post(url).json_body(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
            (status, v)
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let made = std::sync::atomic::AtomicUsize::new(0);
    let key_pem = |args: &[&str]| -> (PathBuf, String) {
        let n = made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let key = dir.path().join(format!("key{n}.pem"));
        tsa::run(Command::new("openssl").args(args).arg("-out").arg(&key));
        let out = tsa::run(
            Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(&key),
        );
        (key, String::from_utf8(out).unwrap())
    };
    let sign_sub = |key: &Path| -> String {
        let data = dir.path().join("sub.txt");
        std::fs::write(&data, "repo:octo-org/octo-repo:ref:refs/heads/main").unwrap();
        let sig = tsa::run(
            Command::new("openssl")
                .args(["dgst", "-sha256", "-sign"])
                .arg(key)
                .arg(&data),
        );
        base64::engine::general_purpose::STANDARD.encode(sig)
    };
    let request = |pem: &str, alg: &str, proof: &str| {
        json!({
            "credentials": {"oidcIdentityToken": token},
            "publicKeyRequest": {"publicKey": {"algorithm": alg, "content": pem}, "proofOfPossession": proof},
        })
    };
    // An openssl P-256 key with a correct proof: certified (the fake is not tied to our client).
    let (p256, p256_pem) = key_pem(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
    ]);
    let (status, answer) = post(request(&p256_pem, "ECDSA", &sign_sub(&p256))).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        answer["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // The proof made by another key.
    let (other, _) = key_pem(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-pkeyopt",
        "ec_param_enc:named_curve",
    ]);
    let (status, answer) = post(request(&p256_pem, "ECDSA", &sign_sub(&other))).await;
    assert_eq!(
        (status, answer["code"].as_i64()),
        (400, Some(3)),
        "{answer}"
    );
    assert_eq!(
        answer["message"],
        "The signature supplied in the request could not be verified"
    );
    // Ed25519 and RSA keys: not keys this CA certifies.
    // (The key is judged before the proof, so the proof need not be valid.)
    let (_, ed_pem) = key_pem(&["genpkey", "-algorithm", "ED25519"]);
    let (status, answer) = post(request(&ed_pem, "ED25519", "AAAA")).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        "The public key supplied in the request is insecure"
    );
    let (_, rsa_pem) = key_pem(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
    ]);
    let (status, answer) = post(request(&rsa_pem, "RSA_PSS", "AAAA")).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        "The public key supplied in the request is insecure"
    );
    // Garbage instead of a key.
    let (status, answer) = post(request("not a key", "ECDSA", "AAAA")).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["message"],
        "The public key supplied in the request could not be parsed"
    );
    assert_eq!(fulcio.issued().len(), 1);
}

/// `reqwest` here has no `json` feature; a tiny extension keeps the calls readable.
trait JsonBody {
    fn json_body(self, v: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(serde_json::to_vec(v).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_that_break_the_certificate_rules_are_refused() {
    let (oidc, fulcio) = fakes().await;
    for (answer, want) in [
        (Answer::OtherKey, "certifies a different public key"),
        (
            Answer::NoCodeSigning,
            "extendedKeyUsage must not contain serverAuth",
        ),
        (Answer::NoRoot, "self-signed root"),
        (
            Answer::OtherIssuer,
            "binds OIDC issuer \"https://issuer.example.net\"",
        ),
    ] {
        fulcio.set_answer(answer);
        let raw = oidc.mint("sigstore", json!({}));
        let err = KeylessSigner::obtain(&fulcio.url(), &parse(&raw))
            .await
            .expect_err(want);
        assert!(
            matches!(err, KeylessError::BadChain { .. }),
            "{answer:?}: {err}"
        );
        assert!(err.to_string().contains(want), "{answer:?}: {err}");
        assert_no_token(&err.to_string(), &raw, want);
    }
    // Plain http to anything but loopback is refused before a request is made.
    let err = KeylessSigner::obtain(
        "http://fulcio.example",
        &parse(&oidc.mint("sigstore", json!({}))),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("plain http"), "{err}");
}

// ------------------------------------------------------------------------- end to end

struct World {
    registry: Registry,
    _tsa_server: TsaServer,
    tsa_url: String,
    tsa: Arc<TsaPki>,
    oidc: FakeGitHubOidc,
    fulcio: FakeFulcio,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let tsa = Arc::new(TsaPki::new());
        let tsa_server = TsaServer::start(tsa.clone());
        let (oidc, fulcio) = fakes().await;
        World {
            registry: Registry::start(RegistryConfig::default()),
            tsa_url: tsa_server.url.clone(),
            _tsa_server: tsa_server,
            tsa,
            oidc,
            fulcio,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn image(&self, repo: &str) -> String {
        let d = push_test_image(&self.registry.client(), &self.registry.host, repo, "v1").await;
        format!("{}/{repo}@{}", self.registry.host, d.digest)
    }

    /// The binary as the GitHub runner starts it: the token endpoint in the environment.
    fn in_actions(&self) -> Command {
        let mut cmd = bin();
        cmd.env("ACTIONS_ID_TOKEN_REQUEST_URL", self.oidc.request_url())
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", self.oidc.request_token());
        cmd
    }

    fn keyless_args(&self) -> Vec<String> {
        vec![
            "--keyless".into(),
            "--fulcio-url".into(),
            self.fulcio.url(),
            "--timestamp-url".into(),
            self.tsa_url.clone(),
            "--timestamp-root-cert".into(),
            self.tsa.path("root.pem").display().to_string(),
        ]
    }

    /// A trust store with the keyless root (ca) and the TSA root, and a policy per identity list.
    fn trust(&self) -> TrustConfig {
        let config = TrustConfig::new();
        let root = self.dir.path().join("fulcio-root.pem");
        std::fs::write(&root, self.fulcio.root_pem()).unwrap();
        config.add_store("ca", "fulcio", &[&root]);
        config.add_store("tsa", "tsa", &[&self.tsa.path("root.pem")]);
        config
    }
}

fn policy(config: &TrustConfig, name: &str, identities: &[&str]) -> PathBuf {
    policy_with(config, name, &["ca:fulcio", "tsa:tsa"], identities)
}

fn policy_with(config: &TrustConfig, name: &str, stores: &[&str], identities: &[&str]) -> PathBuf {
    let doc = json!({
        "version": "1.0",
        "trustPolicies": [{
            "name": "keyless",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": stores,
            "trustedIdentities": identities,
        }]
    });
    let p = config.root().join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p
}

fn verify(config: &TrustConfig, policy: &Path, reference: &str, extra: &[&str]) -> (Output, Value) {
    let out = bin()
        .arg("verify")
        .arg(reference)
        .arg("--trust-policy")
        .arg(policy)
        .arg("--trust-store")
        .arg(config.root())
        .args(["--output", "json"])
        .args(extra)
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, doc)
}

fn failure(doc: &Value) -> String {
    doc["results"][0]["failed-signatures"][0]["failure"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn keyless_signatures_verify_only_for_the_pinned_workflow() {
    let w = World::start().await;
    let reference = w.image("app/keyless").await;
    let repo = "app/keyless";

    // Sign in "GitHub Actions" (the token endpoint in the environment), JSON output.
    let out = w
        .in_actions()
        .arg("sign")
        .arg(&reference)
        .args(w.keyless_args())
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(w.oidc.requested_audiences(), vec!["sigstore".to_string()]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let signed = &report["signatures"][0];
    assert_eq!(signed["keyless-identity"]["san-uris"][0], WORKFLOW);
    assert_eq!(signed["keyless-identity"]["issuer"], GITHUB_ISSUER);
    assert_eq!(signed["keyless-identity"]["ref"], "refs/heads/main");
    assert_eq!(signed["signer-subject"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("keyless signing certificate for {WORKFLOW}")),
        "{stderr}"
    );
    let signature_digest = signed["signature-digest"].as_str().unwrap().to_string();

    // The envelope: our leaf from the CA, a timestamp, and Python agrees it verifies.
    let (media_type, envelope) = fetch_envelope(&w.registry, repo, &signature_digest).await;
    assert_eq!(media_type, "application/jose+json");
    let extracted = e2e::extract_jws(&envelope);
    assert!(
        extracted.token.is_some(),
        "keyless signatures are timestamped"
    );
    let file = w.dir.path().join("envelope.jws");
    std::fs::write(&file, &envelope).unwrap();
    let py = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_envelope.py"))
        .arg("jws")
        .arg(&file)
        .output()
        .unwrap();
    assert!(py.status.success(), "python: {}", text(&py));
    let summary: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(summary["alg"], "ES256");
    let leaf = Certificate::from_der(&w.fulcio.issued()[0]).unwrap();
    assert_eq!(summary["chain"][0], leaf.sha256_fingerprint());

    // `inspect` shows what the leaf binds (unverified).
    let out = bin()
        .args(["inspect", &reference, "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    let chain = &inspected["signatures"][0]["certificate-chain"];
    assert_eq!(chain[0]["keyless-identity"]["san-uris"][0], WORKFLOW);
    assert!(
        chain[1]["keyless-identity"].is_null(),
        "the CA is not keyless"
    );

    let config = w.trust();
    let issuer = format!("fulcio.issuer:{GITHUB_ISSUER}");
    // Pinned workflow and issuer: verified, with the identity in the result and in text.
    for (i, pin) in [
        format!("x509.san.uri:{WORKFLOW} {issuer}"),
        format!("x509.san.uri:https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/* {issuer}"),
    ]
    .iter()
    .enumerate()
    {
        let p = policy(&config, &format!("pinned{i}.json"), &[pin]);
        let (out, doc) = verify(&config, &p, &reference, &[]);
        assert!(out.status.success(), "{pin}: {}", text(&out));
        let sig = &doc["results"][0]["signature"];
        assert_eq!(sig["keyless-identity"]["san-uris"][0], WORKFLOW);
        assert_eq!(e2e::check(sig, "authenticity")["status"], "passed");
        assert_eq!(e2e::check(sig, "authenticTimestamp")["status"], "passed");
    }
    let p = policy(
        &config,
        "text.json",
        &[&format!("x509.san.uri:{WORKFLOW} {issuer}")],
    );
    let out = bin()
        .arg("verify")
        .arg(&reference)
        .arg("--trust-policy")
        .arg(&p)
        .arg("--trust-store")
        .arg(config.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("keyless identity: {WORKFLOW} (OIDC issuer {GITHUB_ISSUER}), repository https://github.com/octo-org/octo-repo, ref refs/heads/main")),
        "{stdout}"
    );

    // Another workflow of the same repository, the same workflow from another issuer, and a
    // SAN pin without issuer: all rejected, each saying why.
    let deploy =
        "https://github.com/octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main";
    for (name, pin, want) in [
        (
            "other-workflow.json",
            format!("x509.san.uri:{deploy} {issuer}"),
            "does not match any trusted identity".to_string(),
        ),
        (
            "other-issuer.json",
            format!("x509.san.uri:{WORKFLOW} fulcio.issuer:https://gitlab.com"),
            format!("{WORKFLOW} (OIDC issuer {GITHUB_ISSUER}) does not match"),
        ),
        (
            "san-only.json",
            format!("x509.san.uri:{WORKFLOW}"),
            format!("has no fulcio.issuer clause, so it accepts no keyless certificate: append \\\" fulcio.issuer:{GITHUB_ISSUER}\\\""),
        ),
    ] {
        let p = policy(&config, name, &[&pin]);
        let (out, doc) = verify(&config, &p, &reference, &[]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        let why = failure(&doc);
        assert!(why.starts_with("authenticity validation failed"), "{name}: {why}");
        assert!(
            why.contains(&want) || format!("{why:?}").contains(&want),
            "{name}: {why}"
        );
    }

    // "*" over the keyless CA: refused unless the user opts in.
    let any = policy(&config, "any.json", &["*"]);
    let (out, doc) = verify(&config, &any, &reference, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let why = failure(&doc);
    for want in [
        "trusts any identity (\"*\")",
        "keyless (Fulcio) certificate for https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main",
        "x509.san.uri:<workflow URI> fulcio.issuer:<issuer>",
        "--allow-any-keyless-identity",
    ] {
        assert!(why.contains(want), "{want}: {why}");
    }
    let (out, _) = verify(&config, &any, &reference, &["--allow-any-keyless-identity"]);
    assert!(out.status.success(), "{}", text(&out));

    // The verify action: the same refusal, and the opt-in input.
    for (allow, code) in [("false", 1), ("true", 0)] {
        let out = bin()
            .args(["action", "verify"])
            .env("INPUT_IMAGES", &reference)
            .env("INPUT_TRUST-POLICY", &any)
            .env("INPUT_TRUST-STORE", config.root())
            .env("INPUT_ALLOW-ANY-KEYLESS-IDENTITY", allow)
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "allow {allow}: {}",
            text(&out)
        );
        if code == 1 {
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("allow-any-keyless-identity"),
                "{}",
                text(&out)
            );
        }
    }

    // An ordinary (non-keyless) signer under "*" is unaffected by the refusal: the rule is
    // about keyless leaves, not about "*".
    let ordinary = support::make_test_chain(w.dir.path(), "ordinary", KeySpec::EcP256);
    let out = bin()
        .arg("sign")
        .arg(&reference)
        .arg("--key")
        .arg(&ordinary.key)
        .arg("--cert")
        .arg(&ordinary.chain)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let plain = TrustConfig::new();
    plain.add_store("ca", "fulcio", &[&ordinary.root]);
    let p = policy_with(&plain, "plain.json", &["ca:fulcio"], &["*"]);
    let (out, doc) = verify(&plain, &p, &reference, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(doc["results"][0]["signature"]["keyless-identity"].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn keyless_without_a_timestamp_is_refused_before_any_token_is_requested() {
    let w = World::start().await;
    let reference = w.image("app/no-ts").await;
    let out = w
        .in_actions()
        .arg("sign")
        .arg(&reference)
        .args(["--keyless", "--fulcio-url", &w.fulcio.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "--keyless requires a timestamp authority (--timestamp-url and --timestamp-root-cert)"
        ),
        "{stderr}"
    );
    // The action: same refusal.
    let out = w
        .in_actions()
        .args(["action", "sign"])
        .env("INPUT_IMAGES", &reference)
        .env("INPUT_KEYLESS", "true")
        .env("INPUT_FULCIO-URL", w.fulcio.url())
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("input `keyless` requires a timestamp authority"),
        "{}",
        text(&out)
    );
    assert_eq!(w.oidc.token_requests(), 0, "no token may be requested");
    assert!(w.fulcio.request_bodies().is_empty());

    // Without the runner's variables: the message names the permission to add.
    let out = bin()
        .arg("sign")
        .arg(&reference)
        .args(w.keyless_args())
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permissions: id-token: write"),
        "{}",
        text(&out)
    );
    // A chain of our own makes no sense with keyless.
    let out = bin()
        .arg("sign")
        .arg(&reference)
        .args(w.keyless_args())
        .args(["--cert", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_action_signs_keylessly_and_never_shows_the_token() {
    let w = World::start().await;
    let reference = w.image("app/action").await;
    let output_file = w.dir.path().join("github_output");
    let summary_file = w.dir.path().join("summary.md");
    std::fs::write(&output_file, "").unwrap();
    std::fs::write(&summary_file, "").unwrap();
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = w.in_actions();
        cmd.args(["action", "sign"])
            .env("INPUT_IMAGES", &reference)
            .env("INPUT_KEYLESS", "true")
            .env("INPUT_FULCIO-URL", w.fulcio.url())
            .env("INPUT_TIMESTAMP-URL", &w.tsa_url)
            .env("INPUT_TIMESTAMP-ROOT-CERT", w.tsa.path("root.pem"))
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_STEP_SUMMARY", &summary_file);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}", text(&out));
    // The fake issued exactly one token; find it in the CA's log of requests.
    let bodies = w.fulcio.request_bodies();
    assert_eq!(bodies.len(), 1);
    let token = bodies[0]["credentials"]["oidcIdentityToken"]
        .as_str()
        .unwrap()
        .to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let rest = masked_first(&stdout, &token);
    assert_no_token(&rest, &token, "stdout");
    assert_no_token(&stderr, &token, "stderr");
    let outputs = std::fs::read_to_string(&output_file).unwrap();
    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert_no_token(&outputs, &token, "GITHUB_OUTPUT");
    assert_no_token(&summary, &token, "the step summary");
    // What the certificate binds is shown: log, outputs and summary.
    assert!(
        stdout.contains(&format!("keyless identity: {WORKFLOW}")),
        "{stdout}"
    );
    assert!(outputs.contains("\"keyless-identity\""), "{outputs}");
    assert!(
        summary.contains("#### Keyless signer identity"),
        "{summary}"
    );
    for cell in [
        WORKFLOW,
        "https://github.com/octo-org/octo-repo",
        "refs/heads/main",
        GITHUB_ISSUER,
    ] {
        assert!(summary.contains(&format!("`{cell}`")), "{cell}: {summary}");
    }

    // A refusal by the CA (wrong audience requested): an error that explains, still no token.
    let out = run(&[("INPUT_OIDC-AUDIENCE", "not-sigstore")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        w.oidc.requested_audiences(),
        vec!["sigstore".to_string(), "not-sigstore".to_string()]
    );
    let bodies = w.fulcio.request_bodies();
    let token = bodies[1]["credentials"]["oidcIdentityToken"]
        .as_str()
        .unwrap()
        .to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let error = stdout
        .lines()
        .find(|l| l.starts_with("::error"))
        .unwrap_or_else(|| panic!("no error annotation: {stdout}"));
    assert!(error.contains("refused the OIDC identity token"), "{error}");
    assert!(error.contains("not-sigstore"), "{error}");
    let rest: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect();
    assert_no_token(&rest.join("\n"), &token, "stdout");
    assert_no_token(&String::from_utf8_lossy(&out.stderr), &token, "stderr");

    // A token file (other CI systems) through the action: masked as well.
    let file = w.dir.path().join("token.jwt");
    let file_token = w.oidc.mint("sigstore", json!({}));
    std::fs::write(&file, &file_token).unwrap();
    let out = run(&[("INPUT_OIDC-TOKEN-FILE", file.to_str().unwrap())]);
    assert!(out.status.success(), "{}", text(&out));
    let rest = masked_first(&String::from_utf8_lossy(&out.stdout), &file_token);
    assert_no_token(&rest, &file_token, "stdout");
    assert_eq!(w.oidc.requested_audiences().len(), 2, "the file was used");
}

/// The one place a token may appear is its mask command, which the runner consumes: it must
/// come before every line that is not itself a mask command. Returns the other lines.
fn masked_first(stdout: &str, token: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    let mask = format!("::add-mask::{token}");
    let at = lines
        .iter()
        .position(|l| *l == mask)
        .unwrap_or_else(|| panic!("no mask command for the token: {stdout}"));
    assert!(
        lines[..at].iter().all(|l| l.starts_with("::add-mask::")),
        "{stdout}"
    );
    lines
        .iter()
        .filter(|l| **l != mask)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn policies_with_malformed_keyless_identities_do_not_load() {
    use sign_action::policy::TrustPolicyDocument;
    let doc = |identity: &str| {
        json!({
            "version": "1.0",
            "trustPolicies": [{
                "name": "keyless",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:fulcio"],
                "trustedIdentities": [identity],
            }]
        })
        .to_string()
    };
    let good = format!("x509.san.uri:{WORKFLOW} fulcio.issuer:{GITHUB_ISSUER}");
    TrustPolicyDocument::parse_str(&doc(&good)).expect("the documented form loads");
    for (identity, why) in [
        (
            format!("fulcio.issuer:{GITHUB_ISSUER}"),
            "alone trusts every identity",
        ),
        (
            format!("x509.san.uri:https://github.com/*/octo-repo/.github/workflows/release.yml@refs/heads/main fulcio.issuer:{GITHUB_ISSUER}"),
            "only as its last character",
        ),
        (
            format!("x509.san.uri:https://github.com/octo-org/octo-repo* fulcio.issuer:{GITHUB_ISSUER}"),
            "must follow '/' or '@'",
        ),
    ] {
        let err = TrustPolicyDocument::parse_str(&doc(&identity)).unwrap_err();
        let text = format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
        assert!(text.contains(why), "{identity}: {text}");
        assert!(text.contains("keyless"), "names the statement: {text}");
    }
    // Through the binary: a configuration error (exit 2) before any registry is contacted.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(&policy, doc(&format!("fulcio.issuer:{GITHUB_ISSUER}"))).unwrap();
    let out = bin()
        .args(["verify", "localhost:1/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"])
        .arg("--trust-policy")
        .arg(&policy)
        .arg("--trust-store")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("add x509.san.uri:<workflow URI>"),
        "{}",
        text(&out)
    );
}
