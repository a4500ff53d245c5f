//! Registry client (distribution-spec 1.1) on reqwest.
//!
//! Our own client rather than `oci-client`: we need the `OCI-Subject` response header of a
//! manifest PUT, the push side of the referrers tag schema and control of the request count.

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("registry {registry}: {message}")]
    Other { registry: String, message: String },
}
