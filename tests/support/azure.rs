//! A stand-in for Microsoft Entra ID's token endpoint and an Azure Key Vault, which tests cannot
//! reach. It follows the documented REST APIs: the client-credentials grant with a federated
//! client assertion (`POST /{tenant}/oauth2/v2.0/token`, errors `{"error", "error_description":
//! "AADSTS…"}`), and Key Vault 7.4 (`GET /keys/{name}/{version}`, `POST …/sign`,
//! `GET /certificates/{name}/{version}`, `GET /secrets/{name}/{version}`, errors
//! `{"error": {"code", "message"}}`). The assertion is checked like Entra ID checks a federated
//! credential (signature against the issuer's JWKS, issuer, audience
//! `api://AzureADTokenExchange`, subject, expiry); Key Vault checks the bearer token it issued,
//! the api-version and the algorithm against the key type, and signs with a real key.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use crate::cloud_keys::FakeKey;
use crate::support::fake_http::{FakeRequest, FakeResponse, FakeServer};
use crate::support::oidc::{verify_jwt, GITHUB_ISSUER};

pub const AUDIENCE: &str = "api://AzureADTokenExchange";

struct VaultKey {
    name: String,
    version: String,
    key: FakeKey,
    enabled: bool,
}

struct VaultCertificate {
    leaf_der: Vec<u8>,
    /// The secret's PEM (certificates, and the private key when "exportable").
    secret_pem: Option<String>,
}

#[derive(Default)]
struct State {
    keys: Vec<VaultKey>,
    certificates: HashMap<String, VaultCertificate>,
    access_tokens: Vec<String>,
    assertions: Vec<String>,
    sign_requests: usize,
    token_requests: usize,
}

pub struct FakeAzure {
    pub login: FakeServer,
    pub vault: FakeServer,
    pub tenant_id: String,
    pub client_id: String,
    state: Arc<Mutex<State>>,
}

fn json_response(status: u16, v: Value) -> FakeResponse {
    FakeResponse::new(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(serde_json::to_vec(&v).unwrap())
}

/// Entra ID's error shape; the description carries trace lines after the first, as the real
/// service's does.
fn aad_error(status: u16, error: &str, code: u32, message: &str) -> FakeResponse {
    json_response(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message}\r\nTrace ID: 0b5e7d1c-0000-4000-8000-000000000001\r\nCorrelation ID: 7f1c2d3e-0000-4000-8000-000000000002\r\nTimestamp: 2026-11-28 12:00:00Z"
            ),
            "error_codes": [code],
            "timestamp": "2026-11-28 12:00:00Z",
            "trace_id": "0b5e7d1c-0000-4000-8000-000000000001",
            "correlation_id": "7f1c2d3e-0000-4000-8000-000000000002",
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn vault_error(status: u16, code: &str, message: &str) -> FakeResponse {
    json_response(status, json!({"error": {"code": code, "message": message}}))
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn random_b64url(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}

impl FakeAzure {
    /// `subject` is the federated credential's subject (e.g.
    /// `repo:octo-org/octo-repo:ref:refs/heads/main`); `jwks` the GitHub issuer's key set.
    pub async fn start(jwks: Value, subject: &str) -> FakeAzure {
        let tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47".to_string();
        let client_id = "3c6d8f8e-4a4b-4c4d-9e9f-0a1b2c3d4e5f".to_string();
        let state = Arc::new(Mutex::new(State::default()));

        let (st, tenant, client, subject) = (
            state.clone(),
            tenant_id.clone(),
            client_id.clone(),
            subject.to_string(),
        );
        let login = FakeServer::start(move |req| {
            login_handler(req, &st, &tenant, &client, &subject, &jwks)
        })
        .await;

        let st = state.clone();
        let host = Arc::new(Mutex::new(String::new()));
        let host_seen = host.clone();
        let vault = FakeServer::start(move |req| {
            let base = format!("http://{}", host_seen.lock().unwrap());
            vault_handler(req, &st, &base)
        })
        .await;
        *host.lock().unwrap() = vault.host.clone();
        FakeAzure {
            login,
            vault,
            tenant_id,
            client_id,
            state,
        }
    }

    /// `AZURE_AUTHORITY_HOST` for this fake.
    pub fn authority_host(&self) -> String {
        format!("http://{}", self.login.host)
    }

    pub fn vault_url(&self) -> String {
        format!("http://{}", self.vault.host)
    }

    /// Add a key; returns its identifier without a version (`{vault}/keys/{name}`).
    pub fn add_key(&self, name: &str, key: FakeKey) -> String {
        let version = crate::support::random_hex(16);
        self.state.lock().unwrap().keys.push(VaultKey {
            name: name.to_string(),
            version,
            key,
            enabled: true,
        });
        format!("{}/keys/{name}", self.vault_url())
    }

    pub fn key_version(&self, name: &str) -> String {
        let st = self.state.lock().unwrap();
        st.keys
            .iter()
            .rev()
            .find(|k| k.name == name)
            .map(|k| k.version.clone())
            .expect("key")
    }

    /// Store a Key Vault certificate for key `name` (same name and version, as Key Vault does).
    pub fn set_certificate(&self, name: &str, leaf_der: Vec<u8>, secret_pem: Option<String>) {
        self.state.lock().unwrap().certificates.insert(
            name.to_string(),
            VaultCertificate {
                leaf_der,
                secret_pem,
            },
        );
    }

    pub fn sign_requests(&self) -> usize {
        self.state.lock().unwrap().sign_requests
    }

    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests
    }

    /// Every client assertion (GitHub token) received (for leak checks).
    pub fn assertions(&self) -> Vec<String> {
        self.state.lock().unwrap().assertions.clone()
    }

    /// Every access token issued (for leak checks).
    pub fn access_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().access_tokens.clone()
    }
}

fn login_handler(
    req: &FakeRequest,
    state: &Mutex<State>,
    tenant: &str,
    client_id: &str,
    subject: &str,
    jwks: &Value,
) -> FakeResponse {
    state.lock().unwrap().token_requests += 1;
    let path = req.path();
    let Some(rest) = path.strip_prefix('/') else {
        return aad_error(404, "invalid_request", 900561, "Unknown endpoint.");
    };
    let Some((path_tenant, endpoint)) = rest.split_once('/') else {
        return aad_error(404, "invalid_request", 900561, "Unknown endpoint.");
    };
    if req.method != "POST" || endpoint != "oauth2/v2.0/token" {
        return aad_error(
            400,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        );
    }
    if path_tenant != tenant {
        return aad_error(
            400,
            "invalid_tenant",
            90002,
            &format!("Tenant '{path_tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let f = form(&req.body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if !get("client_assertion").is_empty() {
        state
            .lock()
            .unwrap()
            .assertions
            .push(get("client_assertion").to_string());
    }
    if get("grant_type") != "client_credentials" {
        return aad_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if get("client_id") != client_id {
        return aad_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory '{tenant}'.",
                get("client_id")
            ),
        );
    }
    if get("scope") != "https://vault.azure.net/.default" {
        return aad_error(
            400,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid.",
        );
    }
    if get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return aad_error(
            400,
            "invalid_request",
            7000215,
            "Invalid client secret provided.",
        );
    }
    let claims = match verify_jwt(get("client_assertion"), jwks, GITHUB_ISSUER, AUDIENCE) {
        Ok(c) => c,
        Err(e) if e.contains("audience") => {
            return aad_error(
                400,
                "invalid_request",
                700212,
                "No matching federated identity record found for presented assertion audience 'api://wrong'. Please note that the matching is done using a case-sensitive comparison.",
            )
        }
        Err(e) if e.contains("issuer") => {
            return aad_error(
                400,
                "invalid_request",
                700211,
                "No matching federated identity record found for presented assertion issuer.",
            )
        }
        Err(e) if e.contains("expired") || e.contains("not valid yet") => {
            return aad_error(
                400,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            )
        }
        Err(_) => {
            return aad_error(
                401,
                "invalid_client",
                50013,
                "Assertion failed signature validation.",
            )
        }
    };
    if claims["sub"] != subject {
        return aad_error(
            400,
            "invalid_request",
            700213,
            &format!(
                "No matching federated identity record found for presented assertion subject '{}'.",
                claims["sub"].as_str().unwrap_or("")
            ),
        );
    }
    // Access tokens are JWTs too; this one is opaque to the client either way.
    let token = format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.{}",
        random_b64url(120),
        random_b64url(64)
    );
    state.lock().unwrap().access_tokens.push(token.clone());
    json_response(
        200,
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
    )
}

fn vault_handler(req: &FakeRequest, state: &Mutex<State>, base: &str) -> FakeResponse {
    let authorised = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| state.lock().unwrap().access_tokens.iter().any(|a| a == t));
    if !authorised {
        let message = if req.header("authorization").is_none() {
            "AKV10000: Request is missing a Bearer or PoP token."
        } else {
            "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/."
        };
        return vault_error(401, "Unauthorized", message).header(
            "WWW-Authenticate",
            "Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", resource=\"https://vault.azure.net\"",
        );
    }
    let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let api_version = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned());
    match api_version.as_deref() {
        Some("7.4") | Some("7.5") | Some("2025-07-01") => {}
        Some(v) => {
            return vault_error(
                400,
                "BadParameter",
                &format!("The specified version ({v}) is not recognized. Consider using the latest supported version (7.4)."),
            )
        }
        None => {
            return vault_error(
                400,
                "BadParameter",
                "The 'api-version' query parameter is missing.",
            )
        }
    }
    let segments: Vec<&str> = req.path().split('/').filter(|s| !s.is_empty()).collect();
    let mut st = state.lock().unwrap();
    let find = |st: &State, name: &str, version: Option<&str>| -> Option<usize> {
        st.keys
            .iter()
            .enumerate()
            .rev()
            .find(|(_, k)| k.name == name && version.is_none_or(|v| v == k.version))
            .map(|(i, _)| i)
    };
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["keys", name]) | ("GET", ["keys", name, _]) => {
            let version = segments.get(2).copied();
            let Some(i) = find(&st, name, version) else {
                return vault_error(
                    404,
                    "KeyNotFound",
                    &format!("A key with (name/id) {name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command."),
                );
            };
            let k = &st.keys[i];
            let mut jwk = k.key.jwk();
            jwk["kid"] = format!("{base}/keys/{}/{}", k.name, k.version).into();
            jwk["key_ops"] = json!(["sign", "verify"]);
            json_response(
                200,
                json!({
                    "key": jwk,
                    "attributes": {"enabled": k.enabled, "created": 1764331200, "updated": 1764331200,
                                   "recoveryLevel": "Recoverable+Purgeable", "exportable": false},
                }),
            )
        }
        ("POST", ["keys", name, version, "sign"]) => {
            let Some(i) = find(&st, name, Some(version)) else {
                return vault_error(
                    404,
                    "KeyNotFound",
                    &format!(
                        "A key with (name/id) {name}/{version} was not found in this key vault."
                    ),
                );
            };
            st.sign_requests += 1;
            let body: Value = match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(_) => {
                    return vault_error(400, "BadParameter", "The request body is not valid JSON.")
                }
            };
            let (Some(alg), Some(value)) = (body["alg"].as_str(), body["value"].as_str()) else {
                return vault_error(
                    400,
                    "BadParameter",
                    "Property 'alg' and 'value' are required.",
                );
            };
            let Ok(digest) = URL_SAFE_NO_PAD.decode(value) else {
                return vault_error(400, "BadParameter", "Property 'value' is not base64url.");
            };
            let k = &st.keys[i];
            let (ok_alg, hash_len) = match (k.key.kind, alg) {
                (kind, "PS256") if kind.is_rsa() => (true, 32),
                (kind, "PS384") if kind.is_rsa() => (true, 48),
                (kind, "PS512") if kind.is_rsa() => (true, 64),
                (crate::cloud_keys::KeyKind::P256, "ES256") => (true, 32),
                (crate::cloud_keys::KeyKind::P384, "ES384") => (true, 48),
                (crate::cloud_keys::KeyKind::P521, "ES512") => (true, 64),
                (crate::cloud_keys::KeyKind::P256K, "ES256K") => (true, 32),
                _ => (false, 0),
            };
            if !ok_alg {
                return vault_error(
                    400,
                    "BadParameter",
                    &format!("Key and signing algorithm are incompatible: algorithm {alg} cannot be used with this key."),
                );
            }
            if digest.len() != hash_len {
                return vault_error(
                    400,
                    "BadParameter",
                    &format!("Invalid length of digest: expected {hash_len} bytes for {alg}."),
                );
            }
            match k.key.sign_digest(&digest, false) {
                Ok(sig) => json_response(
                    200,
                    json!({"kid": format!("{base}/keys/{}/{}", k.name, k.version), "value": URL_SAFE_NO_PAD.encode(sig)}),
                ),
                Err(e) => vault_error(400, "BadParameter", &e),
            }
        }
        ("GET", ["certificates", name]) | ("GET", ["certificates", name, _]) => {
            let Some(c) = st.certificates.get(*name) else {
                return vault_error(
                    404,
                    "CertificateNotFound",
                    &format!(
                        "A certificate with (name/id) {name} was not found in this key vault."
                    ),
                );
            };
            let version = segments
                .get(2)
                .map(|v| v.to_string())
                .or_else(|| find(&st, name, None).map(|i| st.keys[i].version.clone()))
                .unwrap_or_default();
            json_response(
                200,
                json!({
                    "id": format!("{base}/certificates/{name}/{version}"),
                    "kid": format!("{base}/keys/{name}/{version}"),
                    "sid": format!("{base}/secrets/{name}/{version}"),
                    "x5t": URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &c.leaf_der)),
                    "cer": STANDARD.encode(&c.leaf_der),
                    "attributes": {"enabled": true},
                }),
            )
        }
        ("GET", ["secrets", name, _]) | ("GET", ["secrets", name]) => {
            match st
                .certificates
                .get(*name)
                .and_then(|c| c.secret_pem.clone())
            {
                Some(pem) => json_response(
                    200,
                    json!({
                        "value": pem,
                        "contentType": "application/x-pem-file",
                        "id": format!("{base}/secrets/{name}"),
                        "managed": true,
                        "kid": format!("{base}/keys/{name}"),
                    }),
                ),
                None => vault_error(
                    404,
                    "SecretNotFound",
                    &format!("A secret with (name/id) {name} was not found in this key vault."),
                ),
            }
        }
        _ => vault_error(404, "NotFound", "The requested resource was not found."),
    }
}
