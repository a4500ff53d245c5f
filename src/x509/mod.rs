//! X.509 certificates as Notary sees them: parsing, the certificate and chain rules of the
//! Notary signature specification (digest §6) and distinguished names for trusted identities.
//!
//! Chain validation is hand-written on purpose: Notary validates the exact ordered chain an
//! envelope carries (it does not build paths) with rules (leaf EKU/keyUsage, CA
//! basicConstraints, no SHA-1) that no general-purpose validator expresses; webpki applies
//! EKU to every certificate and ignores keyUsage. Each link's signature is checked with
//! aws-lc-rs.

pub mod chain;
pub mod dn;
pub mod fulcio;

pub use chain::{is_ca, is_self_signed, validate_chain, ChainError, ChainPurpose};

use std::time::SystemTime;

use der::{Decode, Encode};

/// Problems reading certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    #[error("cannot parse certificate: {0}")]
    Parse(String),
    #[error("no certificate found in {0}")]
    Empty(String),
}

/// A parsed certificate together with its exact DER bytes.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    parsed: x509_cert::Certificate,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("sha256", &self.sha256_fingerprint())
            .finish()
    }
}

impl Certificate {
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
        let parsed =
            x509_cert::Certificate::from_der(der).map_err(|e| CertError::Parse(e.to_string()))?;
        Ok(Certificate {
            der: der.to_vec(),
            parsed,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn parsed(&self) -> &x509_cert::Certificate {
        &self.parsed
    }

    /// Lowercase hex SHA-256 of the DER encoding (the Notary thumbprint).
    pub fn sha256_fingerprint(&self) -> String {
        crate::crypto::sha256_hex(&self.der)
    }

    /// Subject in the form notation prints and matches identities against (Go
    /// `pkix.Name.String()`: RFC 2253, most specific attribute first).
    pub fn subject(&self) -> String {
        dn::name_to_string(&self.parsed.tbs_certificate.subject)
    }

    pub fn issuer(&self) -> String {
        dn::name_to_string(&self.parsed.tbs_certificate.issuer)
    }

    pub fn not_before(&self) -> SystemTime {
        self.parsed
            .tbs_certificate
            .validity
            .not_before
            .to_system_time()
    }

    pub fn not_after(&self) -> SystemTime {
        self.parsed
            .tbs_certificate
            .validity
            .not_after
            .to_system_time()
    }

    /// Whether `at` lies within [notBefore, notAfter], both inclusive.
    pub fn is_valid_at(&self, at: SystemTime) -> bool {
        self.not_before() <= at && at <= self.not_after()
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Vec<u8> {
        self.parsed
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .expect("a parsed SubjectPublicKeyInfo re-encodes")
    }

    /// Subject and issuer names are byte-identical (RFC 5280 "self-issued").
    pub fn is_self_issued(&self) -> bool {
        let tbs = &self.parsed.tbs_certificate;
        tbs.subject.to_der().ok() == tbs.issuer.to_der().ok()
    }
}

/// Certificates in a file are bounded so a hostile file cannot make us parse without end.
const MAX_CERTIFICATES: usize = 100;

/// Every certificate in PEM text (`-----BEGIN CERTIFICATE-----` blocks) or, when `data` is
/// not PEM, in concatenated DER. Order is kept.
///
/// A PEM file holding anything but certificates (a private key pasted into a chain file,
/// say) is refused rather than silently skipped: notation parses every block as a
/// certificate and fails the same way.
pub fn parse_certificates(data: &[u8], source: &str) -> Result<Vec<Certificate>, CertError> {
    let mut certs = Vec::new();
    if looks_like_pem(data) {
        let blocks = pem_blocks(data).map_err(|e| CertError::Parse(format!("{source}: {e}")))?;
        for (i, block) in blocks.iter().enumerate() {
            if block.label != "CERTIFICATE" {
                return Err(CertError::Parse(format!(
                    "{source}: PEM block #{} is a {:?}, not a CERTIFICATE; give a file that holds only certificates",
                    i + 1,
                    block.label
                )));
            }
            if certs.len() == MAX_CERTIFICATES {
                return Err(CertError::Parse(format!(
                    "{source}: more than {MAX_CERTIFICATES} certificates"
                )));
            }
            let cert = Certificate::from_der(&block.data).map_err(|e| {
                CertError::Parse(format!("{source}: PEM certificate #{}: {e}", i + 1))
            })?;
            certs.push(cert);
        }
    } else {
        let mut rest = data;
        while !rest.is_empty() {
            if certs.len() == MAX_CERTIFICATES {
                return Err(CertError::Parse(format!(
                    "{source}: more than {MAX_CERTIFICATES} certificates"
                )));
            }
            let len = der_element_len(rest).ok_or_else(|| {
                CertError::Parse(format!(
                    "{source}: certificate #{} is neither PEM nor DER (no complete ASN.1 element at byte {})",
                    certs.len() + 1,
                    data.len() - rest.len()
                ))
            })?;
            let cert = Certificate::from_der(&rest[..len]).map_err(|e| {
                CertError::Parse(format!(
                    "{source}: DER certificate #{}: {e}",
                    certs.len() + 1
                ))
            })?;
            certs.push(cert);
            rest = &rest[len..];
        }
    }
    if certs.is_empty() {
        return Err(CertError::Empty(source.to_string()));
    }
    Ok(certs)
}

/// Total length (header + content) of the DER element at the start of `data`.
fn der_element_len(data: &[u8]) -> Option<usize> {
    let mut reader = der::SliceReader::new(data).ok()?;
    let header = der::Header::decode(&mut reader).ok()?;
    let total = (header.encoded_len().ok()? + header.length).ok()?;
    let total = usize::try_from(u32::from(total)).ok()?;
    (total <= data.len()).then_some(total)
}

/// Whether `data` is PEM text rather than binary DER.
pub(crate) fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// One decoded PEM block.
pub(crate) struct PemBlock {
    pub label: String,
    /// RFC 1421 headers such as `Proc-Type: 4,ENCRYPTED` (legacy OpenSSL encryption).
    pub headers: Vec<String>,
    /// Decoded content; wiped on drop because key files pass through here too.
    pub data: zeroize::Zeroizing<Vec<u8>>,
}

/// Every PEM block in `text`, in order. Text outside blocks is ignored (OpenSSL writes
/// "Bag Attributes" and similar there).
///
/// Hand-written because `rustls-pki-types` only returns the block kinds it knows (no
/// `ENCRYPTED PRIVATE KEY`) and `pem-rfc7468` rejects the headers of legacy encrypted keys,
/// which we want to recognise in order to explain them.
pub(crate) fn pem_blocks(text: &[u8]) -> Result<Vec<PemBlock>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "PEM text is not valid UTF-8".to_string())?;
    let mut blocks = Vec::new();
    let mut current: Option<(String, Vec<String>, zeroize::Zeroizing<String>)> = None;
    for (line_no, raw) in text.lines().enumerate() {
        let line = raw.trim();
        match current.as_mut() {
            None => {
                if let Some(label) = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|l| l.strip_suffix("-----"))
                {
                    current = Some((
                        label.to_string(),
                        Vec::new(),
                        zeroize::Zeroizing::new(String::new()),
                    ));
                }
            }
            Some((label, headers, b64)) => {
                if let Some(end) = line
                    .strip_prefix("-----END ")
                    .and_then(|l| l.strip_suffix("-----"))
                {
                    if end != label.as_str() {
                        return Err(format!(
                            "line {}: PEM block \"{label}\" ends with \"{end}\"",
                            line_no + 1
                        ));
                    }
                    use base64::Engine;
                    let data = base64::engine::general_purpose::STANDARD
                        .decode(b64.as_bytes())
                        .map_err(|_| format!("PEM block \"{label}\" has invalid base64"))?;
                    blocks.push(PemBlock {
                        label: std::mem::take(label),
                        headers: std::mem::take(headers),
                        data: zeroize::Zeroizing::new(data),
                    });
                    current = None;
                } else if line.starts_with("-----") {
                    return Err(format!(
                        "line {}: PEM block \"{label}\" is not terminated",
                        line_no + 1
                    ));
                } else if line.contains(':') {
                    headers.push(line.to_string());
                } else {
                    b64.push_str(line);
                }
            }
        }
    }
    if let Some((label, _, _)) = current {
        return Err(format!("PEM block \"{label}\" has no END line"));
    }
    Ok(blocks)
}
