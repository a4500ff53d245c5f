//! A signer backed by an installed notation plugin, speaking the plugin contract 1.0
//! (digest §9): `get-plugin-metadata`, `describe-key`, then either `generate-signature` for
//! the bytes we want signed (`SIGNATURE_GENERATOR.RAW`; we build the envelope) or
//! `generate-envelope` (`SIGNATURE_GENERATOR.ENVELOPE`; the signing workflow validates the
//! plugin's envelope and keeps its annotations).
//!
//! Hand-written because the contract is a small JSON-over-stdio protocol and no maintained Rust
//! client exists. Every response is treated as hostile: output is capped, each call has a
//! time-out (the child is killed), the key id must be echoed, the algorithm must be the one the
//! key spec fixes, and every signature is verified against the returned leaf certificate
//! before it is used.
//!
//! The `Signer` interface needs the certificate chain before the first signature (the chain
//! is validated before anything is pushed), but a RAW plugin only returns it with a
//! signature. So opening the signer asks for one signature over a fixed probe text, which also
//! proves the key works; later signatures must come with the same chain.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::crypto::{
    CryptoError, EnvelopeGenerator, GeneratedEnvelope, HashAlgorithm, KeySpec, Signer,
};

/// The contract version we speak.
pub const CONTRACT_VERSION: &str = "1.0";
/// Cap on what a plugin may write to stdout or stderr.
pub const MAX_PLUGIN_OUTPUT: u64 = 64 * 1024 * 1024;
/// Default time limit for one plugin call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

pub const CAP_RAW: &str = "SIGNATURE_GENERATOR.RAW";
pub const CAP_ENVELOPE: &str = "SIGNATURE_GENERATOR.ENVELOPE";
pub const CAP_TRUSTED_IDENTITY: &str = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY";
pub const CAP_REVOCATION_CHECK: &str = "SIGNATURE_VERIFIER.REVOCATION_CHECK";

/// Problems finding, running or trusting a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    #[error("invalid plugin name {0:?}: use letters, digits, '.', '_' and '-' only")]
    BadName(String),
    #[error("plugin {name:?} is not installed: expected an executable regular file at {path} (install it as notation does, or give --plugin-path)")]
    NotFound { name: String, path: String },
    #[error("plugin {name:?}: {path} must be an executable regular file (not a symlink)")]
    NotExecutable { name: String, path: String },
    #[error("plugin {name:?} {command}: cannot run it: {reason}")]
    Spawn {
        name: String,
        command: String,
        reason: String,
    },
    #[error("plugin {name:?} {command}: no answer within {seconds} s; the plugin was stopped")]
    Timeout {
        name: String,
        command: String,
        seconds: u64,
    },
    #[error("plugin {name:?} {command}: output exceeds {MAX_PLUGIN_OUTPUT} bytes")]
    Oversize { name: String, command: String },
    #[error("plugin {name:?} {command} failed with {code}: {message}")]
    Failed {
        name: String,
        command: String,
        code: String,
        message: String,
    },
    #[error("plugin {name:?} {command}: invalid response: {reason}")]
    BadResponse {
        name: String,
        command: String,
        reason: String,
    },
    #[error("plugin {name:?} cannot sign: {reason}")]
    Unsupported { name: String, reason: String },
}

/// Where notation installs plugins: `{config}/plugins/<name>/notation-<name>`.
pub fn installed_plugin_path(config_dir: &Path, name: &str) -> Result<PathBuf, PluginError> {
    check_name(name)?;
    let file = if cfg!(windows) {
        format!("notation-{name}.exe")
    } else {
        format!("notation-{name}")
    };
    Ok(config_dir.join("plugins").join(name).join(file))
}

fn check_name(name: &str) -> Result<(), PluginError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(PluginError::BadName(name.to_string()))
    }
}

/// A runnable plugin executable.
#[derive(Debug, Clone)]
pub struct Plugin {
    name: String,
    path: PathBuf,
    timeout: Duration,
}

impl Plugin {
    /// The plugin `name` at `path` (checked: a regular executable file, not a symlink).
    pub fn at(name: &str, path: &Path) -> Result<Plugin, PluginError> {
        check_name(name)?;
        let meta = std::fs::symlink_metadata(path).map_err(|_| PluginError::NotFound {
            name: name.to_string(),
            path: path.display().to_string(),
        })?;
        let not_exec = || PluginError::NotExecutable {
            name: name.to_string(),
            path: path.display().to_string(),
        };
        if !meta.file_type().is_file() {
            return Err(not_exec());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o111 == 0 {
                return Err(not_exec());
            }
        }
        Ok(Plugin {
            name: name.to_string(),
            path: path.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The plugin `name` installed under notation's configuration directory.
    pub fn installed(config_dir: &Path, name: &str) -> Result<Plugin, PluginError> {
        Plugin::at(name, &installed_plugin_path(config_dir, name)?)
    }

    /// The plugin `name` in a plugin directory laid out as notation's
    /// (`{plugins_dir}/<name>/notation-<name>`).
    pub fn in_plugins_dir(plugins_dir: &Path, name: &str) -> Result<Plugin, PluginError> {
        check_name(name)?;
        let file = installed_plugin_path(Path::new(""), name)?;
        let file = file.file_name().unwrap_or_default();
        Plugin::at(name, &plugins_dir.join(name).join(file))
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Plugin {
        self.timeout = timeout;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run `command` with `request` on stdin; the parsed JSON object on stdout.
    pub async fn call(&self, command: &str, request: &Value) -> Result<Value, PluginError> {
        let spawn_err = |reason: String| PluginError::Spawn {
            name: self.name.clone(),
            command: command.to_string(),
            reason,
        };
        let mut child = tokio::process::Command::new(&self.path)
            .arg(command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_err(e.to_string()))?;
        let body = serde_json::to_vec(request).expect("JSON values serialise");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let oversize = || PluginError::Oversize {
            name: self.name.clone(),
            command: command.to_string(),
        };
        let work = async {
            // A plugin that does not read its input must not block us: write concurrently.
            let write = async {
                let _ = stdin.write_all(&body).await;
                drop(stdin);
                Ok(())
            };
            // Stop reading at the first oversized stream; returning drops (kills) the child.
            let (_, out, err) = tokio::try_join!(
                write,
                read_capped(&mut stdout, &oversize),
                read_capped(&mut stderr, &oversize)
            )?;
            let status = child.wait().await;
            Ok::<_, PluginError>((out, err, status))
        };
        let (out, err, status) = match tokio::time::timeout(self.timeout, work).await {
            Ok(done) => done?,
            Err(_) => {
                return Err(PluginError::Timeout {
                    name: self.name.clone(),
                    command: command.to_string(),
                    seconds: self.timeout.as_secs(),
                })
            }
        };
        let status = status.map_err(|e| spawn_err(e.to_string()))?;
        if !status.success() {
            return Err(self.failure(command, &status, &err));
        }
        let value: Value = serde_json::from_slice(&out)
            .map_err(|e| self.bad(command, format!("stdout is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(self.bad(command, "stdout is not a JSON object".into()));
        }
        Ok(value)
    }

    fn bad(&self, command: &str, reason: String) -> PluginError {
        PluginError::BadResponse {
            name: self.name.clone(),
            command: command.to_string(),
            reason,
        }
    }

    /// The error a failed call reports: the plugin's JSON error when it wrote one.
    fn failure(
        &self,
        command: &str,
        status: &std::process::ExitStatus,
        stderr: &[u8],
    ) -> PluginError {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct PluginFailure {
            error_code: String,
            #[serde(default)]
            error_message: String,
        }
        const CODES: [&str; 6] = [
            "VALIDATION_ERROR",
            "UNSUPPORTED_CONTRACT_VERSION",
            "ACCESS_DENIED",
            "TIMEOUT",
            "THROTTLED",
            "ERROR",
        ];
        match serde_json::from_slice::<PluginFailure>(stderr) {
            Ok(f) if CODES.contains(&f.error_code.as_str()) => PluginError::Failed {
                name: self.name.clone(),
                command: command.to_string(),
                code: f.error_code,
                message: printable(&f.error_message),
            },
            _ => PluginError::Failed {
                name: self.name.clone(),
                command: command.to_string(),
                code: format!(
                    "exit status {}",
                    status
                        .code()
                        .map_or("signal".to_string(), |c| c.to_string())
                ),
                message: "the plugin wrote no valid error response".into(),
            },
        }
    }

    /// `get-plugin-metadata`, checked as digest §9 requires.
    pub async fn metadata(
        &self,
        config: &BTreeMap<String, String>,
    ) -> Result<Metadata, PluginError> {
        const COMMAND: &str = "get-plugin-metadata";
        let v = self
            .call(COMMAND, &json!({ "pluginConfig": config }))
            .await?;
        let text = |field: &str| -> Result<String, PluginError> {
            match v.get(field).and_then(Value::as_str) {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(self.bad(COMMAND, format!("`{field}` must be a non-empty string"))),
            }
        };
        let list = |field: &str| -> Result<Vec<String>, PluginError> {
            let items = v
                .get(field)
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| self.bad(COMMAND, format!("`{field}` must be a non-empty array")))?;
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(String::from)
                        .ok_or_else(|| self.bad(COMMAND, format!("`{field}` must hold strings")))
                })
                .collect()
        };
        let metadata = Metadata {
            name: text("name")?,
            description: text("description")?,
            version: text("version")?,
            url: text("url")?,
            supported_contract_versions: list("supportedContractVersions")?,
            capabilities: list("capabilities")?,
        };
        if metadata.name != self.name {
            return Err(self.bad(
                COMMAND,
                format!(
                    "it calls itself {:?}, but is installed as {:?}",
                    printable(&metadata.name),
                    self.name
                ),
            ));
        }
        if !metadata
            .supported_contract_versions
            .iter()
            .any(|c| c == CONTRACT_VERSION)
        {
            return Err(PluginError::Unsupported {
                name: self.name.clone(),
                reason: format!("it does not support plugin contract version {CONTRACT_VERSION}"),
            });
        }
        Ok(metadata)
    }
}

/// One capability's answer in a `verify-signature` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationResult {
    pub success: bool,
    pub reason: String,
}

/// A checked `verify-signature` response.
#[derive(Debug, Clone, Default)]
pub struct VerifyResponse {
    pub results: BTreeMap<String, VerificationResult>,
    pub processed_attributes: Vec<String>,
}

impl Plugin {
    /// `verify-signature` (digest §9) with a request the verifier built; the response's shape
    /// is checked here, its meaning by the verifier.
    pub async fn verify_signature(&self, request: &Value) -> Result<VerifyResponse, PluginError> {
        const COMMAND: &str = "verify-signature";
        let v = self.call(COMMAND, request).await?;
        let results = v
            .get("verificationResults")
            .and_then(Value::as_object)
            .ok_or_else(|| self.bad(COMMAND, "`verificationResults` must be an object".into()))?;
        let mut response = VerifyResponse::default();
        for (capability, result) in results {
            let success = result
                .get("success")
                .and_then(Value::as_bool)
                .ok_or_else(|| {
                    self.bad(
                        COMMAND,
                        format!(
                            "the result for {} has no boolean `success`",
                            printable(capability)
                        ),
                    )
                })?;
            let reason = result
                .get("reason")
                .and_then(Value::as_str)
                .map(printable)
                .unwrap_or_default();
            response
                .results
                .insert(capability.clone(), VerificationResult { success, reason });
        }
        match v.get("processedAttributes") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let name = item.as_str().ok_or_else(|| {
                        self.bad(COMMAND, "`processedAttributes` must hold strings".into())
                    })?;
                    response.processed_attributes.push(name.to_string());
                }
            }
            Some(_) => {
                return Err(self.bad(
                    COMMAND,
                    "`processedAttributes` must be an array of strings".into(),
                ))
            }
        }
        Ok(response)
    }
}

/// A Semantic Versioning 2.0 version: numeric core and pre-release identifiers (build
/// metadata is ignored for precedence). Hand-written: comparing against
/// `verificationPluginMinVersion` is the only use, and a crate would be larger than this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    core: [u64; 3],
    pre: Vec<String>,
}

impl SemVer {
    /// Parse `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, with an optional leading `v` (notation writes
    /// versions either way).
    pub fn parse(text: &str) -> Option<SemVer> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let text = text
            .split_once('+')
            .map_or(text, |(v, build)| if build.is_empty() { "" } else { v });
        let (core, pre) = match text.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (text, None),
        };
        let numeric = |s: &str| -> Option<u64> {
            let ok = !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && (s == "0" || !s.starts_with('0'));
            if ok {
                s.parse().ok()
            } else {
                None
            }
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() != 3 {
            return None;
        }
        let core = [numeric(parts[0])?, numeric(parts[1])?, numeric(parts[2])?];
        let pre = match pre {
            None => Vec::new(),
            Some(p) => {
                let ids: Vec<String> = p.split('.').map(String::from).collect();
                let valid = ids.iter().all(|i| {
                    !i.is_empty()
                        && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !(i.len() > 1
                            && i.starts_with('0')
                            && i.bytes().all(|b| b.is_ascii_digit()))
                });
                if !valid {
                    return None;
                }
                ids
            }
        };
        Some(SemVer { core, pre })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let order = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.cmp(b),
                        };
                        if order != Ordering::Equal {
                            return order;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

/// Keep plugin-supplied text to one printable line of bounded length.
fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect();
    if s.chars().count() > 500 {
        out.push('…');
    }
    out
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    oversize: &impl Fn() -> PluginError,
) -> Result<Vec<u8>, PluginError> {
    let mut buf = Vec::new();
    let mut limited = r.take(MAX_PLUGIN_OUTPUT + 1);
    // A read error leaves what was read; the exit status and parsing decide the outcome.
    let _ = limited.read_to_end(&mut buf).await;
    if buf.len() as u64 > MAX_PLUGIN_OUTPUT {
        Err(oversize())
    } else {
        Ok(buf)
    }
}

/// A plugin's `get-plugin-metadata` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub name: String,
    pub description: String,
    pub version: String,
    pub url: String,
    pub supported_contract_versions: Vec<String>,
    pub capabilities: Vec<String>,
}

fn hash_name(h: HashAlgorithm) -> &'static str {
    match h {
        HashAlgorithm::Sha256 => "SHA-256",
        HashAlgorithm::Sha384 => "SHA-384",
        HashAlgorithm::Sha512 => "SHA-512",
    }
}

/// A notation plugin with the RAW generator capability, used as a [`Signer`].
#[derive(Debug)]
pub struct PluginSigner {
    plugin: Plugin,
    key_id: String,
    config: BTreeMap<String, String>,
    spec: KeySpec,
    chain: Vec<Vec<u8>>,
    /// The plugin builds envelopes (`SIGNATURE_GENERATOR.ENVELOPE`).
    envelope_mode: bool,
}

/// The Notary payload media type, as `generate-envelope` names it.
const PAYLOAD_TYPE: &str = "application/vnd.cncf.notary.payload.v1+json";

/// The text signed once when the signer opens (see the module documentation).
const PROBE: &[u8] = b"sign-action: notation plugin key check (not a Notary payload)";

impl PluginSigner {
    /// Check the plugin's metadata, describe the key and obtain its chain with one probe
    /// signature (verified against the returned leaf).
    pub async fn open(
        plugin: Plugin,
        key_id: &str,
        config: BTreeMap<String, String>,
    ) -> Result<PluginSigner, PluginError> {
        let metadata = plugin.metadata(&config).await?;
        let has = |cap: &str| metadata.capabilities.iter().any(|c| c == cap);
        // RAW is preferred: we then build (and can timestamp) the envelope ourselves.
        let envelope_mode = if has(CAP_RAW) {
            false
        } else if has(CAP_ENVELOPE) {
            true
        } else {
            return Err(PluginError::Unsupported {
                name: plugin.name.clone(),
                reason: format!(
                    "it declares neither {CAP_RAW} nor {CAP_ENVELOPE} among its capabilities"
                ),
            });
        };
        const DESCRIBE: &str = "describe-key";
        let v = plugin
            .call(
                DESCRIBE,
                &json!({"contractVersion": CONTRACT_VERSION, "keyId": key_id, "pluginConfig": config}),
            )
            .await?;
        if v.get("keyId").and_then(Value::as_str) != Some(key_id) {
            return Err(plugin.bad(
                DESCRIBE,
                "`keyId` does not echo the requested key id".into(),
            ));
        }
        let spec_name = v.get("keySpec").and_then(Value::as_str).unwrap_or_default();
        let spec = KeySpec::from_name(spec_name).ok_or_else(|| {
            plugin.bad(
                DESCRIBE,
                format!(
                    "`keySpec` {:?} is not one of RSA-2048/3072/4096, EC-256/384/521",
                    printable(spec_name)
                ),
            )
        })?;
        let mut signer = PluginSigner {
            plugin,
            key_id: key_id.to_string(),
            config,
            spec,
            chain: Vec::new(),
            envelope_mode,
        };
        if !envelope_mode {
            let (_, chain) = signer.generate(PROBE).await?;
            signer.chain = chain;
        }
        Ok(signer)
    }

    /// One `generate-envelope` call, with the response's own fields checked; the envelope
    /// itself is checked by the signing workflow.
    async fn envelope(
        &self,
        media_type: &str,
        payload: &[u8],
        expiry: Option<Duration>,
    ) -> Result<GeneratedEnvelope, PluginError> {
        const COMMAND: &str = "generate-envelope";
        let mut request = json!({
            "contractVersion": CONTRACT_VERSION,
            "keyId": self.key_id,
            "payloadType": PAYLOAD_TYPE,
            "signatureEnvelopeType": media_type,
            "payload": B64.encode(payload),
            "pluginConfig": self.config,
        });
        if let Some(expiry) = expiry {
            request["expiryDurationInSeconds"] = json!(expiry.as_secs());
        }
        let v = self.plugin.call(COMMAND, &request).await?;
        let bad = |reason: &str| self.plugin.bad(COMMAND, reason.to_string());
        if v.get("signatureEnvelopeType").and_then(Value::as_str) != Some(media_type) {
            return Err(bad(
                "`signatureEnvelopeType` differs from the requested type",
            ));
        }
        let envelope = v
            .get("signatureEnvelope")
            .and_then(Value::as_str)
            .and_then(|s| B64.decode(s).ok())
            .filter(|e| !e.is_empty())
            .ok_or_else(|| bad("`signatureEnvelope` must be non-empty standard base64"))?;
        let mut annotations = BTreeMap::new();
        match v.get("annotations") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (k, value) in map {
                    let value = value
                        .as_str()
                        .ok_or_else(|| bad("`annotations` values must be strings"))?;
                    annotations.insert(k.clone(), value.to_string());
                }
            }
            Some(_) => return Err(bad("`annotations` must be an object of strings")),
        }
        Ok(GeneratedEnvelope {
            envelope,
            annotations,
        })
    }

    /// One `generate-signature` call, fully checked; the raw signature and the chain.
    async fn generate(&self, message: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), PluginError> {
        const COMMAND: &str = "generate-signature";
        let alg = self.spec.signature_algorithm();
        let v = self
            .plugin
            .call(
                COMMAND,
                &json!({
                    "contractVersion": CONTRACT_VERSION,
                    "keyId": self.key_id,
                    "pluginConfig": self.config,
                    "keySpec": self.spec.name(),
                    "hashAlgorithm": hash_name(alg.hash()),
                    "payload": B64.encode(message),
                }),
            )
            .await?;
        let bad = |reason: &str| self.plugin.bad(COMMAND, reason.to_string());
        if v.get("keyId").and_then(Value::as_str) != Some(self.key_id.as_str()) {
            return Err(bad("`keyId` does not echo the requested key id"));
        }
        if v.get("signingAlgorithm").and_then(Value::as_str) != Some(alg.plugin_name()) {
            return Err(self.plugin.bad(
                COMMAND,
                format!(
                    "`signingAlgorithm` must be {} for a {} key",
                    alg.plugin_name(),
                    self.spec.name()
                ),
            ));
        }
        let signature = v
            .get("signature")
            .and_then(Value::as_str)
            .and_then(|s| B64.decode(s).ok())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("`signature` must be non-empty standard base64"))?;
        let chain = v
            .get("certificateChain")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| bad("`certificateChain` must be a non-empty array"))?
            .iter()
            .map(|c| c.as_str().and_then(|s| B64.decode(s).ok()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("`certificateChain` must hold standard base64 DER certificates"))?;
        let leaf = crate::x509::Certificate::from_der(&chain[0])
            .map_err(|e| self.plugin.bad(COMMAND, format!("leaf certificate: {e}")))?;
        let leaf_spki = leaf.spki_der();
        if KeySpec::from_spki_der(&leaf_spki).ok() != Some(self.spec) {
            return Err(self.plugin.bad(
                COMMAND,
                format!(
                    "the leaf certificate's key is not the {} key describe-key announced",
                    self.spec.name()
                ),
            ));
        }
        crate::crypto::verify_signature(alg, &leaf_spki, message, &signature).map_err(|_| {
            bad("the signature does not verify with the leaf certificate's public key")
        })?;
        if !self.chain.is_empty() && chain != self.chain {
            return Err(bad("the certificate chain changed between signatures"));
        }
        Ok((signature, chain))
    }
}

#[async_trait]
impl Signer for PluginSigner {
    fn key_spec(&self) -> KeySpec {
        self.spec
    }

    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.generate(message)
            .await
            .map(|(signature, _)| signature)
            .map_err(|e| CryptoError::SigningFailed(e.to_string()))
    }

    fn envelope_generator(&self) -> Option<&dyn EnvelopeGenerator> {
        if self.envelope_mode {
            Some(self)
        } else {
            None
        }
    }
}

#[async_trait]
impl EnvelopeGenerator for PluginSigner {
    async fn generate_envelope(
        &self,
        media_type: &str,
        payload: &[u8],
        expiry: Option<Duration>,
    ) -> Result<GeneratedEnvelope, CryptoError> {
        self.envelope(media_type, payload, expiry)
            .await
            .map_err(|e| CryptoError::SigningFailed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_paths_follow_notation() {
        for bad in ["", ".", "..", "a/b", "a\\b", "x y"] {
            assert!(
                installed_plugin_path(Path::new("/c"), bad).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            installed_plugin_path(Path::new("/c"), "com.example.kms").unwrap(),
            Path::new("/c/plugins/com.example.kms/notation-com.example.kms")
        );
    }

    #[test]
    fn missing_and_non_executable_plugins_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Plugin::installed(dir.path(), "absent").unwrap_err();
        assert!(
            err.to_string().contains("\"absent\" is not installed"),
            "{err}"
        );
        let p = installed_plugin_path(dir.path(), "noexec").unwrap();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        let err = Plugin::installed(dir.path(), "noexec").unwrap_err();
        assert!(matches!(err, PluginError::NotExecutable { .. }), "{err}");
    }

    #[test]
    fn semver_precedence_follows_the_specification() {
        let v = |s: &str| SemVer::parse(s).unwrap_or_else(|| panic!("{s}"));
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(v("v1.2.3"), v("1.2.3+build.7"));
        for bad in [
            "", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.x", "1.2.3-", "1.2.3-01", "1.2.3+",
        ] {
            assert!(SemVer::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn printable_strips_controls_and_bounds_length() {
        assert_eq!(printable("a\nb\x1b[31m"), "a b [31m");
        assert_eq!(printable(&"x".repeat(600)).chars().count(), 501);
    }
}
