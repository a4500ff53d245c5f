//! `list` and `inspect`: what signatures an artifact has, and what each says, without judging
//! trust. Everything shown comes from the envelope as parsed; nothing here is verified.

use serde::Serialize;

use crate::envelope::{self, ParsedEnvelope, Payload};
use crate::oci::manifest::ImageManifest;
use crate::oci::{ArtifactStore, Descriptor, Reference, StoreError, MAX_ENVELOPE_BYTES};
use crate::x509::Certificate;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CertificateDetails {
    pub subject: String,
    pub issuer: String,
    pub sha256_fingerprint: String,
    pub not_before: String,
    pub not_after: String,
    /// For a keyless (Fulcio) certificate: the workflow URI, repository, ref and OIDC issuer
    /// it binds (unverified, like everything `inspect` shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyless_identity: Option<crate::x509::fulcio::KeylessIdentity>,
}

impl CertificateDetails {
    pub fn of(cert: &Certificate) -> Self {
        CertificateDetails {
            subject: cert.subject(),
            issuer: cert.issuer(),
            sha256_fingerprint: cert.sha256_fingerprint(),
            not_before: crate::sign::rfc3339_utc(cert.not_before()),
            not_after: crate::sign::rfc3339_utc(cert.not_after()),
            keyless_identity: crate::x509::fulcio::keyless_identity(cert).ok().flatten(),
        }
    }
}

/// An embedded timestamp token as it reads, unverified.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TimestampDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gen_time: Option<String>,
    /// [genTime − accuracy, genTime + accuracy].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsa_subject: Option<String>,
    /// SHA-256 fingerprints of the certificates the token carries, TSA certificate first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tsa_certificates: Vec<String>,
    /// The token could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One signature as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SignatureDetails {
    /// Digest of the signature manifest.
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_agent: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificate_chain: Vec<CertificateDetails>,
    /// Whether an RFC 3161 countersignature is embedded; `None` when the envelope was not
    /// read (`list`), so that listing never claims a signature is untimestamped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamped: Option<bool>,
    /// What the embedded RFC 3161 token claims (not verified here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimestampDetails>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub user_metadata: std::collections::BTreeMap<String, String>,
    /// Set when the signature could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every signature of one artifact.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct InspectReport {
    pub reference: String,
    pub digest: String,
    pub media_type: String,
    pub signatures: Vec<SignatureDetails>,
    /// More signatures exist than were read.
    pub truncated: bool,
}

/// List (and with `details`, read) up to `max` signatures of `reference`.
pub async fn inspect(
    store: &dyn ArtifactStore,
    input: &str,
    reference: &Reference,
    max: usize,
    details: bool,
) -> Result<InspectReport, StoreError> {
    let artifact = store.resolve(reference).await?;
    let listed = store.list_signatures(reference, &artifact).await?;
    let truncated = listed.len() > max;
    let mut signatures = Vec::new();
    for descriptor in listed.iter().take(max) {
        let mut entry = SignatureDetails {
            digest: descriptor.digest.clone(),
            artifact_type: descriptor.artifact_type.clone(),
            media_type: None,
            format: None,
            signing_scheme: None,
            signing_time: None,
            expiry: None,
            signing_agent: None,
            certificate_chain: Vec::new(),
            timestamped: None,
            timestamp: None,
            user_metadata: Default::default(),
            error: None,
        };
        if details {
            match read_envelope(store, reference, descriptor).await {
                Ok((media_type, env)) => fill(&mut entry, media_type, &env),
                Err(e) => entry.error = Some(e),
            }
        }
        signatures.push(entry);
    }
    Ok(InspectReport {
        reference: input.to_string(),
        digest: artifact.digest,
        media_type: artifact.media_type,
        signatures,
        truncated,
    })
}

async fn read_envelope(
    store: &dyn ArtifactStore,
    reference: &Reference,
    descriptor: &Descriptor,
) -> Result<(String, ParsedEnvelope), String> {
    let bytes = store
        .fetch_manifest(reference, descriptor)
        .await
        .map_err(|e| e.to_string())?;
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| format!("not an image manifest: {e}"))?;
    let layer = match manifest.layers.as_slice() {
        [one] => one,
        layers => {
            return Err(format!(
                "a signature manifest has exactly one layer, this one has {}",
                layers.len()
            ))
        }
    };
    let envelope_bytes = store
        .fetch_blob(reference, layer, MAX_ENVELOPE_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    let parsed = envelope::parse(&layer.media_type, &envelope_bytes).map_err(|e| e.to_string())?;
    Ok((layer.media_type.clone(), parsed))
}

fn fill(entry: &mut SignatureDetails, media_type: String, env: &ParsedEnvelope) {
    entry.media_type = Some(media_type);
    entry.format = Some(env.format.name().to_string());
    entry.signing_scheme = Some(env.signing_scheme.as_str().to_string());
    entry.signing_time = env
        .signing_time
        .or(env.authentic_signing_time)
        .map(crate::sign::rfc3339_utc);
    entry.expiry = env.expiry.map(crate::sign::rfc3339_utc);
    entry.signing_agent = env.signing_agent.clone();
    entry.timestamped = Some(env.timestamp_token.is_some());
    entry.timestamp = env.timestamp_token.as_deref().map(|token| {
        match crate::timestamp::parse_token_info(token) {
            Ok(info) => TimestampDetails {
                gen_time: Some(crate::verify::rfc3339_millis(info.gen_time)),
                range_start: Some(crate::verify::rfc3339_millis(info.range.0)),
                range_end: Some(crate::verify::rfc3339_millis(info.range.1)),
                tsa_subject: Some(info.tsa_subject),
                tsa_certificates: info.tsa_chain,
                error: None,
            },
            Err(e) => TimestampDetails {
                gen_time: None,
                range_start: None,
                range_end: None,
                tsa_subject: None,
                tsa_certificates: Vec::new(),
                error: Some(e.to_string()),
            },
        }
    });
    entry.certificate_chain = env
        .certificate_chain
        .iter()
        .filter_map(|der| Certificate::from_der(der).ok())
        .map(|c| CertificateDetails::of(&c))
        .collect();
    if let Ok(payload) = Payload::parse(&env.payload) {
        entry.user_metadata = payload.target_artifact.annotations.unwrap_or_default();
    }
}
