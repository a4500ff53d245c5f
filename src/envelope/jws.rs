//! JWS JSON flattened serialization as Notary uses it (digest §3).
//!
//! Hand-written: JOSE crates target compact JWTs and their claims; Notary needs the
//! flattened form, its own `crit` rules and exact control of the base64 variants.

use super::{EnvelopeError, ParsedEnvelope, SignOptions, Timestamper};
use crate::crypto::Signer;

pub async fn sign(
    options: &SignOptions,
    signer: &dyn Signer,
    timestamper: Option<&dyn Timestamper>,
) -> Result<Vec<u8>, EnvelopeError> {
    let _ = (options, signer, timestamper);
    todo!("envelope::jws::sign")
}

pub fn parse(bytes: &[u8]) -> Result<ParsedEnvelope, EnvelopeError> {
    let _ = bytes;
    todo!("envelope::jws::parse")
}
