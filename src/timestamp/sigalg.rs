//! Signature checks for CMS SignerInfos and TSA certificate links, through the one X.509
//! signature check the crate shares (`crypto::x509sig`).

use der::referenced::OwnedToRef;
use der::Encode;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::crypto::x509sig;
use crate::crypto::HashAlgorithm;

pub(crate) use x509sig::{hash_from_oid, hash_oid};

/// A short human name for an algorithm identifier, for error messages.
pub(crate) fn name(alg: &AlgorithmIdentifierOwned) -> String {
    x509sig::name(&alg.oid)
}

/// Verify `signature` over `message` with the key in `spki`.
///
/// `digest_alg` is the CMS SignerInfo digest algorithm: it supplies the hash when the
/// signature algorithm is bare `rsaEncryption` (RFC 5754 allows that form in CMS). For
/// certificate signatures pass `None`.
pub(crate) fn verify(
    signature_alg: &AlgorithmIdentifierOwned,
    digest_alg: Option<HashAlgorithm>,
    spki: &SubjectPublicKeyInfoOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    x509sig::verify(
        signature_alg.owned_to_ref(),
        digest_alg,
        spki.owned_to_ref(),
        message,
        signature,
    )
    .map_err(|e| match e {
        x509sig::X509SigError::BadSignature => {
            format!("{} signature does not verify", name(signature_alg))
        }
        x509sig::X509SigError::Refused(why) => why,
    })
}

/// Whether `issuer` signed `cert` (names byte-equal and signature valid).
pub(crate) fn issued_by(
    cert: &x509_cert::Certificate,
    issuer: &x509_cert::Certificate,
) -> Result<(), String> {
    let names_match =
        cert.tbs_certificate.issuer.to_der().ok() == issuer.tbs_certificate.subject.to_der().ok();
    if !names_match {
        return Err("issuer name does not match".into());
    }
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| format!("cannot re-encode certificate: {e}"))?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or("certificate signature has unused bits")?;
    verify(
        &cert.signature_algorithm,
        None,
        &issuer.tbs_certificate.subject_public_key_info,
        &tbs,
        signature,
    )
}
