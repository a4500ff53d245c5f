//! The verification workflow (digest §8): select the trust policy, discover the signatures,
//! check each in turn until one passes, and report every check with the action the policy
//! gives it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::envelope::{self, ParsedEnvelope, Payload, SigningScheme};
use crate::oci::manifest::{ImageManifest, SIGNATURE_ARTIFACT_TYPE};
use crate::oci::{ArtifactStore, Descriptor, Reference, MAX_ENVELOPE_BYTES};
use crate::policy::identity::{any_matches_leaf, TrustedIdentity};
use crate::policy::level::{Action, Check, VerifyTimestamp};
use crate::policy::store::{StoreType, TrustStore, TrustStoreError};
use crate::policy::TrustPolicyStatement;
use crate::revocation::{RevocationChecker, RevocationStatus};
use crate::x509::fulcio::{self, KeylessIdentity};
use crate::x509::Certificate;

/// Outcome of one check on one signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Passed,
    Failed,
    /// The policy skips this check.
    Skipped,
    /// This implementation could not perform the check; never counted as passed.
    NotPerformed,
}

/// How the policy treats a check's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    Enforced,
    Logged,
    Skipped,
}

impl From<Action> for Enforcement {
    fn from(a: Action) -> Self {
        match a {
            Action::Enforce => Enforcement::Enforced,
            Action::Log => Enforcement::Logged,
            Action::Skip => Enforcement::Skipped,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckOutcome {
    pub check: &'static str,
    pub status: CheckStatus,
    pub enforcement: Enforcement,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Everything learnt about one signature.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SignatureVerification {
    /// Digest of the signature manifest.
    pub digest: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_fingerprint: Option<String>,
    /// What a keyless (Fulcio) leaf certificate binds: workflow URI, repository, ref, issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyless_identity: Option<KeylessIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    /// The verified RFC 3161 timestamp, when one was relied on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimestampReport>,
    pub checks: Vec<CheckOutcome>,
    /// Why the signature failed (first enforced failure), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// A verified timestamp: when, how precisely, and who vouched for it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TimestampReport {
    pub gen_time: String,
    /// [genTime − accuracy, genTime + accuracy], RFC 3339 with milliseconds.
    pub range_start: String,
    pub range_end: String,
    pub tsa_subject: String,
    /// SHA-256 fingerprints, TSA certificate first.
    pub tsa_chain: Vec<String>,
}

impl TimestampReport {
    pub fn of(info: &crate::timestamp::TimestampInfo) -> Self {
        TimestampReport {
            gen_time: rfc3339_millis(info.gen_time),
            range_start: rfc3339_millis(info.range.0),
            range_end: rfc3339_millis(info.range.1),
            tsa_subject: info.tsa_subject.clone(),
            tsa_chain: info.tsa_chain.clone(),
        }
    }
}

/// RFC 3339 UTC with milliseconds (timestamps carry sub-second precision).
pub fn rfc3339_millis(t: SystemTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from(t)
        .format(&format)
        .unwrap_or_default()
}

/// The verdict for one artifact.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ArtifactVerification {
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// The signature that passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureVerification>,
    /// Signatures that were tried and failed, in order.
    pub failed_signatures: Vec<SignatureVerification>,
    pub warnings: Vec<String>,
    /// Why the artifact failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With `--recursive` on an image index: the verdict for each manifest it lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformVerification>,
}

/// The verdict for one manifest of an image index verified recursively.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PlatformVerification {
    /// `os/arch[/variant]` from the index (absent when the index names none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(flatten)]
    pub result: ArtifactVerification,
}

impl ArtifactVerification {
    /// An artifact that failed before any signature was looked at.
    pub fn failed(input: &str, error: String) -> ArtifactVerification {
        ArtifactVerification {
            reference: input.to_string(),
            digest: None,
            verified: false,
            policy: None,
            level: None,
            signature: None,
            failed_signatures: Vec::new(),
            warnings: Vec::new(),
            error: Some(error),
            platforms: Vec::new(),
        }
    }
}

/// A trust policy statement resolved for one artifact, with its stores loaded.
#[derive(Clone)]
pub struct EffectivePolicy {
    pub name: String,
    pub level: String,
    /// Action per check, from the level and its overrides.
    pub actions: BTreeMap<Check, Action>,
    /// `verifyTimestamp: afterCertExpiry`.
    pub timestamp_only_after_cert_expiry: bool,
    pub ca_certificates: Vec<Certificate>,
    pub signing_authority_certificates: Vec<Certificate>,
    pub tsa_certificates: Vec<Certificate>,
    /// Whether the policy names any `tsa:` store.
    pub has_tsa_store: bool,
    /// The statement's trusted identities (`[Any]` for `*`), matched against the leaf.
    pub identities: Vec<TrustedIdentity>,
    /// Human text of the trusted identities, for error messages.
    pub trusted_identities: Vec<String>,
}

impl EffectivePolicy {
    /// Resolve a statement: its actions per check and the certificates of every store it
    /// names. Any store that cannot be read fails the whole run (fail closed).
    pub fn from_statement(
        statement: &TrustPolicyStatement,
        trust_store: &TrustStore,
    ) -> Result<EffectivePolicy, TrustStoreError> {
        let actions = Check::ALL
            .into_iter()
            .map(|c| (c, statement.action_for(c)))
            .collect();
        Ok(EffectivePolicy {
            name: statement.name.clone(),
            level: statement.level().as_str().to_string(),
            actions,
            timestamp_only_after_cert_expiry: statement.verify_timestamp()
                == VerifyTimestamp::AfterCertExpiry,
            ca_certificates: trust_store.certificates_for(statement, StoreType::Ca)?,
            signing_authority_certificates: trust_store
                .certificates_for(statement, StoreType::SigningAuthority)?,
            tsa_certificates: trust_store.certificates_for(statement, StoreType::Tsa)?,
            has_tsa_store: statement.has_store_type(StoreType::Tsa),
            identities: statement.trusted_identities.clone(),
            trusted_identities: statement.identity_texts(),
        })
    }

    fn action(&self, check: Check) -> Action {
        self.actions.get(&check).copied().unwrap_or(Action::Enforce)
    }

    fn skips_everything(&self) -> bool {
        self.action(Check::Integrity) == Action::Skip
    }
}

/// Settings of a verification run.
#[derive(Clone)]
pub struct VerifySettings {
    pub max_signatures: usize,
    /// Payload annotations that must be present with these values.
    pub user_metadata: BTreeMap<String, String>,
    /// Shared by every artifact of the run, so each CRL or OCSP answer is fetched once.
    /// `None`: revocation cannot be checked and is reported as not performed (a failure
    /// where the policy enforces revocation, as an unknown status is).
    pub revocation: Option<Arc<RevocationChecker>>,
    /// Where verification plugins are installed (`{dir}/<name>/notation-<name>`); `None`:
    /// notation's, `{config}/plugins`.
    pub plugin_dir: Option<PathBuf>,
    /// `pluginConfig` for verification plugins.
    pub plugin_config: BTreeMap<String, String>,
    /// Accept keyless (Fulcio) signatures under a `*` trusted identity. Off by default: such a
    /// policy would trust every OIDC identity the keyless CA certifies.
    pub allow_any_keyless_identity: bool,
}

impl std::fmt::Debug for VerifySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifySettings")
            .field("max_signatures", &self.max_signatures)
            .field("user_metadata", &self.user_metadata)
            .field("revocation", &self.revocation.is_some())
            .field("plugin_dir", &self.plugin_dir)
            .field(
                "plugin_config_keys",
                &self.plugin_config.keys().collect::<Vec<_>>(),
            )
            .field(
                "allow_any_keyless_identity",
                &self.allow_any_keyless_identity,
            )
            .finish()
    }
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            max_signatures: 100,
            user_metadata: BTreeMap::new(),
            revocation: None,
            plugin_dir: None,
            plugin_config: BTreeMap::new(),
            allow_any_keyless_identity: false,
        }
    }
}

/// Verify one artifact. `input` is the text the user gave (for the report).
pub async fn verify_artifact(
    store: &dyn ArtifactStore,
    input: &str,
    reference: &Reference,
    policy: &EffectivePolicy,
    settings: &VerifySettings,
) -> ArtifactVerification {
    let mut result = ArtifactVerification {
        reference: input.to_string(),
        digest: None,
        verified: false,
        policy: Some(policy.name.clone()),
        level: Some(policy.level.clone()),
        signature: None,
        failed_signatures: Vec::new(),
        warnings: Vec::new(),
        error: None,
        platforms: Vec::new(),
    };
    let artifact = match store.resolve(reference).await {
        Ok(d) => d,
        Err(e) => {
            result.error = Some(format!("cannot resolve the artifact: {e}"));
            return result;
        }
    };
    result.digest = Some(artifact.digest.clone());
    if reference.digest.is_none() {
        result.warnings.push(format!(
            "tag resolved to {}; verify by digest to pin what you deploy",
            artifact.digest
        ));
    }
    if policy.skips_everything() {
        result.verified = true;
        result.warnings.push(format!(
            "trust policy {:?} is configured to skip signature verification",
            policy.name
        ));
        return result;
    }
    let signatures = match store.list_signatures(reference, &artifact).await {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(format!("cannot list the signatures: {e}"));
            return result;
        }
    };
    if signatures.is_empty() {
        result.error = Some(format!(
            "no signature is associated with {}; sign it first",
            artifact.digest
        ));
        return result;
    }
    let limit = settings.max_signatures.max(1);
    for descriptor in signatures.iter().take(limit) {
        let outcome =
            verify_signature(store, reference, &artifact, descriptor, policy, settings).await;
        if outcome.passed {
            for check in &outcome.checks {
                if check.status == CheckStatus::Failed && check.enforcement == Enforcement::Logged {
                    result.warnings.push(format!(
                        "{} validation failed but is set to log: {}",
                        check.check,
                        check.detail.clone().unwrap_or_default()
                    ));
                }
                if check.status == CheckStatus::NotPerformed {
                    result.warnings.push(format!(
                        "{} was not performed: {}",
                        check.check,
                        check.detail.clone().unwrap_or_default()
                    ));
                }
            }
            result.verified = true;
            result.signature = Some(outcome);
            return result;
        }
        result.failed_signatures.push(outcome);
    }
    let tried = result.failed_signatures.len();
    let mut error = if signatures.len() > limit {
        format!(
            "none of the first {limit} signatures verified and the limit of {limit} signatures was reached ({} signatures exist; raise --max-signatures to try more)",
            signatures.len()
        )
    } else {
        format!("none of the {tried} signatures verified")
    };
    let reasons: Vec<String> = result
        .failed_signatures
        .iter()
        .take(5)
        .map(|s| {
            format!(
                "{}: {}",
                s.digest,
                s.failure.clone().unwrap_or_else(|| "failed".into())
            )
        })
        .collect();
    if !reasons.is_empty() {
        error.push_str(": ");
        error.push_str(&reasons.join("; "));
        if tried > reasons.len() {
            error.push_str(&format!("; … and {} more", tried - reasons.len()));
        }
    }
    result.error = Some(error);
    result
}

fn outcome(
    check: Check,
    status: CheckStatus,
    action: Action,
    detail: Option<String>,
) -> CheckOutcome {
    CheckOutcome {
        check: check.as_str(),
        status,
        enforcement: action.into(),
        detail,
    }
}

/// Fetch and check one signature manifest.
pub async fn verify_signature(
    store: &dyn ArtifactStore,
    reference: &Reference,
    artifact: &Descriptor,
    signature_manifest: &Descriptor,
    policy: &EffectivePolicy,
    settings: &VerifySettings,
) -> SignatureVerification {
    let mut report = SignatureVerification {
        digest: signature_manifest.digest.clone(),
        passed: false,
        format: None,
        signing_scheme: None,
        signer_subject: None,
        certificate_fingerprint: None,
        keyless_identity: None,
        signing_time: None,
        expiry: None,
        timestamp: None,
        checks: Vec::new(),
        failure: None,
    };
    let integrity_action = policy.action(Check::Integrity);
    let fail_integrity = |mut report: SignatureVerification, reason: String| {
        report.checks.push(outcome(
            Check::Integrity,
            CheckStatus::Failed,
            integrity_action,
            Some(reason.clone()),
        ));
        report.failure = Some(format!("integrity validation failed: {reason}"));
        report
    };

    let envelope = match fetch_envelope(store, reference, signature_manifest).await {
        Ok(e) => e,
        Err(reason) => return fail_integrity(report, reason),
    };
    report.format = Some(envelope.format.name().to_string());
    report.signing_scheme = Some(envelope.signing_scheme.as_str().to_string());
    report.signing_time = envelope
        .signing_time
        .or(envelope.authentic_signing_time)
        .map(crate::sign::rfc3339_utc);
    report.expiry = envelope.expiry.map(crate::sign::rfc3339_utc);

    let chain: Vec<Certificate> = match envelope
        .certificate_chain
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(c) => c,
        Err(e) => return fail_integrity(report, format!("certificate chain: {e}")),
    };
    if let Some(leaf) = chain.first() {
        report.signer_subject = Some(leaf.subject());
        report.certificate_fingerprint = Some(leaf.sha256_fingerprint());
        report.keyless_identity = fulcio::keyless_identity(leaf).ok().flatten();
    }

    // 1. Integrity: always enforced unless the level is skip (handled by the caller).
    if let Err(e) = envelope::verify_integrity(&envelope) {
        return fail_integrity(report, e.to_string());
    }
    match Payload::parse(&envelope.payload) {
        Ok(payload) => {
            if !payload.matches(artifact) {
                return fail_integrity(
                    report,
                    format!(
                        "content descriptor mismatch: the signature is for {} ({} bytes, {}), not for the artifact {} ({} bytes, {})",
                        payload.target_artifact.digest,
                        payload.target_artifact.size,
                        payload.target_artifact.media_type,
                        artifact.digest,
                        artifact.size,
                        artifact.media_type
                    ),
                );
            }
            if let Some(reason) = missing_user_metadata(&payload, &settings.user_metadata) {
                report.checks.push(outcome(
                    Check::Integrity,
                    CheckStatus::Passed,
                    integrity_action,
                    None,
                ));
                report.failure = Some(reason);
                return report;
            }
        }
        Err(e) => return fail_integrity(report, format!("payload: {e}")),
    }
    // Digest §8 step 2 and 7: a named verification plugin must be installed, recent enough
    // and a verifier; it is asked before the other checks are recorded because unprocessed
    // critical attributes are an integrity failure.
    let plugin_verdict = match &envelope.verification_plugin {
        Some(name) => match run_verification_plugin(name, &envelope, policy, settings).await {
            Ok(v) => Some(v),
            Err(reason) => return fail_integrity(report, reason),
        },
        None => {
            let unprocessed = envelope.unprocessed_critical_attributes();
            if !unprocessed.is_empty() {
                return fail_integrity(
                    report,
                    format!(
                        "unknown critical attributes {unprocessed:?}: the specification requires rejecting signatures whose critical headers the verifier does not understand"
                    ),
                );
            }
            None
        }
    };
    report.checks.push(outcome(
        Check::Integrity,
        CheckStatus::Passed,
        integrity_action,
        None,
    ));

    let now = SystemTime::now();
    let mut enforced_failure: Option<String> = None;
    let mut record = |report: &mut SignatureVerification, check: Check, judged: Judged| {
        let action = policy.action(check);
        if action == Action::Skip {
            report
                .checks
                .push(outcome(check, CheckStatus::Skipped, action, None));
            return;
        }
        match judged.result {
            Ok(status) => {
                let status = if judged.not_performed {
                    CheckStatus::NotPerformed
                } else {
                    status
                };
                report
                    .checks
                    .push(outcome(check, status, action, judged.note));
            }
            Err(reason) => {
                if action == Action::Enforce && enforced_failure.is_none() {
                    enforced_failure =
                        Some(format!("{} validation failed: {reason}", check.as_str()));
                }
                let status = if judged.not_performed {
                    CheckStatus::NotPerformed
                } else {
                    CheckStatus::Failed
                };
                report
                    .checks
                    .push(outcome(check, status, action, Some(reason)));
            }
        }
    };

    // 2. Authenticity and trusted identity.
    record(
        &mut report,
        Check::Authenticity,
        Judged::from(check_authenticity(
            &envelope,
            &chain,
            policy,
            plugin_verdict.as_ref(),
            settings.allow_any_keyless_identity,
        )),
    );
    // 3. Expiry.
    record(
        &mut report,
        Check::Expiry,
        Judged::from(check_expiry(&envelope, now)),
    );
    // 4. Authentic timestamp.
    let timestamp = if policy.action(Check::AuthenticTimestamp) == Action::Skip {
        Judged::from(Ok(CheckStatus::Skipped))
    } else {
        check_authentic_timestamp(
            &envelope,
            &chain,
            policy,
            now,
            settings.revocation.as_deref(),
            &mut report.timestamp,
        )
        .await
    };
    record(&mut report, Check::AuthenticTimestamp, timestamp);
    // 5. Revocation, only when the policy does not skip it: it costs network requests.
    let revocation = if policy.action(Check::Revocation) == Action::Skip {
        Judged::from(Ok(CheckStatus::Skipped))
    } else if let Some(result) = plugin_verdict.as_ref().and_then(|v| v.revocation.as_ref()) {
        Judged::from(result.clone())
    } else {
        let signing_time = match envelope.signing_scheme {
            // Only a signing authority's time is authentic enough for invalidity dates.
            SigningScheme::X509SigningAuthority => envelope.authentic_signing_time,
            SigningScheme::X509 => None,
        };
        check_revocation(&chain, signing_time, settings.revocation.as_deref()).await
    };
    record(&mut report, Check::Revocation, revocation);

    report.failure = enforced_failure;
    report.passed = report.failure.is_none();
    report
}

async fn fetch_envelope(
    store: &dyn ArtifactStore,
    reference: &Reference,
    signature_manifest: &Descriptor,
) -> Result<ParsedEnvelope, String> {
    let bytes = store
        .fetch_manifest(reference, signature_manifest)
        .await
        .map_err(|e| format!("cannot fetch the signature manifest: {e}"))?;
    let manifest: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| format!("signature manifest is not an image manifest: {e}"))?;
    let is_signature = manifest.artifact_type.as_deref() == Some(SIGNATURE_ARTIFACT_TYPE)
        || manifest.config.media_type == SIGNATURE_ARTIFACT_TYPE;
    if !is_signature {
        return Err("the manifest is not a Notary signature manifest".into());
    }
    if manifest.layers.len() != 1 {
        return Err(format!(
            "a signature manifest must have exactly one layer, this one has {}",
            manifest.layers.len()
        ));
    }
    let layer = &manifest.layers[0];
    if envelope::EnvelopeFormat::from_media_type(&layer.media_type).is_none() {
        return Err(format!(
            "unsupported signature envelope media type {:?}",
            layer.media_type
        ));
    }
    let envelope_bytes = store
        .fetch_blob(reference, layer, MAX_ENVELOPE_BYTES)
        .await
        .map_err(|e| format!("cannot fetch the signature envelope: {e}"))?;
    envelope::parse(&layer.media_type, &envelope_bytes).map_err(|e| e.to_string())
}

fn missing_user_metadata(payload: &Payload, required: &BTreeMap<String, String>) -> Option<String> {
    let empty = BTreeMap::new();
    let annotations = payload
        .target_artifact
        .annotations
        .as_ref()
        .unwrap_or(&empty);
    for (key, value) in required {
        match annotations.get(key) {
            Some(v) if v == value => {}
            Some(v) => {
                return Some(format!(
                    "user metadata {key}={value} required, but the signature has {key}={v}"
                ))
            }
            None => {
                return Some(format!(
                    "user metadata {key}={value} required, but the signature does not carry {key}"
                ))
            }
        }
    }
    None
}

fn check_authenticity(
    envelope: &ParsedEnvelope,
    chain: &[Certificate],
    policy: &EffectivePolicy,
    plugin: Option<&PluginVerdict>,
    allow_any_keyless_identity: bool,
) -> Result<CheckStatus, String> {
    let (anchors, store_type) = match envelope.signing_scheme {
        SigningScheme::X509 => (&policy.ca_certificates, "ca"),
        SigningScheme::X509SigningAuthority => {
            (&policy.signing_authority_certificates, "signingAuthority")
        }
    };
    if anchors.is_empty() {
        return Err(format!(
            "no trusted certificates are found to verify authenticity: the trust policy names no {store_type} trust store for signing scheme {}",
            envelope.signing_scheme.as_str()
        ));
    }
    let trusted = chain
        .iter()
        .any(|c| anchors.iter().any(|a| a.der() == c.der()));
    if !trusted {
        return Err(
            "the signature's certificate chain does not contain any trusted certificate".into(),
        );
    }
    // A plugin with TRUSTED_IDENTITY decides identity instead of the subject match.
    if let Some(result) = plugin.and_then(|p| p.trusted_identity.as_ref()) {
        return result.clone();
    }
    let Some(leaf) = chain.first() else {
        return Err("the signature carries no certificate".into());
    };
    if policy.identities.contains(&TrustedIdentity::Any) {
        // A keyless CA certifies whoever presents a token its issuers sign: "*" over it
        // would accept a signature from any repository's workflow or any person.
        if fulcio::is_keyless(leaf) && !allow_any_keyless_identity {
            let who = match fulcio::keyless_identity(leaf) {
                Ok(Some(id)) => id.describe(),
                _ => "an unreadable identity".to_string(),
            };
            return Err(format!(
                "trust policy statement {:?} trusts any identity (\"*\"), but the signing certificate is a keyless (Fulcio) certificate for {who}: its CA certifies whoever presents an OIDC token, so \"*\" would accept anyone's signature. Pin the signer with a trusted identity such as \"x509.san.uri:<workflow URI> fulcio.issuer:<issuer>\", or accept any keyless signer explicitly with --allow-any-keyless-identity (action input `allow-any-keyless-identity: true`)",
                policy.name
            ));
        }
        return Ok(CheckStatus::Passed);
    }
    if any_matches_leaf(&policy.identities, leaf) {
        return Ok(CheckStatus::Passed);
    }
    match fulcio::keyless_identity(leaf) {
        Ok(Some(id)) => {
            let issuerless = policy.identities.iter().find_map(|i| match i {
                TrustedIdentity::Keyless(pin)
                    if pin.issuer.is_none()
                        && id.san_uris.iter().any(|u| pin.san_uri.matches(u)) =>
                {
                    Some(i.to_string())
                }
                _ => None,
            });
            let hint = match (issuerless, &id.issuer) {
                (Some(pin), Some(issuer)) => format!(
                    "; the identity {pin:?} has no fulcio.issuer clause, so it accepts no keyless certificate: append \" fulcio.issuer:{issuer}\" to it if that issuer is the one you trust"
                ),
                _ => String::new(),
            };
            Err(format!(
                "signing certificate identity {} does not match any trusted identity {:?}{hint}",
                id.describe(),
                policy.trusted_identities
            ))
        }
        Ok(None) => Err(format!(
            "signing certificate subject {:?} does not match any trusted identity {:?}",
            leaf.subject(),
            policy.trusted_identities
        )),
        Err(e) => Err(format!(
            "the signing certificate's keyless identity extensions are malformed ({e}); it matches no trusted identity"
        )),
    }
}

/// What a verification plugin decided for the checks it took over.
struct PluginVerdict {
    /// Present when the plugin has `TRUSTED_IDENTITY`.
    trusted_identity: Option<Result<CheckStatus, String>>,
    /// Present when the plugin has `REVOCATION_CHECK` and revocation is not skipped.
    revocation: Option<Result<CheckStatus, String>>,
}

/// Locate, vet and call the verification plugin the envelope names (digest §8 step 2 and 7,
/// §9 `verify-signature`). `Err` is an integrity failure, whatever the level.
async fn run_verification_plugin(
    name: &str,
    envelope: &ParsedEnvelope,
    policy: &EffectivePolicy,
    settings: &VerifySettings,
) -> Result<PluginVerdict, String> {
    use crate::signers::plugin::{SemVer, CAP_REVOCATION_CHECK, CAP_TRUSTED_IDENTITY};
    use crate::signers::Plugin;
    let not_installed = |why: String| {
        format!(
            "the signature requires the verification plugin {name:?}, which is not installed ({why}); install it or use a verifier with that plugin"
        )
    };
    let plugins_dir = match &settings.plugin_dir {
        Some(dir) => dir.clone(),
        None => crate::policy::store::default_config_dir()
            .map(|d| d.join("plugins"))
            .ok_or_else(|| not_installed("notation's configuration directory is unknown".into()))?,
    };
    let plugin =
        Plugin::in_plugins_dir(&plugins_dir, name).map_err(|e| not_installed(e.to_string()))?;
    let metadata = plugin
        .metadata(&settings.plugin_config)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(min) = &envelope.verification_plugin_min_version {
        let min_version = SemVer::parse(min).ok_or_else(|| {
            format!(
                "the signature's verificationPluginMinVersion {min:?} is not a semantic version"
            )
        })?;
        let version = SemVer::parse(&metadata.version).ok_or_else(|| {
            format!(
                "verification plugin {name:?} reports version {:?}, which is not a semantic version",
                metadata.version
            )
        })?;
        if version < min_version {
            return Err(format!(
                "verification plugin {name:?} is version {}, but the signature requires at least {min}; upgrade the plugin",
                metadata.version
            ));
        }
    }
    let has = |cap: &str| metadata.capabilities.iter().any(|c| c == cap);
    if !metadata
        .capabilities
        .iter()
        .any(|c| c.starts_with("SIGNATURE_VERIFIER."))
    {
        return Err(format!(
            "plugin {name:?} is not a verification plugin: it declares no SIGNATURE_VERIFIER capability"
        ));
    }
    let mut requested = Vec::new();
    if has(CAP_TRUSTED_IDENTITY) {
        requested.push(CAP_TRUSTED_IDENTITY);
    }
    if has(CAP_REVOCATION_CHECK) && policy.action(Check::Revocation) != Action::Skip {
        requested.push(CAP_REVOCATION_CHECK);
    }
    let critical: Vec<&str> = envelope.unprocessed_critical_attributes();
    if requested.is_empty() && critical.is_empty() {
        // Nothing to ask: the plugin's only capability is one the policy skips.
        return Ok(PluginVerdict {
            trusted_identity: None,
            revocation: None,
        });
    }
    let mut critical_attributes = serde_json::json!({
        "contentType": envelope::PAYLOAD_MEDIA_TYPE,
        "signingScheme": envelope.signing_scheme.as_str(),
    });
    if let Some(expiry) = envelope.expiry {
        critical_attributes["expiry"] = crate::sign::rfc3339_utc(expiry).into();
    }
    if let Some(t) = envelope.authentic_signing_time {
        critical_attributes["authenticSigningTime"] = crate::sign::rfc3339_utc(t).into();
    }
    if !envelope.extended_attributes.is_empty() {
        let extended: serde_json::Map<String, serde_json::Value> = envelope
            .extended_attributes
            .iter()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect();
        critical_attributes["extendedAttributes"] = serde_json::Value::Object(extended);
    }
    use base64::Engine as _;
    let chain: Vec<String> = envelope
        .certificate_chain
        .iter()
        .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
        .collect();
    let mut signature = serde_json::json!({
        "criticalAttributes": critical_attributes,
        "certificateChain": chain,
    });
    if !critical.is_empty() {
        signature["unprocessedAttributes"] = serde_json::json!(critical);
    }
    let request = serde_json::json!({
        "contractVersion": crate::signers::plugin::CONTRACT_VERSION,
        "signature": signature,
        "trustPolicy": {
            "trustedIdentities": policy.trusted_identities,
            "signatureVerification": requested,
        },
        "pluginConfig": settings.plugin_config,
    });
    let response = plugin
        .verify_signature(&request)
        .await
        .map_err(|e| e.to_string())?;
    for attribute in &critical {
        if !response.processed_attributes.iter().any(|p| p == attribute) {
            return Err(format!(
                "extended critical attribute {attribute:?} was not processed by the verification plugin {name:?}"
            ));
        }
    }
    let mut verdict = PluginVerdict {
        trusted_identity: None,
        revocation: None,
    };
    for capability in requested {
        let result = response.results.get(capability).ok_or_else(|| {
            format!("verification plugin {name:?} returned no result for {capability}")
        })?;
        let judged = if result.success {
            Ok(CheckStatus::Passed)
        } else {
            Err(format!(
                "verification plugin {name:?} failed {capability}: {}",
                result.reason
            ))
        };
        if capability == CAP_TRUSTED_IDENTITY {
            verdict.trusted_identity = Some(judged);
        } else {
            verdict.revocation = Some(judged);
        }
    }
    Ok(verdict)
}

fn check_expiry(envelope: &ParsedEnvelope, now: SystemTime) -> Result<CheckStatus, String> {
    match envelope.expiry {
        Some(expiry) if now >= expiry => Err(format!(
            "digital signature has expired on {}",
            crate::sign::rfc3339_utc(expiry)
        )),
        _ => Ok(CheckStatus::Passed),
    }
}

struct Judged {
    result: Result<CheckStatus, String>,
    /// The check could not be performed in full: reported as `not-performed`, never as
    /// passed. With an `Err` result it still counts as a failure under its enforcement.
    not_performed: bool,
    note: Option<String>,
}

impl From<Result<CheckStatus, String>> for Judged {
    fn from(result: Result<CheckStatus, String>) -> Self {
        Judged {
            result,
            not_performed: false,
            note: None,
        }
    }
}

fn all_valid_at(chain: &[Certificate], at: SystemTime, when: &str) -> Result<(), String> {
    for cert in chain {
        if at < cert.not_before() {
            return Err(format!(
                "certificate {:?} is not valid yet at {when}: it is valid from {}",
                cert.subject(),
                crate::sign::rfc3339_utc(cert.not_before())
            ));
        }
        if at > cert.not_after() {
            return Err(format!(
                "certificate {:?} is not valid at {when}: it expired at {}",
                cert.subject(),
                crate::sign::rfc3339_utc(cert.not_after())
            ));
        }
    }
    Ok(())
}

async fn check_authentic_timestamp(
    envelope: &ParsedEnvelope,
    chain: &[Certificate],
    policy: &EffectivePolicy,
    now: SystemTime,
    checker: Option<&RevocationChecker>,
    timestamp_report: &mut Option<TimestampReport>,
) -> Judged {
    if envelope.signing_scheme == SigningScheme::X509SigningAuthority {
        let result = match envelope.authentic_signing_time {
            Some(t) => {
                all_valid_at(chain, t, "the authentic signing time").map(|_| CheckStatus::Passed)
            }
            None => Err("the signature has no authentic signing time".into()),
        };
        return Judged::from(result);
    }
    let any_expired = chain.iter().any(|c| now > c.not_after());
    let triggered =
        policy.has_tsa_store && (!policy.timestamp_only_after_cert_expiry || any_expired);
    if !triggered {
        return Judged::from(
            all_valid_at(chain, now, "the time of verification").map(|_| CheckStatus::Passed),
        );
    }
    let Some(token) = &envelope.timestamp_token else {
        return Judged::from(Err(
            "no timestamp countersignature was found in the signature envelope".into(),
        ));
    };
    let (info, tsa_chain) = match crate::timestamp::verify_token_with_chain(
        token,
        &envelope.signature,
        &policy.tsa_certificates,
    ) {
        Ok(v) => v,
        Err(e) => return Judged::from(Err(format!("timestamp countersignature: {e}"))),
    };
    *timestamp_report = Some(TimestampReport::of(&info));
    // The range is judged before the TSA chain's revocation (digest §5 step 7 before step
    // 6, as notation does): it is local and definitive, so a timestamp outside the signing
    // certificate's validity fails for that reason rather than for an unreachable OCSP/CRL
    // server, and costs no network request.
    for cert in chain {
        if let Err(e) = info.check_within_validity(cert) {
            return Judged::from(Err(e.to_string()));
        }
    }
    // Once a timestamp is relied on, its TSA chain must not be revoked (digest §5 step 6).
    let Some(checker) = checker else {
        return Judged {
            result: Err("revocation status of the TSA certificate chain is unknown: no revocation checker is available".into()),
            not_performed: true,
            note: None,
        };
    };
    let tsa_revocation = checker.check_chain(&tsa_chain, None).await;
    if tsa_revocation.status != RevocationStatus::Good {
        return Judged::from(Err(format!("TSA {tsa_revocation}")));
    }
    Judged::from(Ok(CheckStatus::Passed))
}

async fn check_revocation(
    chain: &[Certificate],
    authentic_signing_time: Option<SystemTime>,
    checker: Option<&RevocationChecker>,
) -> Judged {
    let Some(checker) = checker else {
        return Judged {
            result: Err("revocation status is unknown: no revocation checker is available".into()),
            not_performed: true,
            note: None,
        };
    };
    let outcome = checker.check_chain(chain, authentic_signing_time).await;
    let notes = outcome.fallback_notes();
    let note = (!notes.is_empty()).then(|| notes.join("; "));
    match outcome.status {
        RevocationStatus::Good => Judged {
            result: Ok(CheckStatus::Passed),
            not_performed: false,
            note,
        },
        RevocationStatus::Revoked | RevocationStatus::Unknown => Judged {
            result: Err(outcome.to_string()),
            not_performed: false,
            note,
        },
    }
}

/// One artifact to verify: the text the user gave, its parsed reference and the policy that
/// applies to it.
pub struct VerifyTarget {
    pub input: String,
    pub reference: Reference,
    pub policy: Arc<EffectivePolicy>,
}

/// Verify every target concurrently (at most `concurrency` at once); results in input order.
pub async fn verify_all(
    store: Arc<dyn ArtifactStore>,
    targets: Vec<VerifyTarget>,
    settings: &VerifySettings,
    concurrency: usize,
) -> Vec<ArtifactVerification> {
    use futures::stream::{self, StreamExt};
    let mut results: Vec<(usize, ArtifactVerification)> = stream::iter(targets.iter().enumerate())
        .map(|(i, target)| {
            let store = store.clone();
            async move {
                let result = verify_artifact(
                    store.as_ref(),
                    &target.input,
                    &target.reference,
                    &target.policy,
                    settings,
                )
                .await;
                (i, result)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// [`verify_all`], then for every target that is an image index, verify each manifest it
/// lists under the same policy: the target passes only if the index and every child pass.
pub async fn verify_all_recursive(
    store: Arc<dyn ArtifactStore>,
    targets: Vec<VerifyTarget>,
    settings: &VerifySettings,
    concurrency: usize,
) -> Vec<ArtifactVerification> {
    let copies: Vec<(Reference, Arc<EffectivePolicy>)> = targets
        .iter()
        .map(|t| (t.reference.clone(), t.policy.clone()))
        .collect();
    let mut results = verify_all(store.clone(), targets, settings, concurrency).await;
    for (result, (reference, policy)) in results.iter_mut().zip(copies) {
        let Some(digest) = result.digest.clone() else {
            continue;
        };
        let mut pinned = reference.clone();
        pinned.digest = Some(digest);
        let children = match store.resolve(&pinned).await {
            Ok(d) => crate::oci::index_children(store.as_ref(), &pinned, &d).await,
            Err(e) => Err(e),
        };
        let children = match children {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                result.verified = false;
                result.error = Some(format!("cannot read the image index: {e}"));
                continue;
            }
        };
        let child_targets = children
            .iter()
            .map(|c| VerifyTarget {
                input: c.reference.to_string(),
                reference: c.reference.clone(),
                policy: policy.clone(),
            })
            .collect();
        let verdicts = verify_all(store.clone(), child_targets, settings, concurrency).await;
        let failed: Vec<String> = children
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| !v.verified)
            .map(|(c, v)| {
                format!(
                    "{} ({}): {}",
                    c.platform.as_deref().unwrap_or("no platform"),
                    c.descriptor.digest,
                    v.error.as_deref().unwrap_or("verification failed")
                )
            })
            .collect();
        if !failed.is_empty() {
            result.verified = false;
            let children_msg = format!(
                "{} of {} platform manifests failed: {}",
                failed.len(),
                children.len(),
                failed.join("; ")
            );
            result.error = Some(match result.error.take() {
                Some(own) => format!("{own}; {children_msg}"),
                None => children_msg,
            });
        }
        result.platforms = children
            .into_iter()
            .zip(verdicts)
            .map(|(c, v)| PlatformVerification {
                platform: c.platform,
                result: v,
            })
            .collect();
    }
    results
}
