//! Trusted identities: RFC 4514 distinguished names with the Notary restrictions, and the
//! match of a signing certificate's subject against them (digest §7).
//!
//! Hand-written because the rules are notation's, not a general LDAP library's: one
//! attribute per RDN, no repeated attribute types, no `#hex` values, C/ST/O mandatory, and
//! the leaf certificate's subject (Go `pkix.Name.String()` text) goes through the very same
//! parser so that the two sides are compared as attribute→value maps.
//!
//! Keyless (Fulcio) certificates have an empty subject, so they get their own forms: a pin of
//! the subjectAltName URI (the workflow) and of the OIDC issuer (Fulcio's issuer extension),
//! written together in one entry, e.g.
//! `x509.san.uri:https://github.com/o/r/.github/workflows/release.yml@refs/heads/main fulcio.issuer:https://token.actions.githubusercontent.com`.
//! Clauses are separated by whitespace, which neither a URI nor a git ref can contain.

use std::collections::BTreeMap;
use std::fmt;

use crate::x509::Certificate;

/// Prefix of identities notation evaluates itself.
pub const X509_SUBJECT_PREFIX: &str = "x509.subject";

/// Clause pinning a subjectAltName URI (exact, or with one trailing `*`).
pub const SAN_URI_PREFIX: &str = "x509.san.uri";
/// Clause pinning the OIDC issuer a keyless certificate records (Fulcio 1.8 / 1.1).
pub const FULCIO_ISSUER_PREFIX: &str = "fulcio.issuer";

/// Attribute types every `x509.subject` identity (and a matching leaf) must carry.
const MANDATORY: [&str; 3] = ["C", "ST", "O"];

/// Why a distinguished name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("distinguished name {dn:?} is not valid RFC 4514: {reason}")]
    Syntax { dn: String, reason: String },
    #[error("distinguished name {0:?} has a multi-valued RDN ('+'), which notation does not support; give each attribute its own RDN separated by ','")]
    MultiValued(String),
    #[error("distinguished name {dn:?} has attribute {attribute} more than once; each attribute type may appear only once")]
    Duplicate { dn: String, attribute: String },
    #[error("distinguished name {0:?} uses a '#' hex-encoded value (\"=#\"), which notation does not support; write the value as a string")]
    HexValue(String),
    #[error("distinguished name {dn:?} lacks the mandatory attribute {attribute}; an x509.subject identity must contain C, ST and O (attribute types are case-sensitive)")]
    MissingMandatory { dn: String, attribute: &'static str },
}

/// One attribute type and its decoded value, in the order written.
pub type Rdn = Vec<(String, String)>;

/// Parse RFC 4514 text into its RDN sequence (in textual order), decoding escapes.
///
/// Accepted: `type=value` pairs separated by `,` (or `;`, as RFC 2253 parsers do), `+` for
/// multi-valued RDNs, insignificant spaces around types and values, `\` escapes of
/// `space " # + , ; < = > \` and `\XX` hex pairs (which may form UTF-8 sequences).
/// Refused: unescaped `"`, `<`, `>` and NUL in values, empty types or values, dangling
/// escapes, values that are not UTF-8 after unescaping.
pub fn parse_rfc4514(text: &str) -> Result<Vec<Rdn>, DnError> {
    let syntax = |reason: String| DnError::Syntax {
        dn: text.to_string(),
        reason,
    };
    let mut rdns: Vec<Rdn> = Vec::new();
    let mut current: Rdn = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    loop {
        // Attribute type, up to '='.
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' {
            if matches!(bytes[i], b',' | b'+' | b';' | b'\\') {
                return Err(syntax(format!(
                    "attribute type {:?} is not followed by '='",
                    text[start..i].trim()
                )));
            }
            i += 1;
        }
        if i == bytes.len() {
            return Err(syntax(format!(
                "{:?} is not a type=value pair",
                text[start..].trim()
            )));
        }
        let attr_type = text[start..i].trim_matches(' ');
        if !is_attribute_type(attr_type) {
            return Err(syntax(format!(
                "attribute type {attr_type:?} is not a name (letter, then letters, digits, '-') or a dotted OID"
            )));
        }
        i += 1; // '='

        // Attribute value, up to an unescaped separator.
        let mut value: Vec<u8> = Vec::new();
        // Length of `value` up to its last significant (non-space or escaped) byte, so
        // that unescaped trailing spaces can be dropped.
        let mut significant = 0;
        let mut leading = true;
        let mut separator = None;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b',' | b';' | b'+' => {
                    separator = Some(b);
                    i += 1;
                    break;
                }
                b' ' if leading => {
                    i += 1;
                }
                b'\\' => {
                    leading = false;
                    let next = *bytes
                        .get(i + 1)
                        .ok_or_else(|| syntax("the text ends with a dangling '\\'".into()))?;
                    if matches!(
                        next,
                        b' ' | b'"' | b'#' | b'+' | b',' | b';' | b'<' | b'=' | b'>' | b'\\'
                    ) {
                        value.push(next);
                        i += 2;
                    } else {
                        let pair = bytes.get(i + 1..i + 3).ok_or_else(|| {
                            syntax("an escape '\\' must be followed by a special character or two hex digits".into())
                        })?;
                        let decoded = std::str::from_utf8(pair)
                            .ok()
                            .and_then(|p| u8::from_str_radix(p, 16).ok())
                            .filter(|_| pair.iter().all(u8::is_ascii_hexdigit))
                            .ok_or_else(|| {
                                syntax(format!(
                                    "invalid escape '\\{}': use '\\' before a special character or two hex digits",
                                    String::from_utf8_lossy(pair)
                                ))
                            })?;
                        value.push(decoded);
                        i += 3;
                    }
                    significant = value.len();
                }
                b'"' | b'<' | b'>' | 0 => {
                    return Err(syntax(format!(
                        "character {:?} must be escaped with '\\' in a value",
                        b as char
                    )));
                }
                b'#' if leading => {
                    return Err(DnError::HexValue(text.to_string()));
                }
                _ => {
                    leading = false;
                    value.push(b);
                    if b != b' ' {
                        significant = value.len();
                    }
                    i += 1;
                }
            }
        }
        value.truncate(significant);
        if value.is_empty() {
            return Err(syntax(format!("attribute {attr_type} has an empty value")));
        }
        let value = String::from_utf8(value).map_err(|_| {
            syntax(format!(
                "the value of {attr_type} is not UTF-8 after decoding its hex escapes"
            ))
        })?;
        current.push((attr_type.to_string(), value));
        match separator {
            Some(b'+') => {
                if i >= bytes.len() {
                    return Err(syntax("the text ends with '+'".into()));
                }
            }
            Some(_) => {
                rdns.push(std::mem::take(&mut current));
                if i >= bytes.len() {
                    return Err(syntax("the text ends with a separator".into()));
                }
            }
            None => {
                rdns.push(current);
                return Ok(rdns);
            }
        }
    }
}

/// RFC 4514 `descr` (keystring) or `numericoid`.
fn is_attribute_type(t: &str) -> bool {
    let b = t.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b[0].is_ascii_alphabetic() {
        return b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-');
    }
    t.split('.').all(|arc| {
        !arc.is_empty()
            && arc.bytes().all(|c| c.is_ascii_digit())
            && (arc == "0" || !arc.starts_with('0'))
    })
}

/// A distinguished name reduced to notation's attribute→value map, after the Notary rules
/// (single-valued RDNs, unique types, no hex values, C/ST/O present; `S` read as `ST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinguishedName {
    text: String,
    attributes: BTreeMap<String, String>,
}

impl DistinguishedName {
    pub fn parse(text: &str) -> Result<DistinguishedName, DnError> {
        // notation refuses the "=#" form outright, even with spaces or in odd places.
        if text.contains("=#") {
            return Err(DnError::HexValue(text.to_string()));
        }
        let rdns = parse_rfc4514(text)?;
        let mut attributes = BTreeMap::new();
        for rdn in rdns {
            if rdn.len() > 1 {
                return Err(DnError::MultiValued(text.to_string()));
            }
            for (t, v) in rdn {
                let t = if t == "S" { "ST".to_string() } else { t };
                if attributes.contains_key(&t) {
                    return Err(DnError::Duplicate {
                        dn: text.to_string(),
                        attribute: t,
                    });
                }
                attributes.insert(t, v);
            }
        }
        for attribute in MANDATORY {
            if !attributes.contains_key(attribute) {
                return Err(DnError::MissingMandatory {
                    dn: text.to_string(),
                    attribute,
                });
            }
        }
        Ok(DistinguishedName {
            text: text.to_string(),
            attributes,
        })
    }

    /// The text this name was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn attributes(&self) -> &BTreeMap<String, String> {
        &self.attributes
    }

    pub fn get(&self, attribute: &str) -> Option<&str> {
        self.attributes.get(attribute).map(String::as_str)
    }

    /// Every attribute of `self` is present in `other` with the same (case-sensitive) value.
    pub fn is_subset_of(&self, other: &DistinguishedName) -> bool {
        self.attributes
            .iter()
            .all(|(k, v)| other.attributes.get(k) == Some(v))
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a trusted identity entry is refused. The caller adds the statement name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("a trusted identity is empty")]
    Empty,
    #[error("trusted identity {0:?} has no ':' separator; write \"*\" or \"x509.subject:<DN>\"")]
    MissingSeparator(String),
    #[error("trusted identity {0:?} has an empty x509.subject value")]
    EmptyValue(String),
    #[error("trusted identity {identity:?} is invalid: {source}")]
    InvalidDn {
        identity: String,
        #[source]
        source: DnError,
    },
    #[error("trusted identity {identity:?} is invalid: {reason}")]
    InvalidKeyless { identity: String, reason: String },
}

/// One entry of `trustedIdentities`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedIdentity {
    /// `*`: any signer the trust stores accept.
    Any,
    /// `x509.subject:<DN>`.
    X509Subject(DistinguishedName),
    /// `x509.san.uri:<URI>[ fulcio.issuer:<ISSUER>]`: a keyless signer.
    Keyless(KeylessPin),
    /// Any other `<prefix>:<value>` (left to verification plugins, e.g. AWS Signer ARNs).
    Other { prefix: String, value: String },
}

impl TrustedIdentity {
    pub fn parse(text: &str) -> Result<TrustedIdentity, IdentityError> {
        if text.is_empty() {
            return Err(IdentityError::Empty);
        }
        if text == "*" {
            return Ok(TrustedIdentity::Any);
        }
        if [SAN_URI_PREFIX, FULCIO_ISSUER_PREFIX]
            .iter()
            .any(|p| text.trim_start().starts_with(&format!("{p}:")))
        {
            return KeylessPin::parse(text).map(TrustedIdentity::Keyless);
        }
        let (prefix, value) = text
            .split_once(':')
            .ok_or_else(|| IdentityError::MissingSeparator(text.to_string()))?;
        if prefix != X509_SUBJECT_PREFIX {
            return Ok(TrustedIdentity::Other {
                prefix: prefix.to_string(),
                value: value.to_string(),
            });
        }
        if value.is_empty() {
            return Err(IdentityError::EmptyValue(text.to_string()));
        }
        DistinguishedName::parse(value)
            .map(TrustedIdentity::X509Subject)
            .map_err(|source| IdentityError::InvalidDn {
                identity: text.to_string(),
                source,
            })
    }
}

impl fmt::Display for TrustedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustedIdentity::Any => f.write_str("*"),
            TrustedIdentity::X509Subject(dn) => write!(f, "{X509_SUBJECT_PREFIX}:{dn}"),
            TrustedIdentity::Keyless(pin) => f.write_str(&pin.text),
            TrustedIdentity::Other { prefix, value } => write!(f, "{prefix}:{value}"),
        }
    }
}

/// The first pair of `x509.subject` identities where one's attributes are a subset of the
/// other's (such a pair makes the broader one redundant, and notation refuses it).
pub fn find_overlap(
    identities: &[TrustedIdentity],
) -> Option<(&DistinguishedName, &DistinguishedName)> {
    let dns: Vec<&DistinguishedName> = identities
        .iter()
        .filter_map(|i| match i {
            TrustedIdentity::X509Subject(dn) => Some(dn),
            _ => None,
        })
        .collect();
    for (i, a) in dns.iter().enumerate() {
        for (j, b) in dns.iter().enumerate() {
            if i != j && a.is_subset_of(b) {
                return Some((a, b));
            }
        }
    }
    None
}

/// Whether the leaf certificate's subject (Go `pkix.Name.String()` text, as
/// `x509::Certificate::subject` renders it) satisfies `identity`. A leaf subject the
/// parser refuses (missing C/ST/O, repeated attributes, `OID=#hex` attributes) matches
/// only `*`. `Other` identities never match here: they are a plugin's business.
pub fn matches_leaf_subject(identity: &TrustedIdentity, leaf_subject: &str) -> bool {
    match identity {
        TrustedIdentity::Any => true,
        TrustedIdentity::X509Subject(dn) => DistinguishedName::parse(leaf_subject)
            .map(|leaf| dn.is_subset_of(&leaf))
            .unwrap_or(false),
        TrustedIdentity::Keyless(_) | TrustedIdentity::Other { .. } => false,
    }
}

/// Whether the leaf certificate satisfies `identity`: `x509.subject` identities read its
/// subject, keyless pins its subjectAltName URIs and Fulcio issuer extension.
pub fn matches_leaf(identity: &TrustedIdentity, leaf: &Certificate) -> bool {
    match identity {
        TrustedIdentity::Keyless(pin) => pin.matches(leaf),
        other => matches_leaf_subject(other, &leaf.subject()),
    }
}

/// Whether any of `identities` accepts the leaf certificate.
pub fn any_matches_leaf(identities: &[TrustedIdentity], leaf: &Certificate) -> bool {
    identities.iter().any(|i| matches_leaf(i, leaf))
}

/// A `x509.san.uri` pattern: the literal URI, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriPattern {
    literal: String,
    wildcard: bool,
}

impl UriPattern {
    fn parse(value: &str) -> Result<UriPattern, String> {
        if value.is_empty() {
            return Err(format!("{SAN_URI_PREFIX} has an empty value"));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("{SAN_URI_PREFIX} contains control characters"));
        }
        let (literal, wildcard) = match value.strip_suffix('*') {
            Some(rest) => (rest, true),
            None => (value, false),
        };
        if literal.contains('*') {
            return Err(format!(
                "{SAN_URI_PREFIX} may contain '*' only as its last character (a trailing wildcard), e.g. .../release.yml@refs/heads/*"
            ));
        }
        let url = url::Url::parse(literal).map_err(|e| {
            format!("{SAN_URI_PREFIX} value {literal:?} is not an absolute URI: {e}")
        })?;
        if url.host_str().is_none_or(|h| h.is_empty()) {
            return Err(format!(
                "{SAN_URI_PREFIX} value {literal:?} has no host; give the whole URI, e.g. https://github.com/OWNER/REPO/.github/workflows/FILE@REF"
            ));
        }
        if wildcard {
            if !(literal.ends_with('/') || literal.ends_with('@')) {
                return Err(format!(
                    "{SAN_URI_PREFIX}: the wildcard must follow '/' or '@' (e.g. ...@refs/heads/* or .../workflows/*), so that {literal:?}* cannot also match a longer name that merely starts the same"
                ));
            }
            let segments = url
                .path_segments()
                .map(|s| s.filter(|p| !p.is_empty()).count())
                .unwrap_or(0);
            if segments == 0 {
                return Err(format!(
                    "{SAN_URI_PREFIX}: {value:?} would trust every identity of the host; pin at least an owner or repository before the wildcard"
                ));
            }
        }
        Ok(UriPattern {
            literal: literal.to_string(),
            wildcard,
        })
    }

    /// Exact comparison, or a prefix followed by at least one character.
    pub fn matches(&self, uri: &str) -> bool {
        if self.wildcard {
            uri.len() > self.literal.len() && uri.starts_with(&self.literal)
        } else {
            uri == self.literal
        }
    }
}

/// A keyless signer pin: the certificate's subjectAltName URI and, for keyless (Fulcio)
/// certificates, the OIDC issuer recorded in its extension.
///
/// Without a `fulcio.issuer` clause the pin accepts only certificates that carry no Fulcio
/// extension (an ordinary CA's certificate with a URI SAN, e.g. SPIFFE): a keyless
/// certificate's SAN means something only together with the issuer that vouched for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeylessPin {
    pub san_uri: UriPattern,
    pub issuer: Option<String>,
    text: String,
}

impl KeylessPin {
    pub fn parse(text: &str) -> Result<KeylessPin, IdentityError> {
        let invalid = |reason: String| IdentityError::InvalidKeyless {
            identity: text.to_string(),
            reason,
        };
        let mut san_uri = None;
        let mut issuer = None;
        for clause in text.split_whitespace() {
            let Some((prefix, value)) = clause.split_once(':') else {
                return Err(invalid(format!(
                    "{clause:?} is not a clause; write {SAN_URI_PREFIX}:<URI> and {FULCIO_ISSUER_PREFIX}:<ISSUER> separated by a space"
                )));
            };
            match prefix {
                SAN_URI_PREFIX => {
                    if san_uri.is_some() {
                        return Err(invalid(format!(
                            "{SAN_URI_PREFIX} is given twice; write one entry per identity"
                        )));
                    }
                    san_uri = Some(UriPattern::parse(value).map_err(invalid)?);
                }
                FULCIO_ISSUER_PREFIX => {
                    if issuer.is_some() {
                        return Err(invalid(format!("{FULCIO_ISSUER_PREFIX} is given twice")));
                    }
                    issuer = Some(parse_issuer(value).map_err(invalid)?);
                }
                other => {
                    return Err(invalid(format!(
                        "unknown clause {other:?}: a keyless identity combines only {SAN_URI_PREFIX} and {FULCIO_ISSUER_PREFIX}"
                    )))
                }
            }
        }
        let Some(san_uri) = san_uri else {
            return Err(invalid(format!(
                "{FULCIO_ISSUER_PREFIX} alone trusts every identity the issuer vouches for (for GitHub Actions, every workflow of every repository); add {SAN_URI_PREFIX}:<workflow URI> to the same entry"
            )));
        };
        Ok(KeylessPin {
            san_uri,
            issuer,
            text: text.to_string(),
        })
    }

    /// Whether `leaf` carries a matching URI SAN and the pinned issuer (or, for a pin without
    /// issuer, no Fulcio extension at all). A malformed Fulcio extension never matches.
    pub fn matches(&self, leaf: &Certificate) -> bool {
        let Ok((uris, _)) = crate::x509::fulcio::subject_alt_names(leaf) else {
            return false;
        };
        if !uris.iter().any(|u| self.san_uri.matches(u)) {
            return false;
        }
        match crate::x509::fulcio::keyless_identity(leaf) {
            Err(_) => false,
            Ok(None) => self.issuer.is_none(),
            Ok(Some(id)) => self.issuer.is_some() && id.issuer == self.issuer,
        }
    }
}

fn parse_issuer(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("{FULCIO_ISSUER_PREFIX} has an empty value"));
    }
    if value.contains('*') {
        return Err(format!(
            "{FULCIO_ISSUER_PREFIX} takes no wildcard: give the issuer exactly, e.g. https://token.actions.githubusercontent.com"
        ));
    }
    let url = url::Url::parse(value)
        .map_err(|e| format!("{FULCIO_ISSUER_PREFIX} value {value:?} is not a URL: {e}"))?;
    if url.scheme() != "https" || url.host_str().is_none_or(|h| h.is_empty()) {
        return Err(format!(
            "{FULCIO_ISSUER_PREFIX} value {value:?} must be an https URL (the token's `iss`), e.g. https://token.actions.githubusercontent.com"
        ));
    }
    Ok(value.to_string())
}

/// Whether any of `identities` accepts the leaf subject.
pub fn any_matches(identities: &[TrustedIdentity], leaf_subject: &str) -> bool {
    identities
        .iter()
        .any(|i| matches_leaf_subject(i, leaf_subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> DistinguishedName {
        DistinguishedName::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_spaces_and_order() {
        let d = dn(" C=US, ST=WA ,O=acme ,  CN=builder ");
        assert_eq!(
            d.attributes(),
            &map(&[("C", "US"), ("ST", "WA"), ("O", "acme"), ("CN", "builder")])
        );
    }

    #[test]
    fn decodes_escapes() {
        let d = dn(r"CN=a\,b\+c\\d\;e\<f\>g\=h\#i\22j,O=x\ ,ST=\ y,C=US");
        assert_eq!(d.get("CN"), Some(r#"a,b+c\d;e<f>g=h#i"j"#));
        assert_eq!(d.get("O"), Some("x "), "escaped trailing space kept");
        assert_eq!(d.get("ST"), Some(" y"), "escaped leading space kept");
        let e = dn(r"CN=caf\C3\A9 \C3\A9,O=\4e\6F,ST=WA,C=US");
        assert_eq!(e.get("CN"), Some("café é"));
        assert_eq!(e.get("O"), Some("No"));
        // Inner spaces are kept; unescaped outer ones dropped.
        assert_eq!(dn("CN=  a  b  ,O=o,ST=s,C=c").get("CN"), Some("a  b"));
        // Raw UTF-8 passes through (Go does not escape it).
        assert_eq!(dn("CN=Zürich,O=o,ST=s,C=c").get("CN"), Some("Zürich"));
        // '=' in a value needs no escape.
        assert_eq!(dn("CN=a=b,O=o,ST=s,C=c").get("CN"), Some("a=b"));
        // ';' separates RDNs like ','.
        assert_eq!(dn("CN=a;O=o;ST=s;C=c").get("O"), Some("o"));
    }

    #[test]
    fn s_is_an_alias_of_st() {
        let d = dn("C=US,S=California,O=Notary Project");
        assert_eq!(d.get("ST"), Some("California"));
        assert!(matches!(
            DistinguishedName::parse("C=US,S=a,ST=b,O=o"),
            Err(DnError::Duplicate { attribute, .. }) if attribute == "ST"
        ));
    }

    #[test]
    fn refuses_what_notation_refuses() {
        type Expect = fn(&DnError) -> bool;
        let cases: &[(&str, Expect)] = &[
            ("C=US+ST=WA,O=o", |e| matches!(e, DnError::MultiValued(_))),
            (
                "C=US,ST=WA,O=a,O=b",
                |e| matches!(e, DnError::Duplicate { attribute, .. } if attribute == "O"),
            ),
            ("C=US,ST=WA,O=#0403616263", |e| {
                matches!(e, DnError::HexValue(_))
            }),
            ("C=US,ST=WA,O= #0403616263", |e| {
                matches!(e, DnError::HexValue(_))
            }),
            ("C=US,O=o", |e| {
                matches!(
                    e,
                    DnError::MissingMandatory {
                        attribute: "ST",
                        ..
                    }
                )
            }),
            ("C=US,ST=WA", |e| {
                matches!(e, DnError::MissingMandatory { attribute: "O", .. })
            }),
            ("ST=WA,O=o,c=US", |e| {
                matches!(e, DnError::MissingMandatory { attribute: "C", .. })
            }),
            ("C=US,ST=WA,O", |e| matches!(e, DnError::Syntax { .. })),
            ("C=US,ST=WA,O=", |e| matches!(e, DnError::Syntax { .. })),
            ("C=US,ST=WA,O=o,", |e| matches!(e, DnError::Syntax { .. })),
            ("C=US,,ST=WA,O=o", |e| matches!(e, DnError::Syntax { .. })),
            ("=US,ST=WA,O=o", |e| matches!(e, DnError::Syntax { .. })),
            ("C=US,ST=WA,O=a\"b", |e| matches!(e, DnError::Syntax { .. })),
            ("C=US,ST=WA,O=a<b", |e| matches!(e, DnError::Syntax { .. })),
            ("C=US,ST=WA,O=ab\\", |e| matches!(e, DnError::Syntax { .. })),
            ("C=US,ST=WA,O=a\\zz", |e| {
                matches!(e, DnError::Syntax { .. })
            }),
            ("C=US,ST=WA,O=a\\4", |e| matches!(e, DnError::Syntax { .. })),
            ("C=US,ST=WA,O=\\ff", |e| matches!(e, DnError::Syntax { .. })),
            ("C=US,ST=WA,O b=x", |e| matches!(e, DnError::Syntax { .. })),
            ("", |e| matches!(e, DnError::Syntax { .. })),
        ];
        for (text, ok) in cases {
            let err = DistinguishedName::parse(text).expect_err(text);
            assert!(ok(&err), "{text}: unexpected error {err}");
        }
    }

    #[test]
    fn trusted_identity_forms() {
        assert_eq!(TrustedIdentity::parse("*"), Ok(TrustedIdentity::Any));
        assert_eq!(TrustedIdentity::parse(""), Err(IdentityError::Empty));
        assert!(matches!(
            TrustedIdentity::parse("CN=a,O=b,ST=c,C=d"),
            Err(IdentityError::MissingSeparator(_))
        ));
        assert!(matches!(
            TrustedIdentity::parse("x509.subject:"),
            Err(IdentityError::EmptyValue(_))
        ));
        assert!(matches!(
            TrustedIdentity::parse("x509.subject: CN=a"),
            Err(IdentityError::InvalidDn { .. })
        ));
        assert_eq!(
            TrustedIdentity::parse("signingAuthority:arn:aws:signer:us-west-2:1:/x"),
            Ok(TrustedIdentity::Other {
                prefix: "signingAuthority".into(),
                value: "arn:aws:signer:us-west-2:1:/x".into()
            })
        );
        let id = TrustedIdentity::parse("x509.subject: C=US, ST=WA, O=acme, CN=builder").unwrap();
        assert_eq!(
            id.to_string(),
            "x509.subject: C=US, ST=WA, O=acme, CN=builder"
        );
    }

    #[test]
    fn leaf_matching() {
        let leaf = "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US";
        let id = |s: &str| TrustedIdentity::parse(s).unwrap();
        assert!(matches_leaf_subject(
            &id("x509.subject: CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"),
            leaf
        ));
        assert!(matches_leaf_subject(
            &id("x509.subject: C=US,ST=WA,O=Notary"),
            leaf
        ));
        // Values are case-sensitive.
        assert!(!matches_leaf_subject(
            &id("x509.subject: C=US,ST=WA,O=notary"),
            leaf
        ));
        // An attribute the leaf lacks never matches.
        assert!(!matches_leaf_subject(
            &id("x509.subject: C=US,ST=WA,O=Notary,OU=build"),
            leaf
        ));
        assert!(matches_leaf_subject(&TrustedIdentity::Any, "CN=anything"));
        // Leaves lacking C/ST/O, repeating attributes or with OID=#hex match only '*'.
        let broad = id("x509.subject: C=US,ST=WA,O=Notary");
        assert!(!matches_leaf_subject(&broad, "CN=e2e,O=Notary,C=US"));
        assert!(!matches_leaf_subject(
            &broad,
            "CN=e2e,OU=a,OU=b,O=Notary,ST=WA,C=US"
        ));
        assert!(!matches_leaf_subject(
            &broad,
            "1.2.840.113549.1.9.1=#0c0161,CN=e2e,O=Notary,ST=WA,C=US"
        ));
        // Go escapes specials in the leaf string; they are decoded before comparing.
        let escaped = id(r"x509.subject: C=US,ST=WA,O=Acme\, Inc.");
        assert!(matches_leaf_subject(
            &escaped,
            r"CN=x,O=Acme\, Inc.,ST=WA,C=US"
        ));
        assert!(!matches_leaf_subject(
            &id("x509.subject: C=US,ST=WA,O=o"),
            "CN=x,O=o,ST=WA,C=US+ST=x"
        ));
        assert!(!matches_leaf_subject(
            &TrustedIdentity::Other {
                prefix: "x".into(),
                value: "y".into()
            },
            leaf
        ));
        assert!(any_matches(
            &[broad.clone(), TrustedIdentity::Any],
            "CN=zzz"
        ));
        assert!(!any_matches(&[broad], "CN=zzz,O=o,ST=s,C=c"));
    }

    #[test]
    fn overlap_detection() {
        let ids = |v: &[&str]| -> Vec<TrustedIdentity> {
            v.iter()
                .map(|s| TrustedIdentity::parse(s).unwrap())
                .collect()
        };
        let overlapping = ids(&[
            "x509.subject: CN=e2e,O=Notary,L=Seattle,ST=WA,C=US",
            "x509.subject: CN=e2e,O=Notary,ST=WA,C=US",
        ]);
        let (a, b) = find_overlap(&overlapping).unwrap();
        assert_eq!(a.get("L"), None);
        assert_eq!(b.get("L"), Some("Seattle"));
        // Identical identities overlap too.
        assert!(find_overlap(&ids(&[
            "x509.subject:C=US,ST=WA,O=a",
            "x509.subject:O=a,ST=WA,C=US"
        ]))
        .is_some());
        assert!(find_overlap(&ids(&[
            "x509.subject: CN=a,O=Notary,ST=WA,C=US",
            "x509.subject: CN=b,O=Notary,ST=WA,C=US",
        ]))
        .is_none());
    }

    const GH: &str = "https://token.actions.githubusercontent.com";
    const WF: &str =
        "https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main";

    #[test]
    fn keyless_forms_parse() {
        let text = format!("x509.san.uri:{WF} fulcio.issuer:{GH}");
        let TrustedIdentity::Keyless(pin) = TrustedIdentity::parse(&text).unwrap() else {
            panic!("not a keyless pin")
        };
        assert_eq!(pin.issuer.as_deref(), Some(GH));
        assert!(pin.san_uri.matches(WF));
        assert!(!pin.san_uri.matches(&format!("{WF}x")));
        // Order and spacing are free; the text is kept as written.
        let swapped = format!("  fulcio.issuer:{GH}\tx509.san.uri:{WF} ");
        let parsed = TrustedIdentity::parse(&swapped).unwrap();
        assert_eq!(parsed.to_string(), swapped);
        // A SAN pin alone is a valid form (it accepts only non-keyless certificates).
        let TrustedIdentity::Keyless(alone) =
            TrustedIdentity::parse(&format!("x509.san.uri:{WF}")).unwrap()
        else {
            panic!()
        };
        assert_eq!(alone.issuer, None);
    }

    #[test]
    fn trailing_wildcards_only() {
        let pattern = |p: &str| UriPattern::parse(p);
        let heads = pattern(
            "https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/*",
        )
        .unwrap();
        assert!(heads.matches(WF));
        assert!(heads.matches(
            "https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/feature/x"
        ));
        assert!(!heads.matches(
            "https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/heads/"
        ));
        assert!(!heads.matches(
            "https://github.com/octo-org/octo-repo/.github/workflows/release.yml@refs/tags/v1"
        ));
        let any_ref =
            pattern("https://github.com/octo-org/octo-repo/.github/workflows/release.yml@*")
                .unwrap();
        assert!(any_ref.matches(WF));
        let org = pattern("https://github.com/octo-org/*").unwrap();
        assert!(org.matches(WF));
        assert!(!org
            .matches("https://github.com/octo-org-evil/x/.github/workflows/a.yml@refs/heads/main"));
        for (bad, why) in [
            (
                "https://github.com/*/octo-repo/x",
                "only as its last character",
            ),
            (
                "https://github.com/octo-org/octo-repo*",
                "must follow '/' or '@'",
            ),
            ("https://github.com/octo*/", "only as its last character"),
            ("https://github.com/*", "every identity of the host"),
            ("https://*", "empty host"),
            ("*", "not an absolute URI"),
            ("github.com/octo-org/*", "not an absolute URI"),
            ("", "empty"),
            ("urn:example:a", "no host"),
        ] {
            let err = pattern(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn malformed_keyless_forms_are_refused() {
        for (text, why) in [
            (format!("fulcio.issuer:{GH}"), "alone trusts every identity"),
            (
                format!("x509.san.uri:{WF} x509.san.uri:{WF} fulcio.issuer:{GH}"),
                "given twice",
            ),
            (
                format!("x509.san.uri:{WF} fulcio.issuer:{GH} fulcio.issuer:{GH}"),
                "given twice",
            ),
            (
                format!("x509.san.uri:{WF} fulcio.issuer:https://token.actions.*"),
                "takes no wildcard",
            ),
            (
                format!("x509.san.uri:{WF} fulcio.issuer:http://issuer.example"),
                "must be an https URL",
            ),
            (format!("x509.san.uri:{WF} fulcio.issuer:"), "empty value"),
            (format!("x509.san.uri:{WF} x509.subject:C=US"), "unknown clause"),
            (format!("x509.san.uri:{WF} and"), "is not a clause"),
            ("x509.san.uri:".to_string(), "empty value"),
            (
                format!("x509.san.uri:https://github.com/o/r/.github/workflows/*.yml@refs/heads/main fulcio.issuer:{GH}"),
                "only as its last character",
            ),
        ] {
            match TrustedIdentity::parse(&text) {
                Err(IdentityError::InvalidKeyless { identity, reason }) => {
                    assert_eq!(identity, text);
                    assert!(reason.contains(why), "{text}: {reason}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // Prefixes that merely resemble the keyless ones stay plugin identities.
        assert!(matches!(
            TrustedIdentity::parse("x509.san.uri.other:value"),
            Ok(TrustedIdentity::Other { .. })
        ));
    }
}
