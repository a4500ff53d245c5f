//! An in-memory `ArtifactStore` serving one artifact and one signature over it, for
//! verification tests that start from an envelope (upstream vectors, hand-forged envelopes)
//! rather than from a registry. Include with `#[path = "support/one_signature.rs"] mod
//! one_signature;`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use async_trait::async_trait;
use sign_action::oci::{
    ArtifactStore, Descriptor, ManifestForm, PushedSignature, Reference, StoreError, OCI_MANIFEST,
};

/// Serves one artifact (the envelope's target descriptor) with one signature manifest
/// holding the envelope.
pub struct OneSignatureStore {
    /// The envelope's target artifact, which the store resolves every reference to.
    pub artifact: Descriptor,
    manifest: Vec<u8>,
    envelope: Vec<u8>,
}

impl OneSignatureStore {
    /// The store for a well-formed envelope: the artifact is the payload's target.
    pub fn new(envelope: Vec<u8>) -> OneSignatureStore {
        let parsed = sign_action::envelope::parse(media_type_of(&envelope), &envelope).unwrap();
        let payload = sign_action::envelope::Payload::parse(&parsed.payload).unwrap();
        let t = payload.target_artifact;
        Self::with_subject(Descriptor::new(t.media_type, t.digest, t.size), envelope)
    }

    /// The store for any bytes (broken envelopes included) posing as a signature of `artifact`.
    pub fn with_subject(artifact: Descriptor, envelope: Vec<u8>) -> OneSignatureStore {
        let media_type = media_type_of(&envelope);
        let layer = Descriptor::of_bytes(media_type, &envelope);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.cncf.notary.signature",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                "size": 2
            },
            "layers": [layer],
            "subject": artifact,
        }))
        .unwrap();
        OneSignatureStore {
            artifact,
            manifest,
            envelope,
        }
    }
}

/// The subject of notation-go's signature vectors (tests/fixtures/vectors: the
/// `net-monitor` image manifest their payloads name).
pub fn vector_subject() -> Descriptor {
    Descriptor::new(
        "application/vnd.docker.distribution.manifest.v2+json",
        "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e",
        528,
    )
}

fn media_type_of(envelope: &[u8]) -> &'static str {
    if envelope.first() == Some(&b'{') {
        "application/jose+json"
    } else {
        "application/cose"
    }
}

fn nope<T>() -> Result<T, StoreError> {
    Err(StoreError::Manifest("not served by this test store".into()))
}

#[async_trait]
impl ArtifactStore for OneSignatureStore {
    async fn resolve(&self, _: &Reference) -> Result<Descriptor, StoreError> {
        Ok(self.artifact.clone())
    }
    async fn push_signature(
        &self,
        _: &Reference,
        _: &Descriptor,
        _: &str,
        _: &[u8],
        _: BTreeMap<String, String>,
        _: ManifestForm,
    ) -> Result<PushedSignature, StoreError> {
        nope()
    }
    async fn list_signatures(
        &self,
        _: &Reference,
        subject: &Descriptor,
    ) -> Result<Vec<Descriptor>, StoreError> {
        assert_eq!(subject.digest, self.artifact.digest);
        Ok(vec![Descriptor::of_bytes(OCI_MANIFEST, &self.manifest)])
    }
    async fn fetch_manifest(&self, _: &Reference, d: &Descriptor) -> Result<Vec<u8>, StoreError> {
        assert_eq!(
            d.digest,
            Descriptor::of_bytes(OCI_MANIFEST, &self.manifest).digest
        );
        Ok(self.manifest.clone())
    }
    async fn fetch_blob(
        &self,
        _: &Reference,
        d: &Descriptor,
        _: u64,
    ) -> Result<Vec<u8>, StoreError> {
        if d.digest == Descriptor::of_bytes("x", &self.envelope).digest {
            Ok(self.envelope.clone())
        } else {
            nope()
        }
    }
}
