//! Trust policy documents, trust stores and trusted identities against the upstream
//! vectors, hand-written invalid documents (one per validation rule) and certificates made
//! with the openssl CLI.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sign_action::policy::document::{scope_of_reference, LEGACY_POLICY_FILE, OCI_POLICY_FILE};
use sign_action::policy::identity::{matches_leaf_subject, DnError, IdentityError};
use sign_action::policy::level::OverrideError;
use sign_action::policy::{
    Action, Check, Level, PolicyError, StoreType, TrustPolicyDocument, TrustStore, TrustStoreError,
    TrustedIdentity, VerifyTimestamp,
};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vectors");

fn vector(rel: &str) -> PathBuf {
    Path::new(VECTORS).join(rel)
}

fn load_vector(rel: &str) -> Result<TrustPolicyDocument, PolicyError> {
    TrustPolicyDocument::load_file(&vector(rel))
}

// ---- upstream policy vectors (vectors/README §4, §5, §6) ----------------------------

#[test]
fn upstream_valid_policies() {
    let strict = load_vector("trustpolicies/trustpolicy.json").unwrap();
    let s = strict.select("*").unwrap();
    assert_eq!(s.name, "e2e");
    assert_eq!(s.level(), Level::Strict);
    assert_eq!(s.stores_of(StoreType::Ca).collect::<Vec<_>>(), ["e2e"]);
    assert_eq!(s.trusted_identities, [TrustedIdentity::Any]);

    for (file, level) in [
        (
            "trustpolicies/permissive_trustpolicy.json",
            Level::Permissive,
        ),
        ("trustpolicies/audit_trustpolicy.json", Level::Audit),
        ("trustpolicies/skip_trustpolicy.json", Level::Skip),
        (
            "trustpolicies/override_strict_trustpolicy.json",
            Level::Strict,
        ),
        (
            "trustpolicies/valid_trusted_identity_trustpolicy.json",
            Level::Strict,
        ),
    ] {
        let doc = load_vector(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc.statements.len(), 1, "{file}");
        assert_eq!(doc.statements[0].level(), level, "{file}");
    }

    let skip = load_vector("trustpolicies/skip_trustpolicy.json").unwrap();
    let st = &skip.statements[0];
    assert!(st.trust_stores.is_empty() && st.trusted_identities.is_empty());
    for check in Check::ALL {
        assert_eq!(st.action_for(check), Action::Skip);
    }
}

#[test]
fn upstream_override_strict_logs_everything_but_integrity() {
    let doc = load_vector("trustpolicies/override_strict_trustpolicy.json").unwrap();
    let st = &doc.statements[0];
    assert_eq!(st.action_for(Check::Integrity), Action::Enforce);
    for check in [
        Check::Authenticity,
        Check::AuthenticTimestamp,
        Check::Expiry,
        Check::Revocation,
    ] {
        assert_eq!(st.action_for(check), Action::Log, "{check}");
    }
}

#[test]
fn upstream_invalid_policies() {
    let err =
        load_vector("trustpolicies/overlapped_trusted_identity_trustpolicy.json").unwrap_err();
    assert!(
        matches!(&err, PolicyError::OverlappingIdentities { statement, .. } if statement == "e2e"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("has overlapping x509 trustedIdentities"),
        "{err}"
    );

    let err = load_vector(
        "trustpolicies/multi_statements_with_multi_wildcard_registry_scope_trustpolicy.json",
    )
    .unwrap_err();
    assert!(matches!(&err, PolicyError::DuplicateRegistryScope { scope, .. } if scope == "*"));
    let msg = err.to_string();
    assert!(
        msg.contains(r#"registry scope "*" is present in multiple oci trust policy statements"#),
        "{msg}"
    );
    assert!(msg.contains("\"e2e\"") && msg.contains("\"e2e2\""), "{msg}");
}

#[test]
fn derived_policies_are_valid() {
    let mock = load_vector("derived/mock-trustpolicy.oci.json").unwrap();
    let st = mock
        .select_for_reference(
            "registry.acme-rockets.io/software/net-monitor@sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e",
        )
        .unwrap();
    assert_eq!(st.name, "test-statement-name");
    assert_eq!(
        st.stores_of(StoreType::Ca).collect::<Vec<_>>(),
        ["valid-trust-store"]
    );
    assert_eq!(
        st.stores_of(StoreType::SigningAuthority)
            .collect::<Vec<_>>(),
        ["valid-trust-store"]
    );
    assert!(!st.has_store_type(StoreType::Tsa));
    assert!(st.accepts_leaf_subject("CN=Notation Test Root,O=Notary,L=Seattle,ST=WA,C=US"));
    assert!(!st.accepts_leaf_subject("CN=Other,O=Notary,L=Seattle,ST=WA,C=US"));
    // No `*` statement: other repositories have no policy.
    assert!(matches!(
        mock.select("registry.acme-rockets.io/software/other"),
        Err(PolicyError::NoApplicablePolicy { .. })
    ));

    let ts = load_vector("derived/timestamp-trustpolicy.oci.json").unwrap();
    let st = ts.select("anything.example/x").unwrap();
    assert_eq!(st.verify_timestamp(), VerifyTimestamp::Always);
    assert_eq!(
        st.stores_of(StoreType::Tsa).collect::<Vec<_>>(),
        ["test-timestamp"]
    );
    assert!(st.trusts_any_identity());
}

// ---- one invalid document per validation rule (digest §7) ---------------------------

/// A document with one statement whose parts are given as JSON fragments.
fn doc_with(statement_json: &str) -> String {
    format!(r#"{{"version":"1.0","trustPolicies":[{statement_json}]}}"#)
}

fn statement(sv: &str, stores: &str, identities: &str, scopes: &str) -> String {
    let mut parts = vec![r#""name":"p1""#.to_string()];
    if !scopes.is_empty() {
        parts.push(format!(r#""registryScopes":{scopes}"#));
    }
    if !sv.is_empty() {
        parts.push(format!(r#""signatureVerification":{sv}"#));
    }
    if !stores.is_empty() {
        parts.push(format!(r#""trustStores":{stores}"#));
    }
    if !identities.is_empty() {
        parts.push(format!(r#""trustedIdentities":{identities}"#));
    }
    format!("{{{}}}", parts.join(","))
}

const STRICT: &str = r#"{"level":"strict"}"#;
const STORES: &str = r#"["ca:acme"]"#;
const ANY: &str = r#"["*"]"#;
const SCOPES: &str = r#"["registry.example.com/app"]"#;

fn one(sv: &str, stores: &str, identities: &str, scopes: &str) -> String {
    doc_with(&statement(sv, stores, identities, scopes))
}

fn ids(list: &[&str]) -> String {
    serde_json::to_string(list).unwrap()
}

type Expect = fn(&PolicyError) -> bool;

#[test]
fn every_validation_rule_has_its_error() {
    let valid_p2 = r#"{"name":"p2","registryScopes":["registry.example.com/other"],"signatureVerification":{"level":"audit"},"trustStores":["ca:acme"],"trustedIdentities":["*"]}"#;
    let cases: Vec<(&str, String, Expect, &str)> = vec![
        // Document level.
        (
            "missing version",
            r#"{"trustPolicies":[]}"#.into(),
            |e| matches!(e, PolicyError::MissingVersion),
            "no version",
        ),
        (
            "empty version",
            r#"{"version":"","trustPolicies":[]}"#.into(),
            |e| matches!(e, PolicyError::MissingVersion),
            "no version",
        ),
        (
            "unsupported version",
            r#"{"version":"2.0","trustPolicies":[]}"#.into(),
            |e| matches!(e, PolicyError::UnsupportedVersion(v) if v == "2.0"),
            "unsupported version \"2.0\"",
        ),
        (
            "no statements",
            r#"{"version":"1.0","trustPolicies":[]}"#.into(),
            |e| matches!(e, PolicyError::NoStatements),
            "no trust policy statements",
        ),
        (
            "missing trustPolicies",
            r#"{"version":"1.0"}"#.into(),
            |e| matches!(e, PolicyError::NoStatements),
            "no trust policy statements",
        ),
        (
            "malformed JSON",
            r#"{"version":"1.0","#.into(),
            |e| matches!(e, PolicyError::Malformed { .. }),
            "malformed trust policy",
        ),
        (
            "wrong JSON type",
            r#"{"version":"1.0","trustPolicies":{}}"#.into(),
            |e| matches!(e, PolicyError::Malformed { .. }),
            "malformed trust policy",
        ),
        // Names.
        (
            "empty name",
            doc_with(
                &statement(STRICT, STORES, ANY, SCOPES).replace(r#""name":"p1""#, r#""name":"""#),
            ),
            |e| matches!(e, PolicyError::MissingName { index: 1 }),
            "has no name",
        ),
        (
            "missing name",
            doc_with(&statement(STRICT, STORES, ANY, SCOPES).replace(r#""name":"p1","#, "")),
            |e| matches!(e, PolicyError::MissingName { index: 1 }),
            "has no name",
        ),
        (
            "duplicate name",
            doc_with(&format!(
                "{},{}",
                statement(STRICT, STORES, ANY, SCOPES),
                valid_p2.replace("p2", "p1")
            )),
            |e| matches!(e, PolicyError::DuplicateName(n) if n == "p1"),
            "statement names must be unique",
        ),
        // signatureVerification.
        (
            "missing signatureVerification",
            one("", STORES, ANY, SCOPES),
            |e| matches!(e, PolicyError::MissingLevel { .. }),
            "level is missing",
        ),
        (
            "empty level",
            one(r#"{"level":""}"#, STORES, ANY, SCOPES),
            |e| matches!(e, PolicyError::MissingLevel { .. }),
            "level is missing",
        ),
        (
            "invalid level",
            one(r#"{"level":"Strict"}"#, STORES, ANY, SCOPES),
            |e| matches!(e, PolicyError::InvalidLevel { level, .. } if level == "Strict"),
            "invalid signatureVerification level",
        ),
        (
            "integrity override",
            one(
                r#"{"level":"strict","override":{"integrity":"log"}}"#,
                STORES,
                ANY,
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidOverride {
                        source: OverrideError::Integrity,
                        ..
                    }
                )
            },
            "integrity verification cannot be overridden",
        ),
        (
            "skip override of expiry",
            one(
                r#"{"level":"strict","override":{"expiry":"skip"}}"#,
                STORES,
                ANY,
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidOverride {
                        source: OverrideError::SkipNotAllowed(Check::Expiry),
                        ..
                    }
                )
            },
            "cannot be skipped",
        ),
        (
            "skip override of authenticity",
            one(
                r#"{"level":"audit","override":{"authenticity":"skip"}}"#,
                STORES,
                ANY,
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidOverride {
                        source: OverrideError::SkipNotAllowed(Check::Authenticity),
                        ..
                    }
                )
            },
            "cannot be skipped",
        ),
        (
            "unknown override key",
            one(
                r#"{"level":"strict","override":{"signingTime":"log"}}"#,
                STORES,
                ANY,
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidOverride {
                        source: OverrideError::UnknownCheck(_),
                        ..
                    }
                )
            },
            "is not a verification check",
        ),
        (
            "unknown override value",
            one(
                r#"{"level":"strict","override":{"expiry":"warn"}}"#,
                STORES,
                ANY,
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidOverride {
                        source: OverrideError::UnknownAction { .. },
                        ..
                    }
                )
            },
            "is not an action",
        ),
        (
            "override on skip",
            one(
                r#"{"level":"skip","override":{"revocation":"log"}}"#,
                "",
                "",
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidOverride {
                        source: OverrideError::OverrideOnSkip,
                        ..
                    }
                )
            },
            "cannot be customised",
        ),
        (
            "repeated override key",
            one(
                r#"{"level":"strict","override":{"expiry":"log","expiry":"enforce"}}"#,
                STORES,
                ANY,
                SCOPES,
            ),
            |e| matches!(e, PolicyError::Malformed { reason, .. } if reason.contains("more than once")),
            "appears more than once",
        ),
        (
            "invalid verifyTimestamp",
            one(
                r#"{"level":"strict","verifyTimestamp":"never"}"#,
                STORES,
                ANY,
                SCOPES,
            ),
            |e| matches!(e, PolicyError::InvalidVerifyTimestamp { value, .. } if value == "never"),
            "invalid verifyTimestamp",
        ),
        // skip vs stores/identities.
        (
            "skip with stores",
            one(r#"{"level":"skip"}"#, STORES, "", SCOPES),
            |e| matches!(e, PolicyError::SkipWithStoresOrIdentities { .. }),
            "set to skip signature verification",
        ),
        (
            "skip with identities",
            one(r#"{"level":"skip"}"#, "", ANY, SCOPES),
            |e| matches!(e, PolicyError::SkipWithStoresOrIdentities { .. }),
            "set to skip signature verification",
        ),
        (
            "no trust stores",
            one(STRICT, "", ANY, SCOPES),
            |e| matches!(e, PolicyError::MissingStoresOrIdentities { .. }),
            "missing trust stores or trusted identities",
        ),
        (
            "empty trust stores",
            one(STRICT, "[]", ANY, SCOPES),
            |e| matches!(e, PolicyError::MissingStoresOrIdentities { .. }),
            "missing trust stores or trusted identities",
        ),
        (
            "no identities",
            one(STRICT, STORES, "", SCOPES),
            |e| matches!(e, PolicyError::MissingStoresOrIdentities { .. }),
            "missing trust stores or trusted identities",
        ),
        // Trust store entries.
        (
            "store without colon",
            one(STRICT, r#"["acme"]"#, ANY, SCOPES),
            |e| matches!(e, PolicyError::MalformedTrustStore { value, .. } if value == "acme"),
            "<type>:<name>",
        ),
        (
            "unknown store type",
            one(STRICT, r#"["x509:acme"]"#, ANY, SCOPES),
            |e| matches!(e, PolicyError::UnknownTrustStoreType { store_type, .. } if store_type == "x509"),
            "unsupported trust store type",
        ),
        (
            "bad store name",
            one(STRICT, r#"["ca:a/b"]"#, ANY, SCOPES),
            |e| matches!(e, PolicyError::InvalidTrustStoreName { name, .. } if name == "a/b"),
            "[a-zA-Z0-9_.-]+",
        ),
        (
            "empty store name",
            one(STRICT, r#"["tsa:"]"#, ANY, SCOPES),
            |e| matches!(e, PolicyError::InvalidTrustStoreName { .. }),
            "invalid trust store name",
        ),
        // Trusted identities.
        (
            "empty identity",
            one(STRICT, STORES, r#"[""]"#, SCOPES),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::Empty,
                        ..
                    }
                )
            },
            "is empty",
        ),
        (
            "identity without colon",
            one(STRICT, STORES, &ids(&["CN=a,O=b,ST=c,C=d"]), SCOPES),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::MissingSeparator(_),
                        ..
                    }
                )
            },
            "no ':' separator",
        ),
        (
            "empty x509.subject",
            one(STRICT, STORES, &ids(&["x509.subject:"]), SCOPES),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::EmptyValue(_),
                        ..
                    }
                )
            },
            "empty x509.subject value",
        ),
        (
            "wildcard mixed",
            one(
                STRICT,
                STORES,
                &ids(&["*", "x509.subject:C=US,ST=WA,O=a"]),
                SCOPES,
            ),
            |e| matches!(e, PolicyError::WildcardIdentityMixed { .. }),
            "cannot be used together with other identities",
        ),
        (
            "unparsable DN",
            one(
                STRICT,
                STORES,
                &ids(&["x509.subject:C=US,ST=WA,O=a\"b"]),
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::InvalidDn {
                            source: DnError::Syntax { .. },
                            ..
                        },
                        ..
                    }
                )
            },
            "not valid RFC 4514",
        ),
        (
            "multi-valued RDN",
            one(
                STRICT,
                STORES,
                &ids(&["x509.subject:C=US+ST=WA,O=a"]),
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::InvalidDn {
                            source: DnError::MultiValued(_),
                            ..
                        },
                        ..
                    }
                )
            },
            "multi-valued RDN",
        ),
        (
            "duplicate attribute",
            one(
                STRICT,
                STORES,
                &ids(&["x509.subject:C=US,ST=WA,O=a,O=b"]),
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::InvalidDn {
                            source: DnError::Duplicate { .. },
                            ..
                        },
                        ..
                    }
                )
            },
            "more than once",
        ),
        (
            "hex value",
            one(
                STRICT,
                STORES,
                &ids(&["x509.subject:C=US,ST=WA,O=#0c0161"]),
                SCOPES,
            ),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::InvalidDn {
                            source: DnError::HexValue(_),
                            ..
                        },
                        ..
                    }
                )
            },
            "=#",
        ),
        (
            "missing C",
            one(STRICT, STORES, &ids(&["x509.subject:ST=WA,O=a"]), SCOPES),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::InvalidDn {
                            source: DnError::MissingMandatory { attribute: "C", .. },
                            ..
                        },
                        ..
                    }
                )
            },
            "mandatory attribute C",
        ),
        (
            "missing ST",
            one(STRICT, STORES, &ids(&["x509.subject:C=US,O=a"]), SCOPES),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::InvalidDn {
                            source: DnError::MissingMandatory {
                                attribute: "ST",
                                ..
                            },
                            ..
                        },
                        ..
                    }
                )
            },
            "mandatory attribute ST",
        ),
        (
            "missing O",
            one(STRICT, STORES, &ids(&["x509.subject:C=US,ST=WA"]), SCOPES),
            |e| {
                matches!(
                    e,
                    PolicyError::InvalidIdentity {
                        source: IdentityError::InvalidDn {
                            source: DnError::MissingMandatory { attribute: "O", .. },
                            ..
                        },
                        ..
                    }
                )
            },
            "mandatory attribute O",
        ),
        (
            "overlapping identities",
            one(
                STRICT,
                STORES,
                &ids(&[
                    "x509.subject:C=US,ST=WA,O=a",
                    "x509.subject:C=US,ST=WA,O=a,CN=b",
                ]),
                SCOPES,
            ),
            |e| matches!(e, PolicyError::OverlappingIdentities { .. }),
            "has overlapping x509 trustedIdentities",
        ),
        // Registry scopes.
        (
            "missing registryScopes",
            one(STRICT, STORES, ANY, ""),
            |e| matches!(e, PolicyError::NoRegistryScopes { .. }),
            "zero registry scopes",
        ),
        (
            "empty registryScopes",
            one(STRICT, STORES, ANY, "[]"),
            |e| matches!(e, PolicyError::NoRegistryScopes { .. }),
            "zero registry scopes",
        ),
        (
            "wildcard scope mixed",
            one(STRICT, STORES, ANY, r#"["*","registry.example.com/app"]"#),
            |e| matches!(e, PolicyError::WildcardScopeMixed { .. }),
            "cannot be used together with other scopes",
        ),
        (
            "scope with wildcard",
            one(STRICT, STORES, ANY, r#"["registry.example.com/*"]"#),
            |e| matches!(e, PolicyError::InvalidRegistryScope { .. }),
            "is not valid",
        ),
        (
            "scope with scheme",
            one(
                STRICT,
                STORES,
                ANY,
                r#"["https://registry.example.com/app"]"#,
            ),
            |e| matches!(e, PolicyError::InvalidRegistryScope { .. }),
            "is not valid",
        ),
        (
            "scope with tag",
            one(STRICT, STORES, ANY, r#"["registry.example.com/app:v1"]"#),
            |e| matches!(e, PolicyError::InvalidRegistryScope { .. }),
            "is not valid",
        ),
        (
            "scope with digest",
            one(
                STRICT,
                STORES,
                ANY,
                r#"["registry.example.com/app@sha256:00"]"#,
            ),
            |e| matches!(e, PolicyError::InvalidRegistryScope { .. }),
            "is not valid",
        ),
        (
            "scope with upper-case repository",
            one(STRICT, STORES, ANY, r#"["registry.example.com/App"]"#),
            |e| matches!(e, PolicyError::InvalidRegistryScope { .. }),
            "is not valid",
        ),
        (
            "scope without repository",
            one(STRICT, STORES, ANY, r#"["registry.example.com"]"#),
            |e| matches!(e, PolicyError::InvalidRegistryScope { .. }),
            "is not valid",
        ),
        (
            "same scope in two statements",
            doc_with(&format!(
                "{},{}",
                statement(STRICT, STORES, ANY, SCOPES),
                valid_p2.replace("registry.example.com/other", "registry.example.com/app")
            )),
            |e| matches!(e, PolicyError::DuplicateRegistryScope { statement, other, .. } if statement == "p2" && other == "p1"),
            "present in multiple oci trust policy statements",
        ),
        (
            "wildcard scope in two statements",
            doc_with(&format!(
                "{},{}",
                statement(STRICT, STORES, ANY, r#"["*"]"#),
                valid_p2.replace("registry.example.com/other", "*")
            )),
            |e| matches!(e, PolicyError::DuplicateRegistryScope { scope, .. } if scope == "*"),
            "present in multiple oci trust policy statements",
        ),
        (
            "scope repeated in one statement",
            one(
                STRICT,
                STORES,
                ANY,
                r#"["registry.example.com/app","registry.example.com/app"]"#,
            ),
            |e| matches!(e, PolicyError::RepeatedRegistryScope { .. }),
            "listed more than once",
        ),
    ];
    let mut failures = Vec::new();
    for (what, json, expect, fragment) in &cases {
        match TrustPolicyDocument::parse_str(json) {
            Ok(_) => failures.push(format!("{what}: accepted\n  {json}")),
            Err(e) => {
                let msg = e.to_string();
                if !expect(&e) {
                    failures.push(format!("{what}: wrong error {e:?}"));
                } else if !msg.contains(fragment) {
                    failures.push(format!("{what}: message lacks {fragment:?}: {msg}"));
                }
                let names_statement = matches!(
                    e,
                    PolicyError::MissingVersion
                        | PolicyError::UnsupportedVersion(_)
                        | PolicyError::NoStatements
                        | PolicyError::Malformed { .. }
                        | PolicyError::MissingName { .. }
                ) || msg.contains("trust policy statement \"p1\"")
                    || msg.contains("trust policy statement \"p2\"");
                if !names_statement {
                    failures.push(format!(
                        "{what}: message does not name the statement: {msg}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 50);
}

#[test]
fn valid_variants_are_accepted() {
    for (what, json) in [
        (
            "other identity prefix",
            one(
                STRICT,
                STORES,
                &ids(&["signingAuthority:arn:aws:signer:us-west-2:1:/signing-profiles/p"]),
                SCOPES,
            ),
        ),
        (
            "revocation skip override",
            one(
                r#"{"level":"strict","override":{"revocation":"skip"}}"#,
                STORES,
                ANY,
                SCOPES,
            ),
        ),
        (
            "afterCertExpiry",
            one(
                r#"{"level":"permissive","verifyTimestamp":"afterCertExpiry"}"#,
                r#"["ca:a","tsa:t","signingAuthority:s"]"#,
                ANY,
                SCOPES,
            ),
        ),
        (
            "unknown fields ignored",
            doc_with(
                &statement(STRICT, STORES, ANY, SCOPES)
                    .replace(r#""name":"p1""#, r#""name":"p1","comment":"x""#),
            ),
        ),
        (
            "empty override",
            one(r#"{"level":"skip","override":{}}"#, "", "", SCOPES),
        ),
        (
            "S alias and spaces",
            one(
                STRICT,
                STORES,
                &ids(&["x509.subject: C=US, S=WA, O=acme, CN=builder"]),
                SCOPES,
            ),
        ),
        (
            "distinct identities",
            one(
                STRICT,
                STORES,
                &ids(&[
                    "x509.subject:C=US,ST=WA,O=a,CN=x",
                    "x509.subject:C=US,ST=WA,O=a,CN=y",
                ]),
                SCOPES,
            ),
        ),
        (
            "port and nested path",
            one(
                STRICT,
                STORES,
                ANY,
                r#"["localhost:5000/a/b-c/d_e","localhost:5000/x"]"#,
            ),
        ),
    ] {
        let doc =
            TrustPolicyDocument::parse_str(&json).unwrap_or_else(|e| panic!("{what}: {e}\n{json}"));
        assert_eq!(doc.statements.len(), 1, "{what}");
    }
    let doc = TrustPolicyDocument::parse_str(&one(
        r#"{"level":"permissive","verifyTimestamp":"afterCertExpiry","override":{"authenticity":"log","revocation":"skip"}}"#,
        STORES,
        ANY,
        SCOPES,
    ))
    .unwrap();
    let st = &doc.statements[0];
    assert_eq!(st.verify_timestamp(), VerifyTimestamp::AfterCertExpiry);
    assert_eq!(st.action_for(Check::Authenticity), Action::Log);
    assert_eq!(st.action_for(Check::Revocation), Action::Skip);
    assert_eq!(st.action_for(Check::Expiry), Action::Log);
    assert_eq!(st.action_for(Check::Integrity), Action::Enforce);
}

// ---- selection ----------------------------------------------------------------------

#[test]
fn selection_prefers_exact_scope_over_wildcard() {
    let doc = TrustPolicyDocument::parse_str(
        r#"{"version":"1.0","trustPolicies":[
          {"name":"wild","registryScopes":["*"],"signatureVerification":{"level":"audit"},"trustStores":["ca:a"],"trustedIdentities":["*"]},
          {"name":"exact","registryScopes":["registry.example.com/app","localhost:5000/b"],"signatureVerification":{"level":"strict"},"trustStores":["ca:a"],"trustedIdentities":["*"]}
        ]}"#,
    )
    .unwrap();
    assert_eq!(
        doc.select("registry.example.com/app").unwrap().name,
        "exact"
    );
    assert_eq!(doc.select("localhost:5000/b").unwrap().name, "exact");
    // No prefix matching: a sub-repository falls to `*`.
    assert_eq!(
        doc.select("registry.example.com/app/sub").unwrap().name,
        "wild"
    );
    assert_eq!(doc.select("registry.example.com/ap").unwrap().name, "wild");
    assert_eq!(
        doc.select_for_reference("registry.example.com/app@sha256:abcd")
            .unwrap()
            .name,
        "exact"
    );
    assert!(matches!(
        doc.select_for_reference("registry.example.com/app:latest"),
        Err(PolicyError::InvalidReference(_))
    ));
    assert_eq!(
        scope_of_reference("a.io/b/c@sha256:00").unwrap(),
        "a.io/b/c"
    );

    let exact_only = TrustPolicyDocument::parse_str(&one(STRICT, STORES, ANY, SCOPES)).unwrap();
    let err = exact_only.select("registry.example.com/other").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no applicable trust policy for registry.example.com/other"),
        "{err}"
    );
    // No normalisation: docker.io/library/x is not docker.io/x.
    let docker = TrustPolicyDocument::parse_str(&one(
        STRICT,
        STORES,
        ANY,
        r#"["docker.io/library/alpine"]"#,
    ))
    .unwrap();
    assert!(docker.select("docker.io/alpine").is_err());
    assert!(docker.select("docker.io/library/alpine").is_ok());
}

// ---- loading from a configuration directory -----------------------------------------

fn policy_json(name: &str) -> String {
    doc_with(&statement(STRICT, STORES, ANY, SCOPES).replace("p1", name))
}

#[test]
fn config_dir_prefers_oci_policy_then_legacy_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = TrustPolicyDocument::load_from_config_dir(dir.path()).unwrap_err();
    assert!(matches!(err, PolicyError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains(OCI_POLICY_FILE) && err.to_string().contains(LEGACY_POLICY_FILE)
    );

    fs::write(dir.path().join(LEGACY_POLICY_FILE), policy_json("legacy")).unwrap();
    let doc = TrustPolicyDocument::load_from_config_dir(dir.path()).unwrap();
    assert_eq!(doc.statements[0].name, "legacy");

    fs::write(dir.path().join(OCI_POLICY_FILE), policy_json("oci")).unwrap();
    let doc = TrustPolicyDocument::load_from_config_dir(dir.path()).unwrap();
    assert_eq!(doc.statements[0].name, "oci");

    // An invalid preferred file is an error, not a reason to fall back.
    fs::write(dir.path().join(OCI_POLICY_FILE), "{}").unwrap();
    assert!(matches!(
        TrustPolicyDocument::load_from_config_dir(dir.path()),
        Err(PolicyError::MissingVersion)
    ));
}

#[cfg(unix)]
#[test]
fn symlinked_or_non_file_policies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    fs::write(&real, policy_json("real")).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join(OCI_POLICY_FILE)).unwrap();
    let err = TrustPolicyDocument::load_from_config_dir(dir.path()).unwrap_err();
    assert!(matches!(err, PolicyError::NotRegularFile(_)), "{err}");
    assert!(err.to_string().contains("symlinks"), "{err}");
    assert!(matches!(
        TrustPolicyDocument::load_file(&dir.path().join(OCI_POLICY_FILE)),
        Err(PolicyError::NotRegularFile(_))
    ));
    // The target itself loads.
    assert!(TrustPolicyDocument::load_file(&real).is_ok());

    let sub = tempfile::tempdir().unwrap();
    fs::create_dir(sub.path().join(OCI_POLICY_FILE)).unwrap();
    assert!(matches!(
        TrustPolicyDocument::load_from_config_dir(sub.path()),
        Err(PolicyError::NotRegularFile(_))
    ));
    assert!(matches!(
        TrustPolicyDocument::load_file(&sub.path().join("absent.json")),
        Err(PolicyError::FileNotFound(_))
    ));
}

#[test]
fn oversized_policy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    let padding = " ".repeat(5 * 1024 * 1024);
    fs::write(&path, format!("{}{padding}", policy_json("big"))).unwrap();
    assert!(matches!(
        TrustPolicyDocument::load_file(&path),
        Err(PolicyError::TooLarge(_))
    ));
}

// ---- trusted identities against real certificates -----------------------------------

/// The subject as openssl prints it in RFC 2253 order, which for these standard attributes
/// is the Go `pkix.Name.String()` text notation matches against.
fn openssl_subject(cert: &Path, inform: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-inform", inform, "-in",
        ])
        .arg(cert)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .strip_prefix("subject=")
        .unwrap()
        .to_string()
}

#[test]
fn e2e_identity_matches_e2e_certificate() {
    let subject = openssl_subject(&vector("e2e-certs/e2e.crt"), "PEM");
    assert_eq!(subject, "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US");
    let doc = load_vector("trustpolicies/valid_trusted_identity_trustpolicy.json").unwrap();
    let st = &doc.statements[0];
    assert!(st.accepts_leaf_subject(&subject));

    // The expired e2e certificate has another subject (C/ST/O only): no match, but an
    // identity written for it matches.
    let expired = openssl_subject(&vector("e2e-certs/expired_e2e.crt"), "PEM");
    assert!(!st.accepts_leaf_subject(&expired));
    let id =
        TrustedIdentity::parse("x509.subject: C=AU, ST=Some-State, O=Internet Widgits Pty Ltd")
            .unwrap();
    assert!(matches_leaf_subject(&id, &expired));

    // A leaf lacking O (GlobalSign root has OU, O, CN but no C/ST) matches only "*".
    let gs = openssl_subject(
        &vector("envelopes-timestamp/truststore/x509/tsa/test-timestamp/globalsignRoot.cer"),
        "DER",
    );
    assert!(!matches_leaf_subject(
        &TrustedIdentity::parse("x509.subject: O=GlobalSign,C=US,ST=x").unwrap(),
        &gs
    ));
    assert!(matches_leaf_subject(&TrustedIdentity::Any, &gs));
}

// ---- trust stores ----------------------------------------------------------------------

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificates made with the openssl CLI in `dir`:
/// `root.crt` (self-signed CA), `inter.crt` (CA issued by root), `leaf.crt` (non-CA issued
/// by inter), `selfleaf.crt` (self-signed EC P-384 leaf), `pssleaf.crt` (self-signed
/// RSA-PSS leaf), `nosign-ca.crt` (self-signed CA without keyCertSign), `tampered.crt`
/// (selfleaf with a corrupted signature), all PEM, plus `.der` copies.
fn make_certs(dir: &Path) {
    fs::write(
        dir.join("min.cnf"),
        "[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=x\n",
    )
    .unwrap();
    fs::write(
        dir.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    fs::write(dir.join("leaf.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let req_x509 = |key: &str, out: &str, subj: &str, exts: &[&str], extra: &[&str]| {
        let mut a = vec![
            "req", "-x509", "-config", "min.cnf", "-days", "30", "-keyout", key, "-out", out,
            "-subj", subj,
        ];
        a.extend_from_slice(extra);
        for e in exts {
            a.extend_from_slice(&["-addext", e]);
        }
        openssl(dir, &a);
    };
    req_x509(
        "root.key",
        "root.crt",
        "/C=US/ST=WA/O=Test/CN=Test Root",
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        &ec,
    );
    for (name, ext, issuer) in [("inter", "ca.ext", "root"), ("leaf", "leaf.ext", "inter")] {
        let mut a = vec!["req", "-new", "-config", "min.cnf", "-keyout"];
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subj = format!("/C=US/ST=WA/O=Test/CN=Test {name}");
        a.extend_from_slice(&[&key, "-out", &csr, "-subj", &subj]);
        a.extend_from_slice(&ec);
        openssl(dir, &a);
        let (ca, cakey, out) = (
            format!("{issuer}.crt"),
            format!("{issuer}.key"),
            format!("{name}.crt"),
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &cakey,
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                ext,
                "-out",
                &out,
            ],
        );
    }
    req_x509(
        "selfleaf.key",
        "selfleaf.crt",
        "/C=US/ST=WA/O=Test/CN=Self Leaf",
        &["keyUsage=critical,digitalSignature"],
        &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
        ],
    );
    req_x509(
        "pssleaf.key",
        "pssleaf.crt",
        "/C=US/ST=WA/O=Test/CN=PSS Leaf",
        &["keyUsage=critical,digitalSignature"],
        &[
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:32",
            "-sha256",
        ],
    );
    req_x509(
        "nosign.key",
        "nosign-ca.crt",
        "/C=US/ST=WA/O=Test/CN=No Sign CA",
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,digitalSignature",
        ],
        &ec,
    );
    // A version 1 self-signed root (no extensions at all).
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-config",
            "min.cnf",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "v1.key",
            "-out",
            "v1.csr",
            "-subj",
            "/C=US/ST=WA/O=Test/CN=V1 Root",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "v1.csr",
            "-signkey",
            "v1.key",
            "-days",
            "30",
            "-out",
            "v1root.crt",
        ],
    );
    for name in [
        "root",
        "inter",
        "leaf",
        "selfleaf",
        "pssleaf",
        "nosign-ca",
        "v1root",
    ] {
        openssl(
            dir,
            &[
                "x509",
                "-in",
                &format!("{name}.crt"),
                "-outform",
                "DER",
                "-out",
                &format!("{name}.der"),
            ],
        );
    }
    // Flip a byte inside the signature value (the last bytes of the DER).
    let mut der = fs::read(dir.join("selfleaf.der")).unwrap();
    let n = der.len();
    der[n - 5] ^= 0x55;
    fs::write(dir.join("tampered.der"), der).unwrap();
}

/// A notation configuration directory `<tmp>/config` with `truststore/x509/`.
struct Fixture {
    _tmp: tempfile::TempDir,
    certs: PathBuf,
    config: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let certs = tmp.path().join("certs");
        fs::create_dir(&certs).unwrap();
        make_certs(&certs);
        let config = tmp.path().join("config");
        fs::create_dir_all(config.join("truststore/x509")).unwrap();
        Fixture {
            _tmp: tmp,
            certs,
            config,
        }
    }

    fn store_dir(&self, t: &str, name: &str) -> PathBuf {
        let d = self.config.join("truststore/x509").join(t).join(name);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn cert(&self, name: &str) -> Vec<u8> {
        fs::read(self.certs.join(name)).unwrap()
    }

    fn store(&self) -> TrustStore {
        TrustStore::open(&self.config).unwrap()
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn upstream_trust_stores_load_in_every_accepted_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("notation");
    copy_tree(
        &vector("envelopes-mock/truststore"),
        &config.join("truststore"),
    );
    copy_tree(
        &vector("envelopes-timestamp/truststore"),
        &config.join("truststore"),
    );

    for root in [
        config.clone(),
        config.join("truststore"),
        config.join("truststore/x509"),
    ] {
        let store = TrustStore::open(&root).unwrap();
        assert_eq!(
            store.x509_dir(),
            config.join("truststore/x509"),
            "{}",
            root.display()
        );
        let ca = store
            .certificates(StoreType::Ca, "valid-trust-store")
            .unwrap();
        // NotationTestRoot.pem and TestTimestamp.crt, in file name order.
        assert_eq!(ca.len(), 2);
        let mock_root = fs::read(vector(
            "envelopes-mock/truststore/x509/ca/valid-trust-store/NotationTestRoot.pem",
        ))
        .unwrap();
        let mock_root_der = pem_to_der(&mock_root);
        assert_eq!(ca[0].der(), mock_root_der.as_slice());
        let sa = store
            .certificates(StoreType::SigningAuthority, "valid-trust-store")
            .unwrap();
        assert_eq!(sa.len(), 1);
        // DER file, self-signed CA root: valid in a tsa store.
        let tsa = store
            .certificates(StoreType::Tsa, "test-timestamp")
            .unwrap();
        assert_eq!(
            tsa[0].der(),
            fs::read(vector(
                "envelopes-timestamp/truststore/x509/tsa/test-timestamp/globalsignRoot.cer"
            ))
            .unwrap()
        );
    }

    // e2e set-up: ca/e2e holding the self-signed e2e leaf.
    let e2e = config.join("truststore/x509/ca/e2e");
    fs::create_dir_all(&e2e).unwrap();
    fs::copy(vector("e2e-certs/e2e.crt"), e2e.join("e2e.crt")).unwrap();
    let certs = TrustStore::open(&config)
        .unwrap()
        .certificates(StoreType::Ca, "e2e")
        .unwrap();
    assert_eq!(certs.len(), 1);
}

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

#[test]
fn pem_with_several_certificates_and_any_extension() {
    let f = Fixture::new();
    let d = f.store_dir("ca", "multi");
    let mut bundle = f.cert("root.crt");
    bundle.extend(b"some text between blocks\n");
    bundle.extend(f.cert("inter.crt"));
    fs::write(d.join("a-bundle.pem"), bundle).unwrap();
    fs::write(d.join("b-selfsigned.txt"), f.cert("selfleaf.crt")).unwrap();
    fs::write(d.join("c-noextension"), f.cert("pssleaf.crt")).unwrap();
    let certs = f.store().certificates(StoreType::Ca, "multi").unwrap();
    assert_eq!(certs.len(), 4);
    assert_eq!(certs[0].der(), f.cert("root.der").as_slice());
    assert_eq!(certs[1].der(), f.cert("inter.der").as_slice());
    assert_eq!(certs[2].der(), f.cert("selfleaf.der").as_slice());
    assert_eq!(certs[3].der(), f.cert("pssleaf.der").as_slice());
}

#[test]
fn der_single_and_concatenated() {
    let f = Fixture::new();
    let d = f.store_dir("signingAuthority", "der");
    let mut concatenated = f.cert("root.der");
    concatenated.extend(f.cert("inter.der"));
    fs::write(d.join("chain.der"), concatenated).unwrap();
    fs::write(d.join("self.cer"), f.cert("selfleaf.der")).unwrap();
    let certs = f
        .store()
        .certificates(StoreType::SigningAuthority, "der")
        .unwrap();
    assert_eq!(certs.len(), 3);
    assert_eq!(certs[1].der(), f.cert("inter.der").as_slice());

    // Trailing garbage after a DER certificate is an error, not ignored.
    let mut bad = f.cert("root.der");
    bad.extend(b"\x30\x03\x02\x01");
    fs::write(d.join("zz-garbage.der"), bad).unwrap();
    let err = f
        .store()
        .certificates(StoreType::SigningAuthority, "der")
        .unwrap_err();
    assert!(
        matches!(&err, TrustStoreError::BadCertificateFile { file, .. } if file == "zz-garbage.der"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn symlinks_are_refused() {
    let f = Fixture::new();
    let d = f.store_dir("ca", "linked-file");
    fs::write(f.certs.join("target.crt"), f.cert("root.crt")).unwrap();
    std::os::unix::fs::symlink(f.certs.join("target.crt"), d.join("root.crt")).unwrap();
    let err = f
        .store()
        .certificates(StoreType::Ca, "linked-file")
        .unwrap_err();
    assert!(
        matches!(err, TrustStoreError::NotARegularFile { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("symlinks"));

    let real = f.store_dir("ca", "real");
    fs::write(real.join("root.crt"), f.cert("root.crt")).unwrap();
    std::os::unix::fs::symlink(&real, f.config.join("truststore/x509/ca/linked-dir")).unwrap();
    let err = f
        .store()
        .certificates(StoreType::Ca, "linked-dir")
        .unwrap_err();
    assert!(
        matches!(err, TrustStoreError::NotADirectory { .. }),
        "{err}"
    );
    assert!(f.store().certificates(StoreType::Ca, "real").is_ok());
}

#[test]
fn sub_directories_are_refused() {
    let f = Fixture::new();
    let d = f.store_dir("ca", "nested");
    fs::write(d.join("root.crt"), f.cert("root.crt")).unwrap();
    fs::create_dir(d.join("more")).unwrap();
    let err = f.store().certificates(StoreType::Ca, "nested").unwrap_err();
    assert!(
        matches!(&err, TrustStoreError::NotARegularFile { file, .. } if file == "more"),
        "{err}"
    );
}

#[test]
fn empty_missing_and_badly_named_stores() {
    let f = Fixture::new();
    f.store_dir("ca", "empty");
    let err = f.store().certificates(StoreType::Ca, "empty").unwrap_err();
    assert!(matches!(err, TrustStoreError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("no x509 certificates were found"));

    let d = f.store_dir("ca", "empty-file");
    fs::write(d.join("nothing.pem"), b"").unwrap();
    let err = f
        .store()
        .certificates(StoreType::Ca, "empty-file")
        .unwrap_err();
    assert!(
        matches!(&err, TrustStoreError::BadCertificateFile { reason, .. } if reason.contains("no certificate found")),
        "{err}"
    );

    let err = f
        .store()
        .certificates(StoreType::Tsa, "absent")
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrustStoreError::NotFound {
                store_type: StoreType::Tsa,
                ..
            }
        ),
        "{err}"
    );

    for bad in ["../ca/empty", "", "a b", ".."] {
        assert!(
            matches!(
                f.store().certificates(StoreType::Ca, bad),
                Err(TrustStoreError::InvalidName(_))
            ),
            "{bad}"
        );
    }

    let missing = f.config.join("nope");
    assert!(matches!(
        TrustStore::open(&missing),
        Err(TrustStoreError::RootNotFound(_))
    ));
}

#[test]
fn non_certificate_pem_blocks_are_refused_without_echoing_them() {
    let f = Fixture::new();
    let d = f.store_dir("ca", "with-key");
    let mut data = f.cert("root.crt");
    let key = f.cert("root.key");
    data.extend(&key);
    fs::write(d.join("root-and-key.pem"), data).unwrap();
    let err = f
        .store()
        .certificates(StoreType::Ca, "with-key")
        .unwrap_err();
    assert!(
        matches!(err, TrustStoreError::BadCertificateFile { .. }),
        "{err}"
    );
    let msg = format!("{err} {err:?}");
    let key_text = String::from_utf8(key).unwrap();
    let key_line = key_text.lines().nth(1).unwrap();
    assert!(!msg.contains(key_line), "error leaks key material: {msg}");
}

#[test]
fn ca_and_signing_authority_stores_need_ca_or_self_signed_certificates() {
    let f = Fixture::new();
    for t in ["ca", "signingAuthority"] {
        let st = StoreType::parse(t).unwrap();
        let d = f.store_dir(t, "leaf");
        fs::write(d.join("root.crt"), f.cert("root.crt")).unwrap();
        fs::write(d.join("leaf.crt"), f.cert("leaf.crt")).unwrap();
        let err = f.store().certificates(st, "leaf").unwrap_err();
        assert!(
            matches!(&err, TrustStoreError::InvalidCertificate { file, .. } if file == "leaf.crt"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("is not a CA certificate or self-signed"),
            "{err}"
        );

        // Intermediates (CA, not self-signed) are allowed, as are self-signed leaves.
        let ok = f.store_dir(t, "ok");
        fs::write(ok.join("inter.crt"), f.cert("inter.crt")).unwrap();
        fs::write(ok.join("selfleaf.crt"), f.cert("selfleaf.crt")).unwrap();
        fs::write(ok.join("pssleaf.crt"), f.cert("pssleaf.crt")).unwrap();
        assert_eq!(f.store().certificates(st, "ok").unwrap().len(), 3);

        // A "self-signed" leaf whose signature does not verify is neither.
        let bad = f.store_dir(t, "tampered");
        fs::write(bad.join("tampered.der"), f.cert("tampered.der")).unwrap();
        let err = f.store().certificates(st, "tampered").unwrap_err();
        assert!(
            matches!(err, TrustStoreError::InvalidCertificate { .. }),
            "{err}"
        );
    }
}

#[test]
fn tsa_stores_need_self_signed_ca_roots() {
    let f = Fixture::new();
    let ok = f.store_dir("tsa", "root");
    fs::write(ok.join("root.der"), f.cert("root.der")).unwrap();
    assert_eq!(
        f.store()
            .certificates(StoreType::Tsa, "root")
            .unwrap()
            .len(),
        1
    );
    // A v1 self-signed root predates basicConstraints and is accepted, as by notation.
    let v1 = f.store_dir("tsa", "v1");
    fs::write(v1.join("v1root.crt"), f.cert("v1root.crt")).unwrap();
    assert_eq!(
        f.store().certificates(StoreType::Tsa, "v1").unwrap().len(),
        1
    );

    for (file, fragment) in [
        ("inter.crt", "not self-issued and self-signed"),
        ("selfleaf.crt", "basicConstraints cA is not set"),
        ("nosign-ca.crt", "keyCertSign"),
        ("leaf.crt", "is not a CA certificate or self-signed"),
    ] {
        let name = format!("bad-{}", file.replace('.', "-"));
        let d = f.store_dir("tsa", &name);
        fs::write(d.join(file), f.cert(file)).unwrap();
        let err = f.store().certificates(StoreType::Tsa, &name).unwrap_err();
        assert!(
            matches!(err, TrustStoreError::InvalidCertificate { .. }),
            "{file}: {err}"
        );
        assert!(err.to_string().contains(fragment), "{file}: {err}");
    }
}

#[test]
fn default_config_dir_follows_xdg_then_home() {
    // The only test touching these variables.
    let saved = (
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    );
    std::env::set_var("XDG_CONFIG_HOME", "/xdg");
    std::env::set_var("HOME", "/home/u");
    assert_eq!(
        sign_action::policy::default_config_dir(),
        Some(PathBuf::from("/xdg/notation"))
    );
    std::env::set_var("XDG_CONFIG_HOME", "relative");
    assert_eq!(
        sign_action::policy::default_config_dir(),
        Some(PathBuf::from("/home/u/.config/notation"))
    );
    std::env::remove_var("XDG_CONFIG_HOME");
    assert_eq!(
        sign_action::policy::default_config_dir(),
        Some(PathBuf::from("/home/u/.config/notation"))
    );
    match saved.0 {
        Some(v) => std::env::set_var("XDG_CONFIG_HOME", v),
        None => std::env::remove_var("XDG_CONFIG_HOME"),
    }
    match saved.1 {
        Some(v) => std::env::set_var("HOME", v),
        None => std::env::remove_var("HOME"),
    }
}

#[test]
fn statement_helpers_for_the_verifier() {
    let f = Fixture::new();
    let a = f.store_dir("ca", "a");
    fs::write(a.join("root.crt"), f.cert("root.crt")).unwrap();
    let b = f.store_dir("ca", "b");
    fs::write(b.join("self.crt"), f.cert("selfleaf.crt")).unwrap();
    let t = f.store_dir("tsa", "t");
    fs::write(t.join("root.crt"), f.cert("root.crt")).unwrap();
    let doc = TrustPolicyDocument::parse_str(&one(
        STRICT,
        r#"["ca:b","tsa:t","ca:a"]"#,
        &ids(&["x509.subject: C=US, ST=WA, O=Test, CN=Self Leaf"]),
        SCOPES,
    ))
    .unwrap();
    let st = &doc.statements[0];
    let store = f.store();
    let ca = store.certificates_for(st, StoreType::Ca).unwrap();
    assert_eq!(ca.len(), 2);
    assert_eq!(
        ca[0].der(),
        f.cert("selfleaf.der").as_slice(),
        "policy order"
    );
    assert_eq!(store.certificates_for(st, StoreType::Tsa).unwrap().len(), 1);
    assert!(store
        .certificates_for(st, StoreType::SigningAuthority)
        .unwrap()
        .is_empty());

    let matcher = st.leaf_subject_matcher().expect("not a wildcard statement");
    let subject = openssl_subject(&f.certs.join("selfleaf.crt"), "PEM");
    assert!(matcher(&subject), "{subject}");
    assert!(!matcher(&openssl_subject(&f.certs.join("root.crt"), "PEM")));

    let any = TrustPolicyDocument::parse_str(&one(STRICT, STORES, ANY, SCOPES)).unwrap();
    assert!(any.statements[0].leaf_subject_matcher().is_none());

    // A store named by the policy that is missing is an error, not an empty list.
    let missing =
        TrustPolicyDocument::parse_str(&one(STRICT, r#"["ca:a","ca:gone"]"#, ANY, SCOPES)).unwrap();
    assert!(matches!(
        store.certificates_for(&missing.statements[0], StoreType::Ca),
        Err(TrustStoreError::NotFound { .. })
    ));
}

/// Differential check of the RFC 4514 value decoding against Python `cryptography`
/// (`Name.from_rfc4514_string`), on names without insignificant spaces (which that parser
/// does not strip).
#[test]
fn dn_decoding_agrees_with_python_cryptography() {
    use sign_action::policy::identity::parse_rfc4514;
    let cases = [
        r"CN=a\,b\+c\\d\;e\<f\>g\=h\#i\22j,O=x\ ,ST=\ y,C=US",
        r"CN=caf\C3\A9 \C3\A9,O=\4e\6F,ST=WA,C=US",
        r"CN=Zürich Straße,O=Müller AG,ST=ZH,C=CH",
        r"CN=a=b,O=o#p,ST=s,C=CC",
        r"CN=\#lead,OU=x\20,O=\20y,ST=s,C=CC",
        r"CN=e2e,O=Notary,L=Seattle,ST=WA,C=US",
        r"CN=Notation Test Root,O=Notary,L=Seattle,ST=WA,C=US",
        r"CN=x\2cy\2Bz,O=o,ST=s,C=CC",
    ];
    let script = r#"
import json, sys
from cryptography import x509
out = []
for line in json.load(sys.stdin):
    n = x509.Name.from_rfc4514_string(line)
    out.append(sorted([a.rfc4514_attribute_name, a.value] for a in n))
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&cases).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<Vec<(String, String)>> = serde_json::from_slice(&out.stdout).unwrap();
    for (text, want) in cases.iter().zip(expected) {
        let mut got: Vec<(String, String)> =
            parse_rfc4514(text).unwrap().into_iter().flatten().collect();
        got.sort();
        assert_eq!(got, want, "{text}");
    }
}

/// The subject string the verifier matches (`x509::Certificate::subject`, Go's
/// `pkix.Name.String()` form) against the identity of the upstream policy.
#[test]
fn e2e_certificate_subject_from_the_x509_module_matches_the_identity() {
    let pem = fs::read(vector("e2e-certs/e2e.crt")).unwrap();
    let certs = sign_action::x509::parse_certificates(&pem, "e2e.crt").unwrap();
    let subject = certs[0].subject();
    assert_eq!(
        subject,
        openssl_subject(&vector("e2e-certs/e2e.crt"), "PEM")
    );
    let doc = load_vector("trustpolicies/valid_trusted_identity_trustpolicy.json").unwrap();
    assert!(doc.statements[0].accepts_leaf_subject(&subject));
    let mock = load_vector("derived/mock-trustpolicy.oci.json").unwrap();
    assert!(!mock.statements[0].accepts_leaf_subject(&subject));
    let root = fs::read(vector(
        "envelopes-mock/truststore/x509/ca/valid-trust-store/NotationTestRoot.pem",
    ))
    .unwrap();
    let root = sign_action::x509::parse_certificates(&root, "root").unwrap();
    assert!(mock.statements[0].accepts_leaf_subject(&root[0].subject()));
}
