//! Test PKI built with the real `openssl ca`, the real `openssl ocsp` responder and a tiny
//! HTTP server for CRLs. Everything listens on 127.0.0.1 with free ports and is cleaned up on
//! drop (responders are killed and waited for).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Run a command, panicking with its stderr if it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port nobody listens on right now (bound on all interfaces, as `openssl ocsp` does).
pub fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serves the files of a directory over plain HTTP/1.0 GET, counting requests.
pub struct FileServer {
    pub port: u16,
    pub dir: PathBuf,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FileServer {
    pub fn start(dir: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s, d) = (hits.clone(), stop.clone(), dir.to_path_buf());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let d = d.clone();
                std::thread::spawn(move || serve_one(&mut conn, &d));
            }
        });
        FileServer {
            port,
            dir: dir.to_path_buf(),
            hits,
            stop,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_one(conn: &mut TcpStream, dir: &Path) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let file = (!path.contains("..") && !path.is_empty())
        .then(|| std::fs::read(dir.join(&path)).ok())
        .flatten();
    let resp = match file {
        Some(body) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(&body);
            r
        }
        None => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    };
    let _ = conn.write_all(&resp);
}

/// A running `openssl ocsp` responder; killed and reaped on drop.
pub struct OcspResponder {
    child: Child,
    pub port: u16,
}

impl OcspResponder {
    /// Start `openssl ocsp` for `ca`'s database on `port`, signing with `signer`/`signer_key`.
    pub fn start(ca: &Ca, signer: &str, port: u16) -> OcspResponder {
        OcspResponder::start_with(ca, signer, port, &["-ndays", "1"])
    }

    /// As `start`, with `extra` options instead of `-ndays 1`.
    pub fn start_with(ca: &Ca, signer: &str, port: u16, extra: &[&str]) -> OcspResponder {
        let child = Command::new("openssl")
            .args(["ocsp", "-index"])
            .arg(ca.dir.join("index.txt"))
            .args(["-port", &port.to_string(), "-rsigner"])
            .arg(ca.dir.join(format!("{signer}.pem")))
            .arg("-rkey")
            .arg(ca.dir.join(format!("{signer}.key")))
            .arg("-CA")
            .arg(ca.dir.join("ca.pem"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl ocsp starts");
        let mut resp = OcspResponder { child, port };
        // Readiness comes from the responder's own log line: a probe connection would hang
        // OpenSSL 3.0's single-threaded responder, which blocks reading the empty request.
        let stderr = resp.child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("waiting for OCSP client connections") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("openssl ocsp did not start listening on {port}"));
        resp
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One CA directory managed by `openssl ca`.
pub struct Ca {
    pub dir: PathBuf,
    pub name: String,
}

/// Where the certificates issued by a CA point for revocation data.
#[derive(Clone)]
pub struct Endpoints {
    /// AIA OCSP URL of the certificates this CA issues (None: no AIA).
    pub ocsp: Option<String>,
    /// CDP URL of the certificates this CA issues (None: no CDP).
    pub crl: Option<String>,
}

impl Ca {
    fn config(&self, endpoints: &Endpoints, v2: bool) -> String {
        let mut issued_ext =
            String::from("subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n");
        if let Some(o) = &endpoints.ocsp {
            issued_ext.push_str(&format!("authorityInfoAccess = OCSP;URI:{o}\n"));
        }
        if let Some(c) = &endpoints.crl {
            issued_ext.push_str(&format!("crlDistributionPoints = URI:{c}\n"));
        }
        let crl = if v2 {
            "crlnumber = $dir/crlnumber\ncrl_extensions = crl_ext\n"
        } else {
            ""
        };
        format!(
            r#"[ca]
default_ca = CA_default
[CA_default]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
{crl}certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 30
default_crl_days = 1
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
commonName = supplied
organizationName = optional
countryName = optional
[crl_ext]
authorityKeyIdentifier = keyid:always
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
{issued_ext}[v3_leaf]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
{issued_ext}[v3_ocsp]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,OCSPSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"#,
            dir = self.dir.display()
        )
    }

    fn init(dir: PathBuf, name: &str, endpoints: &Endpoints) -> Ca {
        std::fs::create_dir_all(dir.join("newcerts")).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        std::fs::write(dir.join("crlnumber"), "1000\n").unwrap();
        let ca = Ca {
            dir,
            name: name.into(),
        };
        std::fs::write(ca.dir.join("ca.cnf"), ca.config(endpoints, true)).unwrap();
        std::fs::write(ca.dir.join("ca-v1.cnf"), ca.config(endpoints, false)).unwrap();
        ca
    }

    /// A self-signed RSA root.
    pub fn new_root(dir: PathBuf, cn: &str, endpoints: &Endpoints) -> Ca {
        let ca = Ca::init(dir, cn, endpoints);
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(ca.dir.join("ca.key"))
            .arg("-out")
            .arg(ca.dir.join("ca.pem"))
            .args(["-subj", &format!("/O=Test/CN={cn}"), "-days", "30"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        ca
    }

    /// Key + CSR in this CA's directory; `ec` chooses P-256 over RSA-2048.
    fn csr(&self, name: &str, cn: &str, ec: bool) -> PathBuf {
        let key = self.dir.join(format!("{name}.key"));
        let csr = self.dir.join(format!("{name}.csr"));
        let mut cmd = Command::new("openssl");
        cmd.args(["req", "-new", "-nodes", "-newkey"]);
        if ec {
            cmd.args(["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        } else {
            cmd.arg("rsa:2048");
        }
        run(cmd
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", &format!("/O=Test/CN={cn}")]));
        csr
    }

    /// Issue `name.pem` (+ `name.key`) in this CA's directory with the extension section.
    pub fn issue(&self, name: &str, cn: &str, section: &str, ec: bool) -> PathBuf {
        let csr = self.csr(name, cn, ec);
        let out = self.dir.join(format!("{name}.pem"));
        run(Command::new("openssl")
            .args(["ca", "-batch", "-notext", "-config"])
            .arg(self.dir.join("ca.cnf"))
            .args(["-extensions", section, "-in"])
            .arg(&csr)
            .arg("-out")
            .arg(&out));
        out
    }

    /// A subordinate CA issued by `self`; its own directory is `dir`.
    pub fn issue_ca(&self, dir: PathBuf, cn: &str, endpoints: &Endpoints) -> Ca {
        let sub = Ca::init(dir, cn, endpoints);
        let pem = self.issue("sub-ca", cn, "v3_ca", true);
        std::fs::copy(&pem, sub.dir.join("ca.pem")).unwrap();
        std::fs::copy(self.dir.join("sub-ca.key"), sub.dir.join("ca.key")).unwrap();
        sub
    }

    pub fn revoke(&self, cert: &Path, extra: &[&str]) {
        run(Command::new("openssl")
            .args(["ca", "-batch", "-config"])
            .arg(self.dir.join("ca.cnf"))
            .arg("-revoke")
            .arg(cert)
            .args(extra));
    }

    /// Write this CA's CRL as DER to `out` (v2 unless `v1`), with extra `openssl ca` options.
    pub fn gen_crl(&self, out: &Path, v1: bool, extra: &[&str]) {
        let pem = self.dir.join("crl.pem");
        let cnf = if v1 { "ca-v1.cnf" } else { "ca.cnf" };
        run(Command::new("openssl")
            .args(["ca", "-batch", "-gencrl", "-config"])
            .arg(self.dir.join(cnf))
            .arg("-out")
            .arg(&pem)
            .args(extra));
        run(Command::new("openssl")
            .args(["crl", "-in"])
            .arg(&pem)
            .args(["-outform", "DER", "-out"])
            .arg(out));
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

/// root → intermediate → leaf, each issued cert pointing at OCSP responders and a CRL
/// server on 127.0.0.1. Responders are not started: tests start what their case needs.
pub struct TestPki {
    pub tmp: tempfile::TempDir,
    pub root: Ca,
    pub inter: Ca,
    /// Responder port named in the intermediate's AIA (answers for the root's database).
    pub root_ocsp_port: u16,
    /// Responder port named in the leaf's AIA (answers for the intermediate's database).
    pub inter_ocsp_port: u16,
    pub crl_server: FileServer,
    pub leaf: PathBuf,
}

impl TestPki {
    /// With `ocsp` false the certificates carry no AIA; with `cdp` false no CDP.
    pub fn new_with(ocsp: bool, cdp: bool) -> TestPki {
        let tmp = tempfile::tempdir().unwrap();
        let crl_dir = tmp.path().join("crls");
        std::fs::create_dir_all(&crl_dir).unwrap();
        let crl_server = FileServer::start(&crl_dir);
        let root_ocsp_port = free_port();
        let inter_ocsp_port = free_port();
        let url = |p: u16| format!("http://127.0.0.1:{p}");
        let root_ep = Endpoints {
            ocsp: ocsp.then(|| url(root_ocsp_port)),
            crl: cdp.then(|| format!("{}/root.crl", url(crl_server.port))),
        };
        let inter_ep = Endpoints {
            ocsp: ocsp.then(|| url(inter_ocsp_port)),
            crl: cdp.then(|| format!("{}/intermediate.crl", url(crl_server.port))),
        };
        let root = Ca::new_root(tmp.path().join("root"), "Test Root", &root_ep);
        let inter = root.issue_ca(tmp.path().join("inter"), "Test Intermediate", &inter_ep);
        let leaf = inter.issue("leaf", "Test Leaf", "v3_leaf", true);
        root.issue("responder", "Root OCSP Responder", "v3_ocsp", false);
        inter.issue("responder", "Intermediate OCSP Responder", "v3_ocsp", true);
        TestPki {
            tmp,
            root,
            inter,
            root_ocsp_port,
            inter_ocsp_port,
            crl_server,
            leaf,
        }
    }

    pub fn new() -> TestPki {
        TestPki::new_with(true, true)
    }

    /// The chain leaf → intermediate → root as PEM files.
    pub fn chain_files(&self) -> Vec<PathBuf> {
        vec![
            self.leaf.clone(),
            self.inter.path("ca.pem"),
            self.root.path("ca.pem"),
        ]
    }

    pub fn start_responders(&self) -> (OcspResponder, OcspResponder) {
        (
            OcspResponder::start(&self.root, "responder", self.root_ocsp_port),
            OcspResponder::start(&self.inter, "responder", self.inter_ocsp_port),
        )
    }

    /// Publish both CRLs (v2, valid for a day) on the CRL server.
    pub fn publish_crls(&self) {
        let d = self.crl_server.dir.clone();
        self.root.gen_crl(&d.join("root.crl"), false, &[]);
        self.inter.gen_crl(&d.join("intermediate.crl"), false, &[]);
    }

    pub fn crl_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.crl_server.port)
    }
}

/// Every certificate of a PEM file, as DER.
pub fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    use base64::Engine;
    let pem = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            cur = Some(String::new());
        } else if line.starts_with("-----END CERTIFICATE") {
            let b64 = cur.take().expect("END without BEGIN");
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            );
        } else if let Some(c) = cur.as_mut() {
            c.push_str(line.trim());
        }
    }
    out
}
