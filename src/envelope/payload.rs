//! The Notary payload: `{"targetArtifact": <descriptor>}` (digest §2).
//!
//! The payload is the signed content. It is written once (`to_bytes`) and, when verifying,
//! parsed from the exact bytes the signature covers; it is never re-serialised for a check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::EnvelopeError;
use crate::oci::Descriptor;

/// Annotation and user-metadata key prefix reserved by the Notary Project.
const RESERVED_PREFIX: &str = "io.cncf.notary";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub target_artifact: Descriptor,
}

impl Payload {
    /// The payload notation signs for `descriptor`: only mediaType, digest, size and
    /// annotations are kept (artifactType and anything else is dropped), and `user_metadata`
    /// is merged into the annotations. Metadata keys in the reserved `io.cncf.notary`
    /// namespace, or equal to an annotation the descriptor already has, are refused.
    pub fn for_artifact(
        descriptor: &Descriptor,
        user_metadata: &BTreeMap<String, String>,
    ) -> Result<Payload, EnvelopeError> {
        let mut annotations = descriptor.annotations.clone().unwrap_or_default();
        for (key, value) in user_metadata {
            if key.starts_with(RESERVED_PREFIX) {
                return Err(EnvelopeError::Payload(format!(
                    "user metadata key {key:?} uses the reserved {RESERVED_PREFIX:?} prefix; choose another key"
                )));
            }
            if annotations.contains_key(key) {
                return Err(EnvelopeError::Payload(format!(
                    "user metadata key {key:?} collides with an annotation of the artifact's descriptor; choose another key"
                )));
            }
            annotations.insert(key.clone(), value.clone());
        }
        Ok(Payload {
            target_artifact: Descriptor {
                media_type: descriptor.media_type.clone(),
                digest: descriptor.digest.clone(),
                size: descriptor.size,
                annotations: if annotations.is_empty() {
                    None
                } else {
                    Some(annotations)
                },
                artifact_type: None,
            },
        })
    }

    /// Compact JSON, the bytes that get signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a payload of strings and integers always serialises")
    }

    /// Parse signed payload bytes. They must be a JSON object whose `targetArtifact` has a
    /// non-empty `mediaType` and `digest` and an integer `size`; other members are ignored.
    pub fn parse(bytes: &[u8]) -> Result<Payload, EnvelopeError> {
        let payload: Payload = serde_json::from_slice(bytes).map_err(|e| {
            EnvelopeError::Payload(format!(
                "the signed payload is not a Notary payload object with targetArtifact (mediaType, digest, size): {e}"
            ))
        })?;
        let target = &payload.target_artifact;
        if target.media_type.is_empty() {
            return Err(EnvelopeError::Payload(
                "targetArtifact.mediaType is empty".into(),
            ));
        }
        if target.digest.is_empty() {
            return Err(EnvelopeError::Payload(
                "targetArtifact.digest is empty".into(),
            ));
        }
        Ok(payload)
    }

    /// Whether the signed descriptor designates `artifact`: equal mediaType, digest and
    /// size. Annotations are compared separately, and only for user-required metadata.
    pub fn matches(&self, artifact: &Descriptor) -> bool {
        let target = &self.target_artifact;
        target.media_type == artifact.media_type
            && target.digest == artifact.digest
            && target.size == artifact.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor() -> Descriptor {
        let mut d = Descriptor::new(
            "application/vnd.oci.image.manifest.v1+json",
            "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
            517,
        );
        d.artifact_type = Some("application/vnd.example".into());
        d
    }

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sanitises_descriptor_and_serialises_compactly() {
        let p = Payload::for_artifact(&descriptor(), &BTreeMap::new()).unwrap();
        assert_eq!(
            String::from_utf8(p.to_bytes()).unwrap(),
            r#"{"targetArtifact":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9","size":517}}"#
        );
    }

    #[test]
    fn merges_user_metadata() {
        let mut d = descriptor();
        d.annotations = Some(meta(&[("org.example.a", "1")]));
        let p = Payload::for_artifact(&d, &meta(&[("buildId", "42")])).unwrap();
        assert_eq!(
            p.target_artifact.annotations,
            Some(meta(&[("buildId", "42"), ("org.example.a", "1")]))
        );
        let back = Payload::parse(&p.to_bytes()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn refuses_reserved_and_colliding_metadata() {
        let err =
            Payload::for_artifact(&descriptor(), &meta(&[("io.cncf.notary.x", "1")])).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        let mut d = descriptor();
        d.annotations = Some(meta(&[("k", "1")]));
        let err = Payload::for_artifact(&d, &meta(&[("k", "2")])).unwrap_err();
        assert!(err.to_string().contains("collides"), "{err}");
    }

    #[test]
    fn parse_requires_target_artifact_fields() {
        for bad in [
            &b"[]"[..],
            b"\"x\"",
            b"{}",
            br#"{"targetArtifact":{"digest":"sha256:00","size":1}}"#,
            br#"{"targetArtifact":{"mediaType":"a/b","size":1}}"#,
            br#"{"targetArtifact":{"mediaType":"a/b","digest":"sha256:00"}}"#,
            br#"{"targetArtifact":{"mediaType":"a/b","digest":"sha256:00","size":-1}}"#,
            br#"{"targetArtifact":{"mediaType":"","digest":"sha256:00","size":1}}"#,
            br#"{"targetArtifact":{"mediaType":"a/b","digest":"sha256:00","size":1,"size":2}}"#,
        ] {
            assert!(
                Payload::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Member order and unknown members do not matter.
        let p = Payload::parse(
            br#"{"targetArtifact":{"size":1,"digest":"sha256:00","mediaType":"a/b","urls":["x"]},"other":1}"#,
        )
        .unwrap();
        assert_eq!(p.target_artifact, Descriptor::new("a/b", "sha256:00", 1));
    }

    #[test]
    fn matches_compares_media_type_digest_and_size_only() {
        let p = Payload::for_artifact(&descriptor(), &meta(&[("a", "b")])).unwrap();
        let d = descriptor();
        assert!(p.matches(&d));
        let mut other = d.clone();
        other.size += 1;
        assert!(!p.matches(&other));
        let mut other = d.clone();
        other.digest = "sha256:00".into();
        assert!(!p.matches(&other));
        let mut other = d.clone();
        other.media_type = "application/vnd.oci.image.index.v1+json".into();
        assert!(!p.matches(&other));
    }
}
