//! Certificate revocation checking for signing and timestamping chains (digest §8): OCSP
//! first, CRL as the fallback, with a per-run cache and an optional disk cache.
//!
//! Parsing uses RustCrypto's `x509-cert` (CRLs) and `x509-ocsp` (requests/responses). What is
//! hand-written here, and why:
//! - OCSP response checks (signature, responder authorisation per RFC 6960 §4.2.2.2, CertID
//!   match, thisUpdate/nextUpdate freshness): `x509-ocsp` models the structures only and
//!   calls itself not production-ready.
//! - CRL signature, issuer, version, freshness, critical-extension and delta-CRL checks:
//!   `x509-cert` has the types but no validation. `rustls-webpki` validates CRLs but not with
//!   notation's rules (v1 refused, nextUpdate required, every distribution point must verify,
//!   certificateHold/removeFromCRL, invalidityDate vs. authentic signing time) and has no
//!   OCSP at all.
//! - Signature verification of CRLs, OCSP responses and chain links maps X.509 algorithm
//!   identifiers (RSA PKCS#1 v1.5, RSA-PSS, ECDSA) onto aws-lc-rs (`sig`); CAs sign with
//!   PKCS#1 v1.5, which the Notary leaf algorithm table deliberately lacks.
//! - Fetching is plain `reqwest` with notation's limits (http:// only, OCSP 2 s / 20 KiB,
//!   CRL 5 s / 32 MiB, whole-exchange timeouts, streamed size bounds).

mod crl;
mod fetch;
mod ocsp;
mod sig;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use der::Encode;

use crate::x509::Certificate;
use fetch::{FetchError, Fetcher, Key};

/// Clock skew tolerated for thisUpdate of OCSP responses and CRLs.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Revocation status of one certificate or of a whole chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Not revoked (or nothing to check: no OCSP responder and no CRL distribution point).
    Good,
    Revoked,
    /// Could not be determined; notation treats this as a failure too.
    Unknown,
}

impl fmt::Display for RevocationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevocationStatus::Good => "not revoked",
            RevocationStatus::Revoked => "revoked",
            RevocationStatus::Unknown => "revocation status unknown",
        })
    }
}

/// Where a status came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationSource {
    Ocsp { url: String },
    Crl { url: String },
}

impl fmt::Display for RevocationSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevocationSource::Ocsp { url } => write!(f, "OCSP {url}"),
            RevocationSource::Crl { url } => write!(f, "CRL {url}"),
        }
    }
}

/// The outcome for one certificate of the chain.
#[derive(Debug, Clone)]
pub struct CertRevocation {
    /// Position in the chain (0 = leaf).
    pub index: usize,
    pub subject: String,
    pub status: RevocationStatus,
    /// The answer the status rests on; `None` when the certificate names no revocation
    /// service or when no answer could be obtained at all.
    pub source: Option<RevocationSource>,
    /// Why the status is unknown, or when/why the certificate was revoked.
    pub detail: Option<String>,
    /// When OCSP gave no definite answer and the CRL was used instead: why OCSP failed.
    pub ocsp_fallback: Option<String>,
}

impl fmt::Display for CertRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate #{} ({}): {}",
            self.index + 1,
            self.subject,
            self.status
        )?;
        if let Some(src) = &self.source {
            write!(f, " [{src}]")?;
        }
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// The outcome for a chain: revoked if any certificate is, else unknown if any is, else good.
#[derive(Debug, Clone)]
pub struct ChainRevocation {
    pub status: RevocationStatus,
    /// One entry per checked certificate (every certificate but the root), leaf first.
    /// Empty when the chain could not be checked at all (see `detail`).
    pub certificates: Vec<CertRevocation>,
    /// Set when the chain itself was unusable for revocation checking.
    pub detail: Option<String>,
}

impl ChainRevocation {
    /// The entries that made the chain not good, for messages.
    pub fn problems(&self) -> impl Iterator<Item = &CertRevocation> {
        self.certificates
            .iter()
            .filter(|c| c.status != RevocationStatus::Good)
    }

    /// Log-worthy notes: OCSP failures that led to a CRL fallback.
    pub fn fallback_notes(&self) -> Vec<String> {
        self.certificates
            .iter()
            .filter_map(|c| {
                c.ocsp_fallback.as_ref().map(|why| {
                    format!(
                        "OCSP check failed for certificate #{} ({}) and fell back to the CRL: {why}",
                        c.index + 1,
                        c.subject
                    )
                })
            })
            .collect()
    }
}

impl fmt::Display for ChainRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "certificate chain: {}", self.status)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        for c in self.problems() {
            write!(f, "; {c}")?;
        }
        Ok(())
    }
}

/// Problems setting up a checker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    #[error("cannot build the HTTP client for revocation checks: {0}")]
    Client(String),
}

/// Checks certificate chains against OCSP responders and CRLs. One checker is meant to live
/// for one run: it fetches each OCSP answer and each CRL at most once, and remembers
/// failures too, so a dead server costs one timeout per run rather than one per signature.
pub struct RevocationChecker {
    fetcher: Fetcher,
}

impl fmt::Debug for RevocationChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationChecker")
            .field("fetch_count", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

impl RevocationChecker {
    pub fn new() -> Result<RevocationChecker, RevocationError> {
        // Only http:// is ever fetched, but reqwest is built with rustls; give it an explicit
        // aws-lc-rs config so no process-wide crypto provider is required.
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| RevocationError::Client(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .user_agent(crate::signing_agent())
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if attempt.url().scheme() != "http" {
                    attempt.error("redirect away from http:// refused")
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| RevocationError::Client(e.to_string()))?;
        Ok(RevocationChecker {
            fetcher: Fetcher::new(client),
        })
    }

    /// Keep validated CRLs and OCSP responses in `dir` and reuse them until their
    /// nextUpdate. Cached data is re-validated (signature, issuer, freshness) on every use.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> RevocationChecker {
        self.fetcher.set_cache_dir(dir.into());
        self
    }

    /// Rewrite every OCSP/CRL URL before it is fetched. For tests and for mirrors of
    /// revocation services; the rewritten URL must still be http://.
    pub fn with_url_rewrite(
        mut self,
        rewrite: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> RevocationChecker {
        self.fetcher.set_rewrite(Arc::new(rewrite));
        self
    }

    /// Network fetches made so far (cache hits, in memory or on disk, do not count).
    pub fn fetch_count(&self) -> u64 {
        self.fetcher.network_fetches()
    }

    /// Check every certificate of `chain` (leaf first, root last) except the root against
    /// its issuer, the next certificate. `authentic_signing_time` is the signingAuthority
    /// scheme's authentic signing time (None for notary.x509): a revocation whose
    /// invalidityDate lies after it does not count.
    pub async fn check_chain(
        &self,
        chain: &[Certificate],
        authentic_signing_time: Option<SystemTime>,
    ) -> ChainRevocation {
        if chain.is_empty() {
            return ChainRevocation {
                status: RevocationStatus::Unknown,
                certificates: Vec::new(),
                detail: Some("unable to check revocation: the certificate chain is empty".into()),
            };
        }
        if let Err(e) = check_links(chain) {
            return ChainRevocation {
                status: RevocationStatus::Unknown,
                certificates: Vec::new(),
                detail: Some(format!("unable to check revocation: invalid chain: {e}")),
            };
        }
        let now = SystemTime::now();
        let checks = chain
            .windows(2)
            .enumerate()
            .map(|(i, pair)| self.check_cert(i, &pair[0], &pair[1], now, authentic_signing_time));
        let certificates = futures::future::join_all(checks).await;
        let status = if certificates
            .iter()
            .any(|c| c.status == RevocationStatus::Revoked)
        {
            RevocationStatus::Revoked
        } else if certificates
            .iter()
            .any(|c| c.status == RevocationStatus::Unknown)
        {
            RevocationStatus::Unknown
        } else {
            RevocationStatus::Good
        };
        ChainRevocation {
            status,
            certificates,
            detail: None,
        }
    }

    async fn check_cert(
        &self,
        index: usize,
        cert: &Certificate,
        issuer: &Certificate,
        now: SystemTime,
        signing_time: Option<SystemTime>,
    ) -> CertRevocation {
        let mut out = CertRevocation {
            index,
            subject: subject_of(cert),
            status: RevocationStatus::Unknown,
            source: None,
            detail: None,
            ocsp_fallback: None,
        };
        let (ocsp_urls, cdps) = match (crl::ocsp_urls(cert), crl::distribution_points(cert)) {
            (Ok(o), Ok(c)) => (o, c),
            (Err(e), _) | (_, Err(e)) => {
                out.detail = Some(e);
                return out;
            }
        };
        if ocsp_urls.is_empty() && cdps.is_empty() {
            out.status = RevocationStatus::Good;
            out.detail =
                Some("no OCSP responder or CRL distribution point; treated as not revoked".into());
            return out;
        }
        if !ocsp_urls.is_empty() {
            let (status, source, detail) = self
                .check_ocsp(cert, issuer, &ocsp_urls, now, signing_time)
                .await;
            if status != RevocationStatus::Unknown || cdps.is_empty() {
                out.status = status;
                out.source = source;
                out.detail = detail;
                return out;
            }
            out.ocsp_fallback = detail;
        }
        let (status, source, detail) = self
            .check_crls(cert, issuer, &cdps, now, signing_time)
            .await;
        out.status = status;
        out.source = source;
        out.detail = detail;
        out
    }

    async fn check_ocsp(
        &self,
        cert: &Certificate,
        issuer: &Certificate,
        urls: &[String],
        now: SystemTime,
        signing_time: Option<SystemTime>,
    ) -> (RevocationStatus, Option<RevocationSource>, Option<String>) {
        let id = match ocsp::cert_id(cert, issuer) {
            Ok(id) => id,
            Err(e) => {
                return (
                    RevocationStatus::Unknown,
                    None,
                    Some(format!("cannot build the OCSP request: {e}")),
                )
            }
        };
        let request = match ocsp::request(&id) {
            Ok(r) => r,
            Err(e) => {
                return (
                    RevocationStatus::Unknown,
                    None,
                    Some(format!("cannot build the OCSP request: {e}")),
                )
            }
        };
        let mut errors = Vec::new();
        for url in urls {
            let source = Some(RevocationSource::Ocsp { url: url.clone() });
            let key = Key::Ocsp {
                url: url.clone(),
                request: request.clone(),
            };
            let fetched = match self.fetcher.get(&key, ocsp::next_update).await {
                Ok(f) => f,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            match ocsp::evaluate(&fetched.bytes, &id, issuer, now, signing_time) {
                Err(e) => {
                    self.fetcher.evict(&key, &fetched).await;
                    errors.push(format!("OCSP response from {url}: {e}"));
                }
                Ok(status) => {
                    self.fetcher.persist(&key, &fetched).await;
                    // A valid answer is definitive for OCSP, "unknown" included.
                    return match status {
                        ocsp::OcspStatus::Good => (RevocationStatus::Good, source, None),
                        ocsp::OcspStatus::Unknown => (
                            RevocationStatus::Unknown,
                            source,
                            Some(format!(
                                "the OCSP responder {url} does not know the certificate"
                            )),
                        ),
                        ocsp::OcspStatus::Revoked { at, reason } => (
                            RevocationStatus::Revoked,
                            source,
                            Some(revoked_detail(at, reason)),
                        ),
                    };
                }
            }
        }
        (RevocationStatus::Unknown, None, Some(errors.join("; ")))
    }

    async fn check_crls(
        &self,
        cert: &Certificate,
        issuer: &Certificate,
        cdps: &[Vec<String>],
        now: SystemTime,
        signing_time: Option<SystemTime>,
    ) -> (RevocationStatus, Option<RevocationSource>, Option<String>) {
        let serial = cert
            .parsed()
            .tbs_certificate
            .serial_number
            .as_bytes()
            .to_vec();
        let mut last_source = None;
        for (n, uris) in cdps.iter().enumerate() {
            let http: Vec<&String> = uris.iter().filter(|u| u.starts_with("http://")).collect();
            if http.is_empty() {
                return (
                    RevocationStatus::Unknown,
                    None,
                    Some(format!(
                        "CRL distribution point #{} has no http:// URL ({})",
                        n + 1,
                        uris.join(", ")
                    )),
                );
            }
            // Several URIs in one distribution point name the same CRL: the first that
            // validates is enough; every distribution point must yield one.
            let mut errors = Vec::new();
            let mut decided = None;
            for url in http {
                match self
                    .one_crl(url, cert, issuer, &serial, now, signing_time)
                    .await
                {
                    Ok(status) => {
                        decided = Some((url.clone(), status));
                        break;
                    }
                    Err(e) => errors.push(format!("CRL {url}: {e}")),
                }
            }
            let Some((url, status)) = decided else {
                return (RevocationStatus::Unknown, None, Some(errors.join("; ")));
            };
            let source = Some(RevocationSource::Crl { url });
            if let crl::EntryStatus::Revoked { at, reason } = status {
                return (
                    RevocationStatus::Revoked,
                    source,
                    Some(revoked_detail(at, reason)),
                );
            }
            last_source = source;
        }
        (RevocationStatus::Good, last_source, None)
    }

    async fn one_crl(
        &self,
        url: &str,
        cert: &Certificate,
        issuer: &Certificate,
        serial: &[u8],
        now: SystemTime,
        signing_time: Option<SystemTime>,
    ) -> Result<crl::EntryStatus, String> {
        let base = self.valid_crl(url, issuer, now, false).await?;
        let delta = if !base.freshest_urls.is_empty() {
            let mut errors = Vec::new();
            let mut found = None;
            for durl in base
                .freshest_urls
                .iter()
                .filter(|u| u.starts_with("http://"))
            {
                match self.valid_crl(durl, issuer, now, true).await {
                    Ok(d) => match crl::check_delta_matches(&base, &d) {
                        Ok(()) => {
                            found = Some(d);
                            break;
                        }
                        Err(e) => errors.push(format!("delta CRL {durl}: {e}")),
                    },
                    Err(e) => errors.push(format!("delta CRL {durl}: {e}")),
                }
            }
            match found {
                Some(d) => Some(d),
                None if errors.is_empty() => {
                    return Err("the CRL's Freshest CRL extension has no http:// URL".into())
                }
                None => return Err(errors.join("; ")),
            }
        } else if crl::has_freshest_crl(cert) {
            return Err(
                "the certificate advertises a delta CRL (Freshest CRL) but the base CRL names none"
                    .into(),
            );
        } else {
            None
        };
        let mut lists = vec![&base.list];
        if let Some(d) = &delta {
            lists.push(&d.list);
        }
        crl::entry_status(&lists, serial, signing_time)
    }

    async fn valid_crl(
        &self,
        url: &str,
        issuer: &Certificate,
        now: SystemTime,
        delta: bool,
    ) -> Result<crl::ValidCrl, String> {
        let key = Key::Crl {
            url: url.to_string(),
        };
        let fetched = self
            .fetcher
            .get(&key, crl::next_update)
            .await
            .map_err(|e: FetchError| e.to_string())?;
        match crl::validate(&fetched.bytes, issuer, now, delta) {
            Ok(v) => {
                self.fetcher.persist(&key, &fetched).await;
                Ok(v)
            }
            Err(e) => {
                self.fetcher.evict(&key, &fetched).await;
                Err(e)
            }
        }
    }
}

fn revoked_detail(at: SystemTime, reason: Option<x509_cert::ext::pkix::CrlReason>) -> String {
    match reason {
        Some(r) => format!("revoked at {} (reason {r:?})", crl::fmt_time(at)),
        None => format!("revoked at {}", crl::fmt_time(at)),
    }
}

/// Subject for messages. `Certificate::subject()` (notation's format) is still a stub on this
/// branch, so `x509-cert`'s own rendering is used until `x509::dn` lands.
fn subject_of(cert: &Certificate) -> String {
    cert.subject()
}

/// Each certificate must name the next as issuer and carry its valid signature; otherwise
/// asking about "its issuer" is meaningless.
fn check_links(chain: &[Certificate]) -> Result<(), String> {
    for (i, pair) in chain.windows(2).enumerate() {
        let (cert, issuer) = (pair[0].parsed(), pair[1].parsed());
        if cert.tbs_certificate.issuer.to_der().ok() != issuer.tbs_certificate.subject.to_der().ok()
        {
            return Err(format!(
                "certificate #{} ({}) is not issued by certificate #{} ({})",
                i + 1,
                cert.tbs_certificate.subject,
                i + 2,
                issuer.tbs_certificate.subject
            ));
        }
        let tbs = sig::signed_part(pair[0].der())?;
        let signature = cert
            .signature
            .as_bytes()
            .ok_or("certificate signature has unused bits")?;
        sig::verify(
            &cert.signature_algorithm,
            &issuer.tbs_certificate.subject_public_key_info,
            tbs,
            signature,
        )
        .map_err(|e| {
            format!(
                "certificate #{} ({}): signature by its issuer: {e}",
                i + 1,
                cert.tbs_certificate.subject
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: T) {}

    #[tokio::test]
    async fn checker_and_its_future_can_cross_tasks() {
        let checker = RevocationChecker::new().unwrap();
        assert_send_sync(&checker);
        assert_send(checker.check_chain(&[], None));
        let r = checker.check_chain(&[], None).await;
        assert_eq!(r.status, RevocationStatus::Unknown);
        assert!(r.detail.unwrap().contains("empty"));
    }

    #[test]
    fn display_names_the_certificate_and_source() {
        let r = ChainRevocation {
            status: RevocationStatus::Revoked,
            certificates: vec![CertRevocation {
                index: 0,
                subject: "CN=leaf".into(),
                status: RevocationStatus::Revoked,
                source: Some(RevocationSource::Crl {
                    url: "http://x/leaf.crl".into(),
                }),
                detail: Some("revoked at 2024-11-11T05:30:52Z".into()),
                ocsp_fallback: None,
            }],
            detail: None,
        };
        assert_eq!(
            r.to_string(),
            "certificate chain: revoked; certificate #1 (CN=leaf): revoked [CRL http://x/leaf.crl]: revoked at 2024-11-11T05:30:52Z"
        );
    }
}
