//! PR checks: find the image references a change deploys, verify each distinct one once, and
//! say which lines reference unsigned or untrusted images.
//!
//! - [`scan`]: files → [`ImageRef`]s with file, line and column (YAML through a real parser
//!   that keeps positions, Dockerfiles through a small parser of our own);
//! - [`evaluate`]: distinct references resolved and verified concurrently against the trust
//!   policy, each with a [`Verdict`];
//! - [`github`]: the pull request's changed files and a Check Run carrying the annotations.

pub mod dockerfile;
pub mod evaluate;
pub mod github;
pub mod scan;
pub mod yaml;

use serde::Serialize;

pub use evaluate::{evaluate, Evaluation, FailOn, ImageResult, RefResult, Verdict};
pub use scan::{collect_files, scan_files, ScanReport};

/// Where an image reference was written and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageRef {
    /// Path relative to the scanned root, with `/` separators (what annotations name).
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters, where the reference text starts.
    pub column: usize,
    /// The reference as written (after Dockerfile `ARG` substitution).
    pub reference: String,
    pub kind: RefKind,
}

/// Which construct holds the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefKind {
    KubernetesContainer,
    KubernetesInitContainer,
    KubernetesEphemeralContainer,
    ComposeService,
    DockerfileFrom,
    DockerfileCopyFrom,
    WorkflowContainer,
    WorkflowService,
    WorkflowStep,
    ActionImage,
}

impl RefKind {
    pub fn describe(self) -> &'static str {
        match self {
            RefKind::KubernetesContainer => "Kubernetes container",
            RefKind::KubernetesInitContainer => "Kubernetes init container",
            RefKind::KubernetesEphemeralContainer => "Kubernetes ephemeral container",
            RefKind::ComposeService => "Compose service",
            RefKind::DockerfileFrom => "Dockerfile FROM",
            RefKind::DockerfileCopyFrom => "Dockerfile COPY --from",
            RefKind::WorkflowContainer => "workflow job container",
            RefKind::WorkflowService => "workflow service container",
            RefKind::WorkflowStep => "workflow docker:// step",
            RefKind::ActionImage => "container action image",
        }
    }
}

/// Something that looks like an image reference but cannot be checked before it is deployed
/// (a workflow expression, a build argument without a default, Compose interpolation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub text: String,
    pub reason: String,
}

/// A file that could not be scanned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error("{file}:{line}: not valid YAML: {message}")]
    Yaml {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}:{line}: the document's aliases expand beyond what a manifest needs; refusing to walk it")]
    TooComplex { file: String, line: usize },
    #[error("cannot read {file}: {message}")]
    Read { file: String, message: String },
    #[error("{file} is larger than {limit} bytes; refusing to scan it")]
    TooLarge { file: String, limit: u64 },
    #[error("invalid pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
}

/// Errors that stop a check before any image is judged (configuration, trust store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    #[error("trust policy statement {statement:?}: {source}")]
    TrustStore {
        statement: String,
        source: crate::policy::store::TrustStoreError,
    },
}
