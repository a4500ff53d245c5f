//! HTTP plumbing shared by the clients that talk to token endpoints, CAs and key services
//! (OIDC, Fulcio, Azure, AWS, TSA): one TLS configuration, one scheme rule, one bounded read,
//! so none of them can drift into trusting more than the others.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0}")]
    Client(String),
    #[error("{url}: {why}")]
    InsecureUrl { url: String, why: &'static str },
    #[error("the answer from {what} is larger than {limit} bytes; refused")]
    TooLarge { what: String, limit: u64 },
    #[error("reading the answer from {what}: {message}")]
    Read { what: String, message: String },
}

/// A reqwest client on rustls (aws-lc-rs) trusting the webpki roots, with request and connect
/// timeouts and no redirects: every caller here posts credentials, and a redirect would carry
/// them (or turn a POST into a GET) to a place the user never named.
pub fn https_client(timeout: Duration) -> Result<reqwest::Client, NetError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(crate::signing_agent())
        .build()
        .map_err(|e| NetError::Client(e.to_string()))
}

/// Parse `url` and require https, allowing plain http only to a loopback address (a local
/// test service or a sidecar), the same rule the registry client applies.
pub fn secure_url(url: &str) -> Result<Url, NetError> {
    let insecure = |why| NetError::InsecureUrl {
        url: url.to_string(),
        why,
    };
    let parsed = Url::parse(url).map_err(|_| insecure("not a valid URL"))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback_host(&parsed) => Ok(parsed),
        "http" => Err(insecure(
            "plain http is allowed only to a loopback address; use https",
        )),
        _ => Err(insecure("only https URLs are supported")),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Read a response body, refusing (without reading further) once it passes `limit`.
pub async fn read_bounded(
    mut resp: reqwest::Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, NetError> {
    let too_large = || NetError::TooLarge {
        what: what.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| NetError::Read {
        what: what.to_string(),
        message: e.without_url().to_string(),
    })? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_rule() {
        assert!(secure_url("https://fulcio.sigstore.dev").is_ok());
        assert!(secure_url("http://127.0.0.1:8080/x").is_ok());
        assert!(secure_url("http://localhost:8080/x").is_ok());
        assert!(secure_url("http://[::1]:8080/x").is_ok());
        assert!(secure_url("http://fulcio.sigstore.dev").is_err());
        assert!(secure_url("ftp://127.0.0.1/").is_err());
        assert!(secure_url("not a url").is_err());
    }
}
