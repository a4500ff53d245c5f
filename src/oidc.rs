//! OIDC ID tokens for signing without long-lived secrets.
//!
//! In GitHub Actions a job with `permissions: id-token: write` can ask the runner for a JWT
//! whose audience it chooses; other CI systems hand one over as a file. The token is a bearer
//! credential for a few minutes: it is kept in zeroized memory, never printed (`Debug` redacts
//! it), and its claims are decoded here only for display and for the proof of possession a
//! Fulcio CA asks for — the signature on it is checked by the relying party (Fulcio, AWS STS,
//! Azure AD), which holds the issuer's keys; checking it here would add nothing.
//!
//! The JWT shape check is hand-written (split on dots, base64url, JSON): pulling a JWT crate
//! in to decode two JSON objects we do not verify would add code without adding safety.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// Set by the runner when the job may mint ID tokens.
pub const ENV_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// The bearer token that authorises the request to `ENV_REQUEST_URL`.
pub const ENV_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// A JWT is a few KiB; anything far larger is not one.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Tolerated clock skew when refusing an expired token.
const EXPIRY_LEEWAY_SECS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(
        "no GitHub Actions OIDC token is available ({ENV_REQUEST_URL} / {ENV_REQUEST_TOKEN} are not set): \
         add `permissions: id-token: write` to the job (or the workflow), or pass a token with --oidc-token-file"
    )]
    NotInGitHubActions,
    #[error("{ENV_REQUEST_URL} is not a usable URL: {0}")]
    BadRequestUrl(String),
    #[error("requesting the GitHub Actions OIDC token failed: {0}")]
    Request(String),
    #[error(
        "the GitHub Actions OIDC token endpoint answered HTTP {status}: check that the job has \
         `permissions: id-token: write`"
    )]
    Endpoint { status: u16 },
    #[error("reading the OIDC token file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("the environment variable {name} that should hold the OIDC token is unset or empty")]
    EnvMissing { name: String },
    #[error("the OIDC token is not a JWT: {0}")]
    Malformed(String),
    #[error("the OIDC token expired at {exp} (unix time); request a fresh one")]
    Expired { exp: i64 },
}

/// A bearer OIDC ID token. The raw string is zeroized on drop and never formatted.
pub struct IdToken {
    raw: Zeroizing<String>,
    claims: Claims,
}

/// The claims of an ID token, decoded without verifying the signature.
#[derive(Debug, Clone)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    /// `aud` may be a string or an array in a JWT; normalised to a list.
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    /// Everything else: GitHub's `repository`, `ref`, `job_workflow_ref`, `sha`, …
    pub other: Map<String, Value>,
}

impl Claims {
    /// A string claim, standard or not.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match name {
            "iss" => Some(&self.iss),
            "sub" => Some(&self.sub),
            _ => self.other.get(name).and_then(Value::as_str),
        }
    }
}

impl IdToken {
    /// Check the JWT shape and decode its claims; the signature is the relying party's job.
    pub fn parse(raw: String) -> Result<IdToken, OidcError> {
        let raw = Zeroizing::new(raw.trim().to_string());
        let mut parts = raw.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OidcError::Malformed(
                "expected three dot-separated parts".into(),
            ));
        };
        if signature.is_empty() {
            return Err(OidcError::Malformed("the signature part is empty".into()));
        }
        let header: Map<String, Value> = decode_part(header, "header")?;
        match header.get("alg").and_then(Value::as_str) {
            None => return Err(OidcError::Malformed("the header has no `alg`".into())),
            Some(alg) if alg.eq_ignore_ascii_case("none") => {
                return Err(OidcError::Malformed("unsigned token (`alg: none`)".into()))
            }
            Some(_) => {}
        }
        let claims = Claims::from_map(decode_part(payload, "claims")?)?;
        Ok(IdToken { raw, claims })
    }

    /// The bearer string, for the request that presents it.
    pub fn expose_secret(&self) -> &str {
        &self.raw
    }

    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    fn refuse_expired(self, now: i64) -> Result<IdToken, OidcError> {
        if self.claims.exp + EXPIRY_LEEWAY_SECS < now {
            return Err(OidcError::Expired {
                exp: self.claims.exp,
            });
        }
        Ok(self)
    }
}

impl fmt::Debug for IdToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdToken")
            .field("raw", &"<redacted>")
            .field("iss", &self.claims.iss)
            .field("sub", &self.claims.sub)
            .finish()
    }
}

fn decode_part<T: for<'de> Deserialize<'de>>(part: &str, what: &str) -> Result<T, OidcError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| OidcError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| OidcError::Malformed(format!("the {what} is not a JSON object")))
}

impl Claims {
    fn from_map(mut map: Map<String, Value>) -> Result<Claims, OidcError> {
        let mut take_str = |name: &str| -> Result<String, OidcError> {
            match map.remove(name) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s),
                _ => Err(OidcError::Malformed(format!(
                    "the `{name}` claim is missing or not a string"
                ))),
            }
        };
        let iss = take_str("iss")?;
        let sub = take_str("sub")?;
        let aud = match map.remove("aud") {
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(OidcError::Malformed(
                        "an `aud` entry is not a string".into(),
                    )),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(OidcError::Malformed(
                    "the `aud` claim is missing or not a string".into(),
                ))
            }
        };
        let mut take_time = |name: &str| -> Result<Option<i64>, OidcError> {
            match map.remove(name) {
                None => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                    OidcError::Malformed(format!("the `{name}` claim is not a number"))
                }),
            }
        };
        let exp = take_time("exp")?
            .ok_or_else(|| OidcError::Malformed("the `exp` claim is missing".into()))?;
        let iat = take_time("iat")?;
        let nbf = take_time("nbf")?;
        Ok(Claims {
            iss,
            sub,
            aud,
            exp,
            iat,
            nbf,
            other: map,
        })
    }
}

/// Where the ID token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The GitHub Actions runner's token endpoint, for the given audience.
    GitHubActions { audience: String },
    /// A file holding the raw JWT (other CI systems).
    File(PathBuf),
    /// An environment variable holding the raw JWT (GitLab's `id_tokens`, Buildkite, …).
    Env(String),
}

/// Obtain a token and refuse an expired one. In action mode the caller masks it at once.
pub async fn obtain(source: &TokenSource) -> Result<IdToken, OidcError> {
    let token = match source {
        TokenSource::GitHubActions { audience } => {
            let url = std::env::var(ENV_REQUEST_URL)
                .ok()
                .filter(|s| !s.is_empty());
            let bearer = std::env::var(ENV_REQUEST_TOKEN)
                .ok()
                .filter(|s| !s.is_empty())
                .map(Zeroizing::new);
            let (Some(url), Some(bearer)) = (url, bearer) else {
                return Err(OidcError::NotInGitHubActions);
            };
            request_github_token(&url, &bearer, audience).await?
        }
        TokenSource::File(path) => from_file(path)?,
        TokenSource::Env(name) => {
            let raw = std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| OidcError::EnvMissing { name: name.clone() })?;
            if raw.len() as u64 > MAX_TOKEN_BYTES {
                return Err(OidcError::Malformed(format!(
                    "${name} is larger than {MAX_TOKEN_BYTES} bytes; not a token"
                )));
            }
            IdToken::parse(raw)?
        }
    };
    token.refuse_expired(unix_now())
}

fn from_file(path: &Path) -> Result<IdToken, OidcError> {
    let file_error = |message: String| OidcError::File {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| file_error(e.to_string()))?;
    if meta.len() > MAX_TOKEN_BYTES {
        return Err(file_error(format!(
            "larger than {MAX_TOKEN_BYTES} bytes; not a token"
        )));
    }
    let raw = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    IdToken::parse(raw)
}

/// GitHub's documented exchange: GET the request URL with `&audience=` appended and the
/// request token as bearer; the answer is `{"value": "<jwt>"}`. `obtain` reads the two
/// values from the runner's environment; this is the same call with them passed in.
pub async fn request_github_token(
    url: &str,
    bearer: &str,
    audience: &str,
) -> Result<IdToken, OidcError> {
    let mut url =
        crate::net::secure_url(url).map_err(|e| OidcError::BadRequestUrl(e.to_string()))?;
    if !audience.is_empty() {
        url.query_pairs_mut().append_pair("audience", audience);
    }
    let client =
        crate::net::https_client(REQUEST_TIMEOUT).map_err(|e| OidcError::Request(e.to_string()))?;
    let resp = client
        .get(url)
        .header(reqwest::header::AUTHORIZATION, format!("bearer {bearer}"))
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| OidcError::Request(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(OidcError::Endpoint {
            status: resp.status().as_u16(),
        });
    }
    let body = Zeroizing::new(
        crate::net::read_bounded(resp, MAX_TOKEN_BYTES, "the OIDC token endpoint")
            .await
            .map_err(|e| OidcError::Request(e.to_string()))?,
    );
    #[derive(Deserialize)]
    struct Answer {
        value: String,
    }
    let answer: Answer = serde_json::from_slice(&body)
        .map_err(|_| OidcError::Request("the answer is not JSON with a string `value`".into()))?;
    IdToken::parse(answer.value)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn decodes_github_claims() {
        let t = IdToken::parse(jwt(
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"iss":"https://token.actions.githubusercontent.com","sub":"repo:o/r:ref:refs/heads/main","aud":"sigstore","exp":4102444800,"iat":1,"repository":"o/r"}"#,
        ))
        .unwrap();
        let c = t.claims();
        assert_eq!(c.sub, "repo:o/r:ref:refs/heads/main");
        assert_eq!(c.aud, vec!["sigstore".to_string()]);
        assert_eq!(c.get_str("repository"), Some("o/r"));
        assert_eq!(c.iat, Some(1));
        assert!(!format!("{t:?}").contains("c2ln"));
    }

    #[test]
    fn array_audience() {
        let t = IdToken::parse(jwt(
            r#"{"alg":"ES256"}"#,
            r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":4102444800}"#,
        ))
        .unwrap();
        assert_eq!(t.claims().aud, vec!["a", "b"]);
    }

    #[test]
    fn refuses_malformed_tokens() {
        let cases = [
            "not-a-jwt".to_string(),
            "a.b".to_string(),
            jwt(
                r#"{"alg":"none"}"#,
                r#"{"iss":"i","sub":"s","aud":"a","exp":1}"#,
            ),
            jwt(
                r#"{"typ":"JWT"}"#,
                r#"{"iss":"i","sub":"s","aud":"a","exp":1}"#,
            ),
            jwt(r#"{"alg":"RS256"}"#, r#"{"sub":"s","aud":"a","exp":1}"#),
            jwt(r#"{"alg":"RS256"}"#, r#"{"iss":"i","sub":"s","exp":1}"#),
            jwt(r#"{"alg":"RS256"}"#, r#"{"iss":"i","sub":"s","aud":"a"}"#),
            jwt(
                r#"{"alg":"RS256"}"#,
                r#"{"iss":"i","sub":"s","aud":"a","exp":"soon"}"#,
            ),
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
                URL_SAFE_NO_PAD.encode(r#"{"iss":"i","sub":"s","aud":"a","exp":1}"#)
            ),
        ];
        for raw in cases {
            assert!(
                matches!(IdToken::parse(raw.clone()), Err(OidcError::Malformed(_))),
                "{raw}"
            );
        }
    }

    #[test]
    fn refuses_expired() {
        let t = IdToken::parse(jwt(
            r#"{"alg":"RS256"}"#,
            r#"{"iss":"i","sub":"s","aud":"a","exp":1000}"#,
        ))
        .unwrap();
        assert!(matches!(
            t.refuse_expired(2000),
            Err(OidcError::Expired { exp: 1000 })
        ));
    }
}
