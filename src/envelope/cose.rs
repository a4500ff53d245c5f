//! COSE_Sign1 (tagged) as Notary uses it (digest §4), on `coset`.

use super::{EnvelopeError, ParsedEnvelope, SignOptions, Timestamper};
use crate::crypto::Signer;

pub async fn sign(
    options: &SignOptions,
    signer: &dyn Signer,
    timestamper: Option<&dyn Timestamper>,
) -> Result<Vec<u8>, EnvelopeError> {
    let _ = (options, signer, timestamper);
    todo!("envelope::cose::sign")
}

pub fn parse(bytes: &[u8]) -> Result<ParsedEnvelope, EnvelopeError> {
    let _ = bytes;
    todo!("envelope::cose::parse")
}
