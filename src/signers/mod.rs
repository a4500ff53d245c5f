//! Signers whose keys live outside this process: PKCS#11 tokens, notation plugins, keyless
//! (Fulcio) certificates for an ephemeral key, and cloud KMS keys (Azure Key Vault, AWS KMS)
//! reached through OIDC federation.
//! Each implements [`crate::crypto::Signer`], so envelope building and storage do not change.

pub mod pkcs11;

pub use pkcs11::{KeySelector, Pkcs11Config, Pkcs11Error, Pkcs11Signer, TokenSelector};
pub mod install;
pub mod plugin;

pub use plugin::{Plugin, PluginError, PluginSigner};
pub mod keyless;

pub use keyless::{KeylessError, KeylessSigner};

pub mod aws_kms;
pub mod azure_kv;
mod kms;

pub use aws_kms::{AwsKmsConfig, AwsKmsError, AwsKmsSigner};
pub use azure_kv::{AzureKeyVaultSigner, AzureKvConfig, AzureKvError};
