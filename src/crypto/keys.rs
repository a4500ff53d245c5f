//! Private keys from PEM (PKCS#8, encrypted PKCS#8, SEC1 EC, PKCS#1 RSA) and the local signer.

use async_trait::async_trait;

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
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A private key held in process memory together with its certificate chain.
pub struct LocalSigner {
    key_spec: KeySpec,
    chain: Vec<Vec<u8>>,
    key: LocalKey,
}

#[allow(dead_code)]
enum LocalKey {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ecdsa(aws_lc_rs::signature::EcdsaKeyPair),
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
        let _ = (key_pem, password, chain_der);
        todo!("crypto::keys::LocalSigner::from_pem")
    }
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
        let _ = (message, &self.key);
        todo!("crypto::keys::LocalSigner::sign")
    }
}
