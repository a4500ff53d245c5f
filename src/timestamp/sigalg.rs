//! Signature checks for CMS SignerInfos and certificate links, keyed by the algorithm
//! identifier as it appears on the wire.
//!
//! `crypto::verify_signature` covers only the six Notary envelope algorithms (PSS and
//! fixed-width ECDSA). TSAs sign with whatever their PKI uses: RSA PKCS#1 v1.5 (the most
//! common), RSA-PSS with explicit parameters, or DER-encoded ECDSA, so this mapping is ours.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use der::asn1::ObjectIdentifier;
use der::{Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::crypto::HashAlgorithm;

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_SHA1_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");
const OID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_ECDSA_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

pub(crate) const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
pub(crate) const OID_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub(crate) const OID_SHA384: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
pub(crate) const OID_SHA512: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// The hash named by a digest algorithm OID; SHA-1 and anything else is refused.
pub(crate) fn hash_from_oid(oid: &ObjectIdentifier) -> Result<HashAlgorithm, String> {
    match *oid {
        OID_SHA256 => Ok(HashAlgorithm::Sha256),
        OID_SHA384 => Ok(HashAlgorithm::Sha384),
        OID_SHA512 => Ok(HashAlgorithm::Sha512),
        OID_SHA1 => Err("SHA-1 is not accepted (only SHA-256, SHA-384, SHA-512)".into()),
        other => Err(format!(
            "hash algorithm {other} is not supported (only SHA-256, SHA-384, SHA-512)"
        )),
    }
}

pub(crate) fn hash_oid(hash: HashAlgorithm) -> ObjectIdentifier {
    match hash {
        HashAlgorithm::Sha256 => OID_SHA256,
        HashAlgorithm::Sha384 => OID_SHA384,
        HashAlgorithm::Sha512 => OID_SHA512,
    }
}

/// RFC 4055 RSASSA-PSS-params. Defaults (SHA-1, MGF1-SHA-1) are refused anyway, so absent
/// fields only need to be recognised as absent.
#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

fn pss_hash(alg: &AlgorithmIdentifierOwned) -> Result<HashAlgorithm, String> {
    let params = alg
        .parameters
        .as_ref()
        .ok_or("RSASSA-PSS without parameters (implies SHA-1) is not accepted")?;
    let params: PssParams = params
        .decode_as()
        .map_err(|e| format!("malformed RSASSA-PSS parameters: {e}"))?;
    let hash = params
        .hash
        .as_ref()
        .ok_or("RSASSA-PSS with the default SHA-1 hash is not accepted")?;
    let hash = hash_from_oid(&hash.oid)?;
    let mgf = params
        .mask_gen
        .as_ref()
        .ok_or("RSASSA-PSS with the default MGF1-SHA-1 is not accepted")?;
    if mgf.oid != OID_MGF1 {
        return Err(format!(
            "RSASSA-PSS mask generation {} is not MGF1",
            mgf.oid
        ));
    }
    let mgf_hash: AlgorithmIdentifierOwned = mgf
        .parameters
        .as_ref()
        .ok_or("RSASSA-PSS MGF1 without a hash")?
        .decode_as()
        .map_err(|e| format!("malformed MGF1 parameters: {e}"))?;
    if hash_from_oid(&mgf_hash.oid)? != hash {
        return Err("RSASSA-PSS with different message and MGF1 hashes is not accepted".into());
    }
    if params.trailer.is_some_and(|t| t != 1) {
        return Err("RSASSA-PSS trailer field other than 1".into());
    }
    let _ = params.salt_len; // aws-lc-rs recovers the salt length from the signature
    Ok(hash)
}

fn ecdsa_alg(
    curve: &ObjectIdentifier,
    hash: HashAlgorithm,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    use HashAlgorithm::*;
    Ok(match (*curve, hash) {
        (OID_P256, Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
        (OID_P256, Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
        (OID_P256, Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
        (OID_P384, Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
        (OID_P384, Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
        (OID_P384, Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
        (OID_P521, Sha256) => &sig::ECDSA_P521_SHA256_ASN1,
        (OID_P521, Sha384) => &sig::ECDSA_P521_SHA384_ASN1,
        (OID_P521, Sha512) => &sig::ECDSA_P521_SHA512_ASN1,
        (other, _) => return Err(format!("EC curve {other} is not supported")),
    })
}

fn rsa_pkcs1(hash: HashAlgorithm) -> &'static dyn VerificationAlgorithm {
    match hash {
        HashAlgorithm::Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        HashAlgorithm::Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        HashAlgorithm::Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
    }
}

fn rsa_pss(hash: HashAlgorithm) -> &'static dyn VerificationAlgorithm {
    match hash {
        HashAlgorithm::Sha256 => &sig::RSA_PSS_2048_8192_SHA256,
        HashAlgorithm::Sha384 => &sig::RSA_PSS_2048_8192_SHA384,
        HashAlgorithm::Sha512 => &sig::RSA_PSS_2048_8192_SHA512,
    }
}

/// A short human name for an algorithm identifier, for error messages.
pub(crate) fn name(alg: &AlgorithmIdentifierOwned) -> String {
    const_oid::db::DB
        .by_oid(&alg.oid)
        .map(str::to_string)
        .unwrap_or_else(|| alg.oid.to_string())
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
    let key_oid = spki.algorithm.oid;
    let algorithm: &'static dyn VerificationAlgorithm = match signature_alg.oid {
        OID_SHA1_RSA | OID_ECDSA_SHA1 => {
            return Err(format!(
                "{} signatures are not accepted (SHA-1)",
                name(signature_alg)
            ))
        }
        OID_RSA => rsa_pkcs1(digest_alg.ok_or("rsaEncryption names no hash outside CMS")?),
        OID_SHA256_RSA => rsa_pkcs1(HashAlgorithm::Sha256),
        OID_SHA384_RSA => rsa_pkcs1(HashAlgorithm::Sha384),
        OID_SHA512_RSA => rsa_pkcs1(HashAlgorithm::Sha512),
        OID_RSA_PSS => rsa_pss(pss_hash(signature_alg)?),
        OID_ECDSA_SHA256 | OID_ECDSA_SHA384 | OID_ECDSA_SHA512 => {
            if key_oid != OID_EC {
                return Err(format!("ECDSA signature but the key is {key_oid}"));
            }
            let curve: ObjectIdentifier = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as().ok())
                .ok_or("EC key without a named curve")?;
            let hash = match signature_alg.oid {
                OID_ECDSA_SHA256 => HashAlgorithm::Sha256,
                OID_ECDSA_SHA384 => HashAlgorithm::Sha384,
                _ => HashAlgorithm::Sha512,
            };
            ecdsa_alg(&curve, hash)?
        }
        _ => {
            return Err(format!(
                "signature algorithm {} is not supported",
                name(signature_alg)
            ))
        }
    };
    if signature_alg.oid != OID_ECDSA_SHA256
        && signature_alg.oid != OID_ECDSA_SHA384
        && signature_alg.oid != OID_ECDSA_SHA512
        && key_oid != OID_RSA
    {
        return Err(format!(
            "{} signature but the key is {key_oid}",
            name(signature_alg)
        ));
    }
    UnparsedPublicKey::new(algorithm, spki.subject_public_key.raw_bytes())
        .verify(message, signature)
        .map_err(|_| format!("{} signature does not verify", name(signature_alg)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn alg(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid,
            parameters: None,
        }
    }

    #[test]
    fn sha1_and_unknown_hashes_are_refused() {
        assert!(hash_from_oid(&OID_SHA1).unwrap_err().contains("SHA-1"));
        assert!(hash_from_oid(&OID_MGF1).is_err());
        for h in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            assert_eq!(hash_from_oid(&hash_oid(h)).unwrap(), h);
        }
    }

    #[test]
    fn sha1_signatures_and_pss_defaults_are_refused_before_any_key_use() {
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: alg(OID_RSA),
            subject_public_key: der::asn1::BitString::from_bytes(&[0]).unwrap(),
        };
        for oid in [OID_SHA1_RSA, OID_ECDSA_SHA1] {
            let err = verify(&alg(oid), None, &spki, b"m", b"s").unwrap_err();
            assert!(err.contains("SHA-1"), "{err}");
        }
        let err = verify(&alg(OID_RSA_PSS), None, &spki, b"m", b"s").unwrap_err();
        assert!(err.contains("SHA-1"), "{err}");
        let err = verify(&alg(OID_RSA), None, &spki, b"m", b"s").unwrap_err();
        assert!(err.contains("names no hash"), "{err}");
        let err = verify(&alg(OID_ECDSA_SHA256), None, &spki, b"m", b"s").unwrap_err();
        assert!(err.contains("the key is"), "{err}");
    }
}
