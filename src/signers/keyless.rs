//! Keyless signing: an ephemeral key and a short-lived code-signing certificate from a
//! Fulcio-compatible CA, obtained with an OIDC identity token.
//!
//! The key is a fresh ECDSA P-256 key that exists only in this process's memory (aws-lc-rs;
//! the PKCS#8 bytes it is generated as are zeroized once loaded). The certificate comes from
//! Fulcio's v2 API, `POST /api/v2/signingCert`, with the CSR-less request: the PEM public key
//! and a proof of possession, the key's signature over the token's `sub` claim (`email` for
//! issuers that identify people), checked by the CA against the key it certifies. The request
//! and answer are the gRPC-gateway JSON of `fulcio.proto` (`CreateSigningCertificateRequest`,
//! `SigningCertificate`), written by hand on serde: a Sigstore client crate would bring its
//! own TLS and crypto stacks for two JSON documents.
//!
//! The returned chain is held to the Notary rules (the same `validate_chain` as any signing
//! chain), its leaf must certify our key for code signing, and it must bind the issuer of the
//! token we presented. The certificate lives minutes, so signatures made with it are useful
//! only with an RFC 3161 timestamp; callers refuse keyless signing without one.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use const_oid::db::rfc5280;
use der::Decode;
use serde::Deserialize;
use serde_json::json;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, KeySpec, Signer};
use crate::net::{self, NetError};
use crate::oidc::IdToken;
use crate::x509::fulcio::{self, KeylessIdentity};
use crate::x509::{parse_certificates, validate_chain, Certificate, ChainPurpose};

/// Sigstore's public Fulcio instance.
pub const DEFAULT_FULCIO_URL: &str = "https://fulcio.sigstore.dev";
/// The audience Fulcio accepts tokens for.
pub const DEFAULT_OIDC_AUDIENCE: &str = "sigstore";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A chain of a few PEM certificates is a few KiB.
const MAX_RESPONSE_BYTES: u64 = 256 * 1024;
const MAX_CHAIN_CERTIFICATES: usize = 10;
/// An error message from the CA is shown to the user; it is cut to this length.
const MAX_MESSAGE_CHARS: usize = 300;
/// How far in our future the certificate's notBefore may be (the CA's clock runs ahead)
/// before we call it a clock problem rather than wait.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);
/// The timestamp's range (genTime ± accuracy) must lie within the certificate's validity;
/// signing at least this long after notBefore leaves room for a TSA accuracy of a second.
const AFTER_NOT_BEFORE: Duration = Duration::from_secs(1);

/// Why no keyless certificate could be obtained. No variant carries the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeylessError {
    #[error("Fulcio URL {0}")]
    Url(NetError),
    #[error("cannot set up the HTTPS client for Fulcio: {0}")]
    Client(NetError),
    #[error("generating the ephemeral signing key failed")]
    KeyGeneration,
    #[error("cannot reach the Fulcio CA at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error(
        "the Fulcio CA at {url} refused the OIDC identity token (HTTP {status}: {message}); {hint}"
    )]
    TokenRefused {
        url: String,
        status: u16,
        message: String,
        hint: String,
    },
    #[error("the Fulcio CA at {url} refused the certificate request (HTTP {status}: {message})")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the answer of the Fulcio CA at {url} is not a signing certificate: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("the certificate chain from the Fulcio CA at {url} is not acceptable: {reason}")]
    BadChain { url: String, reason: String },
}

/// A signer holding an ephemeral key and the keyless certificate chain that certifies it.
pub struct KeylessSigner {
    key: EcdsaKeyPair,
    chain: Vec<Vec<u8>>,
    identity: KeylessIdentity,
}

impl std::fmt::Debug for KeylessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeylessSigner")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl KeylessSigner {
    /// Generate an ephemeral key and have the Fulcio CA at `fulcio_url` certify it for the
    /// identity in `token`. Waits (at most a minute) until the certificate is valid here.
    pub async fn obtain(fulcio_url: &str, token: &IdToken) -> Result<KeylessSigner, KeylessError> {
        let endpoint = signing_cert_endpoint(fulcio_url)?;
        let display_url = fulcio_url.trim_end_matches('/').to_string();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| KeylessError::KeyGeneration)?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        // The same key twice: DER signatures for the proof of possession (what Fulcio
        // verifies), fixed-width R‖S for Notary signatures.
        let pop_key = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
            .map_err(|_| KeylessError::KeyGeneration)?;
        let key = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|_| KeylessError::KeyGeneration)?;
        drop(pkcs8);
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| KeylessError::KeyGeneration)?
            .as_ref()
            .to_vec();

        let claims = token.claims();
        let challenge = claims.get_str("email").unwrap_or(&claims.sub).to_string();
        let proof = pop_key
            .sign(&rng, challenge.as_bytes())
            .map_err(|_| KeylessError::KeyGeneration)?;
        drop(pop_key);
        let body = json!({
            "credentials": {"oidcIdentityToken": token.expose_secret()},
            "publicKeyRequest": {
                "publicKey": {"algorithm": "ECDSA", "content": spki_pem(&spki)},
                "proofOfPossession": STANDARD.encode(proof.as_ref()),
            },
        });

        let answer = post(&endpoint, &display_url, &body, token).await?;
        let chain = parse_answer(&answer, &display_url)?;
        let identity = check_chain(&chain, &spki, token, &display_url)?;
        wait_until_valid(&chain[0], &display_url).await?;
        validate_chain(&chain, ChainPurpose::CodeSigning, Some(SystemTime::now())).map_err(
            |e| KeylessError::BadChain {
                url: display_url.clone(),
                reason: e.to_string(),
            },
        )?;
        Ok(KeylessSigner {
            key,
            chain: chain.iter().map(|c| c.der().to_vec()).collect(),
            identity,
        })
    }

    /// The identity the certificate binds (workflow URI, repository, ref, issuer).
    pub fn identity(&self) -> &KeylessIdentity {
        &self.identity
    }
}

#[async_trait]
impl Signer for KeylessSigner {
    fn key_spec(&self) -> KeySpec {
        KeySpec::EcP256
    }

    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.key
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| CryptoError::SigningFailed("ECDSA P-256 signing failed".into()))
    }
}

/// `{fulcio}/api/v2/signingCert`, https (or http to loopback) only.
fn signing_cert_endpoint(fulcio_url: &str) -> Result<url::Url, KeylessError> {
    let base = net::secure_url(fulcio_url).map_err(KeylessError::Url)?;
    if base.query().is_some() || base.fragment().is_some() {
        return Err(KeylessError::Url(NetError::InsecureUrl {
            url: fulcio_url.to_string(),
            why: "give the CA's base URL without a query or fragment",
        }));
    }
    let joined = format!("{}/api/v2/signingCert", base.as_str().trim_end_matches('/'));
    url::Url::parse(&joined).map_err(|_| {
        KeylessError::Url(NetError::InsecureUrl {
            url: fulcio_url.to_string(),
            why: "not a valid URL",
        })
    })
}

fn spki_pem(spki_der: &[u8]) -> String {
    let b64 = STANDARD.encode(spki_der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// A message from the CA, safe to show: one line, bounded, and never the token (a CA that
/// echoes its input must not make us print the credential).
fn sanitize(message: &str, token: &IdToken) -> String {
    let secret = token.expose_secret();
    let mut text = if secret.is_empty() {
        message.to_string()
    } else {
        message.replace(secret, "***")
    };
    // Any JWT-looking run (three base64url parts) is dropped too: a partial echo is still a leak.
    text = text
        .split_whitespace()
        .map(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            let jwt_like = parts.len() == 3
                && parts.iter().all(|p| {
                    p.len() >= 8
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            if jwt_like {
                "***"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if text.chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

/// Fulcio's error body (gRPC status as JSON).
#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

async fn post(
    endpoint: &url::Url,
    display_url: &str,
    body: &serde_json::Value,
    token: &IdToken,
) -> Result<Vec<u8>, KeylessError> {
    let client = net::https_client(REQUEST_TIMEOUT).map_err(KeylessError::Client)?;
    let response = client
        .post(endpoint.clone())
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(body).expect("JSON values serialise"))
        .send()
        .await
        .map_err(|e| KeylessError::Unreachable {
            url: display_url.to_string(),
            message: sanitize(&e.without_url().to_string(), token),
        })?;
    let status = response.status().as_u16();
    let bytes = net::read_bounded(response, MAX_RESPONSE_BYTES, "the Fulcio CA")
        .await
        .map_err(|e| KeylessError::BadResponse {
            url: display_url.to_string(),
            reason: sanitize(&e.to_string(), token),
        })?;
    if (200..300).contains(&status) {
        return Ok(bytes);
    }
    let parsed: Option<Status> = serde_json::from_slice(&bytes).ok();
    let message = parsed
        .as_ref()
        .and_then(|s| s.message.clone())
        .map(|m| sanitize(&m, token))
        .unwrap_or_else(|| "no error message".to_string());
    // gRPC InvalidArgument (3) or Unauthenticated (16) about the token, or a plain 401.
    let about_token = status == 401
        || parsed.as_ref().and_then(|s| s.code) == Some(16)
        || message.to_ascii_lowercase().contains("identity token")
        || message.to_ascii_lowercase().contains("credentials");
    if about_token {
        return Err(KeylessError::TokenRefused {
            url: display_url.to_string(),
            status,
            message,
            hint: token_hint(token),
        });
    }
    Err(KeylessError::Refused {
        url: display_url.to_string(),
        status,
        message,
    })
}

/// What we know of the token that the CA refused, without the token: the claims the CA
/// checks (issuer, audience, expiry) and what each must be.
fn token_hint(token: &IdToken) -> String {
    let c = token.claims();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let expiry = if c.exp < now {
        format!("expired {} s ago", now - c.exp)
    } else {
        format!("expires in {} s", c.exp - now)
    };
    format!(
        "the token was issued by {} for audience {:?} and {expiry}. The CA accepts only unexpired tokens, from issuers it is configured to trust, for the audience it expects (Sigstore's: \"{DEFAULT_OIDC_AUDIENCE}\"; set --oidc-audience / input `oidc-audience` to match)",
        c.iss, c.aud
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningCertificate {
    signed_certificate_embedded_sct: Option<ChainHolder>,
    signed_certificate_detached_sct: Option<ChainHolder>,
}

#[derive(Deserialize)]
struct ChainHolder {
    chain: Option<CertificateChain>,
}

#[derive(Deserialize)]
struct CertificateChain {
    #[serde(default)]
    certificates: Vec<String>,
}

/// The PEM certificates of the answer, leaf first.
fn parse_answer(bytes: &[u8], url: &str) -> Result<Vec<Certificate>, KeylessError> {
    let bad = |reason: String| KeylessError::BadResponse {
        url: url.to_string(),
        reason,
    };
    let answer: SigningCertificate = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("not the JSON of a SigningCertificate ({e})")))?;
    let holder = match (
        answer.signed_certificate_embedded_sct,
        answer.signed_certificate_detached_sct,
    ) {
        (Some(h), None) | (None, Some(h)) => h,
        (None, None) => {
            return Err(bad(
                "neither signedCertificateEmbeddedSct nor signedCertificateDetachedSct".into(),
            ))
        }
        (Some(_), Some(_)) => {
            return Err(bad(
                "both signedCertificateEmbeddedSct and signedCertificateDetachedSct".into(),
            ))
        }
    };
    let pems = holder.chain.map(|c| c.certificates).unwrap_or_default();
    if pems.is_empty() {
        return Err(bad("the certificate chain is empty".into()));
    }
    let mut chain = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        let certs = parse_certificates(pem.as_bytes(), &format!("certificate #{}", i + 1))
            .map_err(|e| bad(e.to_string()))?;
        chain.extend(certs);
        if chain.len() > MAX_CHAIN_CERTIFICATES {
            return Err(bad(format!(
                "more than {MAX_CHAIN_CERTIFICATES} certificates"
            )));
        }
    }
    Ok(chain)
}

/// The chain meets the Notary rules, its leaf certifies `spki` for code signing and binds
/// the issuer of the token we presented. Returns the identity the leaf binds.
fn check_chain(
    chain: &[Certificate],
    spki: &[u8],
    token: &IdToken,
    url: &str,
) -> Result<KeylessIdentity, KeylessError> {
    let bad = |reason: String| KeylessError::BadChain {
        url: url.to_string(),
        reason,
    };
    // Validity is checked once we are inside it (see `wait_until_valid`).
    validate_chain(chain, ChainPurpose::CodeSigning, None).map_err(|e| bad(e.to_string()))?;
    let leaf = &chain[0];
    if leaf.spki_der() != spki {
        return Err(bad(
            "the leaf certificate certifies a different public key than the one we sent".into(),
        ));
    }
    let eku = leaf
        .parsed()
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == rfc5280::ID_CE_EXT_KEY_USAGE)
        .map(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()))
        .transpose()
        .map_err(|e| bad(format!("malformed extendedKeyUsage: {e}")))?;
    if !eku.is_some_and(|eku| eku.0.contains(&rfc5280::ID_KP_CODE_SIGNING)) {
        return Err(bad(
            "the leaf certificate's extendedKeyUsage does not include codeSigning".into(),
        ));
    }
    let identity = fulcio::keyless_identity(leaf)
        .map_err(bad)?
        .ok_or_else(|| {
            bad("the leaf certificate carries no Fulcio extensions (OIDC issuer); this is not a keyless certificate".into())
        })?;
    let issuer = &token.claims().iss;
    if identity.issuer.as_deref() != Some(issuer.as_str()) {
        return Err(bad(format!(
            "the certificate binds OIDC issuer {:?}, but the token was issued by {issuer:?}",
            identity.issuer.as_deref().unwrap_or("(none)")
        )));
    }
    if identity.san_uris.is_empty() && identity.san_emails.is_empty() {
        return Err(bad(
            "the leaf certificate names no identity (no URI or e-mail subjectAltName)".into(),
        ));
    }
    Ok(identity)
}

/// Sleep until the leaf has been valid for [`AFTER_NOT_BEFORE`]: a CA clock slightly ahead
/// of ours, or a TSA's accuracy, would otherwise put the signature before the certificate.
async fn wait_until_valid(leaf: &Certificate, url: &str) -> Result<(), KeylessError> {
    let ready = leaf.not_before() + AFTER_NOT_BEFORE;
    let now = SystemTime::now();
    if let Ok(wait) = ready.duration_since(now) {
        if wait > MAX_CLOCK_SKEW + AFTER_NOT_BEFORE {
            return Err(KeylessError::BadChain {
                url: url.to_string(),
                reason: format!(
                    "the certificate becomes valid only in {} s; this machine's clock is behind the CA's: fix the clock",
                    wait.as_secs()
                ),
            });
        }
        tokio::time::sleep(wait).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: serde_json::Value) -> IdToken {
        let enc = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        IdToken::parse(format!(
            "{}.{}.c2lnbmF0dXJlLWJ5dGVz",
            enc(&json!({"alg": "RS256", "typ": "JWT"})),
            enc(&claims)
        ))
        .unwrap()
    }

    #[test]
    fn endpoint_rules() {
        assert_eq!(
            signing_cert_endpoint("https://fulcio.sigstore.dev")
                .unwrap()
                .as_str(),
            "https://fulcio.sigstore.dev/api/v2/signingCert"
        );
        assert_eq!(
            signing_cert_endpoint("https://ca.example/fulcio/")
                .unwrap()
                .as_str(),
            "https://ca.example/fulcio/api/v2/signingCert"
        );
        assert!(signing_cert_endpoint("http://127.0.0.1:5555").is_ok());
        assert!(signing_cert_endpoint("http://fulcio.sigstore.dev").is_err());
        assert!(signing_cert_endpoint("https://ca.example/?x=1").is_err());
        assert!(signing_cert_endpoint("fulcio.sigstore.dev").is_err());
    }

    #[test]
    fn pem_lines_are_64_wide() {
        let pem = spki_pem(&[7u8; 91]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(*lines.last().unwrap(), "-----END PUBLIC KEY-----");
        assert_eq!(
            STANDARD.decode(lines[1..lines.len() - 1].concat()).unwrap(),
            vec![7u8; 91]
        );
    }

    #[test]
    fn messages_never_carry_the_token() {
        let t = token(
            json!({"iss": "https://issuer.example", "sub": "repo:o/r:ref:refs/heads/main", "aud": "sigstore", "exp": 4_000_000_000i64}),
        );
        let raw = t.expose_secret().to_string();
        let echoed = format!("bad token {raw} rejected");
        let clean = sanitize(&echoed, &t);
        assert!(!clean.contains(&raw), "{clean}");
        assert_eq!(clean, "bad token *** rejected");
        // A JWT that is not ours, or a fragment of ours, is dropped as well.
        let other = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0xxxx.c2lnbmF0dXJl";
        assert_eq!(sanitize(&format!("x {other}"), &t), "x ***");
        let long = "a".repeat(1000);
        assert_eq!(
            sanitize(&long, &t).chars().count(),
            MAX_MESSAGE_CHARS + 1,
            "cut and marked"
        );
        assert_eq!(sanitize("line\nbreak\u{1b}[31m", &t), "line break[31m");
        let hint = token_hint(&t);
        assert!(hint.contains("https://issuer.example"), "{hint}");
        assert!(hint.contains("\"sigstore\""), "{hint}");
        assert!(!hint.contains(&raw));
    }

    #[test]
    fn answers_are_parsed_strictly() {
        let url = "https://ca.example";
        for (body, why) in [
            ("{}", "neither"),
            ("not json", "not the JSON"),
            (
                r#"{"signedCertificateEmbeddedSct":{"chain":{"certificates":[]}}}"#,
                "empty",
            ),
            (
                r#"{"signedCertificateEmbeddedSct":{"chain":{"certificates":["x"]}},"signedCertificateDetachedSct":{"chain":{"certificates":["x"]}}}"#,
                "both",
            ),
            (
                r#"{"signedCertificateDetachedSct":{"chain":{"certificates":["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]}}}"#,
                "certificate #1",
            ),
        ] {
            let err = parse_answer(body.as_bytes(), url).unwrap_err().to_string();
            assert!(err.contains(why), "{body}: {err}");
        }
    }
}
