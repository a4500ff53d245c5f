//! Algorithms, keys and the `Signer` abstraction.
//!
//! The Notary Project fixes the signature algorithm as a function of the leaf key alone
//! (digest §6); `KeySpec` is that key description and `SignatureAlgorithm` the one algorithm
//! it allows. All primitive operations go through `aws-lc-rs` (one constant-time provider,
//! also used by rustls).

mod algorithm;
pub mod keys;
pub(crate) mod x509sig;

pub(crate) use algorithm::rsa_modulus_bits;
pub use algorithm::{HashAlgorithm, KeySpec, SignatureAlgorithm};
pub use keys::{KeyError, LocalSigner};

use async_trait::async_trait;

/// Errors from producing or checking a primitive signature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("the public key is not a supported Notary key (RSA 2048/3072/4096 or EC P-256/384/521): {0}")]
    UnsupportedKey(String),
    #[error("signature verification failed: the signature does not match the signed content and the leaf certificate's key")]
    BadSignature,
    #[error("signing failed: {0}")]
    SigningFailed(String),
}

/// Something that can produce Notary signatures: a local key, an HSM, a KMS, a plugin.
///
/// `sign` receives the exact bytes to be signed (JWS signing input or COSE ToBeSigned) and
/// returns the raw signature: RSASSA-PSS (salt = hash length) or ECDSA as fixed-width R‖S,
/// with the algorithm `key_spec().signature_algorithm()`.
#[async_trait]
pub trait Signer: Send + Sync {
    /// The key type of the leaf certificate's public key.
    fn key_spec(&self) -> KeySpec;
    /// DER certificates, leaf first, root last.
    fn certificate_chain(&self) -> &[Vec<u8>];
    /// Sign `message` with `key_spec().signature_algorithm()`.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// `Some` for signers that build whole envelopes themselves (notation plugins with
    /// `SIGNATURE_GENERATOR.ENVELOPE`); then `sign` and `certificate_chain` are unused and
    /// every generated envelope is checked by the caller instead.
    fn envelope_generator(&self) -> Option<&dyn EnvelopeGenerator> {
        None
    }
}

/// An envelope built by a signer, and the manifest annotations it asks for.
#[derive(Debug, Clone)]
pub struct GeneratedEnvelope {
    pub envelope: Vec<u8>,
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Builds complete signature envelopes for a Notary payload.
#[async_trait]
pub trait EnvelopeGenerator: Send + Sync {
    /// An envelope of `media_type` over `payload` (the payload JSON) that expires `expiry`
    /// after its signing time.
    async fn generate_envelope(
        &self,
        media_type: &str,
        payload: &[u8],
        expiry: Option<std::time::Duration>,
    ) -> Result<GeneratedEnvelope, CryptoError>;
}

/// Verify a raw Notary signature (PSS or fixed R‖S) over `message` with the key in
/// `spki_der` (a DER SubjectPublicKeyInfo).
pub fn verify_signature(
    algorithm: SignatureAlgorithm,
    spki_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    algorithm::verify(algorithm, spki_der, message, signature)
}

/// SHA-256 of `data` as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}
