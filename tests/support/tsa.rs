//! A real RFC 3161 TSA for tests: a test PKI made with the `openssl` CLI (root CA →
//! intermediate CA → TSA certificate with `extendedKeyUsage=critical,timeStamping`) and
//! `openssl ts -reply` behind a small HTTP endpoint on 127.0.0.1 (one thread per
//! connection, `Connection: close`). Handlers can answer normally or misbehave (status
//! codes, content types, garbage, oversized bodies, replays) for error tests.
//!
//! Use it from a test crate with `#[path = "support/tsa.rs"] mod tsa;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

/// Knobs for the test PKI and the `[tsa]` configuration.
#[derive(Debug, Clone)]
pub struct TsaOptions {
    /// `openssl genpkey` algorithm arguments for the TSA key, e.g. `["-algorithm", "RSA",
    /// "-pkeyopt", "rsa_keygen_bits:2048"]`.
    pub tsa_key: Vec<String>,
    /// `extendedKeyUsage` of the TSA certificate.
    pub tsa_eku: String,
    /// `keyUsage` of the TSA certificate.
    pub tsa_key_usage: String,
    /// `signer_digest`.
    pub signer_digest: String,
    /// `default_policy`.
    pub policy: String,
    /// `digests` the TSA accepts.
    pub digests: String,
    /// `accuracy` line, e.g. `secs:1, millisecs:500`; `None` leaves it out.
    pub accuracy: Option<String>,
    /// `clock_precision_digits` (fractional seconds in genTime).
    pub clock_precision_digits: u8,
    /// `ess_cert_id_alg` (`sha256` gives signing-certificate-v2, `sha1` the v1 attribute).
    pub ess_cert_id_alg: String,
    /// Put the root into the token as well as the intermediate.
    pub include_root_in_token: bool,
}

impl Default for TsaOptions {
    fn default() -> Self {
        TsaOptions {
            tsa_key: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
                .map(String::from)
                .to_vec(),
            tsa_eku: "critical,timeStamping".into(),
            tsa_key_usage: "critical,digitalSignature".into(),
            signer_digest: "sha256".into(),
            policy: "1.2.3.4.1".into(),
            digests: "sha256, sha384, sha512".into(),
            accuracy: None,
            clock_precision_digits: 0,
            ess_cert_id_alg: "sha256".into(),
            include_root_in_token: false,
        }
    }
}

/// Run a command, panic with its stderr on failure.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A TSA test PKI on disk.
pub struct TsaPki {
    pub dir: tempfile::TempDir,
    pub options: TsaOptions,
    /// `openssl ts -reply` reads and rewrites the serial file without locking: concurrent
    /// replies race ("Error during serial number generation"), so they take turns, as a
    /// real TSA's serial allocation does.
    serial_lock: std::sync::Mutex<()>,
}

impl TsaPki {
    pub fn new() -> TsaPki {
        TsaPki::with_options(TsaOptions::default())
    }

    pub fn with_options(options: TsaOptions) -> TsaPki {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |name: &str| dir.path().join(name);
        let ossl = |args: &[&str]| {
            run(Command::new("openssl").args(args).current_dir(dir.path()));
        };
        std::fs::write(
            p("ext.cnf"),
            format!(
                "[req]\ndistinguished_name=dn\n[dn]\n[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n\
                 [inter]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n\
                 [tsa]\nbasicConstraints=critical,CA:FALSE\nkeyUsage={}\nextendedKeyUsage={}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
                options.tsa_key_usage, options.tsa_eku
            ),
        )
        .unwrap();
        let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
        ossl(&[&["genpkey", "-out", "root.key"][..], &rsa].concat());
        ossl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "3650",
            "-subj",
            "/O=sign-action tests/CN=Test TSA Root",
            "-config",
            "ext.cnf",
            "-extensions",
            "root",
        ]);
        ossl(&[&["genpkey", "-out", "inter.key"][..], &rsa].concat());
        ossl(&[
            "req",
            "-new",
            "-key",
            "inter.key",
            "-out",
            "inter.csr",
            "-subj",
            "/O=sign-action tests/CN=Test TSA Intermediate",
        ]);
        ossl(&[
            "x509",
            "-req",
            "-in",
            "inter.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "2",
            "-days",
            "3000",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "inter",
            "-out",
            "inter.pem",
        ]);
        let key_args: Vec<&str> = options.tsa_key.iter().map(String::as_str).collect();
        ossl(&[&["genpkey", "-out", "tsa.key"][..], &key_args].concat());
        ossl(&[
            "req",
            "-new",
            "-key",
            "tsa.key",
            "-out",
            "tsa.csr",
            "-subj",
            "/O=sign-action tests/CN=Test TSA",
        ]);
        ossl(&[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "inter.pem",
            "-CAkey",
            "inter.key",
            "-set_serial",
            "3",
            "-days",
            "365",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "tsa",
            "-out",
            "tsa.pem",
        ]);
        let inter = std::fs::read_to_string(p("inter.pem")).unwrap();
        let root = std::fs::read_to_string(p("root.pem")).unwrap();
        let tsa = std::fs::read_to_string(p("tsa.pem")).unwrap();
        let chain = if options.include_root_in_token {
            format!("{inter}{root}")
        } else {
            inter.clone()
        };
        std::fs::write(p("chain.pem"), chain).unwrap();
        // For `openssl ts -verify -untrusted`.
        std::fs::write(p("untrusted.pem"), format!("{tsa}{inter}")).unwrap();
        std::fs::write(p("tsaserial"), "01\n").unwrap();
        let mut cnf = format!(
            "[tsa]\ndefault_tsa = tsa_config1\n\n[tsa_config1]\n\
             serial = {serial}\ncrypto_device = builtin\n\
             signer_cert = {signer}\ncerts = {chain}\nsigner_key = {key}\n\
             signer_digest = {digest}\ndefault_policy = {policy}\n\
             other_policies = 1.2.3.4.5\ndigests = {digests}\n\
             clock_precision_digits = {precision}\nordering = no\ntsa_name = yes\n\
             ess_cert_id_chain = no\ness_cert_id_alg = {ess}\n",
            serial = p("tsaserial").display(),
            signer = p("tsa.pem").display(),
            chain = p("chain.pem").display(),
            key = p("tsa.key").display(),
            digest = options.signer_digest,
            policy = options.policy,
            digests = options.digests,
            precision = options.clock_precision_digits,
            ess = options.ess_cert_id_alg,
        );
        if let Some(acc) = &options.accuracy {
            cnf.push_str(&format!("accuracy = {acc}\n"));
        }
        std::fs::write(p("tsa.cnf"), cnf).unwrap();
        TsaPki {
            dir,
            options,
            serial_lock: std::sync::Mutex::new(()),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// DER of a PEM file in the PKI directory.
    pub fn der(&self, pem_name: &str) -> Vec<u8> {
        run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(self.path(pem_name)))
    }

    pub fn root_der(&self) -> Vec<u8> {
        self.der("root.pem")
    }

    pub fn tsa_der(&self) -> Vec<u8> {
        self.der("tsa.pem")
    }

    /// Another certificate issued by the intermediate CA with the given extension lines
    /// (e.g. a TSA certificate that breaks a rule). Returns (certificate PEM, key PEM) paths.
    pub fn issue_cert(&self, name: &str, extensions: &str) -> (PathBuf, PathBuf) {
        let ext = self.path(&format!("{name}.ext"));
        std::fs::write(&ext, format!("[ext]\n{extensions}\n")).unwrap();
        let key = self.path(&format!("{name}.key"));
        let csr = self.path(&format!("{name}.csr"));
        let cert = self.path(&format!("{name}.pem"));
        run(Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&key));
        run(Command::new("openssl")
            .args([
                "req",
                "-new",
                "-subj",
                &format!("/O=sign-action tests/CN={name}"),
                "-key",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        run(Command::new("openssl")
            .args([
                "x509",
                "-req",
                "-days",
                "30",
                "-sha256",
                "-extensions",
                "ext",
                "-in",
            ])
            .arg(&csr)
            .arg("-CA")
            .arg(self.path("inter.pem"))
            .arg("-CAkey")
            .arg(self.path("inter.key"))
            .arg("-set_serial")
            .arg(format!("{}", 100 + name.len()))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert));
        (cert, key)
    }

    /// Sign `tst_info` (DER TSTInfo) into a TimeStampToken with `openssl cms -sign -cades`
    /// (which adds ESS signing-certificate-v2 and signing-time), for token shapes
    /// `openssl ts` will not produce: RSA-PSS, or a signer certificate openssl's TSA refuses.
    pub fn cms_sign(&self, tst_info: &[u8], cert: &Path, key: &Path, extra: &[&str]) -> Vec<u8> {
        let input = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        std::fs::write(input.path(), tst_info).unwrap();
        let out = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        run(Command::new("openssl")
            .args([
                "cms",
                "-sign",
                "-binary",
                "-nodetach",
                "-cades",
                "-nosmimecap",
            ])
            .args([
                "-econtent_type",
                "1.2.840.113549.1.9.16.1.4",
                "-outform",
                "DER",
            ])
            .arg("-in")
            .arg(input.path())
            .arg("-signer")
            .arg(cert)
            .arg("-inkey")
            .arg(key)
            .arg("-certfile")
            .arg(self.path("chain.pem"))
            .args(extra)
            .arg("-out")
            .arg(out.path()));
        std::fs::read(out.path()).unwrap()
    }

    /// `openssl ts -reply` for a DER TimeStampReq; returns the DER TimeStampResp, or
    /// openssl's stderr when it refuses to produce one.
    pub fn reply(&self, query: &[u8]) -> Result<Vec<u8>, String> {
        let q = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        std::fs::write(q.path(), query).unwrap();
        let r = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        let _turn = self
            .serial_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = Command::new("openssl")
            .args(["ts", "-reply", "-config"])
            .arg(self.path("tsa.cnf"))
            .arg("-queryfile")
            .arg(q.path())
            .arg("-signer")
            .arg(self.path("tsa.pem"))
            .arg("-inkey")
            .arg(self.path("tsa.key"))
            .arg("-chain")
            .arg(self.path("chain.pem"))
            .arg("-out")
            .arg(r.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(std::fs::read(r.path()).unwrap())
    }

    /// A DER TimeStampReq made by `openssl ts -query` (random nonce, certReq).
    pub fn query(&self, data: &[u8], digest: &str) -> Vec<u8> {
        let f = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        std::fs::write(f.path(), data).unwrap();
        run(Command::new("openssl")
            .args(["ts", "-query", "-cert", &format!("-{digest}"), "-data"])
            .arg(f.path()))
    }

    /// Independent check: `openssl ts -verify` of a DER TimeStampToken over `data`.
    /// Returns openssl's combined output on failure.
    pub fn openssl_verify(&self, token: &[u8], data: &[u8]) -> Result<(), String> {
        let t = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        std::fs::write(t.path(), token).unwrap();
        let d = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        std::fs::write(d.path(), data).unwrap();
        let out = Command::new("openssl")
            .args(["ts", "-verify", "-token_in", "-in"])
            .arg(t.path())
            .arg("-data")
            .arg(d.path())
            .arg("-CAfile")
            .arg(self.path("root.pem"))
            .arg("-untrusted")
            .arg(self.path("untrusted.pem"))
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl TsaPki {
    /// Independent check of the CMS layer only (signature, chain, timestamping purpose) with
    /// `openssl cms -verify`; `openssl ts -verify` goes through OpenSSL's PKCS#7 code, which
    /// cannot verify RSA-PSS SignerInfos.
    pub fn openssl_cms_verify(&self, token: &[u8]) -> Result<(), String> {
        let t = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        std::fs::write(t.path(), token).unwrap();
        let out = Command::new("openssl")
            .args([
                "cms",
                "-verify",
                "-inform",
                "DER",
                "-purpose",
                "timestampsign",
            ])
            .arg("-in")
            .arg(t.path())
            .arg("-CAfile")
            .arg(self.path("root.pem"))
            .arg("-certfile")
            .arg(self.path("untrusted.pem"))
            .args(["-out", "/dev/null"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Default for TsaPki {
    fn default() -> Self {
        TsaPki::new()
    }
}

/// What the HTTP endpoint sends back.
pub struct HttpReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// Leave out Content-Length and end the body by closing the connection.
    pub omit_length: bool,
    /// Wait this long before answering.
    pub delay: std::time::Duration,
}

impl HttpReply {
    pub fn ok(body: Vec<u8>) -> HttpReply {
        HttpReply {
            status: 200,
            content_type: Some("application/timestamp-reply".into()),
            body,
            omit_length: false,
            delay: std::time::Duration::ZERO,
        }
    }
}

/// Handler from request body to reply.
pub type Handler = Arc<dyn Fn(&[u8]) -> HttpReply + Send + Sync>;

/// The normal TSA behaviour: `openssl ts -reply`, 500 when openssl fails.
pub fn openssl_handler(pki: Arc<TsaPki>) -> Handler {
    Arc::new(move |query| match pki.reply(query) {
        Ok(resp) => HttpReply::ok(resp),
        Err(stderr) => HttpReply {
            status: 500,
            content_type: Some("text/plain".into()),
            body: stderr.into_bytes(),
            omit_length: false,
            delay: std::time::Duration::ZERO,
        },
    })
}

/// A running HTTP endpoint; stops when dropped.
pub struct TsaServer {
    pub url: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<thread::JoinHandle<()>>,
}

impl TsaServer {
    /// A TSA answering with `openssl ts -reply` from `pki`.
    pub fn start(pki: Arc<TsaPki>) -> TsaServer {
        TsaServer::with_handler(openssl_handler(pki))
    }

    pub fn with_handler(handler: Handler) -> TsaServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                thread::spawn(move || {
                    let _ = serve(stream, &handler);
                });
            }
        });
        TsaServer {
            url: format!("http://{addr}/tsa"),
            stop,
            addr,
            thread: Some(thread),
        }
    }
}

impl Drop for TsaServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, handler: &Handler) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut content_length = 0usize;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; content_length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let reply = handler(&body);
    if !reply.delay.is_zero() {
        thread::sleep(reply.delay);
    }
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    if let Some(ct) = &reply.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if !reply.omit_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&reply.body)?;
    out.flush()
}

/// Helper for tests that need a file path for a blob.
pub fn write_temp(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}
