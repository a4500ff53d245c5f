//! OCI image layout on disk as an artifact store (notation's `--oci-layout`).

/// Errors reading or writing a layout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    #[error("OCI layout {path}: {message}")]
    Other { path: String, message: String },
}
