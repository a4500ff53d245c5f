//! The protected-header rules JWS and COSE share (digest §3, §4): `crit` membership, the
//! signing scheme and its time header, expiry after signing time, extended attributes.
//!
//! Each format decodes its own wire types (JSON strings vs CBOR tag-1 integers, text vs
//! integer labels) into `ProtectedFields`; `check` then applies the rules once, so the two
//! parsers cannot drift apart.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{
    EnvelopeError, ExtendedAttribute, SigningScheme, HDR_AUTHENTIC_SIGNING_TIME, HDR_EXPIRY,
    HDR_SIGNING_SCHEME,
};

/// Protected-header content after format-specific decoding, before the Notary rules.
#[derive(Debug, Default)]
pub(super) struct ProtectedFields {
    /// Names listed in `crit`, in order (COSE integer labels as decimal strings).
    pub crit: Vec<String>,
    /// Every label present in the protected header, named as in `crit`.
    pub present: BTreeSet<String>,
    pub signing_scheme: Option<String>,
    pub signing_time: Option<SystemTime>,
    pub authentic_signing_time: Option<SystemTime>,
    pub expiry: Option<SystemTime>,
    pub verification_plugin: Option<String>,
    pub verification_plugin_min_version: Option<String>,
    /// Labels outside the Notary-registered set, with their values mapped to JSON.
    pub extended: Vec<(String, serde_json::Value)>,
}

/// The fields of `ParsedEnvelope` that come from the protected header.
#[derive(Debug)]
pub(super) struct CheckedHeader {
    pub signing_scheme: SigningScheme,
    pub signing_time: Option<SystemTime>,
    pub authentic_signing_time: Option<SystemTime>,
    pub expiry: Option<SystemTime>,
    pub verification_plugin: Option<String>,
    pub verification_plugin_min_version: Option<String>,
    pub extended_attributes: Vec<ExtendedAttribute>,
}

pub(super) fn check(
    format: &'static str,
    fields: ProtectedFields,
) -> Result<CheckedHeader, EnvelopeError> {
    let err = |reason: String| EnvelopeError::Header { format, reason };

    if fields.crit.is_empty() {
        return Err(err(
            "missing or empty \"crit\": it must list io.cncf.notary.signingScheme".into(),
        ));
    }
    let mut crit = BTreeSet::new();
    for name in &fields.crit {
        if !crit.insert(name.as_str()) {
            return Err(err(format!("\"crit\" lists {name:?} twice")));
        }
        if !fields.present.contains(name) {
            return Err(err(format!(
                "\"crit\" lists {name:?}, which is not in the protected header"
            )));
        }
    }
    let require_critical = |name: &str| {
        if crit.contains(name) {
            Ok(())
        } else {
            Err(err(format!(
                "{name} is present but not listed in \"crit\"; it must be marked critical"
            )))
        }
    };

    let scheme_name = fields
        .signing_scheme
        .ok_or_else(|| err(format!("missing {HDR_SIGNING_SCHEME}")))?;
    let signing_scheme = SigningScheme::parse(&scheme_name).ok_or_else(|| {
        err(format!(
            "unsupported signing scheme {scheme_name:?} (expected notary.x509 or notary.x509.signingAuthority)"
        ))
    })?;
    require_critical(HDR_SIGNING_SCHEME)?;
    if fields.authentic_signing_time.is_some() {
        require_critical(HDR_AUTHENTIC_SIGNING_TIME)?;
    }
    if fields.expiry.is_some() {
        require_critical(HDR_EXPIRY)?;
    }

    let signed_at = match signing_scheme {
        SigningScheme::X509 => {
            if fields.authentic_signing_time.is_some() {
                return Err(err(
                    "io.cncf.notary.authenticSigningTime is only allowed with the notary.x509.signingAuthority scheme".into(),
                ));
            }
            fields.signing_time.ok_or_else(|| {
                err("missing io.cncf.notary.signingTime, required by the notary.x509 scheme".into())
            })?
        }
        SigningScheme::X509SigningAuthority => {
            if fields.signing_time.is_some() {
                return Err(err(
                    "io.cncf.notary.signingTime is only allowed with the notary.x509 scheme".into(),
                ));
            }
            fields.authentic_signing_time.ok_or_else(|| {
                err("missing io.cncf.notary.authenticSigningTime, required by the notary.x509.signingAuthority scheme".into())
            })?
        }
    };
    if let Some(expiry) = fields.expiry {
        if expiry <= signed_at {
            return Err(err(format!(
                "expiry {} is not after the signing time {}",
                rfc3339(expiry),
                rfc3339(signed_at)
            )));
        }
    }

    let extended_attributes = fields
        .extended
        .into_iter()
        .map(|(name, value)| ExtendedAttribute {
            critical: crit.contains(name.as_str()),
            name,
            value,
        })
        .collect();

    Ok(CheckedHeader {
        signing_scheme,
        signing_time: fields.signing_time,
        authentic_signing_time: fields.authentic_signing_time,
        expiry: fields.expiry,
        verification_plugin: fields.verification_plugin,
        verification_plugin_min_version: fields.verification_plugin_min_version,
        extended_attributes,
    })
}

/// Seconds since the epoch, fractions dropped (headers carry whole seconds).
pub(super) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        // Before the epoch: round towards negative infinity so that dropping the fraction
        // never moves the time later.
        Err(e) => {
            let d = e.duration();
            -(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0)
        }
    }
}

pub(super) fn from_unix_seconds(secs: i64) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

/// RFC 3339 in UTC with whole seconds and `Z`, as Notary headers should be written.
pub(super) fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds(t))
        .ok()
        .and_then(|dt| dt.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{}", unix_seconds(t)))
}

/// Whole-second RFC 3339 for writing; refuses times RFC 3339 cannot express.
pub(super) fn rfc3339_for_header(
    format: &'static str,
    t: SystemTime,
) -> Result<String, EnvelopeError> {
    OffsetDateTime::from_unix_timestamp(unix_seconds(t))
        .ok()
        .filter(|dt| (0..=9999).contains(&dt.year()))
        .and_then(|dt| dt.format(&Rfc3339).ok())
        .ok_or_else(|| EnvelopeError::Header {
            format,
            reason: "time outside the years 0000–9999 cannot be written as RFC 3339".into(),
        })
}

/// Parse an RFC 3339 time with any offset (notation writes local offsets).
pub(super) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let secs = dt.unix_timestamp();
    let base = from_unix_seconds(secs)?;
    base.checked_add(Duration::from_nanos(u64::from(dt.nanosecond())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(scheme: &str) -> ProtectedFields {
        let mut f = ProtectedFields {
            crit: vec![HDR_SIGNING_SCHEME.into()],
            signing_scheme: Some(scheme.into()),
            ..Default::default()
        };
        f.present.insert(HDR_SIGNING_SCHEME.into());
        f
    }

    fn t(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn times_accept_any_offset_and_render_utc() {
        assert_eq!(
            t("2024-06-18T14:29:33+08:00"),
            t("2024-06-18T06:29:33Z"),
            "offsets are honoured"
        );
        assert_eq!(
            rfc3339(t("2024-06-18T14:29:33+08:00")),
            "2024-06-18T06:29:33Z"
        );
        assert_eq!(
            rfc3339(t("2024-06-18T06:29:33.900Z")),
            "2024-06-18T06:29:33Z",
            "fractions are dropped when writing"
        );
        assert!(parse_rfc3339("2024-06-18 06:29:33").is_none());
        assert!(parse_rfc3339("1718692173").is_none());
        assert_eq!(unix_seconds(t("1969-12-31T23:59:59.5Z")), -1);
    }

    #[test]
    fn scheme_and_time_rules() {
        let mut f = fields("notary.x509");
        f.signing_time = Some(t("2025-01-01T00:00:00Z"));
        let h = check("JWS", f).unwrap();
        assert_eq!(h.signing_scheme, SigningScheme::X509);

        // x509 without signingTime
        assert!(check("JWS", fields("notary.x509")).is_err());
        // unknown scheme
        let mut f = fields("notary.x509.other");
        f.signing_time = Some(t("2025-01-01T00:00:00Z"));
        assert!(check("JWS", f).is_err());
        // x509 with authenticSigningTime
        let mut f = fields("notary.x509");
        f.signing_time = Some(t("2025-01-01T00:00:00Z"));
        f.authentic_signing_time = Some(t("2025-01-01T00:00:00Z"));
        f.crit.push(HDR_AUTHENTIC_SIGNING_TIME.into());
        f.present.insert(HDR_AUTHENTIC_SIGNING_TIME.into());
        assert!(check("JWS", f).is_err());
        // SA with signingTime
        let mut f = fields("notary.x509.signingAuthority");
        f.signing_time = Some(t("2025-01-01T00:00:00Z"));
        assert!(check("JWS", f).is_err());
        // SA with authentic time not critical
        let mut f = fields("notary.x509.signingAuthority");
        f.authentic_signing_time = Some(t("2025-01-01T00:00:00Z"));
        f.present.insert(HDR_AUTHENTIC_SIGNING_TIME.into());
        let e = check("JWS", f).unwrap_err().to_string();
        assert!(e.contains("crit"), "{e}");
    }

    #[test]
    fn expiry_must_be_critical_and_later() {
        let base = || {
            let mut f = fields("notary.x509");
            f.signing_time = Some(t("2025-01-01T00:00:00Z"));
            f.present.insert(HDR_EXPIRY.into());
            f
        };
        let mut f = base();
        f.expiry = Some(t("2025-01-02T00:00:00Z"));
        assert!(check("JWS", f).is_err(), "not critical");
        let mut f = base();
        f.crit.push(HDR_EXPIRY.into());
        f.expiry = Some(t("2025-01-01T00:00:00Z"));
        assert!(check("JWS", f).is_err(), "equal to signing time");
        let mut f = base();
        f.crit.push(HDR_EXPIRY.into());
        f.expiry = Some(t("2025-01-01T00:00:01Z"));
        assert!(check("JWS", f).is_ok());
    }

    #[test]
    fn crit_rules() {
        let ok = || {
            let mut f = fields("notary.x509");
            f.signing_time = Some(t("2025-01-01T00:00:00Z"));
            f
        };
        let mut f = ok();
        f.crit.clear();
        assert!(check("JWS", f).is_err(), "empty crit");
        let mut f = ok();
        f.crit = vec!["x".into()];
        f.present.insert("x".into());
        assert!(check("JWS", f).is_err(), "crit without signingScheme");
        let mut f = ok();
        f.crit.push("absent".into());
        assert!(check("JWS", f).is_err(), "crit names an absent header");
        let mut f = ok();
        f.crit.push(HDR_SIGNING_SCHEME.into());
        assert!(check("JWS", f).is_err(), "duplicate crit entry");
        let mut f = ok();
        f.crit.push("x".into());
        f.present.insert("x".into());
        f.present.insert("y".into());
        f.extended = vec![("x".into(), "1".into()), ("y".into(), 2.into())];
        let h = check("JWS", f).unwrap();
        assert_eq!(
            h.extended_attributes,
            vec![
                ExtendedAttribute {
                    name: "x".into(),
                    value: "1".into(),
                    critical: true
                },
                ExtendedAttribute {
                    name: "y".into(),
                    value: 2.into(),
                    critical: false
                }
            ]
        );
    }
}
