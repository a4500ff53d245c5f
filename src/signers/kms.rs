//! What the cloud KMS signers (Azure Key Vault, AWS KMS) share: matching the certificate to the
//! key the service holds, the per-signature self-check, and turning a service's error body into
//! a message that is safe to print.
//!
//! Both signers hash locally and send only the digest, so the message never leaves the process
//! either; the service returns a raw signature that we check against the leaf certificate before
//! it goes into an envelope (a rotated key or a wrong certificate fails here, not at verify time).

use der::Decode;
use spki::SubjectPublicKeyInfoRef;

use crate::crypto::{CryptoError, KeySpec};
use crate::x509::Certificate;

/// Timeout of every request to a token endpoint or key service.
pub(crate) const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Key, certificate and signature answers are a few KiB; token answers too.
pub(crate) const MAX_ANSWER_BYTES: u64 = 256 * 1024;
/// Longest service error text we repeat.
const MAX_ERROR_CHARS: usize = 300;

/// The leaf certificate's public key must be the key the service signs with: compares the
/// algorithm, the curve and the key bits of two DER SubjectPublicKeyInfos.
pub(crate) fn same_public_key(leaf_spki: &[u8], service_spki: &[u8]) -> bool {
    let (Ok(a), Ok(b)) = (
        SubjectPublicKeyInfoRef::from_der(leaf_spki),
        SubjectPublicKeyInfoRef::from_der(service_spki),
    ) else {
        return false;
    };
    let curve = |s: &SubjectPublicKeyInfoRef<'_>| {
        s.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
    };
    a.algorithm.oid == b.algorithm.oid
        && curve(&a) == curve(&b)
        && a.subject_public_key.raw_bytes() == b.subject_public_key.raw_bytes()
}

/// The key type of the chain's leaf, refusing what Notary does not allow.
pub(crate) fn leaf_key_spec(chain: &[Vec<u8>]) -> Result<(KeySpec, Vec<u8>), String> {
    let leaf = chain
        .first()
        .ok_or("the certificate chain is empty; the leaf certificate must come first")?;
    let leaf = Certificate::from_der(leaf).map_err(|e| format!("leaf certificate: {e}"))?;
    let spki = leaf.spki_der();
    let spec = KeySpec::from_spki_der(&spki)
        .map_err(|e| format!("the leaf certificate's key is not allowed: {e}"))?;
    Ok((spec, spki))
}

/// Check a signature the service returned with the leaf certificate's key.
pub(crate) fn check_returned_signature(
    spec: KeySpec,
    leaf_spki: &[u8],
    message: &[u8],
    signature: &[u8],
    service: &str,
) -> Result<(), CryptoError> {
    crate::crypto::verify_signature(spec.signature_algorithm(), leaf_spki, message, signature)
        .map_err(|_| {
            CryptoError::SigningFailed(format!(
                "the signature {service} returned does not verify with the leaf certificate's key \
                 (was the key rotated, or does the certificate belong to another key?)"
            ))
        })
}

/// A service's error text made safe to print: the secrets we sent are replaced, anything
/// shaped like a JWT or a long opaque credential is cut out, control characters go, and the
/// text is bounded. Services do not normally echo credentials, but an error message is the
/// one place where a proxy or a future API version could, and it is printed and annotated.
pub(crate) fn sanitise_service_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(s, "<redacted>");
    }
    let words: Vec<String> = out
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(|w| {
            if looks_like_credential(w) {
                "<redacted>".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    let mut out: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if out.chars().count() > MAX_ERROR_CHARS {
        out = out.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
    }
    out
}

/// JWTs (three base64url parts, the first a JSON header) and long unbroken base64 runs such as
/// session tokens and access tokens.
fn looks_like_credential(word: &str) -> bool {
    let trimmed = word.trim_matches(|c: char| "'\"()[]{},;.".contains(c));
    if trimmed.contains("eyJ") && trimmed.matches('.').count() >= 2 {
        return true;
    }
    let b64 = trimmed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(*c))
        .count();
    trimmed.len() >= 40 && b64 == trimmed.len() && !trimmed.contains("://")
}

/// Convert a DER `ECDSA-Sig-Value` (SEQUENCE of two INTEGERs) to fixed-width R‖S.
pub(crate) fn ecdsa_der_to_fixed(der_sig: &[u8], spec: KeySpec) -> Result<Vec<u8>, String> {
    let width = match spec {
        KeySpec::EcP256 => 32,
        KeySpec::EcP384 => 48,
        KeySpec::EcP521 => 66,
        _ => return Err("not an EC key".into()),
    };
    #[derive(der::Sequence)]
    struct EcdsaSig<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    let sig =
        EcdsaSig::from_der(der_sig).map_err(|e| format!("the ECDSA signature is not DER: {e}"))?;
    let mut out = vec![0u8; 2 * width];
    for (i, part) in [sig.r.as_bytes(), sig.s.as_bytes()].into_iter().enumerate() {
        if part.len() > width {
            return Err("an ECDSA signature component is wider than the curve".into());
        }
        let end = (i + 1) * width;
        out[end - part.len()..end].copy_from_slice(part);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising_removes_secrets_and_tokens() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz";
        let session = "FwoGZXIvYXdzEJr//////////wEaDOxAmpleSessionTokenValue1234567890abcdefgh";
        let text = format!(
            "AADSTS700024: Client assertion '{jwt}' is not within its valid time range.\n\
             token={session} secret mysecret-123456"
        );
        let clean = sanitise_service_text(&text, &["mysecret-123456"]);
        assert!(!clean.contains("eyJ"), "{clean}");
        assert!(!clean.contains("FwoGZXIvYXdz"), "{clean}");
        assert!(!clean.contains("mysecret"), "{clean}");
        assert!(clean.contains("AADSTS700024"), "{clean}");
        assert!(!clean.contains('\n'));
        let long = "word ".repeat(200);
        assert!(sanitise_service_text(&long, &[]).chars().count() <= MAX_ERROR_CHARS + 1);
        // Ordinary identifiers survive.
        let arn = "arn:aws:iam::111122223333:role/release-signer is not authorized";
        assert_eq!(sanitise_service_text(arn, &[]), arn);
    }

    #[test]
    fn der_ecdsa_to_fixed_pads_and_strips() {
        // r with a leading 0x00 (high bit set), s short.
        let mut r = vec![0x00, 0x80];
        r.extend([1u8; 31]);
        let s = vec![0x05];
        let mut der_sig = vec![0x30, (2 + r.len() + 2 + s.len()) as u8, 0x02, r.len() as u8];
        der_sig.extend(&r);
        der_sig.extend([0x02, s.len() as u8]);
        der_sig.extend(&s);
        let fixed = ecdsa_der_to_fixed(&der_sig, KeySpec::EcP256).unwrap();
        assert_eq!(fixed.len(), 64);
        assert_eq!(fixed[0], 0x80);
        assert_eq!(fixed[63], 0x05);
        assert!(fixed[32..63].iter().all(|b| *b == 0));
        assert!(ecdsa_der_to_fixed(&der_sig, KeySpec::Rsa2048).is_err());
        assert!(ecdsa_der_to_fixed(b"\x30\x00", KeySpec::EcP256).is_err());
    }
}
