//! Registry client (distribution-spec 1.1) on reqwest.
//!
//! Our own client rather than `oci-client`: we need the `OCI-Subject` response header of a
//! manifest PUT, the push side of the referrers tag schema and control of the request count.
//!
//! Security decisions made here:
//! - TLS is rustls with the aws-lc-rs provider and the webpki roots plus roots the user gives;
//!   plain HTTP only to loopback hosts (with `plain_http`) or hosts the user lists as insecure,
//!   checked before any connection and again on every redirect.
//! - Credentials are sent only after a challenge, only to the registry's own origin (reqwest
//!   drops `Authorization` on cross-host redirects; upload `Location`s to other hosts get none)
//!   and to the token realm it names.
//! - Every body is read through a bound, and fetched content is checked against its digest.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LINK, LOCATION,
    RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode, Url};

use super::manifest::{self, ImageIndex, ARTIFACT_MANIFEST, EMPTY_CONFIG, THUMBPRINT_ANNOTATION};
use super::{
    verify_content, ArtifactStore, Descriptor, ManifestForm, PushedSignature, Reference, Storage,
    StoreError, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST,
    SIGNATURE_ARTIFACT_TYPE,
};

/// Bound for image indexes (referrers responses, tag schema documents).
pub const MAX_INDEX_BYTES: u64 = 4 * 1024 * 1024;
/// Bound for token-endpoint responses.
pub const MAX_TOKEN_BYTES: u64 = 1024 * 1024;
/// Bound for error bodies we read only to quote them.
const MAX_ERROR_BYTES: u64 = 64 * 1024;
/// Referrers pages we follow before concluding the registry is misbehaving.
const MAX_REFERRERS_PAGES: usize = 64;
/// Read-merge-write rounds for the tag schema index under concurrent signers.
const TAG_SCHEMA_ATTEMPTS: usize = 12;
/// Upper bound of the wait before the confirming second look at the tag schema index.
const MAX_TAG_SCHEMA_SETTLE: Duration = Duration::from_secs(10);

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("registry {registry}: {message}")]
    Other { registry: String, message: String },
    #[error("refusing plain HTTP to {host}: only loopback hosts (127.0.0.0/8, ::1, localhost) or hosts listed as insecure may be reached without TLS")]
    PlainHttpRefused { host: String },
    #[error("cannot connect to registry {registry}: {message}")]
    Connect { registry: String, message: String },
    #[error("registry {registry} refused our credentials or requires some ({message}); give a username and password (or token) for it, or log in with `docker login {registry}`")]
    Unauthorized { registry: String, message: String },
    #[error("registry {registry} denied access ({message}): the credentials lack permission for this repository")]
    Denied { registry: String, message: String },
    #[error("registry {registry}: {what} not found ({message})")]
    NotFound {
        registry: String,
        what: String,
        message: String,
    },
    #[error("registry {registry}: {method} {path} answered HTTP {status}: {message}")]
    Status {
        registry: String,
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("registry {registry}: {what} exceeds the {limit}-byte limit; refusing to read it")]
    TooLarge {
        registry: String,
        what: String,
        limit: u64,
    },
    #[error("registry {registry}: invalid response: {message}")]
    Protocol { registry: String, message: String },
    #[error("registry {registry}: the answer for {what} broke off after {read} bytes (connection closed, truncated or timed out): {message}")]
    BodyBroken {
        registry: String,
        what: String,
        read: u64,
        message: String,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("registry {registry} refused the signature manifest because of its `{field}` field ({message}): {advice}")]
    FieldRejected {
        registry: String,
        /// `subject`, `artifactType`, or both when the registry does not say which.
        field: String,
        message: String,
        advice: String,
    },
}

/// Credentials for one registry. `Debug` never shows secrets.
#[derive(Clone)]
pub enum Credential {
    /// Username and password (or a personal access token as the password).
    Basic { username: String, password: String },
    /// A registry access token sent as `Authorization: Bearer` without a challenge exchange.
    Bearer(String),
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the token realm.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credential::Bearer(_) => write!(f, "Bearer(<redacted>)"),
            Credential::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Credentials by registry (`host[:port]` as in a [`Reference`], e.g. `ghcr.io`).
    pub credentials: HashMap<String, Credential>,
    /// Look in `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`) and its credential
    /// helpers for registries without explicit credentials.
    pub use_docker_config: bool,
    /// Directory holding that `config.json` instead of `$DOCKER_CONFIG` / `~/.docker`.
    pub docker_config_dir: Option<std::path::PathBuf>,
    /// Extra trusted root certificates (PEM, one or more per entry) besides the webpki roots.
    pub extra_root_certs_pem: Vec<Vec<u8>>,
    /// Talk plain HTTP to loopback registries (refused for any other host not listed below).
    pub plain_http: bool,
    /// Hosts (`host` or `host:port`) that are reached over plain HTTP.
    pub insecure_hosts: Vec<String>,
    /// Timeout of each HTTP request, body included.
    pub timeout: Duration,
    /// Retries after 429, 5xx and connection failures.
    pub retries: u32,
    /// First backoff delay; doubled on each retry.
    pub backoff: Duration,
    /// After our entry shows up in the referrers tag schema index, wait this long (plus
    /// jitter) and check once more: the registry ignores `If-Match`, so a concurrent signer
    /// can still overwrite the index. Zero skips the second look (one request fewer).
    pub tag_schema_settle: Duration,
    pub user_agent: String,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            credentials: HashMap::new(),
            use_docker_config: true,
            docker_config_dir: None,
            extra_root_certs_pem: Vec::new(),
            plain_http: false,
            insecure_hosts: Vec::new(),
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(250),
            tag_schema_settle: Duration::from_millis(250),
            user_agent: crate::signing_agent(),
        }
    }
}

/// Which hosts may be reached without TLS: shared with the redirect policy.
#[derive(Debug, Clone)]
struct PlainHttpRule {
    plain_http: bool,
    insecure_hosts: Vec<String>,
}

impl PlainHttpRule {
    /// `Ok(true)`: use http; `Ok(false)`: use https; `Err`: http was asked for but is refused.
    fn scheme_is_http(&self, host_port: &str) -> Result<bool, RegistryError> {
        let host = host_only(host_port);
        let listed = self
            .insecure_hosts
            .iter()
            .any(|h| h == host_port || h == host);
        if listed {
            return Ok(true);
        }
        if self.plain_http {
            if is_loopback(host) {
                return Ok(true);
            }
            return Err(RegistryError::PlainHttpRefused {
                host: host_port.to_string(),
            });
        }
        Ok(false)
    }

    /// May a redirect or token realm use this http URL?
    fn allows_http_url(&self, url: &Url) -> bool {
        let host = url.host_str().unwrap_or("");
        let host_port = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let listed = self
            .insecure_hosts
            .iter()
            .any(|h| *h == host_port || h == host);
        listed
            || (self.plain_http && is_loopback(host.trim_start_matches('[').trim_end_matches(']')))
    }
}

fn host_only(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

/// 127.0.0.0/8, ::1 and `localhost`.
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// A cached `Authorization` value.
#[derive(Clone)]
struct AuthValue(HeaderValue);

/// A registry client; implements [`ArtifactStore`].
pub struct RegistryClient {
    http: reqwest::Client,
    rule: PlainHttpRule,
    options: RegistryOptions,
    /// Bearer tokens by `registry|scope`, and `Basic` values by `registry|basic`.
    auth_cache: Mutex<HashMap<String, AuthValue>>,
    /// Credentials found in the docker config, by registry (None: looked, found nothing).
    docker_creds: Mutex<HashMap<String, Option<Credential>>>,
    /// Per registry, for this run: is the Referrers API usable? Absent: not yet known.
    /// Set false when a registry answers `/referrers` with something other than an image
    /// index, or with an index that omits a signature it just accepted with `subject`.
    referrers_usable: Mutex<HashMap<String, bool>>,
    requests: AtomicU64,
}

/// The same client under the store name the rest of the crate uses.
pub type RegistryStore = RegistryClient;

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What a request is for: decides the token scope.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Pull,
    Push,
}

fn scope_for(repository: &str, access: Access) -> String {
    match access {
        Access::Pull => format!("repository:{repository}:pull"),
        Access::Push => format!("repository:{repository}:pull,push"),
    }
}

impl RegistryClient {
    pub fn new(options: RegistryOptions) -> Result<RegistryClient, RegistryError> {
        let tls = tls_config(&options.extra_root_certs_pem)?;
        let rule = PlainHttpRule {
            plain_http: options.plain_http,
            insecure_hosts: options.insecure_hosts.clone(),
        };
        let redirect_rule = rule.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("more than 10 redirects");
            }
            let downgrade = attempt.url().scheme() == "http"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if attempt.url().scheme() == "http"
                && (downgrade || !redirect_rule.allows_http_url(attempt.url()))
            {
                let host = attempt.url().host_str().unwrap_or("").to_string();
                return attempt.error(format!("refusing a redirect to plain HTTP ({host})"));
            }
            // reqwest itself removes Authorization when the host or port changes.
            attempt.follow()
        });
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .redirect(policy)
            .user_agent(options.user_agent.clone())
            .build()
            .map_err(|e| RegistryError::Tls(error_chain(&e)))?;
        Ok(RegistryClient {
            http,
            rule,
            options,
            auth_cache: Mutex::new(HashMap::new()),
            docker_creds: Mutex::new(HashMap::new()),
            referrers_usable: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        })
    }

    /// What this run learnt about a registry's Referrers API (None: not yet known).
    pub fn referrers_usable(&self, registry: &str) -> Option<bool> {
        self.referrers_usable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(registry)
            .copied()
    }

    fn set_referrers_usable(&self, registry: &str, usable: bool) {
        self.referrers_usable
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry.to_string(), usable);
    }

    /// HTTP requests sent so far (retries and auth exchanges included; redirects not).
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// `scheme://host[:port]` of a registry's API, after the plain-HTTP rule.
    pub fn base_url(&self, registry: &str) -> Result<Url, RegistryError> {
        let host = if registry == super::reference::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if self.rule.scheme_is_http(registry)? {
            "http"
        } else {
            "https"
        };
        Url::parse(&format!("{scheme}://{host}")).map_err(|e| RegistryError::Other {
            registry: registry.to_string(),
            message: format!("cannot form a URL: {e}"),
        })
    }

    fn url(&self, registry: &str, path: &str) -> Result<Url, RegistryError> {
        let base = self.base_url(registry)?;
        base.join(path).map_err(|e| RegistryError::Other {
            registry: registry.to_string(),
            message: format!("cannot form a URL for {path}: {e}"),
        })
    }

    // ---------------------------------------------------------------- transport

    /// Send one request with retries, attaching and refreshing credentials as challenged.
    async fn execute(
        &self,
        (registry, repository, access): (&str, &str, Access),
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<Response, RegistryError> {
        let scope = scope_for(repository, access);
        let base = self.base_url(registry)?;
        let same_origin = url.origin() == base.origin();
        let mut challenged = false;
        loop {
            let auth = if same_origin {
                self.cached_auth(registry, &scope).await
            } else {
                None
            };
            let resp = self
                .send_with_retry(registry, &method, &url, &headers, body, auth.as_ref())
                .await?;
            if resp.status() != StatusCode::UNAUTHORIZED || !same_origin {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if challenged || challenge.is_none() {
                let message = error_message(resp).await;
                return Err(RegistryError::Unauthorized {
                    registry: registry.to_string(),
                    message,
                });
            }
            drop(resp);
            self.answer_challenge(registry, &scope, challenge.as_deref().unwrap_or(""))
                .await?;
            challenged = true;
        }
    }

    async fn send_with_retry(
        &self,
        registry: &str,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
        auth: Option<&AuthValue>,
    ) -> Result<Response, RegistryError> {
        let mut attempt: u32 = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(a) = auth {
                req = req.header(AUTHORIZATION, a.0.clone());
            }
            if let Some(b) = body {
                req = req.body(b.to_vec());
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let last = attempt >= self.options.retries;
            match req.send().await {
                Ok(resp) => {
                    let s = resp.status();
                    let transient = s == StatusCode::TOO_MANY_REQUESTS
                        || matches!(s.as_u16(), 500 | 502 | 503 | 504);
                    if !transient || last {
                        return Ok(resp);
                    }
                    let wait = retry_after(resp.headers())
                        .unwrap_or_else(|| self.backoff(attempt))
                        .min(Duration::from_secs(60));
                    drop(resp);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    let retryable = e.is_connect() || e.is_timeout() || e.is_request();
                    if !retryable || last {
                        return Err(self.transport_error(registry, &e));
                    }
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
            }
            attempt += 1;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.options.backoff.saturating_mul(1u32 << attempt.min(10))
    }

    fn transport_error(&self, registry: &str, e: &reqwest::Error) -> RegistryError {
        let mut message = error_chain(e);
        if message.contains("certificate") || message.contains("UnknownIssuer") {
            message.push_str(
                " (if the registry uses a private CA, pass its root certificate as an extra CA)",
            );
        } else if e.is_timeout() {
            message.push_str(&format!(" (timed out after {:?})", self.options.timeout));
        }
        RegistryError::Connect {
            registry: registry.to_string(),
            message,
        }
    }

    async fn cached_auth(&self, registry: &str, scope: &str) -> Option<AuthValue> {
        if let Some(Credential::Bearer(t)) = self.credential(registry).await {
            return bearer_header(&t).map(AuthValue);
        }
        let cache = self.auth_cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(&format!("{registry}|{scope}"))
            .or_else(|| cache.get(&format!("{registry}|basic")))
            .cloned()
    }

    /// Explicit credentials, else the docker config's (looked up once per registry).
    async fn credential(&self, registry: &str) -> Option<Credential> {
        if let Some(c) = self.options.credentials.get(registry) {
            return Some(c.clone());
        }
        if !self.options.use_docker_config {
            return None;
        }
        if let Some(found) = self
            .docker_creds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(registry)
        {
            return found.clone();
        }
        let server = if registry == super::reference::DOCKER_HUB {
            "https://index.docker.io/v1/".to_string()
        } else {
            registry.to_string()
        };
        // Credential helpers are external programs: keep them off the async workers.
        let dir = self.options.docker_config_dir.clone();
        let found = tokio::task::spawn_blocking(move || match dir {
            Some(dir) => std::fs::File::open(dir.join("config.json"))
                .map_err(|_| docker_credential::CredentialRetrievalError::ConfigReadError)
                .and_then(|f| {
                    docker_credential::get_credential_from_reader(
                        std::io::BufReader::new(f),
                        &server,
                    )
                }),
            None => docker_credential::get_credential(&server),
        })
        .await
        .ok()
        .and_then(|r| r.ok())
        .map(|c| match c {
            docker_credential::DockerCredential::IdentityToken(t) => Credential::IdentityToken(t),
            docker_credential::DockerCredential::UsernamePassword(username, password) => {
                Credential::Basic { username, password }
            }
        });
        self.docker_creds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry.to_string(), found.clone());
        found
    }

    async fn answer_challenge(
        &self,
        registry: &str,
        scope: &str,
        challenge: &str,
    ) -> Result<(), RegistryError> {
        let unauthorized = |message: String| RegistryError::Unauthorized {
            registry: registry.to_string(),
            message,
        };
        let (kind, params) = parse_challenge(challenge)
            .ok_or_else(|| unauthorized(format!("unparsable challenge {challenge:?}")))?;
        let cred = self.credential(registry).await;
        if kind.eq_ignore_ascii_case("basic") {
            let Some(Credential::Basic { username, password }) = cred else {
                return Err(unauthorized(
                    "the registry asks for a username and password".into(),
                ));
            };
            let v = basic_header(&username, &password)
                .ok_or_else(|| unauthorized("the credentials contain invalid characters".into()))?;
            self.auth_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(format!("{registry}|basic"), AuthValue(v));
            return Ok(());
        }
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized(format!("unsupported auth scheme {kind:?}")));
        }
        let realm = params
            .get("realm")
            .ok_or_else(|| unauthorized("bearer challenge without a realm".into()))?;
        let mut realm_url = Url::parse(realm)
            .map_err(|e| unauthorized(format!("bad token realm {realm:?}: {e}")))?;
        if realm_url.scheme() != "https"
            && !(realm_url.scheme() == "http" && self.rule.allows_http_url(&realm_url))
        {
            return Err(RegistryError::PlainHttpRefused {
                host: realm_url.host_str().unwrap_or("").to_string(),
            });
        }
        let mut scopes = vec![scope.to_string()];
        if let Some(s) = params.get("scope") {
            if s != scope {
                scopes.push(s.clone());
            }
        }
        let service = params.get("service").cloned();
        let (method, body, auth) = match &cred {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", refresh)
                    .append_pair("client_id", "sign-action");
                if let Some(s) = &service {
                    form.append_pair("service", s);
                }
                form.append_pair("scope", &scopes.join(" "));
                (Method::POST, Some(form.finish().into_bytes()), None)
            }
            Some(Credential::Basic { username, password }) => (
                Method::GET,
                None,
                basic_header(username, password).map(AuthValue),
            ),
            _ => (Method::GET, None, None),
        };
        if method == Method::GET {
            let mut q = realm_url.query_pairs_mut();
            if let Some(s) = &service {
                q.append_pair("service", s);
            }
            for s in &scopes {
                q.append_pair("scope", s);
            }
        }
        let mut headers = HeaderMap::new();
        if body.is_some() {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        let resp = self
            .send_with_retry(
                registry,
                &method,
                &realm_url,
                &headers,
                body.as_deref(),
                auth.as_ref(),
            )
            .await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let message = error_message(resp).await;
            return Err(unauthorized(format!(
                "token endpoint answered {status}: {message}"
            )));
        }
        let bytes = read_bounded(registry, resp, MAX_TOKEN_BYTES, "token response").await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| unauthorized(format!("token response is not JSON: {e}")))?;
        let token = t
            .token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("token response carries no token".into()))?;
        let v = bearer_header(&token)
            .ok_or_else(|| unauthorized("token contains invalid characters".into()))?;
        self.auth_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(format!("{registry}|{scope}"), AuthValue(v));
        Ok(())
    }

    // ---------------------------------------------------------------- operations

    /// Resolve a tag or digest to the manifest's descriptor. With both, the digest wins.
    pub async fn resolve_manifest(
        &self,
        reference: &Reference,
    ) -> Result<Descriptor, RegistryError> {
        let registry = reference.registry.as_str();
        let repo = reference.repository.as_str();
        let target = reference.target().ok_or_else(|| RegistryError::Other {
            registry: registry.to_string(),
            message: format!("{reference} names neither a tag nor a digest: add :TAG or @sha256:…"),
        })?;
        let url = self.url(registry, &format!("/v2/{repo}/manifests/{target}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let resp = self
            .execute(
                (registry, repo, Access::Pull),
                Method::HEAD,
                url.clone(),
                headers.clone(),
                None,
            )
            .await?;
        let what = || format!("manifest {target} in {repo}");
        if !resp.status().is_success() {
            return Err(status_error(registry, "HEAD", &url, resp, what()).await);
        }
        let h = resp.headers();
        let digest = header_str(h, "docker-content-digest");
        let media_type = header_str(h, CONTENT_TYPE.as_str()).map(|c| strip_params(&c));
        let size = header_str(h, CONTENT_LENGTH.as_str()).and_then(|s| s.parse::<u64>().ok());
        if let (Some(digest), Some(media_type), Some(size)) = (digest, media_type, size) {
            if super::reference::validate_digest(&digest).is_ok() && is_manifest_type(&media_type) {
                if let Some(want) = &reference.digest {
                    if *want != digest {
                        return Err(RegistryError::Protocol {
                            registry: registry.to_string(),
                            message: format!("asked for {want} but the registry answered {digest}"),
                        });
                    }
                }
                return Ok(Descriptor::new(media_type, digest, size));
            }
        }
        // HEAD told us too little: fetch the manifest and describe it ourselves.
        let resp = self
            .execute(
                (registry, repo, Access::Pull),
                Method::GET,
                url.clone(),
                headers,
                None,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(registry, "GET", &url, resp, what()).await);
        }
        let header_digest = header_str(resp.headers(), "docker-content-digest");
        let ct = header_str(resp.headers(), CONTENT_TYPE.as_str()).map(|c| strip_params(&c));
        let bytes = read_bounded(registry, resp, MAX_MANIFEST_BYTES, &what()).await?;
        let like = reference
            .digest
            .clone()
            .or(header_digest.clone())
            .unwrap_or_else(|| format!("sha256:{}", "0".repeat(64)));
        let digest = super::digest_like(&like, &bytes).map_err(|e| RegistryError::Protocol {
            registry: registry.to_string(),
            message: e.to_string(),
        })?;
        for claimed in [&reference.digest, &header_digest].into_iter().flatten() {
            if *claimed != digest {
                return Err(RegistryError::Protocol {
                    registry: registry.to_string(),
                    message: format!("manifest {target} hashes to {digest}, not {claimed}"),
                });
            }
        }
        let media_type = ct
            .filter(|c| is_manifest_type(c))
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
            })
            .ok_or_else(|| RegistryError::Protocol {
                registry: registry.to_string(),
                message: format!("manifest {target} has no recognisable media type"),
            })?;
        Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
    }

    /// Upload a blob unless the repository already has it.
    pub async fn push_blob(
        &self,
        registry: &str,
        repo: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Descriptor, RegistryError> {
        let desc = Descriptor::of_bytes(media_type, bytes);
        let head = self.url(registry, &format!("/v2/{repo}/blobs/{}", desc.digest))?;
        let resp = self
            .execute(
                (registry, repo, Access::Push),
                Method::HEAD,
                head.clone(),
                HeaderMap::new(),
                None,
            )
            .await?;
        match resp.status() {
            s if s.is_success() => return Ok(desc),
            StatusCode::NOT_FOUND => {}
            _ => {
                return Err(status_error(
                    registry,
                    "HEAD",
                    &head,
                    resp,
                    format!("blob {}", desc.digest),
                )
                .await)
            }
        }
        let start = self.url(registry, &format!("/v2/{repo}/blobs/uploads/"))?;
        let resp = self
            .execute(
                (registry, repo, Access::Push),
                Method::POST,
                start.clone(),
                HeaderMap::new(),
                Some(&[]),
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(
                status_error(registry, "POST", &start, resp, format!("upload in {repo}")).await,
            );
        }
        let location = header_str(resp.headers(), LOCATION.as_str()).ok_or_else(|| {
            RegistryError::Protocol {
                registry: registry.to_string(),
                message: "upload started without a Location".into(),
            }
        })?;
        drop(resp);
        let mut put = start.join(&location).map_err(|e| RegistryError::Protocol {
            registry: registry.to_string(),
            message: format!("bad upload Location {location:?}: {e}"),
        })?;
        if put.scheme() == "http" && start.scheme() == "https" {
            return Err(RegistryError::PlainHttpRefused {
                host: put.host_str().unwrap_or("").to_string(),
            });
        }
        put.query_pairs_mut().append_pair("digest", &desc.digest);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let resp = self
            .execute(
                (registry, repo, Access::Push),
                Method::PUT,
                put.clone(),
                headers,
                Some(bytes),
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(
                registry,
                "PUT",
                &put,
                resp,
                format!("upload of {}", desc.digest),
            )
            .await);
        }
        Ok(desc)
    }

    /// PUT a manifest under a tag or digest; returns the `OCI-Subject` header if any.
    pub async fn push_manifest(
        &self,
        registry: &str,
        repo: &str,
        target: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Option<String>, RegistryError> {
        self.put_manifest(registry, repo, target, media_type, bytes, None)
            .await
    }

    /// PUT a manifest, conditional when `precondition` is given (a 412 comes back as
    /// [`RegistryError::Status`] with status 412).
    async fn put_manifest(
        &self,
        registry: &str,
        repo: &str,
        target: &str,
        media_type: &str,
        bytes: &[u8],
        precondition: Option<Precondition<'_>>,
    ) -> Result<Option<String>, RegistryError> {
        let url = self.url(registry, &format!("/v2/{repo}/manifests/{target}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|_| RegistryError::Other {
                registry: registry.to_string(),
                message: format!("invalid media type {media_type:?}"),
            })?,
        );
        match precondition {
            Some(Precondition::Matches(etag)) => {
                if let Ok(v) = HeaderValue::from_str(etag) {
                    headers.insert(reqwest::header::IF_MATCH, v);
                }
            }
            Some(Precondition::Absent) => {
                headers.insert(
                    reqwest::header::IF_NONE_MATCH,
                    HeaderValue::from_static("*"),
                );
            }
            None => {}
        }
        let resp = self
            .execute(
                (registry, repo, Access::Push),
                Method::PUT,
                url.clone(),
                headers,
                Some(bytes),
            )
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(
                status_error(registry, "PUT", &url, resp, format!("manifest {target}")).await,
            );
        }
        Ok(header_str(resp.headers(), "oci-subject"))
    }

    /// GET a manifest by tag or digest, bounded; `None` on 404.
    async fn get_manifest_bytes(
        &self,
        registry: &str,
        repo: &str,
        access: Access,
        target: &str,
        accept: &str,
        limit: u64,
    ) -> Result<Option<(Option<String>, Vec<u8>)>, RegistryError> {
        Ok(self
            .get_manifest_with_etag(registry, repo, access, target, accept, limit)
            .await?
            .map(|(ct, _, bytes)| (ct, bytes)))
    }

    /// [`Self::get_manifest_bytes`] plus the `ETag` the registry sent, if any.
    async fn get_manifest_with_etag(
        &self,
        registry: &str,
        repo: &str,
        access: Access,
        target: &str,
        accept: &str,
        limit: u64,
    ) -> Result<Option<ManifestWithEtag>, RegistryError> {
        let url = self.url(registry, &format!("/v2/{repo}/manifests/{target}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(accept).unwrap_or(HeaderValue::from_static(MANIFEST_ACCEPT)),
        );
        let mut attempt = 0;
        loop {
            let resp = self
                .execute(
                    (registry, repo, access),
                    Method::GET,
                    url.clone(),
                    headers.clone(),
                    None,
                )
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !resp.status().is_success() {
                return Err(status_error(
                    registry,
                    "GET",
                    &url,
                    resp,
                    format!("manifest {target}"),
                )
                .await);
            }
            let ct = header_str(resp.headers(), CONTENT_TYPE.as_str()).map(|c| strip_params(&c));
            let etag = header_str(resp.headers(), reqwest::header::ETAG.as_str());
            match read_bounded(registry, resp, limit, &format!("manifest {target}")).await {
                Ok(bytes) => return Ok(Some((ct, etag, bytes))),
                Err(e) => attempt = self.retry_broken_body(e, attempt).await?,
            }
        }
    }

    /// A GET whose body broke off is sent again (within the retry budget); any other error,
    /// or the last attempt's, is returned. Gives the next attempt number.
    async fn retry_broken_body(
        &self,
        e: RegistryError,
        attempt: u32,
    ) -> Result<u32, RegistryError> {
        if !matches!(e, RegistryError::BodyBroken { .. }) || attempt >= self.options.retries {
            return Err(e);
        }
        tokio::time::sleep(self.backoff(attempt)).await;
        Ok(attempt + 1)
    }

    /// The tag schema index for `subject` (None: absent or not an index).
    async fn get_tag_schema_index(
        &self,
        registry: &str,
        repo: &str,
        access: Access,
        subject_digest: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(self
            .get_tag_schema_index_etag(registry, repo, access, subject_digest)
            .await?
            .0)
    }

    /// The tag schema index and the `ETag` it was served with (for a conditional update).
    async fn get_tag_schema_index_etag(
        &self,
        registry: &str,
        repo: &str,
        access: Access,
        subject_digest: &str,
    ) -> Result<(Option<Vec<u8>>, Option<String>), RegistryError> {
        let tag = manifest::referrers_tag(subject_digest);
        let got = self
            .get_manifest_with_etag(registry, repo, access, &tag, OCI_INDEX, MAX_INDEX_BYTES)
            .await?;
        let Some((ct, etag, bytes)) = got else {
            return Ok((None, None));
        };
        let is_index = ct.as_deref() == Some(OCI_INDEX)
            || serde_json::from_slice::<ImageIndex>(&bytes)
                .is_ok_and(|i| i.media_type.as_deref() == Some(OCI_INDEX));
        // A non-index under the tag is replaced as if absent (conditional on its ETag).
        Ok(if is_index {
            (Some(bytes), etag)
        } else {
            (None, etag)
        })
    }

    /// After a PUT answered `OCI-Subject`: is the Referrers API usable for this registry?
    /// Decided once per registry per run: the first time, `/referrers` must answer an image
    /// index listing the signature just pushed; a registry that does not is treated as having
    /// no usable API (the tag schema is maintained instead).
    async fn referrers_confirm(
        &self,
        registry: &str,
        repo: &str,
        subject_digest: &str,
        signature_digest: &str,
    ) -> bool {
        if let Some(known) = self.referrers_usable(registry) {
            return known;
        }
        // An error here (after retries) also means "not usable": the tag schema is safe.
        let listed = self
            .referrers_api(registry, repo, subject_digest)
            .await
            .ok()
            .flatten()
            .is_some_and(|l| l.iter().any(|d| d.digest == signature_digest));
        self.set_referrers_usable(registry, listed);
        listed
    }

    /// Referrers API: `Ok(None)` when the registry does not support it (404 other than
    /// `NAME_UNKNOWN`, or a non-index answer).
    async fn referrers_api(
        &self,
        registry: &str,
        repo: &str,
        subject_digest: &str,
    ) -> Result<Option<Vec<Descriptor>>, RegistryError> {
        let mut url = self.url(registry, &format!("/v2/{repo}/referrers/{subject_digest}"))?;
        url.query_pairs_mut()
            .append_pair("artifactType", SIGNATURE_ARTIFACT_TYPE);
        let origin = url.origin();
        let mut out = Vec::new();
        for _ in 0..MAX_REFERRERS_PAGES {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_static(OCI_INDEX));
            let resp = self
                .execute(
                    (registry, repo, Access::Pull),
                    Method::GET,
                    url.clone(),
                    headers,
                    None,
                )
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                let body = read_bounded(registry, resp, MAX_ERROR_BYTES, "error")
                    .await
                    .unwrap_or_default();
                return Ok(match classify_referrers_404(&body) {
                    Referrers404::RepositoryMissing => Some(Vec::new()),
                    Referrers404::Unsupported => None,
                });
            }
            if !resp.status().is_success() {
                return Err(status_error(registry, "GET", &url, resp, "referrers".into()).await);
            }
            let ct = header_str(resp.headers(), CONTENT_TYPE.as_str());
            let link = header_str(resp.headers(), LINK.as_str());
            let body = read_bounded(registry, resp, MAX_INDEX_BYTES, "referrers response").await?;
            let Some(page) = parse_referrers_page(ct.as_deref(), &body).map_err(|message| {
                RegistryError::Protocol {
                    registry: registry.to_string(),
                    message,
                }
            })?
            else {
                return Ok(None);
            };
            out.extend(page);
            match link.and_then(|l| next_link(&l, &url)) {
                Some(next) if next.origin() == origin => url = next,
                Some(_) => {
                    return Err(RegistryError::Protocol {
                        registry: registry.to_string(),
                        message: "referrers pagination points to another host".into(),
                    })
                }
                None => return Ok(Some(out)),
            }
        }
        Err(RegistryError::Protocol {
            registry: registry.to_string(),
            message: format!("more than {MAX_REFERRERS_PAGES} pages of referrers"),
        })
    }
}

/// The condition of a conditional manifest PUT. Registries that ignore conditional headers
/// (docker-registry) are covered by reading back after the write.
#[derive(Debug, Clone, Copy)]
enum Precondition<'a> {
    /// `If-Match: <etag>`: only if the tag still holds what we read.
    Matches(&'a str),
    /// `If-None-Match: *`: only if the tag does not exist yet.
    Absent,
}

/// Content type, `ETag` and body of a fetched manifest.
type ManifestWithEtag = (Option<String>, Option<String>, Vec<u8>);

/// Map a refused signature-manifest PUT to an error naming the OCI 1.1 field the registry
/// does not accept. A legacy-form manifest is a plain image manifest apart from `subject`,
/// so a 400/415/422 refusal of it is about `subject`; the artifact-type form also carries
/// `artifactType`, which is named when the registry's message names it.
fn field_rejection(e: RegistryError, form: ManifestForm) -> RegistryError {
    let RegistryError::Status {
        registry,
        status,
        message,
        ..
    } = &e
    else {
        return e;
    };
    if !matches!(status, 400 | 415 | 422) {
        return e;
    }
    let lower = message.to_ascii_lowercase();
    let names_subject = lower.contains("subject");
    let names_artifact_type = lower.contains("artifacttype");
    let field = match form {
        ManifestForm::Legacy => "subject",
        ManifestForm::ArtifactType if names_artifact_type && !names_subject => "artifactType",
        ManifestForm::ArtifactType if names_subject && !names_artifact_type => "subject",
        ManifestForm::ArtifactType => "artifactType or subject",
    };
    let advice = if field == "subject" {
        "the registry does not support OCI 1.1 referrers (`subject`), which Notary signatures need; \
         the tag schema alone cannot help, as the signature manifest itself must name its subject. \
         Upgrade the registry or sign into an OCI layout (--oci-layout) and copy it to a registry that accepts `subject`"
    } else {
        "sign with `--manifest-form legacy` (action input `manifest-form: legacy`): it carries no \
         `artifactType`, and the tag schema lists the signature for registries without the Referrers API"
    };
    RegistryError::FieldRejected {
        registry: registry.clone(),
        field: field.to_string(),
        message: message.clone(),
        advice: advice.to_string(),
    }
}

fn is_manifest_type(ct: &str) -> bool {
    matches!(
        ct,
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_MANIFEST_LIST | ARTIFACT_MANIFEST
    )
}

fn strip_params(ct: &str) -> String {
    ct.split(';').next().unwrap_or("").trim().to_string()
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn retry_after(h: &HeaderMap) -> Option<Duration> {
    header_str(h, RETRY_AFTER.as_str())
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn basic_header(user: &str, pass: &str) -> Option<HeaderValue> {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut v = HeaderValue::from_str(&format!("Basic {enc}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

fn bearer_header(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

/// Read a body, refusing (without reading further) once it passes `limit`.
async fn read_bounded(
    registry: &str,
    mut resp: Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        registry: registry.to_string(),
        what: what.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    loop {
        // A body that ends early (or stalls past the timeout) is refused whole: nothing
        // partial is ever parsed.
        let chunk = resp.chunk().await.map_err(|e| RegistryError::BodyBroken {
            registry: registry.to_string(),
            what: what.to_string(),
            read: out.len() as u64,
            message: error_chain(&e),
        })?;
        let Some(chunk) = chunk else { break };
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// 0–127 ms, from the system RNG.
fn jitter() -> Duration {
    let mut b = [0u8; 1];
    let _ = aws_lc_rs::rand::fill(&mut b);
    Duration::from_millis(u64::from(b[0] & 0x7f))
}

/// `CODE: message` from a distribution error body, or the start of the text.
async fn error_message(resp: Response) -> String {
    let status = resp.status();
    let body = read_bounded("", resp, MAX_ERROR_BYTES, "error")
        .await
        .unwrap_or_default();
    describe_error_body(status, &body)
}

fn describe_error_body(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|i| {
                format!(
                    "{}: {}",
                    i.code.as_deref().unwrap_or("ERROR"),
                    i.message.as_deref().unwrap_or("")
                )
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    }
}

async fn status_error(
    registry: &str,
    method: &str,
    url: &Url,
    resp: Response,
    what: String,
) -> RegistryError {
    let status = resp.status();
    let message = error_message(resp).await;
    let registry = registry.to_string();
    match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            registry,
            what,
            message,
        },
        StatusCode::UNAUTHORIZED => RegistryError::Unauthorized { registry, message },
        StatusCode::FORBIDDEN => RegistryError::Denied { registry, message },
        _ => RegistryError::Status {
            registry,
            method: method.to_string(),
            path: url.path().to_string(),
            status: status.as_u16(),
            message,
        },
    }
}

/// Parse `Bearer realm="…",service="…",scope="…"` (quoted or token values).
fn parse_challenge(h: &str) -> Option<(String, HashMap<String, String>)> {
    let h = h.trim();
    let (kind, rest) = match h.split_once(char::is_whitespace) {
        Some((k, r)) => (k, r),
        None => (h, ""),
    };
    if kind.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
            let mut val = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => val.push(c),
                }
            }
            (val, &q[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        s = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some((kind.to_string(), params))
}

#[derive(Debug, PartialEq, Eq)]
enum Referrers404 {
    /// `NAME_UNKNOWN`: the API exists, the repository does not.
    RepositoryMissing,
    /// Anything else: no referrers API here; use the tag schema.
    Unsupported,
}

fn classify_referrers_404(body: &[u8]) -> Referrers404 {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let name_unknown = v
        .as_ref()
        .and_then(|v| v.get("errors")?.as_array().cloned())
        .is_some_and(|errs| {
            errs.iter()
                .any(|e| e.get("code").and_then(|c| c.as_str()) == Some("NAME_UNKNOWN"))
        });
    if name_unknown {
        Referrers404::RepositoryMissing
    } else {
        Referrers404::Unsupported
    }
}

/// One referrers page → the Notary signature descriptors in it. `Ok(None)`: the answer is
/// not an image index, so the registry does not really implement the API.
///
/// Entries are always filtered here, whether or not the response carries
/// `OCI-Filters-Applied: artifactType`: a server that claims to filter is checked too.
fn parse_referrers_page(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Option<Vec<Descriptor>>, String> {
    if let Some(ct) = content_type {
        if strip_params(ct) != OCI_INDEX {
            return Ok(None);
        }
    }
    // A 200 whose body is not an index (an HTML login page, a proxy's error page) means the
    // API is not really there: the caller falls back to the tag schema.
    let Ok(index) = serde_json::from_slice::<ImageIndex>(body) else {
        return Ok(None);
    };
    if index.media_type.as_deref().is_some_and(|m| m != OCI_INDEX) {
        return Ok(None);
    }
    Ok(Some(
        index
            .manifests
            .into_iter()
            .filter(|d| d.artifact_type.as_deref() == Some(SIGNATURE_ARTIFACT_TYPE))
            .collect(),
    ))
}

/// The `rel="next"` target of a `Link` header, resolved against the current URL.
fn next_link(link: &str, current: &Url) -> Option<Url> {
    for part in link.split(',') {
        let part = part.trim();
        let (target, params) = part.split_once(';').unwrap_or((part, ""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        if is_next {
            return current.join(target).ok();
        }
    }
    None
}

fn dedupe(list: Vec<Descriptor>) -> Vec<Descriptor> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|d| seen.insert(d.digest.clone()))
        .collect()
}

fn check_reference(reference: &Reference) -> Result<(), StoreError> {
    if reference.is_layout() {
        return Err(StoreError::Registry(RegistryError::Other {
            registry: reference.registry.clone(),
            message: format!("{reference} is an OCI layout reference, not a registry reference"),
        }));
    }
    Ok(())
}

#[async_trait]
impl ArtifactStore for RegistryClient {
    async fn resolve(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        check_reference(reference)?;
        Ok(self.resolve_manifest(reference).await?)
    }

    async fn push_signature(
        &self,
        reference: &Reference,
        subject: &Descriptor,
        envelope_media_type: &str,
        envelope: &[u8],
        annotations: BTreeMap<String, String>,
        form: ManifestForm,
    ) -> Result<PushedSignature, StoreError> {
        check_reference(reference)?;
        if !annotations.contains_key(THUMBPRINT_ANNOTATION) {
            return Err(StoreError::Manifest(format!(
                "a signature manifest must carry the {THUMBPRINT_ANNOTATION} annotation"
            )));
        }
        let registry = reference.registry.as_str();
        let repo = reference.repository.as_str();
        let config_type = match form {
            ManifestForm::Legacy => SIGNATURE_ARTIFACT_TYPE,
            ManifestForm::ArtifactType => manifest::EMPTY_CONFIG_MEDIA_TYPE,
        };
        // Every referenced blob must exist in this repository, the 2-byte config included.
        self.push_blob(registry, repo, config_type, EMPTY_CONFIG)
            .await?;
        let env = self
            .push_blob(registry, repo, envelope_media_type, envelope)
            .await?;
        let m = manifest::signature_manifest(subject, env, annotations, form);
        let bytes = serde_json::to_vec(&m).map_err(|e| StoreError::Manifest(e.to_string()))?;
        let desc = Descriptor::of_bytes(OCI_MANIFEST, &bytes);
        let oci_subject = self
            .push_manifest(registry, repo, &desc.digest, OCI_MANIFEST, &bytes)
            .await
            .map_err(|e| field_rejection(e, form))?;
        if oci_subject.as_deref() == Some(subject.digest.as_str())
            && self
                .referrers_confirm(registry, repo, &subject.digest, &desc.digest)
                .await
        {
            return Ok(PushedSignature {
                manifest: desc,
                storage: Storage::ReferrersApi,
                index_retries: 0,
            });
        }
        if oci_subject.is_none() && self.referrers_usable(registry).is_none() {
            // No `OCI-Subject`: the registry does not process `subject` (spec 1.1).
            self.set_referrers_usable(registry, false);
        }
        let entry = m.index_entry(OCI_MANIFEST, &desc.digest, desc.size);
        let tag = manifest::referrers_tag(&subject.digest);
        // Where the registry sends an ETag, writes are conditional (If-Match, or If-None-Match
        // when creating the index) and a 412 means another writer came first. Registries that
        // ignore conditions (docker-registry) are handled by reading back after each write and
        // merging again when another writer replaced our entry.
        let (mut existing, mut etag) = self
            .get_tag_schema_index_etag(registry, repo, Access::Push, &subject.digest)
            .await?;
        let mut read_at = std::time::Instant::now();
        // Seen listed once; a second look after the settle time catches a writer that read
        // the index before our write and replaced it after our first look. Such a writer
        // needs longer than the settle time between its read and its write, so the settle
        // time grows with the slowest read-to-write round we saw (another writer under the
        // same load is about as slow): a fixed 250 ms lost signatures with 16 signers on a
        // loaded machine.
        let mut seen_listed = false;
        let mut slowest_round = Duration::ZERO;
        let mut retries = 0u32;
        // Cleared if the registry answers 412 to `If-None-Match: *` while the tag stays absent
        // (a registry that mishandles it): creation is then unconditional, checked by read-back.
        let mut create_conditionally = true;
        for _ in 0..TAG_SCHEMA_ATTEMPTS {
            let merged = manifest::merge_index_entry(existing.as_deref(), &entry)
                .map_err(StoreError::Manifest)?;
            match merged {
                None if seen_listed || self.options.tag_schema_settle.is_zero() => {
                    return Ok(PushedSignature {
                        manifest: desc,
                        storage: Storage::TagSchema,
                        index_retries: retries,
                    });
                }
                None => {
                    seen_listed = true;
                    let settle = self
                        .options
                        .tag_schema_settle
                        .max(slowest_round.saturating_mul(4))
                        .min(MAX_TAG_SCHEMA_SETTLE);
                    tokio::time::sleep(settle + jitter()).await;
                }
                Some(merged) => {
                    seen_listed = false;
                    let put = self
                        .put_manifest(
                            registry,
                            repo,
                            &tag,
                            OCI_INDEX,
                            &merged,
                            match (&existing, etag.as_deref()) {
                                (_, Some(etag)) => Some(Precondition::Matches(etag)),
                                // Nothing under the tag: two first signers must not both
                                // create the index.
                                (None, None) if create_conditionally => Some(Precondition::Absent),
                                (_, None) => None,
                            },
                        )
                        .await;
                    match put {
                        Ok(_) => slowest_round = slowest_round.max(read_at.elapsed()),
                        // Precondition failed: someone else updated it; re-read and merge.
                        Err(RegistryError::Status { status: 412, .. }) => {
                            retries += 1;
                            let was_absent = existing.is_none() && etag.is_none();
                            tokio::time::sleep(jitter()).await;
                            (existing, etag) = self
                                .get_tag_schema_index_etag(
                                    registry,
                                    repo,
                                    Access::Push,
                                    &subject.digest,
                                )
                                .await?;
                            read_at = std::time::Instant::now();
                            if was_absent && existing.is_none() && etag.is_none() {
                                create_conditionally = false;
                            }
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            (existing, etag) = self
                .get_tag_schema_index_etag(registry, repo, Access::Push, &subject.digest)
                .await?;
            read_at = std::time::Instant::now();
            let lost = !existing
                .as_deref()
                .is_some_and(|b| manifest::index_lists(b, &desc.digest));
            if lost {
                retries += 1;
                // Collided with another writer: retry at a random later moment, merging
                // into a fresh read (never sleep between a read and the write built on it).
                tokio::time::sleep(jitter() * 2).await;
                (existing, etag) = self
                    .get_tag_schema_index_etag(registry, repo, Access::Push, &subject.digest)
                    .await?;
                read_at = std::time::Instant::now();
            }
        }
        Err(StoreError::Registry(RegistryError::Other {
            registry: registry.to_string(),
            message: format!(
                "the referrers index {repo}:{tag} kept losing the new signature {} to concurrent writers; the signature manifest is pushed, sign again to list it",
                desc.digest
            ),
        }))
    }

    async fn list_signatures(
        &self,
        reference: &Reference,
        subject: &Descriptor,
    ) -> Result<Vec<Descriptor>, StoreError> {
        check_reference(reference)?;
        let registry = reference.registry.as_str();
        let repo = reference.repository.as_str();
        let known = self.referrers_usable(registry);
        let mut found = Vec::new();
        if known != Some(false) {
            match self.referrers_api(registry, repo, &subject.digest).await? {
                Some(list) if known == Some(true) => return Ok(dedupe(list)),
                // Not yet confirmed this run: a registry can answer an index that omits
                // signatures (a broken or lagging implementation), so the tag schema, which
                // signers fell back to, is read as well.
                Some(list) => found = list,
                None => self.set_referrers_usable(registry, false),
            }
        }
        let Some(bytes) = self
            .get_tag_schema_index(registry, repo, Access::Pull, &subject.digest)
            .await?
        else {
            return Ok(dedupe(found));
        };
        let page =
            parse_referrers_page(Some(OCI_INDEX), &bytes).map_err(|m| RegistryError::Protocol {
                registry: registry.to_string(),
                message: m,
            })?;
        found.extend(page.unwrap_or_default());
        Ok(dedupe(found))
    }

    async fn fetch_manifest(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
    ) -> Result<Vec<u8>, StoreError> {
        check_reference(reference)?;
        let registry = reference.registry.as_str();
        if descriptor.size > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                registry: registry.to_string(),
                what: format!("manifest {}", descriptor.digest),
                limit: MAX_MANIFEST_BYTES,
            }
            .into());
        }
        super::reference::validate_digest(&descriptor.digest).map_err(StoreError::Manifest)?;
        let accept = format!("{}, {MANIFEST_ACCEPT}", descriptor.media_type);
        let got = self
            .get_manifest_bytes(
                registry,
                &reference.repository,
                Access::Pull,
                &descriptor.digest,
                &accept,
                MAX_MANIFEST_BYTES,
            )
            .await?;
        let Some((_, bytes)) = got else {
            return Err(RegistryError::NotFound {
                registry: registry.to_string(),
                what: format!("manifest {} in {}", descriptor.digest, reference.repository),
                message: "HTTP 404".into(),
            }
            .into());
        };
        verify_content(descriptor, &bytes)?;
        Ok(bytes)
    }

    async fn fetch_blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        max_bytes: u64,
    ) -> Result<Vec<u8>, StoreError> {
        check_reference(reference)?;
        let registry = reference.registry.as_str();
        let repo = reference.repository.as_str();
        if descriptor.size > max_bytes {
            return Err(RegistryError::TooLarge {
                registry: registry.to_string(),
                what: format!("blob {} ({} bytes)", descriptor.digest, descriptor.size),
                limit: max_bytes,
            }
            .into());
        }
        super::reference::validate_digest(&descriptor.digest).map_err(StoreError::Manifest)?;
        let url = self.url(registry, &format!("/v2/{repo}/blobs/{}", descriptor.digest))?;
        let mut attempt = 0;
        let bytes = loop {
            let resp = self
                .execute(
                    (registry, repo, Access::Pull),
                    Method::GET,
                    url.clone(),
                    HeaderMap::new(),
                    None,
                )
                .await?;
            if !resp.status().is_success() {
                return Err(status_error(
                    registry,
                    "GET",
                    &url,
                    resp,
                    format!("blob {} in {repo}", descriptor.digest),
                )
                .await
                .into());
            }
            let what = format!("blob {}", descriptor.digest);
            match read_bounded(registry, resp, descriptor.size, &what).await {
                Ok(bytes) => break bytes,
                Err(e) => attempt = self.retry_broken_body(e, attempt).await?,
            }
        };
        verify_content(descriptor, &bytes)?;
        Ok(bytes)
    }
}

/// rustls client configuration: aws-lc-rs, webpki roots plus the user's PEM roots.
fn tls_config(extra_pem: &[Vec<u8>]) -> Result<rustls::ClientConfig, RegistryError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (i, pem) in extra_pem.iter().enumerate() {
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                RegistryError::Tls(format!(
                    "extra CA certificate #{}: unreadable PEM: {e}",
                    i + 1
                ))
            })?;
            roots
                .add(cert)
                .map_err(|e| RegistryError::Tls(format!("extra CA certificate #{}: {e}", i + 1)))?;
            n += 1;
        }
        if n == 0 {
            return Err(RegistryError::Tls(format!(
                "extra CA certificate #{}: no PEM CERTIFICATE block found",
                i + 1
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_rule() {
        let rule = PlainHttpRule {
            plain_http: true,
            insecure_hosts: vec!["reg.internal:5000".into()],
        };
        assert!(rule.scheme_is_http("127.0.0.1:5000").unwrap());
        assert!(rule.scheme_is_http("127.9.9.9").unwrap());
        assert!(rule.scheme_is_http("localhost:8080").unwrap());
        assert!(rule.scheme_is_http("[::1]:5000").unwrap());
        assert!(rule.scheme_is_http("reg.internal:5000").unwrap());
        let e = rule.scheme_is_http("registry.example.invalid").unwrap_err();
        assert!(e.to_string().contains("refusing plain HTTP"), "{e}");
        assert!(rule.scheme_is_http("128.0.0.1").is_err());
        let tls = PlainHttpRule {
            plain_http: false,
            insecure_hosts: vec![],
        };
        assert!(!tls.scheme_is_http("127.0.0.1:5000").unwrap());
        assert!(!tls.scheme_is_http("ghcr.io").unwrap());
        assert!(!tls.allows_http_url(&Url::parse("http://127.0.0.1/").unwrap()));
        assert!(rule.allows_http_url(&Url::parse("http://[::1]:80/").unwrap()));
        assert!(!rule.allows_http_url(&Url::parse("http://evil.example/").unwrap()));
    }

    #[test]
    fn challenges() {
        let (k, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(k, "Bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (k, p) = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(
            (k.as_str(), p["realm"].as_str()),
            ("Basic", "Registry Realm")
        );
        let (_, p) = parse_challenge(r#"Bearer realm=https://x/t, service=svc"#).unwrap();
        assert_eq!(
            (p["realm"].as_str(), p["service"].as_str()),
            ("https://x/t", "svc")
        );
        assert!(parse_challenge("").is_none());
    }

    const PAGE: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"artifactType":"application/vnd.cncf.notary.signature","annotations":{"io.cncf.notary.x509chain.thumbprint#S256":"[\"ab\"]"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":2,"artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json"},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":3}
    ]}"#;

    #[test]
    fn referrers_page_filters_client_side() {
        let got = parse_referrers_page(Some(OCI_INDEX), PAGE.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].digest.starts_with("sha256:1111"));
        assert_eq!(
            got[0].annotations.as_ref().unwrap()[THUMBPRINT_ANNOTATION],
            "[\"ab\"]"
        );
        // Content-Type parameters are tolerated; a non-index answer means "no API".
        assert!(parse_referrers_page(
            Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
            PAGE.as_bytes()
        )
        .unwrap()
        .is_some());
        assert!(parse_referrers_page(Some("text/html"), PAGE.as_bytes())
            .unwrap()
            .is_none());
        // A 200 with an HTML page or a JSON document that is not an index: no usable API.
        assert!(parse_referrers_page(Some(OCI_INDEX), b"<html>login</html>")
            .unwrap()
            .is_none());
        assert!(parse_referrers_page(None, b"<html>login</html>")
            .unwrap()
            .is_none());
        assert!(parse_referrers_page(
            None,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn refused_signature_manifests_name_the_field() {
        let refused = |status: u16, message: &str| RegistryError::Status {
            registry: "reg.example".into(),
            method: "PUT".into(),
            path: "/v2/app/manifests/sha256:00".into(),
            status,
            message: message.into(),
        };
        let field = |e: RegistryError| match e {
            RegistryError::FieldRejected { field, .. } => Some(field),
            _ => None,
        };
        // The legacy form differs from a plain image manifest only by `subject`.
        let e = field_rejection(
            refused(400, "MANIFEST_INVALID: manifest invalid"),
            ManifestForm::Legacy,
        );
        assert!(e.to_string().contains("reg.example") && e.to_string().contains("--oci-layout"));
        assert_eq!(field(e).as_deref(), Some("subject"));
        let e = field_rejection(
            refused(400, "MANIFEST_INVALID: unknown field artifactType"),
            ManifestForm::ArtifactType,
        );
        assert!(e.to_string().contains("--manifest-form legacy"));
        assert_eq!(field(e).as_deref(), Some("artifactType"));
        let e = field_rejection(refused(415, "unsupported"), ManifestForm::ArtifactType);
        assert_eq!(field(e).as_deref(), Some("artifactType or subject"));
        // Not a refusal of the content: left as it was.
        assert!(field(field_rejection(refused(500, "boom"), ManifestForm::Legacy)).is_none());
        assert!(field(field_rejection(
            refused(403, "denied"),
            ManifestForm::Legacy
        ))
        .is_none());
    }

    #[test]
    fn referrers_404_kinds() {
        assert_eq!(
            classify_referrers_404(br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#),
            Referrers404::RepositoryMissing
        );
        assert_eq!(
            classify_referrers_404(b"404 page not found\n"),
            Referrers404::Unsupported
        );
        assert_eq!(
            classify_referrers_404(br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
            Referrers404::Unsupported
        );
    }

    #[test]
    fn link_pagination() {
        let cur = Url::parse("https://r.example/v2/a/referrers/sha256:1?artifactType=x").unwrap();
        let n = next_link(
            r#"</v2/a/referrers/sha256:1?n=10&last=abc>; rel="next""#,
            &cur,
        )
        .unwrap();
        assert_eq!(
            n.as_str(),
            "https://r.example/v2/a/referrers/sha256:1?n=10&last=abc"
        );
        let n = next_link(
            r#"<https://r.example/prev>; rel="prev", <https://r.example/next>; rel=next"#,
            &cur,
        )
        .unwrap();
        assert_eq!(n.path(), "/next");
        assert!(next_link(r#"<https://r.example/prev>; rel="prev""#, &cur).is_none());
        assert!(next_link("garbage", &cur).is_none());
    }

    #[test]
    fn error_bodies() {
        let m = describe_error_body(
            StatusCode::BAD_REQUEST,
            br#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        );
        assert_eq!(m, "MANIFEST_BLOB_UNKNOWN: blob unknown to registry");
        assert_eq!(
            describe_error_body(StatusCode::NOT_FOUND, b""),
            "HTTP 404 Not Found"
        );
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credential::Bearer("tok".into())).contains("tok"));
    }

    #[test]
    fn bad_extra_ca_is_a_clear_error() {
        let e = tls_config(&[b"not a pem".to_vec()]).unwrap_err();
        assert!(e.to_string().contains("no PEM CERTIFICATE"), "{e}");
    }

    #[tokio::test]
    async fn http_to_non_loopback_is_refused_before_connecting() {
        let client = RegistryClient::new(RegistryOptions {
            plain_http: true,
            use_docker_config: false,
            ..Default::default()
        })
        .unwrap();
        let r = Reference::parse("registry.example.invalid/app:v1").unwrap();
        let e = client.resolve(&r).await.unwrap_err();
        assert!(e.to_string().contains("refusing plain HTTP"), "{e}");
        assert_eq!(client.request_count(), 0);
    }
}
