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

pub use chain::{validate_chain, ChainError, ChainPurpose};

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

/// Every certificate in PEM text (`-----BEGIN CERTIFICATE-----` blocks) or, when `data` is
/// not PEM, in concatenated DER. Order is kept.
pub fn parse_certificates(data: &[u8], source: &str) -> Result<Vec<Certificate>, CertError> {
    let _ = (data, source);
    todo!("x509::parse_certificates")
}
