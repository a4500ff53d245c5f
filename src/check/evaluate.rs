//! Judge the references a scan found: each distinct reference is resolved once, each distinct
//! image (repository and digest) is verified once, concurrently, and every reference gets the
//! verdict of its image.
//!
//! Verification is [`crate::verify::verify_artifact`] itself. To tell "unsigned" from "could
//! not list the signatures" without reading error strings, it runs over a thin store wrapper
//! that answers the already-resolved digest from memory and records what listing the
//! signatures returned.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::{CheckError, ImageRef};
use crate::oci::registry::RegistryError;
use crate::oci::{ArtifactStore, Descriptor, ManifestForm, PushedSignature, Reference, StoreError};
use crate::policy::store::TrustStore;
use crate::policy::TrustPolicyDocument;
use crate::verify::{
    verify_artifact, ArtifactVerification, CheckStatus, EffectivePolicy, Enforcement,
    VerifySettings,
};

/// Why an image could not be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unchecked {
    /// The text is not an image reference.
    InvalidReference,
    /// The repository, tag or manifest does not exist.
    NotFound,
    /// The registry wants credentials we lack, or denies them.
    Unauthorized,
    /// The registry could not be reached.
    Unreachable,
    /// No trust policy statement covers the repository.
    NoTrustPolicy,
    /// Anything else the registry answered.
    RegistryError,
}

impl Unchecked {
    fn describe(self) -> &'static str {
        match self {
            Unchecked::InvalidReference => "not a valid image reference",
            Unchecked::NotFound => "the image was not found in the registry",
            Unchecked::Unauthorized => "the registry refused access",
            Unchecked::Unreachable => "the registry could not be reached",
            Unchecked::NoTrustPolicy => "no trust policy statement covers this repository",
            Unchecked::RegistryError => "the registry answered with an error",
        }
    }

    fn of(e: &StoreError) -> Unchecked {
        match e {
            StoreError::Reference(_) => Unchecked::InvalidReference,
            StoreError::Registry(RegistryError::NotFound { .. }) => Unchecked::NotFound,
            StoreError::Registry(
                RegistryError::Unauthorized { .. } | RegistryError::Denied { .. },
            ) => Unchecked::Unauthorized,
            StoreError::Registry(
                RegistryError::Connect { .. } | RegistryError::PlainHttpRefused { .. },
            ) => Unchecked::Unreachable,
            _ => Unchecked::RegistryError,
        }
    }
}

/// The verdict for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Verdict {
    /// A signature passed the trust policy (or the policy skips verification).
    SignedTrusted {
        /// Subject of the signing certificate; None when the policy skips verification.
        #[serde(skip_serializing_if = "Option::is_none")]
        signer: Option<String>,
    },
    /// Signatures exist, none passed.
    SignedUntrusted {
        /// The enforced check that failed on the first signature (`authenticity`, …).
        check: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        signer: Option<String>,
        detail: String,
    },
    /// No Notary signature refers to the image.
    Unsigned,
    /// Nothing could be said about the image.
    CouldNotCheck { reason: Unchecked, detail: String },
}

impl Verdict {
    /// Short name: `signed-trusted`, `signed-untrusted`, `unsigned`, `could-not-check`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::SignedTrusted { .. } => "signed-trusted",
            Verdict::SignedUntrusted { .. } => "signed-untrusted",
            Verdict::Unsigned => "unsigned",
            Verdict::CouldNotCheck { .. } => "could-not-check",
        }
    }

    /// A title for an annotation.
    pub fn title(&self) -> &'static str {
        match self {
            Verdict::SignedTrusted { .. } => "Signed and trusted image",
            Verdict::SignedUntrusted { .. } => "Image signature not trusted",
            Verdict::Unsigned => "Unsigned image",
            Verdict::CouldNotCheck { .. } => "Image could not be checked",
        }
    }

    /// One sentence saying what was found about `reference` (resolved to `digest`).
    pub fn message(&self, reference: &str, digest: Option<&str>) -> String {
        let at = digest.map(|d| format!(" ({d})")).unwrap_or_default();
        match self {
            Verdict::SignedTrusted { signer: Some(s) } => {
                format!("{reference}{at} is signed by {s:?} and the signature passes the trust policy")
            }
            Verdict::SignedTrusted { signer: None } => {
                format!("{reference}{at} is accepted: its trust policy skips signature verification")
            }
            Verdict::SignedUntrusted {
                check,
                signer,
                detail,
            } => format!(
                "{reference}{at} is signed{}, but the signature is not trusted: {check} validation failed: {detail}",
                signer
                    .as_ref()
                    .map(|s| format!(" by {s:?}"))
                    .unwrap_or_default()
            ),
            Verdict::Unsigned => format!(
                "{reference}{at} is unsigned: no Notary signature refers to it; sign it before deploying"
            ),
            Verdict::CouldNotCheck { reason, detail } => {
                format!("{reference}{at} could not be checked: {}: {detail}", reason.describe())
            }
        }
    }
}

/// Which verdicts fail the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailOn {
    /// Only unsigned images.
    Unsigned,
    /// Unsigned images and images whose signatures are not trusted.
    Untrusted,
    /// Anything but signed-and-trusted, including images that could not be checked (fail
    /// closed: an image we could not judge is not known to be safe).
    #[default]
    Any,
    /// Report only.
    None,
}

impl FailOn {
    pub fn parse(s: &str) -> Option<FailOn> {
        match s.trim() {
            "unsigned" => Some(FailOn::Unsigned),
            "untrusted" => Some(FailOn::Untrusted),
            "any" => Some(FailOn::Any),
            "none" => Some(FailOn::None),
            _ => None,
        }
    }

    pub fn fails(self, verdict: &Verdict) -> bool {
        match (self, verdict) {
            (_, Verdict::SignedTrusted { .. }) | (FailOn::None, _) => false,
            (FailOn::Any, _) => true,
            (FailOn::Untrusted, v) => {
                matches!(v, Verdict::Unsigned | Verdict::SignedUntrusted { .. })
            }
            (FailOn::Unsigned, v) => matches!(v, Verdict::Unsigned),
        }
    }
}

/// One distinct reference and what was found about it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageResult {
    /// Normalised (`docker.io/library/nginx:latest`), or as written when it does not parse.
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub warnings: Vec<String>,
}

/// One place a reference was written, with the index of its [`ImageResult`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RefResult {
    #[serde(flatten)]
    pub location: ImageRef,
    /// Index into [`Evaluation::images`].
    pub image: usize,
}

/// The outcome of a check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Evaluation {
    pub images: Vec<ImageResult>,
    pub references: Vec<RefResult>,
    /// Distinct references resolved (one registry round each).
    pub resolved: usize,
    /// Distinct images (repository and digest) verified.
    pub verified: usize,
}

impl Evaluation {
    pub fn image_of(&self, r: &RefResult) -> &ImageResult {
        &self.images[r.image]
    }
}

/// A reference as the registry sees it: a bare name means `:latest`, as docker pulls it.
pub fn normalise(text: &str) -> Result<Reference, StoreError> {
    let mut r = Reference::parse(text)?;
    if r.tag.is_none() && r.digest.is_none() {
        r.tag = Some("latest".to_string());
    }
    Ok(r)
}

/// Resolve, verify and judge every reference. Errors are configuration errors (an unreadable
/// trust store); everything about an image is in its verdict.
pub async fn evaluate(
    store: Arc<dyn ArtifactStore>,
    references: Vec<ImageRef>,
    policy: &TrustPolicyDocument,
    trust_store: &TrustStore,
    settings: &VerifySettings,
    concurrency: usize,
) -> Result<Evaluation, CheckError> {
    let concurrency = concurrency.max(1);
    // Distinct references, in first-seen order.
    let mut keys: Vec<String> = Vec::new();
    let mut key_index: HashMap<String, usize> = HashMap::new();
    let mut parsed: Vec<Result<Reference, StoreError>> = Vec::new();
    let mut ref_results = Vec::with_capacity(references.len());
    for location in references {
        let parsed_ref = normalise(&location.reference);
        let key = match &parsed_ref {
            Ok(r) => r.to_string(),
            Err(_) => location.reference.clone(),
        };
        let index = *key_index.entry(key.clone()).or_insert_with(|| {
            keys.push(key.clone());
            parsed.push(parsed_ref);
            keys.len() - 1
        });
        ref_results.push(RefResult {
            location,
            image: index,
        });
    }

    // Resolve each distinct reference once.
    let resolutions: Vec<Result<Descriptor, StoreError>> = stream::iter(parsed.iter().map(|p| {
        let store = store.clone();
        async move {
            match p {
                Ok(r) => store.resolve(r).await,
                Err(e) => Err(StoreError::Manifest(e.to_string())),
            }
        }
    }))
    .buffered(concurrency)
    .collect()
    .await;
    let resolved = parsed.iter().filter(|p| p.is_ok()).count();

    let mut images: Vec<ImageResult> = Vec::with_capacity(keys.len());
    let mut descriptors: Vec<Option<Descriptor>> = Vec::with_capacity(keys.len());
    // Distinct images to verify: (repository, digest) → indices of the references.
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, ((key, p), resolution)) in keys.iter().zip(&parsed).zip(resolutions).enumerate() {
        let mut result = ImageResult {
            reference: key.clone(),
            digest: None,
            verdict: Verdict::Unsigned,
            policy: None,
            warnings: Vec::new(),
        };
        match (p, resolution) {
            (Err(e), _) => {
                result.verdict = Verdict::CouldNotCheck {
                    reason: Unchecked::InvalidReference,
                    detail: e.to_string(),
                };
            }
            (Ok(_), Err(e)) => {
                result.verdict = Verdict::CouldNotCheck {
                    reason: Unchecked::of(&e),
                    detail: e.to_string(),
                };
            }
            (Ok(r), Ok(descriptor)) => {
                result.digest = Some(descriptor.digest.clone());
                groups
                    .entry((
                        r.fully_qualified_without_digest(),
                        descriptor.digest.clone(),
                    ))
                    .or_default()
                    .push(i);
                descriptors.push(Some(descriptor));
                images.push(result);
                continue;
            }
        }
        descriptors.push(None);
        images.push(result);
    }

    // The policy of each group, statements resolved once.
    let mut policies: HashMap<String, Arc<EffectivePolicy>> = HashMap::new();
    let mut jobs: Vec<(Vec<usize>, Reference, Descriptor, Arc<EffectivePolicy>)> = Vec::new();
    for ((scope, digest), members) in groups {
        let statement = match policy.select(&scope) {
            Ok(s) => s,
            Err(e) => {
                for &m in &members {
                    images[m].verdict = Verdict::CouldNotCheck {
                        reason: Unchecked::NoTrustPolicy,
                        detail: e.to_string(),
                    };
                }
                continue;
            }
        };
        let effective = match policies.get(&statement.name) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(
                    EffectivePolicy::from_statement(statement, trust_store).map_err(|source| {
                        CheckError::TrustStore {
                            statement: statement.name.clone(),
                            source,
                        }
                    })?,
                );
                policies.insert(statement.name.clone(), p.clone());
                p
            }
        };
        let first = parsed[members[0]]
            .as_ref()
            .expect("grouped only when parsed");
        let pinned = first.with_digest(&digest);
        let descriptor = descriptors[members[0]]
            .clone()
            .expect("grouped only when resolved");
        jobs.push((members, pinned, descriptor, effective));
    }

    let verified = jobs.len();
    let outcomes: Vec<(Vec<usize>, ArtifactVerification, Listing)> = stream::iter(
        jobs.into_iter()
            .map(|(members, pinned, descriptor, policy)| {
                let store = store.clone();
                async move {
                    let probe = Probe {
                        inner: store,
                        pinned: pinned.clone(),
                        descriptor,
                        listing: Mutex::new(Listing::NotListed),
                    };
                    let result =
                        verify_artifact(&probe, &pinned.to_string(), &pinned, &policy, settings)
                            .await;
                    let listing = probe
                        .listing
                        .into_inner()
                        .unwrap_or_else(|e| e.into_inner());
                    (members, result, listing)
                }
            }),
    )
    .buffer_unordered(concurrency)
    .collect()
    .await;

    for (members, result, listing) in outcomes {
        let verdict = judge(&result, &listing);
        for m in members {
            let image = &mut images[m];
            image.verdict = verdict.clone();
            image.policy = result.policy.clone();
            image.warnings = result
                .warnings
                .iter()
                .filter(|w| !w.starts_with("tag resolved to"))
                .cloned()
                .collect();
            if parsed[m].as_ref().is_ok_and(|r| r.digest.is_none()) {
                image.warnings.push(format!(
                    "tag resolved to {}; pin the digest to deploy exactly what was checked",
                    image.digest.as_deref().unwrap_or("?")
                ));
            }
        }
    }

    Ok(Evaluation {
        images,
        references: ref_results,
        resolved,
        verified,
    })
}

/// What listing the signatures gave.
#[derive(Debug)]
enum Listing {
    NotListed,
    Listed(usize),
    Failed(Unchecked, String),
}

fn judge(result: &ArtifactVerification, listing: &Listing) -> Verdict {
    if result.verified {
        return Verdict::SignedTrusted {
            signer: result
                .signature
                .as_ref()
                .and_then(|s| s.signer_subject.clone()),
        };
    }
    match listing {
        Listing::Failed(reason, detail) => {
            return Verdict::CouldNotCheck {
                reason: *reason,
                detail: detail.clone(),
            }
        }
        Listing::Listed(0) => return Verdict::Unsigned,
        _ => {}
    }
    if let Some(first) = result.failed_signatures.first() {
        let failed = first
            .checks
            .iter()
            .find(|c| c.status == CheckStatus::Failed && c.enforcement == Enforcement::Enforced);
        let (check, detail) = match failed {
            Some(c) => (
                c.check.to_string(),
                c.detail.clone().unwrap_or_else(|| "failed".into()),
            ),
            None => (
                "signature".to_string(),
                first
                    .failure
                    .clone()
                    .unwrap_or_else(|| "the signature could not be verified".into()),
            ),
        };
        return Verdict::SignedUntrusted {
            check,
            signer: first.signer_subject.clone(),
            detail,
        };
    }
    Verdict::CouldNotCheck {
        reason: Unchecked::RegistryError,
        detail: result
            .error
            .clone()
            .unwrap_or_else(|| "verification failed".into()),
    }
}

/// The store as verification sees it: the pinned reference resolves from memory, and the
/// outcome of listing signatures is recorded.
struct Probe {
    inner: Arc<dyn ArtifactStore>,
    pinned: Reference,
    descriptor: Descriptor,
    listing: Mutex<Listing>,
}

#[async_trait]
impl ArtifactStore for Probe {
    async fn resolve(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        if *reference == self.pinned {
            return Ok(self.descriptor.clone());
        }
        self.inner.resolve(reference).await
    }

    async fn push_signature(
        &self,
        reference: &Reference,
        subject: &Descriptor,
        envelope_media_type: &str,
        envelope: &[u8],
        annotations: BTreeMap<String, String>,
        form: ManifestForm,
    ) -> Result<PushedSignature, StoreError> {
        self.inner
            .push_signature(
                reference,
                subject,
                envelope_media_type,
                envelope,
                annotations,
                form,
            )
            .await
    }

    async fn list_signatures(
        &self,
        reference: &Reference,
        subject: &Descriptor,
    ) -> Result<Vec<Descriptor>, StoreError> {
        let result = self.inner.list_signatures(reference, subject).await;
        let listing = match &result {
            Ok(list) => Listing::Listed(list.len()),
            Err(e) => Listing::Failed(Unchecked::of(e), e.to_string()),
        };
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = listing;
        result
    }

    async fn fetch_manifest(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
    ) -> Result<Vec<u8>, StoreError> {
        self.inner.fetch_manifest(reference, descriptor).await
    }

    async fn fetch_blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        max_bytes: u64,
    ) -> Result<Vec<u8>, StoreError> {
        self.inner
            .fetch_blob(reference, descriptor, max_bytes)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_levels() {
        let trusted = Verdict::SignedTrusted { signer: None };
        let untrusted = Verdict::SignedUntrusted {
            check: "authenticity".into(),
            signer: None,
            detail: "x".into(),
        };
        let unchecked = Verdict::CouldNotCheck {
            reason: Unchecked::Unreachable,
            detail: "x".into(),
        };
        let all = [&trusted, &untrusted, &Verdict::Unsigned, &unchecked];
        let fails = |f: FailOn| all.iter().map(|v| f.fails(v)).collect::<Vec<_>>();
        assert_eq!(fails(FailOn::Any), [false, true, true, true]);
        assert_eq!(fails(FailOn::Untrusted), [false, true, true, false]);
        assert_eq!(fails(FailOn::Unsigned), [false, false, true, false]);
        assert_eq!(fails(FailOn::None), [false, false, false, false]);
        assert_eq!(FailOn::default(), FailOn::Any);
        assert_eq!(FailOn::parse(" untrusted "), Some(FailOn::Untrusted));
        assert_eq!(FailOn::parse("all"), None);
    }

    #[test]
    fn every_verdict_says_something_different() {
        let verdicts = [
            Verdict::SignedTrusted {
                signer: Some("CN=a".into()),
            },
            Verdict::SignedUntrusted {
                check: "authenticity".into(),
                signer: Some("CN=b".into()),
                detail: "not in the trust store".into(),
            },
            Verdict::Unsigned,
            Verdict::CouldNotCheck {
                reason: Unchecked::NotFound,
                detail: "404".into(),
            },
        ];
        let messages: Vec<String> = verdicts
            .iter()
            .map(|v| v.message("r/x:1", Some("sha256:ab")))
            .collect();
        assert!(messages[0].contains("CN=a") && messages[0].contains("passes"));
        assert!(messages[1].contains("authenticity validation failed"));
        assert!(messages[2].contains("unsigned"));
        assert!(messages[3].contains("not found"));
        let names: std::collections::BTreeSet<_> = verdicts.iter().map(|v| v.name()).collect();
        assert_eq!(names.len(), 4);
    }

    #[test]
    fn bare_names_mean_latest() {
        assert_eq!(
            normalise("nginx").unwrap().to_string(),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            normalise("ghcr.io/a/b:1").unwrap().to_string(),
            "ghcr.io/a/b:1"
        );
        assert!(normalise("Not A Ref").is_err());
    }
}
