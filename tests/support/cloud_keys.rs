//! Real keys for the cloud KMS fakes (aws-lc-rs), signing digests the way Key Vault and KMS do,
//! and test certificates for them issued by a file-based CA with the openssl CLI.
#![allow(dead_code)]

use std::path::Path;

use aws_lc_rs::digest::{Digest, SHA256, SHA384, SHA512};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use der::Decode;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    P256,
    P384,
    P521,
    /// secp256k1: offered by both services, forbidden by Notary.
    P256K,
}

impl KeyKind {
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096)
    }
}

pub struct FakeKey {
    pub kind: KeyKind,
    rsa: Option<RsaKeyPair>,
    ec_der: Option<EcdsaKeyPair>,
    ec_fixed: Option<EcdsaKeyPair>,
    spki: Vec<u8>,
}

impl FakeKey {
    pub fn generate(kind: KeyKind) -> FakeKey {
        let rsa_size = match kind {
            KeyKind::Rsa2048 => Some(KeySize::Rsa2048),
            KeyKind::Rsa3072 => Some(KeySize::Rsa3072),
            KeyKind::Rsa4096 => Some(KeySize::Rsa4096),
            _ => None,
        };
        if let Some(size) = rsa_size {
            let rsa = RsaKeyPair::generate(size).expect("RSA key");
            let spki = rsa.public_key().as_der().expect("SPKI").as_ref().to_vec();
            return FakeKey {
                kind,
                rsa: Some(rsa),
                ec_der: None,
                ec_fixed: None,
                spki,
            };
        }
        let (der_alg, fixed_alg) = match kind {
            KeyKind::P256 => (
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            ),
            KeyKind::P384 => (
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            ),
            KeyKind::P521 => (
                &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
                &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
            ),
            _ => (
                &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256K1_SHA256_FIXED_SIGNING,
            ),
        };
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(der_alg, &aws_lc_rs::rand::SystemRandom::new())
            .expect("EC key");
        let ec_der = EcdsaKeyPair::from_pkcs8(der_alg, pkcs8.as_ref()).expect("EC key");
        let ec_fixed = EcdsaKeyPair::from_pkcs8(fixed_alg, pkcs8.as_ref()).expect("EC key");
        let spki = ec_der
            .public_key()
            .as_der()
            .expect("SPKI")
            .as_ref()
            .to_vec();
        FakeKey {
            kind,
            rsa: None,
            ec_der: Some(ec_der),
            ec_fixed: Some(ec_fixed),
            spki,
        }
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    pub fn public_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.spki);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn key_bits(&self) -> Vec<u8> {
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&self.spki).expect("SPKI");
        spki.subject_public_key.raw_bytes().to_vec()
    }

    /// The public key as a JSON Web Key (what Key Vault returns under `key`).
    pub fn jwk(&self) -> Value {
        let bits = self.key_bits();
        if self.kind.is_rsa() {
            #[derive(der::Sequence)]
            struct RsaPublicKey<'a> {
                n: der::asn1::UintRef<'a>,
                e: der::asn1::UintRef<'a>,
            }
            let k = RsaPublicKey::from_der(&bits).expect("RSAPublicKey");
            json!({
                "kty": "RSA-HSM",
                "n": URL_SAFE_NO_PAD.encode(k.n.as_bytes()),
                "e": URL_SAFE_NO_PAD.encode(k.e.as_bytes()),
            })
        } else {
            let width = (bits.len() - 1) / 2;
            let crv = match self.kind {
                KeyKind::P256 => "P-256",
                KeyKind::P384 => "P-384",
                KeyKind::P521 => "P-521",
                _ => "P-256K",
            };
            json!({
                "kty": "EC-HSM",
                "crv": crv,
                "x": URL_SAFE_NO_PAD.encode(&bits[1..1 + width]),
                "y": URL_SAFE_NO_PAD.encode(&bits[1 + width..]),
            })
        }
    }

    /// The hash length the key's Notary algorithm uses (what a signing request must send).
    pub fn digest_len(&self) -> usize {
        match self.kind {
            KeyKind::Rsa2048 | KeyKind::P256 | KeyKind::P256K => 32,
            KeyKind::Rsa3072 | KeyKind::P384 => 48,
            KeyKind::Rsa4096 | KeyKind::P521 => 64,
        }
    }

    /// Sign a precomputed digest. RSA: PSS with the digest's hash and salt = hash length
    /// (both services). EC: the curve's own hash; `der` chooses KMS's DER encoding over Key
    /// Vault's fixed R‖S.
    pub fn sign_digest(&self, digest: &[u8], der: bool) -> Result<Vec<u8>, String> {
        let alg = match digest.len() {
            32 => &SHA256,
            48 => &SHA384,
            64 => &SHA512,
            n => return Err(format!("digest length {n} matches no SHA-2 hash")),
        };
        let d = Digest::import_less_safe(digest, alg).map_err(|_| "bad digest".to_string())?;
        if let Some(rsa) = &self.rsa {
            let pad: &'static dyn signature::RsaEncoding = match digest.len() {
                32 => &signature::RSA_PSS_SHA256,
                48 => &signature::RSA_PSS_SHA384,
                _ => &signature::RSA_PSS_SHA512,
            };
            let mut sig = vec![0u8; rsa.public_modulus_len()];
            rsa.sign_digest(pad, &d, &mut sig)
                .map_err(|_| "RSA signing failed".to_string())?;
            return Ok(sig);
        }
        let key = if der { &self.ec_der } else { &self.ec_fixed };
        let sig = key
            .as_ref()
            .unwrap()
            .sign_digest(&d)
            .map_err(|_| "the digest does not fit the curve's hash".to_string())?;
        Ok(sig.as_ref().to_vec())
    }

    /// PKCS#8 PEM of an EC key (for an "exportable" Key Vault secret).
    pub fn private_pem(&self) -> Option<String> {
        let doc = self.ec_der.as_ref()?.to_pkcs8v1().ok()?;
        Some(format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(doc.as_ref())
        ))
    }
}

pub use crate::support::IssuedCert;

/// A leaf certificate for `key`'s public key under a fresh test root.
pub fn issue_certificate(dir: &Path, name: &str, key: &FakeKey) -> IssuedCert {
    let pubkey = dir.join(format!("{name}.pub.pem"));
    std::fs::write(&pubkey, key.public_pem()).unwrap();
    crate::support::issue_for_public_key(dir, name, &pubkey)
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}
