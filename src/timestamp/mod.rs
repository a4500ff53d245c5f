//! RFC 3161 timestamping for the `notary.x509` signing scheme (digest §5): requesting a
//! countersignature over the primitive signature bytes from a TSA, and verifying a
//! TimeStampToken (CMS SignedData over TSTInfo) down to a configured TSA root.
//!
//! Parsing uses RustCrypto `cms` 0.2 (ContentInfo, SignedData, SignerInfo) and `x509-tsp`
//! 0.1 (TimeStampReq, MessageImprint, Accuracy), on the same `der` 0.7 / `x509-cert` 0.2
//! generation as the rest of the crate. Hand-written here, because those crates lack it:
//! - CMS signature verification (`cms` has no verification API): the message-digest and
//!   content-type attribute checks, the signature over the DER `SET OF` signed attributes,
//!   and the algorithm mapping to aws-lc-rs (`sigalg`);
//! - the ESS SigningCertificateV2 attribute (RFC 5035) and a TSTInfo whose genTime accepts
//!   fractional seconds, plus PKIStatusInfo failInfo bits (`asn1`, with `der` derive);
//! - path building from the token's certificate bag to a configured root (`path`), after
//!   which the Notary TSA certificate rules are applied by `x509::validate_chain`.
//!
//! Revocation of the TSA chain (digest §5 step 6) is the verifier's business (it has the
//! revocation module and the network policy); `TimestampInfo::tsa_chain` gives it the path.

mod asn1;
mod client;
mod path;
mod sigalg;
mod token;

use std::time::{Duration, SystemTime};

use crate::crypto::HashAlgorithm;
use crate::x509::{Certificate, ChainError};

pub use client::{HttpTimestamper, DEFAULT_MAX_CLOCK_SKEW, DEFAULT_TIMEOUT};
pub use token::{parse_token_info, verify_token, verify_token_with_chain};

/// Media type of an RFC 3161 request body.
pub const TIMESTAMP_QUERY_MEDIA_TYPE: &str = "application/timestamp-query";
/// Media type of an RFC 3161 response body.
pub const TIMESTAMP_REPLY_MEDIA_TYPE: &str = "application/timestamp-reply";
/// Largest TSA reply accepted.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;
/// Notary's baseline timestamp policy (ETSI EN 319 421 `0.4.0.2023.1.1`), whose tokens
/// without an accuracy field count as accurate to one second (digest §5 step 7).
pub const BASELINE_POLICY_OID: &str = "0.4.0.2023.1.1";

/// What a timestamp token asserts, after verification (or, from `parse_token_info`,
/// merely as claimed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampInfo {
    /// TSTInfo.genTime.
    pub gen_time: SystemTime,
    /// The accuracy used for `range`: TSTInfo.accuracy, else 1 s under the baseline
    /// policy, else zero.
    pub accuracy: Duration,
    /// Whether the token itself carried an accuracy field.
    pub accuracy_in_token: bool,
    /// `[genTime − accuracy, genTime + accuracy]`: the time the signature existed by.
    pub range: (SystemTime, SystemTime),
    /// TSTInfo.policy as a dotted OID.
    pub policy: String,
    /// TSTInfo.serialNumber as lowercase hex.
    pub serial: String,
    /// TSTInfo.nonce as lowercase hex, when present.
    pub nonce: Option<String>,
    /// Hash of the message imprint.
    pub hash_algorithm: HashAlgorithm,
    /// TSTInfo.messageImprint.hashedMessage.
    pub message_imprint: Vec<u8>,
    /// Subject of the TSA signing certificate (empty when the token carries none).
    pub tsa_subject: String,
    /// SHA-256 fingerprints. After `verify_token`: the validated path, TSA certificate first,
    /// trusted root last. From `parse_token_info`: the certificates the token carries,
    /// signing certificate first when it can be identified (unverified).
    pub tsa_chain: Vec<String>,
}

impl TimestampInfo {
    /// Digest §5 step 7 for one certificate of the signing chain: the whole range must lie
    /// within its validity, both ends inclusive.
    pub fn check_within_validity(&self, cert: &Certificate) -> Result<(), TimestampError> {
        if self.range.0 < cert.not_before() {
            return Err(TimestampError::BeforeCertificateValidity {
                subject: display_subject(cert),
                not_before: http_date(cert.not_before()),
            });
        }
        if self.range.1 > cert.not_after() {
            return Err(TimestampError::AfterCertificateValidity {
                subject: display_subject(cert),
                not_after: http_date(cert.not_after()),
            });
        }
        Ok(())
    }
}

/// Why a timestamp could not be obtained or does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimestampError {
    #[error("malformed timestamp token: {0}")]
    Malformed(String),
    #[error("invalid timestamp token: {0}")]
    Invalid(String),
    #[error("the timestamp token's signature is invalid: {0}")]
    BadSignature(String),
    #[error("the timestamp token does not cover this signature (mismatched message): its {hash} message imprint is {found}, but the signature hashes to {expected}")]
    ImprintMismatch {
        hash: &'static str,
        found: String,
        expected: String,
    },
    #[error("the timestamp token lacks the ESS signing-certificate-v2 attribute{detail}; Notary requires it to bind the TSA certificate, use a TSA that issues it (OpenSSL: ess_cert_id_alg = sha256)")]
    MissingSigningCertificateV2 { detail: &'static str },
    #[error("signing certificate hash does not match CertHash in signed attribute (ESS signing-certificate-v2): {0}")]
    SigningCertificateMismatch(String),
    #[error("the TSA certificate is not trusted: {0}; add the TSA's root certificate to the TSA roots (the trust policy's tsa trust store, or the TSA root given for signing)")]
    UntrustedTsa(String),
    #[error("TSA certificate {subject}: {reason}")]
    TsaCertificate { subject: String, reason: String },
    #[error("the TSA certificate chain breaks the Notary timestamping rules: {0}")]
    TsaChain(#[from] ChainError),
    #[error("timestamp can be before certificate {subject:?} validity period, it will be valid from {not_before:?}")]
    BeforeCertificateValidity { subject: String, not_before: String },
    #[error("timestamp can be after certificate {subject:?} validity period, it was expired at {not_after:?}")]
    AfterCertificateValidity { subject: String, not_after: String },

    #[error("invalid TSA URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot build the HTTP client for the TSA: {0}")]
    Client(String),
    #[error("cannot reach the TSA at {url}: {reason}; check the URL and the network")]
    Transport { url: String, reason: String },
    #[error(
        "the TSA at {url} answered HTTP {status}{detail}; expected 200 with an RFC 3161 reply"
    )]
    HttpStatus {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("the TSA at {url} answered with Content-Type {content_type:?} instead of application/timestamp-reply; is this an RFC 3161 timestamping endpoint?")]
    ContentType { url: String, content_type: String },
    #[error("the TSA at {url} sent a reply larger than {limit} bytes; refusing it")]
    TooLarge { url: String, limit: usize },
    #[error("the TSA at {url} sent a reply that is not an RFC 3161 TimeStampResp: {reason}")]
    BadResponse { url: String, reason: String },
    #[error("the TSA at {url} refused the request: status {status}{details}")]
    Rejected {
        url: String,
        status: String,
        details: String,
    },
    #[error("the TSA at {url} returned a token that does not answer our request: {reason}")]
    ResponseMismatch { url: String, reason: String },
    #[error("the TSA at {url} returned a token that fails verification ({summary}): {source}")]
    TokenRejected {
        url: String,
        summary: String,
        #[source]
        source: Box<TimestampError>,
    },
}

/// Subject for messages and `TimestampInfo::tsa_subject`.
pub(crate) fn display_subject(cert: &Certificate) -> String {
    cert.subject()
}

pub(crate) fn display_issuer(cert: &Certificate) -> String {
    cert.issuer()
}

/// Go's `time.RFC1123Z`-like rendering notation uses in validity messages.
fn http_date(t: SystemTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::from(t)
        .format(&format)
        .unwrap_or_else(|_| format!("{t:?}"))
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{t:?}"))
}
