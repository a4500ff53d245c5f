//! Signatures on X.509 structures — certificate links, CRLs, OCSP responses and CMS
//! SignerInfos — keyed by the `AlgorithmIdentifier` as it appears on the wire.
//!
//! `verify_signature` covers only the six Notary envelope algorithms (PSS and fixed-width
//! ECDSA). CAs, OCSP responders and TSAs also sign with RSA PKCS#1 v1.5, with DER-encoded
//! ECDSA and with explicitly parameterised RSASSA-PSS, and no maintained crate maps an
//! `AlgorithmIdentifier` to a verifier with the refusals Notary needs (SHA-1, PSS defaults,
//! RSA below 2048 bits), so this one mapping is ours and every caller goes through it: the
//! chain rules, the revocation checker and the timestamp verifier cannot drift apart.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::db::rfc5912;
use der::asn1::ObjectIdentifier;
use der::Tagged;
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use super::HashAlgorithm;

const OID_RSA_KEY: ObjectIdentifier = rfc5912::RSA_ENCRYPTION;
const OID_EC_KEY: ObjectIdentifier = rfc5912::ID_EC_PUBLIC_KEY;
const OID_SHA1_RSA: ObjectIdentifier = rfc5912::SHA_1_WITH_RSA_ENCRYPTION;
const OID_SHA256_RSA: ObjectIdentifier = rfc5912::SHA_256_WITH_RSA_ENCRYPTION;
const OID_SHA384_RSA: ObjectIdentifier = rfc5912::SHA_384_WITH_RSA_ENCRYPTION;
const OID_SHA512_RSA: ObjectIdentifier = rfc5912::SHA_512_WITH_RSA_ENCRYPTION;
const OID_RSA_PSS: ObjectIdentifier = rfc5912::ID_RSASSA_PSS;
const OID_MGF1: ObjectIdentifier = rfc5912::ID_MGF_1;
const OID_ECDSA_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.1");
const OID_ECDSA_SHA256: ObjectIdentifier = rfc5912::ECDSA_WITH_SHA_256;
const OID_ECDSA_SHA384: ObjectIdentifier = rfc5912::ECDSA_WITH_SHA_384;
const OID_ECDSA_SHA512: ObjectIdentifier = rfc5912::ECDSA_WITH_SHA_512;
const OID_DSA_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.3");
const OID_P256: ObjectIdentifier = rfc5912::SECP_256_R_1;
const OID_P384: ObjectIdentifier = rfc5912::SECP_384_R_1;
const OID_P521: ObjectIdentifier = rfc5912::SECP_521_R_1;

pub(crate) const OID_SHA1: ObjectIdentifier = rfc5912::ID_SHA_1;
pub(crate) const OID_SHA256: ObjectIdentifier = rfc5912::ID_SHA_256;
pub(crate) const OID_SHA384: ObjectIdentifier = rfc5912::ID_SHA_384;
pub(crate) const OID_SHA512: ObjectIdentifier = rfc5912::ID_SHA_512;

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum X509SigError {
    /// The signature does not verify with this key (wrong signer, or tampered data).
    BadSignature,
    /// Refused before any verification: SHA-1, unknown or mismatched algorithm, weak key.
    Refused(String),
}

impl std::fmt::Display for X509SigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            X509SigError::BadSignature => f.write_str("signature does not verify"),
            X509SigError::Refused(why) => f.write_str(why),
        }
    }
}

/// RFC 4055 RSASSA-PSS-params; absent fields take the SHA-1 defaults, which are refused.
#[derive(der::Sequence)]
struct PssParams<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierRef<'a>>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierRef<'a>>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

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

/// A short human name for an algorithm OID, for error messages.
pub(crate) fn name(oid: &ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(oid)
        .map(str::to_string)
        .unwrap_or_else(|| oid.to_string())
}

/// Verify `signature` over `message` with the key in `spki` and the algorithm `alg`.
///
/// `cms_digest` is a CMS SignerInfo's digest algorithm: it supplies the hash when the
/// signature algorithm is bare `rsaEncryption` (RFC 5754 allows that form in CMS only).
/// Everything else passes `None`.
pub(crate) fn verify(
    alg: AlgorithmIdentifierRef<'_>,
    cms_digest: Option<HashAlgorithm>,
    spki: SubjectPublicKeyInfoRef<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), X509SigError> {
    let key = spki.subject_public_key.raw_bytes();
    let verifier = verifier(alg, cms_digest, spki)?;
    UnparsedPublicKey::new(verifier, key)
        .verify(message, signature)
        .map_err(|_| X509SigError::BadSignature)
}

fn verifier(
    alg: AlgorithmIdentifierRef<'_>,
    cms_digest: Option<HashAlgorithm>,
    spki: SubjectPublicKeyInfoRef<'_>,
) -> Result<&'static dyn VerificationAlgorithm, X509SigError> {
    let refused = |s: String| Err(X509SigError::Refused(s));
    let oid = alg.oid;
    let key_oid = spki.algorithm.oid;
    if [OID_SHA1_RSA, OID_ECDSA_SHA1, OID_DSA_SHA1].contains(&oid) {
        return refused(format!(
            "{} uses SHA-1, which is not accepted; it must be re-signed with SHA-256 or stronger",
            name(&oid)
        ));
    }
    let no_params = || match &alg.parameters {
        None => Ok(()),
        Some(p) if p.tag() == der::Tag::Null => Ok(()),
        Some(_) => Err(X509SigError::Refused(format!(
            "unexpected parameters for signature algorithm {}",
            name(&oid)
        ))),
    };
    let pkcs1 = match oid {
        OID_SHA256_RSA => Some(HashAlgorithm::Sha256),
        OID_SHA384_RSA => Some(HashAlgorithm::Sha384),
        OID_SHA512_RSA => Some(HashAlgorithm::Sha512),
        OID_RSA_KEY => match cms_digest {
            Some(h) => Some(h),
            None => return refused("rsaEncryption names no hash outside a CMS SignerInfo".into()),
        },
        _ => None,
    };
    if let Some(hash) = pkcs1 {
        require_rsa_key(&oid, spki)?;
        no_params()?;
        return Ok(match hash {
            HashAlgorithm::Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            HashAlgorithm::Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            HashAlgorithm::Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        });
    }
    if oid == OID_RSA_PSS {
        let hash = pss_hash(alg)?;
        require_rsa_key(&oid, spki)?;
        return Ok(match hash {
            HashAlgorithm::Sha256 => &sig::RSA_PSS_2048_8192_SHA256,
            HashAlgorithm::Sha384 => &sig::RSA_PSS_2048_8192_SHA384,
            HashAlgorithm::Sha512 => &sig::RSA_PSS_2048_8192_SHA512,
        });
    }
    let ecdsa_hash = match oid {
        OID_ECDSA_SHA256 => HashAlgorithm::Sha256,
        OID_ECDSA_SHA384 => HashAlgorithm::Sha384,
        OID_ECDSA_SHA512 => HashAlgorithm::Sha512,
        _ => {
            return refused(format!(
                "signature algorithm {} is not supported (use RSA PKCS#1 v1.5 or RSASSA-PSS with \
                 SHA-256/384/512, or ECDSA with SHA-256/384/512)",
                name(&oid)
            ))
        }
    };
    if alg.parameters.is_some() {
        return refused(format!(
            "unexpected parameters for signature algorithm {}",
            name(&oid)
        ));
    }
    if key_oid != OID_EC_KEY {
        return refused(format!(
            "an ECDSA signature, but the signer's key is {}",
            name(&key_oid)
        ));
    }
    let curve: ObjectIdentifier = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as().ok())
        .ok_or_else(|| X509SigError::Refused("the signer's EC key has no named curve".into()))?;
    use HashAlgorithm::*;
    Ok(match (curve, ecdsa_hash) {
        (OID_P256, Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
        (OID_P256, Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
        (OID_P256, Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
        (OID_P384, Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
        (OID_P384, Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
        (OID_P384, Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
        (OID_P521, Sha256) => &sig::ECDSA_P521_SHA256_ASN1,
        (OID_P521, Sha384) => &sig::ECDSA_P521_SHA384_ASN1,
        (OID_P521, Sha512) => &sig::ECDSA_P521_SHA512_ASN1,
        (other, _) => return refused(format!("EC curve {} is not supported", name(&other))),
    })
}

/// An RSA signature needs an RSA key of at least 2048 bits; saying so beats the bare
/// "does not verify" the 2048–8192 verifiers would give for a smaller key.
fn require_rsa_key(
    oid: &ObjectIdentifier,
    spki: SubjectPublicKeyInfoRef<'_>,
) -> Result<(), X509SigError> {
    if spki.algorithm.oid != OID_RSA_KEY {
        return Err(X509SigError::Refused(format!(
            "an RSA signature ({}), but the signer's key is {}",
            name(oid),
            name(&spki.algorithm.oid)
        )));
    }
    match super::rsa_modulus_bits(spki.subject_public_key.raw_bytes()) {
        Some(bits) if bits >= 2048 => Ok(()),
        Some(bits) => Err(X509SigError::Refused(format!(
            "the signer's key is RSA-{bits}; at least RSA-2048 is required"
        ))),
        None => Err(X509SigError::Refused(
            "the signer's RSA key is malformed".into(),
        )),
    }
}

/// The hash of an RSASSA-PSS signature, accepting only the one sane parameter set (as Go
/// does): SHA-2, MGF1 with the same hash, salt length equal to the hash length, trailer 1.
fn pss_hash(alg: AlgorithmIdentifierRef<'_>) -> Result<HashAlgorithm, X509SigError> {
    let refused = |s: &str| X509SigError::Refused(s.to_string());
    let params: PssParams = alg
        .parameters
        .as_ref()
        .ok_or_else(|| refused("RSASSA-PSS without parameters (SHA-1 defaults) is not accepted"))?
        .decode_as()
        .map_err(|e| X509SigError::Refused(format!("malformed RSASSA-PSS parameters: {e}")))?;
    let hash = params
        .hash
        .as_ref()
        .ok_or_else(|| refused("RSASSA-PSS with the default SHA-1 hash is not accepted"))?;
    let hash = hash_from_oid(&hash.oid)
        .map_err(|e| X509SigError::Refused(format!("RSASSA-PSS hash: {e}")))?;
    let mgf = params
        .mask_gen
        .as_ref()
        .ok_or_else(|| refused("RSASSA-PSS with the default MGF1-SHA-1 is not accepted"))?;
    if mgf.oid != OID_MGF1 {
        return Err(X509SigError::Refused(format!(
            "RSASSA-PSS mask generation {} is not MGF1",
            name(&mgf.oid)
        )));
    }
    let mgf_hash: AlgorithmIdentifierRef = mgf
        .parameters
        .as_ref()
        .ok_or_else(|| refused("RSASSA-PSS MGF1 without a hash"))?
        .decode_as()
        .map_err(|e| X509SigError::Refused(format!("malformed MGF1 parameters: {e}")))?;
    if mgf_hash.oid != hash_oid(hash) {
        return Err(refused(
            "RSASSA-PSS with different message and MGF1 hashes is not accepted",
        ));
    }
    let hash_len = hash.output_len() as u32;
    let salt = params.salt_length.unwrap_or(20);
    if salt != hash_len {
        return Err(X509SigError::Refused(format!(
            "RSASSA-PSS salt length {salt} is not accepted (it must equal the hash length, {hash_len})"
        )));
    }
    if params.trailer_field.unwrap_or(1) != 1 {
        return Err(refused("RSASSA-PSS trailer field must be 1"));
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::BitStringRef;
    use der::{AnyRef, Decode};

    fn alg(oid: ObjectIdentifier) -> AlgorithmIdentifierRef<'static> {
        AlgorithmIdentifierRef {
            oid,
            parameters: None,
        }
    }

    fn rsa_spki() -> SubjectPublicKeyInfoRef<'static> {
        SubjectPublicKeyInfoRef {
            algorithm: alg(OID_RSA_KEY),
            subject_public_key: BitStringRef::from_bytes(&[0]).unwrap(),
        }
    }

    fn refused(r: Result<(), X509SigError>) -> String {
        match r {
            Err(X509SigError::Refused(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
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
    fn refusals_come_before_any_key_use() {
        for oid in [OID_SHA1_RSA, OID_ECDSA_SHA1, OID_DSA_SHA1] {
            let why = refused(verify(alg(oid), None, rsa_spki(), b"m", b"s"));
            assert!(why.contains("SHA-1"), "{why}");
        }
        let why = refused(verify(alg(OID_RSA_PSS), None, rsa_spki(), b"m", b"s"));
        assert!(why.contains("SHA-1"), "{why}");
        // RSASSA-PSS-params with every field defaulted (an empty SEQUENCE) means SHA-1 too.
        let empty = [0x30, 0x00];
        let pss_defaults = AlgorithmIdentifierRef {
            oid: OID_RSA_PSS,
            parameters: Some(AnyRef::from_der(&empty).unwrap()),
        };
        let why = refused(verify(pss_defaults, None, rsa_spki(), b"m", b"s"));
        assert!(why.contains("SHA-1"), "{why}");
        let why = refused(verify(alg(OID_RSA_KEY), None, rsa_spki(), b"m", b"s"));
        assert!(why.contains("names no hash"), "{why}");
        let why = refused(verify(alg(OID_ECDSA_SHA256), None, rsa_spki(), b"m", b"s"));
        assert!(why.contains("signer's key is"), "{why}");
        let why = refused(verify(
            alg(OID_RSA_KEY),
            Some(HashAlgorithm::Sha256),
            rsa_spki(),
            b"m",
            b"s",
        ));
        assert!(why.contains("malformed"), "{why}");
        let why = refused(verify(alg(OID_MGF1), None, rsa_spki(), b"m", b"s"));
        assert!(why.contains("not supported"), "{why}");
    }
}
