//! OCI image layout on disk as an artifact store (notation's `--oci-layout`).
//!
//! Signatures are stored the way notation stores them (see the vectors): the signature
//! manifest as a blob and an `index.json` entry, plus a referrers tag schema index tagged
//! `sha256-<hex>` in `index.json`. Discovery reads that index first and then scans every
//! manifest in the layout for a matching `subject`, because notation layouts may hold
//! signatures the tag index does not list.
//!
//! Hand-written: the layout format is a directory of content-addressed files and one JSON
//! index; no crate offers a read-write layout with referrers.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::manifest::{
    self, ImageIndex, ImageManifest, ARTIFACT_MANIFEST, EMPTY_CONFIG, REF_NAME_ANNOTATION,
    THUMBPRINT_ANNOTATION,
};
use super::reference::{validate_digest, validate_tag, LAYOUT_REGISTRY};
use super::{
    verify_content, ArtifactStore, Descriptor, ManifestForm, PushedSignature, Reference, Storage,
    StoreError, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST,
};

/// Largest `index.json` we read.
const MAX_INDEX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// Errors reading or writing a layout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    #[error("OCI layout {path}: {message}")]
    Other { path: String, message: String },
    #[error("OCI layout {path}: {what} not found")]
    NotFound { path: String, what: String },
    #[error("OCI layout {path}: {what}: {source}")]
    Io {
        path: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayoutStore {
    root: PathBuf,
}

/// Split `path[:tag]` or `path@digest` into the layout directory and a [`Reference`] whose
/// `registry` is [`LAYOUT_REGISTRY`] and whose `repository` is the path.
///
/// A `:` is a tag separator only when what follows is a valid tag without `/`, so paths that
/// contain `:` in a directory name still work when they end with an explicit tag.
pub fn parse_layout_reference(s: &str) -> Result<(PathBuf, Reference), LayoutError> {
    let bad = |message: String| LayoutError::Other {
        path: s.to_string(),
        message,
    };
    if s.is_empty() {
        return Err(bad("the layout reference is empty".into()));
    }
    let (path, tag, digest) = if let Some((p, d)) = s.rsplit_once('@') {
        validate_digest(d).map_err(bad)?;
        (p, None, Some(d.to_string()))
    } else {
        match s.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') && !t.contains('\\') && !p.is_empty() => {
                validate_tag(t).map_err(bad)?;
                (p, Some(t.to_string()), None)
            }
            _ => (s, None, None),
        }
    };
    if path.is_empty() {
        return Err(bad("the layout path is empty".into()));
    }
    Ok((
        PathBuf::from(path),
        Reference {
            registry: LAYOUT_REGISTRY.to_string(),
            repository: path.to_string(),
            tag,
            digest,
        },
    ))
}

/// Open the layout a `path[:tag|@digest]` names and return it with the reference.
pub fn resolve_layout_reference(s: &str) -> Result<(OciLayoutStore, Reference), LayoutError> {
    let (path, reference) = parse_layout_reference(s)?;
    Ok((OciLayoutStore::open(path)?, reference))
}

impl OciLayoutStore {
    /// Open an existing layout (it must have an `oci-layout` file and `index.json`).
    pub fn open(path: impl Into<PathBuf>) -> Result<OciLayoutStore, LayoutError> {
        let root = path.into();
        let store = OciLayoutStore { root };
        let marker = store.root.join("oci-layout");
        let text = std::fs::read_to_string(&marker).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                store.err("no `oci-layout` file: this directory is not an OCI image layout")
            } else {
                store.io("reading oci-layout", e)
            }
        })?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| store.err(format!("`oci-layout` is not JSON: {e}")))?;
        if v.get("imageLayoutVersion")
            .and_then(|x| x.as_str())
            .is_none()
        {
            return Err(store.err("`oci-layout` lacks imageLayoutVersion"));
        }
        store.read_index()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn err(&self, message: impl Into<String>) -> LayoutError {
        LayoutError::Other {
            path: self.root.display().to_string(),
            message: message.into(),
        }
    }

    fn io(&self, what: impl Into<String>, source: std::io::Error) -> LayoutError {
        LayoutError::Io {
            path: self.root.display().to_string(),
            what: what.into(),
            source,
        }
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf, LayoutError> {
        validate_digest(digest).map_err(|m| self.err(m))?;
        let (alg, hex) = digest.split_once(':').unwrap_or_default();
        Ok(self.root.join("blobs").join(alg).join(hex))
    }

    /// Read `index.json` as a JSON value (entries we do not model are kept when rewriting).
    fn read_index_value(&self) -> Result<serde_json::Value, LayoutError> {
        let bytes = read_file_bounded(&self.root.join("index.json"), MAX_INDEX_JSON_BYTES)
            .map_err(|e| self.io("reading index.json", e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.err(format!("index.json is not JSON: {e}")))
    }

    fn read_index(&self) -> Result<ImageIndex, LayoutError> {
        serde_json::from_value(self.read_index_value()?)
            .map_err(|e| self.err(format!("index.json is not an image index: {e}")))
    }

    /// A blob's bytes, refused above `max` before reading.
    fn read_blob(&self, digest: &str, max: u64) -> Result<Vec<u8>, LayoutError> {
        let path = self.blob_path(digest)?;
        match read_file_bounded(&path, max) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LayoutError::NotFound {
                path: self.root.display().to_string(),
                what: format!("blob {digest}"),
            }),
            Err(e) => Err(self.io(format!("reading blob {digest}"), e)),
        }
    }

    /// Write a blob (content-addressed: an existing file is left alone).
    fn write_blob(&self, bytes: &[u8]) -> Result<String, LayoutError> {
        let digest = format!("sha256:{}", crate::crypto::sha256_hex(bytes));
        let path = self.blob_path(&digest)?;
        if path.exists() {
            return Ok(digest);
        }
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(|e| self.io("creating blobs directory", e))?;
        write_atomic(dir, &path, bytes)
            .map_err(|e| self.io(format!("writing blob {digest}"), e))?;
        Ok(digest)
    }

    fn write_index_value(&self, v: &serde_json::Value) -> Result<(), LayoutError> {
        let bytes = serde_json::to_vec(v).map_err(|e| self.err(e.to_string()))?;
        write_atomic(&self.root, &self.root.join("index.json"), &bytes)
            .map_err(|e| self.io("writing index.json", e))
    }

    fn describe_blob(&self, digest: &str) -> Result<Descriptor, LayoutError> {
        let bytes = self.read_blob(digest, MAX_MANIFEST_BYTES)?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
            .ok_or_else(|| self.err(format!("blob {digest} is not a manifest with a mediaType")))?;
        Ok(Descriptor::new(media_type, digest, bytes.len() as u64))
    }

    fn resolve_reference(&self, reference: &Reference) -> Result<Descriptor, LayoutError> {
        let index = self.read_index()?;
        if let Some(d) = &reference.digest {
            if let Some(e) = index.manifests.iter().find(|m| &m.digest == d) {
                return Ok(Descriptor::new(
                    e.media_type.clone(),
                    e.digest.clone(),
                    e.size,
                ));
            }
            return self.describe_blob(d);
        }
        let tag = reference.tag.as_deref().ok_or_else(|| {
            self.err("the reference names neither a tag (:TAG) nor a digest (@sha256:…)")
        })?;
        let hits: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|m| {
                m.annotations
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME_ANNOTATION))
                    .map(String::as_str)
                    == Some(tag)
            })
            .collect();
        match hits.as_slice() {
            [] => Err(LayoutError::NotFound {
                path: self.root.display().to_string(),
                what: format!("tag {tag:?}"),
            }),
            [one] => Ok(Descriptor::new(
                one.media_type.clone(),
                one.digest.clone(),
                one.size,
            )),
            _ if hits.iter().all(|h| h.digest == hits[0].digest) => Ok(Descriptor::new(
                hits[0].media_type.clone(),
                hits[0].digest.clone(),
                hits[0].size,
            )),
            _ => Err(self.err(format!(
                "tag {tag:?} names several different manifests in index.json"
            ))),
        }
    }

    /// Parse a manifest blob if it is a Notary signature about `subject_digest`.
    fn signature_about(&self, digest: &str, subject_digest: &str) -> Option<Descriptor> {
        // Layers are most of a layout's blobs: look at one byte before reading a whole file.
        let mut first = [0u8; 1];
        {
            use std::io::Read as _;
            let mut f = std::fs::File::open(self.blob_path(digest).ok()?).ok()?;
            f.read_exact(&mut first).ok()?;
        }
        if first[0] != b'{' {
            return None;
        }
        let bytes = self.read_blob(digest, MAX_MANIFEST_BYTES).ok()?;
        let m: ImageManifest = serde_json::from_slice(&bytes).ok()?;
        let media_type = m
            .media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        if media_type != OCI_MANIFEST && media_type != ARTIFACT_MANIFEST {
            return None;
        }
        if m.subject.as_ref()?.digest != subject_digest || !m.is_notary_signature() {
            return None;
        }
        let got = format!("sha256:{}", crate::crypto::sha256_hex(&bytes));
        if !digest.starts_with("sha256:") || got != digest {
            return None;
        }
        Some(m.index_entry(&media_type, digest, bytes.len() as u64))
    }

    fn list(&self, subject_digest: &str) -> Result<Vec<Descriptor>, LayoutError> {
        let index = self.read_index()?;
        let mut out: Vec<Descriptor> = Vec::new();
        // 1. The tag schema index, in its order.
        let tag = manifest::referrers_tag(subject_digest);
        let mut candidates: Vec<String> = Vec::new();
        for e in &index.manifests {
            let is_tag = e
                .annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME_ANNOTATION))
                .is_some_and(|t| *t == tag);
            if is_tag && e.media_type == OCI_INDEX {
                if let Ok(bytes) = self.read_blob(&e.digest, super::registry::MAX_INDEX_BYTES) {
                    if let Ok(ri) = serde_json::from_slice::<ImageIndex>(&bytes) {
                        candidates.extend(ri.manifests.into_iter().map(|m| m.digest));
                    }
                }
            }
        }
        // 2. Every manifest index.json lists, then 3. every other blob, sorted by digest.
        candidates.extend(index.manifests.iter().map(|m| m.digest.clone()));
        let mut blobs = Vec::new();
        let dir = self.root.join("blobs").join("sha256");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for entry in rd.flatten() {
                let small = entry
                    .metadata()
                    .is_ok_and(|m| m.is_file() && m.len() <= MAX_MANIFEST_BYTES);
                if let (true, Some(name)) = (small, entry.file_name().to_str()) {
                    blobs.push(format!("sha256:{name}"));
                }
            }
        }
        blobs.sort();
        candidates.extend(blobs);
        let mut checked = HashSet::new();
        for d in candidates {
            if !checked.insert(d.clone()) {
                continue;
            }
            if let Some(desc) = self.signature_about(&d, subject_digest) {
                out.push(desc);
            }
        }
        Ok(out)
    }

    fn push(
        &self,
        subject: &Descriptor,
        envelope_media_type: &str,
        envelope: &[u8],
        annotations: BTreeMap<String, String>,
        form: ManifestForm,
    ) -> Result<PushedSignature, StoreError> {
        if !annotations.contains_key(THUMBPRINT_ANNOTATION) {
            return Err(StoreError::Manifest(format!(
                "a signature manifest must carry the {THUMBPRINT_ANNOTATION} annotation"
            )));
        }
        self.write_blob(EMPTY_CONFIG)?;
        let env_digest = self.write_blob(envelope)?;
        let env = Descriptor::new(envelope_media_type, env_digest, envelope.len() as u64);
        let m = manifest::signature_manifest(subject, env, annotations, form);
        let bytes = serde_json::to_vec(&m).map_err(|e| StoreError::Manifest(e.to_string()))?;
        let digest = self.write_blob(&bytes)?;
        let desc = Descriptor::new(OCI_MANIFEST, digest.clone(), bytes.len() as u64);

        // The tag schema index blob, then index.json (entry for the signature manifest and
        // the re-pointed tag) replaced in one rename, under a lock file so that concurrent
        // signers do not lose each other's entries.
        let _lock = IndexLock::acquire(&self.root).map_err(|e| self.io("locking index.json", e))?;
        let tag = manifest::referrers_tag(&subject.digest);
        let mut index = self.read_index_value()?;
        let entries = index
            .get_mut("manifests")
            .and_then(|m| m.as_array_mut())
            .ok_or_else(|| self.err("index.json has no `manifests` array"))?;
        let tag_pos = entries.iter().position(|e| {
            e.get("annotations")
                .and_then(|a| a.get(REF_NAME_ANNOTATION))
                .and_then(|t| t.as_str())
                == Some(tag.as_str())
        });
        let existing = match tag_pos {
            Some(i) => {
                let d = entries[i]
                    .get("digest")
                    .and_then(|d| d.as_str())
                    .ok_or_else(|| self.err("index.json entry without a digest"))?
                    .to_string();
                Some(self.read_blob(&d, super::registry::MAX_INDEX_BYTES)?)
            }
            None => None,
        };
        let entry = m.index_entry(OCI_MANIFEST, &digest, desc.size);
        if let Some(merged) = manifest::merge_index_entry(existing.as_deref(), &entry)
            .map_err(StoreError::Manifest)?
        {
            let idx_digest = self.write_blob(&merged)?;
            let mut ann = serde_json::Map::new();
            ann.insert(REF_NAME_ANNOTATION.into(), tag.clone().into());
            let idx_entry = serde_json::json!({
                "mediaType": OCI_INDEX,
                "digest": idx_digest,
                "size": merged.len(),
                "annotations": ann,
            });
            match tag_pos {
                Some(i) => entries[i] = idx_entry,
                None => entries.push(idx_entry),
            }
        }
        let listed = entries
            .iter()
            .any(|e| e.get("digest").and_then(|d| d.as_str()) == Some(digest.as_str()));
        if !listed {
            entries.push(serde_json::to_value(&desc).map_err(|e| self.err(e.to_string()))?);
        }
        self.write_index_value(&index)?;
        Ok(PushedSignature {
            manifest: desc,
            storage: Storage::OciLayout,
            index_retries: 0,
        })
    }
}

/// `index.json.lock`, created exclusively and removed on drop.
struct IndexLock(PathBuf);

impl IndexLock {
    fn acquire(root: &Path) -> std::io::Result<IndexLock> {
        let path = root.join("index.json.lock");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(IndexLock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if std::time::Instant::now() > deadline {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::WouldBlock,
                            format!(
                                "{} exists for more than 10 s; if no other signer is running, remove it",
                                path.display()
                            ),
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn read_file_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)?;
    if f.metadata()?.len() > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {max}-byte limit"),
        ));
    }
    let mut out = Vec::new();
    f.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {max}-byte limit"),
        ));
    }
    Ok(out)
}

/// Write via a temporary file in the same directory and rename, so readers never see a
/// half-written file.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn check_layout(store: &OciLayoutStore, reference: &Reference) -> Result<(), StoreError> {
    if !reference.is_layout() {
        return Err(store
            .err(format!(
                "{reference} is a registry reference, not an OCI layout reference"
            ))
            .into());
    }
    Ok(())
}

#[async_trait]
impl ArtifactStore for OciLayoutStore {
    async fn resolve(&self, reference: &Reference) -> Result<Descriptor, StoreError> {
        check_layout(self, reference)?;
        Ok(self.resolve_reference(reference)?)
    }

    async fn push_signature(
        &self,
        reference: &Reference,
        subject: &Descriptor,
        envelope_media_type: &str,
        envelope: &[u8],
        annotations: BTreeMap<String, String>,
        form: ManifestForm,
    ) -> Result<PushedSignature, StoreError> {
        check_layout(self, reference)?;
        self.push(subject, envelope_media_type, envelope, annotations, form)
    }

    async fn list_signatures(
        &self,
        reference: &Reference,
        subject: &Descriptor,
    ) -> Result<Vec<Descriptor>, StoreError> {
        check_layout(self, reference)?;
        Ok(self.list(&subject.digest)?)
    }

    async fn fetch_manifest(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
    ) -> Result<Vec<u8>, StoreError> {
        check_layout(self, reference)?;
        if descriptor.size > MAX_MANIFEST_BYTES {
            return Err(self
                .err(format!(
                    "manifest {} is larger than the {MAX_MANIFEST_BYTES}-byte limit",
                    descriptor.digest
                ))
                .into());
        }
        let bytes = self.read_blob(&descriptor.digest, MAX_MANIFEST_BYTES)?;
        verify_content(descriptor, &bytes)?;
        Ok(bytes)
    }

    async fn fetch_blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        max_bytes: u64,
    ) -> Result<Vec<u8>, StoreError> {
        check_layout(self, reference)?;
        if descriptor.size > max_bytes {
            return Err(self
                .err(format!(
                    "blob {} ({} bytes) is larger than the {max_bytes}-byte limit",
                    descriptor.digest, descriptor.size
                ))
                .into());
        }
        let bytes = self.read_blob(&descriptor.digest, max_bytes)?;
        verify_content(descriptor, &bytes)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

    #[test]
    fn layout_reference_forms() {
        let (p, r) = parse_layout_reference("dir/layout:v1").unwrap();
        assert_eq!(p, PathBuf::from("dir/layout"));
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(r.is_layout());
        assert_eq!(r.to_string(), "dir/layout:v1");
        let (p, r) = parse_layout_reference(&format!("/abs/Lay Out@{D}")).unwrap();
        assert_eq!(p, PathBuf::from("/abs/Lay Out"));
        assert_eq!(r.digest.as_deref(), Some(D));
        let (p, r) = parse_layout_reference("./a:b/c").unwrap();
        assert_eq!((p, r.tag), (PathBuf::from("./a:b/c"), None));
        assert!(parse_layout_reference("x@sha256:abc").is_err());
        assert!(parse_layout_reference("x:-bad").is_err());
        assert!(parse_layout_reference("").is_err());
    }

    #[test]
    fn open_refuses_non_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let e = OciLayoutStore::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("not an OCI image layout"), "{e}");
    }
}
