//! `sign-action cert generate-test NAME`: a throw-away RSA-2048 signing key with a
//! self-signed certificate, plus a notation-style trust store and trust policy that trust it,
//! so that sign → verify can be tried in minutes. Never for production use.
//!
//! The certificate is a self-signed *leaf* (keyUsage critical digitalSignature, EKU
//! codeSigning, basicConstraints cA=FALSE): a single self-signed certificate is a valid
//! Notary chain that must meet the leaf rules, and notation's trust store accepts a
//! self-signed certificate as an anchor. Its subject carries C, ST and O so that an
//! `x509.subject` trusted identity can name it.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, RsaKeySize,
    SerialNumber, PKCS_RSA_SHA256,
};

/// Files written by [`generate_test_certificate`].
#[derive(Debug, Clone)]
pub struct TestCertificate {
    /// PKCS#8 PEM private key (mode 0600).
    pub key_path: PathBuf,
    /// PEM certificate.
    pub cert_path: PathBuf,
    /// `<dir>/truststore` — point notation's config dir (or ours) at `<dir>`.
    pub trust_store_root: PathBuf,
    /// `<dir>/truststore/x509/ca/<name>/<name>.crt`.
    pub trust_store_cert_path: PathBuf,
    /// `<dir>/trustpolicy.json`.
    pub trust_policy_path: PathBuf,
    /// Subject as notation prints it.
    pub subject: String,
    /// SHA-256 of the certificate DER, lowercase hex.
    pub sha256_fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestCertError {
    #[error("invalid test certificate name {0:?}: use letters, digits, '.', '_' or '-' (it names files and a trust store)")]
    InvalidName(String),
    #[error("{0} already exists; remove it or choose another directory")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate the test key or certificate: {0}")]
    Generate(String),
}

/// Validity of the generated certificate.
const VALIDITY_DAYS: i64 = 365;

/// Generate `<dir>/<name>.key`, `<dir>/<name>.crt`, a `ca:<name>` trust store holding the
/// certificate and a trust policy trusting it for every repository. Existing files are never
/// overwritten.
pub fn generate_test_certificate(name: &str, dir: &Path) -> Result<TestCertificate, TestCertError> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        return Err(TestCertError::InvalidName(name.to_string()));
    }

    let key_path = dir.join(format!("{name}.key"));
    let cert_path = dir.join(format!("{name}.crt"));
    let trust_store_root = dir.join("truststore");
    let store_dir = trust_store_root.join("x509").join("ca").join(name);
    let trust_store_cert_path = store_dir.join(format!("{name}.crt"));
    let trust_policy_path = dir.join("trustpolicy.json");
    for p in [
        &key_path,
        &cert_path,
        &trust_store_cert_path,
        &trust_policy_path,
    ] {
        if p.symlink_metadata().is_ok() {
            return Err(TestCertError::Exists(p.clone()));
        }
    }

    let gen = |e: rcgen::Error| TestCertError::Generate(e.to_string());
    let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).map_err(gen)?;

    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen)?;
    let mut dn = rcgen::DistinguishedName::new();
    // Encoded in this order; Go prints it reversed: CN=<name>,O=Notary,L=Seattle,ST=WA,C=US.
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::StateOrProvinceName, "WA");
    dn.push(DnType::LocalityName, "Seattle");
    dn.push(DnType::OrganizationName, "Notary");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|e| TestCertError::Generate(e.to_string()))?;
    params.not_before = now;
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    let cert = params.self_signed(&key).map_err(gen)?;

    let cert_pem = cert.pem();
    let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
    let parsed = crate::x509::Certificate::from_der(cert.der())
        .map_err(|e| TestCertError::Generate(e.to_string()))?;

    std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
    write_new(&key_path, key_pem.as_bytes(), 0o600)?;
    write_new(&cert_path, cert_pem.as_bytes(), 0o644)?;
    std::fs::create_dir_all(&store_dir).map_err(|source| io(&store_dir, source))?;
    write_new(&trust_store_cert_path, cert_pem.as_bytes(), 0o644)?;
    let policy_text = trust_policy_json(name)?;
    write_new(
        &trust_policy_path,
        format!("{policy_text}\n").as_bytes(),
        0o644,
    )?;

    Ok(TestCertificate {
        key_path,
        cert_path,
        trust_store_root,
        trust_store_cert_path,
        trust_policy_path,
        subject: parsed.subject(),
        sha256_fingerprint: parsed.sha256_fingerprint(),
    })
}

/// The trust policy document, fields in the order notation's documentation shows them.
fn trust_policy_json(name: &str) -> Result<String, TestCertError> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Document<'a> {
        version: &'a str,
        trust_policies: [Statement<'a>; 1],
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Statement<'a> {
        name: &'a str,
        registry_scopes: [&'a str; 1],
        signature_verification: Verification<'a>,
        trust_stores: [String; 1],
        trusted_identities: [&'a str; 1],
    }
    #[derive(serde::Serialize)]
    struct Verification<'a> {
        level: &'a str,
    }
    let doc = Document {
        version: "1.0",
        trust_policies: [Statement {
            name,
            registry_scopes: ["*"],
            signature_verification: Verification { level: "strict" },
            trust_stores: [format!("ca:{name}")],
            trusted_identities: ["*"],
        }],
    };
    serde_json::to_string_pretty(&doc).map_err(|e| TestCertError::Generate(e.to_string()))
}

/// A positive 128-bit serial number (RFC 5280 allows up to 20 octets).
fn random_serial() -> Result<[u8; 16], TestCertError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| TestCertError::Generate("no randomness for the serial number".into()))?;
    serial[0] = (serial[0] & 0x7f) | 0x01;
    Ok(serial)
}

fn io(path: &Path, source: std::io::Error) -> TestCertError {
    TestCertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Create `path` (failing if it exists) with `mode` from the start, so a key is never
/// readable by others even briefly.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), TestCertError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            TestCertError::Exists(path.to_path_buf())
        } else {
            io(path, e)
        }
    })?;
    file.write_all(data).map_err(|e| io(path, e))?;
    file.sync_all().map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{LocalSigner, Signer};
    use crate::x509::{parse_certificates, validate_chain, ChainPurpose};

    #[test]
    fn generated_certificate_is_a_valid_notary_signing_setup() {
        let dir = tempfile::tempdir().unwrap();
        let out = generate_test_certificate("demo-1", dir.path()).unwrap();
        assert_eq!(out.subject, "CN=demo-1,O=Notary,L=Seattle,ST=WA,C=US");

        let certs = parse_certificates(&std::fs::read(&out.cert_path).unwrap(), "crt").unwrap();
        assert_eq!(certs.len(), 1);
        validate_chain(
            &certs,
            ChainPurpose::CodeSigning,
            Some(std::time::SystemTime::now()),
        )
        .unwrap();
        assert!(!crate::x509::chain::is_ca(&certs[0]));

        let key_pem = std::fs::read(&out.key_path).unwrap();
        assert!(key_pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out.key_path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let signer = LocalSigner::from_pem(&key_pem, None, vec![certs[0].der().to_vec()]).unwrap();
        assert_eq!(signer.key_spec(), crate::crypto::KeySpec::Rsa2048);
        let sig = futures::executor::block_on(signer.sign(b"hello")).unwrap();
        crate::crypto::verify_signature(
            crate::crypto::SignatureAlgorithm::Ps256,
            &certs[0].spki_der(),
            b"hello",
            &sig,
        )
        .unwrap();

        assert_eq!(
            std::fs::read(&out.trust_store_cert_path).unwrap(),
            std::fs::read(&out.cert_path).unwrap()
        );
        assert_eq!(
            out.trust_store_cert_path,
            dir.path().join("truststore/x509/ca/demo-1/demo-1.crt")
        );
        let policy_text = std::fs::read_to_string(&out.trust_policy_path).unwrap();
        assert!(policy_text.find("\"version\"") < policy_text.find("\"trustPolicies\""));
        let policy: serde_json::Value = serde_json::from_str(&policy_text).unwrap();
        assert_eq!(policy["version"], "1.0");
        let stmt = &policy["trustPolicies"][0];
        assert_eq!(stmt["name"], "demo-1");
        assert_eq!(stmt["registryScopes"], serde_json::json!(["*"]));
        assert_eq!(stmt["signatureVerification"]["level"], "strict");
        assert_eq!(stmt["trustStores"], serde_json::json!(["ca:demo-1"]));
        assert_eq!(stmt["trustedIdentities"], serde_json::json!(["*"]));

        // Validity is now .. now + 365 days.
        let days = certs[0]
            .not_after()
            .duration_since(certs[0].not_before())
            .unwrap()
            .as_secs()
            / 86_400;
        assert_eq!(days, 365);

        // Never overwrites.
        assert!(matches!(
            generate_test_certificate("demo-1", dir.path()),
            Err(TestCertError::Exists(_))
        ));
    }

    #[test]
    fn rejects_names_that_are_not_store_names() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "..", "a/b", "a b", "ü"] {
            assert!(matches!(
                generate_test_certificate(bad, dir.path()),
                Err(TestCertError::InvalidName(_))
            ));
        }
    }
}
