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

/// Legacy `application/vnd.oci.artifact.manifest.v1+json` (withdrawn; read-only support).
pub const ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";

/// Annotation naming a tag in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Build the Notary signature manifest for an envelope blob (digest §1).
pub fn signature_manifest(
    subject: &Descriptor,
    envelope: Descriptor,
    annotations: BTreeMap<String, String>,
    form: ManifestForm,
) -> ImageManifest {
    let (artifact_type, config_type) = match form {
        ManifestForm::Legacy => (None, SIGNATURE_ARTIFACT_TYPE),
        ManifestForm::ArtifactType => (
            Some(SIGNATURE_ARTIFACT_TYPE.to_string()),
            EMPTY_CONFIG_MEDIA_TYPE,
        ),
    };
    ImageManifest {
        schema_version: 2,
        media_type: Some(super::OCI_MANIFEST.to_string()),
        artifact_type,
        config: Descriptor::new(config_type, EMPTY_CONFIG_DIGEST, EMPTY_CONFIG.len() as u64),
        layers: vec![envelope],
        // Only the identifying fields: a subject's own annotations are not ours to copy.
        subject: Some(Descriptor::new(
            subject.media_type.clone(),
            subject.digest.clone(),
            subject.size,
        )),
        annotations: if annotations.is_empty() {
            None
        } else {
            Some(annotations)
        },
    }
}

impl ImageManifest {
    /// `artifactType`, else `config.mediaType`: what the referrers API reports for a manifest.
    pub fn effective_artifact_type(&self) -> &str {
        self.artifact_type
            .as_deref()
            .unwrap_or(self.config.media_type.as_str())
    }

    /// True for both Notary signature manifest forms.
    pub fn is_notary_signature(&self) -> bool {
        self.effective_artifact_type() == SIGNATURE_ARTIFACT_TYPE
    }

    /// The descriptor an index (referrers response, tag schema) lists for this manifest.
    pub fn index_entry(&self, media_type: &str, digest: &str, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            annotations: self.annotations.clone(),
            artifact_type: Some(self.effective_artifact_type().to_string()),
        }
    }
}

/// The referrers tag schema tag for a subject digest: `<alg>-<ref>`, ref truncated to 64.
pub fn referrers_tag(subject_digest: &str) -> String {
    let (alg, hex) = subject_digest
        .split_once(':')
        .unwrap_or(("sha256", subject_digest));
    let hex = &hex[..hex.len().min(64)];
    format!("{alg}-{hex}")
}

/// Add `entry` to the image index `existing` (absent: a new empty index), keeping every
/// existing entry byte-for-byte as JSON values (fields we do not model, such as `platform`,
/// survive). Returns `None` when an entry with the same digest is already listed.
pub fn merge_index_entry(
    existing: Option<&[u8]>,
    entry: &Descriptor,
) -> Result<Option<Vec<u8>>, String> {
    let mut doc: serde_json::Value = match existing {
        Some(bytes) => serde_json::from_slice(bytes)
            .map_err(|e| format!("the existing referrers index is not JSON: {e}"))?,
        None => serde_json::to_value(ImageIndex::empty()).map_err(|e| e.to_string())?,
    };
    let obj = doc
        .as_object_mut()
        .ok_or("the existing referrers index is not a JSON object")?;
    obj.entry("schemaVersion")
        .or_insert_with(|| serde_json::Value::from(2));
    obj.entry("mediaType")
        .or_insert_with(|| serde_json::Value::from(super::OCI_INDEX));
    let manifests = obj
        .entry("manifests")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or("the existing referrers index has a non-array `manifests`")?;
    if manifests
        .iter()
        .any(|m| m.get("digest").and_then(|d| d.as_str()) == Some(entry.digest.as_str()))
    {
        return Ok(None);
    }
    manifests.push(serde_json::to_value(entry).map_err(|e| e.to_string())?);
    serde_json::to_vec(&doc)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Does the image index JSON list `digest`?
pub fn index_lists(index: &[u8], digest: &str) -> bool {
    serde_json::from_slice::<ImageIndex>(index)
        .map(|i| i.manifests.iter().any(|m| m.digest == digest))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Descriptor {
        Descriptor::new(
            super::super::OCI_MANIFEST,
            "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
            517,
        )
    }

    #[test]
    fn legacy_manifest_matches_notation_bytes() {
        // The e2e-valid-signature vector's signature manifest, rebuilt field by field.
        let env = Descriptor::new(
            "application/jose+json",
            "sha256:c9af07e038b2b1a463e648986ad7273157511ffeba0b689f33e5472bae471f50",
            2070,
        );
        let mut ann = BTreeMap::new();
        ann.insert(
            THUMBPRINT_ANNOTATION.to_string(),
            "[\"e38aea13f2b051f7183cca64a51ee676f4d4456f41d9fecf15eb367efc7343b9\"]".to_string(),
        );
        ann.insert(
            CREATED_ANNOTATION.to_string(),
            "2023-06-27T05:30:33Z".to_string(),
        );
        let m = signature_manifest(&subject(), env, ann, ManifestForm::Legacy);
        let bytes = serde_json::to_vec(&m).unwrap();
        // Copied from vectors/oci-layouts/e2e-valid-signature (blob sha256:90ceaff2…).
        let want = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.notary.signature","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/jose+json","digest":"sha256:c9af07e038b2b1a463e648986ad7273157511ffeba0b689f33e5472bae471f50","size":2070}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9","size":517},"annotations":{"io.cncf.notary.x509chain.thumbprint#S256":"[\"e38aea13f2b051f7183cca64a51ee676f4d4456f41d9fecf15eb367efc7343b9\"]","org.opencontainers.image.created":"2023-06-27T05:30:33Z"}}"#;
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), want);
        assert_eq!(
            crate::crypto::sha256_hex(&bytes),
            "90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"
        );
        assert!(m.is_notary_signature());
    }

    #[test]
    fn artifact_type_form() {
        let env = Descriptor::new(
            "application/cose",
            "sha256:".to_string() + &"1".repeat(64),
            9,
        );
        let m = signature_manifest(&subject(), env, BTreeMap::new(), ManifestForm::ArtifactType);
        assert_eq!(m.artifact_type.as_deref(), Some(SIGNATURE_ARTIFACT_TYPE));
        assert_eq!(m.config.media_type, EMPTY_CONFIG_MEDIA_TYPE);
        assert!(m.is_notary_signature());
        let e = m.index_entry(super::super::OCI_MANIFEST, "sha256:x", 1);
        assert_eq!(e.artifact_type.as_deref(), Some(SIGNATURE_ARTIFACT_TYPE));
    }

    #[test]
    fn tag_schema_tag() {
        assert_eq!(
            referrers_tag(&subject().digest),
            "sha256-b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
        );
        let long = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(referrers_tag(&long), format!("sha512-{}", "ab".repeat(32)));
    }

    #[test]
    fn merge_keeps_foreign_fields_and_dedupes() {
        let foreign = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":3,"platform":{"os":"linux"}}]}"#;
        let mut e = Descriptor::new(super::super::OCI_MANIFEST, "sha256:bb", 5);
        e.artifact_type = Some(SIGNATURE_ARTIFACT_TYPE.into());
        let merged = merge_index_entry(Some(foreign), &e).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&merged).unwrap();
        assert_eq!(v["manifests"][0]["platform"]["os"], "linux");
        assert_eq!(v["manifests"][1]["digest"], "sha256:bb");
        assert_eq!(v["manifests"][1]["artifactType"], SIGNATURE_ARTIFACT_TYPE);
        assert!(index_lists(&merged, "sha256:bb"));
        assert!(merge_index_entry(Some(&merged), &e).unwrap().is_none());
        let fresh = merge_index_entry(None, &e).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&fresh).unwrap();
        assert_eq!(v["mediaType"], super::super::OCI_INDEX);
        assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
        assert!(merge_index_entry(Some(b"[1]"), &e).is_err());
    }
}
