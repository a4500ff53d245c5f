//! The Notary payload: `{"targetArtifact": <descriptor>}`.

use serde::{Deserialize, Serialize};

use crate::oci::Descriptor;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub target_artifact: Descriptor,
}
