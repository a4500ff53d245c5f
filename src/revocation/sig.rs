//! Signature checks for certificates, CRLs and OCSP responses.
//!
//! The Notary signature-algorithm table (`crate::crypto`) covers only what a Notary leaf may
//! sign with; CAs and OCSP responders also sign with RSA PKCS#1 v1.5, so this is a separate,
//! small mapping from an X.509 `AlgorithmIdentifier` to the aws-lc-rs verifier. SHA-1 based
//! signatures are refused (fail closed).

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::ObjectIdentifier as Oid;
use der::{Decode, Header, Reader, Sequence, SliceReader, Tag};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
const MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const P384: Oid = Oid::new_unwrap("1.3.132.0.34");
const P521: Oid = Oid::new_unwrap("1.3.132.0.35");
const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

/// RSASSA-PSS-params (RFC 4055); every field has a SHA-1 default, which we refuse.
#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

#[derive(Clone, Copy, PartialEq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

fn hash_of(oid: &Oid) -> Option<Hash> {
    match *oid {
        SHA256 => Some(Hash::Sha256),
        SHA384 => Some(Hash::Sha384),
        SHA512 => Some(Hash::Sha512),
        _ => None,
    }
}

fn pss_hash(alg: &AlgorithmIdentifierOwned) -> Result<Hash, String> {
    let params = alg
        .parameters
        .as_ref()
        .ok_or("RSASSA-PSS without parameters (SHA-1 defaults) is not accepted")?;
    let params: PssParams = params
        .decode_as()
        .map_err(|e| format!("malformed RSASSA-PSS parameters: {e}"))?;
    let hash = params
        .hash
        .as_ref()
        .and_then(|h| hash_of(&h.oid))
        .ok_or("RSASSA-PSS hash must be SHA-256, SHA-384 or SHA-512")?;
    let mgf = params
        .mask_gen
        .as_ref()
        .ok_or("RSASSA-PSS with the default MGF1-SHA-1 is not accepted")?;
    let mgf_hash: AlgorithmIdentifierOwned = mgf
        .parameters
        .as_ref()
        .ok_or("RSASSA-PSS MGF1 without a hash")?
        .decode_as()
        .map_err(|e| format!("malformed MGF1 parameters: {e}"))?;
    if mgf.oid != MGF1 || hash_of(&mgf_hash.oid) != Some(hash) {
        return Err("RSASSA-PSS must use MGF1 with the same hash as the signature".into());
    }
    let want_salt = match hash {
        Hash::Sha256 => 32,
        Hash::Sha384 => 48,
        Hash::Sha512 => 64,
    };
    if params.salt_length != Some(want_salt) {
        return Err("RSASSA-PSS salt length must equal the hash length".into());
    }
    if params.trailer_field.unwrap_or(1) != 1 {
        return Err("RSASSA-PSS trailer field must be 1".into());
    }
    Ok(hash)
}

fn verifier(
    alg: &AlgorithmIdentifierOwned,
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    let key_oid = spki.algorithm.oid;
    if key_oid == RSA_ENCRYPTION {
        return match alg.oid {
            SHA256_RSA => Ok(&sig::RSA_PKCS1_2048_8192_SHA256),
            SHA384_RSA => Ok(&sig::RSA_PKCS1_2048_8192_SHA384),
            SHA512_RSA => Ok(&sig::RSA_PKCS1_2048_8192_SHA512),
            RSASSA_PSS => Ok(match pss_hash(alg)? {
                Hash::Sha256 => &sig::RSA_PSS_2048_8192_SHA256,
                Hash::Sha384 => &sig::RSA_PSS_2048_8192_SHA384,
                Hash::Sha512 => &sig::RSA_PSS_2048_8192_SHA512,
            }),
            other => Err(format!(
                "unsupported signature algorithm {other} for an RSA key"
            )),
        };
    }
    if key_oid == EC_PUBLIC_KEY {
        let curve: Oid = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or("EC public key without a named curve")?
            .decode_as()
            .map_err(|e| format!("EC public key curve: {e}"))?;
        return Ok(match (curve, alg.oid) {
            (P256, ECDSA_SHA256) => &sig::ECDSA_P256_SHA256_ASN1,
            (P256, ECDSA_SHA384) => &sig::ECDSA_P256_SHA384_ASN1,
            (P256, ECDSA_SHA512) => &sig::ECDSA_P256_SHA512_ASN1,
            (P384, ECDSA_SHA256) => &sig::ECDSA_P384_SHA256_ASN1,
            (P384, ECDSA_SHA384) => &sig::ECDSA_P384_SHA384_ASN1,
            (P384, ECDSA_SHA512) => &sig::ECDSA_P384_SHA512_ASN1,
            (P521, ECDSA_SHA256) => &sig::ECDSA_P521_SHA256_ASN1,
            (P521, ECDSA_SHA384) => &sig::ECDSA_P521_SHA384_ASN1,
            (P521, ECDSA_SHA512) => &sig::ECDSA_P521_SHA512_ASN1,
            (c, a) => {
                return Err(format!(
                    "unsupported EC curve {c} / signature algorithm {a}"
                ))
            }
        });
    }
    Err(format!("unsupported public key algorithm {key_oid}"))
}

/// Verify `signature` over `message` with `spki`, using the X.509 algorithm `alg`.
pub(crate) fn verify(
    alg: &AlgorithmIdentifierOwned,
    spki: &SubjectPublicKeyInfoOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let verifier = verifier(alg, spki)?;
    UnparsedPublicKey::new(verifier, spki.subject_public_key.raw_bytes())
        .verify(message, signature)
        .map_err(|_| "signature does not verify".to_string())
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

    #[test]
    fn pss_defaults_are_refused() {
        let alg = AlgorithmIdentifierOwned {
            oid: RSASSA_PSS,
            parameters: None,
        };
        assert!(pss_hash(&alg).is_err());
        // RSASSA-PSS-params with all defaults (empty SEQUENCE) means SHA-1.
        let alg = AlgorithmIdentifierOwned {
            oid: RSASSA_PSS,
            parameters: Some(der::Any::new(Tag::Sequence, Vec::<u8>::new()).unwrap()),
        };
        assert!(pss_hash(&alg).is_err());
    }
}
