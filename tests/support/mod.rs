//! Shared integration-test harness: a real `docker-registry` (plain, TLS, htpasswd), test
//! images pushed without Docker, and code-signing keys and certificates made with the
//! openssl CLI. Use it from a test file with `mod support;`.
//!
//! Everything lives in temporary directories and on free loopback ports, so tests run in
//! parallel and offline; registries are killed and reaped when dropped.

#![allow(dead_code)]

pub mod fake_http;
pub mod fault_proxy;
pub mod fulcio;
pub mod http1;
pub mod oci_server;
pub mod oidc;
pub mod registry_front;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sign_action::crypto::KeySpec;
use sign_action::oci::registry::{Credential, RegistryClient, RegistryOptions};
use sign_action::oci::{Descriptor, OCI_MANIFEST};

/// How to start a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Serve HTTPS with a certificate from a fresh test CA.
    pub tls: bool,
    /// Require basic auth with this username and password.
    pub htpasswd: Option<(String, String)>,
    /// Require bearer tokens from this token server (see [`TokenServer`]).
    pub token_auth: Option<TokenAuth>,
}

/// The registry side of token authentication.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM certificate whose key signs the tokens.
    pub rootcertbundle: PathBuf,
}

/// A running `docker-registry serve` on 127.0.0.1.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`, as a reference's registry part.
    pub host: String,
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub url: String,
    /// PEM of the test CA that issued the server certificate (TLS only).
    pub ca_pem: Option<PathBuf>,
    /// Basic credentials the client options carry (htpasswd; set it for token auth).
    pub credentials: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Start a registry and wait until it accepts connections.
    pub fn start(config: RegistryConfig) -> Registry {
        let mut last_err = String::new();
        // A port picked free can be taken by a parallel test before the registry binds it.
        for _ in 0..5 {
            match Self::try_start(&config) {
                Ok(r) => return r,
                Err(e) => last_err = e,
            }
        }
        panic!("could not start docker-registry: {last_err}");
    }

    fn try_start(config: &RegistryConfig) -> Result<Registry, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).map_err(|e| e.to_string())?;
        let mut yml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {host}\n  secret: test-secret-{port}\n",
            storage.display()
        );
        let mut ca_pem = None;
        if config.tls {
            let tls = make_server_tls(dir.path());
            yml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                tls.cert.display(),
                tls.key.display()
            ));
            ca_pem = Some(tls.ca);
        }
        if let Some((user, pass)) = &config.htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .map_err(|e| format!("htpasswd: {e}"))?;
            assert!(out.status.success(), "htpasswd failed");
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, &out.stdout).map_err(|e| e.to_string())?;
            yml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                path.display()
            ));
        }
        if let Some(t) = &config.token_auth {
            yml.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                t.service,
                t.issuer,
                t.rootcertbundle.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, yml).map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning docker-registry: {e}"))?;
        let scheme = if config.tls { "https" } else { "http" };
        let mut reg = Registry {
            child,
            url: format!("{scheme}://{host}"),
            host,
            ca_pem,
            credentials: config.htpasswd.clone(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = reg.child.try_wait() {
                let log = std::fs::read_to_string(reg.dir.path().join("registry.log"))
                    .unwrap_or_default();
                return Err(format!("docker-registry exited with {status}: {log}"));
            }
            if reg.responds(config.tls) {
                return Ok(reg);
            }
            if Instant::now() > deadline {
                return Err("docker-registry did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill the registry process (storage and port stay reserved for [`Registry::resume`]).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start the registry again on the same port with the same storage (plain HTTP only).
    pub fn resume(&mut self) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("registry.log"))
            .unwrap();
        self.child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("respawn docker-registry");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.responds(false) {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not come back"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Plain HTTP: `/v2/` answers (200 or 401). TLS: the port accepts connections.
    fn responds(&self, tls: bool) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(
            &self.host.parse().expect("socket address"),
            Duration::from_millis(200),
        ) else {
            return false;
        };
        if tls {
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let req = format!(
            "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).is_ok()
            && (buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.1 401"))
    }

    /// Client options that reach this registry (plain HTTP or the test CA; its credentials).
    pub fn options(&self) -> RegistryOptions {
        let mut o = RegistryOptions {
            use_docker_config: false,
            plain_http: self.ca_pem.is_none(),
            retries: 0,
            ..Default::default()
        };
        if let Some(ca) = &self.ca_pem {
            o.extra_root_certs_pem
                .push(std::fs::read(ca).expect("CA PEM"));
        }
        if let Some((u, p)) = &self.credentials {
            o.credentials.insert(
                self.host.clone(),
                Credential::Basic {
                    username: u.clone(),
                    password: p.clone(),
                },
            );
        }
        o
    }

    pub fn client(&self) -> RegistryClient {
        RegistryClient::new(self.options()).expect("registry client")
    }

    /// A plain reqwest client for checking what the registry stores, independent of ours.
    pub fn raw_http(&self) -> reqwest::Client {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10));
        if let Some(ca) = &self.ca_pem {
            let pem = std::fs::read(ca).expect("CA PEM");
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA"));
        }
        b.build().expect("reqwest client")
    }

    /// GET `path` over raw HTTP with basic auth when configured; returns status, headers, body.
    pub async fn raw_get(
        &self,
        path: &str,
        accept: &str,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let mut req = self
            .raw_http()
            .get(format!("{}{}", self.url, path))
            .header("Accept", accept);
        if let Some((u, p)) = &self.credentials {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.expect("raw GET");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("raw body").to_vec();
        (status, headers, body)
    }

    /// PUT raw bytes (a manifest) with basic auth when configured; returns the status.
    pub async fn raw_put(&self, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
        let mut req = self
            .raw_http()
            .put(format!("{}{}", self.url, path))
            .header("Content-Type", content_type)
            .body(body);
        if let Some((u, p)) = &self.credentials {
            req = req.basic_auth(u, Some(p));
        }
        req.send().await.expect("raw PUT").status().as_u16()
    }

    /// The directory the registry stores data and its log in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        // Reap it, or it lingers as a zombie.
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Push a small random OCI image (config, one layer, manifest) under `repo:tag` through
/// `client`; returns the manifest's descriptor.
pub async fn push_test_image(
    client: &RegistryClient,
    registry_host: &str,
    repo: &str,
    tag: &str,
) -> Descriptor {
    let nonce = random_hex(16);
    let layer = format!("layer {nonce}").into_bytes();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}},"config":{{"Labels":{{"nonce":"{nonce}"}}}}}}"#,
        sign_action::crypto::sha256_hex(&layer)
    )
    .into_bytes();
    let config_desc = client
        .push_blob(
            registry_host,
            repo,
            "application/vnd.oci.image.config.v1+json",
            &config,
        )
        .await
        .expect("push config");
    let layer_desc = client
        .push_blob(
            registry_host,
            repo,
            "application/vnd.oci.image.layer.v1.tar",
            &layer,
        )
        .await
        .expect("push layer");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": [layer_desc],
    });
    let bytes = serde_json::to_vec(&manifest).expect("manifest JSON");
    client
        .push_manifest(registry_host, repo, tag, OCI_MANIFEST, &bytes)
        .await
        .expect("push manifest");
    Descriptor::of_bytes(OCI_MANIFEST, &bytes)
}

/// Random lowercase hex from the OS.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("random");
    hex::encode(buf)
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn newkey_args(spec: KeySpec) -> Vec<&'static str> {
    match spec {
        KeySpec::Rsa2048 => vec!["-newkey", "rsa:2048"],
        KeySpec::Rsa3072 => vec!["-newkey", "rsa:3072"],
        KeySpec::Rsa4096 => vec!["-newkey", "rsa:4096"],
        KeySpec::EcP256 => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        KeySpec::EcP384 => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        KeySpec::EcP521 => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
    }
}

/// Server TLS material: a test CA and a server certificate for `IP:127.0.0.1`.
pub struct ServerTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Make a test CA and a server certificate (SAN IP:127.0.0.1 and DNS:localhost,
/// `basicConstraints=critical,CA:FALSE` — rustls refuses a CA certificate as server cert).
pub fn make_server_tls(dir: &Path) -> ServerTls {
    let d = dir.join("tls");
    std::fs::create_dir_all(&d).expect("tls dir");
    openssl(
        &[
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=sign-action test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        &d,
    );
    openssl(
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        &d,
    );
    std::fs::write(
        d.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext file");
    let serial = format!("0x{}", random_hex(8));
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
        &d,
    );
    ServerTls {
        ca: d.join("ca.pem"),
        cert: d.join("server.pem"),
        key: d.join("server.key"),
    }
}

/// Paths of a generated code-signing key and its certificates (all PEM).
#[derive(Debug, Clone)]
pub struct TestKey {
    /// PKCS#8 private key of the leaf.
    pub key: PathBuf,
    /// The leaf certificate.
    pub cert: PathBuf,
    /// Leaf first, root last (just the leaf when self-signed).
    pub chain: PathBuf,
    /// The trust anchor (the root CA, or the leaf itself when self-signed).
    pub root: PathBuf,
}

/// A self-signed code-signing certificate like `notation cert generate-test` makes:
/// keyUsage critical digitalSignature, EKU codeSigning, basicConstraints CA:FALSE.
/// Files are named after `name` inside `dir`.
pub fn make_test_key(dir: &Path, spec: KeySpec) -> TestKey {
    make_named_test_key(dir, &format!("leaf-{}", spec.name()), spec)
}

pub fn make_named_test_key(dir: &Path, name: &str, spec: KeySpec) -> TestKey {
    let key = format!("{name}.key");
    let cert = format!("{name}.pem");
    let subj = format!("/C=US/ST=WA/L=Seattle/O=Notary Test/CN={name}");
    let mut args = vec!["req", "-x509", "-nodes"];
    args.extend(newkey_args(spec));
    args.extend([
        "-keyout",
        &key,
        "-out",
        &cert,
        "-days",
        "30",
        "-subj",
        &subj,
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "keyUsage=critical,digitalSignature",
        "-addext",
        "extendedKeyUsage=codeSigning",
    ]);
    if matches!(spec, KeySpec::Rsa3072) {
        args.extend(["-sha384"]);
    } else if matches!(spec, KeySpec::Rsa4096 | KeySpec::EcP521) {
        args.extend(["-sha512"]);
    } else if matches!(spec, KeySpec::EcP384) {
        args.extend(["-sha384"]);
    }
    openssl(&args, dir);
    TestKey {
        key: dir.join(&key),
        cert: dir.join(&cert),
        chain: dir.join(&cert),
        root: dir.join(&cert),
    }
}

/// A root CA (same key type as the leaf) and a leaf code-signing certificate issued by it;
/// `chain` holds leaf then root.
pub fn make_test_chain(dir: &Path, name: &str, spec: KeySpec) -> TestKey {
    let root_key = format!("{name}-root.key");
    let root = format!("{name}-root.pem");
    let mut args = vec!["req", "-x509", "-nodes"];
    args.extend(newkey_args(spec));
    let root_subj = format!("/C=US/O=Notary Test/CN={name} Root");
    args.extend([
        "-keyout",
        &root_key,
        "-out",
        &root,
        "-days",
        "60",
        "-subj",
        &root_subj,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&args, dir);
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let cert = format!("{name}.pem");
    let ext = format!("{name}.ext");
    let subj = format!("/C=US/ST=WA/L=Seattle/O=Notary Test/CN={name}");
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend(newkey_args(spec));
    args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(&args, dir);
    std::fs::write(
        dir.join(&ext),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .expect("ext file");
    let serial = format!("0x{}", random_hex(8));
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &root,
            "-CAkey",
            &root_key,
            "-set_serial",
            &serial,
            "-days",
            "30",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
        dir,
    );
    let chain = format!("{name}-chain.pem");
    let mut pem = std::fs::read(dir.join(&cert)).expect("leaf");
    pem.extend(std::fs::read(dir.join(&root)).expect("root"));
    std::fs::write(dir.join(&chain), pem).expect("chain");
    TestKey {
        key: dir.join(&key),
        cert: dir.join(&cert),
        chain: dir.join(&chain),
        root: dir.join(&root),
    }
}

/// Copy a directory tree (e.g. a vector layout into a temp dir before modifying it).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A token server for `docker-registry`'s `auth: token`: checks basic credentials and issues
/// RS256 JWTs (with an `x5c` header) granting the requested repository actions.
pub struct TokenServer {
    pub server: fake_http::FakeServer,
    pub auth: TokenAuth,
    dir: tempfile::TempDir,
}

impl TokenServer {
    pub async fn start(user: &str, pass: &str) -> TokenServer {
        use rustls_pki_types::pem::PemObject;
        let dir = tempfile::tempdir().expect("tempdir");
        openssl(
            &[
                "req",
                "-x509",
                "-nodes",
                "-newkey",
                "rsa:2048",
                "-keyout",
                "token.key",
                "-out",
                "token.pem",
                "-days",
                "2",
                "-subj",
                "/CN=sign-action test token issuer",
            ],
            dir.path(),
        );
        let key = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_file(dir.path().join("token.key"))
            .expect("token key");
        let cert = rustls_pki_types::CertificateDer::from_pem_file(dir.path().join("token.pem"))
            .expect("token cert");
        let pair =
            aws_lc_rs::signature::RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).expect("RSA key");
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(cert.as_ref())],
        });
        let header = b64.encode(serde_json::to_vec(&header).expect("header"));
        let service = "sign-action-test-registry".to_string();
        let issuer = "sign-action-test-issuer".to_string();
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        let (svc, iss, user_owned) = (service.clone(), issuer.clone(), user.to_string());
        let server = fake_http::FakeServer::start(move |req| {
            if req.header("authorization") != Some(want.as_str()) {
                return fake_http::FakeResponse::new(401).body(r#"{"details":"bad credentials"}"#);
            }
            let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or("");
            let access: Vec<serde_json::Value> = url::form_urlencoded::parse(query.as_bytes())
                .filter(|(k, _)| k == "scope")
                .filter_map(|(_, v)| {
                    let mut parts = v.splitn(3, ':');
                    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                    Some(serde_json::json!({
                        "type": kind,
                        "name": name,
                        "actions": actions.split(',').collect::<Vec<_>>(),
                    }))
                })
                .collect();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            let claims = serde_json::json!({
                "iss": iss, "sub": user_owned, "aud": svc,
                "exp": now + 300, "nbf": now - 10, "iat": now,
                "jti": random_hex(8), "access": access,
            });
            let signing_input = format!("{header}.{}", b64.encode(claims.to_string()));
            let mut sig = vec![0u8; pair.public_modulus_len()];
            pair.sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .expect("sign");
            let jwt = format!("{signing_input}.{}", b64.encode(sig));
            fake_http::FakeResponse::new(200)
                .header("Content-Type", "application/json")
                .body(serde_json::json!({"token": jwt, "expires_in": 300}).to_string())
        })
        .await;
        let auth = TokenAuth {
            realm: format!("http://{}/token", server.host),
            service,
            issuer,
            rootcertbundle: dir.path().join("token.pem"),
        };
        TokenServer { server, auth, dir }
    }
}

/// A test root CA (RSA-3072) and a code-signing leaf certificate for a public key held
/// elsewhere — an HSM, a KMS — (`x509 -req -force_pubkey`, as a CA certifies a key it never
/// holds).
pub struct IssuedCert {
    pub leaf: PathBuf,
    /// leaf then root, PEM
    pub chain: PathBuf,
    pub root: PathBuf,
}

impl IssuedCert {
    pub fn leaf_der(&self) -> Vec<u8> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_file(&self.leaf)
            .expect("leaf PEM")
            .as_ref()
            .to_vec()
    }
}

pub fn issue_for_public_key(dir: &Path, name: &str, pubkey_pem: &Path) -> IssuedCert {
    let root_key = format!("{name}-root.key");
    let root = format!("{name}-root.pem");
    openssl(
        &[
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "rsa:3072",
            "-keyout",
            &root_key,
            "-out",
            &root,
            "-days",
            "30",
            "-subj",
            &format!("/C=US/O=Notary Test/CN={name} Root"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    );
    // `x509 -req` needs some CSR; -force_pubkey replaces its key with the one given.
    let csr_key = format!("{name}-csr.key");
    let csr = format!("{name}.csr");
    openssl(
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            &csr_key,
            "-out",
            &csr,
            "-subj",
            &format!("/C=US/ST=WA/L=Seattle/O=Notary Test/CN={name}"),
        ],
        dir,
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let leaf = format!("{name}.pem");
    let serial = format!("0x{}", random_hex(8));
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-force_pubkey",
            pubkey_pem.to_str().expect("utf-8 path"),
            "-CA",
            &root,
            "-CAkey",
            &root_key,
            "-set_serial",
            &serial,
            "-days",
            "10",
            "-extfile",
            &ext,
            "-out",
            &leaf,
        ],
        dir,
    );
    let chain = dir.join(format!("{name}-chain.pem"));
    let mut pem = std::fs::read(dir.join(&leaf)).unwrap();
    pem.extend(std::fs::read(dir.join(&root)).unwrap());
    std::fs::write(&chain, pem).unwrap();
    IssuedCert {
        leaf: dir.join(leaf),
        chain,
        root: dir.join(root),
    }
}
