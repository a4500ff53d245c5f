//! The trust store on disk: `truststore/x509/{ca,signingAuthority,tsa}/<name>/<files>`
//! under notation's configuration directory (digest §7).
//!
//! Every file of a named store is read whatever its extension: PEM (every block must be a
//! certificate) or concatenated DER. Symlinks and sub-directories are errors, as in
//! notation. `ca` and `signingAuthority` entries must be CA certificates (basicConstraints
//! cA) or self-signed; `tsa` entries must be self-issued, self-signed CA roots.

use std::fmt;
use std::path::{Path, PathBuf};

use der::Decode;
use x509_cert::ext::pkix::KeyUsage;

use super::{read_regular_file, ReadFileError};
use crate::x509::{self, Certificate};

/// Largest certificate file read from a store.
pub const MAX_CERT_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Most files read from one named store.
pub const MAX_FILES_PER_STORE: usize = 1000;

/// The three trust store types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreType {
    /// Root or intermediate CAs for `notary.x509` signatures.
    Ca,
    /// Anchors for `notary.x509.signingAuthority` signatures.
    SigningAuthority,
    /// Timestamp authority roots.
    Tsa,
}

impl StoreType {
    pub const ALL: [StoreType; 3] = [StoreType::Ca, StoreType::SigningAuthority, StoreType::Tsa];

    /// The name used in policies and as the directory name.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreType::Ca => "ca",
            StoreType::SigningAuthority => "signingAuthority",
            StoreType::Tsa => "tsa",
        }
    }

    pub fn parse(s: &str) -> Option<StoreType> {
        StoreType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for StoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Named-store names: `[a-zA-Z0-9_.-]+` (they are directory names; this also keeps `/` and
/// `..`-only traversal out, though `.` and `..` themselves are refused explicitly).
pub fn is_valid_store_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// notation's configuration directory on Linux: `$XDG_CONFIG_HOME/notation`, else
/// `$HOME/.config/notation`. `None` when neither variable is set (absolute paths only).
pub fn default_config_dir() -> Option<PathBuf> {
    let from = |var: &str, suffix: &[&str]| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|mut p| {
                for s in suffix {
                    p.push(s);
                }
                p
            })
    };
    from("XDG_CONFIG_HOME", &["notation"]).or_else(|| from("HOME", &[".config", "notation"]))
}

/// Problems reading a trust store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustStoreError {
    #[error("trust store directory {0} does not exist or is not a directory")]
    RootNotFound(PathBuf),
    #[error("invalid trust store name {0:?}: names must match [a-zA-Z0-9_.-]+")]
    InvalidName(String),
    #[error(
        "the trust store {name:?} of type {store_type} does not exist (expected directory {path})"
    )]
    NotFound {
        store_type: StoreType,
        name: String,
        path: PathBuf,
    },
    #[error("the trust store {name:?} of type {store_type} at {path} is not a regular directory (symlinks are not supported)")]
    NotADirectory {
        store_type: StoreType,
        name: String,
        path: PathBuf,
    },
    #[error("trusted certificate {file:?} in trust store {name:?} of type {store_type} is not a regular file (directories and symlinks are not supported)")]
    NotARegularFile {
        store_type: StoreType,
        name: String,
        file: String,
    },
    #[error(
        "trust store {name:?} of type {store_type} holds more than {MAX_FILES_PER_STORE} files"
    )]
    TooManyFiles { store_type: StoreType, name: String },
    #[error("cannot read trust store {name:?} of type {store_type} ({path}): {source}")]
    Io {
        store_type: StoreType,
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the trusted certificate {file:?} in trust store {name:?} of type {store_type}: {reason}")]
    BadCertificateFile {
        store_type: StoreType,
        name: String,
        file: String,
        reason: String,
    },
    #[error("trusted certificate {file:?} in trust store {name:?} of type {store_type} is invalid: certificate with subject {subject:?} {reason}")]
    InvalidCertificate {
        store_type: StoreType,
        name: String,
        file: String,
        subject: String,
        reason: String,
    },
    #[error("no x509 certificates were found in trust store {name:?} of type {store_type}; add the trusted certificates (PEM or DER files) to {path}")]
    Empty {
        store_type: StoreType,
        name: String,
        path: PathBuf,
    },
}

/// The x509 trust stores below one directory.
#[derive(Debug, Clone)]
pub struct TrustStore {
    /// The `x509` directory holding `ca/`, `signingAuthority/`, `tsa/`.
    x509_dir: PathBuf,
}

impl TrustStore {
    /// Open the stores below `root`, which may be notation's configuration directory (holding
    /// `truststore/x509/…`), the `truststore` directory itself (holding `x509/…`) or the `x509`
    /// directory (holding `ca/`, `signingAuthority/`, `tsa/`). Checked in that order; the
    /// first layout whose directory exists wins. A configuration directory without any
    /// `truststore/` still opens: each named store is then reported as not found.
    pub fn open(root: &Path) -> Result<TrustStore, TrustStoreError> {
        if !root.is_dir() {
            return Err(TrustStoreError::RootNotFound(root.to_path_buf()));
        }
        let candidates = [root.join("truststore").join("x509"), root.join("x509")];
        if let Some(dir) = candidates.iter().find(|d| d.is_dir()) {
            return Ok(TrustStore {
                x509_dir: dir.clone(),
            });
        }
        let looks_like_x509 = root.file_name().is_some_and(|n| n == "x509")
            || StoreType::ALL
                .iter()
                .any(|t| root.join(t.as_str()).is_dir());
        let x509_dir = if looks_like_x509 {
            root.to_path_buf()
        } else {
            root.join("truststore").join("x509")
        };
        Ok(TrustStore { x509_dir })
    }

    /// Open the stores in [`default_config_dir`].
    pub fn open_default() -> Result<TrustStore, TrustStoreError> {
        let dir = default_config_dir().ok_or_else(|| {
            TrustStoreError::RootNotFound(PathBuf::from("$HOME/.config/notation"))
        })?;
        TrustStore::open(&dir)
    }

    /// The `x509` directory in use.
    pub fn x509_dir(&self) -> &Path {
        &self.x509_dir
    }

    /// Directory of one named store.
    pub fn store_path(&self, store_type: StoreType, name: &str) -> PathBuf {
        self.x509_dir.join(store_type.as_str()).join(name)
    }

    /// Every certificate of every store of `store_type` the statement names, in policy
    /// order. Any store that cannot be read is an error (fail closed).
    pub fn certificates_for(
        &self,
        statement: &super::TrustPolicyStatement,
        store_type: StoreType,
    ) -> Result<Vec<Certificate>, TrustStoreError> {
        let mut all = Vec::new();
        for name in statement.stores_of(store_type) {
            all.extend(self.certificates(store_type, name)?);
        }
        Ok(all)
    }

    /// Every certificate of the named store, files in name order, certificates in file order.
    pub fn certificates(
        &self,
        store_type: StoreType,
        name: &str,
    ) -> Result<Vec<Certificate>, TrustStoreError> {
        if !is_valid_store_name(name) {
            return Err(TrustStoreError::InvalidName(name.to_string()));
        }
        let path = self.store_path(store_type, name);
        let io = |source| TrustStoreError::Io {
            store_type,
            name: name.to_string(),
            path: path.clone(),
            source,
        };
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TrustStoreError::NotFound {
                    store_type,
                    name: name.to_string(),
                    path,
                })
            }
            Err(e) => return Err(io(e)),
        };
        if !meta.file_type().is_dir() {
            return Err(TrustStoreError::NotADirectory {
                store_type,
                name: name.to_string(),
                path,
            });
        }
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&path).map_err(io)? {
            let entry = entry.map_err(io)?;
            entries.push(entry);
            if entries.len() > MAX_FILES_PER_STORE {
                return Err(TrustStoreError::TooManyFiles {
                    store_type,
                    name: name.to_string(),
                });
            }
        }
        // Deterministic order: read_dir order is the file system's.
        entries.sort_by_key(|e| e.file_name());

        let mut certificates = Vec::new();
        for entry in entries {
            let file = entry.file_name().to_string_lossy().into_owned();
            let not_regular = || TrustStoreError::NotARegularFile {
                store_type,
                name: name.to_string(),
                file: file.clone(),
            };
            let data = match read_regular_file(&entry.path(), MAX_CERT_FILE_BYTES) {
                Ok(d) => d,
                Err(ReadFileError::NotRegular) | Err(ReadFileError::NotFound) => {
                    return Err(not_regular())
                }
                Err(ReadFileError::TooLarge) => {
                    return Err(TrustStoreError::BadCertificateFile {
                        store_type,
                        name: name.to_string(),
                        file,
                        reason: format!("larger than {MAX_CERT_FILE_BYTES} bytes"),
                    })
                }
                Err(ReadFileError::Io(e)) => return Err(io(e)),
            };
            let certs = x509::parse_certificates(&data, &file).map_err(|e| {
                TrustStoreError::BadCertificateFile {
                    store_type,
                    name: name.to_string(),
                    file: file.clone(),
                    reason: e.to_string(),
                }
            })?;
            for cert in &certs {
                check_store_entry(store_type, cert).map_err(|reason| {
                    TrustStoreError::InvalidCertificate {
                        store_type,
                        name: name.to_string(),
                        file: file.clone(),
                        subject: cert.subject(),
                        reason,
                    }
                })?;
            }
            certificates.extend(certs);
        }
        if certificates.is_empty() {
            return Err(TrustStoreError::Empty {
                store_type,
                name: name.to_string(),
                path,
            });
        }
        Ok(certificates)
    }
}

/// The notation rules for what may sit in a store of `store_type`.
fn check_store_entry(store_type: StoreType, cert: &Certificate) -> Result<(), String> {
    let ca = x509::is_ca(cert);
    let self_signed = x509::is_self_signed(cert);
    if !ca && !self_signed {
        return Err("is not a CA certificate or self-signed signing certificate".into());
    }
    if store_type == StoreType::Tsa {
        // As in notation (Go's CheckSignatureFrom), a v1/v2 certificate predates extensions
        // and may act as a CA root; a v3 one must say cA.
        let pre_v3 = cert.parsed().tbs_certificate.version != x509_cert::Version::V3;
        let has_bc = extension(cert, OID_BASIC_CONSTRAINTS).is_some();
        let acts_as_ca = ca || (pre_v3 && !has_bc);
        if !acts_as_ca {
            return Err("is not a root CA certificate: basicConstraints cA is not set".into());
        }
        if let Some(ku) = key_usage(cert)? {
            if !ku.key_cert_sign() {
                return Err("is not a root CA certificate: keyUsage lacks keyCertSign".into());
            }
        }
        if !self_signed {
            return Err(
                "is not a root CA certificate: it is not self-issued and self-signed".into(),
            );
        }
    }
    Ok(())
}

const OID_BASIC_CONSTRAINTS: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_KEY_USAGE: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("2.5.29.15");

fn extension(cert: &Certificate, oid: der::asn1::ObjectIdentifier) -> Option<&[u8]> {
    cert.parsed()
        .tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

fn key_usage(cert: &Certificate) -> Result<Option<KeyUsage>, String> {
    extension(cert, OID_KEY_USAGE)
        .map(|v| {
            KeyUsage::from_der(v).map_err(|e| format!("has a malformed keyUsage extension: {e}"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names() {
        for ok in ["e2e", "valid-trust-store", "a.b_c-D9", "..."] {
            assert!(is_valid_store_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä", "a:b", "../x"] {
            assert!(!is_valid_store_name(bad), "{bad}");
        }
    }

    #[test]
    fn store_types() {
        for t in StoreType::ALL {
            assert_eq!(StoreType::parse(t.as_str()), Some(t));
        }
        assert_eq!(StoreType::parse("CA"), None);
        assert_eq!(StoreType::parse("signingauthority"), None);
    }
}
