//! Trust policy documents and the trust store on disk, as notation lays them out (digest §7).
//!
//! - [`document`]: the OCI trust policy (`trustpolicy.oci.json` / `trustpolicy.json`), its
//!   validation and the selection of a statement for an artifact;
//! - [`level`]: verification levels, overrides and what each check's failure leads to;
//! - [`store`]: `truststore/x509/{ca,signingAuthority,tsa}/<name>/` certificate stores;
//! - [`identity`]: trusted identities (RFC 4514 subjects) and their match against a leaf.

pub mod document;
pub mod identity;
pub mod level;
pub mod store;

pub use document::{PolicyError, TrustPolicyDocument, TrustPolicyStatement, TrustStoreRef};
pub use identity::{DistinguishedName, TrustedIdentity};
pub use level::{Action, Check, Level, VerificationSettings, VerifyTimestamp};
pub use store::{default_config_dir, StoreType, TrustStore, TrustStoreError};

use std::io::Read;
use std::path::Path;

/// Why a configuration file could not be read.
#[derive(Debug)]
pub(crate) enum ReadFileError {
    NotFound,
    /// A symlink, directory or other non-regular file.
    NotRegular,
    TooLarge,
    Io(std::io::Error),
}

/// Read a regular file (never through a symlink) of at most `limit` bytes.
///
/// The file is checked with `lstat` and then opened; on Unix the opened file must be the same
/// inode, so a symlink swapped in between the two steps is noticed rather than followed.
pub(crate) fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadFileError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadFileError::NotFound),
        Err(e) => return Err(ReadFileError::Io(e)),
    };
    if !meta.file_type().is_file() {
        return Err(ReadFileError::NotRegular);
    }
    let file = std::fs::File::open(path).map_err(ReadFileError::Io)?;
    let opened = file.metadata().map_err(ReadFileError::Io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if opened.dev() != meta.dev() || opened.ino() != meta.ino() {
            return Err(ReadFileError::NotRegular);
        }
    }
    if !opened.file_type().is_file() {
        return Err(ReadFileError::NotRegular);
    }
    let mut data = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(ReadFileError::Io)?;
    if data.len() as u64 > limit {
        return Err(ReadFileError::TooLarge);
    }
    Ok(data)
}
