//! Bounded HTTP fetches with a per-run single-flight cache and an optional disk cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::OnceCell;

pub(crate) const OCSP_TIMEOUT: Duration = Duration::from_secs(2);
pub(crate) const CRL_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const OCSP_MAX_BYTES: usize = 20 * 1024;
pub(crate) const CRL_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Why a fetch produced no usable bytes. Cloneable so one failure can be shared by every
/// caller waiting on the same cache entry.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{0} is not an http:// URL (only plain HTTP is used for revocation data)")]
    Scheme(String),
    #[error("no answer from {url} within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the answer from {url} exceeds {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("request to {url} failed: {reason}")]
    Http { url: String, reason: String },
}

/// What the cache keys on: OCSP answers per (responder URL, request), CRLs per URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Ocsp { url: String, request: Vec<u8> },
    Crl { url: String },
}

impl Key {
    fn disk_name(&self) -> String {
        let (kind, material) = match self {
            Key::Ocsp { url, request } => {
                let mut m = url.as_bytes().to_vec();
                m.push(0);
                m.extend_from_slice(request);
                ("ocsp", m)
            }
            Key::Crl { url } => ("crl", url.as_bytes().to_vec()),
        };
        format!("{}.{kind}", crate::crypto::sha256_hex(&material))
    }
}

/// Fetched bytes and whether they came from the disk cache (then they are not written back).
#[derive(Debug)]
pub(crate) struct Fetched {
    pub bytes: Vec<u8>,
    pub from_disk: bool,
}

pub(crate) type FetchResult = Result<Arc<Fetched>, FetchError>;
type Cell = Arc<OnceCell<FetchResult>>;

/// Reads the `nextUpdate` of cached bytes; the disk cache only serves entries still fresh.
pub(crate) type Freshness = fn(&[u8]) -> Option<SystemTime>;

pub(crate) type UrlRewrite = Arc<dyn Fn(&str) -> String + Send + Sync>;

pub(crate) struct Fetcher {
    client: reqwest::Client,
    rewrite: Option<UrlRewrite>,
    cache_dir: Option<PathBuf>,
    cells: Mutex<HashMap<Key, Cell>>,
    network_fetches: AtomicU64,
}

impl Fetcher {
    pub(crate) fn new(client: reqwest::Client) -> Fetcher {
        Fetcher {
            client,
            rewrite: None,
            cache_dir: None,
            cells: Mutex::new(HashMap::new()),
            network_fetches: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_rewrite(&mut self, rewrite: UrlRewrite) {
        self.rewrite = Some(rewrite);
    }

    pub(crate) fn set_cache_dir(&mut self, dir: PathBuf) {
        self.cache_dir = Some(dir);
    }

    pub(crate) fn network_fetches(&self) -> u64 {
        self.network_fetches.load(Ordering::SeqCst)
    }

    /// The bytes for `key`, fetched at most once per checker: concurrent callers for the same
    /// key wait on the same fetch, and failures are shared too (a dead server is not asked
    /// again within the run).
    pub(crate) async fn get(&self, key: &Key, fresh: Freshness) -> FetchResult {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
            cells.entry(key.clone()).or_default().clone()
        };
        cell.get_or_init(|| self.load(key, fresh)).await.clone()
    }

    async fn load(&self, key: &Key, fresh: Freshness) -> FetchResult {
        if let Some(bytes) = self.read_disk(key, fresh).await {
            return Ok(Arc::new(Fetched {
                bytes,
                from_disk: true,
            }));
        }
        self.network_fetches.fetch_add(1, Ordering::SeqCst);
        let bytes = match key {
            Key::Ocsp { url, request } => self.ocsp(url, request).await?,
            Key::Crl { url } => {
                let url = self.rewritten(url)?;
                let req = self.client.get(&url);
                self.send(req, &url, CRL_TIMEOUT, CRL_MAX_BYTES).await?
            }
        };
        Ok(Arc::new(Fetched {
            bytes,
            from_disk: false,
        }))
    }

    fn rewritten(&self, url: &str) -> Result<String, FetchError> {
        let url = match &self.rewrite {
            Some(f) => f(url),
            None => url.to_string(),
        };
        match url::Url::parse(&url) {
            Ok(u) if u.scheme() == "http" => Ok(url),
            _ => Err(FetchError::Scheme(url)),
        }
    }

    async fn ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, FetchError> {
        let url = self.rewritten(url)?;
        let req = match ocsp_get_url(&url, request) {
            Some(get) => self.client.get(get),
            None => self
                .client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
                .body(request.to_vec()),
        };
        self.send(req, &url, OCSP_TIMEOUT, OCSP_MAX_BYTES).await
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        timeout: Duration,
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let timed_out = || FetchError::Timeout {
            url: url.to_string(),
            secs: timeout.as_secs(),
        };
        let work = async {
            let mut resp = req.send().await.map_err(|e| classify(e, url, timeout))?;
            let status = resp.status();
            if status != reqwest::StatusCode::OK {
                return Err(FetchError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
            let too_large = || FetchError::TooLarge {
                url: url.to_string(),
                limit,
            };
            if resp.content_length().is_some_and(|n| n > limit as u64) {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| classify(e, url, timeout))? {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        // The whole exchange, body included, is bounded, not only the connection.
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| timed_out())?
    }

    async fn read_disk(&self, key: &Key, fresh: Freshness) -> Option<Vec<u8>> {
        let path = self.cache_dir.as_ref()?.join(key.disk_name());
        let meta = tokio::fs::symlink_metadata(&path).await.ok()?;
        let limit = match key {
            Key::Ocsp { .. } => OCSP_MAX_BYTES,
            Key::Crl { .. } => CRL_MAX_BYTES,
        };
        if !meta.is_file() || meta.len() > limit as u64 {
            return None;
        }
        let bytes = tokio::fs::read(&path).await.ok()?;
        match fresh(&bytes) {
            Some(next_update) if next_update > SystemTime::now() => Some(bytes),
            _ => None,
        }
    }

    /// Store bytes that validated, so a later run can skip the network until nextUpdate.
    /// Failing to write the cache is not an error of the check.
    pub(crate) async fn persist(&self, key: &Key, fetched: &Fetched) {
        let Some(dir) = &self.cache_dir else { return };
        if fetched.from_disk {
            return;
        }
        if tokio::fs::create_dir_all(dir).await.is_err() {
            return;
        }
        let path = dir.join(key.disk_name());
        let tmp = dir.join(format!("{}.tmp{}", key.disk_name(), std::process::id()));
        if tokio::fs::write(&tmp, &fetched.bytes).await.is_ok()
            && tokio::fs::rename(&tmp, &path).await.is_err()
        {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
    }

    /// Drop a disk entry that failed validation so it is not served again.
    pub(crate) async fn evict(&self, key: &Key, fetched: &Fetched) {
        if let (Some(dir), true) = (&self.cache_dir, fetched.from_disk) {
            let _ = tokio::fs::remove_file(dir.join(key.disk_name())).await;
        }
    }
}

/// The GET URL for an OCSP request (RFC 6960 A.1), or None when POST must be used: GET
/// answers are cacheable by proxies, and notation switches to POST from 255 bytes of
/// encoded request on.
pub(crate) fn ocsp_get_url(url: &str, request: &[u8]) -> Option<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(request);
    let escaped: String = url::form_urlencoded::byte_serialize(b64.as_bytes()).collect();
    if b64.len() >= 255 || escaped.len() >= 255 {
        return None;
    }
    Some(if url.ends_with('/') {
        format!("{url}{escaped}")
    } else {
        format!("{url}/{escaped}")
    })
}

fn classify(e: reqwest::Error, url: &str, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout {
            url: url.to_string(),
            secs: timeout.as_secs(),
        }
    } else {
        FetchError::Http {
            url: url.to_string(),
            reason: error_chain(&e),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_requests_use_get_with_escaped_base64() {
        // 0xfb 0xff encodes to "+/8=", every character of which must be escaped.
        let url = ocsp_get_url("http://ocsp.example/x", &[0xfb, 0xff]).unwrap();
        assert_eq!(url, "http://ocsp.example/x/%2B%2F8%3D");
        let url = ocsp_get_url("http://ocsp.example/", &[0, 0, 0]).unwrap();
        assert_eq!(url, "http://ocsp.example/AAAA");
    }

    #[test]
    fn large_requests_use_post() {
        // 190 bytes → 256 base64 characters.
        assert!(ocsp_get_url("http://o", &[0u8; 190]).is_none());
        // 189 bytes → 252 characters, no escaping needed for zeros.
        assert!(ocsp_get_url("http://o", &[0u8; 189]).is_some());
        // Short enough in base64 but too long once '/' and '+' are escaped.
        assert!(ocsp_get_url("http://o", &[0xff; 150]).is_none());
    }

    #[test]
    fn disk_names_separate_kinds_and_keys() {
        let a = Key::Crl {
            url: "http://a".into(),
        }
        .disk_name();
        let b = Key::Ocsp {
            url: "http://a".into(),
            request: vec![],
        }
        .disk_name();
        assert_ne!(a, b);
        assert!(a.ends_with(".crl") && b.ends_with(".ocsp"));
    }
}
