use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use der::Decode;
use spki::SubjectPublicKeyInfoRef;

use super::CryptoError;

const OID_RSA: der::asn1::ObjectIdentifier = const_oid::db::rfc5912::RSA_ENCRYPTION;
const OID_EC: der::asn1::ObjectIdentifier = const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
const OID_P256: der::asn1::ObjectIdentifier = const_oid::db::rfc5912::SECP_256_R_1;
const OID_P384: der::asn1::ObjectIdentifier = const_oid::db::rfc5912::SECP_384_R_1;
const OID_P521: der::asn1::ObjectIdentifier = const_oid::db::rfc5912::SECP_521_R_1;

/// Hash functions the Notary algorithms use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlgorithm {
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            HashAlgorithm::Sha256 => &aws_lc_rs::digest::SHA256,
            HashAlgorithm::Sha384 => &aws_lc_rs::digest::SHA384,
            HashAlgorithm::Sha512 => &aws_lc_rs::digest::SHA512,
        };
        aws_lc_rs::digest::digest(alg, data).as_ref().to_vec()
    }

    /// Name used by the notation plugin protocol (`SHA-256`, …).
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha384 => "SHA-384",
            HashAlgorithm::Sha512 => "SHA-512",
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }
}

/// The six key types the Notary Project allows for a leaf certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySpec {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcP256,
    EcP384,
    EcP521,
}

impl KeySpec {
    /// Identify the key in a DER SubjectPublicKeyInfo; anything outside the table is refused.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<KeySpec, CryptoError> {
        let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
            .map_err(|e| CryptoError::UnsupportedKey(format!("unparsable public key: {e}")))?;
        let oid = spki.algorithm.oid;
        if oid == OID_RSA {
            let key = spki.subject_public_key.raw_bytes();
            let bits = rsa_modulus_bits(key)
                .ok_or_else(|| CryptoError::UnsupportedKey("malformed RSA public key".into()))?;
            match bits {
                2048 => Ok(KeySpec::Rsa2048),
                3072 => Ok(KeySpec::Rsa3072),
                4096 => Ok(KeySpec::Rsa4096),
                other => Err(CryptoError::UnsupportedKey(format!(
                    "RSA-{other} (Notary allows RSA 2048, 3072 or 4096 bits)"
                ))),
            }
        } else if oid == OID_EC {
            let curve: der::asn1::ObjectIdentifier = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as().ok())
                .ok_or_else(|| {
                    CryptoError::UnsupportedKey("EC key without a named curve".into())
                })?;
            if curve == OID_P256 {
                Ok(KeySpec::EcP256)
            } else if curve == OID_P384 {
                Ok(KeySpec::EcP384)
            } else if curve == OID_P521 {
                Ok(KeySpec::EcP521)
            } else {
                Err(CryptoError::UnsupportedKey(format!(
                    "EC curve {curve} (Notary allows P-256, P-384 or P-521)"
                )))
            }
        } else {
            Err(CryptoError::UnsupportedKey(format!("key algorithm {oid}")))
        }
    }

    pub fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            KeySpec::Rsa2048 => SignatureAlgorithm::Ps256,
            KeySpec::Rsa3072 => SignatureAlgorithm::Ps384,
            KeySpec::Rsa4096 => SignatureAlgorithm::Ps512,
            KeySpec::EcP256 => SignatureAlgorithm::Es256,
            KeySpec::EcP384 => SignatureAlgorithm::Es384,
            KeySpec::EcP521 => SignatureAlgorithm::Es512,
        }
    }

    /// Length of a raw Notary signature by this key: RSASSA-PSS signatures are modulus-sized,
    /// ECDSA ones fixed-width R‖S (twice the field size). Signers that get signatures from
    /// elsewhere (HSMs, KMS) check what they receive against it.
    pub fn raw_signature_len(self) -> usize {
        match self {
            KeySpec::Rsa2048 => 256,
            KeySpec::Rsa3072 => 384,
            KeySpec::Rsa4096 => 512,
            KeySpec::EcP256 => 64,
            KeySpec::EcP384 => 96,
            KeySpec::EcP521 => 132,
        }
    }

    /// Name used by the notation plugin protocol (`RSA-2048`, `EC-256`, …).
    pub fn name(self) -> &'static str {
        match self {
            KeySpec::Rsa2048 => "RSA-2048",
            KeySpec::Rsa3072 => "RSA-3072",
            KeySpec::Rsa4096 => "RSA-4096",
            KeySpec::EcP256 => "EC-256",
            KeySpec::EcP384 => "EC-384",
            KeySpec::EcP521 => "EC-521",
        }
    }

    pub fn from_name(name: &str) -> Option<KeySpec> {
        [
            KeySpec::Rsa2048,
            KeySpec::Rsa3072,
            KeySpec::Rsa4096,
            KeySpec::EcP256,
            KeySpec::EcP384,
            KeySpec::EcP521,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// The six Notary signature algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
}

const ALL_ALGORITHMS: [SignatureAlgorithm; 6] = [
    SignatureAlgorithm::Ps256,
    SignatureAlgorithm::Ps384,
    SignatureAlgorithm::Ps512,
    SignatureAlgorithm::Es256,
    SignatureAlgorithm::Es384,
    SignatureAlgorithm::Es512,
];

impl SignatureAlgorithm {
    pub fn jws_name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ps256 => "PS256",
            SignatureAlgorithm::Ps384 => "PS384",
            SignatureAlgorithm::Ps512 => "PS512",
            SignatureAlgorithm::Es256 => "ES256",
            SignatureAlgorithm::Es384 => "ES384",
            SignatureAlgorithm::Es512 => "ES512",
        }
    }

    pub fn from_jws_name(name: &str) -> Option<SignatureAlgorithm> {
        ALL_ALGORITHMS.into_iter().find(|a| a.jws_name() == name)
    }

    /// COSE algorithm identifier (RFC 9053 / RFC 8230).
    pub fn cose_id(self) -> i64 {
        match self {
            SignatureAlgorithm::Ps256 => -37,
            SignatureAlgorithm::Ps384 => -38,
            SignatureAlgorithm::Ps512 => -39,
            SignatureAlgorithm::Es256 => -7,
            SignatureAlgorithm::Es384 => -35,
            SignatureAlgorithm::Es512 => -36,
        }
    }

    pub fn from_cose_id(id: i64) -> Option<SignatureAlgorithm> {
        ALL_ALGORITHMS.into_iter().find(|a| a.cose_id() == id)
    }

    pub fn hash(self) -> HashAlgorithm {
        match self {
            SignatureAlgorithm::Ps256 | SignatureAlgorithm::Es256 => HashAlgorithm::Sha256,
            SignatureAlgorithm::Ps384 | SignatureAlgorithm::Es384 => HashAlgorithm::Sha384,
            SignatureAlgorithm::Ps512 | SignatureAlgorithm::Es512 => HashAlgorithm::Sha512,
        }
    }

    /// Name used by the notation plugin protocol (`RSASSA-PSS-SHA-256`, `ECDSA-SHA-256`, …).
    pub fn plugin_name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ps256 => "RSASSA-PSS-SHA-256",
            SignatureAlgorithm::Ps384 => "RSASSA-PSS-SHA-384",
            SignatureAlgorithm::Ps512 => "RSASSA-PSS-SHA-512",
            SignatureAlgorithm::Es256 => "ECDSA-SHA-256",
            SignatureAlgorithm::Es384 => "ECDSA-SHA-384",
            SignatureAlgorithm::Es512 => "ECDSA-SHA-512",
        }
    }

    pub fn is_ecdsa(self) -> bool {
        matches!(
            self,
            SignatureAlgorithm::Es256 | SignatureAlgorithm::Es384 | SignatureAlgorithm::Es512
        )
    }
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.jws_name())
    }
}

fn verification_algorithm(alg: SignatureAlgorithm) -> &'static dyn VerificationAlgorithm {
    match alg {
        // aws-lc-rs' PSS verifiers require salt length = hash length (RSA_PSS_SALTLEN_DIGEST),
        // which is exactly what Notary prescribes and what notation-go verifies with.
        SignatureAlgorithm::Ps256 => &sig::RSA_PSS_2048_8192_SHA256,
        SignatureAlgorithm::Ps384 => &sig::RSA_PSS_2048_8192_SHA384,
        SignatureAlgorithm::Ps512 => &sig::RSA_PSS_2048_8192_SHA512,
        SignatureAlgorithm::Es256 => &sig::ECDSA_P256_SHA256_FIXED,
        SignatureAlgorithm::Es384 => &sig::ECDSA_P384_SHA384_FIXED,
        SignatureAlgorithm::Es512 => &sig::ECDSA_P521_SHA512_FIXED,
    }
}

pub(super) fn verify(
    alg: SignatureAlgorithm,
    spki_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| CryptoError::UnsupportedKey(format!("unparsable public key: {e}")))?;
    // aws-lc-rs wants the bare key: PKCS#1 RSAPublicKey or the SEC1 point.
    let key = spki.subject_public_key.raw_bytes();
    UnparsedPublicKey::new(verification_algorithm(alg), key)
        .verify(message, signature)
        .map_err(|_| CryptoError::BadSignature)
}

/// Bit length of the modulus of a DER PKCS#1 RSAPublicKey.
pub(crate) fn rsa_modulus_bits(pkcs1: &[u8]) -> Option<usize> {
    #[derive(der::Sequence)]
    struct RsaPublicKey<'a> {
        modulus: der::asn1::UintRef<'a>,
        _public_exponent: der::asn1::UintRef<'a>,
    }
    let key = RsaPublicKey::from_der(pkcs1).ok()?;
    let bytes = key.modulus.as_bytes();
    let first = *bytes.first()?;
    Some(bytes.len() * 8 - first.leading_zeros() as usize)
}
