//! Signature checks for certificates, CRLs and OCSP responses: the bytes that were signed,
//! exactly as received, and the one X.509 signature check the whole crate shares
//! (`crypto::x509sig`, which refuses SHA-1, PSS defaults and weak RSA keys).

use der::referenced::OwnedToRef;
use der::{Decode, Header, Reader, SliceReader, Tag};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// Verify `signature` over `message` with `spki`, using the X.509 algorithm `alg`.
pub(crate) fn verify(
    alg: &AlgorithmIdentifierOwned,
    spki: &SubjectPublicKeyInfoOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    crate::crypto::x509sig::verify(
        alg.owned_to_ref(),
        None,
        spki.owned_to_ref(),
        message,
        signature,
    )
    .map_err(|e| e.to_string())
}

/// The exact bytes of the first element inside an outer SEQUENCE: the signed part
/// (TBSCertificate, TBSCertList, ResponseData) as received, so a signature is checked over
/// what the signer produced rather than over a re-encoding.
pub(crate) fn signed_part(der: &[u8]) -> Result<&[u8], String> {
    let mut reader = SliceReader::new(der).map_err(|e| e.to_string())?;
    let header = Header::decode(&mut reader).map_err(|e| e.to_string())?;
    if header.tag != Tag::Sequence {
        return Err("not a DER SEQUENCE".into());
    }
    reader.tlv_bytes().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_part_is_the_first_inner_element_verbatim() {
        // SEQUENCE { SEQUENCE { INTEGER 5 }, NULL }
        let der = [0x30, 0x07, 0x30, 0x03, 0x02, 0x01, 0x05, 0x05, 0x00];
        assert_eq!(signed_part(&der).unwrap(), &[0x30, 0x03, 0x02, 0x01, 0x05]);
        assert!(signed_part(&[0x02, 0x01, 0x05]).is_err());
        assert!(signed_part(&[0x30, 0x05, 0x30]).is_err());
    }
}
