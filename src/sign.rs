//! The signing workflow: reference → descriptor → payload → envelope → signature manifest
//! pushed as a referrer → result.

use serde::Serialize;

use crate::oci::Storage;

/// One artifact signed. Serialised (kebab-case) as an element of the action's `signatures`
/// output and of `--output json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct SignedArtifact {
    /// The reference as the user gave it.
    pub reference: String,
    /// Digest of the signed manifest.
    pub digest: String,
    /// Digest of the signature manifest pushed.
    pub signature_digest: String,
    /// `jws` or `cose`.
    pub signature_format: String,
    pub storage: Storage,
    /// `os/arch[/variant]` of a platform manifest signed because `--recursive` expanded
    /// the image index that lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Leaf certificate subject.
    pub signer_subject: String,
    /// SHA-256 fingerprint of the leaf certificate (lowercase hex).
    pub certificate_fingerprint: String,
    /// What a keyless (Fulcio) leaf certificate binds: workflow URI, repository, ref, issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyless_identity: Option<crate::x509::fulcio::KeylessIdentity>,
    /// Rounds the referrers tag-schema index update started over because concurrent signers
    /// wrote it at the same time (absent when none did).
    #[serde(skip_serializing_if = "is_zero")]
    pub index_retries: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One artifact whose signing failed, with the reason.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct SignFailure {
    pub reference: String,
    pub error: String,
}

/// The outcome of one signing run over one or more artifacts, in input order.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct SignReport {
    pub signatures: Vec<SignedArtifact>,
    pub failures: Vec<SignFailure>,
}

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt};

use crate::crypto::Signer;
use crate::envelope::{self, EnvelopeError, EnvelopeFormat, Payload, SignOptions, Timestamper};
use crate::oci::manifest::{CREATED_ANNOTATION, THUMBPRINT_ANNOTATION};
use crate::oci::{ArtifactStore, ManifestForm, Reference, StoreError};
use crate::x509::{validate_chain, CertError, Certificate, ChainError, ChainPurpose};

/// How to sign: the same for every artifact of a run.
#[derive(Debug, Clone)]
pub struct SignSettings {
    pub format: EnvelopeFormat,
    /// Signature lifetime from the signing time; `None` = no expiry header.
    pub expiry: Option<Duration>,
    /// Extra payload annotations (`-m KEY=VALUE`).
    pub user_metadata: BTreeMap<String, String>,
    pub manifest_form: ManifestForm,
    /// How many artifacts are signed at once.
    pub concurrency: usize,
    /// Sign an image index and every manifest it lists (one signature each).
    pub recursive: bool,
}

impl Default for SignSettings {
    fn default() -> Self {
        SignSettings {
            format: EnvelopeFormat::Jws,
            expiry: None,
            user_metadata: BTreeMap::new(),
            manifest_form: ManifestForm::Legacy,
            concurrency: 4,
            recursive: false,
        }
    }
}

/// Problems that stop a whole run before anything is signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignSetupError {
    #[error("signing certificate: {0}")]
    Certificate(#[from] CertError),
    #[error("signing certificate chain: {0}")]
    Chain(#[from] ChainError),
    #[error("user metadata: {0}")]
    UserMetadata(String),
}

/// Why one artifact could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("the envelope built by the signer is not acceptable: {0}")]
    GeneratedEnvelope(String),
}

/// Check what applies to every artifact before touching any registry: the chain meets the
/// Notary rules and every certificate is valid now; user metadata keys are allowed.
pub fn preflight(signer: &dyn Signer, settings: &SignSettings) -> Result<(), SignSetupError> {
    // Envelope-building signers have no chain up front; each envelope's chain is checked.
    if signer.envelope_generator().is_none() {
        let chain = signer
            .certificate_chain()
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()?;
        validate_chain(&chain, ChainPurpose::CodeSigning, Some(SystemTime::now()))?;
    }
    for key in settings.user_metadata.keys() {
        if key.starts_with("io.cncf.notary") {
            return Err(SignSetupError::UserMetadata(format!(
                "key {key:?} uses the reserved prefix io.cncf.notary"
            )));
        }
        if key.is_empty() {
            return Err(SignSetupError::UserMetadata("empty key".into()));
        }
    }
    if let Some(expiry) = settings.expiry {
        if expiry.as_secs() == 0 {
            return Err(SignSetupError::UserMetadata(
                "expiry must be at least one second".into(),
            ));
        }
    }
    Ok(())
}

/// A target of a signing run: the text the user gave and its parsed form.
#[derive(Debug, Clone)]
pub struct SignTarget {
    pub input: String,
    pub reference: Reference,
    /// Set for the platform manifests a recursive run found in an index.
    pub platform: Option<String>,
}

/// Sign every target concurrently; a failure of one does not stop the others.
/// `on_warning` receives non-fatal notes (e.g. a tag was resolved to a digest).
pub async fn sign_all(
    store: Arc<dyn ArtifactStore>,
    targets: Vec<SignTarget>,
    signer: Arc<dyn Signer>,
    timestamper: Option<Arc<dyn Timestamper>>,
    settings: &SignSettings,
    on_warning: &(dyn Fn(&str) + Sync),
) -> SignReport {
    let leaf = signer
        .certificate_chain()
        .first()
        .and_then(|der| Certificate::from_der(der).ok());
    let signer_subject = leaf.as_ref().map(|c| c.subject()).unwrap_or_default();
    let fingerprint = leaf
        .as_ref()
        .map(|c| c.sha256_fingerprint())
        .unwrap_or_default();
    let keyless_identity = leaf
        .as_ref()
        .and_then(|c| crate::x509::fulcio::keyless_identity(c).ok().flatten());
    let (targets, mut expansion_failures) =
        expand_targets(store.as_ref(), targets, settings, on_warning).await;

    let results: Vec<(usize, Result<SignedArtifact, SignError>)> =
        stream::iter(targets.iter().enumerate())
            .map(|(i, target)| {
                let store = store.clone();
                let signer = signer.clone();
                let timestamper = timestamper.clone();
                let signer_subject = signer_subject.clone();
                let fingerprint = fingerprint.clone();
                let keyless_identity = keyless_identity.clone();
                async move {
                    let outcome = sign_one(
                        store.as_ref(),
                        target,
                        signer.as_ref(),
                        timestamper.as_deref(),
                        settings,
                        on_warning,
                    )
                    .await
                    .map(|(digest, pushed, generated_chain)| {
                        // A generated envelope names its own signer.
                        let leaf = generated_chain
                            .as_ref()
                            .and_then(|c| c.first())
                            .and_then(|der| Certificate::from_der(der).ok());
                        SignedArtifact {
                            reference: target.input.clone(),
                            digest,
                            signature_digest: pushed.manifest.digest,
                            signature_format: settings.format.name().to_string(),
                            storage: pushed.storage,
                            index_retries: pushed.index_retries,
                            platform: target.platform.clone(),
                            signer_subject: leaf.as_ref().map_or(signer_subject, |c| c.subject()),
                            keyless_identity: match &leaf {
                                Some(c) => crate::x509::fulcio::keyless_identity(c).ok().flatten(),
                                None => keyless_identity,
                            },
                            certificate_fingerprint: leaf
                                .as_ref()
                                .map_or(fingerprint, |c| c.sha256_fingerprint()),
                        }
                    });
                    (i, outcome)
                }
            })
            .buffer_unordered(settings.concurrency.max(1))
            .collect()
            .await;

    let mut ordered: Vec<_> = results;
    ordered.sort_by_key(|(i, _)| *i);
    let mut report = SignReport::default();
    for (i, outcome) in ordered {
        match outcome {
            Ok(signed) => report.signatures.push(signed),
            Err(e) => report.failures.push(SignFailure {
                reference: targets[i].input.clone(),
                error: e.to_string(),
            }),
        }
    }
    report.failures.append(&mut expansion_failures);
    report
}

/// Resolve every target once to find image indexes: with `recursive`, an index is followed
/// by a target for each manifest it lists; without, the index alone is signed and a warning
/// says its platform manifests are not. A target whose index cannot be read fails here.
async fn expand_targets(
    store: &dyn ArtifactStore,
    targets: Vec<SignTarget>,
    settings: &SignSettings,
    on_warning: &(dyn Fn(&str) + Sync),
) -> (Vec<SignTarget>, Vec<SignFailure>) {
    let expanded: Vec<Result<Vec<SignTarget>, SignFailure>> = stream::iter(targets)
        .map(|target| async move {
            // Resolution errors are reported by the signing step itself.
            let Ok(descriptor) = store.resolve(&target.reference).await else {
                return Ok(vec![target]);
            };
            if !crate::oci::is_index_type(&descriptor.media_type) {
                return Ok(vec![target]);
            }
            if !settings.recursive {
                on_warning(&format!(
                    "{} is an image index: only the index is signed, not the platform manifests it lists; pass --recursive (action input `recursive: true`) to sign each of them too",
                    target.input
                ));
                return Ok(vec![target]);
            }
            let children =
                match crate::oci::index_children(store, &target.reference, &descriptor).await {
                    Ok(c) => c.unwrap_or_default(),
                    Err(e) => {
                        return Err(SignFailure {
                            reference: target.input.clone(),
                            error: format!("cannot read the image index to sign it recursively: {e}"),
                        })
                    }
                };
            let mut out = vec![target];
            out.extend(children.into_iter().map(|c| SignTarget {
                input: c.reference.to_string(),
                reference: c.reference,
                platform: c.platform,
            }));
            Ok(out)
        })
        .buffered(settings.concurrency.max(1))
        .collect()
        .await;
    let mut targets = Vec::new();
    let mut failures = Vec::new();
    for e in expanded {
        match e {
            Ok(t) => targets.extend(t),
            Err(f) => failures.push(f),
        }
    }
    (targets, failures)
}

async fn sign_one(
    store: &dyn ArtifactStore,
    target: &SignTarget,
    signer: &dyn Signer,
    timestamper: Option<&dyn Timestamper>,
    settings: &SignSettings,
    on_warning: &(dyn Fn(&str) + Sync),
) -> Result<(String, crate::oci::PushedSignature, Option<Vec<Vec<u8>>>), SignError> {
    let descriptor = store.resolve(&target.reference).await?;
    if target.reference.digest.is_none() {
        on_warning(&format!(
            "{}: tag resolved to {}; tags are mutable, sign the digest your build produced to be sure you sign what you built",
            target.input, descriptor.digest
        ));
    }
    let payload = Payload::for_artifact(&descriptor, &settings.user_metadata)?;
    // Whole seconds: both envelope formats carry second precision.
    let signing_time = truncate_to_seconds(SystemTime::now());
    let options = SignOptions {
        payload: payload.to_bytes(),
        signing_time,
        expiry: settings.expiry.map(|d| signing_time + d),
        signing_agent: crate::signing_agent(),
    };
    let (envelope_bytes, chain, mut annotations, generated) = match signer.envelope_generator() {
        None => (
            envelope::sign(settings.format, &options, signer, timestamper).await?,
            signer.certificate_chain().to_vec(),
            BTreeMap::new(),
            false,
        ),
        Some(generator) => {
            if timestamper.is_some() {
                return Err(SignError::GeneratedEnvelope(
                    "a timestamp cannot be added to an envelope the signer built".into(),
                ));
            }
            let generated = generator
                .generate_envelope(
                    settings.format.media_type(),
                    &options.payload,
                    settings.expiry,
                )
                .await
                .map_err(|e| SignError::GeneratedEnvelope(e.to_string()))?;
            let parsed =
                check_generated_envelope(settings.format, &options.payload, &generated.envelope)?;
            (
                generated.envelope,
                parsed.certificate_chain,
                generated.annotations,
                true,
            )
        }
    };

    annotations.insert(
        THUMBPRINT_ANNOTATION.to_string(),
        thumbprint_annotation(&chain),
    );
    annotations.insert(CREATED_ANNOTATION.to_string(), rfc3339_utc(signing_time));
    let pushed = store
        .push_signature(
            &target.reference,
            &descriptor,
            settings.format.media_type(),
            &envelope_bytes,
            annotations,
            settings.manifest_form,
        )
        .await?;
    Ok((descriptor.digest, pushed, generated.then_some(chain)))
}

/// An envelope someone else built must be one we could have built: it parses under the
/// Notary rules, its signature and chain verify (and the chain is valid now), and its payload
/// signs the artifact we asked for with every annotation we asked for.
fn check_generated_envelope(
    format: EnvelopeFormat,
    requested_payload: &[u8],
    bytes: &[u8],
) -> Result<envelope::ParsedEnvelope, SignError> {
    let parsed = envelope::parse(format.media_type(), bytes)?;
    envelope::verify_integrity(&parsed)?;
    let chain = parsed
        .certificate_chain
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SignError::GeneratedEnvelope(e.to_string()))?;
    validate_chain(&chain, ChainPurpose::CodeSigning, Some(SystemTime::now()))
        .map_err(|e| SignError::GeneratedEnvelope(e.to_string()))?;
    let bad = |why: &str| SignError::GeneratedEnvelope(why.to_string());
    let ours: serde_json::Value =
        serde_json::from_slice(requested_payload).map_err(|_| bad("our payload is not JSON"))?;
    let theirs: serde_json::Value =
        serde_json::from_slice(&parsed.payload).map_err(|_| bad("its payload is not JSON"))?;
    let (Some(ours), Some(theirs)) = (ours.as_object(), theirs.as_object()) else {
        return Err(bad("its payload is not a JSON object"));
    };
    if theirs.keys().ne(ours.keys()) {
        return Err(bad("its payload has other members than targetArtifact"));
    }
    let (Some(want), Some(got)) = (
        ours.get("targetArtifact").and_then(|v| v.as_object()),
        theirs.get("targetArtifact").and_then(|v| v.as_object()),
    ) else {
        return Err(bad("its payload has no targetArtifact object"));
    };
    for field in ["mediaType", "digest", "size"] {
        if want.get(field) != got.get(field) {
            return Err(SignError::GeneratedEnvelope(format!(
                "its payload signs another artifact (targetArtifact.{field} differs)"
            )));
        }
    }
    if got
        .keys()
        .any(|k| !want.contains_key(k) && k != "annotations")
    {
        return Err(bad("its targetArtifact gained unknown members"));
    }
    let empty = serde_json::Map::new();
    let want_ann = want
        .get("annotations")
        .and_then(|v| v.as_object())
        .unwrap_or(&empty);
    let got_ann = got.get("annotations").and_then(|v| v.as_object());
    for (k, v) in want_ann {
        if got_ann.and_then(|a| a.get(k)) != Some(v) {
            return Err(SignError::GeneratedEnvelope(format!(
                "its payload dropped or changed the annotation {k:?}"
            )));
        }
    }
    Ok(parsed)
}

/// The `io.cncf.notary.x509chain.thumbprint#S256` value: a JSON array, as a string, of the
/// lowercase SHA-256 fingerprints of the chain, leaf first.
pub fn thumbprint_annotation(chain: &[Vec<u8>]) -> String {
    let prints: Vec<String> = chain.iter().map(|c| crate::crypto::sha256_hex(c)).collect();
    serde_json::to_string(&prints).expect("strings serialise")
}

pub fn truncate_to_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// RFC 3339 UTC with whole seconds, e.g. `2025-01-21T09:17:46Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    dt.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .expect("UTC timestamps format")
}

/// Parse a duration like `30d`, `12h`, `90m`, `45s`, `1w` (one unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("duration {text:?} needs a unit: s, m, h, d or w (e.g. 30d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("duration {text:?} must start with a whole number (e.g. 30d)"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "duration {text:?} has unknown unit {unit:?}: use s, m, h, d or w (e.g. 30d)"
            ))
        }
    };
    let total = n
        .checked_mul(secs)
        .filter(|t| *t > 0 && *t <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("duration {text:?} must be between 1s and 100 years"))?;
    Ok(Duration::from_secs(total))
}

/// Parse `KEY=VALUE` user metadata items; keys under `io.cncf.notary` and duplicates refused.
pub fn parse_user_metadata(items: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for item in items {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("user metadata {item:?} must be KEY=VALUE"))?;
        if key.is_empty() {
            return Err(format!("user metadata {item:?} has an empty key"));
        }
        if key.starts_with("io.cncf.notary") {
            return Err(format!(
                "user metadata key {key:?} is reserved (prefix io.cncf.notary)"
            ));
        }
        if map.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("user metadata key {key:?} given twice"));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("30").unwrap_err().contains("unit"));
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5y").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn metadata() {
        let m = parse_user_metadata(&["a=b".into(), "c=d=e".into()]).unwrap();
        assert_eq!(m["c"], "d=e");
        assert!(parse_user_metadata(&["io.cncf.notary.x=1".into()]).is_err());
        assert!(parse_user_metadata(&["a=1".into(), "a=2".into()]).is_err());
        assert!(parse_user_metadata(&["novalue".into()]).is_err());
    }

    #[test]
    fn rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_737_451_066);
        assert_eq!(rfc3339_utc(t), "2025-01-21T09:17:46Z");
    }

    #[test]
    fn thumbprints_are_lowercase_json() {
        let v = thumbprint_annotation(&[b"a".to_vec()]);
        assert_eq!(
            v,
            "[\"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb\"]"
        );
    }
}
