//! COSE_Sign1 (tagged) as Notary uses it (digest §4), on `coset`.
//!
//! `coset` does the CBOR structure and the Sig_structure. Two things are added by hand:
//! a strictness pass over the raw bytes (coset/ciborium accept indefinite-length items and
//! check duplicate keys only at the top of a header map, notation rejects both everywhere),
//! and the Notary header rules (tag-1 integer times, text content type, `x5chain` as an
//! array in the unprotected header only). Headers are written with core-deterministic
//! (length-first) key order, as go-cose does, so our output matches notation's byte for byte.

use std::collections::HashSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coset::cbor::value::Value;
use coset::iana::{self, EnumI64};
use coset::{
    CborSerializable, ContentType, CoseSign1, Header, Label, ProtectedHeader,
    RegisteredLabelWithPrivate, TaggedCborSerializable,
};

use super::header::{self, ProtectedFields};
use super::{
    EnvelopeError, EnvelopeFormat, ExtendedAttribute, ParsedEnvelope, Payload, SignOptions,
    Timestamper, HDR_AUTHENTIC_SIGNING_TIME, HDR_EXPIRY, HDR_SIGNING_AGENT, HDR_SIGNING_SCHEME,
    HDR_SIGNING_TIME, HDR_TIMESTAMP_SIGNATURE, HDR_VERIFICATION_PLUGIN,
    HDR_VERIFICATION_PLUGIN_MIN_VERSION, PAYLOAD_MEDIA_TYPE,
};
use crate::crypto::{SignatureAlgorithm, Signer};

const FORMAT: &str = "COSE";
/// CBOR tag 18 (COSE_Sign1) in its one-byte encoding.
const COSE_SIGN1_TAG_BYTE: u8 = 0xd2;
/// RFC 9360 `x5chain`.
const X5CHAIN: i64 = 33;
/// CBOR tag for epoch-based date/time.
const TAG_EPOCH_TIME: u64 = 1;
/// Nesting any Notary envelope needs is 4 (tag, array, map, array); leave headroom.
const MAX_DEPTH: usize = 16;

pub async fn sign(
    options: &SignOptions,
    signer: &dyn Signer,
    timestamper: Option<&dyn Timestamper>,
) -> Result<Vec<u8>, EnvelopeError> {
    super::check_options(options)?;
    let (algorithm, leaf_spki) = super::signer_algorithm(signer)?;
    let mut message = unsigned_message(algorithm, options, &[])?;
    let to_be_signed = message.tbs_data(&[]);
    let signature = super::sign_checked(signer, algorithm, &leaf_spki, &to_be_signed).await?;
    let token = super::timestamp(timestamper, algorithm, &signature).await?;
    message.unprotected =
        unprotected_header(signer.certificate_chain(), &options.signing_agent, token);
    message.signature = signature;
    message.to_tagged_vec().map_err(encode_error)
}

fn encode_error(e: coset::CoseError) -> EnvelopeError {
    EnvelopeError::Malformed {
        format: FORMAT,
        reason: format!("cannot encode: {e}"),
    }
}

/// The message with its protected header serialised once (so ToBeSigned and the envelope
/// carry the same bytes), the payload embedded, no unprotected header and no signature yet.
/// `extended` exists for conformance tests; signing passes none.
fn unsigned_message(
    algorithm: SignatureAlgorithm,
    options: &SignOptions,
    extended: &[ExtendedAttribute],
) -> Result<CoseSign1, EnvelopeError> {
    let protected = protected_header(algorithm, options, extended)?;
    let bytes = protected.clone().to_vec().map_err(encode_error)?;
    Ok(CoseSign1 {
        protected: ProtectedHeader {
            original_data: Some(bytes),
            header: protected,
        },
        unprotected: Header::default(),
        payload: Some(options.payload.clone()),
        signature: Vec::new(),
    })
}

fn protected_header(
    algorithm: SignatureAlgorithm,
    options: &SignOptions,
    extended: &[ExtendedAttribute],
) -> Result<Header, EnvelopeError> {
    let epoch_time = |t| {
        Value::Tag(
            TAG_EPOCH_TIME,
            Box::new(Value::Integer(header::unix_seconds(t).into())),
        )
    };
    let mut crit = vec![HDR_SIGNING_SCHEME.to_owned()];
    let mut labels: Vec<(String, Value)> = vec![
        (HDR_SIGNING_SCHEME.into(), Value::Text("notary.x509".into())),
        (HDR_SIGNING_TIME.into(), epoch_time(options.signing_time)),
    ];
    if let Some(expiry) = options.expiry {
        labels.push((HDR_EXPIRY.into(), epoch_time(expiry)));
        crit.push(HDR_EXPIRY.into());
    }
    for attribute in extended {
        if labels.iter().any(|(name, _)| *name == attribute.name) {
            return Err(EnvelopeError::Header {
                format: FORMAT,
                reason: format!(
                    "extended attribute {:?} clashes with a Notary header",
                    attribute.name
                ),
            });
        }
        labels.push((attribute.name.clone(), json_to_cbor(&attribute.value)));
        if attribute.critical {
            crit.push(attribute.name.clone());
        }
    }
    // Core-deterministic order: a text label's encoding grows with its length, so
    // length-first then bytewise equals ordering by encoded bytes.
    labels.sort_by(|(a, _), (b, _)| (a.len(), a.as_bytes()).cmp(&(b.len(), b.as_bytes())));

    let alg = iana::Algorithm::from_i64(algorithm.cose_id())
        .expect("the six Notary algorithms are IANA-registered");
    Ok(Header {
        alg: Some(RegisteredLabelWithPrivate::Assigned(alg)),
        crit: crit
            .into_iter()
            .map(RegisteredLabelWithPrivate::Text)
            .collect(),
        content_type: Some(ContentType::Text(PAYLOAD_MEDIA_TYPE.into())),
        rest: labels
            .into_iter()
            .map(|(name, value)| (Label::Text(name), value))
            .collect(),
        ..Header::default()
    })
}

/// `x5chain` (always an array), signing agent, timestamp token — in length-first key order.
fn unprotected_header(chain: &[Vec<u8>], signing_agent: &str, token: Option<Vec<u8>>) -> Header {
    let mut rest = Vec::new();
    if !chain.is_empty() {
        rest.push((
            Label::Int(X5CHAIN),
            Value::Array(chain.iter().cloned().map(Value::Bytes).collect()),
        ));
    }
    if !signing_agent.is_empty() {
        rest.push((
            Label::Text(HDR_SIGNING_AGENT.into()),
            Value::Text(signing_agent.into()),
        ));
    }
    if let Some(token) = token {
        rest.push((
            Label::Text(HDR_TIMESTAMP_SIGNATURE.into()),
            Value::Bytes(token),
        ));
    }
    Header {
        rest,
        ..Header::default()
    }
}

fn json_to_cbor(value: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Integer(i.into()),
            (_, Some(u), _) => Value::Integer(u.into()),
            (_, _, Some(f)) => Value::Float(f),
            _ => Value::Null,
        },
        J::String(s) => Value::Text(s.clone()),
        J::Array(a) => Value::Array(a.iter().map(json_to_cbor).collect()),
        J::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (Value::Text(k.clone()), json_to_cbor(v)))
                .collect(),
        ),
    }
}

/// Extended attribute values in the JSON model `ExtendedAttribute` uses.
fn cbor_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Integer(i) => {
            let i = i128::from(*i);
            i64::try_from(i)
                .map(J::from)
                .or_else(|_| u64::try_from(i).map(J::from))
                .unwrap_or(J::Null)
        }
        Value::Bytes(b) => J::String(STANDARD.encode(b)),
        Value::Float(f) => J::from(*f),
        Value::Text(s) => J::String(s.clone()),
        Value::Bool(b) => J::Bool(*b),
        Value::Null => J::Null,
        Value::Tag(_, inner) => cbor_to_json(inner),
        Value::Array(a) => J::Array(a.iter().map(cbor_to_json).collect()),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Text(s) => s.clone(),
                        other => cbor_to_json(other).to_string(),
                    };
                    (key, cbor_to_json(v))
                })
                .collect(),
        ),
        _ => J::Null,
    }
}

pub fn parse(bytes: &[u8]) -> Result<ParsedEnvelope, EnvelopeError> {
    super::check_size(FORMAT, bytes)?;
    let malformed = |reason: String| EnvelopeError::Malformed {
        format: FORMAT,
        reason,
    };
    let hdr_err = |reason: String| EnvelopeError::Header {
        format: FORMAT,
        reason,
    };

    if bytes.first() != Some(&COSE_SIGN1_TAG_BYTE) {
        return Err(malformed(
            "not a tagged COSE_Sign1 (must start with CBOR tag 18, byte 0xd2); untagged messages are refused".into(),
        ));
    }
    check_strict_cbor(bytes).map_err(|e| malformed(e.to_string()))?;
    let message = CoseSign1::from_tagged_slice(bytes)
        .map_err(|e| malformed(format!("not a COSE_Sign1: {e}")))?;
    let protected_bytes = message
        .protected
        .original_data
        .as_deref()
        .unwrap_or_default();
    check_strict_cbor(protected_bytes).map_err(|e| hdr_err(format!("protected header: {e}")))?;
    let payload = message
        .payload
        .clone()
        .ok_or_else(|| malformed("detached payload; Notary envelopes embed the payload".into()))?;

    let protected = &message.protected.header;
    let algorithm = match &protected.alg {
        Some(RegisteredLabelWithPrivate::Assigned(alg)) => {
            SignatureAlgorithm::from_cose_id(alg.to_i64())
        }
        Some(RegisteredLabelWithPrivate::PrivateUse(id)) => SignatureAlgorithm::from_cose_id(*id),
        _ => None,
    }
    .ok_or_else(|| {
        hdr_err(format!(
            "alg {:?} is missing or not one of PS256 (-37), PS384 (-38), PS512 (-39), ES256 (-7), ES384 (-35), ES512 (-36)",
            protected.alg
        ))
    })?;
    match &protected.content_type {
        Some(ContentType::Text(t)) if t == PAYLOAD_MEDIA_TYPE => {}
        other => {
            return Err(hdr_err(format!(
                "content type (label 3) must be the text {PAYLOAD_MEDIA_TYPE:?}, found {other:?}"
            )))
        }
    }

    let mut fields = ProtectedFields::default();
    for label in &protected.crit {
        let name = match label {
            RegisteredLabelWithPrivate::Text(name) => name.clone(),
            RegisteredLabelWithPrivate::Assigned(p) => int_label_in_crit(p.to_i64())?,
            RegisteredLabelWithPrivate::PrivateUse(i) => int_label_in_crit(*i)?,
        };
        fields.crit.push(name);
    }
    let time = |name: &str, value: &Value| match value {
        Value::Tag(TAG_EPOCH_TIME, inner) => match inner.as_ref() {
            Value::Integer(i) => i64::try_from(i128::from(*i))
                .ok()
                .and_then(header::from_unix_seconds)
                .ok_or_else(|| hdr_err(format!("{name} is out of range"))),
            _ => Err(hdr_err(format!(
                "{name} must be CBOR tag 1 with an integer (epoch seconds)"
            ))),
        },
        _ => Err(hdr_err(format!(
            "{name} must be CBOR tag 1 with an integer (epoch seconds)"
        ))),
    };
    let text = |name: &str, value: &Value| match value {
        Value::Text(s) => Ok(s.clone()),
        _ => Err(hdr_err(format!("{name} must be a text string"))),
    };
    for (label, value) in &protected.rest {
        let name = match label {
            Label::Int(X5CHAIN) => {
                return Err(hdr_err(
                    "x5chain (label 33) must be in the unprotected header".into(),
                ))
            }
            Label::Int(i) => i.to_string(),
            Label::Text(s) => s.clone(),
        };
        fields.present.insert(name.clone());
        match name.as_str() {
            HDR_SIGNING_SCHEME => fields.signing_scheme = Some(text(&name, value)?),
            HDR_SIGNING_TIME => fields.signing_time = Some(time(&name, value)?),
            HDR_AUTHENTIC_SIGNING_TIME => fields.authentic_signing_time = Some(time(&name, value)?),
            HDR_EXPIRY => fields.expiry = Some(time(&name, value)?),
            HDR_VERIFICATION_PLUGIN => fields.verification_plugin = Some(text(&name, value)?),
            HDR_VERIFICATION_PLUGIN_MIN_VERSION => {
                fields.verification_plugin_min_version = Some(text(&name, value)?)
            }
            _ => fields.extended.push((name, cbor_to_json(value))),
        }
    }
    let checked = header::check(FORMAT, fields)?;

    let unprotected = &message.unprotected;
    if unprotected.alg.is_some()
        || !unprotected.crit.is_empty()
        || unprotected.content_type.is_some()
    {
        return Err(malformed(
            "alg, crit and content type belong in the protected header only".into(),
        ));
    }
    if let Some((label, _)) = unprotected
        .rest
        .iter()
        .find(|(l, _)| protected.rest.iter().any(|(p, _)| p == l))
    {
        return Err(malformed(format!(
            "label {label:?} appears in both the protected and the unprotected header"
        )));
    }
    let mut certificate_chain = None;
    let mut signing_agent = None;
    let mut timestamp_token = None;
    for (label, value) in &unprotected.rest {
        match label {
            Label::Int(X5CHAIN) => {
                let items =
                    match value {
                        Value::Array(items) if !items.is_empty() => items,
                        _ => return Err(malformed(
                            "x5chain (label 33) must be a non-empty array of certificates (bstr)"
                                .into(),
                        )),
                    };
                let certs = items
                    .iter()
                    .map(|item| match item {
                        Value::Bytes(der) => Ok(der.clone()),
                        _ => Err(malformed("x5chain contains a non-bstr item".into())),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                certificate_chain = Some(certs);
            }
            Label::Text(name) if name == HDR_SIGNING_AGENT => match value {
                Value::Text(s) => signing_agent = Some(s.clone()),
                _ => {
                    return Err(malformed(format!(
                        "{HDR_SIGNING_AGENT} is not a text string"
                    )))
                }
            },
            Label::Text(name) if name == HDR_TIMESTAMP_SIGNATURE => match value {
                Value::Bytes(b) => timestamp_token = Some(b.clone()),
                _ => {
                    return Err(malformed(format!(
                        "{HDR_TIMESTAMP_SIGNATURE} is not a byte string"
                    )))
                }
            },
            _ => {}
        }
    }
    let certificate_chain = certificate_chain.ok_or_else(|| {
        malformed(
            "missing x5chain (label 33, the signing certificate chain) in the unprotected header"
                .into(),
        )
    })?;

    Payload::parse(&payload)?;

    Ok(ParsedEnvelope {
        format: EnvelopeFormat::Cose,
        signed_bytes: message.tbs_data(&[]),
        payload,
        algorithm,
        signing_scheme: checked.signing_scheme,
        signing_time: checked.signing_time,
        authentic_signing_time: checked.authentic_signing_time,
        expiry: checked.expiry,
        certificate_chain,
        signature: message.signature,
        timestamp_token,
        signing_agent,
        verification_plugin: checked.verification_plugin,
        verification_plugin_min_version: checked.verification_plugin_min_version,
        extended_attributes: checked.extended_attributes,
    })
}

/// Integer labels 0–8 are COSE's own generic parameters (alg, crit, content type, kid, …)
/// and must not be marked critical; other integer labels are named by their decimal value.
fn int_label_in_crit(label: i64) -> Result<String, EnvelopeError> {
    if (0..=8).contains(&label) {
        return Err(EnvelopeError::Header {
            format: FORMAT,
            reason: format!("crit must not list the COSE header label {label}"),
        });
    }
    Ok(label.to_string())
}

/// Why raw CBOR is refused before decoding.
#[derive(Debug, thiserror::Error)]
enum StrictCborError {
    #[error("truncated CBOR")]
    Truncated,
    #[error("indefinite-length CBOR items are not allowed")]
    Indefinite,
    #[error("reserved CBOR additional information value")]
    Reserved,
    #[error("duplicate CBOR map key")]
    DuplicateKey,
    #[error("CBOR nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("trailing bytes after the CBOR item")]
    Trailing,
}

/// Walk one CBOR data item covering all of `bytes`, refusing indefinite lengths and
/// duplicate map keys at any depth.
fn check_strict_cbor(bytes: &[u8]) -> Result<(), StrictCborError> {
    let mut scanner = Scanner {
        data: bytes,
        pos: 0,
    };
    scanner.item(0)?;
    if scanner.pos != bytes.len() {
        return Err(StrictCborError::Trailing);
    }
    Ok(())
}

struct Scanner<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], StrictCborError> {
        let n = usize::try_from(n).map_err(|_| StrictCborError::Truncated)?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.data.len())
            .ok_or(StrictCborError::Truncated)?;
        let slice = &self.data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    /// Major type and argument of the next item's head.
    fn head(&mut self) -> Result<(u8, u64), StrictCborError> {
        let first = self.take(1)?[0];
        let major = first >> 5;
        let argument = match first & 0x1f {
            small @ 0..=23 => u64::from(small),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(self.take(2)?.try_into().unwrap())),
            26 => u64::from(u32::from_be_bytes(self.take(4)?.try_into().unwrap())),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap()),
            28..=30 => return Err(StrictCborError::Reserved),
            _ => return Err(StrictCborError::Indefinite),
        };
        Ok((major, argument))
    }

    /// Skip one item; returns a representation of it that is equal for equal integer or
    /// string keys whatever their head encoding.
    fn item(&mut self, depth: usize) -> Result<Vec<u8>, StrictCborError> {
        if depth > MAX_DEPTH {
            return Err(StrictCborError::TooDeep);
        }
        let start = self.pos;
        let (major, argument) = self.head()?;
        // Every element takes at least one byte: bound counts by what is left.
        let remaining = (self.data.len() - self.pos) as u64;
        match major {
            0 | 1 => {
                let mut key = vec![major];
                key.extend_from_slice(&argument.to_be_bytes());
                return Ok(key);
            }
            2 | 3 => {
                let mut key = vec![major];
                key.extend_from_slice(self.take(argument)?);
                return Ok(key);
            }
            4 => {
                if argument > remaining {
                    return Err(StrictCborError::Truncated);
                }
                for _ in 0..argument {
                    self.item(depth + 1)?;
                }
            }
            5 => {
                if argument.saturating_mul(2) > remaining {
                    return Err(StrictCborError::Truncated);
                }
                let mut keys = HashSet::new();
                for _ in 0..argument {
                    if !keys.insert(self.item(depth + 1)?) {
                        return Err(StrictCborError::DuplicateKey);
                    }
                    self.item(depth + 1)?;
                }
            }
            6 => {
                self.item(depth + 1)?;
            }
            // Simple values and floats: the head already held the whole item.
            _ => {}
        }
        Ok(self.data[start..self.pos].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn vector() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/conformance/cose-conformance.json"
        );
        serde_json::from_slice(&std::fs::read(path).expect("conformance vector")).unwrap()
    }

    fn unhex(v: &serde_json::Value) -> Vec<u8> {
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    fn conformance_message() -> (CoseSign1, serde_json::Value) {
        let v = vector();
        let at = |key: &str| UNIX_EPOCH + Duration::from_secs(v[key].as_u64().unwrap());
        let options = SignOptions {
            payload: unhex(&v["payload"]),
            signing_time: at("signingTime"),
            expiry: Some(at("expiry")),
            signing_agent: "NotationConformanceTest/1.0.0".into(),
        };
        let extended = [
            ExtendedAttribute {
                name: "signedCritKey1".into(),
                value: "signedCritValue1".into(),
                critical: true,
            },
            ExtendedAttribute {
                name: "signedKey1".into(),
                value: "signedValue1".into(),
                critical: false,
            },
        ];
        let message = unsigned_message(SignatureAlgorithm::Ps384, &options, &extended).unwrap();
        (message, v)
    }

    #[test]
    fn headers_and_message_match_notation_core_go_byte_for_byte() {
        let (mut message, v) = conformance_message();
        assert_eq!(
            message.protected.original_data.as_deref().unwrap(),
            unhex(&v["protectedHeaders"]["cborHex"]).as_slice()
        );
        message.unprotected = unprotected_header(&[], "NotationConformanceTest/1.0.0", None);
        assert_eq!(
            message.unprotected.clone().to_vec().unwrap(),
            unhex(&v["unprotectedHeaders"]["cborHex"])
        );
        // Put the vector's signature in: the whole envelope must then be identical.
        let expected = unhex(&v["expectedOutput"]["cborHex"]);
        let reference = CoseSign1::from_tagged_slice(&expected).unwrap();
        message.signature = reference.signature.clone();
        assert_eq!(message.to_tagged_vec().unwrap(), expected);
    }

    #[test]
    fn strict_cbor_scanner() {
        assert!(check_strict_cbor(&[0xa2, 0x01, 0x02, 0x03, 0x04]).is_ok());
        // duplicate int key, same and different head encodings
        assert!(matches!(
            check_strict_cbor(&[0xa2, 0x01, 0x02, 0x01, 0x04]),
            Err(StrictCborError::DuplicateKey)
        ));
        assert!(matches!(
            check_strict_cbor(&[0xa2, 0x01, 0x02, 0x18, 0x01, 0x04]),
            Err(StrictCborError::DuplicateKey)
        ));
        // duplicate text key nested in an array
        assert!(matches!(
            check_strict_cbor(&[0x81, 0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02]),
            Err(StrictCborError::DuplicateKey)
        ));
        // indefinite-length array, map, byte string
        for bad in [
            &[0x9f, 0x01, 0xff][..],
            &[0xbf, 0xff],
            &[0x5f, 0x41, 0x00, 0xff],
        ] {
            assert!(
                matches!(check_strict_cbor(bad), Err(StrictCborError::Indefinite)),
                "{bad:x?}"
            );
        }
        assert!(matches!(
            check_strict_cbor(&[0x82, 0x01]),
            Err(StrictCborError::Truncated)
        ));
        assert!(matches!(
            check_strict_cbor(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(StrictCborError::Truncated)
        ));
        assert!(matches!(
            check_strict_cbor(&[0x01, 0x01]),
            Err(StrictCborError::Trailing)
        ));
        assert!(matches!(
            check_strict_cbor(&[0x1c]),
            Err(StrictCborError::Reserved)
        ));
        let mut deep = vec![0x81; MAX_DEPTH + 2];
        deep.push(0x01);
        assert!(matches!(
            check_strict_cbor(&deep),
            Err(StrictCborError::TooDeep)
        ));
        // floats and simple values are single items
        assert!(check_strict_cbor(&[0x83, 0xf5, 0xfb, 0, 0, 0, 0, 0, 0, 0, 0, 0xf8, 0x20]).is_ok());
    }
}
