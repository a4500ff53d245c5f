//! Private keys from PEM (PKCS#8, encrypted PKCS#8, SEC1 EC, PKCS#1 RSA) and the local signer.
//!
//! The key type is read from the key structure itself (PKCS#8 algorithm, RSA modulus,
//! SEC1 curve) before aws-lc-rs sees it, so an unsupported key is named precisely
//! ("RSA-1024", "curve secp224r1") instead of surfacing as an opaque parse failure. Key
//! bytes never reach an error message or `Debug` output and are wiped after use.

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _};
use der::asn1::{ObjectIdentifier, UintRef};
use der::Decode;
use zeroize::Zeroizing;

use super::{CryptoError, KeySpec, Signer};

/// Problems with a private key or its certificate chain, found before anything is signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("cannot read the private key: {0}")]
    Unreadable(String),
    #[error("the private key is encrypted: give its password with --key-password (or SIGN_ACTION_KEY_PASSWORD)")]
    PasswordRequired,
    #[error("cannot decrypt the private key: wrong password or unsupported encryption ({0})")]
    Decrypt(String),
    #[error("unsupported key: {0}")]
    Unsupported(String),
    #[error("the private key does not match the leaf certificate's public key (first certificate of the chain)")]
    KeyCertMismatch,
    #[error("cannot use the certificate chain: {0}")]
    Chain(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A private key held in process memory together with its certificate chain.
pub struct LocalSigner {
    key_spec: KeySpec,
    chain: Vec<Vec<u8>>,
    key: LocalKey,
}

impl std::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigner")
            .field("key_spec", &self.key_spec)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

enum LocalKey {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ecdsa(EcdsaKeyPair),
}

const OID_RSA: ObjectIdentifier = const_oid::db::rfc5912::RSA_ENCRYPTION;
const OID_EC: ObjectIdentifier = const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
const OID_P256: ObjectIdentifier = const_oid::db::rfc5912::SECP_256_R_1;
const OID_P384: ObjectIdentifier = const_oid::db::rfc5912::SECP_384_R_1;
const OID_P521: ObjectIdentifier = const_oid::db::rfc5912::SECP_521_R_1;

/// PBKDF2 iteration counts above this are refused: a key file should not be able to make
/// us spin for minutes (OpenSSL writes 2048, current guidance is ~600 000).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// The private key encodings we read.
enum KeyFormat {
    Pkcs8,
    Sec1,
    Pkcs1,
}

impl LocalSigner {
    /// Load `key_pem` (optionally encrypted with `password`) and pair it with `chain_der`
    /// (leaf first). Fails when the key is not one of the six Notary key types or does not
    /// belong to the leaf certificate.
    pub fn from_pem(
        key_pem: &[u8],
        password: Option<&str>,
        chain_der: Vec<Vec<u8>>,
    ) -> Result<LocalSigner, KeyError> {
        let leaf_der = chain_der.first().ok_or_else(|| {
            KeyError::Chain("no certificate given; the leaf certificate must come first".into())
        })?;
        let leaf = crate::x509::Certificate::from_der(leaf_der)
            .map_err(|e| KeyError::Chain(format!("leaf certificate: {e}")))?;
        let leaf_spki = leaf.spki_der();
        let leaf_spec = KeySpec::from_spki_der(&leaf_spki).map_err(|e| {
            KeyError::Unsupported(format!("the leaf certificate's key is not allowed: {e}"))
        })?;

        let (format, der) = read_key_pem(key_pem, password)?;
        let key_type = identify_key(&format, &der)?;
        let key_spec = key_spec_of(&key_type)?;
        if key_spec != leaf_spec {
            return Err(KeyError::KeyCertMismatch);
        }

        let rejected = |e: aws_lc_rs::error::KeyRejected| {
            KeyError::Unreadable(format!("the {} key was rejected: {e}", key_spec.name()))
        };
        let key = match (&format, key_spec.signature_algorithm().is_ecdsa()) {
            (KeyFormat::Pkcs8, false) => {
                LocalKey::Rsa(aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).map_err(rejected)?)
            }
            (KeyFormat::Pkcs1, false) => {
                LocalKey::Rsa(aws_lc_rs::rsa::KeyPair::from_der(&der).map_err(rejected)?)
            }
            (KeyFormat::Pkcs8, true) => LocalKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(ecdsa_signing(key_spec), &der).map_err(rejected)?,
            ),
            (KeyFormat::Sec1, true) => LocalKey::Ecdsa(
                EcdsaKeyPair::from_private_key_der(ecdsa_signing(key_spec), &der)
                    .map_err(rejected)?,
            ),
            _ => {
                return Err(KeyError::Unreadable(
                    "key format and key type disagree".into(),
                ))
            }
        };

        let public: &[u8] = match &key {
            LocalKey::Rsa(k) => k.public_key().as_ref(),
            LocalKey::Ecdsa(k) => k.public_key().as_ref(),
        };
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&leaf_spki)
            .map_err(|e| KeyError::Chain(format!("leaf public key: {e}")))?;
        if spki.subject_public_key.raw_bytes() != public {
            return Err(KeyError::KeyCertMismatch);
        }

        Ok(LocalSigner {
            key_spec,
            chain: chain_der,
            key,
        })
    }
}

fn ecdsa_signing(spec: KeySpec) -> &'static sig::EcdsaSigningAlgorithm {
    match spec {
        KeySpec::EcP384 => &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
        KeySpec::EcP521 => &sig::ECDSA_P521_SHA512_FIXED_SIGNING,
        _ => &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
    }
}

/// Find the private key block and return its (decrypted) DER.
fn read_key_pem(
    key_pem: &[u8],
    password: Option<&str>,
) -> Result<(KeyFormat, Zeroizing<Vec<u8>>), KeyError> {
    if !crate::x509::looks_like_pem(key_pem) {
        return Err(KeyError::Unreadable(
            "no PEM block found; expected a file with -----BEGIN PRIVATE KEY----- (PKCS#8), ENCRYPTED PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY".into(),
        ));
    }
    let blocks = crate::x509::pem_blocks(key_pem).map_err(KeyError::Unreadable)?;
    // Any "… PRIVATE KEY" block counts, so that e.g. an OpenSSH or DSA key is named below
    // rather than reported as missing.
    let mut keys = blocks
        .into_iter()
        .filter(|b| b.label.ends_with("PRIVATE KEY"));
    let block = keys
        .next()
        .ok_or_else(|| KeyError::Unreadable("the PEM text holds no private key block".into()))?;
    if keys.next().is_some() {
        return Err(KeyError::Unreadable(
            "the PEM text holds more than one private key; give exactly one".into(),
        ));
    }
    if block
        .headers
        .iter()
        .any(|h| h.starts_with("Proc-Type") || h.starts_with("DEK-Info"))
    {
        return Err(KeyError::Unsupported(
            "legacy OpenSSL PEM encryption (Proc-Type/DEK-Info headers) is not supported; convert the key with `openssl pkcs8 -topk8 -v2 aes-256-cbc`".into(),
        ));
    }
    match block.label.as_str() {
        "PRIVATE KEY" => Ok((KeyFormat::Pkcs8, block.data)),
        "EC PRIVATE KEY" => Ok((KeyFormat::Sec1, block.data)),
        "RSA PRIVATE KEY" => Ok((KeyFormat::Pkcs1, block.data)),
        "ENCRYPTED PRIVATE KEY" => {
            let password = password.ok_or(KeyError::PasswordRequired)?;
            let info = pkcs8::EncryptedPrivateKeyInfo::try_from(block.data.as_slice())
                .map_err(|e| KeyError::Unreadable(format!("malformed encrypted PKCS#8: {e}")))?;
            if let pkcs8::pkcs5::EncryptionScheme::Pbes2(params) = &info.encryption_algorithm {
                if let pkcs8::pkcs5::pbes2::Kdf::Pbkdf2(kdf) = &params.kdf {
                    if kdf.iteration_count > MAX_PBKDF2_ITERATIONS {
                        return Err(KeyError::Unsupported(format!(
                            "PBKDF2 iteration count {} exceeds {MAX_PBKDF2_ITERATIONS}",
                            kdf.iteration_count
                        )));
                    }
                }
            }
            let doc = info
                .decrypt(password.as_bytes())
                .map_err(|e| KeyError::Decrypt(e.to_string()))?;
            // A wrong password occasionally yields valid padding; the garbage then fails here.
            pkcs8::PrivateKeyInfo::try_from(doc.as_bytes())
                .map_err(|_| KeyError::Decrypt("decrypted data is not a private key".into()))?;
            Ok((KeyFormat::Pkcs8, Zeroizing::new(doc.as_bytes().to_vec())))
        }
        other => Err(KeyError::Unsupported(format!(
            "PEM block \"{other}\"; use PKCS#8 (PRIVATE KEY or ENCRYPTED PRIVATE KEY), SEC1 (EC PRIVATE KEY) or PKCS#1 (RSA PRIVATE KEY)"
        ))),
    }
}

/// What the key structure says the key is.
enum KeyType {
    Rsa { bits: usize },
    Ec { curve: Option<ObjectIdentifier> },
    Other(ObjectIdentifier),
}

/// SEC1 ECPrivateKey (RFC 5915).
#[derive(der::Sequence)]
struct EcPrivateKey<'a> {
    _version: UintRef<'a>,
    _private_key: der::asn1::OctetStringRef<'a>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    parameters: Option<ObjectIdentifier>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    _public_key: Option<der::asn1::BitStringRef<'a>>,
}

fn rsa_bits(pkcs1: &[u8]) -> Result<usize, KeyError> {
    // Only version and modulus are needed: read them off the front of RSAPrivateKey.
    let malformed = |e: der::Error| KeyError::Unreadable(format!("malformed RSA private key: {e}"));
    let seq = der::asn1::AnyRef::from_der(pkcs1).map_err(malformed)?;
    let mut reader = der::SliceReader::new(seq.value()).map_err(malformed)?;
    let _version = UintRef::decode(&mut reader).map_err(malformed)?;
    let modulus = UintRef::decode(&mut reader).map_err(malformed)?;
    let bytes = modulus.as_bytes();
    let first = bytes
        .first()
        .ok_or_else(|| KeyError::Unreadable("RSA private key with an empty modulus".into()))?;
    Ok(bytes.len() * 8 - first.leading_zeros() as usize)
}

fn ec_curve(sec1: &[u8]) -> Result<Option<ObjectIdentifier>, KeyError> {
    EcPrivateKey::from_der(sec1)
        .map(|k| k.parameters)
        .map_err(|e| KeyError::Unreadable(format!("malformed EC private key: {e}")))
}

fn identify_key(format: &KeyFormat, der: &[u8]) -> Result<KeyType, KeyError> {
    match format {
        KeyFormat::Pkcs1 => Ok(KeyType::Rsa {
            bits: rsa_bits(der)?,
        }),
        KeyFormat::Sec1 => Ok(KeyType::Ec {
            curve: ec_curve(der)?,
        }),
        KeyFormat::Pkcs8 => {
            let info = pkcs8::PrivateKeyInfo::try_from(der)
                .map_err(|e| KeyError::Unreadable(format!("malformed PKCS#8 key: {e}")))?;
            let oid = info.algorithm.oid;
            if oid == OID_RSA {
                Ok(KeyType::Rsa {
                    bits: rsa_bits(info.private_key)?,
                })
            } else if oid == OID_EC {
                let curve = match info.algorithm.parameters_oid() {
                    Ok(c) => Some(c),
                    Err(_) => ec_curve(info.private_key)?,
                };
                Ok(KeyType::Ec { curve })
            } else {
                Ok(KeyType::Other(oid))
            }
        }
    }
}

fn key_spec_of(key: &KeyType) -> Result<KeySpec, KeyError> {
    match key {
        KeyType::Rsa { bits: 2048 } => Ok(KeySpec::Rsa2048),
        KeyType::Rsa { bits: 3072 } => Ok(KeySpec::Rsa3072),
        KeyType::Rsa { bits: 4096 } => Ok(KeySpec::Rsa4096),
        KeyType::Rsa { bits } => Err(KeyError::Unsupported(format!(
            "the private key is RSA-{bits}; Notary allows RSA 2048, 3072 or 4096 bits"
        ))),
        KeyType::Ec { curve: Some(c) } if *c == OID_P256 => Ok(KeySpec::EcP256),
        KeyType::Ec { curve: Some(c) } if *c == OID_P384 => Ok(KeySpec::EcP384),
        KeyType::Ec { curve: Some(c) } if *c == OID_P521 => Ok(KeySpec::EcP521),
        KeyType::Ec { curve: Some(c) } => Err(KeyError::Unsupported(format!(
            "the private key is on EC curve {}; Notary allows P-256, P-384 or P-521",
            curve_name(c)
        ))),
        KeyType::Ec { curve: None } => Err(KeyError::Unsupported(
            "the EC private key does not name its curve".into(),
        )),
        KeyType::Other(oid) => Err(KeyError::Unsupported(format!(
            "private key algorithm {oid}; Notary allows RSA and ECDSA (P-256/384/521) keys"
        ))),
    }
}

fn curve_name(oid: &ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(oid)
        .map(|n| format!("{n} ({oid})"))
        .unwrap_or_else(|| oid.to_string())
}

#[async_trait]
impl Signer for LocalSigner {
    fn key_spec(&self) -> KeySpec {
        self.key_spec
    }

    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rng = SystemRandom::new();
        match &self.key {
            LocalKey::Rsa(key) => {
                // RSA_PSS_SHA* use salt length = digest length, as Notary requires.
                let padding: &'static dyn sig::RsaEncoding = match self.key_spec {
                    KeySpec::Rsa3072 => &sig::RSA_PSS_SHA384,
                    KeySpec::Rsa4096 => &sig::RSA_PSS_SHA512,
                    _ => &sig::RSA_PSS_SHA256,
                };
                let mut out = vec![0u8; key.public_modulus_len()];
                key.sign(padding, &rng, message, &mut out)
                    .map_err(|_| CryptoError::SigningFailed("RSA-PSS signing failed".into()))?;
                Ok(out)
            }
            LocalKey::Ecdsa(key) => key
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CryptoError::SigningFailed("ECDSA signing failed".into())),
        }
    }
}
