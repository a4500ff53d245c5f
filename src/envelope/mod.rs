//! Notary signature envelopes: the payload, JWS (flattened JSON) and COSE_Sign1, built and
//! parsed per the Notary envelope specifications (digest §2–§4).
//!
//! Both formats share one model: `SignOptions` in, envelope bytes out; envelope bytes in,
//! `ParsedEnvelope` out. Parsing enforces the header and `crit` rules; `verify_integrity`
//! adds the cryptographic checks (algorithm from the leaf key, signature, chain rules).

pub mod cose;
mod header;
pub mod jws;
pub mod payload;

use std::time::SystemTime;

use crate::crypto::{CryptoError, KeySpec, SignatureAlgorithm, Signer};
use crate::x509::{CertError, Certificate, ChainError, ChainPurpose};

pub use payload::Payload;

pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";
pub const JWS_MEDIA_TYPE: &str = "application/jose+json";
pub const COSE_MEDIA_TYPE: &str = "application/cose";

pub const HDR_SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub const HDR_SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub const HDR_AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub const HDR_EXPIRY: &str = "io.cncf.notary.expiry";
pub const HDR_SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
pub const HDR_TIMESTAMP_SIGNATURE: &str = "io.cncf.notary.timestampSignature";
pub const HDR_VERIFICATION_PLUGIN: &str = "io.cncf.notary.verificationPlugin";
pub const HDR_VERIFICATION_PLUGIN_MIN_VERSION: &str = "io.cncf.notary.verificationPluginMinVersion";

/// Envelope format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeFormat {
    Jws,
    Cose,
}

impl EnvelopeFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            EnvelopeFormat::Jws => JWS_MEDIA_TYPE,
            EnvelopeFormat::Cose => COSE_MEDIA_TYPE,
        }
    }

    pub fn from_media_type(media_type: &str) -> Option<EnvelopeFormat> {
        match media_type {
            JWS_MEDIA_TYPE => Some(EnvelopeFormat::Jws),
            COSE_MEDIA_TYPE => Some(EnvelopeFormat::Cose),
            _ => None,
        }
    }

    /// Short name used on the command line and in reports (`jws`, `cose`).
    pub fn name(self) -> &'static str {
        match self {
            EnvelopeFormat::Jws => "jws",
            EnvelopeFormat::Cose => "cose",
        }
    }
}

/// Signing scheme (digest §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningScheme {
    X509,
    X509SigningAuthority,
}

impl SigningScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningScheme::X509 => "notary.x509",
            SigningScheme::X509SigningAuthority => "notary.x509.signingAuthority",
        }
    }

    pub fn parse(s: &str) -> Option<SigningScheme> {
        match s {
            "notary.x509" => Some(SigningScheme::X509),
            "notary.x509.signingAuthority" => Some(SigningScheme::X509SigningAuthority),
            _ => None,
        }
    }
}

/// An extended (non-Notary-registered) protected header attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtendedAttribute {
    pub name: String,
    /// The value as JSON (string, number, bool); COSE values are mapped to the same model.
    pub value: serde_json::Value,
    pub critical: bool,
}

/// What the signer asks for; the envelope encoder derives every header from it.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// The exact payload bytes (`Payload::to_bytes`).
    pub payload: Vec<u8>,
    /// Whole seconds are used; JWS renders RFC 3339 `Z`, COSE tag 1 integer.
    pub signing_time: SystemTime,
    pub expiry: Option<SystemTime>,
    /// Unprotected `io.cncf.notary.signingAgent`, e.g. `sign-action/0.1.0`.
    pub signing_agent: String,
}

/// Hook for RFC 3161 timestamping: receives the primitive signature bytes and the hash of
/// the signing algorithm, returns a DER TimeStampToken to embed.
#[async_trait::async_trait]
pub trait Timestamper: Send + Sync {
    async fn timestamp(
        &self,
        signature: &[u8],
        hash: crate::crypto::HashAlgorithm,
    ) -> Result<Vec<u8>, String>;
}

/// A parsed envelope whose headers passed the Notary rules. Nothing cryptographic has been
/// checked until `verify_integrity`.
#[derive(Debug, Clone)]
pub struct ParsedEnvelope {
    pub format: EnvelopeFormat,
    /// Raw payload bytes as signed.
    pub payload: Vec<u8>,
    pub algorithm: SignatureAlgorithm,
    pub signing_scheme: SigningScheme,
    pub signing_time: Option<SystemTime>,
    pub authentic_signing_time: Option<SystemTime>,
    pub expiry: Option<SystemTime>,
    /// DER certificates, leaf first.
    pub certificate_chain: Vec<Vec<u8>>,
    pub signature: Vec<u8>,
    /// The exact bytes the signature covers (JWS signing input / COSE ToBeSigned).
    pub signed_bytes: Vec<u8>,
    pub timestamp_token: Option<Vec<u8>>,
    pub signing_agent: Option<String>,
    pub verification_plugin: Option<String>,
    pub verification_plugin_min_version: Option<String>,
    pub extended_attributes: Vec<ExtendedAttribute>,
}

impl ParsedEnvelope {
    /// Names of critical extended attributes nobody has processed. The two verification
    /// plugin headers are not among them (they have their own fields); whatever is listed
    /// here must be handled by a verification plugin, or the signature must fail (the
    /// specification's rule for unknown critical attributes).
    pub fn unprocessed_critical_attributes(&self) -> Vec<&str> {
        self.extended_attributes
            .iter()
            .filter(|a| a.critical)
            .map(|a| a.name.as_str())
            .collect()
    }
}

/// Why an envelope is not acceptable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("unsupported signature envelope media type {0:?} (expected application/jose+json or application/cose)")]
    UnsupportedMediaType(String),
    #[error("malformed {format} envelope: {reason}")]
    Malformed {
        format: &'static str,
        reason: String,
    },
    #[error("invalid {format} protected header: {reason}")]
    Header {
        format: &'static str,
        reason: String,
    },
    #[error("the envelope's algorithm {header} does not match the leaf certificate's key, which requires {expected}")]
    AlgorithmMismatch {
        header: SignatureAlgorithm,
        expected: SignatureAlgorithm,
    },
    #[error("invalid payload: {0}")]
    Payload(String),
    #[error("certificate chain in the envelope: {0}")]
    Certificate(#[from] CertError),
    #[error("certificate chain in the envelope: {0}")]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("timestamping failed: {0}")]
    Timestamp(String),
}

/// Build and sign an envelope.
pub async fn sign(
    format: EnvelopeFormat,
    options: &SignOptions,
    signer: &dyn Signer,
    timestamper: Option<&dyn Timestamper>,
) -> Result<Vec<u8>, EnvelopeError> {
    match format {
        EnvelopeFormat::Jws => jws::sign(options, signer, timestamper).await,
        EnvelopeFormat::Cose => cose::sign(options, signer, timestamper).await,
    }
}

/// Parse envelope bytes by the layer media type, enforcing the header and `crit` rules.
pub fn parse(media_type: &str, bytes: &[u8]) -> Result<ParsedEnvelope, EnvelopeError> {
    match EnvelopeFormat::from_media_type(media_type) {
        Some(EnvelopeFormat::Jws) => jws::parse(bytes),
        Some(EnvelopeFormat::Cose) => cose::parse(bytes),
        None => Err(EnvelopeError::UnsupportedMediaType(media_type.to_string())),
    }
}

/// Cryptographic integrity: the algorithm equals the one the leaf key requires, the
/// signature verifies over `signed_bytes`, and the chain meets the Notary rules (validity
/// times are judged later, by the verifier).
pub fn verify_integrity(envelope: &ParsedEnvelope) -> Result<(), EnvelopeError> {
    let chain = envelope
        .certificate_chain
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = chain.first().ok_or(ChainError::Empty)?;
    let leaf_spki = leaf.spki_der();
    let expected = KeySpec::from_spki_der(&leaf_spki)?.signature_algorithm();
    if expected != envelope.algorithm {
        return Err(EnvelopeError::AlgorithmMismatch {
            header: envelope.algorithm,
            expected,
        });
    }
    crate::crypto::verify_signature(
        envelope.algorithm,
        &leaf_spki,
        &envelope.signed_bytes,
        &envelope.signature,
    )?;
    crate::x509::validate_chain(&chain, ChainPurpose::CodeSigning, None)?;
    Ok(())
}

/// Refuse oversized input before any decoding (digest §1: envelopes are at most 32 MiB).
fn check_size(format: &'static str, bytes: &[u8]) -> Result<(), EnvelopeError> {
    if bytes.len() as u64 > crate::oci::MAX_ENVELOPE_BYTES {
        return Err(EnvelopeError::Malformed {
            format,
            reason: format!(
                "{} bytes exceeds the {} byte limit for signature envelopes",
                bytes.len(),
                crate::oci::MAX_ENVELOPE_BYTES
            ),
        });
    }
    Ok(())
}

/// Refuse to sign what our own parser would reject: a payload that is not a Notary
/// payload, or an expiry not after the signing time (both compared in whole seconds).
fn check_options(options: &SignOptions) -> Result<(), EnvelopeError> {
    Payload::parse(&options.payload)?;
    if let Some(expiry) = options.expiry {
        if header::unix_seconds(expiry) <= header::unix_seconds(options.signing_time) {
            return Err(EnvelopeError::Header {
                format: "signature",
                reason: "the expiry must be at least one second after the signing time".into(),
            });
        }
    }
    Ok(())
}

/// The signer's algorithm, after checking that its key type is the one the leaf
/// certificate requires (the chain the envelope will carry must verify the signature).
fn signer_algorithm(signer: &dyn Signer) -> Result<(SignatureAlgorithm, Vec<u8>), EnvelopeError> {
    let chain = signer.certificate_chain();
    let leaf = Certificate::from_der(chain.first().ok_or(ChainError::Empty)?)?;
    let leaf_spki = leaf.spki_der();
    let expected = KeySpec::from_spki_der(&leaf_spki)?.signature_algorithm();
    let algorithm = signer.key_spec().signature_algorithm();
    if algorithm != expected {
        return Err(EnvelopeError::AlgorithmMismatch {
            header: algorithm,
            expected,
        });
    }
    Ok((algorithm, leaf_spki))
}

/// Sign `message` and check the result against the leaf key before it goes into an
/// envelope: a remote signer returning, say, a DER ECDSA signature or a signature by
/// another key is caught here rather than by every verifier.
async fn sign_checked(
    signer: &dyn Signer,
    algorithm: SignatureAlgorithm,
    leaf_spki: &[u8],
    message: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let signature = signer.sign(message).await?;
    crate::crypto::verify_signature(algorithm, leaf_spki, message, &signature)?;
    Ok(signature)
}

/// Countersign the primitive signature when a timestamper is configured.
async fn timestamp(
    timestamper: Option<&dyn Timestamper>,
    algorithm: SignatureAlgorithm,
    signature: &[u8],
) -> Result<Option<Vec<u8>>, EnvelopeError> {
    match timestamper {
        None => Ok(None),
        Some(t) => t
            .timestamp(signature, algorithm.hash())
            .await
            .map(Some)
            .map_err(EnvelopeError::Timestamp),
    }
}
