//! The Notary payload: `{"targetArtifact": <descriptor>}`.

use serde::{Deserialize, Serialize};

use crate::oci::Descriptor;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub target_artifact: Descriptor,
}

impl Payload {
    /// The payload for `artifact` with `user_metadata` merged into its annotations.
    pub fn for_artifact(
        artifact: &Descriptor,
        user_metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<Payload, super::EnvelopeError> {
        let _ = (artifact, user_metadata);
        todo!("envelope::payload::Payload::for_artifact")
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        todo!("envelope::payload::Payload::to_bytes")
    }
}
