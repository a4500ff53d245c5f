//! Image manifests and indexes, and the Notary signature manifest (digest §1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Descriptor;

pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.cncf.notary.signature";
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
pub const EMPTY_CONFIG: &[u8] = b"{}";
pub const THUMBPRINT_ANNOTATION: &str = "io.cncf.notary.x509chain.thumbprint#S256";
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// Which signature manifest shape to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestForm {
    /// `config.mediaType = application/vnd.cncf.notary.signature`, no `artifactType`: what
    /// notation v1.x writes and every verifier reads.
    #[default]
    Legacy,
    /// OCI 1.1: `artifactType = application/vnd.cncf.notary.signature`, empty config.
    ArtifactType,
}

/// An OCI image manifest (also used for signature manifests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image index (also the referrers response and tag-schema document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageIndex {
    pub fn empty() -> Self {
        ImageIndex {
            schema_version: 2,
            media_type: Some(super::OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: None,
        }
    }
}
