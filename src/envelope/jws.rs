//! JWS JSON flattened serialization as Notary uses it (digest §3).
//!
//! Hand-written: JOSE crates target compact JWTs and their claims; Notary needs the
//! flattened form, its own `crit` rules and exact control of the base64 variants
//! (base64url without padding for the three JWS segments, standard base64 with padding for
//! `x5c` and the timestamp token, as Go's `[]byte` JSON encoding writes them).

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::header::{self, ProtectedFields};
use super::{
    EnvelopeError, EnvelopeFormat, ExtendedAttribute, ParsedEnvelope, Payload, SignOptions,
    Timestamper, HDR_AUTHENTIC_SIGNING_TIME, HDR_EXPIRY, HDR_SIGNING_AGENT, HDR_SIGNING_SCHEME,
    HDR_SIGNING_TIME, HDR_TIMESTAMP_SIGNATURE, HDR_VERIFICATION_PLUGIN,
    HDR_VERIFICATION_PLUGIN_MIN_VERSION, PAYLOAD_MEDIA_TYPE,
};
use crate::crypto::{SignatureAlgorithm, Signer};

const FORMAT: &str = "JWS";

/// Header names registered by RFC 7515 §4.1 (plus RFC 7797 `b64`): `crit` must not list them.
const REGISTERED_HEADERS: [&str; 12] = [
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "b64",
];

/// The members notation writes, in the order it writes them.
#[derive(Serialize)]
struct Envelope<'a> {
    payload: String,
    protected: String,
    header: UnprotectedOut<'a>,
    signature: String,
}

#[derive(Serialize)]
struct UnprotectedOut<'a> {
    x5c: Vec<String>,
    #[serde(
        rename = "io.cncf.notary.signingAgent",
        skip_serializing_if = "str::is_empty"
    )]
    signing_agent: &'a str,
    #[serde(
        rename = "io.cncf.notary.timestampSignature",
        skip_serializing_if = "Option::is_none"
    )]
    timestamp_signature: Option<String>,
}

pub async fn sign(
    options: &SignOptions,
    signer: &dyn Signer,
    timestamper: Option<&dyn Timestamper>,
) -> Result<Vec<u8>, EnvelopeError> {
    super::check_options(options)?;
    let (algorithm, leaf_spki) = super::signer_algorithm(signer)?;
    let protected = protected_header(algorithm, options, &[])?;
    let protected_b64 = URL_SAFE_NO_PAD.encode(protected);
    let payload_b64 = URL_SAFE_NO_PAD.encode(&options.payload);
    let signing_input = format!("{protected_b64}.{payload_b64}");
    let signature =
        super::sign_checked(signer, algorithm, &leaf_spki, signing_input.as_bytes()).await?;
    let token = super::timestamp(timestamper, algorithm, &signature).await?;

    let envelope = Envelope {
        payload: payload_b64,
        protected: protected_b64,
        header: UnprotectedOut {
            x5c: signer
                .certificate_chain()
                .iter()
                .map(|c| STANDARD.encode(c))
                .collect(),
            signing_agent: &options.signing_agent,
            timestamp_signature: token.map(|t| STANDARD.encode(t)),
        },
        signature: URL_SAFE_NO_PAD.encode(&signature),
    };
    Ok(serde_json::to_vec(&envelope).expect("strings always serialise"))
}

/// The protected header JSON: keys sorted bytewise, no whitespace (what notation-core-go
/// writes). `extended` exists for conformance tests; signing passes none.
fn protected_header(
    algorithm: SignatureAlgorithm,
    options: &SignOptions,
    extended: &[ExtendedAttribute],
) -> Result<Vec<u8>, EnvelopeError> {
    // A BTreeMap, not serde_json::Map: its order stays sorted whatever features other
    // crates enable on serde_json.
    let mut map: BTreeMap<&str, Value> = BTreeMap::new();
    let mut crit = vec![Value::from(HDR_SIGNING_SCHEME)];
    map.insert("alg", algorithm.jws_name().into());
    map.insert("cty", PAYLOAD_MEDIA_TYPE.into());
    map.insert(HDR_SIGNING_SCHEME, "notary.x509".into());
    map.insert(
        HDR_SIGNING_TIME,
        header::rfc3339_for_header(FORMAT, options.signing_time)?.into(),
    );
    for attribute in extended {
        if map.contains_key(attribute.name.as_str())
            || attribute.name == "crit"
            || attribute.name == HDR_EXPIRY
        {
            return Err(EnvelopeError::Header {
                format: FORMAT,
                reason: format!(
                    "extended attribute {:?} clashes with a Notary header",
                    attribute.name
                ),
            });
        }
        map.insert(&attribute.name, attribute.value.clone());
        if attribute.critical {
            crit.push(attribute.name.as_str().into());
        }
    }
    if let Some(expiry) = options.expiry {
        map.insert(
            HDR_EXPIRY,
            header::rfc3339_for_header(FORMAT, expiry)?.into(),
        );
        crit.push(HDR_EXPIRY.into());
    }
    map.insert("crit", Value::Array(crit));
    Ok(serde_json::to_vec(&map).expect("JSON values always serialise"))
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

    let top = match strict_json(bytes)
        .map_err(|e| malformed(format!("not a JSON object without duplicate members: {e}")))?
    {
        Value::Object(m) => m,
        _ => return Err(malformed("not a JSON object".into())),
    };
    if top.contains_key("signatures") {
        return Err(malformed(
            "general JWS JSON serialization (\"signatures\") is not allowed; Notary uses the flattened form".into(),
        ));
    }
    let segment = |name: &str| -> Result<(&str, Vec<u8>), EnvelopeError> {
        let text = top
            .get(name)
            .ok_or_else(|| malformed(format!("missing \"{name}\"")))?
            .as_str()
            .ok_or_else(|| malformed(format!("\"{name}\" is not a string")))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|e| malformed(format!("\"{name}\" is not base64url without padding: {e}")))?;
        Ok((text, bytes))
    };
    let (payload_b64, payload) = segment("payload")?;
    let (protected_b64, protected_bytes) = segment("protected")?;
    let (_, signature) = segment("signature")?;
    let unprotected = match top.get("header") {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(malformed("\"header\" is not a JSON object".into())),
        None => return Err(malformed("missing \"header\" (it carries x5c)".into())),
    };

    let protected = match strict_json(&protected_bytes)
        .map_err(|e| hdr_err(format!("not a JSON object without duplicate members: {e}")))?
    {
        Value::Object(m) => m,
        _ => return Err(hdr_err("not a JSON object".into())),
    };
    if let Some(name) = unprotected.keys().find(|k| protected.contains_key(*k)) {
        return Err(malformed(format!(
            "{name:?} appears in both the protected and the unprotected header"
        )));
    }

    let string = |name: &str, value: &Value| -> Result<String, EnvelopeError> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| hdr_err(format!("{name} is not a string")))
    };
    let time = |name: &str, value: &Value| {
        let text = string(name, value)?;
        header::parse_rfc3339(&text)
            .ok_or_else(|| hdr_err(format!("{name} {text:?} is not an RFC 3339 time")))
    };

    let mut algorithm = None;
    let mut content_type_seen = false;
    let mut fields = ProtectedFields::default();
    for (name, value) in &protected {
        fields.present.insert(name.clone());
        match name.as_str() {
            "alg" => {
                let alg = string("alg", value)?;
                algorithm = Some(SignatureAlgorithm::from_jws_name(&alg).ok_or_else(|| {
                    hdr_err(format!(
                        "unsupported alg {alg:?} (Notary allows PS256, PS384, PS512, ES256, ES384, ES512)"
                    ))
                })?);
            }
            "cty" => {
                let cty = string("cty", value)?;
                if cty != PAYLOAD_MEDIA_TYPE {
                    return Err(hdr_err(format!(
                        "cty {cty:?} is not {PAYLOAD_MEDIA_TYPE:?}"
                    )));
                }
                content_type_seen = true;
            }
            "crit" => {
                let list = value
                    .as_array()
                    .ok_or_else(|| hdr_err("\"crit\" is not an array".into()))?;
                for entry in list {
                    let entry = entry
                        .as_str()
                        .ok_or_else(|| hdr_err("\"crit\" contains a non-string".into()))?;
                    if REGISTERED_HEADERS.contains(&entry) {
                        return Err(hdr_err(format!(
                            "\"crit\" must not list the registered header {entry:?}"
                        )));
                    }
                    fields.crit.push(entry.to_owned());
                }
            }
            HDR_SIGNING_SCHEME => fields.signing_scheme = Some(string(name, value)?),
            HDR_SIGNING_TIME => fields.signing_time = Some(time(name, value)?),
            HDR_AUTHENTIC_SIGNING_TIME => fields.authentic_signing_time = Some(time(name, value)?),
            HDR_EXPIRY => fields.expiry = Some(time(name, value)?),
            HDR_VERIFICATION_PLUGIN => fields.verification_plugin = Some(string(name, value)?),
            HDR_VERIFICATION_PLUGIN_MIN_VERSION => {
                fields.verification_plugin_min_version = Some(string(name, value)?)
            }
            _ => fields.extended.push((name.clone(), value.clone())),
        }
    }
    let algorithm = algorithm.ok_or_else(|| hdr_err("missing alg".into()))?;
    if !content_type_seen {
        return Err(hdr_err(format!(
            "missing cty (must be {PAYLOAD_MEDIA_TYPE:?})"
        )));
    }
    let checked = header::check(FORMAT, fields)?;

    let std_b64 = |name: &str, text: &str| {
        STANDARD
            .decode(text)
            .map_err(|e| malformed(format!("{name} is not standard base64 with padding: {e}")))
    };
    let certificate_chain = match unprotected.get("x5c") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| {
                let text = item
                    .as_str()
                    .ok_or_else(|| malformed("x5c contains a non-string".into()))?;
                std_b64("x5c entry", text)
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) => return Err(malformed("x5c is empty".into())),
        Some(_) => return Err(malformed("x5c is not an array".into())),
        None => {
            return Err(malformed(
                "missing x5c (the signing certificate chain) in the unprotected header".into(),
            ))
        }
    };
    let timestamp_token = match unprotected.get(HDR_TIMESTAMP_SIGNATURE) {
        None => None,
        Some(Value::String(text)) => Some(std_b64(HDR_TIMESTAMP_SIGNATURE, text)?),
        Some(_) => {
            return Err(malformed(format!(
                "{HDR_TIMESTAMP_SIGNATURE} is not a string"
            )))
        }
    };
    let signing_agent = match unprotected.get(HDR_SIGNING_AGENT) {
        None => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => return Err(malformed(format!("{HDR_SIGNING_AGENT} is not a string"))),
    };

    Payload::parse(&payload)?;

    Ok(ParsedEnvelope {
        format: EnvelopeFormat::Jws,
        signed_bytes: format!("{protected_b64}.{payload_b64}").into_bytes(),
        payload,
        algorithm,
        signing_scheme: checked.signing_scheme,
        signing_time: checked.signing_time,
        authentic_signing_time: checked.authentic_signing_time,
        expiry: checked.expiry,
        certificate_chain,
        signature,
        timestamp_token,
        signing_agent,
        verification_plugin: checked.verification_plugin,
        verification_plugin_min_version: checked.verification_plugin_min_version,
        extended_attributes: checked.extended_attributes,
    })
}

/// Parse JSON, refusing duplicate object members at any depth: serde_json would keep the
/// last one silently, and two readers disagreeing about a signed header is how signature
/// confusion starts.
fn strict_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<StrictValue>(bytes).map(|v| v.0)
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate member {key:?}"
                )));
            }
            let StrictValue(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn vector() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/conformance/jws-conformance.json"
        );
        serde_json::from_slice(&std::fs::read(path).expect("conformance vector")).unwrap()
    }

    #[test]
    fn protected_header_matches_notation_core_go_byte_for_byte() {
        let v = vector();
        let at = |s: &str| header::parse_rfc3339(s).unwrap();
        let options = SignOptions {
            payload: URL_SAFE_NO_PAD
                .decode(v["payload"].as_str().unwrap())
                .unwrap(),
            signing_time: at("2022-08-29T13:50:00Z"),
            expiry: Some(at("2099-08-30T13:50:00Z")),
            signing_agent: "NotationConformanceTest/1.0.0".into(),
        };
        let attr = |name: &str, value: &str, critical| ExtendedAttribute {
            name: name.into(),
            value: value.into(),
            critical,
        };
        let extended = [
            attr("signedCritKey1", "signedCritValue1", true),
            attr("signedKey1", "signedValue1", false),
            attr("signedKey2", "signedValue1", false),
            attr("signedKey3", "signedValue1", false),
            attr("signedKey4", "signedValue1", false),
        ];
        let protected = protected_header(SignatureAlgorithm::Es256, &options, &extended).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(protected),
            v["protected"].as_str().unwrap()
        );
    }

    #[test]
    fn conformance_vector_headers_parse_as_notary_rules_say() {
        // The vector has no x5c and a non-Notary payload, so parse only its header through
        // the same code path by giving it both.
        let v = vector();
        let mut env = v.as_object().unwrap().clone();
        env["header"]["x5c"] = Value::Array(vec![STANDARD.encode(b"not a cert").into()]);
        env["payload"] = URL_SAFE_NO_PAD
            .encode(br#"{"targetArtifact":{"mediaType":"a/b","digest":"sha256:00","size":1}}"#)
            .into();
        let parsed = parse(&serde_json::to_vec(&env).unwrap()).unwrap();
        assert_eq!(parsed.algorithm, SignatureAlgorithm::Es256);
        assert_eq!(
            parsed.signing_time,
            Some(UNIX_EPOCH + Duration::from_secs(1_661_781_000))
        );
        assert_eq!(
            parsed.unprocessed_critical_attributes(),
            vec!["signedCritKey1"]
        );
        assert_eq!(parsed.extended_attributes.len(), 5);
        assert_eq!(
            parsed.signing_agent.as_deref(),
            Some("NotationConformanceTest/1.0.0")
        );
    }

    #[test]
    fn strict_json_refuses_duplicates_at_any_depth() {
        assert!(strict_json(br#"{"a":1,"a":1}"#).is_err());
        assert!(strict_json(br#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(strict_json(br#"{"a":[{"b":1,"b":2}]}"#).is_err());
        assert_eq!(
            strict_json(br#"{"a":[1,-2,2.5,true,null,"s"]}"#).unwrap(),
            serde_json::json!({"a":[1,-2,2.5,true,null,"s"]})
        );
    }
}
