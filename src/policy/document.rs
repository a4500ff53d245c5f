//! The OCI trust policy document: model, loading, validation and statement selection
//! (digest §7).
//!
//! The JSON is first read into a loose shape (every field optional, strings kept as
//! written) and then validated into typed statements, so that every rule violation gets a
//! message naming the statement and the rule, as notation's do, instead of a serde error.
//! Unknown fields are ignored, as notation (Go `encoding/json`) ignores them; field names
//! are matched exactly (Go would also accept `Level` for `level`: such a document fails here
//! with "level missing" rather than being read differently).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::identity::{find_overlap, DistinguishedName, IdentityError, TrustedIdentity};
use super::level::{Action, Check, Level, OverrideError, VerificationSettings, VerifyTimestamp};
use super::store::{is_valid_store_name, StoreType};
use super::{read_regular_file, ReadFileError};

/// Preferred policy file name (specification main).
pub const OCI_POLICY_FILE: &str = "trustpolicy.oci.json";
/// The name notation v1.x reads, used when the `.oci.json` file is absent.
pub const LEGACY_POLICY_FILE: &str = "trustpolicy.json";
/// Policy documents are small; anything larger is refused rather than parsed.
pub const MAX_POLICY_BYTES: u64 = 4 * 1024 * 1024;

const POLICY_HELP: &str = "https://notaryproject.dev/docs/quickstart/#create-a-trust-policy";

/// Problems loading, validating or applying a trust policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("trust policy is not present: neither {oci} nor {legacy} exists; create one (see {POLICY_HELP})", oci = .dir.join(OCI_POLICY_FILE).display(), legacy = .dir.join(LEGACY_POLICY_FILE).display())]
    NotFound { dir: PathBuf },
    #[error("trust policy file {0} does not exist")]
    FileNotFound(PathBuf),
    #[error("trust policy {0} is not a regular file (symlinks and directories are not supported)")]
    NotRegularFile(PathBuf),
    #[error("trust policy {0} is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge(PathBuf),
    #[error("cannot read trust policy {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed trust policy {origin}: {reason}")]
    Malformed { origin: String, reason: String },

    #[error("trust policy document has no version; set \"version\": \"1.0\"")]
    MissingVersion,
    #[error(
        "trust policy document uses unsupported version {0:?}; the supported version is \"1.0\""
    )]
    UnsupportedVersion(String),
    #[error(
        "trust policy document has no trust policy statements (trustPolicies is empty or missing)"
    )]
    NoStatements,
    #[error("trust policy statement #{index} has no name; every statement requires a unique name")]
    MissingName { index: usize },
    #[error("trust policy statement {0:?}: multiple statements use this name; statement names must be unique")]
    DuplicateName(String),
    #[error("trust policy statement {statement:?}: signatureVerification level is missing; use strict, permissive, audit or skip")]
    MissingLevel { statement: String },
    #[error("trust policy statement {statement:?}: invalid signatureVerification level {level:?}; use strict, permissive, audit or skip")]
    InvalidLevel { statement: String, level: String },
    #[error(
        "trust policy statement {statement:?}: invalid signatureVerification override: {source}"
    )]
    InvalidOverride {
        statement: String,
        #[source]
        source: OverrideError,
    },
    #[error("trust policy statement {statement:?}: invalid verifyTimestamp {value:?}; use always or afterCertExpiry")]
    InvalidVerifyTimestamp { statement: String, value: String },
    #[error("trust policy statement {statement:?} is set to skip signature verification but configured with trust stores and/or trusted identities; remove them if verification is to be skipped")]
    SkipWithStoresOrIdentities { statement: String },
    #[error("trust policy statement {statement:?} is either missing trust stores or trusted identities; both must be specified")]
    MissingStoresOrIdentities { statement: String },
    #[error("trust policy statement {statement:?}: malformed trust store value {value:?}; the required format is <type>:<name>")]
    MalformedTrustStore { statement: String, value: String },
    #[error("trust policy statement {statement:?}: unsupported trust store type {store_type:?} in {value:?}; use ca, signingAuthority or tsa")]
    UnknownTrustStoreType {
        statement: String,
        store_type: String,
        value: String,
    },
    #[error("trust policy statement {statement:?}: invalid trust store name {name:?} in {value:?}; names must match [a-zA-Z0-9_.-]+")]
    InvalidTrustStoreName {
        statement: String,
        name: String,
        value: String,
    },
    #[error("trust policy statement {statement:?}: the wildcard trusted identity \"*\" cannot be used together with other identities")]
    WildcardIdentityMixed { statement: String },
    #[error("trust policy statement {statement:?}: {source}")]
    InvalidIdentity {
        statement: String,
        #[source]
        source: IdentityError,
    },
    #[error("trust policy statement {statement:?} has overlapping x509 trustedIdentities: \"x509.subject:{first}\" overlaps with \"x509.subject:{second}\"; keep only one of them")]
    OverlappingIdentities {
        statement: String,
        first: String,
        second: String,
    },
    #[error(
        "trust policy statement {statement:?} has zero registry scopes; it must list at least one"
    )]
    NoRegistryScopes { statement: String },
    #[error("trust policy statement {statement:?}: the wildcard registry scope \"*\" cannot be used together with other scopes")]
    WildcardScopeMixed { statement: String },
    #[error("trust policy statement {statement:?}: registry scope {scope:?} is not valid; write a repository without scheme, tag, digest or wildcards, e.g. registry.example.com/my/repository")]
    InvalidRegistryScope { statement: String, scope: String },
    #[error("trust policy statement {statement:?}: registry scope {scope:?} is present in multiple oci trust policy statements ({other:?} and {statement:?}); one registry scope can be associated with only one statement")]
    DuplicateRegistryScope {
        statement: String,
        scope: String,
        other: String,
    },
    #[error(
        "trust policy statement {statement:?}: registry scope {scope:?} is listed more than once"
    )]
    RepeatedRegistryScope { statement: String, scope: String },

    #[error("no applicable trust policy for {scope}: no statement lists this registry scope and there is no \"*\" statement")]
    NoApplicablePolicy { scope: String },
    #[error("artifact reference {0:?} cannot be matched against trust policies: give the fully qualified reference with a digest, e.g. registry.example.com/my/repository@sha256:…")]
    InvalidReference(String),
}

/// A `trustStores` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrustStoreRef {
    pub store_type: StoreType,
    pub name: String,
}

impl fmt::Display for TrustStoreRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.store_type, self.name)
    }
}

/// A validated trust policy statement.
#[derive(Debug, Clone)]
pub struct TrustPolicyStatement {
    pub name: String,
    pub registry_scopes: Vec<String>,
    pub verification: VerificationSettings,
    pub trust_stores: Vec<TrustStoreRef>,
    pub trusted_identities: Vec<TrustedIdentity>,
}

impl TrustPolicyStatement {
    pub fn level(&self) -> Level {
        self.verification.level
    }

    pub fn action_for(&self, check: Check) -> Action {
        self.verification.action_for(check)
    }

    pub fn verify_timestamp(&self) -> VerifyTimestamp {
        self.verification.verify_timestamp
    }

    /// Names of the statement's stores of one type, in policy order.
    pub fn stores_of(&self, store_type: StoreType) -> impl Iterator<Item = &str> {
        self.trust_stores
            .iter()
            .filter(move |s| s.store_type == store_type)
            .map(|s| s.name.as_str())
    }

    pub fn has_store_type(&self, store_type: StoreType) -> bool {
        self.stores_of(store_type).next().is_some()
    }

    /// `trustedIdentities` is exactly `["*"]`.
    pub fn trusts_any_identity(&self) -> bool {
        self.trusted_identities.contains(&TrustedIdentity::Any)
    }

    /// Whether the leaf certificate's subject (Go `pkix.Name.String()` form) is trusted.
    pub fn accepts_leaf_subject(&self, leaf_subject: &str) -> bool {
        super::identity::any_matches(&self.trusted_identities, leaf_subject)
    }

    /// A matcher for the leaf subject, or `None` when the statement trusts any identity
    /// (`*`). Owns its identities, so it can outlive the document.
    pub fn leaf_subject_matcher(&self) -> Option<impl Fn(&str) -> bool + Send + Sync + 'static> {
        if self.trusts_any_identity() {
            return None;
        }
        let identities = self.trusted_identities.clone();
        Some(move |subject: &str| super::identity::any_matches(&identities, subject))
    }

    /// The identities as written, for messages.
    pub fn identity_texts(&self) -> Vec<String> {
        self.trusted_identities
            .iter()
            .map(|i| i.to_string())
            .collect()
    }
}

/// A validated OCI trust policy document.
#[derive(Debug, Clone)]
pub struct TrustPolicyDocument {
    pub version: String,
    pub statements: Vec<TrustPolicyStatement>,
}

impl TrustPolicyDocument {
    /// Load `trustpolicy.oci.json` from notation's configuration directory, or
    /// `trustpolicy.json` when the former does not exist.
    pub fn load_from_config_dir(dir: &Path) -> Result<TrustPolicyDocument, PolicyError> {
        for name in [OCI_POLICY_FILE, LEGACY_POLICY_FILE] {
            match Self::load_file(&dir.join(name)) {
                Err(PolicyError::FileNotFound(_)) => continue,
                other => return other,
            }
        }
        Err(PolicyError::NotFound {
            dir: dir.to_path_buf(),
        })
    }

    /// Load and validate one policy file (a regular file, not a symlink).
    pub fn load_file(path: &Path) -> Result<TrustPolicyDocument, PolicyError> {
        let data = read_regular_file(path, MAX_POLICY_BYTES).map_err(|e| match e {
            ReadFileError::NotFound => PolicyError::FileNotFound(path.to_path_buf()),
            ReadFileError::NotRegular => PolicyError::NotRegularFile(path.to_path_buf()),
            ReadFileError::TooLarge => PolicyError::TooLarge(path.to_path_buf()),
            ReadFileError::Io(source) => PolicyError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        Self::parse_bytes(&data, &path.display().to_string())
    }

    /// Parse and validate policy JSON given inline.
    pub fn parse_str(json: &str) -> Result<TrustPolicyDocument, PolicyError> {
        Self::parse_bytes(json.as_bytes(), "(inline JSON)")
    }

    fn parse_bytes(data: &[u8], origin: &str) -> Result<TrustPolicyDocument, PolicyError> {
        if data.len() as u64 > MAX_POLICY_BYTES {
            return Err(PolicyError::Malformed {
                origin: origin.into(),
                reason: format!("larger than {MAX_POLICY_BYTES} bytes"),
            });
        }
        let raw: RawDocument =
            serde_json::from_slice(data).map_err(|e| PolicyError::Malformed {
                origin: origin.into(),
                reason: e.to_string(),
            })?;
        validate(raw)
    }

    pub fn statement(&self, name: &str) -> Option<&TrustPolicyStatement> {
        self.statements.iter().find(|s| s.name == name)
    }

    /// The statement for a registry scope (`host[:port]/repository`): the one listing it
    /// exactly, else the `*` statement. No prefix matching and no normalisation.
    pub fn select(&self, scope: &str) -> Result<&TrustPolicyStatement, PolicyError> {
        let mut wildcard = None;
        for statement in &self.statements {
            if statement.registry_scopes.iter().any(|s| s == scope) {
                return Ok(statement);
            }
            if statement.registry_scopes.iter().any(|s| s == "*") {
                wildcard = Some(statement);
            }
        }
        wildcard.ok_or_else(|| PolicyError::NoApplicablePolicy {
            scope: scope.to_string(),
        })
    }

    /// [`select`](Self::select) for a fully qualified `host[:port]/repo@digest` reference.
    pub fn select_for_reference(
        &self,
        reference: &str,
    ) -> Result<&TrustPolicyStatement, PolicyError> {
        self.select(scope_of_reference(reference)?)
    }
}

/// The registry scope of `host[:port]/repo@<digest>`: the part before the last `@`, which
/// must itself be a valid scope.
pub fn scope_of_reference(reference: &str) -> Result<&str, PolicyError> {
    let (scope, _) = reference
        .rsplit_once('@')
        .ok_or_else(|| PolicyError::InvalidReference(reference.into()))?;
    if !is_valid_registry_scope(scope) {
        return Err(PolicyError::InvalidReference(reference.into()));
    }
    Ok(scope)
}

/// `host[:port]/repository` with distribution's domain and (lower-case) path grammar.
pub fn is_valid_registry_scope(scope: &str) -> bool {
    if scope.contains('*') {
        return false;
    }
    let Some((domain, repository)) = scope.split_once('/') else {
        return false;
    };
    is_valid_domain(domain)
        && !repository.is_empty()
        && repository.split('/').all(is_valid_path_component)
}

/// `label(.label)*(:port)?`, labels `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?`.
fn is_valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_valid_path_component(component: &str) -> bool {
    let b = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

// ---- loose JSON shape -------------------------------------------------------------

#[derive(Deserialize)]
struct RawDocument {
    version: Option<String>,
    #[serde(rename = "trustPolicies")]
    trust_policies: Option<Vec<RawStatement>>,
}

#[derive(Deserialize)]
struct RawStatement {
    name: Option<String>,
    #[serde(rename = "registryScopes")]
    registry_scopes: Option<Vec<String>>,
    #[serde(rename = "signatureVerification")]
    signature_verification: Option<RawSignatureVerification>,
    #[serde(rename = "trustStores")]
    trust_stores: Option<Vec<String>>,
    #[serde(rename = "trustedIdentities")]
    trusted_identities: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawSignatureVerification {
    level: Option<String>,
    #[serde(rename = "override", default, deserialize_with = "ordered_pairs")]
    overrides: Option<Vec<(String, String)>>,
    #[serde(rename = "verifyTimestamp")]
    verify_timestamp: Option<String>,
}

/// An object of string values kept in order, refusing repeated keys (a repeated override
/// key is ambiguous: fail rather than guess which one the author meant).
fn ordered_pairs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<(String, String)>>, D::Error> {
    struct PairsVisitor;
    impl<'de> Visitor<'de> for PairsVisitor {
        type Value = Option<Vec<(String, String)>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object mapping verification checks to actions")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs: Vec<(String, String)> = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, String>()? {
                if pairs.iter().any(|(seen, _)| *seen == k) {
                    return Err(serde::de::Error::custom(format!(
                        "override key {k:?} appears more than once"
                    )));
                }
                pairs.push((k, v));
            }
            Ok(Some(pairs))
        }
    }
    deserializer.deserialize_option(PairsVisitor)
}

// ---- validation ------------------------------------------------------------------

fn validate(raw: RawDocument) -> Result<TrustPolicyDocument, PolicyError> {
    let version = match raw.version.as_deref() {
        None | Some("") => return Err(PolicyError::MissingVersion),
        Some("1.0") => "1.0".to_string(),
        Some(other) => return Err(PolicyError::UnsupportedVersion(other.into())),
    };
    let raw_statements = raw.trust_policies.unwrap_or_default();
    if raw_statements.is_empty() {
        return Err(PolicyError::NoStatements);
    }

    let mut statements: Vec<TrustPolicyStatement> = Vec::with_capacity(raw_statements.len());
    // Registry scope → statement that first listed it.
    let mut scope_owner: HashMap<String, String> = HashMap::new();
    for (index, raw) in raw_statements.into_iter().enumerate() {
        let name = raw.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(PolicyError::MissingName { index: index + 1 });
        }
        if statements.iter().any(|s| s.name == name) {
            return Err(PolicyError::DuplicateName(name));
        }
        let statement = validate_statement(name, raw)?;
        for scope in &statement.registry_scopes {
            if let Some(other) = scope_owner.get(scope) {
                return Err(if *other == statement.name {
                    PolicyError::RepeatedRegistryScope {
                        statement: statement.name.clone(),
                        scope: scope.clone(),
                    }
                } else {
                    PolicyError::DuplicateRegistryScope {
                        statement: statement.name.clone(),
                        scope: scope.clone(),
                        other: other.clone(),
                    }
                });
            }
            scope_owner.insert(scope.clone(), statement.name.clone());
        }
        statements.push(statement);
    }
    Ok(TrustPolicyDocument {
        version,
        statements,
    })
}

fn validate_statement(
    name: String,
    raw: RawStatement,
) -> Result<TrustPolicyStatement, PolicyError> {
    let sv = raw.signature_verification;
    let level_text = sv
        .as_ref()
        .and_then(|s| s.level.clone())
        .unwrap_or_default();
    if level_text.is_empty() {
        return Err(PolicyError::MissingLevel { statement: name });
    }
    let level = Level::parse(&level_text).ok_or_else(|| PolicyError::InvalidLevel {
        statement: name.clone(),
        level: level_text.clone(),
    })?;
    let mut verification = VerificationSettings::new(level);
    if let Some(sv) = &sv {
        for (check, action) in sv.overrides.iter().flatten() {
            verification.add_override(check, action).map_err(|source| {
                PolicyError::InvalidOverride {
                    statement: name.clone(),
                    source,
                }
            })?;
        }
        if let Some(vt) = &sv.verify_timestamp {
            verification.verify_timestamp =
                VerifyTimestamp::parse(vt).ok_or_else(|| PolicyError::InvalidVerifyTimestamp {
                    statement: name.clone(),
                    value: vt.clone(),
                })?;
        }
    }

    let stores = raw.trust_stores.unwrap_or_default();
    let identities = raw.trusted_identities.unwrap_or_default();
    let mut trust_stores = Vec::new();
    let mut trusted_identities = Vec::new();
    if level == Level::Skip {
        if !stores.is_empty() || !identities.is_empty() {
            return Err(PolicyError::SkipWithStoresOrIdentities { statement: name });
        }
    } else {
        if stores.is_empty() || identities.is_empty() {
            return Err(PolicyError::MissingStoresOrIdentities { statement: name });
        }
        for value in stores {
            trust_stores.push(parse_store_ref(&name, value)?);
        }
        if identities.len() > 1 && identities.iter().any(|i| i == "*") {
            return Err(PolicyError::WildcardIdentityMixed { statement: name });
        }
        for text in &identities {
            trusted_identities.push(TrustedIdentity::parse(text).map_err(|source| {
                PolicyError::InvalidIdentity {
                    statement: name.clone(),
                    source,
                }
            })?);
        }
        if let Some((a, b)) = find_overlap(&trusted_identities) {
            return Err(overlap_error(&name, a, b));
        }
    }

    let registry_scopes = raw.registry_scopes.unwrap_or_default();
    if registry_scopes.is_empty() {
        return Err(PolicyError::NoRegistryScopes { statement: name });
    }
    if registry_scopes.len() > 1 && registry_scopes.iter().any(|s| s == "*") {
        return Err(PolicyError::WildcardScopeMixed { statement: name });
    }
    for scope in &registry_scopes {
        if scope != "*" && !is_valid_registry_scope(scope) {
            return Err(PolicyError::InvalidRegistryScope {
                statement: name,
                scope: scope.clone(),
            });
        }
    }

    Ok(TrustPolicyStatement {
        name,
        registry_scopes,
        verification,
        trust_stores,
        trusted_identities,
    })
}

fn parse_store_ref(statement: &str, value: String) -> Result<TrustStoreRef, PolicyError> {
    let Some((store_type, store_name)) = value.split_once(':') else {
        return Err(PolicyError::MalformedTrustStore {
            statement: statement.into(),
            value,
        });
    };
    let Some(store_type) = StoreType::parse(store_type) else {
        return Err(PolicyError::UnknownTrustStoreType {
            statement: statement.into(),
            store_type: store_type.into(),
            value: value.clone(),
        });
    };
    if !is_valid_store_name(store_name) {
        return Err(PolicyError::InvalidTrustStoreName {
            statement: statement.into(),
            name: store_name.into(),
            value: value.clone(),
        });
    }
    Ok(TrustStoreRef {
        store_type,
        name: store_name.to_string(),
    })
}

fn overlap_error(statement: &str, a: &DistinguishedName, b: &DistinguishedName) -> PolicyError {
    PolicyError::OverlappingIdentities {
        statement: statement.into(),
        first: a.as_str().into(),
        second: b.as_str().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_scope_grammar() {
        for ok in [
            "registry.example.com/app",
            "localhost:5000/a/b/c",
            "registry.acme-rockets.io/software/net-monitor",
            "docker.io/library/alpine",
            "r/a__b/c.d/e-f/g---h",
            "10.0.0.1:443/x",
            "local/layout",
        ] {
            assert!(is_valid_registry_scope(ok), "{ok}");
        }
        for bad in [
            "",
            "app",
            "registry.example.com",
            "registry.example.com/",
            "registry.example.com/App",
            "registry.example.com/app:latest",
            "registry.example.com/app@sha256:abc",
            "https://registry.example.com/app",
            "registry.example.com/*",
            "registry.example.com/app/*",
            "registry.example.com/a//b",
            "registry.example.com/-a",
            "registry.example.com/a_",
            "registry.example.com/a___b",
            "registry.example.com/a._b",
            "-r.com/a",
            "r.com:/a",
            "r.com:x1/a",
        ] {
            assert!(!is_valid_registry_scope(bad), "{bad}");
        }
    }

    #[test]
    fn scope_of_reference_strips_the_digest() {
        assert_eq!(
            scope_of_reference("localhost:5000/a/b@sha256:0123").unwrap(),
            "localhost:5000/a/b"
        );
        assert!(scope_of_reference("localhost:5000/a/b:tag").is_err());
        assert!(scope_of_reference("Localhost:5000/A@sha256:0").is_err());
    }
}
