//! OCI: references, descriptors and manifests, and the two artifact stores a signature can
//! live in — a registry (distribution-spec 1.1) and an OCI image layout on disk.

pub mod layout;
pub mod manifest;
pub mod reference;
pub mod registry;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use manifest::{ManifestForm, SIGNATURE_ARTIFACT_TYPE};
pub use reference::{Reference, ReferenceError};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Size bounds for what we read (digest §1).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
pub const MAX_ENVELOPE_BYTES: u64 = 32 * 1024 * 1024;

/// An OCI content descriptor. Field order is the serialisation order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: impl Into<String>, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest: digest.into(),
            size,
            annotations: None,
            artifact_type: None,
        }
    }

    /// Descriptor of `bytes` with a sha256 digest.
    pub fn of_bytes(media_type: impl Into<String>, bytes: &[u8]) -> Self {
        Descriptor::new(
            media_type,
            format!("sha256:{}", crate::crypto::sha256_hex(bytes)),
            bytes.len() as u64,
        )
    }
}

/// Where a signature was stored, as reported to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Storage {
    /// The registry processed `subject` (answered `OCI-Subject`): found by the Referrers API.
    ReferrersApi,
    /// We maintained the `sha256-<hex>` referrers tag schema index.
    TagSchema,
    /// Stored in an OCI image layout on disk.
    OciLayout,
}

impl Storage {
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::ReferrersApi => "referrers-api",
            Storage::TagSchema => "tag-schema",
            Storage::OciLayout => "oci-layout",
        }
    }
}

/// A signature manifest that was pushed.
#[derive(Debug, Clone)]
pub struct PushedSignature {
    pub manifest: Descriptor,
    pub storage: Storage,
    /// Times the tag-schema index read-merge-write started over because a concurrent writer
    /// got in between (a 412 on `If-Match`, or our entry missing on read-back).
    pub index_retries: u32,
}

/// Errors from either store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{0}")]
    Registry(#[from] registry::RegistryError),
    #[error("{0}")]
    Layout(#[from] layout::LayoutError),
    #[error("invalid manifest: {0}")]
    Manifest(String),
    #[error("{0}")]
    Content(#[from] ContentError),
}

/// Fetched content that does not match the descriptor it was fetched by.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    #[error("content {digest} has {actual} bytes but its descriptor says {expected}: refusing it")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("content fetched as {expected} hashes to {actual}: refusing it (tampered or corrupt)")]
    DigestMismatch { expected: String, actual: String },
    #[error("{0}")]
    BadDigest(String),
}

/// The digest of `bytes` with the algorithm named in `like` (`sha256:…`, `sha384:…`, `sha512:…`).
pub fn digest_like(like: &str, bytes: &[u8]) -> Result<String, ContentError> {
    reference::validate_digest(like).map_err(ContentError::BadDigest)?;
    let (alg, _) = like.split_once(':').unwrap_or(("sha256", ""));
    let hash = match alg {
        "sha384" => crate::crypto::HashAlgorithm::Sha384,
        "sha512" => crate::crypto::HashAlgorithm::Sha512,
        _ => crate::crypto::HashAlgorithm::Sha256,
    };
    Ok(format!("{alg}:{}", hex::encode(hash.digest(bytes))))
}

/// Check `bytes` against the descriptor's size and digest.
pub fn verify_content(descriptor: &Descriptor, bytes: &[u8]) -> Result<(), ContentError> {
    if bytes.len() as u64 != descriptor.size {
        return Err(ContentError::SizeMismatch {
            digest: descriptor.digest.clone(),
            expected: descriptor.size,
            actual: bytes.len() as u64,
        });
    }
    let actual = digest_like(&descriptor.digest, bytes)?;
    if actual != descriptor.digest {
        return Err(ContentError::DigestMismatch {
            expected: descriptor.digest.clone(),
            actual,
        });
    }
    Ok(())
}

/// Open the one store `references` live in and parse them: registry references
/// (`host/repo[:tag][@digest]`) with a [`registry::RegistryClient`] built from `options`, or,
/// with `oci_layout`, `path[:tag|@digest]` references into a single OCI image layout.
pub fn open_store(
    options: registry::RegistryOptions,
    oci_layout: bool,
    references: &[String],
) -> Result<(std::sync::Arc<dyn ArtifactStore>, Vec<Reference>), StoreError> {
    if !oci_layout {
        let refs = references
            .iter()
            .map(|r| Reference::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let client = registry::RegistryClient::new(options)?;
        return Ok((std::sync::Arc::new(client), refs));
    }
    let mut parsed = Vec::new();
    for r in references {
        parsed.push(layout::parse_layout_reference(r)?);
    }
    let Some((first, _)) = parsed.first() else {
        return Err(StoreError::Manifest("no reference given".into()));
    };
    let first = first.clone();
    if let Some((other, _)) = parsed.iter().find(|(p, _)| *p != first) {
        return Err(layout::LayoutError::Other {
            path: other.display().to_string(),
            message: format!(
                "all references must be in one OCI layout (the first is {})",
                first.display()
            ),
        }
        .into());
    }
    let store = layout::OciLayoutStore::open(first)?;
    Ok((
        std::sync::Arc::new(store),
        parsed.into_iter().map(|(_, r)| r).collect(),
    ))
}

/// A place artifacts and their signatures live.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Resolve a reference to the exact descriptor (mediaType, digest, size) of its manifest.
    /// A tag is resolved to a digest; when both are given the digest wins and must match.
    async fn resolve(&self, reference: &Reference) -> Result<Descriptor, StoreError>;

    /// Push the envelope as a signature of `subject` (blobs, then manifest, then the referrers
    /// tag schema index when needed).
    async fn push_signature(
        &self,
        reference: &Reference,
        subject: &Descriptor,
        envelope_media_type: &str,
        envelope: &[u8],
        annotations: BTreeMap<String, String>,
        form: ManifestForm,
    ) -> Result<PushedSignature, StoreError>;

    /// Descriptors of Notary signature manifests that refer to `subject`, in discovery order.
    async fn list_signatures(
        &self,
        reference: &Reference,
        subject: &Descriptor,
    ) -> Result<Vec<Descriptor>, StoreError>;

    /// A manifest's bytes, checked against the descriptor's digest and size (≤ 4 MiB).
    async fn fetch_manifest(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
    ) -> Result<Vec<u8>, StoreError>;

    /// A blob's bytes, checked against digest and size, refused above `max_bytes`.
    async fn fetch_blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        max_bytes: u64,
    ) -> Result<Vec<u8>, StoreError>;
}

/// Is this media type an image index (OCI) or manifest list (Docker)?
pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// One manifest an image index lists, with its platform (`os/arch[/variant]`) when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexChild {
    pub reference: Reference,
    pub descriptor: Descriptor,
    pub platform: Option<String>,
}

/// The manifests an image index lists, as digest references in the index's repository, in
/// index order and without duplicates. `Ok(None)` when `descriptor` is not an index.
pub async fn index_children(
    store: &dyn ArtifactStore,
    reference: &Reference,
    descriptor: &Descriptor,
) -> Result<Option<Vec<IndexChild>>, StoreError> {
    if !is_index_type(&descriptor.media_type) {
        return Ok(None);
    }
    let bytes = store.fetch_manifest(reference, descriptor).await?;
    parse_index_children(reference, &bytes).map(Some)
}

/// Parse an index's `manifests` into children (see [`index_children`]). Entries whose digest
/// is malformed are refused rather than skipped: a signer must not silently miss a platform.
pub fn parse_index_children(
    reference: &Reference,
    index_bytes: &[u8],
) -> Result<Vec<IndexChild>, StoreError> {
    #[derive(Deserialize)]
    struct Platform {
        os: String,
        architecture: String,
        #[serde(default)]
        variant: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry {
        #[serde(flatten)]
        descriptor: Descriptor,
        #[serde(default)]
        platform: Option<Platform>,
    }
    #[derive(Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Entry>,
    }
    let index: Index = serde_json::from_slice(index_bytes)
        .map_err(|e| StoreError::Manifest(format!("image index {reference}: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for entry in index.manifests {
        reference::validate_digest(&entry.descriptor.digest).map_err(|e| {
            StoreError::Manifest(format!("image index {reference} lists a bad digest: {e}"))
        })?;
        if !seen.insert(entry.descriptor.digest.clone()) {
            continue;
        }
        let platform = entry.platform.map(|p| match p.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
            _ => format!("{}/{}", p.os, p.architecture),
        });
        let mut child_ref = reference.clone();
        child_ref.tag = None;
        child_ref.digest = Some(entry.descriptor.digest.clone());
        out.push(IndexChild {
            reference: child_ref,
            descriptor: Descriptor::new(
                entry.descriptor.media_type,
                entry.descriptor.digest,
                entry.descriptor.size,
            ),
            platform,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn index_children_carry_platform_and_digest_references() {
        let parent = Reference::parse("127.0.0.1:5000/app:multi").unwrap();
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{A}","size":10,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{B}","size":11}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{A}","size":10,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}
            ]}}"#
        );
        let children = parse_index_children(&parent, index.as_bytes()).unwrap();
        assert_eq!(children.len(), 2, "duplicates listed once");
        assert_eq!(children[0].platform.as_deref(), Some("linux/arm64/v8"));
        assert_eq!(
            children[0].reference.to_string(),
            format!("127.0.0.1:5000/app@{A}")
        );
        assert_eq!(children[0].descriptor, Descriptor::new(OCI_MANIFEST, A, 10));
        assert_eq!(children[1].platform, None);
        assert_eq!(children[1].reference.tag, None);

        let bad =
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:zz","size":1}]}"#;
        assert!(parse_index_children(&parent, bad.as_bytes()).is_err());
        assert!(parse_index_children(&parent, b"<html>").is_err());
        assert!(is_index_type(OCI_INDEX) && is_index_type(DOCKER_MANIFEST_LIST));
        assert!(!is_index_type(OCI_MANIFEST));
    }
}
