//! OCSP requests and response validation (RFC 6960) on `x509-ocsp` types.

use std::time::SystemTime;

use der::asn1::{GeneralizedTime, ObjectIdentifier as Oid, OctetString};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    ResponderId, SingleResponse, TbsRequest,
};

use super::crl::{find_extension, ID_CE_INVALIDITY_DATE};
use super::sig;
use crate::x509::Certificate;

const ID_SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
const ID_PKIX_OCSP_BASIC: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const ID_KP_OCSP_SIGNING: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.3.9");
const ID_CE_EXT_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.37");

/// What a responder said about the certificate, once the answer proved authentic and fresh.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OcspStatus {
    Good,
    Revoked {
        at: SystemTime,
        reason: Option<x509_cert::ext::pkix::CrlReason>,
    },
    Unknown,
}

fn sha1(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// CertID with SHA-1, as notation sends it: many public responders answer nothing else.
pub(crate) fn cert_id(cert: &Certificate, issuer: &Certificate) -> Result<CertId, String> {
    let issuer_tbs = &issuer.parsed().tbs_certificate;
    let name = issuer_tbs.subject.to_der().map_err(|e| e.to_string())?;
    let key = issuer_tbs
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ID_SHA1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: OctetString::new(sha1(&name)).map_err(|e| e.to_string())?,
        issuer_key_hash: OctetString::new(sha1(key)).map_err(|e| e.to_string())?,
        serial_number: cert.parsed().tbs_certificate.serial_number.clone(),
    })
}

/// DER OCSPRequest for one certificate (unsigned, no nonce: answers stay cacheable).
pub(crate) fn request(id: &CertId) -> Result<Vec<u8>, String> {
    OcspRequest {
        tbs_request: TbsRequest {
            version: Default::default(),
            requestor_name: None,
            request_list: vec![Request {
                req_cert: id.clone(),
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(|e| e.to_string())
}

/// The BasicOCSPResponse inside a successful OCSPResponse.
fn basic(bytes: &[u8]) -> Result<(BasicOcspResponse, Vec<u8>), String> {
    let resp =
        OcspResponse::from_der(bytes).map_err(|e| format!("malformed OCSP response: {e}"))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(format!(
            "the OCSP responder refused the request: {:?}",
            resp.response_status
        ));
    }
    let rb = resp
        .response_bytes
        .ok_or("a successful OCSP response without response bytes")?;
    if rb.response_type != ID_PKIX_OCSP_BASIC {
        return Err(format!(
            "unsupported OCSP response type {}",
            rb.response_type
        ));
    }
    let inner = rb.response.as_bytes().to_vec();
    let basic = BasicOcspResponse::from_der(&inner)
        .map_err(|e| format!("malformed basic OCSP response: {e}"))?;
    Ok((basic, inner))
}

/// Earliest nextUpdate of an OCSP response, for the disk cache.
pub(crate) fn next_update(bytes: &[u8]) -> Option<SystemTime> {
    let (basic, _) = basic(bytes).ok()?;
    basic
        .tbs_response_data
        .responses
        .iter()
        .map(|r| r.next_update.map(|t| t.0.to_system_time()))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
}

fn responder_matches(id: &ResponderId, cert: &x509_cert::Certificate) -> bool {
    let tbs = &cert.tbs_certificate;
    match id {
        ResponderId::ByName(name) => name.to_der().ok() == tbs.subject.to_der().ok(),
        ResponderId::ByKey(hash) => {
            hash.as_bytes() == sha1(tbs.subject_public_key_info.subject_public_key.raw_bytes())
        }
    }
}

fn verify_by(
    basic: &BasicOcspResponse,
    inner: &[u8],
    signer: &x509_cert::Certificate,
) -> Result<(), String> {
    let signed = sig::signed_part(inner)?;
    let signature = basic
        .signature
        .as_bytes()
        .ok_or("the OCSP signature has unused bits")?;
    sig::verify(
        &basic.signature_algorithm,
        &signer.tbs_certificate.subject_public_key_info,
        signed,
        signature,
    )
}

/// RFC 6960 §4.2.2.2: the issuing CA itself, or a responder certificate the CA issued for
/// OCSP signing (EKU id-kp-OCSPSigning), valid now.
fn check_signer(
    basic: &BasicOcspResponse,
    inner: &[u8],
    issuer: &Certificate,
    now: SystemTime,
) -> Result<(), String> {
    let responder = &basic.tbs_response_data.responder_id;
    if responder_matches(responder, issuer.parsed()) {
        return verify_by(basic, inner, issuer.parsed())
            .map_err(|e| format!("the OCSP response is not signed by the issuer: {e}"));
    }
    let issuer_tbs = &issuer.parsed().tbs_certificate;
    let mut last_err = "the OCSP response is signed neither by the certificate's issuer nor by a responder certificate it issued".to_string();
    for cand in basic.certs.iter().flatten() {
        if !responder_matches(responder, cand) {
            continue;
        }
        let tbs = &cand.tbs_certificate;
        if tbs.issuer.to_der().ok() != issuer_tbs.subject.to_der().ok() {
            last_err = format!(
                "the OCSP responder certificate {} is issued by {}, not by the certificate's issuer {}",
                tbs.subject, tbs.issuer, issuer_tbs.subject
            );
            continue;
        }
        let cand_der = cand.to_der().map_err(|e| e.to_string())?;
        let cand_tbs = sig::signed_part(&cand_der)?;
        let cand_sig = cand
            .signature
            .as_bytes()
            .ok_or("responder certificate signature has unused bits")?;
        if let Err(e) = sig::verify(
            &cand.signature_algorithm,
            &issuer_tbs.subject_public_key_info,
            cand_tbs,
            cand_sig,
        ) {
            last_err = format!(
                "the OCSP responder certificate {} is not signed by the issuer: {e}",
                tbs.subject
            );
            continue;
        }
        let cand_cert = Certificate::from_der(&cand_der).map_err(|e| e.to_string())?;
        let eku_ok = find_extension(&cand_cert, ID_CE_EXT_KEY_USAGE)
            .and_then(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok())
            .is_some_and(|eku| eku.0.contains(&ID_KP_OCSP_SIGNING));
        if !eku_ok {
            last_err = format!(
                "the OCSP responder certificate {} lacks extended key usage OCSPSigning",
                tbs.subject
            );
            continue;
        }
        if !cand_cert.is_valid_at(now) {
            last_err = format!(
                "the OCSP responder certificate {} is not valid now",
                tbs.subject
            );
            continue;
        }
        return verify_by(basic, inner, cand)
            .map_err(|e| format!("the OCSP response signature does not verify: {e}"));
    }
    Err(last_err)
}

fn single_for<'a>(basic: &'a BasicOcspResponse, id: &CertId) -> Option<&'a SingleResponse> {
    basic.tbs_response_data.responses.iter().find(|r| {
        r.cert_id.hash_algorithm.oid == id.hash_algorithm.oid
            && r.cert_id.issuer_name_hash == id.issuer_name_hash
            && r.cert_id.issuer_key_hash == id.issuer_key_hash
            && r.cert_id.serial_number == id.serial_number
    })
}

/// Validate a DER OCSPResponse for `id` issued under `issuer` and return the status.
/// Errors mean the answer cannot be relied on (the caller treats it as unknown).
pub(crate) fn evaluate(
    bytes: &[u8],
    id: &CertId,
    issuer: &Certificate,
    now: SystemTime,
    signing_time: Option<SystemTime>,
) -> Result<OcspStatus, String> {
    let (basic, inner) = basic(bytes)?;
    check_signer(&basic, &inner, issuer, now)?;
    let single = single_for(&basic, id)
        .ok_or("the OCSP response does not answer for this certificate (CertID mismatch)")?;
    let this_update = single.this_update.0.to_system_time();
    if this_update > now + super::CLOCK_SKEW {
        return Err("the OCSP response's thisUpdate is in the future".into());
    }
    let next = single
        .next_update
        .ok_or("the OCSP response has no nextUpdate; notation treats it as expired")?
        .0
        .to_system_time();
    if next <= now {
        return Err(format!(
            "the OCSP response expired at {}",
            super::crl::fmt_time(next)
        ));
    }
    Ok(match &single.cert_status {
        CertStatus::Good(_) => OcspStatus::Good,
        CertStatus::Unknown(_) => OcspStatus::Unknown,
        CertStatus::Revoked(info) => {
            let invalidity = single
                .single_extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == ID_CE_INVALIDITY_DATE)
                .and_then(|e| GeneralizedTime::from_der(e.extn_value.as_bytes()).ok())
                .map(|t| t.to_system_time());
            match (signing_time, invalidity) {
                (Some(signed), Some(invalid)) if signed < invalid => OcspStatus::Good,
                _ => OcspStatus::Revoked {
                    at: info.revocation_time.0.to_system_time(),
                    reason: info.revocation_reason,
                },
            }
        }
    })
}
