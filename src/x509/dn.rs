//! Distinguished names: printing certificate names as notation does and parsing RFC 4514
//! strings from trusted identities.
//!
//! Trusted identities are matched against the leaf subject *as Go prints it*
//! (`pkix.Name.String()`), so the printing is reproduced here exactly, quirks included:
//! Go does not print the RDN sequence it parsed, but rebuilds one from its named fields in
//! a fixed order (C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER; several values of
//! one type become one multi-valued RDN; only the last CN/SERIALNUMBER survives; an empty
//! CN is dropped), puts unrecognised attributes in front and prints the whole sequence
//! reversed. Unrecognised attributes print as `OID=#hex` of Go's *re-encoding* of the decoded
//! string (PrintableString when possible, else UTF8String), not of the original bytes.
//! No crate reproduces this; x509-cert's `Display` is plain RFC 4514.

use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::Name;

const OID_CN: &str = "2.5.4.3";
const OID_SERIAL: &str = "2.5.4.5";
const OID_C: &str = "2.5.4.6";
const OID_L: &str = "2.5.4.7";
const OID_ST: &str = "2.5.4.8";
const OID_STREET: &str = "2.5.4.9";
const OID_O: &str = "2.5.4.10";
const OID_OU: &str = "2.5.4.11";
const OID_POSTAL: &str = "2.5.4.17";

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        OID_C => "C",
        OID_O => "O",
        OID_OU => "OU",
        OID_CN => "CN",
        OID_SERIAL => "SERIALNUMBER",
        OID_L => "L",
        OID_ST => "ST",
        OID_STREET => "STREET",
        OID_POSTAL => "POSTALCODE",
        _ => return None,
    })
}

/// One attribute as printed: its type (OID string) and the value Go decoded, or the raw DER
/// of the value when Go would not have decoded it (Go refuses such certificates; we still
/// print something rather than fail).
enum Value {
    Text(String),
    Raw(Vec<u8>),
}

/// Render a certificate name as Go's `pkix.Name.String()` does (RFC 2253 order).
pub fn name_to_string(name: &Name) -> String {
    // Named fields in Go's `pkix.Name`, filled in certificate order.
    let mut country = Vec::new();
    let mut province = Vec::new();
    let mut locality = Vec::new();
    let mut street = Vec::new();
    let mut postal = Vec::new();
    let mut org = Vec::new();
    let mut org_unit = Vec::new();
    let mut common_name = String::new();
    let mut serial = String::new();
    // Attributes without a named field, printed last.
    let mut extra: Vec<Vec<(String, Value)>> = Vec::new();

    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            let oid = atv.oid.to_string();
            let value = decode_value(atv);
            let text = match &value {
                Value::Text(t) => Some(t.clone()),
                Value::Raw(_) => None,
            };
            let field = match (oid.as_str(), text) {
                (OID_CN, Some(t)) => {
                    common_name = t;
                    continue;
                }
                (OID_SERIAL, Some(t)) => {
                    serial = t;
                    continue;
                }
                (OID_C, Some(t)) => (&mut country, t),
                (OID_ST, Some(t)) => (&mut province, t),
                (OID_L, Some(t)) => (&mut locality, t),
                (OID_STREET, Some(t)) => (&mut street, t),
                (OID_POSTAL, Some(t)) => (&mut postal, t),
                (OID_O, Some(t)) => (&mut org, t),
                (OID_OU, Some(t)) => (&mut org_unit, t),
                _ => {
                    extra.push(vec![(oid, value)]);
                    continue;
                }
            };
            field.0.push(field.1);
        }
    }

    let mut rdns = extra;
    let mut append = |values: Vec<String>, oid: &str| {
        if !values.is_empty() {
            rdns.push(
                values
                    .into_iter()
                    .map(|v| (oid.to_string(), Value::Text(v)))
                    .collect(),
            );
        }
    };
    append(country, OID_C);
    append(province, OID_ST);
    append(locality, OID_L);
    append(street, OID_STREET);
    append(postal, OID_POSTAL);
    append(org, OID_O);
    append(org_unit, OID_OU);
    if !common_name.is_empty() {
        append(vec![common_name], OID_CN);
    }
    if !serial.is_empty() {
        append(vec![serial], OID_SERIAL);
    }

    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, (oid, value)) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match (short_name(oid), value) {
                (Some(short), Value::Text(text)) => {
                    out.push_str(short);
                    out.push('=');
                    out.push_str(&escape(text));
                }
                (_, Value::Text(text)) => {
                    out.push_str(oid);
                    out.push_str("=#");
                    out.push_str(&hex::encode(go_marshal_string(text)));
                }
                (_, Value::Raw(der)) => {
                    out.push_str(oid);
                    out.push_str("=#");
                    out.push_str(&hex::encode(der));
                }
            }
        }
    }
    out
}

/// RFC 2253 escaping as Go applies it: `,+"\<>;` anywhere, a leading `#`, a leading or
/// trailing space.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.len().saturating_sub(1);
    for (k, c) in value.char_indices() {
        let needs = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if needs {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Decode an attribute value the way Go's certificate parser does.
fn decode_value(atv: &AttributeTypeAndValue) -> Value {
    use der::{Encode, Tagged};
    let raw = || Value::Raw(atv.value.to_der().unwrap_or_default());
    let bytes = atv.value.value();
    match atv.value.tag() {
        der::Tag::Utf8String => match std::str::from_utf8(bytes) {
            Ok(s) => Value::Text(s.to_string()),
            Err(_) => raw(),
        },
        der::Tag::PrintableString => {
            if bytes.iter().all(|&b| is_printable(b, true)) {
                Value::Text(String::from_utf8_lossy(bytes).into_owned())
            } else {
                raw()
            }
        }
        der::Tag::Ia5String => {
            if bytes.is_ascii() {
                Value::Text(String::from_utf8_lossy(bytes).into_owned())
            } else {
                raw()
            }
        }
        // T.61 is treated as Latin-1, as Go (and BoringSSL) do.
        der::Tag::TeletexString => Value::Text(bytes.iter().map(|&b| b as char).collect()),
        der::Tag::NumericString => {
            if bytes.iter().all(|&b| b.is_ascii_digit() || b == b' ') {
                Value::Text(String::from_utf8_lossy(bytes).into_owned())
            } else {
                raw()
            }
        }
        der::Tag::BmpString => {
            if bytes.len() % 2 != 0 {
                return raw();
            }
            let mut units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            if units.last() == Some(&0) {
                units.pop();
            }
            match String::from_utf16(&units) {
                Ok(s) => Value::Text(s),
                Err(_) => raw(),
            }
        }
        _ => raw(),
    }
}

/// Go's PrintableString alphabet; its parser also tolerates `*` and `&`, its encoder not.
fn is_printable(b: u8, lenient: bool) -> bool {
    b.is_ascii_alphanumeric()
        || (b'\''..=b')').contains(&b)
        || (b'+'..=b'/').contains(&b)
        || matches!(b, b' ' | b':' | b'=' | b'?')
        || (lenient && matches!(b, b'*' | b'&'))
}

/// DER of a Go string as `encoding/asn1.Marshal` writes it: PrintableString when every
/// character allows it, else UTF8String.
fn go_marshal_string(s: &str) -> Vec<u8> {
    let tag = if s.bytes().all(|b| is_printable(b, false)) {
        0x13
    } else {
        0x0c
    };
    let mut out = vec![tag];
    let len = s.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let skip = be.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
    out.extend_from_slice(s.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn render(rfc4514: &str) -> String {
        name_to_string(&Name::from_str(rfc4514).unwrap())
    }

    #[test]
    fn e2e_vector_subject() {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/e2e-certs/e2e.crt"
        ))
        .unwrap();
        let certs = crate::x509::parse_certificates(&pem, "e2e.crt").unwrap();
        assert_eq!(certs[0].subject(), "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US");
        assert_eq!(certs[0].issuer(), "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US");
    }

    #[test]
    fn crl_chain_subjects() {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/crl/certchain_with_crl.pem"
        ))
        .unwrap();
        let certs = crate::x509::parse_certificates(&pem, "chain").unwrap();
        let subjects: Vec<String> = certs.iter().map(|c| c.subject()).collect();
        assert_eq!(
            subjects,
            [
                "CN=LeafCert,OU=OrgUnit,O=Organization,L=City,ST=State,C=US",
                "CN=IntermediateCA,OU=OrgUnit,O=Organization,L=City,ST=State,C=US",
                "CN=RootCA,OU=OrgUnit,O=Organization,L=City,ST=State,C=US",
            ]
        );
    }

    #[test]
    fn fixed_order_regardless_of_certificate_order() {
        // x509-cert's FromStr takes RFC 4514 order (last RDN first in the encoding).
        assert_eq!(render("C=US,ST=WA,O=acme,CN=x"), "CN=x,O=acme,ST=WA,C=US");
        assert_eq!(render("CN=x,O=acme,ST=WA,C=US"), "CN=x,O=acme,ST=WA,C=US");
    }

    #[test]
    fn repeated_attributes_become_one_multi_valued_rdn() {
        assert_eq!(render("OU=b,OU=a,O=acme,C=US"), "OU=a+OU=b,O=acme,C=US");
        // Only the last common name survives in Go's Name.
        assert_eq!(render("CN=second,CN=first,C=US"), "CN=second,C=US");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            render(r#"CN=a\,b\+c\"d\\e\<f\>g\;h,C=US"#),
            r#"CN=a\,b\+c\"d\\e\<f\>g\;h,C=US"#
        );
        assert_eq!(render(r"CN=\#hash,C=US"), r"CN=\#hash,C=US");
        assert_eq!(render(r"CN=\ padded\ ,C=US"), r"CN=\ padded\ ,C=US");
        assert_eq!(render("CN=in#side sp,C=US"), "CN=in#side sp,C=US");
    }

    #[test]
    fn unknown_attributes_print_as_hex_and_last() {
        // emailAddress "a@b.c": Go re-encodes the decoded string as UTF8String (0x0c)
        // because '@' is not printable, whatever the certificate used.
        let s = render("CN=x,1.2.840.113549.1.9.1=a@b.c,C=US");
        assert_eq!(s, "CN=x,C=US,1.2.840.113549.1.9.1=#0c056140622e63");
        // Several unknown attributes keep their relative order, reversed like the rest.
        let s = render("2.5.4.12=Boss,CN=x,1.2.3.4=abc");
        assert_eq!(s, "CN=x,2.5.4.12=#1304426f7373,1.2.3.4=#1303616263");
        assert_eq!(go_marshal_string("abc"), vec![0x13, 3, b'a', b'b', b'c']);
        assert_eq!(go_marshal_string("a*"), vec![0x0c, 2, b'a', b'*']);
        let long = "x".repeat(200);
        assert_eq!(&go_marshal_string(&long)[..3], &[0x13, 0x81, 200]);
    }

    #[test]
    fn openssl_made_name_with_email_and_two_units() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ]);
        run(&[
            "req",
            "-new",
            "-x509",
            "-key",
            "k.pem",
            "-days",
            "1",
            "-out",
            "c.pem",
            "-subj",
            "/C=US/ST=WA/O=Acme, Inc./OU=b/OU=a/CN=#build <bot>/emailAddress=ci@acme.io",
        ]);
        let pem = std::fs::read(dir.path().join("c.pem")).unwrap();
        let cert = &crate::x509::parse_certificates(&pem, "c.pem").unwrap()[0];
        assert_eq!(
            cert.subject(),
            format!(
                r"CN=\#build \<bot\>,OU=b+OU=a,O=Acme\, Inc.,ST=WA,C=US,1.2.840.113549.1.9.1=#0c0a{}",
                hex::encode("ci@acme.io")
            )
        );
    }

    #[test]
    fn empty_common_name_is_dropped() {
        assert_eq!(render("CN=,O=acme,C=US"), "O=acme,C=US");
    }
}
