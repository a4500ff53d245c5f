//! The identity a keyless (Fulcio) code-signing certificate binds.
//!
//! Fulcio issues certificates with an empty subject: who signed is in the subjectAltName
//! (the workflow URI for CI tokens, an e-mail address for people) and in Sigstore's private
//! extensions under 1.3.6.1.4.1.57264.1 (the OIDC issuer, the repository, the ref, …; see
//! Fulcio's `docs/oid-info.md`). Notation's trusted identities only read the subject, so
//! these are read here for the keyless identity forms of the trust policy and for reports.
//!
//! Parsed by hand over `x509-cert` extensions: the values are single strings, in two
//! encodings (1.1–1.6 raw bytes, 1.8 onwards a DER UTF8String).

use const_oid::db::rfc5280;
use der::asn1::{ObjectIdentifier, Utf8StringRef};
use der::Decode;
use serde::Serialize;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use super::Certificate;

/// Sigstore's arc for Fulcio extensions.
pub const FULCIO_ARC: &str = "1.3.6.1.4.1.57264.1";
/// OIDC issuer, raw string (deprecated, still written).
pub const OID_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// GitHub workflow trigger / sha / name / repository / ref (deprecated, raw strings).
pub const OID_GITHUB_WORKFLOW_REPOSITORY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.5");
pub const OID_GITHUB_WORKFLOW_REF: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.6");
/// OIDC issuer, DER UTF8String.
pub const OID_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
pub const OID_BUILD_SIGNER_URI: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.9");
pub const OID_BUILD_SIGNER_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.10");
pub const OID_RUNNER_ENVIRONMENT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.11");
pub const OID_SOURCE_REPOSITORY_URI: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.12");
pub const OID_SOURCE_REPOSITORY_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.13");
pub const OID_SOURCE_REPOSITORY_REF: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.14");
pub const OID_BUILD_TRIGGER: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.20");
pub const OID_RUN_INVOCATION_URI: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.21");

/// Values longer than this are not identities; refusing them keeps reports and messages sane.
const MAX_VALUE_LEN: usize = 4096;

/// What a keyless certificate says about its signer. Serialised (kebab-case) into the
/// `signatures` / `results` outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeylessIdentity {
    /// The OIDC issuer that vouched for the signer (1.8, else 1.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// subjectAltName URIs: for GitHub Actions the workflow, `https://github.com/OWNER/REPO/.github/workflows/FILE@REF`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub san_uris: Vec<String>,
    /// subjectAltName e-mail addresses (people signing interactively).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub san_emails: Vec<String>,
    /// Source repository URI (1.12), else GitHub's repository name (1.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Source repository ref (1.14), else 1.6.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// Source repository digest (1.13): the commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Build signer URI (1.9): the (possibly reusable) workflow that signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_signer_uri: Option<String>,
    /// Build trigger (1.20), e.g. `push`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Runner environment (1.11): `github-hosted` or `self-hosted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_environment: Option<String>,
    /// Run invocation URI (1.21).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_uri: Option<String>,
}

impl KeylessIdentity {
    /// One line for logs and messages: `URI (issuer ISSUER)`.
    pub fn describe(&self) -> String {
        let who = self
            .san_uris
            .first()
            .or(self.san_emails.first())
            .map(String::as_str)
            .unwrap_or("(no subjectAltName)");
        match &self.issuer {
            Some(issuer) => format!("{who} (OIDC issuer {issuer})"),
            None => format!("{who} (no OIDC issuer extension)"),
        }
    }
}

/// Whether the certificate carries any Fulcio extension: such a certificate was issued to
/// whoever presented an OIDC token, so trusting its CA with `*` trusts everyone.
pub fn is_keyless(cert: &Certificate) -> bool {
    cert.parsed()
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .any(|e| in_fulcio_arc(&e.extn_id))
}

fn in_fulcio_arc(oid: &ObjectIdentifier) -> bool {
    let text = oid.to_string();
    text.strip_prefix(FULCIO_ARC)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// The keyless identity of `cert`, or `None` when it carries no Fulcio extension.
///
/// Fails closed on what a forger could exploit: a repeated extension, the two issuer
/// extensions disagreeing, a value that is not UTF-8, a malformed subjectAltName.
pub fn keyless_identity(cert: &Certificate) -> Result<Option<KeylessIdentity>, String> {
    if !is_keyless(cert) {
        return Ok(None);
    }
    let issuer_v1 = raw_string(cert, OID_ISSUER_V1)?;
    let issuer_v2 = der_string(cert, OID_ISSUER_V2)?;
    let issuer = match (issuer_v1, issuer_v2) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!(
                "the certificate's two OIDC issuer extensions disagree ({a:?} and {b:?})"
            ))
        }
        (a, b) => b.or(a),
    };
    let (san_uris, san_emails) = subject_alt_names(cert)?;
    Ok(Some(KeylessIdentity {
        issuer,
        san_uris,
        san_emails,
        repository: der_string(cert, OID_SOURCE_REPOSITORY_URI)?
            .or(raw_string(cert, OID_GITHUB_WORKFLOW_REPOSITORY)?),
        git_ref: der_string(cert, OID_SOURCE_REPOSITORY_REF)?
            .or(raw_string(cert, OID_GITHUB_WORKFLOW_REF)?),
        commit: der_string(cert, OID_SOURCE_REPOSITORY_DIGEST)?,
        build_signer_uri: der_string(cert, OID_BUILD_SIGNER_URI)?,
        trigger: der_string(cert, OID_BUILD_TRIGGER)?,
        runner_environment: der_string(cert, OID_RUNNER_ENVIRONMENT)?,
        run_uri: der_string(cert, OID_RUN_INVOCATION_URI)?,
    }))
}

/// subjectAltName URIs and e-mail addresses, in order.
pub fn subject_alt_names(cert: &Certificate) -> Result<(Vec<String>, Vec<String>), String> {
    let Some(bytes) = single_extension(cert, rfc5280::ID_CE_SUBJECT_ALT_NAME)? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let san = SubjectAltName::from_der(bytes)
        .map_err(|e| format!("malformed subjectAltName extension: {e}"))?;
    let mut uris = Vec::new();
    let mut emails = Vec::new();
    for name in san.0 {
        match name {
            GeneralName::UniformResourceIdentifier(u) => uris.push(u.to_string()),
            GeneralName::Rfc822Name(m) => emails.push(m.to_string()),
            _ => {}
        }
    }
    Ok((uris, emails))
}

/// The value of the single extension with `oid` (a repeated one is refused, as for chains).
fn single_extension(cert: &Certificate, oid: ObjectIdentifier) -> Result<Option<&[u8]>, String> {
    Ok(super::chain::extension(cert, oid)?.map(|e| e.extn_value.as_bytes()))
}

fn checked(oid: ObjectIdentifier, bytes: &[u8]) -> Result<String, String> {
    if bytes.len() > MAX_VALUE_LEN {
        return Err(format!(
            "extension {oid} is longer than {MAX_VALUE_LEN} bytes"
        ));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|_| format!("extension {oid} is not UTF-8 text"))?;
    if text.chars().any(char::is_control) {
        return Err(format!("extension {oid} contains control characters"));
    }
    Ok(text.to_string())
}

/// 1.1–1.6: the extension value is the string's bytes, without DER framing.
fn raw_string(cert: &Certificate, oid: ObjectIdentifier) -> Result<Option<String>, String> {
    single_extension(cert, oid)?
        .map(|b| checked(oid, b))
        .transpose()
}

/// 1.8 onwards: a DER UTF8String.
fn der_string(cert: &Certificate, oid: ObjectIdentifier) -> Result<Option<String>, String> {
    single_extension(cert, oid)?
        .map(|b| {
            let s = Utf8StringRef::from_der(b)
                .map_err(|e| format!("extension {oid} is not a DER UTF8String: {e}"))?;
            checked(oid, s.as_str().as_bytes())
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_membership() {
        assert!(in_fulcio_arc(&OID_ISSUER_V1));
        assert!(in_fulcio_arc(&OID_RUN_INVOCATION_URI));
        assert!(!in_fulcio_arc(&ObjectIdentifier::new_unwrap(
            "1.3.6.1.4.1.57264.2"
        )));
        assert!(!in_fulcio_arc(&ObjectIdentifier::new_unwrap(
            "1.3.6.1.4.1.57264.10.1"
        )));
        assert!(!in_fulcio_arc(&ObjectIdentifier::new_unwrap("2.5.29.17")));
    }

    #[test]
    fn describe_names_uri_and_issuer() {
        let id = KeylessIdentity {
            issuer: Some("https://token.actions.githubusercontent.com".into()),
            san_uris: vec!["https://github.com/o/r/.github/workflows/w.yml@refs/heads/main".into()],
            ..Default::default()
        };
        assert_eq!(
            id.describe(),
            "https://github.com/o/r/.github/workflows/w.yml@refs/heads/main (OIDC issuer https://token.actions.githubusercontent.com)"
        );
    }
}
