//! A signer whose key stays in AWS KMS, reached through GitHub's OIDC token: STS
//! `AssumeRoleWithWebIdentity` turns the job's token into 15-minute credentials for a role, and
//! KMS `Sign` (with `MessageType: DIGEST`) signs the digest we compute locally.
//!
//! # Why the REST APIs and not the SDK
//! The official SDK (`aws-config`, `aws-sdk-sts`, `aws-sdk-kms`) would add 56 crates to the
//! build, among them a second TLS and HTTP stack (rustls 0.21, hyper 0.14, h2 0.3 beside the
//! rustls 0.23 / hyper 1 we already build) and the generated `aws-sdk-kms` crate, for three
//! calls. Measured on this 2-core machine: those crates alone cost ~110 CPU-seconds in a debug
//! build (`aws-sdk-kms` 46 s of it; optimised builds cost several times more), on every cold CI
//! build, against a 30-minute budget for everything. The three calls are small and documented:
//! STS's query API (an unsigned form POST answering XML) and KMS's JSON 1.1 API
//! (`X-Amz-Target: TrentService.GetPublicKey` / `TrentService.Sign`) signed with Signature
//! Version 4. SigV4 is written here from AWS's documented algorithm (~80 lines on `aws-lc-rs`
//! HMAC/SHA-256) and checked against the worked example in AWS's documentation; the `aws-sigv4`
//! crate alone would still add 19 crates (smithy runtime types, a second `sha2`/`hmac`) for the
//! same 80 lines.
//!
//! # What is refused before any signature
//! `GetPublicKey` tells the key spec, usage and signing algorithms: only `RSA_2048/3072/4096`
//! with RSASSA-PSS and `ECC_NIST_P256/P384/P521` usable for `SIGN_VERIFY` map to the Notary
//! table; `ECC_SECG_P256K1`, `SM2`, ML-DSA, HMAC and symmetric keys, and RSA keys without PSS
//! are refused before `Sign` is ever called. The certificate chain (from the user; KMS holds no
//! certificates) must carry exactly the KMS key as its leaf key.
//!
//! Secrets (the web identity token, the secret access key, the session token) are held in
//! zeroizing strings, never formatted, and service error texts are sanitised before they are
//! shown.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::kms::{
    check_returned_signature, ecdsa_der_to_fixed, leaf_key_spec, same_public_key,
    sanitise_service_text, MAX_ANSWER_BYTES, REQUEST_TIMEOUT,
};
use crate::crypto::{CryptoError, KeySpec, Signer};
use crate::oidc::IdToken;

/// The audience AWS documents for GitHub's OIDC provider.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// Shortest session STS grants; signing takes seconds.
const SESSION_SECONDS: u32 = 900;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsKmsError {
    #[error("AWS KMS configuration: {0}")]
    Config(String),
    #[error("AWS STS AssumeRoleWithWebIdentity for {role} failed: {detail}")]
    Sts { role: String, detail: String },
    #[error("AWS KMS {operation} failed: {detail}")]
    Kms {
        operation: &'static str,
        detail: String,
    },
    #[error("the AWS KMS key {key} cannot sign Notary signatures: {reason}")]
    ForbiddenKey { key: String, reason: String },
    #[error("certificate chain: {0}")]
    Chain(String),
    #[error("the leaf certificate's public key is not the public key of the AWS KMS key {key}")]
    KeyCertMismatch { key: String },
}

/// Where the key is and how to get there.
#[derive(Debug, Clone)]
pub struct AwsKmsConfig {
    /// Key id, key ARN, alias name (`alias/…`) or alias ARN.
    pub key_id: String,
    /// The IAM role whose trust policy accepts the GitHub OIDC provider.
    pub role_arn: String,
    /// Region of the key; taken from a key ARN when absent.
    pub region: Option<String>,
    /// Endpoint overrides (`AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL_KMS`); default the regional
    /// endpoints `https://sts.REGION.amazonaws.com` and `https://kms.REGION.amazonaws.com`.
    pub sts_endpoint: Option<String>,
    pub kms_endpoint: Option<String>,
    /// `RoleSessionName`, visible in CloudTrail; default `sign-action-<unix time>`.
    pub session_name: Option<String>,
    /// DER certificates, leaf first. KMS stores no certificates, so this is required.
    pub chain: Vec<Vec<u8>>,
}

/// Temporary credentials from STS.
pub(crate) struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Zeroizing<String>,
    /// Unix seconds.
    pub expiration: Option<i64>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .finish()
    }
}

/// An AWS KMS asymmetric key with its certificate chain.
pub struct AwsKmsSigner {
    client: reqwest::Client,
    kms_endpoint: url::Url,
    region: String,
    /// The key ARN GetPublicKey answered with: aliases can be re-pointed, the ARN cannot.
    key_arn: String,
    credentials: Credentials,
    spec: KeySpec,
    leaf_spki: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for AwsKmsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsSigner")
            .field("key", &self.key_arn)
            .field("key_spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl AwsKmsSigner {
    /// Assume the role with `token`, read the key's public key and check it against the
    /// chain's leaf. Nothing is signed here.
    pub async fn open(config: AwsKmsConfig, token: &IdToken) -> Result<AwsKmsSigner, AwsKmsError> {
        let region = match &config.region {
            Some(r) if !r.is_empty() => r.clone(),
            _ => region_from_arn(&config.key_id).ok_or_else(|| {
                AwsKmsError::Config(
                    "no region: give --aws-region / input `aws-region` (or AWS_REGION), or a key ARN"
                        .into(),
                )
            })?,
        };
        if !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(AwsKmsError::Config(format!(
                "{region:?} is not an AWS region"
            )));
        }
        if config.key_id.trim().is_empty() {
            return Err(AwsKmsError::Config("the KMS key id is empty".into()));
        }
        if !config.role_arn.starts_with("arn:") {
            return Err(AwsKmsError::Config(format!(
                "{:?} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                config.role_arn
            )));
        }
        let endpoint = |given: &Option<String>, service: &str| {
            let url = given
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("https://{service}.{region}.amazonaws.com"));
            crate::net::secure_url(&url).map_err(|e| AwsKmsError::Config(e.to_string()))
        };
        let sts_endpoint = endpoint(&config.sts_endpoint, "sts")?;
        let kms_endpoint = endpoint(&config.kms_endpoint, "kms")?;
        if config.chain.is_empty() {
            return Err(AwsKmsError::Chain(
                "no certificate chain was given; AWS KMS stores no certificates".into(),
            ));
        }
        let client = crate::net::https_client(REQUEST_TIMEOUT)
            .map_err(|e| AwsKmsError::Config(e.to_string()))?;
        let session_name = config.session_name.clone().unwrap_or_else(|| {
            format!(
                "sign-action-{}",
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            )
        });
        let credentials = assume_role_with_web_identity(
            &client,
            &sts_endpoint,
            &config.role_arn,
            &session_name,
            token,
        )
        .await?;
        let mut signer = AwsKmsSigner {
            client,
            kms_endpoint,
            region,
            key_arn: config.key_id.clone(),
            credentials,
            spec: KeySpec::EcP256,
            leaf_spki: Vec::new(),
            chain: Vec::new(),
        };
        let public = signer.get_public_key().await?;
        // The KMS key is judged first, so a forbidden key is named as such.
        let spec = check_key(&public, &config.key_id)?;
        let (leaf_spec, leaf_spki) = leaf_key_spec(&config.chain).map_err(AwsKmsError::Chain)?;
        if leaf_spec != spec {
            return Err(AwsKmsError::KeyCertMismatch { key: config.key_id });
        }
        signer.spec = spec;
        signer.leaf_spki = leaf_spki;
        signer.chain = config.chain;
        let spki = STANDARD
            .decode(&public.public_key)
            .map_err(|_| AwsKmsError::Kms {
                operation: "GetPublicKey",
                detail: "the public key is not base64".into(),
            })?;
        if !same_public_key(&signer.leaf_spki, &spki) {
            return Err(AwsKmsError::KeyCertMismatch { key: config.key_id });
        }
        if let Some(arn) = public.key_id.filter(|k| k.starts_with("arn:")) {
            signer.key_arn = arn;
        }
        Ok(signer)
    }

    async fn get_public_key(&self) -> Result<GetPublicKeyAnswer, AwsKmsError> {
        let body = serde_json::json!({ "KeyId": self.key_arn });
        let answer = self.kms_call("GetPublicKey", &body).await?;
        serde_json::from_slice(&answer).map_err(|_| AwsKmsError::Kms {
            operation: "GetPublicKey",
            detail: "the answer is not the documented JSON".into(),
        })
    }

    /// One KMS JSON 1.1 call, SigV4-signed with the session credentials.
    async fn kms_call(
        &self,
        operation: &'static str,
        body: &serde_json::Value,
    ) -> Result<Vec<u8>, AwsKmsError> {
        let fail = |detail: String| AwsKmsError::Kms { operation, detail };
        if let Some(exp) = self.credentials.expiration {
            if exp <= unix_now() {
                return Err(fail(
                    "the temporary STS credentials expired; run the signing step again".into(),
                ));
            }
        }
        let payload = serde_json::to_vec(body).expect("JSON serialises");
        let target = format!("TrentService.{operation}");
        let amz_date = amz_date(SystemTime::now());
        let host = host_header(&self.kms_endpoint);
        let path = match self.kms_endpoint.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            ("host".to_string(), host),
            ("x-amz-date".to_string(), amz_date.clone()),
            (
                "x-amz-security-token".to_string(),
                self.credentials.session_token.to_string(),
            ),
            ("x-amz-target".to_string(), target.clone()),
        ];
        let authorization = sigv4::authorization(&sigv4::Request {
            method: "POST",
            path: &path,
            query: "",
            headers: &headers,
            payload: &payload,
            access_key_id: &self.credentials.access_key_id,
            secret_access_key: &self.credentials.secret_access_key,
            region: &self.region,
            service: "kms",
            amz_date: &amz_date,
        });
        let resp = self
            .client
            .post(self.kms_endpoint.clone())
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Date", &amz_date)
            .header(
                "X-Amz-Security-Token",
                self.credentials.session_token.as_str(),
            )
            .header("X-Amz-Target", &target)
            .header("Authorization", authorization)
            .body(payload)
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let status = resp.status();
        let error_type = resp
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = crate::net::read_bounded(resp, MAX_ANSWER_BYTES, "AWS KMS")
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !status.is_success() {
            return Err(fail(self.kms_error_detail(
                status.as_u16(),
                error_type,
                &body,
            )));
        }
        Ok(body)
    }

    /// KMS errors are `{"__type": "…Exception", "message": "…"}`.
    fn kms_error_detail(&self, status: u16, header_type: Option<String>, body: &[u8]) -> String {
        #[derive(Deserialize)]
        struct KmsErrorBody {
            #[serde(rename = "__type")]
            kind: Option<String>,
            #[serde(alias = "Message")]
            message: Option<String>,
        }
        let parsed: Option<KmsErrorBody> = serde_json::from_slice(body).ok();
        let kind = parsed
            .as_ref()
            .and_then(|p| p.kind.clone())
            .or(header_type)
            .map(|k| {
                let k = k.split(':').next().unwrap_or(&k).to_string();
                k.rsplit('#').next().unwrap_or(&k).to_string()
            })
            .unwrap_or_else(|| "error".to_string());
        let message = parsed.and_then(|p| p.message).unwrap_or_default();
        let secrets = [
            self.credentials.secret_access_key.as_str(),
            self.credentials.session_token.as_str(),
        ];
        let hint = match kind.as_str() {
            "AccessDeniedException" => " (the role needs kms:GetPublicKey and kms:Sign on the key)",
            "NotFoundException" => " (check the key id and the region)",
            "InvalidSignatureException" | "IncompleteSignatureException" => {
                " (the request signature was rejected: check the region and the clock)"
            }
            "ExpiredTokenException" => " (the temporary credentials expired)",
            _ => "",
        };
        format!(
            "HTTP {status} {}: {}{hint}",
            sanitise_service_text(&kind, &secrets),
            sanitise_service_text(&message, &secrets)
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetPublicKeyAnswer {
    key_id: Option<String>,
    public_key: String,
    key_spec: Option<String>,
    /// The pre-2021 name of `KeySpec`.
    customer_master_key_spec: Option<String>,
    key_usage: Option<String>,
    #[serde(default)]
    signing_algorithms: Vec<String>,
}

/// The Notary key type for a KMS key spec, or why it is refused.
fn notary_spec(key_spec: &str) -> Result<KeySpec, String> {
    match key_spec {
        "RSA_2048" => Ok(KeySpec::Rsa2048),
        "RSA_3072" => Ok(KeySpec::Rsa3072),
        "RSA_4096" => Ok(KeySpec::Rsa4096),
        "ECC_NIST_P256" => Ok(KeySpec::EcP256),
        "ECC_NIST_P384" => Ok(KeySpec::EcP384),
        "ECC_NIST_P521" => Ok(KeySpec::EcP521),
        "ECC_SECG_P256K1" => Err(
            "ECC_SECG_P256K1 (secp256k1) is not a Notary curve; use ECC_NIST_P256, P384 or P521"
                .into(),
        ),
        "SM2" => Err("SM2 keys are not allowed by the Notary specification".into()),
        s if s.starts_with("HMAC_") || s == "SYMMETRIC_DEFAULT" => Err(format!(
            "{s} is a symmetric key; Notary needs an asymmetric RSA or NIST-curve EC key"
        )),
        other => Err(format!(
            "key spec {other} is not one the Notary specification allows (RSA 2048/3072/4096, ECC NIST P-256/384/521)"
        )),
    }
}

/// The KMS name of the signing algorithm Notary requires for `spec`.
fn kms_algorithm(spec: KeySpec) -> &'static str {
    match spec {
        KeySpec::Rsa2048 => "RSASSA_PSS_SHA_256",
        KeySpec::Rsa3072 => "RSASSA_PSS_SHA_384",
        KeySpec::Rsa4096 => "RSASSA_PSS_SHA_512",
        KeySpec::EcP256 => "ECDSA_SHA_256",
        KeySpec::EcP384 => "ECDSA_SHA_384",
        KeySpec::EcP521 => "ECDSA_SHA_512",
    }
}

/// Everything that makes a key unusable, decided from GetPublicKey alone.
fn check_key(public: &GetPublicKeyAnswer, key: &str) -> Result<KeySpec, AwsKmsError> {
    let forbidden = |reason: String| AwsKmsError::ForbiddenKey {
        key: key.to_string(),
        reason,
    };
    let key_spec = public
        .key_spec
        .as_deref()
        .or(public.customer_master_key_spec.as_deref())
        .ok_or_else(|| forbidden("GetPublicKey did not say the key spec".into()))?;
    let spec = notary_spec(key_spec).map_err(forbidden)?;
    if public.key_usage.as_deref() != Some("SIGN_VERIFY") {
        return Err(forbidden(format!(
            "its key usage is {}, not SIGN_VERIFY",
            public.key_usage.as_deref().unwrap_or("unknown")
        )));
    }
    let needed = kms_algorithm(spec);
    if !public.signing_algorithms.iter().any(|a| a == needed) {
        return Err(forbidden(format!(
            "it does not offer {needed}, the algorithm Notary requires for {key_spec} (it offers {})",
            public.signing_algorithms.join(", ")
        )));
    }
    Ok(spec)
}

#[async_trait]
impl Signer for AwsKmsSigner {
    fn key_spec(&self) -> KeySpec {
        self.spec
    }

    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let digest = self.spec.signature_algorithm().hash().digest(message);
        let body = serde_json::json!({
            "KeyId": self.key_arn,
            "Message": STANDARD.encode(&digest),
            "MessageType": "DIGEST",
            "SigningAlgorithm": kms_algorithm(self.spec),
        });
        let answer = self
            .kms_call("Sign", &body)
            .await
            .map_err(|e| CryptoError::SigningFailed(e.to_string()))?;
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct SignAnswer {
            signature: String,
        }
        let answer: SignAnswer = serde_json::from_slice(&answer).map_err(|_| {
            CryptoError::SigningFailed("AWS KMS Sign: the answer has no Signature".into())
        })?;
        let raw = STANDARD.decode(answer.signature).map_err(|_| {
            CryptoError::SigningFailed("AWS KMS Sign: the signature is not base64".into())
        })?;
        // KMS returns ECDSA signatures DER-encoded; Notary wants fixed-width R‖S.
        let signature = if self.spec.signature_algorithm().is_ecdsa() {
            ecdsa_der_to_fixed(&raw, self.spec)
                .map_err(|e| CryptoError::SigningFailed(format!("AWS KMS Sign: {e}")))?
        } else {
            raw
        };
        if signature.len() != self.spec.raw_signature_len() {
            return Err(CryptoError::SigningFailed(format!(
                "AWS KMS Sign returned a {}-byte signature, expected {} for {}",
                signature.len(),
                self.spec.raw_signature_len(),
                self.spec.name()
            )));
        }
        check_returned_signature(self.spec, &self.leaf_spki, message, &signature, "AWS KMS")?;
        Ok(signature)
    }
}

/// `arn:aws:kms:REGION:ACCOUNT:key/ID` or `…:alias/NAME`.
fn region_from_arn(key: &str) -> Option<String> {
    let mut parts = key.split(':');
    if parts.next()? != "arn" {
        return None;
    }
    let _partition = parts.next()?;
    if parts.next()? != "kms" {
        return None;
    }
    parts.next().filter(|r| !r.is_empty()).map(String::from)
}

/// The Host header as the HTTP client sends it: host, and the port when not the default.
fn host_header(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `YYYYMMDDTHHMMSSZ`.
fn amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// STS `AssumeRoleWithWebIdentity` (query API, version 2011-06-15). The call is unsigned: the
/// web identity token is the credential.
async fn assume_role_with_web_identity(
    client: &reqwest::Client,
    endpoint: &url::Url,
    role_arn: &str,
    session_name: &str,
    token: &IdToken,
) -> Result<Credentials, AwsKmsError> {
    let fail = |detail: String| AwsKmsError::Sts {
        role: role_arn.to_string(),
        detail,
    };
    let form = Zeroizing::new(
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRoleWithWebIdentity")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", role_arn)
            .append_pair("RoleSessionName", session_name)
            .append_pair("DurationSeconds", &SESSION_SECONDS.to_string())
            .append_pair("WebIdentityToken", token.expose_secret())
            .finish(),
    );
    let resp = client
        .post(endpoint.clone())
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(form.as_bytes().to_vec())
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    let status = resp.status();
    let body = Zeroizing::new(
        crate::net::read_bounded(resp, MAX_ANSWER_BYTES, "AWS STS")
            .await
            .map_err(|e| fail(e.to_string()))?,
    );
    let text = String::from_utf8_lossy(&body);
    let secrets = [token.expose_secret()];
    if !status.is_success() {
        let code = xml_text(&text, "Code").unwrap_or_else(|| "error".into());
        let message = xml_text(&text, "Message").unwrap_or_default();
        let hint = match code.as_str() {
            "InvalidIdentityToken" => {
                " (check that the role trusts token.actions.githubusercontent.com and the token audience is sts.amazonaws.com)"
            }
            "AccessDenied" => {
                " (the role's trust policy does not accept this repository/ref: check its `sub` condition)"
            }
            "ExpiredTokenException" => " (the OIDC token expired; request a fresh one)",
            _ => "",
        };
        return Err(fail(format!(
            "HTTP {} {}: {}{hint}",
            status.as_u16(),
            sanitise_service_text(&code, &secrets),
            sanitise_service_text(&message, &secrets)
        )));
    }
    let field = |name: &str| {
        xml_text(&text, name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail(format!("the answer has no Credentials/{name}")))
    };
    let credentials = Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Zeroizing::new(field("SecretAccessKey")?),
        session_token: Zeroizing::new(field("SessionToken")?),
        expiration: xml_text(&text, "Expiration").and_then(|e| {
            time::OffsetDateTime::parse(&e, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp())
        }),
    };
    Ok(credentials)
}

/// The text of the first `<name>…</name>` element (STS answers are flat, namespaced only on
/// the root, and carry no attributes on these elements), with XML's predefined entities
/// decoded. A general XML parser would add a dependency to read five fields.
fn xml_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let raw = xml[start..end].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// AWS Signature Version 4, as documented in "Create a signed AWS API request".
pub(crate) mod sigv4 {
    use aws_lc_rs::{digest, hmac};

    pub struct Request<'a> {
        pub method: &'a str,
        /// URI-encoded absolute path.
        pub path: &'a str,
        /// Canonical query string (already sorted and encoded); empty for KMS.
        pub query: &'a str,
        /// Lowercase names; every header listed is signed.
        pub headers: &'a [(String, String)],
        pub payload: &'a [u8],
        pub access_key_id: &'a str,
        pub secret_access_key: &'a str,
        pub region: &'a str,
        pub service: &'a str,
        /// `YYYYMMDDTHHMMSSZ`
        pub amz_date: &'a str,
    }

    fn hex_sha256(data: &[u8]) -> String {
        hex::encode(digest::digest(&digest::SHA256, data))
    }

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
            .as_ref()
            .to_vec()
    }

    pub fn canonical_request(r: &Request<'_>) -> (String, String) {
        let mut headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.split_whitespace().collect::<Vec<_>>().join(" "),
                )
            })
            .collect();
        headers.sort();
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed_headers = headers
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let request = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            r.method,
            r.path,
            r.query,
            canonical_headers,
            signed_headers,
            hex_sha256(r.payload)
        );
        (request, signed_headers)
    }

    /// The `Authorization` header value.
    pub fn authorization(r: &Request<'_>) -> String {
        let (canonical, signed_headers) = canonical_request(r);
        let date = &r.amz_date[..8];
        let scope = format!("{date}/{}/{}/aws4_request", r.region, r.service);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            r.amz_date,
            hex_sha256(canonical.as_bytes())
        );
        let k_date = hmac(
            format!("AWS4{}", r.secret_access_key).as_bytes(),
            date.as_bytes(),
        );
        let k_region = hmac(&k_date, r.region.as_bytes());
        let k_service = hmac(&k_region, r.service.as_bytes());
        let k_signing = hmac(&k_service, b"aws4_request");
        let signature = hex::encode(hmac(&k_signing, string_to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            r.access_key_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of AWS's SigV4 documentation (IAM ListUsers, 2015-08-30).
    #[test]
    fn sigv4_matches_the_documented_example() {
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("host".to_string(), "iam.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let request = sigv4::Request {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            payload: b"",
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            region: "us-east-1",
            service: "iam",
            amz_date: "20150830T123600Z",
        };
        let (canonical, _) = sigv4::canonical_request(&request);
        assert_eq!(
            hex::encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                canonical.as_bytes()
            )),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        assert_eq!(
            sigv4::authorization(&request),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn key_specs_map_to_the_notary_table() {
        assert_eq!(notary_spec("RSA_3072").unwrap(), KeySpec::Rsa3072);
        assert_eq!(notary_spec("ECC_NIST_P521").unwrap(), KeySpec::EcP521);
        for bad in [
            "ECC_SECG_P256K1",
            "SM2",
            "HMAC_256",
            "SYMMETRIC_DEFAULT",
            "ML_DSA_65",
        ] {
            assert!(notary_spec(bad).is_err(), "{bad}");
        }
        assert_eq!(kms_algorithm(KeySpec::Rsa4096), "RSASSA_PSS_SHA_512");
    }

    #[test]
    fn rsa_key_without_pss_is_refused() {
        let answer = GetPublicKeyAnswer {
            key_id: None,
            public_key: String::new(),
            key_spec: Some("RSA_2048".into()),
            customer_master_key_spec: None,
            key_usage: Some("SIGN_VERIFY".into()),
            signing_algorithms: vec!["RSASSA_PKCS1_V1_5_SHA_256".into()],
        };
        let err = check_key(&answer, "k").unwrap_err();
        assert!(err.to_string().contains("RSASSA_PSS_SHA_256"), "{err}");
        let encrypt = GetPublicKeyAnswer {
            key_usage: Some("ENCRYPT_DECRYPT".into()),
            signing_algorithms: vec![],
            ..answer
        };
        assert!(check_key(&encrypt, "k")
            .unwrap_err()
            .to_string()
            .contains("ENCRYPT_DECRYPT"));
    }

    #[test]
    fn region_and_dates() {
        assert_eq!(
            region_from_arn("arn:aws:kms:eu-west-1:111122223333:key/abc").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_from_arn("alias/signing"), None);
        assert_eq!(
            amz_date(UNIX_EPOCH + std::time::Duration::from_secs(1440938160)),
            "20150830T123600Z"
        );
        let xml = "<R><Credentials><SessionToken>a&amp;b</SessionToken></Credentials></R>";
        assert_eq!(xml_text(xml, "SessionToken").as_deref(), Some("a&b"));
        assert_eq!(xml_text(xml, "Missing"), None);
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Zeroizing::new("very-secret-key-value".into()),
            session_token: Zeroizing::new("session-token-value".into()),
            expiration: None,
        };
        let s = format!("{c:?}");
        assert!(!s.contains("very-secret") && !s.contains("session-token-value"));
    }
}
