//! A stand-in for a Fulcio CA (Sigstore's keyless certificate authority), which cannot be
//! reached from tests. It serves the v2 API exactly as `fulcio.proto` and the gRPC gateway
//! define it: `POST /api/v2/signingCert` with `credentials.oidcIdentityToken` and
//! `publicKeyRequest {publicKey {algorithm, content}, proofOfPossession}`, answering
//! `signedCertificateEmbeddedSct.chain.certificates` (PEM, leaf first, root last).
//!
//! It does what the real service does with a request: the token's RS256 signature against the
//! issuer's JWKS, its issuer, the audience `sigstore`, expiry; the public key (EC P-256/P-384
//! only here) and the proof of possession (an ASN.1 ECDSA signature over the token's `sub`,
//! which is what Fulcio's GitHub principal uses as challenge). Then a real CA (root →
//! intermediate → leaf, P-384 issuers, rcgen) issues a 10-minute leaf with codeSigning, an
//! empty subject, SAN URI `https://github.com/` + `job_workflow_ref` and the Fulcio extensions
//! (1.3.6.1.4.1.57264.1.*). Errors have Fulcio's shape and texts (HTTP 400 with
//! `{"code":3,"message":…,"details":[]}`); the reasons real Fulcio only logs are kept in
//! [`FakeFulcio::rejections`].
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use der::asn1::Utf8StringRef;
use der::{Decode, Encode};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
    SignatureAlgorithm,
};
use serde_json::{json, Value};

use super::fake_http::{FakeResponse, FakeServer};
use super::oidc::{verify_jwt, GITHUB_ISSUER};

/// Fulcio's client-facing messages (pkg/server/error.go).
pub const INVALID_IDENTITY_TOKEN: &str = "There was an error processing the identity token";
pub const INVALID_PUBLIC_KEY: &str = "The public key supplied in the request could not be parsed";
pub const INSECURE_PUBLIC_KEY: &str = "The public key supplied in the request is insecure";
pub const INVALID_SIGNATURE: &str = "The signature supplied in the request could not be verified";

const AUDIENCE: &str = "sigstore";
const LEAF_LIFETIME: Duration = Duration::from_secs(600);

/// How the fake should misbehave, for the client's checks of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Answer {
    #[default]
    Honest,
    /// A leaf for a key other than the one in the request.
    OtherKey,
    /// A leaf without the codeSigning EKU (serverAuth instead).
    NoCodeSigning,
    /// The chain without its root.
    NoRoot,
    /// The leaf binds another OIDC issuer than the token's.
    OtherIssuer,
    /// Echo the token in the error message (a careless CA).
    EchoToken,
}

struct Ca {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate: Issuer<'static, KeyPair>,
}

pub struct FakeFulcio {
    server: FakeServer,
    root_der: Vec<u8>,
    rejections: Arc<Mutex<Vec<String>>>,
    issued: Arc<Mutex<Vec<Vec<u8>>>>,
    answer: Arc<Mutex<Answer>>,
    /// Key algorithms (`"P-256"`, `"P-384"`) this instance refuses as insecure.
    refused_curves: Arc<Mutex<Vec<&'static str>>>,
}

impl FakeFulcio {
    /// A CA trusting GitHub's issuer with the key set `jwks` (from [`super::oidc::FakeGitHubOidc::jwks`]).
    pub async fn start(jwks: Value) -> FakeFulcio {
        let ca = Arc::new(make_ca());
        let root_der = ca.root_der.clone();
        let rejections = Arc::new(Mutex::new(Vec::new()));
        let issued = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(Answer::Honest));
        let refused_curves = Arc::new(Mutex::new(Vec::new()));
        let (rj, is, an, rc) = (
            rejections.clone(),
            issued.clone(),
            answer.clone(),
            refused_curves.clone(),
        );
        let server = FakeServer::start(move |req| {
            let answer = *an.lock().unwrap();
            match (req.method.as_str(), req.path()) {
                ("POST", "/api/v2/signingCert") => {
                    match sign_request(&ca, &jwks, &req.body, answer, &rc.lock().unwrap()) {
                        Ok(chain) => {
                            is.lock().unwrap().push(chain[0].clone());
                            let pems: Vec<String> = chain.iter().map(|d| pem(d)).collect();
                            json_response(
                                201,
                                &json!({"signedCertificateEmbeddedSct": {"chain": {"certificates": pems}}}),
                            )
                        }
                        Err((message, reason)) => {
                            rj.lock().unwrap().push(reason);
                            let message = if answer == Answer::EchoToken {
                                let token = serde_json::from_slice::<Value>(&req.body)
                                    .ok()
                                    .and_then(|v| {
                                        v["credentials"]["oidcIdentityToken"]
                                            .as_str()
                                            .map(String::from)
                                    })
                                    .unwrap_or_default();
                                format!("{message}: {token}")
                            } else {
                                message.to_string()
                            };
                            json_response(
                                400,
                                &json!({"code": 3, "message": message, "details": []}),
                            )
                        }
                    }
                }
                ("GET", "/api/v2/trustBundle") => json_response(
                    200,
                    &json!({"chains": [{"certificates": [pem(&ca.intermediate_der), pem(&ca.root_der)]}]}),
                ),
                _ => json_response(404, &json!({"code": 5, "message": "Not Found"})),
            }
        })
        .await;
        FakeFulcio {
            server,
            root_der,
            rejections,
            issued,
            answer,
            refused_curves,
        }
    }

    /// The base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.server.host)
    }

    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    pub fn root_pem(&self) -> String {
        pem(&self.root_der)
    }

    /// Why requests were refused, in order (what real Fulcio writes to its log only).
    pub fn rejections(&self) -> Vec<String> {
        self.rejections.lock().unwrap().clone()
    }

    /// DER leaf certificates issued, in order.
    pub fn issued(&self) -> Vec<Vec<u8>> {
        self.issued.lock().unwrap().clone()
    }

    pub fn set_answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Refuse keys on this curve as insecure (as a CA with a stricter key policy would).
    pub fn refuse_curve(&self, curve: &'static str) {
        self.refused_curves.lock().unwrap().push(curve);
    }

    /// Request bodies received (they hold tokens: for assertions on the request shape only).
    pub fn request_bodies(&self) -> Vec<Value> {
        self.server
            .requests()
            .iter()
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect()
    }
}

fn json_response(status: u16, v: &Value) -> FakeResponse {
    FakeResponse::new(status)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(v).unwrap())
}

pub fn pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn make_ca() -> Ca {
    let now = time::OffsetDateTime::now_utc();
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut root = CertificateParams::default();
    root.distinguished_name = DistinguishedName::new();
    root.distinguished_name
        .push(DnType::OrganizationName, "sigstore.dev");
    root.distinguished_name.push(DnType::CommonName, "sigstore");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.not_before = now - time::Duration::days(1);
    root.not_after = now + time::Duration::days(3650);
    let root_cert = root.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root, root_key);

    let int_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut int = CertificateParams::default();
    int.distinguished_name = DistinguishedName::new();
    int.distinguished_name
        .push(DnType::OrganizationName, "sigstore.dev");
    int.distinguished_name
        .push(DnType::CommonName, "sigstore-intermediate");
    int.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    int.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    int.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    int.not_before = now - time::Duration::days(1);
    int.not_after = now + time::Duration::days(3650);
    let int_cert = int.signed_by(&int_key, &root_issuer).unwrap();
    Ca {
        root_der: root_cert.der().to_vec(),
        intermediate_der: int_cert.der().to_vec(),
        intermediate: Issuer::new(int, int_key),
    }
}

/// The client's public key, as rcgen wants it.
struct ClientKey {
    point: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl PublicKeyData for ClientKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

/// (client message, logged reason)
type Refusal = (&'static str, String);

fn sign_request(
    ca: &Ca,
    jwks: &Value,
    body: &[u8],
    answer: Answer,
    refused_curves: &[&'static str],
) -> Result<Vec<Vec<u8>>, Refusal> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| (INVALID_IDENTITY_TOKEN, format!("request is not JSON: {e}")))?;
    let token = request["credentials"]["oidcIdentityToken"]
        .as_str()
        .unwrap_or_default();
    let claims = verify_jwt(token, jwks, GITHUB_ISSUER, AUDIENCE)
        .map_err(|e| (INVALID_IDENTITY_TOKEN, e))?;
    let sub = claims["sub"]
        .as_str()
        .ok_or((INVALID_IDENTITY_TOKEN, "token has no sub".to_string()))?;
    let workflow = claims["job_workflow_ref"].as_str().ok_or((
        INVALID_IDENTITY_TOKEN,
        "token has no job_workflow_ref claim".to_string(),
    ))?;

    let key_request = &request["publicKeyRequest"];
    let content = key_request["publicKey"]["content"]
        .as_str()
        .unwrap_or_default();
    let spki_der = pem_body(content, "PUBLIC KEY").ok_or((
        INVALID_PUBLIC_KEY,
        "publicKey.content is not a PEM PUBLIC KEY".to_string(),
    ))?;
    let spki = spki::SubjectPublicKeyInfoRef::from_der(&spki_der)
        .map_err(|e| (INVALID_PUBLIC_KEY, format!("SubjectPublicKeyInfo: {e}")))?;
    let ec_oid = const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
    if spki.algorithm.oid != ec_oid {
        return Err((
            INSECURE_PUBLIC_KEY,
            format!("unsupported key algorithm {}", spki.algorithm.oid),
        ));
    }
    let curve: der::asn1::ObjectIdentifier = spki
        .algorithm
        .parameters
        .and_then(|p| p.decode_as().ok())
        .ok_or((
            INVALID_PUBLIC_KEY,
            "EC key without a named curve".to_string(),
        ))?;
    let (name, verify_alg, rcgen_alg): (
        &'static str,
        &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm,
        &'static SignatureAlgorithm,
    ) = if curve == const_oid::db::rfc5912::SECP_256_R_1 {
        (
            "P-256",
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
            &rcgen::PKCS_ECDSA_P256_SHA256,
        )
    } else if curve == const_oid::db::rfc5912::SECP_384_R_1 {
        (
            "P-384",
            &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1,
            &rcgen::PKCS_ECDSA_P384_SHA384,
        )
    } else {
        return Err((INSECURE_PUBLIC_KEY, format!("unsupported curve {curve}")));
    };
    if refused_curves.contains(&name) {
        return Err((
            INSECURE_PUBLIC_KEY,
            format!("key algorithm {name} refused by policy"),
        ));
    }
    if key_request["publicKey"]["algorithm"] != "ECDSA" {
        return Err((
            INVALID_PUBLIC_KEY,
            format!(
                "publicKey.algorithm {} does not match an EC key",
                key_request["publicKey"]["algorithm"]
            ),
        ));
    }
    let point = spki.subject_public_key.raw_bytes().to_vec();
    let proof = key_request["proofOfPossession"]
        .as_str()
        .and_then(|p| STANDARD.decode(p).ok())
        .ok_or((
            INVALID_SIGNATURE,
            "proofOfPossession is not base64".to_string(),
        ))?;
    aws_lc_rs::signature::UnparsedPublicKey::new(verify_alg, &point)
        .verify(sub.as_bytes(), &proof)
        .map_err(|_| {
            (
                INVALID_SIGNATURE,
                "proof of possession does not verify over the token's sub".to_string(),
            )
        })?;

    // Issue the leaf.
    let leaf_point = match answer {
        Answer::OtherKey => {
            let other = KeyPair::generate_for(rcgen_alg).unwrap();
            other.der_bytes().to_vec()
        }
        _ => point,
    };
    let now = time::OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.not_before = now;
    params.not_after = now + LEAF_LIFETIME;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match answer {
        Answer::NoCodeSigning => vec![ExtendedKeyUsagePurpose::ServerAuth],
        _ => vec![ExtendedKeyUsagePurpose::CodeSigning],
    };
    params.subject_alt_names = vec![SanType::URI(
        format!("https://github.com/{workflow}").try_into().unwrap(),
    )];
    let issuer = match answer {
        Answer::OtherIssuer => "https://issuer.example.net".to_string(),
        _ => claims["iss"].as_str().unwrap_or_default().to_string(),
    };
    params.custom_extensions = fulcio_extensions(&claims, &issuer);
    let leaf = params
        .signed_by(
            &ClientKey {
                point: leaf_point,
                alg: rcgen_alg,
            },
            &ca.intermediate,
        )
        .unwrap();
    let mut chain = vec![leaf.der().to_vec(), ca.intermediate_der.clone()];
    if answer != Answer::NoRoot {
        chain.push(ca.root_der.clone());
    }
    Ok(chain)
}

fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    let b64: String = text[start..stop].split_whitespace().collect();
    STANDARD.decode(b64).ok()
}

/// The extensions Fulcio derives from a GitHub Actions token (docs/oid-info.md).
fn fulcio_extensions(claims: &Value, issuer: &str) -> Vec<CustomExtension> {
    let claim = |name: &str| claims[name].as_str().map(String::from);
    let github = |path: Option<String>| path.map(|p| format!("https://github.com/{p}"));
    let mut out = Vec::new();
    let mut raw = |arc: u64, value: Option<String>| {
        if let Some(v) = value {
            out.push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, arc],
                v.into_bytes(),
            ));
        }
    };
    raw(1, Some(issuer.to_string()));
    raw(2, claim("event_name"));
    raw(3, claim("sha"));
    raw(4, claim("workflow"));
    raw(5, claim("repository"));
    raw(6, claim("ref"));
    let mut utf8 = |arc: u64, value: Option<String>| {
        if let Some(v) = value {
            let der = Utf8StringRef::new(&v).unwrap().to_der().unwrap();
            out.push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, arc],
                der,
            ));
        }
    };
    utf8(8, Some(issuer.to_string()));
    utf8(9, github(claim("job_workflow_ref")));
    utf8(10, claim("job_workflow_sha"));
    utf8(11, claim("runner_environment"));
    utf8(12, github(claim("repository")));
    utf8(13, claim("sha"));
    utf8(14, claim("ref"));
    utf8(15, claim("repository_id"));
    utf8(16, github(claim("repository_owner")));
    utf8(17, claim("repository_owner_id"));
    utf8(18, github(claim("workflow_ref")));
    utf8(19, claim("workflow_sha"));
    utf8(20, claim("event_name"));
    if let (Some(repo), Some(run), Some(attempt)) =
        (claim("repository"), claim("run_id"), claim("run_attempt"))
    {
        utf8(
            21,
            Some(format!(
                "https://github.com/{repo}/actions/runs/{run}/attempts/{attempt}"
            )),
        );
    }
    utf8(22, claim("repository_visibility"));
    out
}
