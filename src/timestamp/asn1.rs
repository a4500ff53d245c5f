//! ASN.1 structures the `cms` / `x509-tsp` crates do not model (or model in a way we cannot
//! use), written with `der` derive.
//!
//! - `TstInfo`: `x509-tsp`'s copy types `genTime` as `der::GeneralizedTime`, which rejects
//!   the fractional seconds RFC 3161 allows (`clock_precision_digits` in OpenSSL, several
//!   public TSAs). Everything else is reused from `x509-tsp`.
//! - `SigningCertificateV2` (RFC 5035 ESS): not modelled by any RustCrypto crate.
//! - `PkiStatusInfo`: `cmpv2`'s `PkiFailureInfo` uses bit positions as flag masks (and gives
//!   badTime the value of badRequest), so failInfo bits are read here from the BIT STRING.

use std::time::{Duration, SystemTime};

use der::asn1::{AnyRef, BitStringRef, Int, ObjectIdentifier, OctetString, Utf8StringRef};
use der::{DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag, Writer};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::ext::Extensions;
use x509_cert::serial_number::SerialNumber;
use x509_tsp::{Accuracy, MessageImprint};

/// RFC 3161 TSTInfo.
#[derive(Clone, Debug, Sequence)]
pub(crate) struct TstInfo {
    /// Checked to be 1 by the verifier, so a wrong value gets a clear message.
    pub version: u64,
    pub policy: ObjectIdentifier,
    pub message_imprint: MessageImprint,
    pub serial_number: Int,
    pub gen_time: GenTime,
    #[asn1(optional = "true")]
    pub accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    pub ordering: bool,
    #[asn1(optional = "true")]
    pub nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// A GeneralizedTime `YYYYMMDDHHMMSS[.f…]Z` with optional fractional seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GenTime {
    raw: Vec<u8>,
    pub time: SystemTime,
}

impl GenTime {
    pub(crate) fn parse(raw: &[u8]) -> Option<SystemTime> {
        let s = std::str::from_utf8(raw).ok()?;
        let s = s.strip_suffix('Z')?;
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (s, None),
        };
        if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| whole[r].parse::<u32>().ok();
        let year = num(0..4)? as i32;
        let month = time::Month::try_from(num(4..6)? as u8).ok()?;
        let date = time::Date::from_calendar_date(year, month, num(6..8)? as u8).ok()?;
        let nanos = match frac {
            None => 0,
            Some(f) => {
                // DER: at least one digit, no trailing zero; more than nanoseconds is noise.
                if f.is_empty()
                    || f.len() > 9
                    || f.ends_with('0')
                    || !f.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32)
            }
        };
        let t = time::Time::from_hms_nano(
            num(8..10)? as u8,
            num(10..12)? as u8,
            num(12..14)? as u8,
            nanos,
        )
        .ok()?;
        Some(time::PrimitiveDateTime::new(date, t).assume_utc().into())
    }
}

impl FixedTag for GenTime {
    const TAG: Tag = Tag::GeneralizedTime;
}

impl<'a> DecodeValue<'a> for GenTime {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let raw = reader.read_vec(header.length)?;
        let time = GenTime::parse(&raw).ok_or_else(|| Tag::GeneralizedTime.value_error())?;
        Ok(GenTime { raw, time })
    }
}

impl EncodeValue for GenTime {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.raw.len())
    }
    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.raw)
    }
}

/// TSTInfo.accuracy as a duration; `None` when a field is out of the RFC 3161 range.
pub(crate) fn accuracy_duration(acc: &Accuracy) -> Option<Duration> {
    let millis = acc.millis.unwrap_or(0);
    let micros = acc.micros.unwrap_or(0);
    if !(0..=999).contains(&millis) || !(0..=999).contains(&micros) {
        return None;
    }
    Some(
        Duration::from_secs(acc.seconds.unwrap_or(0))
            + Duration::from_millis(millis as u64)
            + Duration::from_micros(micros as u64),
    )
}

/// RFC 5035 SigningCertificateV2.
#[derive(Clone, Debug, Sequence)]
pub(crate) struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<der::Any>>,
}

/// RFC 5035 ESSCertIDv2; an absent hashAlgorithm means SHA-256.
#[derive(Clone, Debug, Sequence)]
pub(crate) struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// RFC 5035 IssuerSerial.
#[derive(Clone, Debug, Sequence)]
pub(crate) struct IssuerSerial {
    pub issuer: GeneralNames,
    pub serial_number: SerialNumber,
}

/// RFC 3161 PKIStatusInfo with failInfo kept as its raw BIT STRING.
#[derive(Clone, Debug, Sequence)]
pub(crate) struct PkiStatusInfo<'a> {
    pub status: u64,
    #[asn1(optional = "true")]
    pub status_string: Option<Vec<Utf8StringRef<'a>>>,
    #[asn1(optional = "true")]
    pub fail_info: Option<BitStringRef<'a>>,
}

/// RFC 3161 TimeStampResp with the token kept as its exact received bytes.
#[derive(Clone, Debug, Sequence)]
pub(crate) struct TimeStampResp<'a> {
    pub status: PkiStatusInfo<'a>,
    #[asn1(optional = "true")]
    pub time_stamp_token: Option<AnyRef<'a>>,
}

/// RFC 3161 PKIStatus names.
pub(crate) fn status_name(status: u64) -> &'static str {
    match status {
        0 => "granted",
        1 => "grantedWithMods",
        2 => "rejection",
        3 => "waiting",
        4 => "revocationWarning",
        5 => "revocationNotification",
        _ => "unknown status",
    }
}

/// RFC 3161 PKIFailureInfo bit names that are set.
pub(crate) fn fail_info_names(bits: &BitStringRef<'_>) -> Vec<String> {
    bits.bits()
        .enumerate()
        .filter(|(_, set)| *set)
        .map(|(i, _)| match i {
            0 => "badAlg (unrecognized or unsupported algorithm)".to_string(),
            2 => "badRequest (transaction not permitted or supported)".to_string(),
            5 => "badDataFormat (the data submitted has the wrong format)".to_string(),
            14 => "timeNotAvailable (the TSA's time source is not available)".to_string(),
            15 => "unacceptedPolicy (the requested TSA policy is not supported)".to_string(),
            16 => "unacceptedExtension (the requested extension is not supported)".to_string(),
            17 => "addInfoNotAvailable (the additional information requested could not be understood or is not available)".to_string(),
            25 => "systemFailure (the request cannot be handled due to system failure)".to_string(),
            other => format!("failure bit {other}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn gen_time_whole_and_fractional_seconds() {
        let t = GenTime::parse(b"20210917140910Z").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::from_secs(1631887750)
        );
        let t = GenTime::parse(b"20210917140910.125Z").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap(),
            Duration::from_millis(1631887750125)
        );
        for bad in [
            &b"20210917140910"[..],
            b"20210917140910.Z",
            b"20210917140910.120Z",
            b"2021091714091Z",
            b"20211317140910Z",
            b"20210917140910+0100",
            b"2021-9171409100Z",
        ] {
            assert!(
                GenTime::parse(bad).is_none(),
                "{:?}",
                std::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn gen_time_round_trips_exact_bytes() {
        let der =
            b"\x18\x13\x32\x30\x32\x31\x30\x39\x31\x37\x31\x34\x30\x39\x31\x30\x2e\x31\x32\x35\x5a";
        let t = GenTime::from_der(der).unwrap();
        assert_eq!(t.to_der().unwrap(), der);
    }

    #[test]
    fn accuracy_ranges() {
        let acc = Accuracy {
            seconds: Some(1),
            millis: Some(500),
            micros: Some(100),
        };
        assert_eq!(
            accuracy_duration(&acc),
            Some(Duration::from_micros(1_500_100))
        );
        let bad = Accuracy {
            seconds: None,
            millis: Some(1000),
            micros: None,
        };
        assert_eq!(accuracy_duration(&bad), None);
    }

    #[test]
    fn fail_info_bits_by_position() {
        // BIT STRING with bits 2 (badRequest) and 14 (timeNotAvailable) set.
        let bits = BitStringRef::new(1, &[0b0010_0000, 0b0000_0010]).unwrap();
        let names = fail_info_names(&bits);
        assert_eq!(names.len(), 2);
        assert!(names[0].starts_with("badRequest"));
        assert!(names[1].starts_with("timeNotAvailable"));
    }
}
