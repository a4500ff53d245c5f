//! A stand-in for GitHub Actions' OIDC token service, which cannot be reached from tests: the
//! runner-side token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL`, bearer request token, `audience`
//! query, answer `{"count":…,"value":"<jwt>"}`) and the issuer's discovery document and JWKS.
//! Tokens are real RS256 JWTs signed with a fresh RSA-2048 key, with GitHub's documented claim
//! set, so relying-party fakes (Fulcio, AWS STS, Azure AD) verify them as the real services do.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, KeyPair as _, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::fake_http::{FakeResponse, FakeServer};

/// GitHub's real issuer; the fake writes it so certificates and logs look like production.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

pub struct FakeGitHubOidc {
    server: FakeServer,
    key: Arc<KeyPair>,
    kid: String,
    request_token: String,
    audiences: Arc<Mutex<Vec<String>>>,
}

impl FakeGitHubOidc {
    pub async fn start() -> FakeGitHubOidc {
        let key = Arc::new(KeyPair::generate(KeySize::Rsa2048).expect("rsa key"));
        let kid = hex::encode(random_bytes(8));
        let request_token = format!("ghs_req_{}", hex::encode(random_bytes(16)));
        let audiences = Arc::new(Mutex::new(Vec::new()));
        let jwks = jwks_of(&key, &kid);
        let (k, id, rt, auds) = (
            key.clone(),
            kid.clone(),
            request_token.clone(),
            audiences.clone(),
        );
        let port = Arc::new(Mutex::new(String::new()));
        let port_seen = port.clone();
        let server = FakeServer::start(move |req| {
            let json_response = |status: u16, v: &Value| {
                FakeResponse::new(status)
                    .header("Content-Type", "application/json")
                    .body(serde_json::to_vec(v).unwrap())
            };
            match (req.method.as_str(), req.path()) {
                ("GET", "/token") => {
                    let authorised = req.header("authorization").is_some_and(|h| {
                        h.split_once(' ').is_some_and(|(scheme, value)| {
                            scheme.eq_ignore_ascii_case("bearer") && value == rt
                        })
                    });
                    if !authorised {
                        return json_response(401, &json!({"message": "Unauthorized"}));
                    }
                    let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
                    let audience = url::form_urlencoded::parse(query.as_bytes())
                        .find(|(k, _)| k == "audience")
                        .map(|(_, v)| v.into_owned())
                        // GitHub's default audience is the owner's URL.
                        .unwrap_or_else(|| "https://github.com/octo-org".to_string());
                    auds.lock().unwrap().push(audience.clone());
                    let token = mint_with(&k, &id, &audience, &Value::Null);
                    json_response(200, &json!({"count": token.len(), "value": token}))
                }
                ("GET", "/.well-known/openid-configuration") => {
                    let base = format!("http://{}", port_seen.lock().unwrap());
                    json_response(
                        200,
                        &json!({
                            "issuer": GITHUB_ISSUER,
                            "jwks_uri": format!("{base}/.well-known/jwks"),
                            "subject_types_supported": ["public", "pairwise"],
                            "response_types_supported": ["id_token"],
                            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf",
                                "ref", "repository", "repository_id", "repository_owner",
                                "run_id", "run_number", "run_attempt", "actor", "workflow",
                                "workflow_ref", "job_workflow_ref", "event_name", "ref_type",
                                "sha", "runner_environment"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        }),
                    )
                }
                ("GET", "/.well-known/jwks") => json_response(200, &jwks),
                _ => json_response(404, &json!({"message": "Not Found"})),
            }
        })
        .await;
        *port.lock().unwrap() = server.host.clone();
        FakeGitHubOidc {
            server,
            key,
            kid,
            request_token,
            audiences,
        }
    }

    pub fn issuer(&self) -> &str {
        GITHUB_ISSUER
    }

    pub fn jwks_url(&self) -> String {
        format!("http://{}/.well-known/jwks", self.server.host)
    }

    /// The key set itself, for fakes that are configured rather than fetching.
    pub fn jwks(&self) -> Value {
        jwks_of(&self.key, &self.kid)
    }

    /// ACTIONS_ID_TOKEN_REQUEST_URL as the runner sets it (already carries a query).
    pub fn request_url(&self) -> String {
        format!("http://{}/token?api-version=2.0", self.server.host)
    }

    /// ACTIONS_ID_TOKEN_REQUEST_TOKEN.
    pub fn request_token(&self) -> String {
        self.request_token.clone()
    }

    /// A signed JWT with GitHub's claims for `audience`; `overrides` (a JSON object) is merged
    /// over them, a `null` value removing the claim.
    pub fn mint(&self, audience: &str, overrides: Value) -> String {
        mint_with(&self.key, &self.kid, audience, &overrides)
    }

    /// The same claims signed by a key the issuer never published.
    pub fn mint_forged(&self, audience: &str) -> String {
        let other = KeyPair::generate(KeySize::Rsa2048).expect("rsa key");
        mint_with(&other, &self.kid, audience, &Value::Null)
    }

    /// Audiences requested through the token endpoint, in order.
    pub fn requested_audiences(&self) -> Vec<String> {
        self.audiences.lock().unwrap().clone()
    }

    /// How many times the token endpoint was called (authorised or not).
    pub fn token_requests(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path() == "/token")
            .count()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b
}

fn jwks_of(key: &KeyPair, kid: &str) -> Value {
    let public = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
    json!({"keys": [{
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(strip_zeros(&public.n)),
        "e": URL_SAFE_NO_PAD.encode(strip_zeros(&public.e)),
    }]})
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// GitHub's claim set for a push to main running release.yml.
fn github_claims(audience: &str) -> Map<String, Value> {
    let t = now();
    let workflow = "octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main";
    let Value::Object(map) = json!({
        "jti": hex::encode(random_bytes(16)),
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "aud": audience,
        "ref": "refs/heads/main",
        "sha": "example8b4d2e3f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
        "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org",
        "repository_owner_id": "1",
        "repository_id": "2",
        "repository_visibility": "public",
        "run_id": "1234567890",
        "run_number": "7",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "3",
        "workflow": "release",
        "workflow_ref": workflow,
        "workflow_sha": "example8b4d2e3f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
        "job_workflow_ref": workflow,
        "job_workflow_sha": "example8b4d2e3f5a6b7c8d9e0f1a2b3c4d5e6f7a8b",
        "event_name": "push",
        "ref_type": "branch",
        "runner_environment": "github-hosted",
        "iss": GITHUB_ISSUER,
        "nbf": t - 5,
        "iat": t,
        "exp": t + 300,
    }) else {
        unreachable!()
    };
    map
}

fn mint_with(key: &KeyPair, kid: &str, audience: &str, overrides: &Value) -> String {
    let mut claims = github_claims(audience);
    if let Value::Object(o) = overrides {
        for (k, v) in o {
            if v.is_null() {
                claims.remove(k);
            } else {
                claims.insert(k.clone(), v.clone());
            }
        }
    }
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid, "x5t": kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&Value::Object(claims)).unwrap())
    );
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &signature::RSA_PKCS1_SHA256,
        &rng,
        signing_input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// What a relying party does with a GitHub token: RS256 signature against the issuer's JWKS
/// (by `kid`), `iss`, `aud`, `exp`/`nbf` with 60 s leeway. The error strings read like the
/// services' own.
pub fn verify_jwt(
    token: &str,
    jwks: &Value,
    expected_iss: &str,
    expected_aud: &str,
) -> Result<Value, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err("malformed token: expected three parts".into());
    }
    let decode = |p: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| "malformed token: bad base64url".to_string())?;
        serde_json::from_slice(&bytes).map_err(|_| "malformed token: bad JSON".to_string())
    };
    let header = decode(parts[0])?;
    let claims = decode(parts[1])?;
    if header["alg"] != "RS256" {
        return Err(format!("unsupported signing algorithm {}", header["alg"]));
    }
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == header["kid"]))
        .ok_or("no key in the issuer's JWKS matches the token's kid")?;
    let component = |name: &str| -> Result<Vec<u8>, String> {
        URL_SAFE_NO_PAD
            .decode(key[name].as_str().unwrap_or(""))
            .map_err(|_| format!("bad JWKS {name}"))
    };
    let public = RsaPublicKeyComponents {
        n: component("n")?,
        e: component("e")?,
    };
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| "malformed token: bad signature encoding".to_string())?;
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    public
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            signing_input.as_bytes(),
            &sig,
        )
        .map_err(|_| "failed to verify signature: token signature is invalid".to_string())?;
    if claims["iss"] != expected_iss {
        return Err(format!("token issuer {} is not trusted", claims["iss"]));
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == expected_aud,
        Value::Array(list) => list.iter().any(|a| a == expected_aud),
        _ => false,
    };
    if !aud_ok {
        return Err(format!(
            "expected audience {expected_aud:?} but the token has {}",
            claims["aud"]
        ));
    }
    let t = now();
    let exp = claims["exp"].as_i64().ok_or("token has no exp")?;
    if exp + 60 < t {
        return Err("token is expired".into());
    }
    if claims["nbf"].as_i64().is_some_and(|nbf| nbf - 60 > t) {
        return Err("token is not valid yet".into());
    }
    Ok(claims)
}
