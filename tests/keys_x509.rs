//! Keys, certificates and chain rules against material made by the `openssl` CLI at test
//! time, with signatures cross-checked by Python `cryptography` (tests/py/verify_notary_sig.py).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use sign_action::crypto::{verify_signature, KeyError, KeySpec, LocalSigner, Signer};
use sign_action::x509::{
    is_ca, is_self_signed, parse_certificates, validate_chain, Certificate, ChainError,
    ChainPurpose,
};

const OPENSSL_CNF: &str = r#"
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[inter_open]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
[selfsigned_leaf]
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
[leaf_server]
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
[leaf_noku]
extendedKeyUsage = codeSigning
[leaf_ku_noncritical]
keyUsage = digitalSignature
[leaf_keyenc]
keyUsage = critical,digitalSignature,keyEncipherment
[tsa]
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
[tsa_noncritical]
keyUsage = critical,digitalSignature
extendedKeyUsage = timeStamping
[ca]
default_ca = testca
[testca]
database = $ENV::CADIR/index.txt
new_certs_dir = $ENV::CADIR
serial = $ENV::CADIR/serial
default_md = sha256
policy = anything
unique_subject = no
email_in_dn = no
[anything]
countryName = optional
stateOrProvinceName = optional
organizationName = optional
commonName = supplied
"#;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env("CADIR", dir)
        .output()
        .expect("openssl CLI runs");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

fn certs(dir: &Path, names: &[&str]) -> Vec<Certificate> {
    names
        .iter()
        .flat_map(|n| parse_certificates(&read(dir, n), n).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------

struct KeyCase {
    spec: KeySpec,
    /// Base name: `<base>.p8.pem`, `<base>.enc.pem`, `<base>.trad.pem`, `<base>.crt`.
    base: &'static str,
}

const KEY_CASES: [KeyCase; 6] = [
    KeyCase {
        spec: KeySpec::Rsa2048,
        base: "rsa2048",
    },
    KeyCase {
        spec: KeySpec::Rsa3072,
        base: "rsa3072",
    },
    KeyCase {
        spec: KeySpec::Rsa4096,
        base: "rsa4096",
    },
    KeyCase {
        spec: KeySpec::EcP256,
        base: "p256",
    },
    KeyCase {
        spec: KeySpec::EcP384,
        base: "p384",
    },
    KeyCase {
        spec: KeySpec::EcP521,
        base: "p521",
    },
];

const PASSWORD: &str = "correct horse";

fn genkey_args(base: &str) -> Vec<String> {
    let opt = match base {
        "rsa1024" => "rsa_keygen_bits:1024",
        "rsa2048" => "rsa_keygen_bits:2048",
        "rsa3072" => "rsa_keygen_bits:3072",
        "rsa4096" => "rsa_keygen_bits:4096",
        "p224" => "ec_paramgen_curve:P-224",
        "p256" => "ec_paramgen_curve:P-256",
        "p384" => "ec_paramgen_curve:P-384",
        "p521" => "ec_paramgen_curve:P-521",
        other => panic!("unknown key {other}"),
    };
    let alg = if base.starts_with("rsa") { "RSA" } else { "EC" };
    ["genpkey", "-algorithm", alg, "-pkeyopt", opt, "-out"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("{base}.p8.pem")])
        .collect()
}

/// Every key type in every PEM form, plus a self-signed code-signing certificate for each,
/// generated once (RSA-4096 generation is slow).
fn key_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        let bases: Vec<&str> = KEY_CASES
            .iter()
            .map(|c| c.base)
            .chain(["rsa1024", "p224"])
            .collect();
        std::thread::scope(|s| {
            for base in &bases {
                s.spawn(move || {
                    let args = genkey_args(base);
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    openssl(d, &args);
                    let p8 = format!("{base}.p8.pem");
                    openssl(
                        d,
                        &[
                            "pkcs8",
                            "-topk8",
                            "-v2",
                            "aes-256-cbc",
                            "-in",
                            &p8,
                            "-passout",
                            &format!("pass:{PASSWORD}"),
                            "-out",
                            &format!("{base}.enc.pem"),
                        ],
                    );
                    // `openssl ec` writes SEC1 by default; `openssl rsa` needs -traditional.
                    let trad = format!("{base}.trad.pem");
                    let mut args = vec!["ec", "-in", &p8, "-out", &trad];
                    if base.starts_with("rsa") {
                        args[0] = "rsa";
                        args.push("-traditional");
                    }
                    openssl(d, &args);
                    openssl(
                        d,
                        &[
                            "req",
                            "-new",
                            "-x509",
                            "-key",
                            &p8,
                            "-subj",
                            &format!("/C=US/ST=WA/O=Notary/CN={base}"),
                            "-days",
                            "2",
                            "-config",
                            "openssl.cnf",
                            "-extensions",
                            "selfsigned_leaf",
                            "-out",
                            &format!("{base}.crt"),
                        ],
                    );
                });
            }
        });
        dir
    })
    .path()
}

fn chain_der(dir: &Path, cert: &str) -> Vec<Vec<u8>> {
    parse_certificates(&read(dir, cert), cert)
        .unwrap()
        .iter()
        .map(|c| c.der().to_vec())
        .collect()
}

fn python_verifies(cert: &Path, message: &[u8], signature: &[u8]) -> (bool, String) {
    let tmp = tempfile::tempdir().unwrap();
    let msg = tmp.path().join("msg");
    let sig = tmp.path().join("sig");
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/verify_notary_sig.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(cert)
        .arg(&msg)
        .arg(&sig)
        .output()
        .expect("python3 runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_key_type_in_every_pem_form_signs_verifiably() {
    let d = key_dir();
    let message =
        b"{\"targetArtifact\":{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}}";
    let mut checked = 0;
    for case in &KEY_CASES {
        let chain = chain_der(d, &format!("{}.crt", case.base));
        let forms = [
            (
                format!("{}.p8.pem", case.base),
                None,
                "-----BEGIN PRIVATE KEY-----",
            ),
            (
                format!("{}.enc.pem", case.base),
                Some(PASSWORD),
                "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            ),
            (
                format!("{}.trad.pem", case.base),
                None,
                if case.base.starts_with("rsa") {
                    "-----BEGIN RSA PRIVATE KEY-----"
                } else {
                    "-----BEGIN EC PRIVATE KEY-----"
                },
            ),
        ];
        for (file, password, header) in forms {
            let pem = read(d, &file);
            assert!(
                String::from_utf8_lossy(&pem).contains(header),
                "{file} is not in the form under test ({header})"
            );
            let signer = LocalSigner::from_pem(&pem, password, chain.clone())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(signer.key_spec(), case.spec, "{file}");
            assert_eq!(signer.certificate_chain(), chain.as_slice());
            let debug = format!("{signer:?}");
            assert!(
                debug.contains("LocalSigner") && debug.len() < 120,
                "{debug}"
            );

            let signature = futures::executor::block_on(signer.sign(message)).unwrap();
            let alg = case.spec.signature_algorithm();
            let spki = Certificate::from_der(&chain[0]).unwrap().spki_der();
            verify_signature(alg, &spki, message, &signature)
                .unwrap_or_else(|e| panic!("{file}: our verifier: {e}"));
            if alg.is_ecdsa() {
                let width = match case.spec {
                    KeySpec::EcP256 => 32,
                    KeySpec::EcP384 => 48,
                    _ => 66,
                };
                assert_eq!(signature.len(), 2 * width, "{file}: fixed-width R||S");
            }
            let (ok, output) =
                python_verifies(&d.join(format!("{}.crt", case.base)), message, &signature);
            assert!(
                ok,
                "{file}: python cryptography rejected the signature: {output}"
            );
            assert!(output.contains(alg.jws_name()), "{file}: {output}");

            // And a tampered message fails both.
            let mut tampered = message.to_vec();
            tampered[0] ^= 1;
            assert!(verify_signature(alg, &spki, &tampered, &signature).is_err());
            let (ok, _) =
                python_verifies(&d.join(format!("{}.crt", case.base)), &tampered, &signature);
            assert!(!ok, "{file}: python accepted a tampered message");
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
}

#[test]
fn key_that_does_not_match_the_leaf_is_rejected() {
    let d = key_dir();
    // Same type, different key.
    let other_p256 = tempfile::tempdir().unwrap();
    openssl(
        other_p256.path(),
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ],
    );
    let err = LocalSigner::from_pem(
        &read(other_p256.path(), "k.pem"),
        None,
        chain_der(d, "p256.crt"),
    )
    .unwrap_err();
    assert!(matches!(err, KeyError::KeyCertMismatch), "{err}");
    // Different type.
    let err = LocalSigner::from_pem(&read(d, "p384.p8.pem"), None, chain_der(d, "rsa2048.crt"))
        .unwrap_err();
    assert!(matches!(err, KeyError::KeyCertMismatch), "{err}");
    let err = LocalSigner::from_pem(
        &read(d, "rsa3072.trad.pem"),
        None,
        chain_der(d, "rsa2048.crt"),
    )
    .unwrap_err();
    assert!(matches!(err, KeyError::KeyCertMismatch), "{err}");
}

#[test]
fn disallowed_key_sizes_and_curves_are_named() {
    let d = key_dir();
    // Key and certificate both RSA-1024 / P-224: the certificate is refused first.
    for (base, needle) in [("rsa1024", "RSA-1024"), ("p224", "1.3.132.0.33")] {
        let err = LocalSigner::from_pem(
            &read(d, &format!("{base}.p8.pem")),
            None,
            chain_der(d, &format!("{base}.crt")),
        )
        .unwrap_err();
        assert!(matches!(err, KeyError::Unsupported(_)), "{base}: {err}");
        assert!(err.to_string().contains(needle), "{base}: {err}");
    }
    // A small key offered for a good certificate is named too.
    let err = LocalSigner::from_pem(
        &read(d, "rsa1024.trad.pem"),
        None,
        chain_der(d, "rsa2048.crt"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("RSA-1024"), "{err}");
    let err = LocalSigner::from_pem(&read(d, "p224.trad.pem"), None, chain_der(d, "p256.crt"))
        .unwrap_err();
    assert!(err.to_string().contains("secp224r1"), "{err}");

    // The chain validator refuses such leaves as well.
    let chain = certs(d, &["rsa1024.crt"]);
    let err = validate_chain(&chain, ChainPurpose::CodeSigning, None).unwrap_err();
    assert!(err.to_string().contains("RSA-1024"), "{err}");
}

#[test]
fn encrypted_key_passwords() {
    let d = key_dir();
    let pem = read(d, "p256.enc.pem");
    let chain = chain_der(d, "p256.crt");
    let err = LocalSigner::from_pem(&pem, None, chain.clone()).unwrap_err();
    assert!(matches!(err, KeyError::PasswordRequired), "{err}");
    for wrong in ["wrong", "", "correct horse "] {
        let err = LocalSigner::from_pem(&pem, Some(wrong), chain.clone()).unwrap_err();
        assert!(matches!(err, KeyError::Decrypt(_)), "{err}");
    }
    LocalSigner::from_pem(&pem, Some(PASSWORD), chain).unwrap();
}

#[test]
fn unreadable_keys_get_clear_errors() {
    let d = key_dir();
    let chain = chain_der(d, "p256.crt");
    for (input, needle) in [
        (&b"not a key"[..], "no PEM block"),
        (&read(d, "p256.crt")[..], "no private key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n", "no END line"),
    ] {
        let err = LocalSigner::from_pem(input, None, chain.clone()).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    let err = LocalSigner::from_pem(&read(d, "p256.p8.pem"), None, vec![]).unwrap_err();
    assert!(matches!(err, KeyError::Chain(_)), "{err}");
    // Legacy OpenSSL encryption is explained, not mis-parsed.
    let tmp = tempfile::tempdir().unwrap();
    openssl(
        tmp.path(),
        &[
            "rsa",
            "-in",
            &d.join("rsa2048.p8.pem").to_string_lossy(),
            "-traditional",
            "-aes256",
            "-passout",
            "pass:x",
            "-out",
            "legacy.pem",
        ],
    );
    let err = LocalSigner::from_pem(
        &read(tmp.path(), "legacy.pem"),
        Some("x"),
        chain_der(d, "rsa2048.crt"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("pkcs8 -topk8"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Certificates and chains
// ---------------------------------------------------------------------------------------

/// root (RSA-3072) → inter (P-384, pathlen 0) → leaf (P-256), plus variants.
fn chain_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        std::fs::write(d.join("index.txt"), "").unwrap();
        std::fs::write(d.join("serial"), "1000\n").unwrap();
        let genkey = |name: &str, opt: &str, alg: &str| {
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    alg,
                    "-pkeyopt",
                    opt,
                    "-out",
                    &format!("{name}.key"),
                ],
            );
        };
        genkey("root", "rsa_keygen_bits:3072", "RSA");
        genkey("inter", "ec_paramgen_curve:P-384", "EC");
        genkey("inter2", "ec_paramgen_curve:P-256", "EC");
        genkey("leaf", "ec_paramgen_curve:P-256", "EC");
        openssl(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                "root.key",
                "-subj",
                "/C=US/ST=WA/O=Test/CN=Test Root",
                "-days",
                "30",
                "-config",
                "openssl.cnf",
                "-extensions",
                "root",
                "-out",
                "root.crt",
            ],
        );
        let csr = |name: &str, subj: &str| {
            openssl(
                d,
                &[
                    "req",
                    "-new",
                    "-key",
                    &format!("{name}.key"),
                    "-subj",
                    subj,
                    "-config",
                    "openssl.cnf",
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
        };
        csr("inter", "/C=US/ST=WA/O=Test/CN=Test Intermediate");
        csr("inter2", "/C=US/ST=WA/O=Test/CN=Test Intermediate 2");
        csr("leaf", "/C=US/ST=WA/O=Test/CN=Test Leaf");
        let sign = |csr: &str, ca: &str, ext: &str, out: &str, extra: &[&str]| {
            let mut args = vec![
                "x509",
                "-req",
                "-in",
                csr,
                "-CA",
                ca,
                "-CAkey",
                "",
                "-set_serial",
                "",
                "-days",
                "10",
                "-extfile",
                "openssl.cnf",
                "-extensions",
                ext,
                "-out",
                out,
            ];
            let key = format!("{}.key", ca.trim_end_matches(".crt"));
            let serial = format!("{}", 100 + out.len() * 7 + ext.len());
            args[7] = &key;
            args[9] = &serial;
            args.extend_from_slice(extra);
            openssl(d, &args);
        };
        sign("inter.csr", "root.crt", "inter", "inter.crt", &[]);
        sign("inter2.csr", "inter.crt", "inter_open", "inter2.crt", &[]);
        sign("leaf.csr", "inter.crt", "leaf", "leaf.crt", &["-sha384"]);
        sign(
            "leaf.csr",
            "inter2.crt",
            "leaf",
            "leaf_under_inter2.crt",
            &[],
        );
        sign(
            "leaf.csr",
            "inter.crt",
            "leaf_server",
            "leaf_server.crt",
            &[],
        );
        sign("leaf.csr", "inter.crt", "leaf_noku", "leaf_noku.crt", &[]);
        sign(
            "leaf.csr",
            "inter.crt",
            "leaf_ku_noncritical",
            "leaf_ku_nc.crt",
            &[],
        );
        sign(
            "leaf.csr",
            "inter.crt",
            "leaf_keyenc",
            "leaf_keyenc.crt",
            &[],
        );
        sign("leaf.csr", "inter.crt", "tsa", "tsa.crt", &[]);
        sign(
            "leaf.csr",
            "inter.crt",
            "tsa_noncritical",
            "tsa_nc.crt",
            &[],
        );
        sign("leaf.csr", "root.crt", "leaf", "leaf_sha1.crt", &["-sha1"]);
        sign(
            "leaf.csr",
            "root.crt",
            "leaf",
            "leaf_pss.crt",
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
                "-sha256",
            ],
        );
        sign(
            "leaf.csr",
            "root.crt",
            "leaf",
            "leaf_pss_badsalt.crt",
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:20",
                "-sha256",
            ],
        );
        // Expired leaf: `openssl ca` is the CLI that takes explicit dates.
        openssl(
            d,
            &[
                "ca",
                "-batch",
                "-config",
                "openssl.cnf",
                "-cert",
                "inter.crt",
                "-keyfile",
                "inter.key",
                "-in",
                "leaf.csr",
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200201000000Z",
                "-extfile",
                "openssl.cnf",
                "-extensions",
                "leaf",
                "-notext",
                "-out",
                "leaf_expired.crt",
            ],
        );
        for name in ["root", "inter", "leaf"] {
            openssl(
                d,
                &[
                    "x509",
                    "-in",
                    &format!("{name}.crt"),
                    "-outform",
                    "DER",
                    "-out",
                    &format!("{name}.der"),
                ],
            );
        }
        dir
    })
    .path()
}

fn now() -> Option<SystemTime> {
    Some(SystemTime::now())
}

fn reason(err: &ChainError) -> String {
    err.to_string()
}

#[test]
fn valid_three_certificate_chain() {
    let d = chain_dir();
    let chain = certs(d, &["leaf.crt", "inter.crt", "root.crt"]);
    validate_chain(&chain, ChainPurpose::CodeSigning, now()).unwrap();
    validate_chain(&chain, ChainPurpose::CodeSigning, None).unwrap();
    assert!(is_ca(&chain[1]) && is_ca(&chain[2]) && !is_ca(&chain[0]));
    assert!(is_self_signed(&chain[2]) && !is_self_signed(&chain[1]) && !is_self_signed(&chain[0]));
    // RSASSA-PSS signed link, salt = hash length.
    let chain = certs(d, &["leaf_pss.crt", "root.crt"]);
    validate_chain(&chain, ChainPurpose::CodeSigning, now()).unwrap();
}

#[test]
fn order_and_completeness() {
    let d = chain_dir();
    let err = validate_chain(
        &certs(d, &["leaf.crt", "root.crt", "inter.crt"]),
        ChainPurpose::CodeSigning,
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ChainError::OutOfOrder { index: 0, .. }),
        "{err}"
    );
    let err = validate_chain(
        &certs(d, &["root.crt", "inter.crt", "leaf.crt"]),
        ChainPurpose::CodeSigning,
        now(),
    )
    .unwrap_err();
    assert!(reason(&err).contains("self-signed"), "{err}");
    let err = validate_chain(
        &certs(d, &["leaf.crt", "inter.crt"]),
        ChainPurpose::CodeSigning,
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, ChainError::NoRoot { .. }), "{err}");
    assert!(reason(&err).contains("Test Intermediate"), "{err}");
    let err =
        validate_chain(&certs(d, &["leaf.crt"]), ChainPurpose::CodeSigning, now()).unwrap_err();
    assert!(matches!(err, ChainError::NoRoot { .. }), "{err}");
    let err = validate_chain(&[], ChainPurpose::CodeSigning, now()).unwrap_err();
    assert!(matches!(err, ChainError::Empty));
    // A self-signed leaf followed by an unrelated root.
    let e2e = parse_certificates(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/e2e-certs/e2e.crt"
        ))
        .unwrap(),
        "e2e.crt",
    )
    .unwrap();
    let mut chain = e2e.clone();
    chain.extend(certs(d, &["root.crt"]));
    let err = validate_chain(&chain, ChainPurpose::CodeSigning, now()).unwrap_err();
    assert!(
        reason(&err).contains("leaf certificate is self-signed"),
        "{err}"
    );
}

#[test]
fn ca_and_leaf_rules() {
    let d = chain_dir();
    let check = |names: &[&str], purpose| validate_chain(&certs(d, names), purpose, now());

    let err = check(&["inter.crt", "root.crt"], ChainPurpose::CodeSigning).unwrap_err();
    assert!(
        matches!(err, ChainError::Certificate { index: 0, .. }),
        "{err}"
    );
    assert!(reason(&err).contains("CA certificate"), "{err}");
    let err = check(&["root.crt"], ChainPurpose::CodeSigning).unwrap_err();
    assert!(reason(&err).contains("CA certificate"), "{err}");

    let err = check(
        &["leaf_server.crt", "inter.crt", "root.crt"],
        ChainPurpose::CodeSigning,
    )
    .unwrap_err();
    assert!(reason(&err).contains("serverAuth"), "{err}");
    assert!(reason(&err).contains("Test Leaf"), "{err}");

    let err = check(
        &["leaf_noku.crt", "inter.crt", "root.crt"],
        ChainPurpose::CodeSigning,
    )
    .unwrap_err();
    assert!(reason(&err).contains("keyUsage"), "{err}");

    let err = check(
        &["leaf_ku_nc.crt", "inter.crt", "root.crt"],
        ChainPurpose::CodeSigning,
    )
    .unwrap_err();
    assert!(reason(&err).contains("critical"), "{err}");

    let err = check(
        &["leaf_keyenc.crt", "inter.crt", "root.crt"],
        ChainPurpose::CodeSigning,
    )
    .unwrap_err();
    assert!(reason(&err).contains("keyEncipherment"), "{err}");

    // inter has pathlen:0 but another CA sits below it.
    let err = check(
        &[
            "leaf_under_inter2.crt",
            "inter2.crt",
            "inter.crt",
            "root.crt",
        ],
        ChainPurpose::CodeSigning,
    )
    .unwrap_err();
    assert!(
        matches!(err, ChainError::Certificate { index: 2, .. }),
        "{err}"
    );
    assert!(reason(&err).contains("pathLenConstraint"), "{err}");
}

#[test]
fn timestamping_leaf_rules() {
    let d = chain_dir();
    let check = |names: &[&str], purpose| validate_chain(&certs(d, names), purpose, now());
    check(
        &["tsa.crt", "inter.crt", "root.crt"],
        ChainPurpose::Timestamping,
    )
    .unwrap();
    let err = check(
        &["tsa_nc.crt", "inter.crt", "root.crt"],
        ChainPurpose::Timestamping,
    )
    .unwrap_err();
    assert!(reason(&err).contains("critical"), "{err}");
    let err = check(
        &["leaf.crt", "inter.crt", "root.crt"],
        ChainPurpose::Timestamping,
    )
    .unwrap_err();
    assert!(reason(&err).contains("exactly timeStamping"), "{err}");
    // A TSA certificate is not a code-signing certificate.
    let err = check(
        &["tsa.crt", "inter.crt", "root.crt"],
        ChainPurpose::CodeSigning,
    )
    .unwrap_err();
    assert!(reason(&err).contains("timeStamping"), "{err}");
}

#[test]
fn validity_time() {
    let d = chain_dir();
    let chain = certs(d, &["leaf_expired.crt", "inter.crt", "root.crt"]);
    let err = validate_chain(&chain, ChainPurpose::CodeSigning, now()).unwrap_err();
    match &err {
        ChainError::NotValidAt {
            index, not_after, ..
        } => {
            assert_eq!(*index, 0);
            assert_eq!(not_after, "2020-02-01T00:00:00Z");
        }
        other => panic!("unexpected {other}"),
    }
    // Apart from time, the chain is fine.
    validate_chain(&chain, ChainPurpose::CodeSigning, None).unwrap();
    // The root is valid for 30 days only.
    let later = SystemTime::now() + std::time::Duration::from_secs(40 * 86_400);
    let err = validate_chain(
        &certs(d, &["leaf.crt", "inter.crt", "root.crt"]),
        ChainPurpose::CodeSigning,
        Some(later),
    )
    .unwrap_err();
    assert!(
        matches!(err, ChainError::NotValidAt { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn refused_signature_algorithms() {
    let d = chain_dir();
    let err = validate_chain(
        &certs(d, &["leaf_sha1.crt", "root.crt"]),
        ChainPurpose::CodeSigning,
        now(),
    )
    .unwrap_err();
    assert!(reason(&err).contains("SHA-1"), "{err}");
    let err = validate_chain(
        &certs(d, &["leaf_pss_badsalt.crt", "root.crt"]),
        ChainPurpose::CodeSigning,
        now(),
    )
    .unwrap_err();
    assert!(reason(&err).contains("salt length"), "{err}");
}

#[test]
fn upstream_vectors_validate() {
    let e2e = parse_certificates(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/e2e-certs/e2e.crt"
        ))
        .unwrap(),
        "e2e.crt",
    )
    .unwrap();
    assert_eq!(e2e.len(), 1);
    validate_chain(&e2e, ChainPurpose::CodeSigning, now()).unwrap();

    let crl_chain = parse_certificates(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/crl/certchain_with_crl.pem"
        ))
        .unwrap(),
        "certchain_with_crl.pem",
    )
    .unwrap();
    assert_eq!(crl_chain.len(), 3);
    validate_chain(&crl_chain, ChainPurpose::CodeSigning, now()).unwrap();

    // The expired e2e certificate: fine as a chain, not valid now.
    let expired = parse_certificates(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/e2e-certs/expired_e2e.crt"
        ))
        .unwrap(),
        "expired_e2e.crt",
    )
    .unwrap();
    validate_chain(&expired, ChainPurpose::CodeSigning, None).unwrap();
    let err = validate_chain(&expired, ChainPurpose::CodeSigning, now()).unwrap_err();
    assert!(matches!(err, ChainError::NotValidAt { .. }), "{err}");

    // notation-go's mock envelope: leaf and root share one subject name, so the leaf is
    // self-issued but not self-signed; the chain is valid.
    let env: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/envelopes-mock/ca_valid_sig_env.json"
        ))
        .unwrap(),
    )
    .unwrap();
    use base64::Engine;
    let x5c: Vec<Certificate> = env["header"]["x5c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let der = base64::engine::general_purpose::STANDARD
                .decode(c.as_str().unwrap())
                .unwrap();
            Certificate::from_der(&der).unwrap()
        })
        .collect();
    assert_eq!(x5c.len(), 2);
    assert_eq!(x5c[0].subject(), x5c[1].subject());
    assert!(!is_self_signed(&x5c[0]) && is_self_signed(&x5c[1]));
    validate_chain(&x5c, ChainPurpose::CodeSigning, now()).unwrap();
    // Reversed, the root comes first and is refused as a self-signed leaf.
    let reversed: Vec<Certificate> = x5c.iter().rev().cloned().collect();
    assert!(validate_chain(&reversed, ChainPurpose::CodeSigning, now()).is_err());

    // The e2e key signs with the e2e certificate.
    let signer = LocalSigner::from_pem(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/e2e-certs/e2e.key"
        ))
        .unwrap(),
        None,
        vec![e2e[0].der().to_vec()],
    )
    .unwrap();
    assert_eq!(signer.key_spec(), KeySpec::Rsa2048);
}

#[test]
fn parse_pem_and_der() {
    let d = chain_dir();
    let mut bundle = Vec::new();
    for n in ["leaf.crt", "inter.crt", "root.crt"] {
        bundle.extend(read(d, n));
    }
    let from_pem = parse_certificates(&bundle, "bundle.pem").unwrap();
    let subjects: Vec<String> = from_pem.iter().map(|c| c.subject()).collect();
    assert_eq!(
        subjects,
        [
            "CN=Test Leaf,O=Test,ST=WA,C=US",
            "CN=Test Intermediate,O=Test,ST=WA,C=US",
            "CN=Test Root,O=Test,ST=WA,C=US"
        ]
    );
    let mut der = Vec::new();
    for n in ["leaf.der", "inter.der", "root.der"] {
        der.extend(read(d, n));
    }
    let from_der = parse_certificates(&der, "bundle.der").unwrap();
    assert_eq!(
        from_der.iter().map(|c| c.der()).collect::<Vec<_>>(),
        from_pem.iter().map(|c| c.der()).collect::<Vec<_>>()
    );

    let err = parse_certificates(b"", "empty.pem").unwrap_err();
    assert!(err.to_string().contains("empty.pem"), "{err}");
    let err = parse_certificates(&der[..der.len() - 5], "cut.der").unwrap_err();
    assert!(
        err.to_string().contains("cut.der") && err.to_string().contains("#3"),
        "{err}"
    );
    let err = parse_certificates(b"hello world", "text.txt").unwrap_err();
    assert!(err.to_string().contains("neither PEM nor DER"), "{err}");
    let mut with_key = read(d, "leaf.crt");
    with_key.extend(read(d, "leaf.key"));
    let err = parse_certificates(&with_key, "mixed.pem").unwrap_err();
    assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    let text =
        String::from_utf8_lossy(&read(d, "leaf.crt")).replace("-----END CERTIFICATE-----", "");
    let err = parse_certificates(text.as_bytes(), "open.pem").unwrap_err();
    assert!(err.to_string().contains("no END line"), "{err}");
}

#[test]
fn real_tsa_chain_from_a_globalsign_token() {
    // The certificates a GlobalSign timestamp token carries: TSA leaf → Timestamping CA →
    // Root R6 (cross-signed by R3) → Root R3, with genTime 2021-09-17T14:09:10Z.
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/vectors/timestamp-tokens/TimeStampToken.p7s"
            ),
            "-print_certs",
            "-out",
            "tsa.pem",
        ],
    );
    let chain = certs(dir.path(), &["tsa.pem"]);
    assert_eq!(chain.len(), 4);
    let gen_time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_631_887_750);
    validate_chain(&chain, ChainPurpose::Timestamping, Some(gen_time)).unwrap();
    // The TSA leaf is no code-signing certificate.
    let err = validate_chain(&chain, ChainPurpose::CodeSigning, Some(gen_time)).unwrap_err();
    assert!(reason(&err).contains("timeStamping"), "{err}");
    // Without its root the chain is incomplete.
    let err = validate_chain(&chain[..3], ChainPurpose::Timestamping, Some(gen_time)).unwrap_err();
    assert!(matches!(err, ChainError::NoRoot { .. }), "{err}");
}
