//! Artifact references: `host[:port]/repo[:tag][@digest]`, normalised as docker does.

/// A parse failure, naming what is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    #[error("invalid reference {reference:?}: {reason}")]
    Invalid { reference: String, reason: String },
}

/// A parsed registry reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Host and optional port, e.g. `ghcr.io`, `127.0.0.1:5000`, `docker.io`.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}
