//! A signer whose key stays in Azure Key Vault, reached through GitHub's OIDC token: Microsoft
//! Entra ID's client-credentials flow with the GitHub token as the federated client assertion
//! gives a Key Vault access token, and the Key Vault `sign` operation signs the digest we compute
//! locally.
//!
//! # Why the REST API and not the SDK
//! `azure_identity` + `azure_security_keyvault_keys` would add 52 crates, among them a second
//! HTTP client (reqwest 0.13 beside our 0.12), QUIC (`quinn`) and platform certificate
//! verifiers, for four documented calls (token, get key, get certificate/secret, sign) that are
//! plain JSON over HTTPS. CI has 2 cores and 30 minutes for everything; those calls are ~200
//! lines here on the HTTP client we already build (`crate::net`: rustls, timeouts, no
//! redirects, bounded reads).
//!
//! # What is refused before any signature
//! The key is read first (`GET {vault}/keys/{name}/{version}`): only RSA 2048/3072/4096 and EC
//! P-256/384/521 keys that allow `sign` map to the Notary table; `P-256K`, other RSA sizes,
//! `oct` keys and disabled keys are refused before `sign` is ever called, and the leaf
//! certificate's public key must be exactly the vault key.
//!
//! # The certificate chain
//! From the user (`certificate-chain`), or from the Key Vault certificate of the same name and
//! version: its `cer` is the leaf; a self-signed leaf is the whole chain, otherwise the full
//! chain is read from the certificate's secret when it is stored as PEM. A secret that also
//! holds the private key (an exportable key) is refused: the point of a vault key is that it
//! never comes to the runner. Create the certificate with a non-exportable key, or give the
//! chain.
//!
//! The GitHub token, the access token and the secret's contents are held in zeroizing strings
//! and never formatted; service error texts are sanitised before they are shown.

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::kms::{
    check_returned_signature, leaf_key_spec, sanitise_service_text, MAX_ANSWER_BYTES,
    REQUEST_TIMEOUT,
};
use crate::crypto::{CryptoError, KeySpec, Signer};
use crate::oidc::IdToken;
use crate::x509::Certificate;

/// The audience Microsoft documents for workload identity federation.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Microsoft Entra ID's global authority (`AZURE_AUTHORITY_HOST` overrides it).
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
const API_VERSION: &str = "7.4";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AzureKvError {
    #[error("Azure Key Vault configuration: {0}")]
    Config(String),
    #[error("Microsoft Entra ID token exchange for client {client_id} in tenant {tenant_id} failed: {detail}")]
    Token {
        tenant_id: String,
        client_id: String,
        detail: String,
    },
    #[error("Azure Key Vault {operation} failed: {detail}")]
    Vault {
        operation: &'static str,
        detail: String,
    },
    #[error("the Azure Key Vault key {key} cannot sign Notary signatures: {reason}")]
    ForbiddenKey { key: String, reason: String },
    #[error("certificate chain: {0}")]
    Chain(String),
    #[error("the leaf certificate's public key is not the public key of the Key Vault key {key}")]
    KeyCertMismatch { key: String },
}

/// Where the key is and who we are.
#[derive(Debug, Clone)]
pub struct AzureKvConfig {
    /// Key identifier: `https://VAULT.vault.azure.net/keys/NAME[/VERSION]`.
    pub key_id: String,
    pub tenant_id: String,
    /// The application (client) id of the app registration or managed identity that has the
    /// federated credential for this repository.
    pub client_id: String,
    /// `https://login.microsoftonline.com` unless given (`AZURE_AUTHORITY_HOST`).
    pub authority_host: Option<String>,
    /// DER certificates, leaf first; `None` reads the Key Vault certificate.
    pub chain: Option<Vec<Vec<u8>>>,
}

/// A parsed key identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyId {
    vault: url::Url,
    name: String,
    version: Option<String>,
}

impl KeyId {
    fn parse(key_id: &str) -> Result<KeyId, AzureKvError> {
        let bad = || {
            AzureKvError::Config(format!(
                "{key_id:?} is not a Key Vault key identifier (https://VAULT.vault.azure.net/keys/NAME[/VERSION])"
            ))
        };
        let url =
            crate::net::secure_url(key_id).map_err(|e| AzureKvError::Config(e.to_string()))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad());
        }
        let segments: Vec<&str> = url
            .path_segments()
            .ok_or_else(bad)?
            .filter(|s| !s.is_empty())
            .collect();
        let valid = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let (name, version) = match segments.as_slice() {
            ["keys", name] => (*name, None),
            ["keys", name, version] => (*name, Some(version.to_string())),
            _ => return Err(bad()),
        };
        if !valid(name) || version.as_deref().is_some_and(|v| !valid(v)) {
            return Err(bad());
        }
        let mut vault = url.clone();
        vault.set_path("");
        Ok(KeyId {
            vault,
            name: name.to_string(),
            version,
        })
    }

    fn url(&self, collection: &str, version: Option<&str>) -> url::Url {
        let mut u = self.vault.clone();
        let path = match version {
            Some(v) => format!("/{collection}/{}/{v}", self.name),
            None => format!("/{collection}/{}", self.name),
        };
        u.set_path(&path);
        u.query_pairs_mut().append_pair("api-version", API_VERSION);
        u
    }
}

/// An Azure Key Vault key with its certificate chain.
pub struct AzureKeyVaultSigner {
    client: reqwest::Client,
    access_token: Zeroizing<String>,
    /// `{vault}/keys/{name}/{version}` as the vault named it: signing pins the version read.
    sign_url: url::Url,
    key_name: String,
    spec: KeySpec,
    leaf_spki: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for AzureKeyVaultSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeyVaultSigner")
            .field("key", &self.key_name)
            .field("key_spec", &self.spec)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    key_ops: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct KeyBundle {
    key: Jwk,
    attributes: Option<Attributes>,
}

#[derive(Debug, Deserialize)]
struct Attributes {
    enabled: Option<bool>,
}

impl AzureKeyVaultSigner {
    /// Exchange `token` for a Key Vault access token, read the key and the chain, and check
    /// they belong together. Nothing is signed here.
    pub async fn open(
        config: AzureKvConfig,
        token: &IdToken,
    ) -> Result<AzureKeyVaultSigner, AzureKvError> {
        let key = KeyId::parse(&config.key_id)?;
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        };
        if !id_ok(&config.tenant_id) {
            return Err(AzureKvError::Config(format!(
                "{:?} is not a tenant id (a GUID or a domain such as contoso.onmicrosoft.com)",
                config.tenant_id
            )));
        }
        if !id_ok(&config.client_id) {
            return Err(AzureKvError::Config(format!(
                "{:?} is not a client id (the application's GUID)",
                config.client_id
            )));
        }
        let authority = config
            .authority_host
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_AUTHORITY.to_string());
        let mut token_url =
            crate::net::secure_url(&authority).map_err(|e| AzureKvError::Config(e.to_string()))?;
        let base = token_url.path().trim_end_matches('/').to_string();
        token_url.set_path(&format!("{base}/{}/oauth2/v2.0/token", config.tenant_id));
        let client = crate::net::https_client(REQUEST_TIMEOUT)
            .map_err(|e| AzureKvError::Config(e.to_string()))?;
        let access_token = exchange_token(&client, &token_url, &config, token).await?;
        let mut signer = AzureKeyVaultSigner {
            client,
            access_token,
            sign_url: key.url("keys", key.version.as_deref()),
            key_name: key.name.clone(),
            spec: KeySpec::EcP256,
            leaf_spki: Vec::new(),
            chain: Vec::new(),
        };

        let bundle: KeyBundle = signer
            .get_json("get key", key.url("keys", key.version.as_deref()))
            .await?;
        let spec = check_key(&bundle, &config.key_id)?;
        // Pin the version the vault answered with, so signing cannot pick up a rotated key.
        let version = bundle
            .key
            .kid
            .as_deref()
            .and_then(|kid| kid.rsplit('/').next())
            .filter(|v| !v.is_empty() && *v != key.name)
            .map(String::from)
            .or(key.version.clone());
        signer.sign_url = key.url("keys", version.as_deref());

        let chain = match config.chain {
            Some(chain) => chain,
            None => signer.chain_from_vault(&key, version.as_deref()).await?,
        };
        let (leaf_spec, leaf_spki) = leaf_key_spec(&chain).map_err(AzureKvError::Chain)?;
        if leaf_spec != spec || !jwk_matches_spki(&bundle.key, &leaf_spki) {
            return Err(AzureKvError::KeyCertMismatch { key: config.key_id });
        }
        signer.spec = spec;
        signer.leaf_spki = leaf_spki;
        signer.chain = chain;
        Ok(signer)
    }

    /// A Key Vault GET with the access token, decoded as `T`.
    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        operation: &'static str,
        url: url::Url,
    ) -> Result<T, AzureKvError> {
        let body = self.vault_request(operation, self.client.get(url)).await?;
        serde_json::from_slice(&body).map_err(|_| AzureKvError::Vault {
            operation,
            detail: "the answer is not the documented JSON".into(),
        })
    }

    async fn vault_request(
        &self,
        operation: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Zeroizing<Vec<u8>>, AzureKvError> {
        let fail = |detail: String| AzureKvError::Vault { operation, detail };
        let resp = request
            .bearer_auth(self.access_token.as_str())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let status = resp.status();
        let body = Zeroizing::new(
            crate::net::read_bounded(resp, MAX_ANSWER_BYTES, "Azure Key Vault")
                .await
                .map_err(|e| fail(e.to_string()))?,
        );
        if status.is_success() {
            return Ok(body);
        }
        // `{"error": {"code": "…", "message": "…"}}`
        #[derive(Deserialize)]
        struct ErrorBody {
            error: ErrorInner,
        }
        #[derive(Deserialize)]
        struct ErrorInner {
            code: Option<String>,
            message: Option<String>,
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let code = parsed
            .as_ref()
            .and_then(|p| p.error.code.clone())
            .unwrap_or_else(|| "error".into());
        let message = parsed.and_then(|p| p.error.message).unwrap_or_default();
        let hint = match status.as_u16() {
            401 => " (the access token was refused: check the tenant and the vault)",
            403 => match operation {
                "get certificate" | "get certificate secret" => {
                    " (grant the identity certificates/get and secrets/get, or give the chain with certificate-chain)"
                }
                _ => " (grant the identity the keys/get and keys/sign permissions, e.g. the Key Vault Crypto User role)",
            },
            404 if operation == "get certificate" => {
                " (no Key Vault certificate is named like the key: give the chain with certificate-chain)"
            }
            404 => " (check the key identifier)",
            _ => "",
        };
        let secrets = [self.access_token.as_str()];
        Err(fail(format!(
            "HTTP {} {}: {}{hint}",
            status.as_u16(),
            sanitise_service_text(&code, &secrets),
            sanitise_service_text(&message, &secrets)
        )))
    }

    /// The Key Vault certificate named like the key: its leaf, then (unless self-signed) the
    /// PEM chain in its secret.
    async fn chain_from_vault(
        &self,
        key: &KeyId,
        version: Option<&str>,
    ) -> Result<Vec<Vec<u8>>, AzureKvError> {
        #[derive(Deserialize)]
        struct CertificateBundle {
            cer: Option<String>,
            sid: Option<String>,
        }
        let bundle: CertificateBundle = self
            .get_json("get certificate", key.url("certificates", version))
            .await?;
        let leaf_der = bundle
            .cer
            .as_deref()
            .and_then(|c| STANDARD.decode(c).ok())
            .ok_or_else(|| {
                AzureKvError::Chain(format!(
                    "the Key Vault certificate {} has no `cer`; give the chain with certificate-chain",
                    key.name
                ))
            })?;
        let leaf = Certificate::from_der(&leaf_der)
            .map_err(|e| AzureKvError::Chain(format!("the Key Vault certificate: {e}")))?;
        if leaf.is_self_issued() {
            return Ok(vec![leaf_der]);
        }
        let sid = bundle.sid.ok_or_else(|| {
            AzureKvError::Chain(
                "the certificate is CA-issued and names no secret holding its chain; give the chain with certificate-chain".into(),
            )
        })?;
        // The secret id must live in the same vault: never send the token elsewhere.
        let mut secret_url = url::Url::parse(&sid)
            .ok()
            .filter(|u| u.origin() == key.vault.origin() && u.path().starts_with("/secrets/"))
            .ok_or_else(|| {
                AzureKvError::Chain("the certificate's secret id is not in the same vault".into())
            })?;
        secret_url.set_query(None);
        secret_url
            .query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        #[derive(Deserialize)]
        struct SecretBundle {
            value: Option<String>,
            #[serde(rename = "contentType")]
            content_type: Option<String>,
        }
        let secret: SecretBundle = self.get_json("get certificate secret", secret_url).await?;
        if secret.content_type.as_deref() != Some("application/x-pem-file") {
            return Err(AzureKvError::Chain(format!(
                "the certificate's secret is {} rather than PEM; give the chain with certificate-chain",
                secret.content_type.as_deref().unwrap_or("of unknown type")
            )));
        }
        let pem = Zeroizing::new(secret.value.unwrap_or_default());
        if pem.contains("PRIVATE KEY-----") {
            return Err(AzureKvError::Chain(
                "the certificate's secret holds its private key (the key is exportable), which \
                 sign-action will not download; create the certificate with a non-exportable key, \
                 or give the chain with certificate-chain"
                    .into(),
            ));
        }
        let certs = crate::x509::parse_certificates(pem.as_bytes(), "the certificate's secret")
            .map_err(|e| AzureKvError::Chain(e.to_string()))?;
        order_chain(leaf, certs)
    }
}

/// Leaf first, then each certificate's issuer from `pool`, until a self-issued one.
fn order_chain(leaf: Certificate, pool: Vec<Certificate>) -> Result<Vec<Vec<u8>>, AzureKvError> {
    let mut pool: Vec<Certificate> = pool.into_iter().filter(|c| c.der() != leaf.der()).collect();
    let mut chain = vec![leaf.der().to_vec()];
    let mut current = leaf;
    while !current.is_self_issued() && !pool.is_empty() {
        let Some(pos) = pool.iter().position(|c| c.subject() == current.issuer()) else {
            break;
        };
        let next = pool.swap_remove(pos);
        chain.push(next.der().to_vec());
        current = next;
    }
    Ok(chain)
}

/// The Notary key type of a vault key, or why it is refused.
fn check_key(bundle: &KeyBundle, key: &str) -> Result<KeySpec, AzureKvError> {
    let forbidden = |reason: String| AzureKvError::ForbiddenKey {
        key: key.to_string(),
        reason,
    };
    if bundle.attributes.as_ref().and_then(|a| a.enabled) == Some(false) {
        return Err(forbidden("the key is disabled".into()));
    }
    let jwk = &bundle.key;
    if let Some(ops) = &jwk.key_ops {
        if !ops.iter().any(|o| o == "sign") {
            return Err(forbidden(format!(
                "its permitted operations ({}) do not include sign",
                ops.join(", ")
            )));
        }
    }
    match jwk.kty.as_str() {
        "RSA" | "RSA-HSM" => {
            let n = jwk
                .n
                .as_deref()
                .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
                .ok_or_else(|| forbidden("the RSA key has no modulus".into()))?;
            let n = strip_zeros(&n);
            let bits = n.len() * 8 - n.first().map(|b| b.leading_zeros() as usize).unwrap_or(0);
            match bits {
                2048 => Ok(KeySpec::Rsa2048),
                3072 => Ok(KeySpec::Rsa3072),
                4096 => Ok(KeySpec::Rsa4096),
                other => Err(forbidden(format!(
                    "RSA-{other} (Notary allows RSA 2048, 3072 or 4096 bits)"
                ))),
            }
        }
        "EC" | "EC-HSM" => match jwk.crv.as_deref() {
            Some("P-256") => Ok(KeySpec::EcP256),
            Some("P-384") => Ok(KeySpec::EcP384),
            Some("P-521") => Ok(KeySpec::EcP521),
            Some("P-256K") => Err(forbidden(
                "curve P-256K (secp256k1) is not a Notary curve; use P-256, P-384 or P-521".into(),
            )),
            other => Err(forbidden(format!(
                "EC curve {} (Notary allows P-256, P-384 or P-521)",
                other.unwrap_or("unknown")
            ))),
        },
        other => Err(forbidden(format!(
            "key type {other}; Notary needs an RSA or EC key"
        ))),
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// The vault JWK and the leaf's SubjectPublicKeyInfo hold the same key.
fn jwk_matches_spki(jwk: &Jwk, spki_der: &[u8]) -> bool {
    use der::Decode;
    let Ok(spki) = spki::SubjectPublicKeyInfoRef::from_der(spki_der) else {
        return false;
    };
    let key_bits = spki.subject_public_key.raw_bytes();
    let b64 = |v: &Option<String>| v.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    if jwk.kty.starts_with("RSA") {
        #[derive(der::Sequence)]
        struct RsaPublicKey<'a> {
            modulus: der::asn1::UintRef<'a>,
            exponent: der::asn1::UintRef<'a>,
        }
        let (Ok(rsa), Some(n), Some(e)) =
            (RsaPublicKey::from_der(key_bits), b64(&jwk.n), b64(&jwk.e))
        else {
            return false;
        };
        strip_zeros(rsa.modulus.as_bytes()) == strip_zeros(&n)
            && strip_zeros(rsa.exponent.as_bytes()) == strip_zeros(&e)
    } else {
        let (Some(x), Some(y)) = (b64(&jwk.x), b64(&jwk.y)) else {
            return false;
        };
        // Uncompressed SEC1 point; the JWK coordinates are full field width.
        let mut point = vec![0x04];
        point.extend(&x);
        point.extend(&y);
        key_bits == point.as_slice()
    }
}

/// Entra ID's client-credentials grant with the GitHub token as federated client assertion.
async fn exchange_token(
    client: &reqwest::Client,
    token_url: &url::Url,
    config: &AzureKvConfig,
    token: &IdToken,
) -> Result<Zeroizing<String>, AzureKvError> {
    let fail = |detail: String| AzureKvError::Token {
        tenant_id: config.tenant_id.clone(),
        client_id: config.client_id.clone(),
        detail,
    };
    let form = Zeroizing::new(
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &config.client_id)
            .append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE)
            .append_pair("client_assertion", token.expose_secret())
            .append_pair("scope", VAULT_SCOPE)
            .finish(),
    );
    let resp = client
        .post(token_url.clone())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(form.as_bytes().to_vec())
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    let status = resp.status();
    let body = Zeroizing::new(
        crate::net::read_bounded(resp, MAX_ANSWER_BYTES, "Microsoft Entra ID")
            .await
            .map_err(|e| fail(e.to_string()))?,
    );
    let secrets = [token.expose_secret()];
    if !status.is_success() {
        #[derive(Deserialize)]
        struct ErrorBody {
            error: Option<String>,
            error_description: Option<String>,
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let error = parsed
            .as_ref()
            .and_then(|p| p.error.clone())
            .unwrap_or_else(|| "error".into());
        // The description's first line carries the AADSTS code and the reason; the rest is
        // trace and correlation ids.
        let description = parsed
            .and_then(|p| p.error_description)
            .map(|d| d.lines().next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let hint = if description.contains("AADSTS7002") {
            " (check the federated credential of the app: issuer https://token.actions.githubusercontent.com, subject repo:OWNER/REPO:…, audience api://AzureADTokenExchange)"
        } else {
            ""
        };
        return Err(fail(format!(
            "HTTP {} {}: {}{hint}",
            status.as_u16(),
            sanitise_service_text(&error, &secrets),
            sanitise_service_text(&description, &secrets)
        )));
    }
    #[derive(Deserialize)]
    struct TokenAnswer {
        access_token: String,
        token_type: Option<String>,
    }
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|_| fail("the answer has no access_token".into()))?;
    if answer
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err(fail("the token type is not Bearer".into()));
    }
    Ok(Zeroizing::new(answer.access_token))
}

#[async_trait]
impl Signer for AzureKeyVaultSigner {
    fn key_spec(&self) -> KeySpec {
        self.spec
    }

    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let alg = self.spec.signature_algorithm();
        let digest = alg.hash().digest(message);
        let mut url = self.sign_url.clone();
        let path = format!("{}/sign", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let body = serde_json::json!({
            "alg": alg.jws_name(),
            "value": URL_SAFE_NO_PAD.encode(&digest),
        });
        let answer = self
            .vault_request(
                "sign",
                self.client
                    .post(url)
                    .header("Content-Type", "application/json")
                    .body(body.to_string()),
            )
            .await
            .map_err(|e| CryptoError::SigningFailed(e.to_string()))?;
        #[derive(Deserialize)]
        struct SignAnswer {
            value: String,
        }
        let answer: SignAnswer = serde_json::from_slice(&answer).map_err(|_| {
            CryptoError::SigningFailed("Azure Key Vault sign: the answer has no value".into())
        })?;
        let signature = URL_SAFE_NO_PAD
            .decode(answer.value.trim_end_matches('='))
            .map_err(|_| {
                CryptoError::SigningFailed(
                    "Azure Key Vault sign: the signature is not base64url".into(),
                )
            })?;
        // Key Vault returns PSS signatures modulus-sized and ECDSA as fixed-width R‖S (JWA).
        if signature.len() != self.spec.raw_signature_len() {
            return Err(CryptoError::SigningFailed(format!(
                "Azure Key Vault returned a {}-byte signature, expected {} for {}",
                signature.len(),
                self.spec.raw_signature_len(),
                self.spec.name()
            )));
        }
        check_returned_signature(
            self.spec,
            &self.leaf_spki,
            message,
            &signature,
            "Azure Key Vault",
        )?;
        Ok(signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_identifiers() {
        let k = KeyId::parse("https://my-vault.vault.azure.net/keys/signing/0123abcd").unwrap();
        assert_eq!(k.vault.as_str(), "https://my-vault.vault.azure.net/");
        assert_eq!(k.name, "signing");
        assert_eq!(k.version.as_deref(), Some("0123abcd"));
        assert_eq!(
            k.url("keys", Some("v1")).as_str(),
            "https://my-vault.vault.azure.net/keys/signing/v1?api-version=7.4"
        );
        let k = KeyId::parse("http://127.0.0.1:8080/keys/k/").unwrap();
        assert_eq!(k.version, None);
        for bad in [
            "http://vault.example/keys/k",
            "https://v.vault.azure.net/secrets/k",
            "https://v.vault.azure.net/keys",
            "https://v.vault.azure.net/keys/a/b/c",
            "https://v.vault.azure.net/keys/a?x=1",
            "https://v.vault.azure.net/keys/a%2Fb",
            "signing",
        ] {
            assert!(KeyId::parse(bad).is_err(), "{bad}");
        }
    }

    fn bundle(kty: &str, crv: Option<&str>, n_bytes: usize, ops: &[&str]) -> KeyBundle {
        KeyBundle {
            key: Jwk {
                kid: None,
                kty: kty.into(),
                crv: crv.map(String::from),
                n: Some(URL_SAFE_NO_PAD.encode(vec![0xc5; n_bytes])),
                e: Some("AQAB".into()),
                x: None,
                y: None,
                key_ops: Some(ops.iter().map(|s| s.to_string()).collect()),
            },
            attributes: None,
        }
    }

    #[test]
    fn key_types_map_to_the_notary_table() {
        let spec = |b: &KeyBundle| check_key(b, "k");
        assert_eq!(
            spec(&bundle("RSA-HSM", None, 384, &["sign"])).unwrap(),
            KeySpec::Rsa3072
        );
        assert_eq!(
            spec(&bundle("EC", Some("P-521"), 0, &["sign", "verify"])).unwrap(),
            KeySpec::EcP521
        );
        let refused = |b: KeyBundle, what: &str| {
            let err = spec(&b).unwrap_err().to_string();
            assert!(err.contains(what), "{err}");
        };
        refused(bundle("EC", Some("P-256K"), 0, &["sign"]), "P-256K");
        refused(bundle("RSA", None, 128, &["sign"]), "RSA-1024");
        refused(bundle("oct-HSM", None, 0, &["sign"]), "oct-HSM");
        refused(bundle("RSA", None, 256, &["encrypt", "decrypt"]), "sign");
        let mut disabled = bundle("RSA", None, 256, &["sign"]);
        disabled.attributes = Some(Attributes {
            enabled: Some(false),
        });
        refused(disabled, "disabled");
    }
}
