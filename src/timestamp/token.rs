//! TimeStampToken parsing and verification (digest §5 steps 2–5 and 7).

use std::time::Duration;

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::ExtendedKeyUsage;

use crate::crypto::HashAlgorithm;
use crate::x509::{validate_chain, Certificate, ChainPurpose};

use super::asn1::{self, EssCertIdV2, SigningCertificateV2, TstInfo};
use super::{display_subject, path, rfc3339, sigalg, TimestampError, TimestampInfo};

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const OID_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const OID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const OID_EKU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const BASELINE_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.2023.1.1");

/// A token taken apart, nothing verified.
struct Parsed {
    signed_data: SignedData,
    tst_der: Vec<u8>,
    tst: TstInfo,
    certs: Vec<Certificate>,
}

fn malformed(what: &str, e: impl std::fmt::Display) -> TimestampError {
    TimestampError::Malformed(format!("{what}: {e}"))
}

fn invalid(msg: impl Into<String>) -> TimestampError {
    TimestampError::Invalid(msg.into())
}

fn parse(token_der: &[u8]) -> Result<Parsed, TimestampError> {
    let content_info =
        ContentInfo::from_der(token_der).map_err(|e| malformed("not a DER CMS ContentInfo", e))?;
    if content_info.content_type != OID_SIGNED_DATA {
        return Err(TimestampError::Malformed(format!(
            "content type {} is not CMS SignedData",
            content_info.content_type
        )));
    }
    let signed_data: SignedData = content_info
        .content
        .decode_as()
        .map_err(|e| malformed("SignedData", e))?;
    let encap = &signed_data.encap_content_info;
    if encap.econtent_type != OID_TST_INFO {
        return Err(TimestampError::Malformed(format!(
            "encapsulated content type {} is not id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4)",
            encap.econtent_type
        )));
    }
    let econtent = encap
        .econtent
        .as_ref()
        .ok_or_else(|| TimestampError::Malformed("the TSTInfo content is missing".into()))?;
    if econtent.tag() != Tag::OctetString {
        return Err(TimestampError::Malformed(
            "the TSTInfo content is not an OCTET STRING".into(),
        ));
    }
    let tst_der = econtent.value().to_vec();
    let tst = TstInfo::from_der(&tst_der).map_err(|e| malformed("TSTInfo", e))?;
    let mut certs = Vec::new();
    if let Some(set) = &signed_data.certificates {
        for choice in set.0.iter() {
            if let CertificateChoices::Certificate(cert) = choice {
                let der = cert.to_der().map_err(|e| malformed("certificate", e))?;
                certs.push(Certificate::from_der(&der).map_err(|e| malformed("certificate", e))?);
            }
        }
    }
    Ok(Parsed {
        signed_data,
        tst_der,
        tst,
        certs,
    })
}

/// The one SignerInfo and its certificate (SignerInfo v1, issuerAndSerialNumber).
fn signer(parsed: &Parsed) -> Result<(&SignerInfo, &Certificate), TimestampError> {
    let infos = parsed.signed_data.signer_infos.0.as_slice();
    let [info] = infos else {
        return Err(invalid(format!(
            "expected exactly one SignerInfo, found {}",
            infos.len()
        )));
    };
    if info.version != CmsVersion::V1 {
        return Err(invalid(format!(
            "SignerInfo version {:?} is not supported; only version 1 (issuerAndSerialNumber) is",
            info.version
        )));
    }
    let SignerIdentifier::IssuerAndSerialNumber(sid) = &info.sid else {
        return Err(invalid(
            "the SignerInfo identifies its certificate by subject key identifier; only issuerAndSerialNumber is supported",
        ));
    };
    let cert = parsed
        .certs
        .iter()
        .find(|c| {
            let tbs = &c.parsed().tbs_certificate;
            tbs.serial_number == sid.serial_number && tbs.issuer == sid.issuer
        })
        .ok_or_else(|| {
            invalid(format!(
                "the TSA signing certificate (issuer {}, serial {}) is not in the token; the request must set certReq",
                sid.issuer,
                hex::encode(sid.serial_number.as_bytes())
            ))
        })?;
    Ok((info, cert))
}

/// The single value of a signed attribute, if the attribute is present.
fn single_attr<'a>(
    info: &'a SignerInfo,
    oid: ObjectIdentifier,
    name: &str,
) -> Result<Option<&'a der::Any>, TimestampError> {
    let Some(attrs) = &info.signed_attrs else {
        return Ok(None);
    };
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let Some(attr) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(invalid(format!(
            "the {name} signed attribute appears twice"
        )));
    }
    let values = attr.values.as_slice();
    let [value] = values else {
        return Err(invalid(format!(
            "the {name} signed attribute must have exactly one value, has {}",
            values.len()
        )));
    };
    Ok(Some(value))
}

fn hash_name(h: HashAlgorithm) -> &'static str {
    h.name()
}

/// Digest §5 step 4: ESS signing-certificate-v2 binds the signing certificate.
fn check_ess(info: &SignerInfo, cert: &Certificate) -> Result<(), TimestampError> {
    let Some(value) = single_attr(info, OID_SIGNING_CERTIFICATE_V2, "signing-certificate-v2")?
    else {
        let v1 = single_attr(info, OID_SIGNING_CERTIFICATE, "signing-certificate")?.is_some();
        return Err(TimestampError::MissingSigningCertificateV2 {
            detail: if v1 {
                " (it has only the SHA-1 based signing-certificate v1)"
            } else {
                ""
            },
        });
    };
    let scv2: SigningCertificateV2 = value
        .decode_as()
        .map_err(|e| malformed("ESS signing-certificate-v2 attribute", e))?;
    let first: &EssCertIdV2 = scv2.certs.first().ok_or_else(|| {
        TimestampError::SigningCertificateMismatch("the attribute lists no certificate".into())
    })?;
    let hash = match &first.hash_algorithm {
        None => HashAlgorithm::Sha256,
        Some(alg) => sigalg::hash_from_oid(&alg.oid).map_err(|e| {
            TimestampError::SigningCertificateMismatch(format!("its certificate hash: {e}"))
        })?,
    };
    let actual = hash.digest(cert.der());
    if first.cert_hash.as_bytes() != actual.as_slice() {
        return Err(TimestampError::SigningCertificateMismatch(format!(
            "{} of {} is {}, the attribute says {}",
            hash_name(hash),
            display_subject(cert),
            hex::encode(&actual),
            hex::encode(first.cert_hash.as_bytes())
        )));
    }
    if let Some(issuer_serial) = &first.issuer_serial {
        let tbs = &cert.parsed().tbs_certificate;
        let issuer_ok = issuer_serial
            .issuer
            .iter()
            .any(|gn| matches!(gn, GeneralName::DirectoryName(n) if *n == tbs.issuer));
        if !issuer_ok || issuer_serial.serial_number != tbs.serial_number {
            return Err(TimestampError::SigningCertificateMismatch(
                "its issuerSerial names a different certificate than the SignerInfo".into(),
            ));
        }
    }
    Ok(())
}

/// Digest §5 step 2: the CMS signature, content-type and message-digest attributes,
/// signing-time within the TSA certificate's validity.
fn check_signer_info(
    parsed: &Parsed,
    info: &SignerInfo,
    cert: &Certificate,
) -> Result<(), TimestampError> {
    let Some(signed_attrs) = &info.signed_attrs else {
        return Err(invalid(
            "the SignerInfo has no signed attributes (content-type and message-digest are required)",
        ));
    };
    let content_type: ObjectIdentifier = single_attr(info, OID_CONTENT_TYPE, "content-type")?
        .ok_or_else(|| invalid("the content-type signed attribute is missing"))?
        .decode_as()
        .map_err(|e| malformed("content-type attribute", e))?;
    if content_type != OID_TST_INFO {
        return Err(invalid(format!(
            "the content-type signed attribute {content_type} does not match id-ct-TSTInfo"
        )));
    }
    let digest_alg = sigalg::hash_from_oid(&info.digest_alg.oid)
        .map_err(|e| invalid(format!("SignerInfo digest algorithm: {e}")))?;
    let message_digest: OctetString = single_attr(info, OID_MESSAGE_DIGEST, "message-digest")?
        .ok_or_else(|| invalid("the message-digest signed attribute is missing"))?
        .decode_as()
        .map_err(|e| malformed("message-digest attribute", e))?;
    if message_digest.as_bytes() != digest_alg.digest(&parsed.tst_der).as_slice() {
        return Err(TimestampError::BadSignature(
            "the message-digest attribute does not match the TSTInfo content".into(),
        ));
    }
    // RFC 5652 §5.4: the signature covers the DER encoding of the attributes with the
    // EXPLICIT SET OF tag; `Attributes` re-encodes in DER order (as Go's encoder does).
    let signed_bytes = signed_attrs
        .to_der()
        .map_err(|e| malformed("signed attributes", e))?;
    sigalg::verify(
        &info.signature_algorithm,
        Some(digest_alg),
        &cert.parsed().tbs_certificate.subject_public_key_info,
        &signed_bytes,
        info.signature.as_bytes(),
    )
    .map_err(|e| {
        TimestampError::BadSignature(format!("{e} with the key of {}", display_subject(cert)))
    })?;

    if let Some(value) = single_attr(info, OID_SIGNING_TIME, "signing-time")? {
        let t = value
            .to_der()
            .and_then(|der| x509_cert::time::Time::from_der(&der))
            .map_err(|e| malformed("signing-time attribute", e))?;
        let t = t.to_system_time();
        if !cert.is_valid_at(t) {
            return Err(TimestampError::TsaCertificate {
                subject: display_subject(cert),
                reason: format!(
                    "the token's signing-time {} is outside the certificate's validity ({} to {})",
                    rfc3339(t),
                    rfc3339(cert.not_before()),
                    rfc3339(cert.not_after())
                ),
            });
        }
    }
    Ok(())
}

/// Digest §5 step 3.
fn check_imprint(tst: &TstInfo, signature: &[u8]) -> Result<HashAlgorithm, TimestampError> {
    if tst.version != 1 {
        return Err(invalid(format!(
            "TSTInfo version {} is not supported (expected 1)",
            tst.version
        )));
    }
    let hash = imprint_hash(tst)?;
    let expected = hash.digest(signature);
    let found = tst.message_imprint.hashed_message.as_bytes();
    if found != expected.as_slice() {
        return Err(TimestampError::ImprintMismatch {
            hash: hash.name(),
            found: hex::encode(found),
            expected: hex::encode(&expected),
        });
    }
    Ok(hash)
}

fn imprint_hash(tst: &TstInfo) -> Result<HashAlgorithm, TimestampError> {
    let alg = &tst.message_imprint.hash_algorithm;
    let hash =
        sigalg::hash_from_oid(&alg.oid).map_err(|e| invalid(format!("message imprint: {e}")))?;
    if let Some(params) = &alg.parameters {
        if params.tag() != Tag::Null {
            return Err(invalid(
                "message imprint hash algorithm has non-NULL parameters",
            ));
        }
    }
    if tst.message_imprint.hashed_message.as_bytes().len() != hash.output_len() {
        return Err(invalid(format!(
            "message imprint length {} does not fit {}",
            tst.message_imprint.hashed_message.as_bytes().len(),
            hash.name()
        )));
    }
    Ok(hash)
}

/// Leaf rule checked here as well as by `validate_chain`, so the message is specific.
fn check_tsa_eku(cert: &Certificate) -> Result<(), TimestampError> {
    let err = |reason: &str| TimestampError::TsaCertificate {
        subject: display_subject(cert),
        reason: reason.to_string(),
    };
    let ext = cert
        .parsed()
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == OID_EKU)
        .ok_or_else(|| err("it has no extended key usage; a TSA certificate needs a critical id-kp-timeStamping EKU"))?;
    if !ext.critical {
        return Err(err(
            "its extended key usage is not critical; a TSA certificate needs a critical id-kp-timeStamping EKU",
        ));
    }
    let eku = ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
        .map_err(|e| err(&format!("unparsable extended key usage: {e}")))?;
    if eku.0.as_slice() != [OID_KP_TIME_STAMPING] {
        return Err(err(
            "its extended key usage must be exactly id-kp-timeStamping",
        ));
    }
    Ok(())
}

fn info_from(
    tst: &TstInfo,
    hash: HashAlgorithm,
    tsa_subject: String,
    tsa_chain: Vec<String>,
) -> Result<TimestampInfo, TimestampError> {
    let gen_time = tst.gen_time.time;
    let (accuracy, accuracy_in_token) = match &tst.accuracy {
        Some(acc) => (
            asn1::accuracy_duration(acc)
                .ok_or_else(|| invalid("TSTInfo accuracy millis/micros outside 1..999"))?,
            true,
        ),
        None if tst.policy == BASELINE_POLICY => (Duration::from_secs(1), false),
        None => (Duration::ZERO, false),
    };
    let lower = gen_time
        .checked_sub(accuracy)
        .ok_or_else(|| invalid("genTime minus accuracy is out of range"))?;
    let upper = gen_time
        .checked_add(accuracy)
        .ok_or_else(|| invalid("genTime plus accuracy is out of range"))?;
    Ok(TimestampInfo {
        gen_time,
        accuracy,
        accuracy_in_token,
        range: (lower, upper),
        policy: tst.policy.to_string(),
        serial: hex::encode(tst.serial_number.as_bytes()),
        nonce: tst.nonce.as_ref().map(|n| hex::encode(n.as_bytes())),
        hash_algorithm: hash,
        message_imprint: tst.message_imprint.hashed_message.as_bytes().to_vec(),
        tsa_subject,
        tsa_chain,
    })
}

/// Verify a DER TimeStampToken countersigning `signature` (the primitive signature bytes)
/// against the TSA roots: digest §5 steps 2–5, and the range of step 7. Revocation of the
/// TSA chain (step 6) is left to the caller, with `TimestampInfo::tsa_chain`.
pub fn verify_token(
    token_der: &[u8],
    signature: &[u8],
    tsa_roots: &[Certificate],
) -> Result<TimestampInfo, TimestampError> {
    verify_token_with_chain(token_der, signature, tsa_roots).map(|(info, _)| info)
}

/// [`verify_token`], also returning the validated TSA chain (signing certificate first,
/// trusted root last) so the caller can check its revocation (digest §5 step 6).
pub fn verify_token_with_chain(
    token_der: &[u8],
    signature: &[u8],
    tsa_roots: &[Certificate],
) -> Result<(TimestampInfo, Vec<Certificate>), TimestampError> {
    let parsed = parse(token_der)?;
    if parsed.signed_data.version != CmsVersion::V3 {
        return Err(invalid(format!(
            "SignedData version {:?} is not supported (a TimeStampToken is version 3)",
            parsed.signed_data.version
        )));
    }
    let (info, cert) = signer(&parsed)?;
    // ESS first: it decides which certificate the signature is bound to.
    check_ess(info, cert)?;
    check_signer_info(&parsed, info, cert)?;
    let hash = check_imprint(&parsed.tst, signature)?;

    let gen_time = parsed.tst.gen_time.time;
    let pool: Vec<Certificate> = parsed
        .certs
        .iter()
        .filter(|c| c.der() != cert.der())
        .cloned()
        .collect();
    let chain = path::build(cert, &pool, tsa_roots).map_err(TimestampError::UntrustedTsa)?;
    check_tsa_eku(cert)?;
    for c in &chain {
        if !c.is_valid_at(gen_time) {
            return Err(TimestampError::TsaCertificate {
                subject: display_subject(c),
                reason: format!(
                    "not valid at the timestamp's genTime {} (valid from {} to {})",
                    rfc3339(gen_time),
                    rfc3339(c.not_before()),
                    rfc3339(c.not_after())
                ),
            });
        }
    }
    validate_chain(&chain, ChainPurpose::Timestamping, Some(gen_time))?;

    let info = info_from(
        &parsed.tst,
        hash,
        display_subject(cert),
        chain.iter().map(Certificate::sha256_fingerprint).collect(),
    )?;
    Ok((info, chain))
}

/// What a token claims, without verifying anything (for `inspect`). `tsa_chain` lists the
/// certificates carried in the token, the signing certificate first when identifiable.
pub fn parse_token_info(token_der: &[u8]) -> Result<TimestampInfo, TimestampError> {
    let parsed = parse(token_der)?;
    let hash = imprint_hash(&parsed.tst)?;
    let signer_cert = signer(&parsed).ok().map(|(_, c)| c.clone());
    let mut chain: Vec<String> = Vec::new();
    if let Some(c) = &signer_cert {
        chain.push(c.sha256_fingerprint());
    }
    for c in &parsed.certs {
        let fp = c.sha256_fingerprint();
        if !chain.contains(&fp) {
            chain.push(fp);
        }
    }
    info_from(
        &parsed.tst,
        hash,
        signer_cert
            .as_ref()
            .map(display_subject)
            .unwrap_or_default(),
        chain,
    )
}

/// The TSTInfo of a token, unverified (the client's echo checks run before verification so
/// a replayed or misdirected answer gets a precise message).
pub(crate) fn parse_tst_info(token_der: &[u8]) -> Result<TstInfo, TimestampError> {
    Ok(parse(token_der)?.tst)
}
