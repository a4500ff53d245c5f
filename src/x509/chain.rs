//! Notary certificate and chain rules (digest §6).
//!
//! The chain is validated exactly as given (leaf first, self-signed root last); no path is
//! built. Each link's signature is checked with aws-lc-rs over the certificate's original
//! TBS bytes (never a re-encoding, which could differ from what was signed).

use std::time::SystemTime;

use const_oid::db::rfc5280;
use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier};
use der::referenced::OwnedToRef;
use der::{Decode, Encode};
use spki::AlgorithmIdentifierRef;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

use super::Certificate;
use crate::crypto::x509sig::{self, X509SigError};
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
pub(crate) fn extension(
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

    let issuer_spki = issuer
        .parsed
        .tbs_certificate
        .subject_public_key_info
        .owned_to_ref();
    x509sig::verify(raw.algorithm, None, issuer_spki, &tbs, signature).map_err(|e| match e {
        X509SigError::BadSignature => LinkError::BadSignature,
        X509SigError::Refused(why) => {
            LinkError::Refused(format!("the certificate's signature is refused: {why}"))
        }
    })
}
