//! Notary certificate and chain rules (digest §6).

use std::time::SystemTime;

use super::Certificate;

/// What the chain is for: code signing leaves and TSA leaves have different rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainPurpose {
    CodeSigning,
    Timestamping,
}

/// A certificate chain that breaks the Notary rules.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error("the certificate chain is empty")]
    Empty,
    #[error("certificate #{index} ({subject}): {reason}")]
    Certificate {
        index: usize,
        subject: String,
        reason: String,
    },
    #[error("certificate chain out of order: certificate #{index} ({subject}) is not issued by the next certificate; give the chain leaf first, root last")]
    OutOfOrder { index: usize, subject: String },
    #[error("the certificate chain does not end in a self-signed root certificate ({subject}); include the root")]
    NoRoot { subject: String },
    #[error("certificate #{index} ({subject}) is not valid at {at}: valid from {not_before} to {not_after}")]
    NotValidAt {
        index: usize,
        subject: String,
        at: String,
        not_before: String,
        not_after: String,
    },
}

/// Check the ordered chain (leaf first, self-signed root last) against the Notary rules for
/// `purpose`. When `at` is given, every certificate must also be valid at that time.
pub fn validate_chain(
    chain: &[Certificate],
    purpose: ChainPurpose,
    at: Option<SystemTime>,
) -> Result<(), ChainError> {
    let _ = (chain, purpose, at);
    todo!("x509::chain::validate_chain")
}
