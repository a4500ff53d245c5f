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
    let bad = |reason: &str| InstallError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match parsed.scheme() {
        "https" => {}
        "http" if crate::oci::registry::is_loopback(host) => {}
        _ => {
            return Err(bad(
                "use https (plain http is accepted for loopback hosts only)",
            ))
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| InstallError::Download(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Redirects are not followed: they could leave https or the loopback host.
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(DOWNLOAD_TIMEOUT)
        .connect_timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(crate::signing_agent())
        .build()
        .map_err(|e| InstallError::Download(e.to_string()))?;
    let mut response = client
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
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ARCHIVE_BYTES)
    {
        return Err(InstallError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| InstallError::Download(e.to_string()))?
    {
        if (body.len() + chunk.len()) as u64 > MAX_ARCHIVE_BYTES {
            return Err(InstallError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
