//! A registry front: a small HTTP/1.1 proxy before the real `docker-registry` that forwards
//! everything unchanged except what a chosen misbehaviour replaces, so tests meet the quirks
//! of real registries (lying Referrers APIs, refusing `subject`) with real storage behind.
//!
//! Plain threads and blocking sockets: the signer under test is a separate process, and one
//! request per connection (`Connection: close`) keeps relaying a matter of copying bytes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::http1::{forward_head, read_request};
use std::time::Duration;

/// What the front does differently from the registry behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// Forward everything (records requests only).
    None,
    /// Claim `subject` support (`OCI-Subject` on manifest PUTs with a subject) and answer
    /// `/referrers` with 200 and an HTML page.
    ReferrersHtml,
    /// Claim `subject` support and answer `/referrers` with a valid but empty image index,
    /// so signatures just pushed are missing from it.
    ReferrersOmits,
    /// Refuse manifest PUTs whose JSON has `subject`, with 400 MANIFEST_INVALID and a
    /// message that does not name the field (as several registries do).
    RejectSubject,
}

/// One request as the front saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Status the client was answered.
    pub status: u16,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct RegistryFront {
    /// `127.0.0.1:PORT` of the front: use it as the registry part of references.
    pub host: String,
    pub requests: Arc<Mutex<Vec<SeenRequest>>>,
    stop: Arc<AtomicBool>,
}

impl RegistryFront {
    /// Listen on a free loopback port and relay to `upstream` (`127.0.0.1:PORT`, plain HTTP).
    pub fn start(upstream: &str, quirk: Quirk) -> RegistryFront {
        RegistryFront::start_with(upstream, quirk, None)
    }

    /// Like [`RegistryFront::start`], but every blob GET is answered with a 307 redirect to
    /// the same path on `blob_host` (as registries hand blobs to a storage service).
    pub fn start_redirecting_blobs(upstream: &str, blob_host: &str) -> RegistryFront {
        RegistryFront::start_with(upstream, Quirk::None, Some(blob_host.to_string()))
    }

    fn start_with(upstream: &str, quirk: Quirk, blob_host: Option<String>) -> RegistryFront {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind front");
        let host = listener.local_addr().expect("addr").to_string();
        listener.set_nonblocking(true).expect("nonblocking");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt, upstream) = (requests.clone(), stop.clone(), upstream.to_string());
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let (log, upstream) = (log.clone(), upstream.clone());
                        let blob_host = blob_host.clone();
                        std::thread::spawn(move || {
                            let _ = sock.set_nonblocking(false);
                            serve(sock, &upstream, quirk, blob_host.as_deref(), &log);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        RegistryFront {
            host,
            requests,
            stop,
        }
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for RegistryFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn respond(sock: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = sock.write_all(out.as_bytes());
    let _ = sock.write_all(body);
}

/// The subject digest of a manifest body, if it has one.
fn subject_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(v.get("subject")?.get("digest")?.as_str()?.to_string())
}

fn serve(
    mut sock: TcpStream,
    upstream: &str,
    quirk: Quirk,
    blob_host: Option<&str>,
    log: &Mutex<Vec<SeenRequest>>,
) {
    let Some(req) = read_request(&mut sock) else {
        return;
    };
    let path = req.target.split('?').next().unwrap_or("").to_string();
    let is_manifest_put = req.method == "PUT" && path.contains("/manifests/");
    let subject = if is_manifest_put {
        subject_of(&req.body)
    } else {
        None
    };
    let record = |status: u16| {
        log.lock().unwrap().push(SeenRequest {
            method: req.method.clone(),
            target: req.target.clone(),
            headers: req.headers.clone(),
            status,
        })
    };
    if req.method == "GET" && path.contains("/referrers/") {
        match quirk {
            Quirk::ReferrersHtml => {
                record(200);
                return respond(
                    &mut sock,
                    200,
                    &[("Content-Type", "text/html; charset=utf-8")],
                    b"<!doctype html><html><body><h1>Sign in</h1></body></html>",
                );
            }
            Quirk::ReferrersOmits => {
                record(200);
                return respond(
                    &mut sock,
                    200,
                    &[("Content-Type", "application/vnd.oci.image.index.v1+json")],
                    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
                );
            }
            _ => {}
        }
    }
    if let (Some(to), true) = (
        blob_host,
        req.method == "GET" && path.contains("/blobs/sha256:"),
    ) {
        record(307);
        let location = format!("http://{to}{}", req.target);
        return respond(&mut sock, 307, &[("Location", &location)], b"");
    }
    if quirk == Quirk::RejectSubject && subject.is_some() {
        record(400);
        return respond(
            &mut sock,
            400,
            &[("Content-Type", "application/json")],
            br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}}]}"#,
        );
    }
    // Relay: the Host header is kept, so the registry's upload Locations point at the front.
    let Ok(mut up) = TcpStream::connect(upstream) else {
        record(502);
        return respond(&mut sock, 502, &[], b"");
    };
    let _ = up.set_read_timeout(Some(Duration::from_secs(20)));
    let head = forward_head(&req);
    if up.write_all(head.as_bytes()).is_err() || up.write_all(&req.body).is_err() {
        record(502);
        return respond(&mut sock, 502, &[], b"");
    }
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    let status: u16 = response
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    record(status);
    let claims_subject = matches!(quirk, Quirk::ReferrersHtml | Quirk::ReferrersOmits);
    if let (true, Some(subject), 201) = (claims_subject, &subject, status) {
        // Insert OCI-Subject after the status line: the registry "processed" the subject.
        if let Some(eol) = response.windows(2).position(|w| w == b"\r\n") {
            let injected = format!("\r\nOCI-Subject: {subject}");
            response.splice(eol..eol, injected.into_bytes());
        }
    }
    let _ = sock.write_all(&response);
}
