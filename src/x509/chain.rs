//! Notary certificate and chain rules (digest §6).
//!
//! The chain is validated exactly as given (leaf first, self-signed root last); no path is
//! built. Each link's signature is checked with aws-lc-rs over the certificate's original
//! TBS bytes (never a re-encoding, which could differ from what was signed).

use std::time::SystemTime;

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::db::{rfc5280, rfc5912};
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use der::{Decode, Encode, Tagged};
use spki::AlgorithmIdentifierRef;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

use super::Certificate;
use crate::crypto::KeySpec;

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
const OID_SHA1: ObjectIdentifier = rfc5912::ID_SHA_1;
const OID_SHA256: ObjectIdentifier = rfc5912::ID_SHA_256;
const OID_SHA384: ObjectIdentifier = rfc5912::ID_SHA_384;
const OID_SHA512: ObjectIdentifier = rfc5912::ID_SHA_512;
const OID_RSA_KEY: ObjectIdentifier = rfc5912::RSA_ENCRYPTION;
const OID_EC_KEY: ObjectIdentifier = rfc5912::ID_EC_PUBLIC_KEY;
const OID_P256: ObjectIdentifier = rfc5912::SECP_256_R_1;
const OID_P384: ObjectIdentifier = rfc5912::SECP_384_R_1;
const OID_P521: ObjectIdentifier = rfc5912::SECP_521_R_1;

const OID_EXT_BASIC_CONSTRAINTS: ObjectIdentifier = rfc5280::ID_CE_BASIC_CONSTRAINTS;
const OID_EXT_KEY_USAGE: ObjectIdentifier = rfc5280::ID_CE_KEY_USAGE;
const OID_EXT_EKU: ObjectIdentifier = rfc5280::ID_CE_EXT_KEY_USAGE;

const OID_KP_SERVER_AUTH: ObjectIdentifier = rfc5280::ID_KP_SERVER_AUTH;
const OID_KP_CLIENT_AUTH: ObjectIdentifier = rfc5280::ID_KP_CLIENT_AUTH;
const OID_KP_EMAIL: ObjectIdentifier = rfc5280::ID_KP_EMAIL_PROTECTION;
const OID_KP_TIMESTAMPING: ObjectIdentifier = rfc5280::ID_KP_TIME_STAMPING;
const OID_KP_OCSP_SIGNING: ObjectIdentifier = rfc5280::ID_KP_OCSP_SIGNING;

/// Check the ordered chain (leaf first, self-signed root last) against the Notary rules for
/// `purpose`. When `at` is given, every certificate must also be valid at that time.
pub fn validate_chain(
    chain: &[Certificate],
    purpose: ChainPurpose,
    at: Option<SystemTime>,
) -> Result<(), ChainError> {
    if chain.is_empty() {
        return Err(ChainError::Empty);
    }
    let fail = |index: usize, reason: String| ChainError::Certificate {
        index,
        subject: chain[index].subject(),
        reason,
    };

    if let Some(at) = at {
        for (index, cert) in chain.iter().enumerate() {
            if !cert.is_valid_at(at) {
                return Err(ChainError::NotValidAt {
                    index,
                    subject: cert.subject(),
                    at: format_time(at),
                    not_before: format_time(cert.not_before()),
                    not_after: format_time(cert.not_after()),
                });
            }
        }
    }

    let last = chain.len() - 1;
    for (index, cert) in chain.iter().enumerate() {
        if index == last {
            // The root (or the lone self-signed leaf) must be self-issued and verify with
            // its own key.
            if !cert.is_self_issued() {
                return Err(ChainError::NoRoot {
                    subject: cert.subject(),
                });
            }
            verify_signed_by(cert, cert).map_err(|e| match e {
                LinkError::BadSignature => ChainError::NoRoot {
                    subject: cert.subject(),
                },
                LinkError::Refused(reason) => fail(index, reason),
            })?;
        } else {
            if is_self_signed(cert) {
                let role = if index == 0 { "leaf" } else { "intermediate" };
                return Err(fail(
                    index,
                    format!("the {role} certificate is self-signed; only the last certificate of a chain may be self-signed (give the chain leaf first, root last)"),
                ));
            }
            let issuer = &chain[index + 1];
            let names_match = cert.parsed.tbs_certificate.issuer.to_der().ok()
                == issuer.parsed.tbs_certificate.subject.to_der().ok();
            if !names_match {
                return Err(ChainError::OutOfOrder {
                    index,
                    subject: cert.subject(),
                });
            }
            verify_signed_by(cert, issuer).map_err(|e| match e {
                LinkError::BadSignature => ChainError::OutOfOrder {
                    index,
                    subject: cert.subject(),
                },
                LinkError::Refused(reason) => fail(index, reason),
            })?;
        }

        if index == 0 {
            check_leaf(cert, purpose).map_err(|r| fail(index, r))?;
        } else {
            check_ca(cert, purpose, index - 1).map_err(|r| fail(index, r))?;
        }
    }
    Ok(())
}

/// Whether the certificate's basicConstraints say `cA = TRUE` (the trust store accepts such
/// certificates, or self-signed ones, as anchors).
pub fn is_ca(cert: &Certificate) -> bool {
    matches!(basic_constraints(cert), Ok(Some((bc, _))) if bc.ca)
}

/// Whether the certificate is self-issued and its signature verifies with its own key (what
/// notation calls self-signed; a trust store accepts such certificates as anchors).
pub fn is_self_signed(cert: &Certificate) -> bool {
    cert.is_self_issued() && verify_signed_by(cert, cert).is_ok()
}

fn format_time(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{t}"))
}

/// The single extension with `oid`, if present; a repeated extension is an error (RFC 5280
/// forbids it and Go refuses such certificates).
fn extension(
    cert: &Certificate,
    oid: ObjectIdentifier,
) -> Result<Option<&x509_cert::ext::Extension>, String> {
    let mut found = None;
    for ext in cert
        .parsed
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id == oid)
    {
        if found.is_some() {
            return Err(format!("extension {oid} appears more than once"));
        }
        found = Some(ext);
    }
    Ok(found)
}

fn decode_extension<'a, T: Decode<'a>>(
    cert: &'a Certificate,
    oid: ObjectIdentifier,
    name: &str,
) -> Result<Option<(T, bool)>, String> {
    match extension(cert, oid)? {
        None => Ok(None),
        Some(ext) => T::from_der(ext.extn_value.as_bytes())
            .map(|v| Some((v, ext.critical)))
            .map_err(|e| format!("malformed {name} extension: {e}")),
    }
}

fn basic_constraints(cert: &Certificate) -> Result<Option<(BasicConstraints, bool)>, String> {
    decode_extension(cert, OID_EXT_BASIC_CONSTRAINTS, "basicConstraints")
}

fn check_ca(cert: &Certificate, purpose: ChainPurpose, ca_below: usize) -> Result<(), String> {
    let bc = basic_constraints(cert)?;
    // The spec wants basicConstraints critical; notation does not check it, nor do we.
    let Some((bc, _critical)) = bc.filter(|(bc, _)| bc.ca) else {
        return Err(
            "a CA certificate needs the basicConstraints extension with cA=TRUE".to_string(),
        );
    };
    if let Some(path_len) = bc.path_len_constraint {
        if usize::from(path_len) < ca_below {
            return Err(format!(
                "basicConstraints pathLenConstraint is {path_len} but {ca_below} CA certificate(s) follow below it in the chain"
            ));
        }
    }
    let ku = decode_extension::<KeyUsage>(cert, OID_EXT_KEY_USAGE, "keyUsage")?;
    let Some((ku, critical)) = ku else {
        return Err("a CA certificate needs the keyUsage extension (with keyCertSign)".into());
    };
    if purpose == ChainPurpose::CodeSigning && !critical {
        return Err("the keyUsage extension must be marked critical".into());
    }
    if !ku.0.contains(KeyUsages::KeyCertSign) {
        return Err("a CA certificate's keyUsage must include keyCertSign".into());
    }
    Ok(())
}

fn check_leaf(cert: &Certificate, purpose: ChainPurpose) -> Result<(), String> {
    if let Some((bc, _)) = basic_constraints(cert)? {
        if bc.ca {
            return Err("the leaf (signing) certificate is a CA certificate (basicConstraints cA=TRUE); sign with an end-entity certificate".into());
        }
    }

    let ku = decode_extension::<KeyUsage>(cert, OID_EXT_KEY_USAGE, "keyUsage")?;
    let Some((ku, critical)) = ku else {
        return Err(
            "the leaf certificate needs the keyUsage extension with digitalSignature".into(),
        );
    };
    if purpose == ChainPurpose::CodeSigning && !critical {
        return Err("the leaf certificate's keyUsage extension must be marked critical".into());
    }
    if !ku.0.contains(KeyUsages::DigitalSignature) {
        return Err("the leaf certificate's keyUsage must include digitalSignature".into());
    }
    let forbidden = [
        (KeyUsages::KeyEncipherment, "keyEncipherment"),
        (KeyUsages::DataEncipherment, "dataEncipherment"),
        (KeyUsages::KeyAgreement, "keyAgreement"),
        (KeyUsages::KeyCertSign, "keyCertSign"),
        (KeyUsages::CRLSign, "cRLSign"),
        (KeyUsages::EncipherOnly, "encipherOnly"),
        (KeyUsages::DecipherOnly, "decipherOnly"),
    ];
    let bad: Vec<&str> = forbidden
        .iter()
        .filter(|(bit, _)| ku.0.contains(*bit))
        .map(|(_, name)| *name)
        .collect();
    if !bad.is_empty() {
        return Err(format!(
            "the leaf certificate's keyUsage must be digitalSignature only, but also has {}",
            bad.join(", ")
        ));
    }

    let eku = decode_extension::<ExtendedKeyUsage>(cert, OID_EXT_EKU, "extendedKeyUsage")?;
    match purpose {
        ChainPurpose::CodeSigning => {
            if let Some((eku, _)) = eku {
                let excluded = [
                    (OID_KP_SERVER_AUTH, "serverAuth"),
                    (OID_KP_CLIENT_AUTH, "clientAuth"),
                    (OID_KP_EMAIL, "emailProtection"),
                    (OID_KP_TIMESTAMPING, "timeStamping"),
                    (OID_KP_OCSP_SIGNING, "OCSPSigning"),
                ];
                for (oid, name) in excluded {
                    if eku.0.contains(&oid) {
                        return Err(format!(
                            "the leaf certificate's extendedKeyUsage must not contain {name}; use a code-signing certificate"
                        ));
                    }
                }
            }
        }
        ChainPurpose::Timestamping => {
            let ok = matches!(&eku, Some((eku, _)) if eku.0.len() == 1 && eku.0[0] == OID_KP_TIMESTAMPING);
            if !ok {
                return Err("a timestamping certificate's extendedKeyUsage must contain exactly timeStamping".into());
            }
            if !eku.map(|(_, critical)| critical).unwrap_or(false) {
                return Err("a timestamping certificate's extendedKeyUsage extension must be marked critical".into());
            }
        }
    }

    KeySpec::from_spki_der(&cert.spki_der()).map_err(|e| e.to_string())?;
    Ok(())
}

/// Why a link does not hold: a signature that does not verify (wrong issuer, hence "out of
/// order") or something we refuse outright (SHA-1, unknown algorithm).
enum LinkError {
    BadSignature,
    Refused(String),
}

/// The parts of a certificate needed to check its signature, borrowed from its original DER.
#[derive(der::Sequence)]
struct RawCertificate<'a> {
    tbs: AnyRef<'a>,
    algorithm: AlgorithmIdentifierRef<'a>,
    signature: BitStringRef<'a>,
}

/// RSASSA-PSS-params (RFC 4055); absent fields take the (SHA-1) defaults, which we refuse.
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

/// Check that `cert`'s signature was made by `issuer`'s key.
fn verify_signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), LinkError> {
    let raw = RawCertificate::from_der(cert.der())
        .map_err(|e| LinkError::Refused(format!("malformed certificate: {e}")))?;
    let tbs = raw
        .tbs
        .to_der()
        .map_err(|e| LinkError::Refused(format!("malformed certificate: {e}")))?;
    let inner = cert
        .parsed
        .tbs_certificate
        .signature
        .to_der()
        .map_err(|e| LinkError::Refused(e.to_string()))?;
    let outer = raw
        .algorithm
        .to_der()
        .map_err(|e| LinkError::Refused(e.to_string()))?;
    if inner != outer {
        return Err(LinkError::Refused(
            "the signature algorithm inside the certificate differs from the one outside".into(),
        ));
    }
    let signature = raw.signature.as_bytes().ok_or_else(|| {
        LinkError::Refused("the certificate signature is not a whole number of bytes".into())
    })?;

    let issuer_spki = &issuer.parsed.tbs_certificate.subject_public_key_info;
    let key_oid = issuer_spki.algorithm.oid;
    let key = issuer_spki.subject_public_key.raw_bytes();
    let curve: Option<ObjectIdentifier> = issuer_spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as().ok());

    if key_oid == OID_RSA_KEY {
        match crate::crypto::rsa_modulus_bits(key) {
            Some(bits) if bits >= 2048 => {}
            Some(bits) => {
                return Err(LinkError::Refused(format!(
                "the key that signed this certificate is RSA-{bits}; at least RSA-2048 is required"
            )))
            }
            None => {
                return Err(LinkError::Refused(
                    "the issuer's RSA key is malformed".into(),
                ))
            }
        }
    }
    let alg = signature_algorithm(&raw.algorithm, key_oid, curve)?;
    UnparsedPublicKey::new(alg, key)
        .verify(&tbs, signature)
        .map_err(|_| LinkError::BadSignature)
}

fn signature_algorithm(
    alg: &AlgorithmIdentifierRef<'_>,
    key_oid: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
) -> Result<&'static dyn VerificationAlgorithm, LinkError> {
    let refused = |s: String| Err(LinkError::Refused(s));
    let oid = alg.oid;
    if [OID_SHA1_RSA, OID_ECDSA_SHA1, OID_DSA_SHA1].contains(&oid) {
        return refused("the certificate is signed with SHA-1, which Notary does not accept; reissue it with SHA-256 or stronger".into());
    }
    let needs_rsa = || {
        if key_oid == OID_RSA_KEY {
            Ok(())
        } else {
            Err(LinkError::Refused(format!(
                "the certificate has an RSA signature but its issuer's key is {key_oid}"
            )))
        }
    };
    let no_params = || match &alg.parameters {
        None => Ok(()),
        Some(p) if p.tag() == der::Tag::Null => Ok(()),
        Some(_) => Err(LinkError::Refused(format!(
            "unexpected parameters for signature algorithm {oid}"
        ))),
    };
    if oid == OID_SHA256_RSA || oid == OID_SHA384_RSA || oid == OID_SHA512_RSA {
        needs_rsa()?;
        no_params()?;
        return Ok(match oid {
            o if o == OID_SHA256_RSA => &sig::RSA_PKCS1_2048_8192_SHA256,
            o if o == OID_SHA384_RSA => &sig::RSA_PKCS1_2048_8192_SHA384,
            _ => &sig::RSA_PKCS1_2048_8192_SHA512,
        });
    }
    if oid == OID_RSA_PSS {
        needs_rsa()?;
        let params: PssParams = alg
            .parameters
            .as_ref()
            .ok_or_else(|| LinkError::Refused("RSASSA-PSS signature without parameters".into()))?
            .decode_as()
            .map_err(|e| LinkError::Refused(format!("malformed RSASSA-PSS parameters: {e}")))?;
        let hash = params.hash.map(|h| h.oid).unwrap_or(OID_SHA1);
        let mgf_hash = match &params.mask_gen {
            None => OID_SHA1,
            Some(m) if m.oid == OID_MGF1 => m
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<AlgorithmIdentifierRef>().ok())
                .map(|a| a.oid)
                .ok_or_else(|| LinkError::Refused("malformed RSASSA-PSS MGF1 parameters".into()))?,
            Some(m) => return refused(format!("unsupported RSASSA-PSS mask generation {}", m.oid)),
        };
        let (verifier, hash_len): (&'static dyn VerificationAlgorithm, u32) = match hash {
            h if h == OID_SHA256 => (&sig::RSA_PSS_2048_8192_SHA256, 32),
            h if h == OID_SHA384 => (&sig::RSA_PSS_2048_8192_SHA384, 48),
            h if h == OID_SHA512 => (&sig::RSA_PSS_2048_8192_SHA512, 64),
            h if h == OID_SHA1 => return refused("the certificate is signed with RSASSA-PSS over SHA-1, which Notary does not accept".into()),
            h => return refused(format!("unsupported RSASSA-PSS hash {h}")),
        };
        // Like Go, only the one sane parameter set: MGF1 with the same hash, salt = hash
        // length, default trailer.
        if mgf_hash != hash {
            return refused(
                "RSASSA-PSS with an MGF1 hash different from the message hash is not supported"
                    .into(),
            );
        }
        if params.salt_length.unwrap_or(20) != hash_len {
            return refused(format!(
                "RSASSA-PSS salt length {} is not supported (must equal the hash length, {hash_len})",
                params.salt_length.unwrap_or(20)
            ));
        }
        if params.trailer_field.unwrap_or(1) != 1 {
            return refused("RSASSA-PSS trailer field must be 1".into());
        }
        return Ok(verifier);
    }
    if oid == OID_ECDSA_SHA256 || oid == OID_ECDSA_SHA384 || oid == OID_ECDSA_SHA512 {
        if alg.parameters.is_some() {
            return refused(format!(
                "unexpected parameters for signature algorithm {oid}"
            ));
        }
        if key_oid != OID_EC_KEY {
            return refused(format!(
                "the certificate has an ECDSA signature but its issuer's key is {key_oid}"
            ));
        }
        let h = if oid == OID_ECDSA_SHA256 {
            256
        } else if oid == OID_ECDSA_SHA384 {
            384
        } else {
            512
        };
        let c = match curve {
            Some(c) if c == OID_P256 => 256,
            Some(c) if c == OID_P384 => 384,
            Some(c) if c == OID_P521 => 521,
            Some(c) => return refused(format!("unsupported issuer curve {c}")),
            None => return refused("the issuer's EC key has no named curve".into()),
        };
        return Ok(match (c, h) {
            (256, 256) => &sig::ECDSA_P256_SHA256_ASN1,
            (256, 384) => &sig::ECDSA_P256_SHA384_ASN1,
            (256, _) => &sig::ECDSA_P256_SHA512_ASN1,
            (384, 256) => &sig::ECDSA_P384_SHA256_ASN1,
            (384, 384) => &sig::ECDSA_P384_SHA384_ASN1,
            (384, _) => &sig::ECDSA_P384_SHA512_ASN1,
            (_, 256) => &sig::ECDSA_P521_SHA256_ASN1,
            (_, 384) => &sig::ECDSA_P521_SHA384_ASN1,
            _ => &sig::ECDSA_P521_SHA512_ASN1,
        });
    }
    refused(format!(
        "unsupported certificate signature algorithm {oid} (use RSA PKCS#1 v1.5 or RSASSA-PSS with SHA-256/384/512, or ECDSA with SHA-256/384/512)"
    ))
}
