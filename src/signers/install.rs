//! Installing a notation plugin from a downloaded archive (the action's `plugin-url` +
//! `plugin-checksum` inputs), laid out as notation installs plugins:
//! `{plugins}/<name>/notation-<name>`.
//!
//! The archive is untrusted until its SHA-256 matches the pinned checksum: it is downloaded
//! into memory under a size cap and a time-out, hashed, and only then unpacked. Unpacking
//! accepts regular files and directories only (no symlinks, hard links or devices) with
//! plain relative paths, and writes exactly one file: the `notation-<name>` executable.
//! Only `.tar.gz` archives are supported (notation plugins are published as `.tar.gz` for
//! Linux; `.zip` is their Windows format).

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Largest archive downloaded, and largest total size unpacked.
pub const MAX_ARCHIVE_BYTES: u64 = 256 * 1024 * 1024;
/// Time limit for the whole download.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    #[error("plugin URL {url:?} is not usable: {reason}")]
    Url { url: String, reason: String },
    #[error("plugin checksum must be 64 hexadecimal digits (the archive's SHA-256)")]
    BadChecksum,
    #[error("cannot download the plugin archive: {0}")]
    Download(String),
    #[error("the plugin archive exceeds {MAX_ARCHIVE_BYTES} bytes")]
    TooLarge,
    #[error("the plugin archive's SHA-256 is {actual}, not the expected {expected}; nothing was installed")]
    ChecksumMismatch { expected: String, actual: String },
    #[error("the plugin archive is not acceptable: {0}")]
    Archive(String),
    #[error("cannot install the plugin into {path}: {reason}")]
    Write { path: String, reason: String },
}

/// Download `url`, check its SHA-256 against `checksum`, and install the `notation-<name>`
/// executable it holds under `plugins_dir`. Returns the installed path.
pub async fn install_from_url(
    url: &str,
    checksum: &str,
    plugins_dir: &Path,
) -> Result<PathBuf, InstallError> {
    let expected = checksum.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(InstallError::BadChecksum);
    }
    let archive = download(url).await?;
    let actual = crate::crypto::sha256_hex(&archive);
    if actual != expected {
        return Err(InstallError::ChecksumMismatch { expected, actual });
    }
    install_archive(&archive, plugins_dir)
}

async fn download(url: &str) -> Result<Vec<u8>, InstallError> {
    let parsed = crate::net::secure_url(url).map_err(|e| InstallError::Url {
        url: url.to_string(),
        reason: match e {
            crate::net::NetError::InsecureUrl { why, .. } => why.to_string(),
            other => other.to_string(),
        },
    })?;
    // Redirects are not followed (net::https_client): they could leave https or loopback.
    let client = crate::net::https_client(DOWNLOAD_TIMEOUT)
        .map_err(|e| InstallError::Download(e.to_string()))?;
    let response = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| InstallError::Download(e.to_string()))?;
    if !response.status().is_success() {
        return Err(InstallError::Download(format!(
            "HTTP status {}",
            response.status()
        )));
    }
    crate::net::read_bounded(response, MAX_ARCHIVE_BYTES, "the plugin download")
        .await
        .map_err(|e| match e {
            crate::net::NetError::TooLarge { .. } => InstallError::TooLarge,
            other => InstallError::Download(other.to_string()),
        })
}

/// Unpack a `.tar.gz` (already checksummed) and install its single `notation-<name>` file.
pub fn install_archive(archive: &[u8], plugins_dir: &Path) -> Result<PathBuf, InstallError> {
    let bad = |reason: String| InstallError::Archive(reason);
    if !archive.starts_with(&[0x1f, 0x8b]) {
        return Err(bad(
            "only .tar.gz archives are supported (this is not gzip data)".into(),
        ));
    }
    let gz = flate2::read::GzDecoder::new(archive);
    // Bound what decompression may produce (a small archive can expand enormously).
    let mut tar = tar::Archive::new(gz.take(MAX_ARCHIVE_BYTES));
    let mut found: Option<(String, Vec<u8>)> = None;
    let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        if !path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(bad(format!(
                "entry {} is not a plain relative path",
                path.display()
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!(
                "entry {} is not a regular file (links and special files are refused)",
                path.display()
            )));
        }
        let file_name = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_string();
        let Some(name) = file_name.strip_prefix("notation-") else {
            continue;
        };
        if found.is_some() {
            return Err(bad("it holds more than one notation-* file".into()));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(e.to_string()))?;
        found = Some((name.to_string(), bytes));
    }
    let (name, bytes) = found.ok_or_else(|| bad("it holds no notation-<name> file".into()))?;
    let target = super::plugin::installed_plugin_path(Path::new("plugins-root"), &name)
        .map_err(|e| bad(e.to_string()))?;
    let file = target.file_name().unwrap_or_default().to_owned();
    let dir = plugins_dir.join(&name);
    let write_err = |path: &Path, e: std::io::Error| InstallError::Write {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| write_err(&dir, e))?;
    let path = dir.join(file);
    // Written beside the target and renamed: a half-written plugin is never runnable, and an
    // existing symlink at the target is replaced rather than followed.
    let tmp = dir.join(format!(".{}.partial-{}", name, std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o755);
        let mut out = options.open(&tmp)?;
        std::io::Write::write_all(&mut out, &bytes)?;
        out.sync_all()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The umask may have narrowed the creation mode.
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(&path, e));
    }
    Ok(path)
}
