//! A stand-in for AWS STS and AWS KMS, which tests cannot reach. It follows the documented APIs:
//! STS's query API `AssumeRoleWithWebIdentity` (version 2011-06-15, unsigned form POST, XML
//! answer, `<ErrorResponse>` on failure) and KMS's JSON 1.1 API (`X-Amz-Target:
//! TrentService.GetPublicKey` / `TrentService.Sign`, `{"__type", "message"}` errors), with every
//! KMS request's Signature Version 4 recomputed from the received request and the credentials STS
//! issued (credential scope, signed headers, payload hash, session token, clock skew). The web
//! identity token is checked as STS checks it (signature against the issuer's JWKS, issuer,
//! audience `sts.amazonaws.com`, expiry, the role trust policy's `sub` condition). Keys are real.
//!
//! The SigV4 check here is written separately from the client's (`src/signers/aws_kms.rs`),
//! from the same documentation, so a shared misreading would have to be made twice.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::cloud_keys::{FakeKey, KeyKind};
use crate::support::fake_http::{FakeRequest, FakeResponse, FakeServer};
use crate::support::oidc::{verify_jwt, GITHUB_ISSUER};

pub const AUDIENCE: &str = "sts.amazonaws.com";
pub const ACCOUNT: &str = "111122223333";

struct KmsKey {
    id: String,
    arn: String,
    aliases: Vec<String>,
    spec: &'static str,
    key: FakeKey,
}

#[derive(Clone)]
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires: i64,
}

#[derive(Default)]
struct State {
    keys: Vec<KmsKey>,
    issued: Vec<IssuedCredentials>,
    web_identity_tokens: Vec<String>,
    sign_requests: usize,
    operations: Vec<String>,
}

pub struct FakeAws {
    pub sts: FakeServer,
    pub kms: FakeServer,
    pub region: String,
    pub role_arn: String,
    state: Arc<Mutex<State>>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn random_string(n: usize, alphabet: &[u8]) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter()
        .map(|x| alphabet[*x as usize % alphabet.len()] as char)
        .collect()
}

fn sts_error(status: u16, kind: &str, code: &str, message: &str) -> FakeResponse {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    FakeResponse::new(status)
        .header("Content-Type", "text/xml")
        .body(format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{escaped}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            random_string(32, b"0123456789abcdef")
        ))
}

fn kms_error(code: &str, message: &str) -> FakeResponse {
    FakeResponse::new(400)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("x-amzn-ErrorType", &format!("{code}:"))
        .body(serde_json::to_vec(&json!({"__type": code, "message": message})).unwrap())
}

impl FakeAws {
    /// `allowed_sub` is the role trust policy's `token.actions.githubusercontent.com:sub`
    /// condition (`StringLike`, `*` wildcards).
    pub async fn start(jwks: Value, allowed_sub: &str) -> FakeAws {
        let region = "eu-central-1".to_string();
        let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/notary-signer");
        let state = Arc::new(Mutex::new(State::default()));
        let (st, role, sub) = (state.clone(), role_arn.clone(), allowed_sub.to_string());
        let sts = FakeServer::start(move |req| sts_handler(req, &st, &role, &sub, &jwks)).await;
        let (st, reg) = (state.clone(), region.clone());
        let kms = FakeServer::start(move |req| kms_handler(req, &st, &reg)).await;
        FakeAws {
            sts,
            kms,
            region,
            role_arn,
            state,
        }
    }

    pub fn sts_url(&self) -> String {
        format!("http://{}", self.sts.host)
    }

    pub fn kms_url(&self) -> String {
        format!("http://{}", self.kms.host)
    }

    /// Add a key with KMS key spec `spec` (e.g. `ECC_NIST_P256`) and an alias; returns its ARN.
    pub fn add_key(&self, spec: &'static str, alias: &str, key: FakeKey) -> String {
        let id = format!(
            "{}-{}-4{}-8{}-{}",
            random_string(8, b"0123456789abcdef"),
            random_string(4, b"0123456789abcdef"),
            random_string(3, b"0123456789abcdef"),
            random_string(3, b"0123456789abcdef"),
            random_string(12, b"0123456789abcdef")
        );
        let arn = format!("arn:aws:kms:{}:{ACCOUNT}:key/{id}", self.region);
        self.state.lock().unwrap().keys.push(KmsKey {
            id,
            arn: arn.clone(),
            aliases: vec![format!("alias/{alias}")],
            spec,
            key,
        });
        arn
    }

    pub fn sign_requests(&self) -> usize {
        self.state.lock().unwrap().sign_requests
    }

    /// KMS operations received (after authentication), in order.
    pub fn operations(&self) -> Vec<String> {
        self.state.lock().unwrap().operations.clone()
    }

    /// Every web identity token (GitHub token) received (for leak checks).
    pub fn web_identity_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().web_identity_tokens.clone()
    }

    pub fn issued(&self) -> Vec<IssuedCredentials> {
        self.state.lock().unwrap().issued.clone()
    }
}

/// IAM `StringLike`: `*` matches any run of characters, `?` one.
fn string_like(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

fn sts_handler(
    req: &FakeRequest,
    state: &Mutex<State>,
    role_arn: &str,
    allowed_sub: &str,
    jwks: &Value,
) -> FakeResponse {
    let params: HashMap<String, String> = if req.method == "POST" {
        url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect()
    } else {
        let q = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    };
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    if !get("WebIdentityToken").is_empty() {
        state
            .lock()
            .unwrap()
            .web_identity_tokens
            .push(get("WebIdentityToken").to_string());
    }
    if get("Action") != "AssumeRoleWithWebIdentity" {
        return sts_error(
            400,
            "Sender",
            "InvalidAction",
            &format!(
                "Could not find operation {} for version {}",
                get("Action"),
                get("Version")
            ),
        );
    }
    if get("Version") != "2011-06-15" {
        return sts_error(
            400,
            "Sender",
            "InvalidAction",
            "Could not find operation AssumeRoleWithWebIdentity for this version",
        );
    }
    let session = get("RoleSessionName");
    if session.len() < 2
        || session.len() > 64
        || !session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return sts_error(
            400,
            "Sender",
            "ValidationError",
            "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        );
    }
    let duration: i64 = match params.get("DurationSeconds") {
        None => 3600,
        Some(d) => match d.parse() {
            Ok(n) if (900..=43200).contains(&n) => n,
            _ => {
                return sts_error(
                    400,
                    "Sender",
                    "ValidationError",
                    "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
                )
            }
        },
    };
    let claims = match verify_jwt(get("WebIdentityToken"), jwks, GITHUB_ISSUER, AUDIENCE) {
        Ok(c) => c,
        Err(e) if e.contains("audience") => {
            return sts_error(400, "Sender", "InvalidIdentityToken", "Incorrect token audience")
        }
        Err(e) if e.contains("expired") => {
            return sts_error(
                400,
                "Sender",
                "ExpiredTokenException",
                "Token expired: current date/time 1764331500 must be before the expiration date/time 1764331200",
            )
        }
        Err(e) if e.contains("issuer") => {
            return sts_error(
                400,
                "Sender",
                "InvalidIdentityToken",
                "No OpenIDConnect provider found in your account for https://wrong.example",
            )
        }
        Err(_) => {
            return sts_error(
                400,
                "Sender",
                "InvalidIdentityToken",
                "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.",
            )
        }
    };
    if get("RoleArn") != role_arn || !string_like(allowed_sub, claims["sub"].as_str().unwrap_or(""))
    {
        return sts_error(
            403,
            "Sender",
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    }
    let upper = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let b64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let creds = IssuedCredentials {
        access_key_id: format!("ASIA{}", random_string(16, upper)),
        secret_access_key: random_string(40, b64),
        session_token: format!("IQoJb3JpZ2luX2VjE{}", random_string(300, b64)),
        expires: now() + duration,
    };
    state.lock().unwrap().issued.push(creds.clone());
    let expiration = time::OffsetDateTime::from_unix_timestamp(creds.expires)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let role_name = role_arn.rsplit('/').next().unwrap_or("role");
    FakeResponse::new(200)
        .header("Content-Type", "text/xml")
        .body(format!(
            r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Audience>{AUDIENCE}</Audience>
    <AssumedRoleUser>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:{session}</AssumedRoleId>
      <Arn>arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{session}</Arn>
    </AssumedRoleUser>
    <Provider>arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com</Provider>
    <Credentials>
      <AccessKeyId>{}</AccessKeyId>
      <SecretAccessKey>{}</SecretAccessKey>
      <SessionToken>{}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
"#,
            creds.access_key_id,
            creds.secret_access_key,
            creds.session_token,
            claims["sub"].as_str().unwrap_or("")
        ))
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// Check the request's SigV4 `Authorization` against the issued credentials; returns the
/// KMS error to answer with when it does not hold.
fn check_sigv4(req: &FakeRequest, state: &Mutex<State>, region: &str) -> Result<(), FakeResponse> {
    let auth = req.header("authorization").ok_or_else(|| {
        kms_error(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    })?;
    let incomplete = || {
        kms_error(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
        )
    };
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(incomplete)?;
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or_else(incomplete)?;
        fields.insert(k, v);
    }
    let (Some(credential), Some(signed), Some(signature)) = (
        fields.get("Credential"),
        fields.get("SignedHeaders"),
        fields.get("Signature"),
    ) else {
        return Err(incomplete());
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, scope_region, service, terminator] = scope.as_slice() else {
        return Err(incomplete());
    };
    let issued = state
        .lock()
        .unwrap()
        .issued
        .iter()
        .find(|c| c.access_key_id == *akid)
        .cloned();
    let invalid_token = || {
        kms_error(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    };
    let creds = issued.ok_or_else(invalid_token)?;
    if req.header("x-amz-security-token") != Some(creds.session_token.as_str()) {
        return Err(invalid_token());
    }
    if creds.expires <= now() {
        return Err(kms_error(
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ));
    }
    let amz_date = req.header("x-amz-date").unwrap_or("");
    if amz_date.len() != 16 || !amz_date.starts_with(date) {
        return Err(kms_error(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        ));
    }
    if *scope_region != region || *service != "kms" || *terminator != "aws4_request" {
        return Err(kms_error(
            "InvalidSignatureException",
            &format!("Credential should be scoped to a valid region, not '{scope_region}'. Credential should be scoped to correct service: 'kms'."),
        ));
    }
    let request_time = time::PrimitiveDateTime::parse(
        amz_date,
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .map(|t| t.assume_utc().unix_timestamp())
    .unwrap_or(0);
    if (request_time - now()).abs() > 300 {
        return Err(kms_error(
            "InvalidSignatureException",
            "Signature expired: the request time is more than 5 minutes away from the server time.",
        ));
    }
    let names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return Err(kms_error(
            "InvalidSignatureException",
            "'Host' and 'X-Amz-Date' must be signed headers.",
        ));
    }
    let headers: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.to_string(), req.header(n).unwrap_or("").to_string()))
        .collect();
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let expected = expected_signature(
        &req.method,
        path,
        query,
        &headers,
        &req.body,
        &creds.secret_access_key,
        region,
        amz_date,
    );
    if expected != *signature {
        return Err(kms_error(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(())
}

/// SigV4 signature of a request (headers: the signed ones, lowercase names, in the order the
/// SignedHeaders list gives).
#[allow(clippy::too_many_arguments)]
fn expected_signature(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
    region: &str,
    amz_date: &str,
) -> String {
    let mut canonical_headers = String::new();
    for (name, value) in headers {
        canonical_headers.push_str(&format!(
            "{name}:{}\n",
            value.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    let signed = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut query_pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    query_pairs.sort();
    let canonical_query = query_pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let canonical_request = format!(
        "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{signed}\n{}",
        if path.is_empty() { "/" } else { path },
        hex_sha256(body)
    );
    let date = &amz_date[..8];
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/kms/aws4_request\n{}",
        hex_sha256(canonical_request.as_bytes())
    );
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, "kms", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()))
}

impl FakeAws {
    /// A correctly signed KMS call with the last issued credentials, for probing the fake's
    /// own checks (e.g. a Sign with an algorithm the key does not have).
    pub async fn raw_kms_call(&self, operation: &str, body: &Value) -> (u16, Value) {
        let creds = self.issued().pop().expect("credentials were issued");
        let amz_date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap();
        let body = body.to_string();
        let target = format!("TrentService.{operation}");
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            ("host".to_string(), self.kms.host.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
            (
                "x-amz-security-token".to_string(),
                creds.session_token.clone(),
            ),
            ("x-amz-target".to_string(), target.clone()),
        ];
        let signature = expected_signature(
            "POST",
            "/",
            "",
            &headers,
            body.as_bytes(),
            &creds.secret_access_key,
            &self.region,
            &amz_date,
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature={signature}",
            creds.access_key_id,
            &amz_date[..8],
            self.region
        );
        let resp = reqwest::Client::new()
            .post(self.kms_url())
            .header("Content-Type", "application/x-amz-json-1.1")
            .header("X-Amz-Target", target)
            .header("X-Amz-Date", amz_date)
            .header("X-Amz-Security-Token", creds.session_token)
            .header("Authorization", auth)
            .body(body)
            .send()
            .await
            .expect("KMS fake answers");
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or(Value::Null),
        )
    }
}

fn signing_algorithms(spec: &str) -> Vec<&'static str> {
    match spec {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => vec![
            "RSASSA_PKCS1_V1_5_SHA_256",
            "RSASSA_PKCS1_V1_5_SHA_384",
            "RSASSA_PKCS1_V1_5_SHA_512",
            "RSASSA_PSS_SHA_256",
            "RSASSA_PSS_SHA_384",
            "RSASSA_PSS_SHA_512",
        ],
        "ECC_NIST_P256" | "ECC_SECG_P256K1" => vec!["ECDSA_SHA_256"],
        "ECC_NIST_P384" => vec!["ECDSA_SHA_384"],
        "ECC_NIST_P521" => vec!["ECDSA_SHA_512"],
        _ => vec![],
    }
}

fn kms_handler(req: &FakeRequest, state: &Mutex<State>, region: &str) -> FakeResponse {
    if req.method != "POST" {
        return kms_error("UnknownOperationException", "");
    }
    if req.header("content-type") != Some("application/x-amz-json-1.1") {
        return kms_error(
            "SerializationException",
            "Content-Type must be application/x-amz-json-1.1",
        );
    }
    if let Err(resp) = check_sigv4(req, state, region) {
        return resp;
    }
    let operation = req
        .header("x-amz-target")
        .and_then(|t| t.strip_prefix("TrentService."))
        .unwrap_or("")
        .to_string();
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(_) => {
            return kms_error(
                "SerializationException",
                "Start of structure or map found where not expected.",
            )
        }
    };
    let mut st = state.lock().unwrap();
    st.operations.push(operation.clone());
    let key_id = body["KeyId"].as_str().unwrap_or("");
    let found = st.keys.iter().position(|k| {
        k.id == key_id
            || k.arn == key_id
            || k.aliases
                .iter()
                .any(|a| a == key_id || format!("arn:aws:kms:{region}:{ACCOUNT}:{a}") == key_id)
    });
    let Some(i) = found else {
        return kms_error(
            "NotFoundException",
            &format!("Key '{key_id}' does not exist"),
        );
    };
    let k = &st.keys[i];
    match operation.as_str() {
        "GetPublicKey" => FakeResponse::new(200)
            .header("Content-Type", "application/x-amz-json-1.1")
            .body(
                serde_json::to_vec(&json!({
                    "KeyId": k.arn,
                    "PublicKey": STANDARD.encode(k.key.spki_der()),
                    "CustomerMasterKeySpec": k.spec,
                    "KeySpec": k.spec,
                    "KeyUsage": "SIGN_VERIFY",
                    "SigningAlgorithms": signing_algorithms(k.spec),
                }))
                .unwrap(),
            ),
        "Sign" => {
            let algorithm = body["SigningAlgorithm"].as_str().unwrap_or("").to_string();
            if !signing_algorithms(k.spec).contains(&algorithm.as_str()) {
                return kms_error(
                    "InvalidKeyUsageException",
                    &format!(
                        "{algorithm} is not a valid signing algorithm for the key {}",
                        k.arn
                    ),
                );
            }
            let Some(message) = body["Message"]
                .as_str()
                .and_then(|m| STANDARD.decode(m).ok())
            else {
                return kms_error("ValidationException", "Message must be base64.");
            };
            let hash_len = match &algorithm[algorithm.len() - 3..] {
                "256" => 32,
                "384" => 48,
                _ => 64,
            };
            let digest = match body["MessageType"].as_str().unwrap_or("RAW") {
                "DIGEST" if message.len() == hash_len => message,
                "DIGEST" => {
                    return kms_error(
                        "ValidationException",
                        &format!("Digest is invalid length for algorithm {algorithm}."),
                    )
                }
                _ => {
                    let alg = match hash_len {
                        32 => &digest::SHA256,
                        48 => &digest::SHA384,
                        _ => &digest::SHA512,
                    };
                    digest::digest(alg, &message).as_ref().to_vec()
                }
            };
            if algorithm.starts_with("RSASSA_PKCS1") {
                return kms_error(
                    "UnsupportedOperationException",
                    "the fake signs only PSS and ECDSA",
                );
            }
            let arn = k.arn.clone();
            let signature = match k.key.sign_digest(&digest, true) {
                Ok(s) => s,
                Err(e) => return kms_error("KMSInternalException", &e),
            };
            st.sign_requests += 1;
            FakeResponse::new(200)
                .header("Content-Type", "application/x-amz-json-1.1")
                .body(
                    serde_json::to_vec(&json!({
                        "KeyId": arn,
                        "Signature": STANDARD.encode(signature),
                        "SigningAlgorithm": algorithm,
                    }))
                    .unwrap(),
                )
        }
        _ => kms_error("UnknownOperationException", ""),
    }
}

/// KMS key spec names for the fake key kinds.
pub fn spec_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Rsa2048 => "RSA_2048",
        KeyKind::Rsa3072 => "RSA_3072",
        KeyKind::Rsa4096 => "RSA_4096",
        KeyKind::P256 => "ECC_NIST_P256",
        KeyKind::P384 => "ECC_NIST_P384",
        KeyKind::P521 => "ECC_NIST_P521",
        KeyKind::P256K => "ECC_SECG_P256K1",
    }
}
