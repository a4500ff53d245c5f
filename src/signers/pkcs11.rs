//! A signer whose private key stays in a PKCS#11 token (HSM, smart card, SoftHSM).
//!
//! The key type is taken from the leaf certificate (digest §6 ties the algorithm to the leaf
//! key), and the token's key is proven to belong to that certificate by a test signature that
//! we verify with the certificate's public key before anything is signed — this works the
//! same for RSA and EC keys and for tokens that do not expose public-key objects.
//!
//! Tokens differ in which combined hash-and-sign mechanisms they offer (SoftHSM 2.6 has no
//! `CKM_ECDSA_SHA256`), so when the combined mechanism is not listed we hash locally and
//! sign the digest with the raw mechanism (`CKM_ECDSA`, `CKM_RSA_PKCS_PSS`); the resulting
//! signature is identical in format. The PIN is held in a zeroizing string, never formatted.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, HashAlgorithm, KeySpec, Signer};
use crate::x509::Certificate;

/// Problems opening the token, finding the key or its certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    #[error("cannot load the PKCS#11 module {module}: {reason}")]
    Module { module: String, reason: String },
    #[error("PKCS#11 token: {0}")]
    Token(String),
    #[error("PKCS#11 login failed: {0} (check the PIN given with --pkcs11-pin / SIGN_ACTION_PKCS11_PIN)")]
    Login(String),
    #[error("PKCS#11 key: {0}")]
    Key(String),
    #[error("certificate chain: {0}")]
    Chain(String),
    #[error("the token's private key does not match the leaf certificate's public key")]
    KeyCertMismatch,
    #[error("invalid PKCS#11 selector {0:?}: use `label:NAME`, `id:HEX` (key), `slot:N` (token) or a plain label")]
    Selector(String),
}

/// Which token to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSelector {
    Label(String),
    Slot(u64),
}

/// Which private key on the token to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySelector {
    Label(String),
    Id(Vec<u8>),
}

impl TokenSelector {
    /// `slot:N`, `label:NAME` or a plain label.
    pub fn parse(s: &str) -> Result<TokenSelector, Pkcs11Error> {
        if let Some(n) = s.strip_prefix("slot:") {
            return n
                .trim()
                .parse()
                .map(TokenSelector::Slot)
                .map_err(|_| Pkcs11Error::Selector(s.to_string()));
        }
        let label = s.strip_prefix("label:").unwrap_or(s);
        if label.is_empty() {
            return Err(Pkcs11Error::Selector(s.to_string()));
        }
        Ok(TokenSelector::Label(label.to_string()))
    }
}

impl KeySelector {
    /// `id:HEX`, `label:NAME` or a plain label.
    pub fn parse(s: &str) -> Result<KeySelector, Pkcs11Error> {
        if let Some(h) = s.strip_prefix("id:") {
            let id = hex::decode(h.trim()).map_err(|_| Pkcs11Error::Selector(s.to_string()))?;
            if id.is_empty() {
                return Err(Pkcs11Error::Selector(s.to_string()));
            }
            return Ok(KeySelector::Id(id));
        }
        let label = s.strip_prefix("label:").unwrap_or(s);
        if label.is_empty() {
            return Err(Pkcs11Error::Selector(s.to_string()));
        }
        Ok(KeySelector::Label(label.to_string()))
    }

    fn attribute(&self) -> Attribute {
        match self {
            KeySelector::Label(l) => Attribute::Label(l.as_bytes().to_vec()),
            KeySelector::Id(id) => Attribute::Id(id.clone()),
        }
    }
}

/// Everything needed to open a PKCS#11 signer.
pub struct Pkcs11Config {
    pub module: std::path::PathBuf,
    /// `None`: the only token present.
    pub token: Option<TokenSelector>,
    pub key: KeySelector,
    pub pin: Zeroizing<String>,
    /// DER chain, leaf first; `None` reads the certificates from the token.
    pub chain: Option<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("key", &self.key)
            .field("pin", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A logged-in session and the key handle. Sessions are not `Sync`; the mutex serialises
/// operations, which tokens do anyway.
struct Inner {
    session: Mutex<Session>,
    key: ObjectHandle,
    mechanism: SignMechanism,
    spec: KeySpec,
    // Kept so the module stays loaded and initialised for the session's lifetime.
    _context: Pkcs11,
}

#[derive(Debug, Clone, Copy)]
enum SignMechanism {
    /// The token hashes: `CKM_SHAxxx_RSA_PKCS_PSS` / `CKM_ECDSA_SHAxxx`.
    Combined,
    /// We hash, the token signs the digest: `CKM_RSA_PKCS_PSS` / `CKM_ECDSA`.
    Raw,
}

/// A PKCS#11 private key with its certificate chain.
pub struct Pkcs11Signer {
    inner: Arc<Inner>,
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("key_spec", &self.inner.spec)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

fn token_err(what: &str) -> impl Fn(cryptoki::error::Error) -> Pkcs11Error + '_ {
    move |e| Pkcs11Error::Token(format!("{what}: {e}"))
}

impl Pkcs11Signer {
    /// Load the module, log in, find the key and its chain, and prove they belong together.
    /// Blocking: call before the async work starts or from `spawn_blocking`.
    pub fn open(config: Pkcs11Config) -> Result<Pkcs11Signer, Pkcs11Error> {
        let module_name = config.module.display().to_string();
        let context = Pkcs11::new(&config.module).map_err(|e| Pkcs11Error::Module {
            module: module_name.clone(),
            reason: e.to_string(),
        })?;
        context
            .initialize(CInitializeArgs::OsThreads)
            .map_err(|e| Pkcs11Error::Module {
                module: module_name.clone(),
                reason: format!("C_Initialize: {e}"),
            })?;
        let slot = find_slot(&context, config.token.as_ref())?;
        let session = context
            .open_ro_session(slot)
            .map_err(token_err("cannot open a session"))?;
        // An empty PIN means none was given: only a token with its own PIN pad (protected
        // authentication path) can log in without one.
        let pin = if config.pin.is_empty() {
            let protected = context
                .get_token_info(slot)
                .map(|i| i.protected_authentication_path())
                .unwrap_or(false);
            if !protected {
                return Err(Pkcs11Error::Login("no PIN was given".into()));
            }
            None
        } else {
            Some(AuthPin::new(config.pin.as_str().to_string()))
        };
        match session.login(UserType::User, pin.as_ref()) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => return Err(Pkcs11Error::Login(e.to_string())),
        }
        drop(pin);

        let key = find_one(
            &session,
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                config.key.attribute(),
            ],
            "private key",
            &config.key,
        )?;
        let attrs = session
            .get_attributes(key, &[AttributeType::KeyType, AttributeType::Id])
            .map_err(|e| Pkcs11Error::Key(format!("cannot read the key's attributes: {e}")))?;
        let mut key_type = None;
        let mut key_id = None;
        for a in attrs {
            match a {
                Attribute::KeyType(t) => key_type = Some(t),
                Attribute::Id(id) if !id.is_empty() => key_id = Some(id),
                _ => {}
            }
        }

        let chain = match config.chain {
            Some(chain) => chain,
            None => chain_from_token(&session, key_id.as_deref(), &config.key)?,
        };
        let leaf_der = chain.first().ok_or_else(|| {
            Pkcs11Error::Chain("no certificate given; the leaf certificate must come first".into())
        })?;
        let leaf = Certificate::from_der(leaf_der)
            .map_err(|e| Pkcs11Error::Chain(format!("leaf certificate: {e}")))?;
        let leaf_spki = leaf.spki_der();
        let spec = KeySpec::from_spki_der(&leaf_spki).map_err(|e| {
            Pkcs11Error::Chain(format!("the leaf certificate's key is not allowed: {e}"))
        })?;
        let expected_type = if spec.signature_algorithm().is_ecdsa() {
            KeyType::EC
        } else {
            KeyType::RSA
        };
        if key_type != Some(expected_type) {
            return Err(Pkcs11Error::KeyCertMismatch);
        }

        let mechanisms = context
            .get_mechanism_list(slot)
            .map_err(token_err("cannot list the token's mechanisms"))?;
        let (combined, raw) = mechanism_types(spec);
        let mechanism = if mechanisms.contains(&combined) {
            SignMechanism::Combined
        } else if mechanisms.contains(&raw) {
            SignMechanism::Raw
        } else {
            return Err(Pkcs11Error::Token(format!(
                "the token offers neither {combined} nor {raw}, needed for {}",
                spec.signature_algorithm().jws_name()
            )));
        };

        let inner = Inner {
            session: Mutex::new(session),
            key,
            mechanism,
            spec,
            _context: context,
        };
        // Prove the token key belongs to the certificate before signing anything real.
        let probe = b"sign-action PKCS#11 key check";
        let signature = inner
            .sign_blocking(probe)
            .map_err(|e| Pkcs11Error::Key(e.to_string()))?;
        crate::crypto::verify_signature(spec.signature_algorithm(), &leaf_spki, probe, &signature)
            .map_err(|_| Pkcs11Error::KeyCertMismatch)?;

        Ok(Pkcs11Signer {
            inner: Arc::new(inner),
            chain,
        })
    }
}

fn mechanism_types(spec: KeySpec) -> (MechanismType, MechanismType) {
    let hash = spec.signature_algorithm().hash();
    if spec.signature_algorithm().is_ecdsa() {
        let combined = match hash {
            HashAlgorithm::Sha256 => MechanismType::ECDSA_SHA256,
            HashAlgorithm::Sha384 => MechanismType::ECDSA_SHA384,
            HashAlgorithm::Sha512 => MechanismType::ECDSA_SHA512,
        };
        (combined, MechanismType::ECDSA)
    } else {
        let combined = match hash {
            HashAlgorithm::Sha256 => MechanismType::SHA256_RSA_PKCS_PSS,
            HashAlgorithm::Sha384 => MechanismType::SHA384_RSA_PKCS_PSS,
            HashAlgorithm::Sha512 => MechanismType::SHA512_RSA_PKCS_PSS,
        };
        (combined, MechanismType::RSA_PKCS_PSS)
    }
}

impl Inner {
    fn sign_blocking(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let alg = self.spec.signature_algorithm();
        let hash = alg.hash();
        // Notary fixes the PSS salt length to the hash length (digest §6).
        let pss = PkcsPssParams {
            hash_alg: match hash {
                HashAlgorithm::Sha256 => MechanismType::SHA256,
                HashAlgorithm::Sha384 => MechanismType::SHA384,
                HashAlgorithm::Sha512 => MechanismType::SHA512,
            },
            mgf: match hash {
                HashAlgorithm::Sha256 => PkcsMgfType::MGF1_SHA256,
                HashAlgorithm::Sha384 => PkcsMgfType::MGF1_SHA384,
                HashAlgorithm::Sha512 => PkcsMgfType::MGF1_SHA512,
            },
            s_len: (hash.output_len() as u64).into(),
        };
        let (mechanism, data) = match (alg.is_ecdsa(), self.mechanism) {
            (true, SignMechanism::Combined) => (
                match hash {
                    HashAlgorithm::Sha256 => Mechanism::EcdsaSha256,
                    HashAlgorithm::Sha384 => Mechanism::EcdsaSha384,
                    HashAlgorithm::Sha512 => Mechanism::EcdsaSha512,
                },
                message.to_vec(),
            ),
            (true, SignMechanism::Raw) => (Mechanism::Ecdsa, hash.digest(message)),
            (false, SignMechanism::Combined) => (
                match hash {
                    HashAlgorithm::Sha256 => Mechanism::Sha256RsaPkcsPss(pss),
                    HashAlgorithm::Sha384 => Mechanism::Sha384RsaPkcsPss(pss),
                    HashAlgorithm::Sha512 => Mechanism::Sha512RsaPkcsPss(pss),
                },
                message.to_vec(),
            ),
            (false, SignMechanism::Raw) => (Mechanism::RsaPkcsPss(pss), hash.digest(message)),
        };
        let session = self
            .session
            .lock()
            .map_err(|_| CryptoError::SigningFailed("the PKCS#11 session is unusable".into()))?;
        let signature = session
            .sign(&mechanism, self.key, &data)
            .map_err(|e| CryptoError::SigningFailed(format!("PKCS#11 C_Sign: {e}")))?;
        let expected = self.spec.raw_signature_len();
        if signature.len() != expected {
            return Err(CryptoError::SigningFailed(format!(
                "the token returned a {}-byte signature, expected {expected} for {}",
                signature.len(),
                self.spec.name()
            )));
        }
        Ok(signature)
    }
}

fn find_slot(context: &Pkcs11, token: Option<&TokenSelector>) -> Result<Slot, Pkcs11Error> {
    let slots = context
        .get_slots_with_initialized_token()
        .map_err(token_err("cannot list slots"))?;
    let mut matching = Vec::new();
    let mut labels = Vec::new();
    for slot in slots {
        let info = context
            .get_token_info(slot)
            .map_err(token_err("cannot read token information"))?;
        let label = info.label().trim_end().to_string();
        let hit = match token {
            None => true,
            Some(TokenSelector::Slot(id)) => slot.id() == *id,
            Some(TokenSelector::Label(l)) => label == l.trim_end(),
        };
        if hit {
            matching.push(slot);
        }
        labels.push(format!("{label:?} (slot {})", slot.id()));
    }
    match matching.len() {
        1 => Ok(matching[0]),
        0 => Err(Pkcs11Error::Token(format!(
            "no initialised token matches {}; present: {}",
            describe_token(token),
            if labels.is_empty() {
                "none".to_string()
            } else {
                labels.join(", ")
            }
        ))),
        _ => Err(Pkcs11Error::Token(format!(
            "{} tokens match {}; choose one with --pkcs11-token label:NAME or slot:N (present: {})",
            matching.len(),
            describe_token(token),
            labels.join(", ")
        ))),
    }
}

fn describe_token(token: Option<&TokenSelector>) -> String {
    match token {
        None => "(any)".to_string(),
        Some(TokenSelector::Slot(n)) => format!("slot {n}"),
        Some(TokenSelector::Label(l)) => format!("label {l:?}"),
    }
}

fn describe_key(key: &KeySelector) -> String {
    match key {
        KeySelector::Label(l) => format!("label {l:?}"),
        KeySelector::Id(id) => format!("id {}", hex::encode(id)),
    }
}

fn find_one(
    session: &Session,
    template: &[Attribute],
    what: &str,
    key: &KeySelector,
) -> Result<ObjectHandle, Pkcs11Error> {
    let found = session
        .find_objects(template)
        .map_err(|e| Pkcs11Error::Key(format!("cannot search the token: {e}")))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Pkcs11Error::Key(format!(
            "no {what} with {} on the token",
            describe_key(key)
        ))),
        many => Err(Pkcs11Error::Key(format!(
            "{} objects are a {what} with {}; select the key by a unique id:HEX",
            many.len(),
            describe_key(key)
        ))),
    }
}

/// Upper bound on certificates read from a token, so a crowded token cannot make us loop long.
const MAX_TOKEN_CERTIFICATES: usize = 64;

/// The leaf is the certificate with the key's CKA_ID (or, without an id, its label); issuers
/// are then found among the token's other certificates by subject name.
fn chain_from_token(
    session: &Session,
    key_id: Option<&[u8]>,
    key: &KeySelector,
) -> Result<Vec<Vec<u8>>, Pkcs11Error> {
    let leaf_selector = match key_id {
        Some(id) => KeySelector::Id(id.to_vec()),
        None => key.clone(),
    };
    let leaf_handle = find_one(
        session,
        &[
            Attribute::Class(ObjectClass::CERTIFICATE),
            leaf_selector.attribute(),
        ],
        "certificate",
        &leaf_selector,
    )
    .map_err(|e| {
        Pkcs11Error::Chain(format!(
            "{e}; store the leaf certificate on the token with the key's id, or give the chain with --cert"
        ))
    })?;
    let value = |h: ObjectHandle| -> Result<Vec<u8>, Pkcs11Error> {
        let attrs = session
            .get_attributes(h, &[AttributeType::Value])
            .map_err(|e| Pkcs11Error::Chain(format!("cannot read a certificate: {e}")))?;
        attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            })
            .ok_or_else(|| Pkcs11Error::Chain("a certificate object has no value".into()))
    };
    let leaf = value(leaf_handle)?;
    let all = session
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .map_err(|e| Pkcs11Error::Chain(format!("cannot list certificates: {e}")))?;
    let mut pool = Vec::new();
    for h in all.into_iter().take(MAX_TOKEN_CERTIFICATES) {
        if h == leaf_handle {
            continue;
        }
        if let Ok(cert) = Certificate::from_der(&value(h)?) {
            pool.push(cert);
        }
    }
    let mut current = Certificate::from_der(&leaf)
        .map_err(|e| Pkcs11Error::Chain(format!("the token's leaf certificate: {e}")))?;
    let mut chain = vec![leaf];
    while !current.is_self_issued() && chain.len() <= MAX_TOKEN_CERTIFICATES {
        let issuer = current.issuer();
        let Some(pos) = pool.iter().position(|c| c.subject() == issuer) else {
            break;
        };
        let next = pool.swap_remove(pos);
        chain.push(next.der().to_vec());
        current = next;
    }
    Ok(chain)
}

#[async_trait]
impl Signer for Pkcs11Signer {
    fn key_spec(&self) -> KeySpec {
        self.inner.spec
    }

    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // Token calls block (and may cross a network for remote HSMs): keep them off the
        // async workers.
        let inner = Arc::clone(&self.inner);
        let message = message.to_vec();
        tokio::task::spawn_blocking(move || inner.sign_blocking(&message))
            .await
            .map_err(|e| CryptoError::SigningFailed(format!("PKCS#11 signing task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse() {
        assert_eq!(
            TokenSelector::parse("slot:7").unwrap(),
            TokenSelector::Slot(7)
        );
        assert_eq!(
            TokenSelector::parse("ci").unwrap(),
            TokenSelector::Label("ci".into())
        );
        assert_eq!(
            TokenSelector::parse("label:slot:x").unwrap(),
            TokenSelector::Label("slot:x".into())
        );
        assert!(TokenSelector::parse("slot:x").is_err());
        assert!(TokenSelector::parse("").is_err());
        assert_eq!(
            KeySelector::parse("id:0a1B").unwrap(),
            KeySelector::Id(vec![0x0a, 0x1b])
        );
        assert_eq!(
            KeySelector::parse("label:id:x").unwrap(),
            KeySelector::Label("id:x".into())
        );
        assert!(KeySelector::parse("id:xyz").is_err());
        assert!(KeySelector::parse("id:").is_err());
        assert!(KeySelector::parse("label:").is_err());
    }

    #[test]
    fn config_debug_hides_the_pin() {
        let config = Pkcs11Config {
            module: "/nonexistent.so".into(),
            token: None,
            key: KeySelector::Label("k".into()),
            pin: Zeroizing::new("987654-secret".into()),
            chain: None,
        };
        assert!(!format!("{config:?}").contains("987654"));
    }

    #[test]
    fn missing_module_is_named() {
        let err = Pkcs11Signer::open(Pkcs11Config {
            module: "/nonexistent/libnothing.so".into(),
            token: None,
            key: KeySelector::Label("k".into()),
            pin: Zeroizing::new("1234".into()),
            chain: None,
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/libnothing.so"),
            "{err}"
        );
    }
}
