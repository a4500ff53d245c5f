//! The signing workflow: reference → descriptor → payload → envelope → signature manifest
//! pushed as a referrer → result.

use serde::Serialize;

use crate::oci::Storage;

/// One artifact signed. Serialised (kebab-case) as an element of the action's `signatures`
/// output and of `--output json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct SignedArtifact {
    /// The reference as the user gave it.
    pub reference: String,
    /// Digest of the signed manifest.
    pub digest: String,
    /// Digest of the signature manifest pushed.
    pub signature_digest: String,
    /// `jws` or `cose`.
    pub signature_format: String,
    pub storage: Storage,
    /// Leaf certificate subject.
    pub signer_subject: String,
    /// SHA-256 fingerprint of the leaf certificate (lowercase hex).
    pub certificate_fingerprint: String,
}

/// One artifact whose signing failed, with the reason.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct SignFailure {
    pub reference: String,
    pub error: String,
}

/// The outcome of one signing run over one or more artifacts, in input order.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct SignReport {
    pub signatures: Vec<SignedArtifact>,
    pub failures: Vec<SignFailure>,
}
