//! Cloud KMS signing through OIDC federation, end to end: the `sign-action` binary obtains a
//! GitHub OIDC token from a fake of GitHub's token endpoint, exchanges it with fakes of
//! Microsoft Entra ID / AWS STS that verify it as the real services do, and signs through fakes
//! of Azure Key Vault / AWS KMS holding real keys (the KMS fake checks every request's SigV4).
//! Signatures go to the real `docker-registry` and are verified by `sign-action verify` with a
//! trust store holding the CA that certified the KMS key, and by the independent Python
//! implementation. Failure paths check that each service's refusal is reported clearly, that
//! non-Notary keys are refused before any Sign request, and that no token or temporary credential
//! is ever printed.

mod support;

#[path = "support/aws.rs"]
mod aws_fake;
#[path = "support/azure.rs"]
mod azure_fake;
#[path = "support/cloud_keys.rs"]
mod cloud_keys;
#[path = "support/e2e.rs"]
mod e2e;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

use aws_fake::{spec_name, FakeAws};
use azure_fake::FakeAzure;
use cloud_keys::{issue_certificate, FakeKey, IssuedCert, KeyKind};
use sign_action::oidc::IdToken;
use sign_action::signers::{AwsKmsConfig, AwsKmsSigner, AzureKeyVaultSigner, AzureKvConfig};
use support::oidc::FakeGitHubOidc;
use support::{push_test_image, Registry, RegistryConfig};

const SUBJECT: &str = "repo:octo-org/octo-repo:ref:refs/heads/main";

/// Run a prepared command off the async workers (the fakes answer on them).
async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run sign-action"))
        .await
        .unwrap()
}

/// The binary with GitHub's OIDC variables pointing at the fake and no ambient cloud settings.
fn bin(github: &FakeGitHubOidc) -> Command {
    let mut cmd = e2e::bin();
    for var in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_AUTHORITY_HOST",
        "AWS_ROLE_ARN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS",
        "AWS_ENDPOINT_URL_KMS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("ACTIONS_ID_TOKEN_REQUEST_URL", github.request_url())
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", github.request_token());
    cmd
}

fn azure_args(cmd: &mut Command, azure: &FakeAzure, key_id: &str) {
    cmd.args(["--kms", "azure", "--kms-key", key_id])
        .args(["--azure-tenant-id", &azure.tenant_id])
        .args(["--azure-client-id", &azure.client_id])
        .env("AZURE_AUTHORITY_HOST", azure.authority_host());
}

fn aws_args(cmd: &mut Command, aws: &FakeAws, key: &str) {
    cmd.args(["--kms", "aws", "--kms-key", key])
        .args(["--aws-role-arn", &aws.role_arn])
        .env("AWS_ENDPOINT_URL_STS", aws.sts_url())
        .env("AWS_ENDPOINT_URL_KMS", aws.kms_url());
}

struct Target {
    registry: Registry,
    repo: String,
    reference: String,
}

async fn target(repo: &str) -> Target {
    let registry = Registry::start(RegistryConfig::default());
    let desc = push_test_image(&registry.client(), &registry.host, repo, "v1").await;
    let reference = format!("{}/{repo}@{}", registry.host, desc.digest);
    Target {
        registry,
        repo: repo.to_string(),
        reference,
    }
}

/// Sign `t` with `cmd` (sign args already added) in `format`; returns the signature digest.
async fn sign_ok(mut cmd: Command, t: &Target, format: &str) -> String {
    cmd.args(["--signature-format", format, "-o", "json"])
        .arg(&t.reference);
    let out = run(cmd).await;
    assert!(out.status.success(), "sign failed: {}", e2e::text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let sig = &report["signatures"][0];
    assert_eq!(sig["signature-format"], format, "{report}");
    sig["signature-digest"].as_str().unwrap().to_string()
}

/// The stored envelope verifies in Python (jwcrypto / pycose) with the expected algorithm and
/// carries the whole chain.
async fn python_check(t: &Target, signature_digest: &str, alg: &str, chain_len: usize) {
    let (media_type, envelope) = e2e::fetch_envelope(&t.registry, &t.repo, signature_digest).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("envelope");
    std::fs::write(&file, &envelope).unwrap();
    let format = if media_type == "application/cose" {
        "cose"
    } else {
        "jws"
    };
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_envelope.py"))
        .arg(format)
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "verify_envelope.py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["alg"], alg, "{summary}");
    assert_eq!(
        summary["chain"].as_array().map(Vec::len),
        Some(chain_len),
        "{summary}"
    );
}

/// `sign-action verify` with a strict policy trusting only `root`; every signature on the
/// artifact must verify (the verifier reports the first valid one, so sign with one key per
/// artifact).
async fn verify_with(t: &Target, root: &Path) -> Output {
    let config = e2e::TrustConfig::new();
    config.add_store("ca", "kms", &[root]);
    let policy = config.policy("policy.json", "strict", &["ca:kms"], None);
    let mut cmd = e2e::bin();
    cmd.arg("verify")
        .arg(&t.reference)
        .arg("--trust-policy")
        .arg(&policy)
        .arg("--trust-store")
        .arg(config.root())
        .args(["--output", "json"]);
    let out = run(cmd).await;
    drop(config);
    out
}

async fn verify_ok(t: &Target, root: &Path) {
    let out = verify_with(t, root).await;
    assert!(out.status.success(), "verify failed: {}", e2e::text(&out));
}

fn pem_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_key_vault_rsa_and_ec_signatures_verify() {
    let github = FakeGitHubOidc::start().await;
    let azure = FakeAzure::start(github.jwks(), SUBJECT).await;
    let dir = tempfile::tempdir().unwrap();

    // RSA-3072 (PS384), chain given as a file, key pinned to a version.
    let rsa = FakeKey::generate(KeyKind::Rsa3072);
    let rsa_cert = issue_certificate(dir.path(), "azure-rsa", &rsa);
    let rsa_key = azure.add_key("release-rsa", rsa);
    let rsa_key = format!("{rsa_key}/{}", azure.key_version("release-rsa"));
    let t = target("azure/rsa").await;
    for format in ["jws", "cose"] {
        let mut cmd = bin(&github);
        cmd.arg("sign").arg("--cert").arg(&rsa_cert.chain);
        azure_args(&mut cmd, &azure, &rsa_key);
        let digest = sign_ok(cmd, &t, format).await;
        python_check(&t, &digest, "PS384", 2).await;
    }
    verify_ok(&t, &rsa_cert.root).await;

    // P-384 (ES384), chain read from the Key Vault certificate (leaf) and its PEM secret.
    let ec = FakeKey::generate(KeyKind::P384);
    let ec_cert = issue_certificate(dir.path(), "azure-ec", &ec);
    let ec_key = azure.add_key("release-ec", ec);
    azure.set_certificate(
        "release-ec",
        ec_cert.leaf_der(),
        Some(pem_of(&ec_cert.chain)),
    );
    let t = target("azure/ec").await;
    for format in ["jws", "cose"] {
        let mut cmd = bin(&github);
        cmd.arg("sign");
        azure_args(&mut cmd, &azure, &ec_key);
        let digest = sign_ok(cmd, &t, format).await;
        python_check(&t, &digest, "ES384", 2).await;
    }
    verify_ok(&t, &ec_cert.root).await;
    // The same signatures under an unrelated CA do not verify.
    let other = issue_certificate(dir.path(), "unrelated", &FakeKey::generate(KeyKind::P256));
    let out = verify_with(&t, &other.root).await;
    assert_eq!(out.status.code(), Some(1), "{}", e2e::text(&out));

    assert_eq!(azure.sign_requests(), 4);
    // The token was requested for Entra ID's federation audience.
    assert!(github
        .requested_audiences()
        .iter()
        .all(|a| a == "api://AzureADTokenExchange"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_kms_rsa_and_ec_signatures_verify() {
    let github = FakeGitHubOidc::start().await;
    let aws = FakeAws::start(github.jwks(), "repo:octo-org/octo-repo:*").await;
    let dir = tempfile::tempdir().unwrap();

    // RSA-2048 (PS256) addressed by alias, so the region comes from --aws-region.
    let rsa = FakeKey::generate(KeyKind::Rsa2048);
    let rsa_cert = issue_certificate(dir.path(), "aws-rsa", &rsa);
    aws.add_key(spec_name(KeyKind::Rsa2048), "notary-rsa", rsa);
    let t = target("aws/rsa").await;
    for format in ["jws", "cose"] {
        let mut cmd = bin(&github);
        cmd.arg("sign").arg("--cert").arg(&rsa_cert.chain);
        aws_args(&mut cmd, &aws, "alias/notary-rsa");
        cmd.args(["--aws-region", &aws.region]);
        let digest = sign_ok(cmd, &t, format).await;
        python_check(&t, &digest, "PS256", 2).await;
    }
    verify_ok(&t, &rsa_cert.root).await;

    // P-521 (ES512; KMS answers DER, the envelope needs 132-byte R‖S) addressed by key ARN
    // (region from the ARN), with the token read from a file as on other CI systems.
    let ec = FakeKey::generate(KeyKind::P521);
    let ec_cert = issue_certificate(dir.path(), "aws-ec", &ec);
    let arn = aws.add_key(spec_name(KeyKind::P521), "notary-ec", ec);
    let token_file = dir.path().join("oidc-token");
    std::fs::write(&token_file, github.mint("sts.amazonaws.com", json!({}))).unwrap();
    let t = target("aws/ec").await;
    for format in ["jws", "cose"] {
        let mut cmd = bin(&github);
        cmd.arg("sign").arg("--cert").arg(&ec_cert.chain);
        aws_args(&mut cmd, &aws, &arn);
        cmd.arg("--oidc-token-file").arg(&token_file);
        let digest = sign_ok(cmd, &t, format).await;
        python_check(&t, &digest, "ES512", 2).await;
    }
    verify_ok(&t, &ec_cert.root).await;

    assert_eq!(aws.sign_requests(), 4);
    // Two runs asked GitHub for a token, both for STS's audience; two used the file.
    assert_eq!(
        github.requested_audiences(),
        vec!["sts.amazonaws.com".to_string(); 2]
    );
    assert_eq!(aws.web_identity_tokens().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_kms_keys_are_refused_before_any_sign() {
    let github = FakeGitHubOidc::start().await;
    let azure = FakeAzure::start(github.jwks(), SUBJECT).await;
    let aws = FakeAws::start(github.jwks(), "repo:octo-org/*").await;
    let dir = tempfile::tempdir().unwrap();
    let t = target("forbidden/app").await;

    let k1 = FakeKey::generate(KeyKind::P256K);
    let cert = issue_certificate(dir.path(), "k1-azure", &k1);
    let key_id = azure.add_key("secp256k1", k1);
    let mut cmd = bin(&github);
    cmd.arg("sign")
        .arg("--cert")
        .arg(&cert.chain)
        .arg(&t.reference);
    azure_args(&mut cmd, &azure, &key_id);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", e2e::text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("P-256K") && err.contains("not a Notary curve"),
        "{err}"
    );
    assert_eq!(azure.sign_requests(), 0, "a Sign request was sent");

    let k1 = FakeKey::generate(KeyKind::P256K);
    let cert = issue_certificate(dir.path(), "k1-aws", &k1);
    let arn = aws.add_key("ECC_SECG_P256K1", "k1", k1);
    let mut cmd = bin(&github);
    cmd.arg("sign")
        .arg("--cert")
        .arg(&cert.chain)
        .arg(&t.reference);
    aws_args(&mut cmd, &aws, &arn);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", e2e::text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ECC_SECG_P256K1"), "{err}");
    assert_eq!(aws.operations(), vec!["GetPublicKey".to_string()]);

    // A certificate for another key is refused before signing too.
    let key = FakeKey::generate(KeyKind::P256);
    let other_cert = issue_certificate(dir.path(), "other", &FakeKey::generate(KeyKind::P256));
    let arn = aws.add_key("ECC_NIST_P256", "p256", key);
    let mut cmd = bin(&github);
    cmd.arg("sign")
        .arg("--cert")
        .arg(&other_cert.chain)
        .arg(&t.reference);
    aws_args(&mut cmd, &aws, &arn);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", e2e::text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not the public key of the AWS KMS key"),
        "{}",
        e2e::text(&out)
    );
    assert!(!aws.operations().contains(&"Sign".to_string()));
}

fn azure_config(azure: &FakeAzure, key_id: &str, chain: &IssuedCert) -> AzureKvConfig {
    AzureKvConfig {
        key_id: key_id.to_string(),
        tenant_id: azure.tenant_id.clone(),
        client_id: azure.client_id.clone(),
        authority_host: Some(azure.authority_host()),
        chain: Some(support_chain(chain)),
    }
}

fn support_chain(cert: &IssuedCert) -> Vec<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(&cert.chain)
        .unwrap()
        .map(|c| c.unwrap().as_ref().to_vec())
        .collect()
}

fn token(raw: String) -> IdToken {
    IdToken::parse(raw).expect("JWT shape")
}

/// What Entra ID refuses, and how each refusal reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_id_refusals_are_reported_clearly() {
    let github = FakeGitHubOidc::start().await;
    let azure = FakeAzure::start(github.jwks(), SUBJECT).await;
    let dir = tempfile::tempdir().unwrap();
    let key = FakeKey::generate(KeyKind::P256);
    let cert = issue_certificate(dir.path(), "entra", &key);
    let key_id = azure.add_key("k", key);
    let aud = "api://AzureADTokenExchange";
    let cases = [
        (github.mint("api://wrong", json!({})), "AADSTS700212"),
        (
            github.mint(
                aud,
                json!({"exp": now() - 120, "nbf": now() - 400, "iat": now() - 400}),
            ),
            "AADSTS700024",
        ),
        (github.mint_forged(aud), "AADSTS50013"),
        (
            github.mint(
                aud,
                json!({"sub": "repo:octo-org/other:ref:refs/heads/main"}),
            ),
            "AADSTS700213",
        ),
        (
            github.mint(aud, json!({"iss": "https://attacker.example"})),
            "AADSTS700211",
        ),
    ];
    for (raw, code) in cases {
        let err =
            AzureKeyVaultSigner::open(azure_config(&azure, &key_id, &cert), &token(raw.clone()))
                .await
                .unwrap_err()
                .to_string();
        assert!(err.contains(code), "{code}: {err}");
        assert!(err.contains("Entra ID token exchange"), "{err}");
        assert!(!err.contains(&raw) && !err.contains("Trace ID"), "{err}");
    }
    // Federation mismatches come with the fix.
    let err = AzureKeyVaultSigner::open(
        azure_config(&azure, &key_id, &cert),
        &token(github.mint("api://wrong", json!({}))),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("federated credential"), "{err}");
    // A wrong client id and a wrong tenant are named.
    let mut config = azure_config(&azure, &key_id, &cert);
    config.client_id = "00000000-0000-0000-0000-000000000000".into();
    let err = AzureKeyVaultSigner::open(config, &token(github.mint(aud, json!({}))))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("AADSTS700016"), "{err}");
    let mut config = azure_config(&azure, &key_id, &cert);
    config.tenant_id = "contoso.onmicrosoft.com".into();
    let err = AzureKeyVaultSigner::open(config, &token(github.mint(aud, json!({}))))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("AADSTS90002"), "{err}");
    // A missing key is Key Vault's 404, with the hint.
    let err = AzureKeyVaultSigner::open(
        azure_config(&azure, &format!("{}/keys/nope", azure.vault_url()), &cert),
        &token(github.mint(aud, json!({}))),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("KeyNotFound") && err.contains("check the key identifier"),
        "{err}"
    );
    for t in azure.access_tokens() {
        assert!(!err.contains(&t));
    }
    assert_eq!(azure.sign_requests(), 0);
}

/// What STS and KMS refuse, and how each refusal reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_and_kms_refusals_are_reported_clearly() {
    let github = FakeGitHubOidc::start().await;
    let aws = FakeAws::start(github.jwks(), "repo:octo-org/octo-repo:ref:refs/heads/main").await;
    let dir = tempfile::tempdir().unwrap();
    let key = FakeKey::generate(KeyKind::P256);
    let cert = issue_certificate(dir.path(), "sts", &key);
    let arn = aws.add_key("ECC_NIST_P256", "k", key);
    let config = |region: Option<&str>, role: &str| AwsKmsConfig {
        key_id: arn.clone(),
        role_arn: role.to_string(),
        region: region.map(String::from),
        sts_endpoint: Some(aws.sts_url()),
        kms_endpoint: Some(aws.kms_url()),
        session_name: None,
        chain: support_chain(&cert),
    };
    let aud = "sts.amazonaws.com";
    let cases = [
        (
            github.mint("api://AzureADTokenExchange", json!({})),
            "InvalidIdentityToken: Incorrect token audience",
        ),
        (
            github.mint(
                aud,
                json!({"exp": now() - 120, "nbf": now() - 400, "iat": now() - 400}),
            ),
            "ExpiredTokenException",
        ),
        (github.mint_forged(aud), "InvalidIdentityToken"),
        (
            github.mint(aud, json!({"sub": "repo:octo-org/octo-repo:pull_request"})),
            "AccessDenied",
        ),
    ];
    for (raw, expected) in cases {
        let err = AwsKmsSigner::open(config(None, &aws.role_arn), &token(raw.clone()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(err.contains("AssumeRoleWithWebIdentity"), "{err}");
        assert!(!err.contains(&raw), "{err}");
    }
    let err = AwsKmsSigner::open(
        config(None, "arn:aws:iam::111122223333:role/other"),
        &token(github.mint(aud, json!({}))),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("AccessDenied") && err.contains("trust policy"),
        "{err}"
    );

    // A region that is not the key's: KMS refuses the SigV4 credential scope.
    let err = AwsKmsSigner::open(
        config(Some("us-east-1"), &aws.role_arn),
        &token(github.mint(aud, json!({}))),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("InvalidSignatureException") && err.contains("region"),
        "{err}"
    );
    // An unknown key.
    let mut missing = config(None, &aws.role_arn);
    missing.key_id = arn.replace("key/", "key/0000");
    let err = AwsKmsSigner::open(missing, &token(github.mint(aud, json!({}))))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("NotFoundException"), "{err}");
    for c in aws.issued() {
        assert!(!err.contains(&c.secret_access_key) && !err.contains(&c.session_token));
    }
    assert_eq!(aws.sign_requests(), 0);
}

/// The KMS fake checks SigV4 for real: a request whose signature was made with another secret,
/// or whose session token is not the one issued with the key id, is refused the way KMS does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_fake_rejects_bad_sigv4() {
    let github = FakeGitHubOidc::start().await;
    let aws = FakeAws::start(github.jwks(), "repo:octo-org/*").await;
    let dir = tempfile::tempdir().unwrap();
    let key = FakeKey::generate(KeyKind::P256);
    let cert = issue_certificate(dir.path(), "sig", &key);
    let arn = aws.add_key("ECC_NIST_P256", "k", key);
    // A valid run first, so credentials exist.
    let signer = AwsKmsSigner::open(
        AwsKmsConfig {
            key_id: arn.clone(),
            role_arn: aws.role_arn.clone(),
            region: None,
            sts_endpoint: Some(aws.sts_url()),
            kms_endpoint: Some(aws.kms_url()),
            session_name: Some("sigv4-test".into()),
            chain: support_chain(&cert),
        },
        &token(github.mint("sts.amazonaws.com", json!({}))),
    )
    .await
    .expect("open");
    use sign_action::crypto::Signer as _;
    signer
        .sign(b"payload")
        .await
        .expect("a correctly signed request is accepted");
    let creds = aws.issued().pop().unwrap();
    let amz_date = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap();
    let body = json!({"KeyId": arn}).to_string();
    let post = |auth: String, session: &str| {
        reqwest::Client::new()
            .post(aws.kms_url())
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", "TrentService.GetPublicKey")
            .header("X-Amz-Date", &amz_date)
            .header("X-Amz-Security-Token", session.to_string())
            .header("Authorization", auth)
            .body(body.clone())
            .send()
    };
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/{}/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature={}",
        creds.access_key_id,
        &amz_date[..8],
        aws.region,
        "0".repeat(64)
    );
    let resp = post(auth.clone(), &creds.session_token).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["__type"], "InvalidSignatureException", "{v}");
    let resp = post(auth, "not-the-session-token").await.unwrap();
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["__type"], "UnrecognizedClientException", "{v}");
    // A correctly signed request is still refused when the algorithm does not fit the key,
    // or the digest does not fit the algorithm.
    let digest = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    let (status, v) = aws
        .raw_kms_call(
            "Sign",
            &json!({"KeyId": arn, "Message": digest, "MessageType": "DIGEST",
                    "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
        )
        .await;
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("InvalidKeyUsageException")),
        "{v}"
    );
    let (status, v) = aws
        .raw_kms_call(
            "Sign",
            &json!({"KeyId": arn, "Message": "AAAA", "MessageType": "DIGEST",
                    "SigningAlgorithm": "ECDSA_SHA_256"}),
        )
        .await;
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("ValidationException")),
        "{v}"
    );
    let (status, v) = aws
        .raw_kms_call(
            "Sign",
            &json!({"KeyId": arn, "Message": digest, "MessageType": "DIGEST",
                    "SigningAlgorithm": "ECDSA_SHA_256"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Everything a run printed or wrote where a workflow could see it.
struct Visible {
    stdout: String,
    stderr: String,
    output_file: String,
    summary_file: String,
}

impl Visible {
    /// Every line except the `::add-mask::` commands, which must carry the token to mask it.
    fn unmasked(&self) -> String {
        let stdout: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .collect();
        format!(
            "{}\n{}\n{}\n{}",
            stdout.join("\n"),
            self.stderr,
            self.output_file,
            self.summary_file
        )
    }
}

async fn run_action(mut cmd: Command, dir: &Path) -> (Output, Visible) {
    let output_file = dir.join("github_output");
    let summary_file = dir.join("step_summary");
    std::fs::write(&output_file, "").unwrap();
    std::fs::write(&summary_file, "").unwrap();
    cmd.arg("action")
        .arg("sign")
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file);
    let out = run(cmd).await;
    let visible = Visible {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        output_file: std::fs::read_to_string(&output_file).unwrap(),
        summary_file: std::fs::read_to_string(&summary_file).unwrap(),
    };
    (out, visible)
}

/// Parts of a JWT that identify it (header alone is not secret; payload and signature are).
fn jwt_parts(token: &str) -> Vec<String> {
    let mut parts = vec![token.to_string()];
    parts.extend(token.split('.').skip(1).map(String::from));
    parts
}

fn assert_no_leak(visible: &Visible, secrets: &[String], what: &str) {
    let text = visible.unmasked();
    for s in secrets.iter().filter(|s| s.len() >= 16) {
        assert!(
            !text.contains(s.as_str()),
            "{what}: a secret appeared in the output:\n{text}"
        );
    }
}

/// Action mode, success and failure paths: no OIDC token, client assertion, access token or
/// temporary credential appears in stdout, stderr, GITHUB_OUTPUT or the step summary, and the
/// token is masked before anything else is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_mode_never_shows_tokens_or_credentials() {
    let github = FakeGitHubOidc::start().await;
    let azure = FakeAzure::start(github.jwks(), SUBJECT).await;
    let aws = FakeAws::start(github.jwks(), "repo:octo-org/octo-repo:*").await;
    let dir = tempfile::tempdir().unwrap();
    let t = target("canary/app").await;

    let key = FakeKey::generate(KeyKind::P256);
    let cert = issue_certificate(dir.path(), "canary-aws", &key);
    let arn = aws.add_key("ECC_NIST_P256", "canary", key);
    let aws_action = |role: &str| {
        let mut cmd = bin(&github);
        cmd.env("INPUT_IMAGES", &t.reference)
            .env("INPUT_KMS", "aws")
            .env("INPUT_KMS-KEY", &arn)
            .env("INPUT_AWS-ROLE-ARN", role)
            .env("INPUT_CERTIFICATE-CHAIN", &cert.chain)
            .env("AWS_ENDPOINT_URL_STS", aws.sts_url())
            .env("AWS_ENDPOINT_URL_KMS", aws.kms_url());
        cmd
    };
    // Success.
    let (out, ok) = run_action(aws_action(&aws.role_arn), dir.path()).await;
    assert!(out.status.success(), "{}", e2e::text(&out));
    assert!(
        ok.output_file.contains("signature-digest"),
        "{}",
        ok.output_file
    );
    let first = ok.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("::add-mask::"), "{}", ok.stdout);
    // Failure at STS (the role does not trust this repository).
    let (out, denied) = run_action(
        aws_action("arn:aws:iam::111122223333:role/someone-else"),
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", e2e::text(&out));
    assert!(denied.stdout.contains("AccessDenied"), "{}", denied.stdout);

    // Azure: a success, then a refusal from Entra ID (unknown client), then one from Key Vault.
    let key = FakeKey::generate(KeyKind::Rsa2048);
    let az_cert = issue_certificate(dir.path(), "canary-azure", &key);
    let key_id = azure.add_key("canary", key);
    azure.set_certificate("canary", az_cert.leaf_der(), Some(pem_of(&az_cert.chain)));
    let azure_action = |client: &str, key: &str| {
        let mut cmd = bin(&github);
        cmd.env("INPUT_IMAGES", &t.reference)
            .env("INPUT_KMS", "azure")
            .env("INPUT_KMS-KEY", key)
            .env("INPUT_AZURE-TENANT-ID", &azure.tenant_id)
            .env("INPUT_AZURE-CLIENT-ID", client)
            .env("AZURE_AUTHORITY_HOST", azure.authority_host());
        cmd
    };
    let (out, az_ok) = run_action(azure_action(&azure.client_id, &key_id), dir.path()).await;
    assert!(out.status.success(), "{}", e2e::text(&out));
    let (out, az_client) = run_action(
        azure_action("11111111-2222-3333-4444-555555555555", &key_id),
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        az_client.stdout.contains("AADSTS700016"),
        "{}",
        az_client.stdout
    );
    let (out, az_missing) = run_action(
        azure_action(
            &azure.client_id,
            &format!("{}/keys/absent", azure.vault_url()),
        ),
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        az_missing.stdout.contains("KeyNotFound"),
        "{}",
        az_missing.stdout
    );

    let mut secrets: Vec<String> = vec![github.request_token()];
    for t in azure
        .assertions()
        .iter()
        .chain(aws.web_identity_tokens().iter())
    {
        secrets.extend(jwt_parts(t));
    }
    for t in azure.access_tokens() {
        secrets.extend(jwt_parts(&t));
    }
    for c in aws.issued() {
        secrets.extend([c.secret_access_key, c.session_token, c.access_key_id]);
    }
    assert!(
        secrets.len() > 10,
        "the canary must have something to look for"
    );
    for (visible, what) in [
        (&ok, "aws success"),
        (&denied, "aws denied"),
        (&az_ok, "azure success"),
        (&az_client, "azure unknown client"),
        (&az_missing, "azure missing key"),
    ] {
        assert_no_leak(visible, &secrets, what);
    }
    // The two that signed verify with the ordinary verifier (each under its own CA).
    let out = verify_with(&t, &cert.root).await;
    assert!(out.status.success(), "{}", e2e::text(&out));
}

/// CLI mode: without GitHub's variables or a token file, the error says what to add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_oidc_permission_is_explained() {
    let github = FakeGitHubOidc::start().await;
    let mut cmd = bin(&github);
    cmd.env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .args(["sign", "registry.example/app@sha256:"])
        .arg("a".repeat(64))
        .args([
            "--kms",
            "aws",
            "--kms-key",
            "alias/x",
            "--aws-region",
            "eu-west-1",
        ])
        .args([
            "--aws-role-arn",
            "arn:aws:iam::111122223333:role/r",
            "--cert",
            "/dev/null",
        ]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", e2e::text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("id-token: write"), "{err}");
    // Provider settings are checked before any token is requested.
    let mut cmd = bin(&github);
    cmd.args(["sign", "registry.example/app@sha256:"])
        .arg("a".repeat(64))
        .args([
            "--kms",
            "azure",
            "--kms-key",
            "https://v.vault.azure.net/keys/k",
        ]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--azure-tenant-id"),
        "{}",
        e2e::text(&out)
    );
    assert_eq!(github.token_requests(), 0);
}

/// The chain read from Key Vault: a secret that also holds the private key (an exportable key)
/// is refused, and so is a vault certificate whose key is not the vault key; neither signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_vault_chain_rules() {
    let github = FakeGitHubOidc::start().await;
    let azure = FakeAzure::start(github.jwks(), SUBJECT).await;
    let dir = tempfile::tempdir().unwrap();
    let aud = "api://AzureADTokenExchange";
    let open = |key_id: String| {
        let config = AzureKvConfig {
            key_id,
            tenant_id: azure.tenant_id.clone(),
            client_id: azure.client_id.clone(),
            authority_host: Some(azure.authority_host()),
            chain: None,
        };
        let t = token(github.mint(aud, json!({})));
        async move { AzureKeyVaultSigner::open(config, &t).await }
    };

    let key = FakeKey::generate(KeyKind::P256);
    let cert = issue_certificate(dir.path(), "exportable", &key);
    let private = key.private_pem().unwrap();
    let key_id = azure.add_key("exportable", key);
    azure.set_certificate(
        "exportable",
        cert.leaf_der(),
        Some(format!("{private}{}", pem_of(&cert.chain))),
    );
    let err = open(key_id).await.unwrap_err().to_string();
    assert!(
        err.contains("exportable") && err.contains("certificate-chain"),
        "{err}"
    );
    assert!(!err.contains("PRIVATE KEY"), "{err}");

    let key = FakeKey::generate(KeyKind::P256);
    let other = issue_certificate(dir.path(), "other-key", &FakeKey::generate(KeyKind::P256));
    let key_id = azure.add_key("mismatch", key);
    azure.set_certificate("mismatch", other.leaf_der(), Some(pem_of(&other.chain)));
    let err = open(key_id).await.unwrap_err().to_string();
    assert!(
        err.contains("is not the public key of the Key Vault key"),
        "{err}"
    );

    // Without a certificate in the vault the error says to give the chain.
    let key_id = azure.add_key("no-cert", FakeKey::generate(KeyKind::P256));
    let err = open(key_id).await.unwrap_err().to_string();
    assert!(
        err.contains("CertificateNotFound") && err.contains("give the chain"),
        "{err}"
    );
    assert_eq!(azure.sign_requests(), 0);
}
