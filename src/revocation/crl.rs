//! CRL validation (RFC 5280 §5/§6.3, as notation applies it) on `x509_cert::crl` types.

use std::time::SystemTime;

use der::asn1::{GeneralizedTime, ObjectIdentifier as Oid};
use der::{Decode, Encode, Reader, SliceReader, Tag};
use x509_cert::crl::{CertificateList, RevokedCert};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    BaseCrlNumber, CrlDistributionPoints, CrlNumber, CrlReason, FreshestCrl,
};
use x509_cert::ext::Extension;

use super::sig;
use crate::x509::Certificate;

pub(crate) const ID_CE_CRL_NUMBER: Oid = Oid::new_unwrap("2.5.29.20");
pub(crate) const ID_CE_CRL_REASON: Oid = Oid::new_unwrap("2.5.29.21");
pub(crate) const ID_CE_INVALIDITY_DATE: Oid = Oid::new_unwrap("2.5.29.24");
pub(crate) const ID_CE_DELTA_CRL_INDICATOR: Oid = Oid::new_unwrap("2.5.29.27");
pub(crate) const ID_CE_ISSUING_DISTRIBUTION_POINT: Oid = Oid::new_unwrap("2.5.29.28");
pub(crate) const ID_CE_CRL_DISTRIBUTION_POINTS: Oid = Oid::new_unwrap("2.5.29.31");
pub(crate) const ID_CE_AUTHORITY_KEY_IDENTIFIER: Oid = Oid::new_unwrap("2.5.29.35");
pub(crate) const ID_CE_FRESHEST_CRL: Oid = Oid::new_unwrap("2.5.29.46");
const ID_PE_AUTHORITY_INFO_ACCESS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.1");

/// A CRL that parsed and passed every check against its issuer.
pub(crate) struct ValidCrl {
    pub list: CertificateList,
    /// CRL number as unsigned big-endian bytes without leading zeros.
    pub number: Option<Vec<u8>>,
    /// For a delta CRL: the base CRL number it applies to.
    pub delta_base: Option<Vec<u8>>,
    /// http URIs of the Freshest CRL extension (where the delta CRL lives).
    pub freshest_urls: Vec<String>,
}

/// How the CRLs judged one serial number.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EntryStatus {
    NotRevoked,
    Revoked {
        at: SystemTime,
        reason: Option<CrlReason>,
    },
}

/// Parse a DER CRL; a v1 CRL (no version field) is refused as notation does.
pub(crate) fn parse(bytes: &[u8]) -> Result<CertificateList, String> {
    let tbs = sig::signed_part(bytes).map_err(|e| format!("malformed CRL: {e}"))?;
    let mut reader = SliceReader::new(tbs).map_err(|e| format!("malformed CRL: {e}"))?;
    let _ = der::Header::decode(&mut reader).map_err(|e| format!("malformed CRL: {e}"))?;
    if reader.peek_tag().ok() != Some(Tag::Integer) {
        return Err("unsupported CRL version 1: a v2 CRL is required (ask the CA to set crlNumber/CRL extensions)".into());
    }
    let list = CertificateList::from_der(bytes).map_err(|e| format!("malformed CRL: {e}"))?;
    if list.tbs_cert_list.version != x509_cert::Version::V2 {
        return Err(format!(
            "unsupported CRL version {:?}: a v2 CRL is required",
            list.tbs_cert_list.version
        ));
    }
    Ok(list)
}

/// nextUpdate of a DER CRL, for the disk cache.
pub(crate) fn next_update(bytes: &[u8]) -> Option<SystemTime> {
    let list = CertificateList::from_der(bytes).ok()?;
    list.tbs_cert_list.next_update.map(|t| t.to_system_time())
}

fn uint_bytes(u: &der::asn1::Uint) -> Vec<u8> {
    let b = u.as_bytes();
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[start..].to_vec()
}

/// `a > b` for unsigned big-endian byte strings without leading zeros.
fn greater(a: &[u8], b: &[u8]) -> bool {
    a.len() > b.len() || (a.len() == b.len() && a > b)
}

/// Check a CRL against its issuing CA: v2, issuer name, signature, freshness, extensions.
/// `delta` says whether this CRL was fetched as a delta (it then must carry a delta indicator,
/// and a base must not).
pub(crate) fn validate(
    bytes: &[u8],
    issuer: &Certificate,
    now: SystemTime,
    delta: bool,
) -> Result<ValidCrl, String> {
    let list = parse(bytes)?;
    let tbs = &list.tbs_cert_list;
    let issuer_tbs = &issuer.parsed().tbs_certificate;
    if tbs.issuer.to_der().ok() != issuer_tbs.subject.to_der().ok() {
        return Err(format!(
            "the CRL is issued by {}, not by the certificate's issuer {}",
            tbs.issuer, issuer_tbs.subject
        ));
    }
    if tbs.signature != list.signature_algorithm {
        return Err("the CRL's inner and outer signature algorithms differ".into());
    }
    let signed = sig::signed_part(bytes)?;
    let signature = list
        .signature
        .as_bytes()
        .ok_or("the CRL signature has unused bits")?;
    sig::verify(
        &list.signature_algorithm,
        &issuer_tbs.subject_public_key_info,
        signed,
        signature,
    )
    .map_err(|e| {
        format!(
            "the CRL is not signed by the issuer {}: {e}",
            issuer_tbs.subject
        )
    })?;

    let next = tbs
        .next_update
        .ok_or("the CRL has no nextUpdate; notation requires one")?
        .to_system_time();
    if next <= now {
        return Err(format!(
            "the CRL expired: its nextUpdate {} has passed",
            fmt_time(next)
        ));
    }
    if tbs.this_update.to_system_time() > now + super::CLOCK_SKEW {
        return Err("the CRL's thisUpdate is in the future".into());
    }

    let mut out = ValidCrl {
        list: list.clone(),
        number: None,
        delta_base: None,
        freshest_urls: Vec::new(),
    };
    for ext in tbs.crl_extensions.iter().flatten() {
        let value = ext.extn_value.as_bytes();
        match ext.extn_id {
            ID_CE_CRL_NUMBER => {
                let n = CrlNumber::from_der(value).map_err(|e| format!("CRL number: {e}"))?;
                out.number = Some(uint_bytes(&n.0));
            }
            ID_CE_DELTA_CRL_INDICATOR => {
                let n = BaseCrlNumber::from_der(value)
                    .map_err(|e| format!("delta CRL indicator: {e}"))?;
                out.delta_base = Some(uint_bytes(&n.0));
            }
            ID_CE_FRESHEST_CRL => {
                let f = FreshestCrl::from_der(value).map_err(|e| format!("Freshest CRL: {e}"))?;
                out.freshest_urls = dp_uris(&f.0).into_iter().flatten().collect();
            }
            // Every distribution point of the certificate is fetched and checked, so the
            // scope this extension states needs no separate handling (as in notation).
            ID_CE_ISSUING_DISTRIBUTION_POINT | ID_CE_AUTHORITY_KEY_IDENTIFIER => {}
            other if ext.critical => {
                return Err(format!(
                    "the CRL has an unsupported critical extension {other}"
                ));
            }
            _ => {}
        }
    }
    match (delta, &out.delta_base) {
        (false, Some(_)) => {
            return Err("a delta CRL was served where a complete CRL was expected".into())
        }
        (true, None) => {
            return Err(
                "the Freshest CRL location served a CRL without a delta CRL indicator".into(),
            )
        }
        _ => {}
    }
    if delta && out.number.is_none() {
        return Err("the delta CRL has no CRL number".into());
    }
    Ok(out)
}

/// Check that `delta` may be applied to `base` (RFC 5280 §5.2.4).
pub(crate) fn check_delta_matches(base: &ValidCrl, delta: &ValidCrl) -> Result<(), String> {
    let base_number = base
        .number
        .as_ref()
        .ok_or("the base CRL has no CRL number, so no delta CRL can apply to it")?;
    let delta_number = delta
        .number
        .as_ref()
        .ok_or("the delta CRL has no CRL number")?;
    let indicator = delta.delta_base.as_ref().ok_or("not a delta CRL")?;
    if !greater(delta_number, base_number) {
        return Err("the delta CRL's number is not greater than the base CRL's".into());
    }
    if greater(indicator, base_number) {
        return Err("the delta CRL needs a newer base CRL than the one served".into());
    }
    Ok(())
}

/// Whether `serial` is revoked according to `base` and then `delta`, the later entry winning
/// (a `removeFromCRL` in the delta lifts a `certificateHold` of the base). With an authentic
/// signing time, an entry whose invalidityDate lies after it does not count.
pub(crate) fn entry_status(
    crls: &[&CertificateList],
    serial: &[u8],
    signing_time: Option<SystemTime>,
) -> Result<EntryStatus, String> {
    let mut status = EntryStatus::NotRevoked;
    for crl in crls {
        for entry in crl.tbs_cert_list.revoked_certificates.iter().flatten() {
            if entry.serial_number.as_bytes() != serial {
                continue;
            }
            let (reason, invalidity) = entry_extensions(entry)?;
            if reason == Some(CrlReason::RemoveFromCRL) {
                status = EntryStatus::NotRevoked;
                continue;
            }
            if let (Some(signed), Some(invalid)) = (signing_time, invalidity) {
                if signed < invalid {
                    continue;
                }
            }
            status = EntryStatus::Revoked {
                at: entry.revocation_date.to_system_time(),
                reason,
            };
        }
    }
    Ok(status)
}

fn entry_extensions(
    entry: &RevokedCert,
) -> Result<(Option<CrlReason>, Option<SystemTime>), String> {
    let mut reason = None;
    let mut invalidity = None;
    for ext in entry.crl_entry_extensions.iter().flatten() {
        let value = ext.extn_value.as_bytes();
        match ext.extn_id {
            ID_CE_CRL_REASON => {
                reason = Some(
                    CrlReason::from_der(value).map_err(|e| format!("CRL entry reason: {e}"))?,
                )
            }
            ID_CE_INVALIDITY_DATE => {
                let t = GeneralizedTime::from_der(value)
                    .map_err(|e| format!("CRL entry invalidity date: {e}"))?;
                invalidity = Some(t.to_system_time());
            }
            other if ext.critical => {
                return Err(format!(
                    "a CRL entry has an unsupported critical extension {other} (indirect CRLs are not supported)"
                ))
            }
            _ => {}
        }
    }
    Ok((reason, invalidity))
}

/// URIs of each distribution point (one inner list per point, alternatives for one CRL).
pub(crate) fn dp_uris(
    points: &[x509_cert::ext::pkix::crl::dp::DistributionPoint],
) -> Vec<Vec<String>> {
    points
        .iter()
        .map(|dp| match &dp.distribution_point {
            Some(DistributionPointName::FullName(names)) => names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

pub(crate) fn find_extension(cert: &Certificate, oid: Oid) -> Option<&Extension> {
    cert.parsed()
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == oid)
}

/// The certificate's CRL distribution points, as lists of alternative URIs.
pub(crate) fn distribution_points(cert: &Certificate) -> Result<Vec<Vec<String>>, String> {
    match find_extension(cert, ID_CE_CRL_DISTRIBUTION_POINTS) {
        None => Ok(Vec::new()),
        Some(ext) => {
            let cdp = CrlDistributionPoints::from_der(ext.extn_value.as_bytes())
                .map_err(|e| format!("malformed CRL distribution points extension: {e}"))?;
            Ok(dp_uris(&cdp.0))
        }
    }
}

/// Whether the certificate advertises a Freshest CRL (delta CRL) location.
pub(crate) fn has_freshest_crl(cert: &Certificate) -> bool {
    find_extension(cert, ID_CE_FRESHEST_CRL).is_some()
}

/// OCSP responder URIs from the Authority Information Access extension.
pub(crate) fn ocsp_urls(cert: &Certificate) -> Result<Vec<String>, String> {
    const ID_AD_OCSP: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1");
    match find_extension(cert, ID_PE_AUTHORITY_INFO_ACCESS) {
        None => Ok(Vec::new()),
        Some(ext) => {
            let aia = x509_cert::ext::pkix::AuthorityInfoAccessSyntax::from_der(
                ext.extn_value.as_bytes(),
            )
            .map_err(|e| format!("malformed authority information access extension: {e}"))?;
            Ok(aia
                .0
                .iter()
                .filter(|ad| ad.access_method == ID_AD_OCSP)
                .filter_map(|ad| match &ad.access_location {
                    GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
                    _ => None,
                })
                .collect())
        }
    }
}

pub(crate) fn fmt_time(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{t}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crl_numbers_compare_as_unsigned_integers() {
        assert!(greater(&[2], &[1]));
        assert!(greater(&[1, 0], &[0xff]));
        assert!(!greater(&[1], &[1]));
        assert!(!greater(&[0xff], &[1, 0]));
        let u = der::asn1::Uint::new(&[0, 0x80]).unwrap();
        assert_eq!(uint_bytes(&u), vec![0x80]);
    }

    #[test]
    fn garbage_is_not_a_crl() {
        assert!(parse(b"not a crl").is_err());
        assert!(parse(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
    }
}
