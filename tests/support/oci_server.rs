//! A small in-process registry that implements the parts of the OCI distribution-spec 1.1 the
//! tests need and the Debian registry lacks: the Referrers API (`GET /v2/<name>/referrers/<digest>`)
//! with `Link` pagination and *without* `OCI-Filters-Applied` (so clients must filter), and
//! `OCI-Subject` on manifest PUTs that carry a subject. Storage is in memory. Plain HTTP on
//! 127.0.0.1; one thread per connection; `Connection: close` after every response.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::Value;

#[derive(Default)]
struct State {
    blobs: HashMap<String, Vec<u8>>,
    /// (repository, digest) → (media type, bytes)
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    /// (repository, tag) → digest
    tags: HashMap<(String, String), String>,
    uploads: HashMap<String, Vec<u8>>,
    next_upload: u64,
}

/// How the server behaves beyond the defaults (referrers API, no `ETag`s).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// No Referrers API (404 on `/referrers/`, no `OCI-Subject`), so signers maintain the
    /// tag-schema index; manifests are served with `ETag: "<digest>"` and a manifest PUT
    /// with `If-Match` is refused with 412 unless it names the tag's current digest, one with
    /// `If-None-Match: *` when the tag exists.
    pub tag_schema_if_match: bool,
    /// With `tag_schema_if_match`: answer 412 to every `If-None-Match: *`, even for an absent
    /// tag (a registry that mishandles the condition).
    pub refuse_if_none_match: bool,
}

/// Counters of what the conditional-write mode did.
#[derive(Debug, Default)]
pub struct Conditional {
    /// PUTs refused with 412 Precondition Failed.
    pub precondition_failed: AtomicU64,
    /// PUTs that carried `If-Match`.
    pub conditional_puts: AtomicU64,
    /// Conditional PUTs still to be preceded by a simulated concurrent writer, which adds a
    /// foreign entry to the tagged index so the client's `If-Match` no longer matches.
    pub interfere: AtomicU64,
}

/// A running referrers-capable test registry.
pub struct OciServer {
    pub addr: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    referrer_requests: Arc<AtomicU64>,
    /// Entries per referrers page.
    page_size: usize,
    pub conditional: Arc<Conditional>,
}

impl OciServer {
    /// Start on a free port. `page_size` sets how many descriptors one referrers page holds.
    pub fn start(page_size: usize) -> OciServer {
        OciServer::start_with(page_size, Mode::default())
    }

    /// Start with the given [`Mode`].
    pub fn start_with(page_size: usize, mode: Mode) -> OciServer {
        let conditional = Arc::new(Conditional::default());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let referrer_requests = Arc::new(AtomicU64::new(0));
        {
            let conditional = conditional.clone();
            let state = state.clone();
            let stop = stop.clone();
            let requests = requests.clone();
            let referrer_requests = referrer_requests.clone();
            let addr = addr.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = state.clone();
                    let requests = requests.clone();
                    let referrer_requests = referrer_requests.clone();
                    let addr = addr.clone();
                    let conditional = conditional.clone();
                    thread::spawn(move || {
                        let _ = handle(
                            stream,
                            &state,
                            &requests,
                            &referrer_requests,
                            &addr,
                            page_size,
                            (mode, &conditional),
                        );
                    });
                }
            });
        }
        OciServer {
            addr,
            state,
            stop,
            requests,
            referrer_requests,
            page_size,
            conditional,
        }
    }

    /// The bytes of the manifest a tag points at, if any.
    pub fn tagged(&self, repo: &str, tag: &str) -> Option<Vec<u8>> {
        let s = self.state.lock().unwrap();
        let digest = s.tags.get(&(repo.to_string(), tag.to_string()))?;
        Some(
            s.manifests
                .get(&(repo.to_string(), digest.clone()))?
                .1
                .clone(),
        )
    }

    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn referrer_request_count(&self) -> u64 {
        self.referrer_requests.load(Ordering::SeqCst)
    }

    /// Put a blob directly.
    pub fn put_blob(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        self.state
            .lock()
            .unwrap()
            .blobs
            .insert(digest.clone(), bytes.to_vec());
        digest
    }

    /// Put a manifest directly, optionally tagged; returns its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> String {
        let digest = sha256(bytes);
        let mut s = self.state.lock().unwrap();
        s.manifests.insert(
            (repo.to_string(), digest.clone()),
            (media_type.to_string(), bytes.to_vec()),
        );
        if let Some(tag) = tag {
            s.tags
                .insert((repo.to_string(), tag.to_string()), digest.clone());
        }
        digest
    }

    /// Whether a tag exists (to prove no tag-schema index was written).
    pub fn has_tag(&self, repo: &str, tag: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .tags
            .contains_key(&(repo.to_string(), tag.to_string()))
    }
}

impl Drop for OciServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
    )
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(stream: &mut TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let (path, query_text) = target.split_once('?').unwrap_or((&target, ""));
    let query = query_text
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect();
    Ok(Request {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad Request",
        404 => "Not Found",
        412 => "Precondition Failed",
        405 => "Method Not Allowed",
        _ => "Status",
    };
    let mut text = format!(
        "HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}

fn error_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::json!({"errors": [{"code": code, "message": message}]})
        .to_string()
        .into_bytes()
}

fn handle(
    mut stream: TcpStream,
    state: &Mutex<State>,
    requests: &AtomicU64,
    referrer_requests: &AtomicU64,
    addr: &str,
    page_size: usize,
    (mode, conditional): (Mode, &Conditional),
) -> std::io::Result<()> {
    let req = read_request(&mut stream)?;
    requests.fetch_add(1, Ordering::SeqCst);
    let head = req.method == "HEAD";
    if req.path == "/v2/" || req.path == "/v2" {
        return respond(
            &mut stream,
            200,
            &[("Docker-Distribution-API-Version", "registry/2.0".into())],
            b"{}",
            head,
        );
    }
    let Some(rest) = req.path.strip_prefix("/v2/") else {
        return respond(&mut stream, 404, &[], b"", head);
    };
    // Route on the last "/<kind>/" separator so that repository names may contain slashes.
    for kind in ["/referrers/", "/manifests/", "/blobs/uploads/", "/blobs/"] {
        if let Some(idx) = rest.rfind(kind) {
            let repo = &rest[..idx];
            let arg = &rest[idx + kind.len()..];
            return match kind {
                "/referrers/" if mode.tag_schema_if_match => {
                    respond(&mut stream, 404, &[], b"404 page not found", head)
                }
                "/referrers/" => {
                    referrer_requests.fetch_add(1, Ordering::SeqCst);
                    referrers(&mut stream, state, repo, arg, &req, addr, page_size)
                }
                "/manifests/" => manifests(&mut stream, state, repo, arg, &req, mode, conditional),
                "/blobs/uploads/" => uploads(&mut stream, state, repo, arg, &req),
                _ => blobs(&mut stream, state, arg, &req),
            };
        }
    }
    if let Some(repo) = rest.strip_suffix("/blobs/uploads") {
        return uploads(&mut stream, state, repo, "", &req);
    }
    respond(&mut stream, 404, &[], b"", head)
}

fn referrers(
    stream: &mut TcpStream,
    state: &Mutex<State>,
    repo: &str,
    digest: &str,
    req: &Request,
    addr: &str,
    page_size: usize,
) -> std::io::Result<()> {
    if req.method != "GET" {
        return respond(stream, 405, &[], b"", false);
    }
    let s = state.lock().unwrap();
    let mut found: Vec<Value> = Vec::new();
    let mut keys: Vec<_> = s
        .manifests
        .keys()
        .filter(|(r, _)| r == repo)
        .cloned()
        .collect();
    keys.sort();
    for key in keys {
        let (media_type, bytes) = &s.manifests[&key];
        let Ok(m) = serde_json::from_slice::<Value>(bytes) else {
            continue;
        };
        if m["subject"]["digest"].as_str() != Some(digest) {
            continue;
        }
        let artifact_type = m["artifactType"]
            .as_str()
            .or_else(|| m["config"]["mediaType"].as_str())
            .unwrap_or("")
            .to_string();
        let mut d = serde_json::json!({
            "mediaType": media_type,
            "digest": key.1,
            "size": bytes.len(),
            "artifactType": artifact_type,
        });
        if let Some(a) = m.get("annotations") {
            d["annotations"] = a.clone();
        }
        found.push(d);
    }
    // Deliberately no filtering and no OCI-Filters-Applied: clients must filter themselves.
    let start: usize = req
        .query
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = found.iter().skip(start).take(page_size).cloned().collect();
    let mut headers = vec![(
        "Content-Type",
        "application/vnd.oci.image.index.v1+json".to_string(),
    )];
    if start + page_size < found.len() {
        let mut next = format!("/v2/{repo}/referrers/{digest}?page={}", start + page_size);
        if let Some(at) = req.query.get("artifactType") {
            next.push_str(&format!("&artifactType={at}"));
        }
        let _ = addr;
        headers.push(("Link", format!("<{next}>; rel=\"next\"")));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": page,
    })
    .to_string();
    respond(stream, 200, &headers, body.as_bytes(), false)
}

fn manifests(
    stream: &mut TcpStream,
    state: &Mutex<State>,
    repo: &str,
    reference: &str,
    req: &Request,
    mode: Mode,
    conditional: &Conditional,
) -> std::io::Result<()> {
    let head = req.method == "HEAD";
    match req.method.as_str() {
        "GET" | "HEAD" => {
            let s = state.lock().unwrap();
            let digest = if reference.starts_with("sha256:") {
                reference.to_string()
            } else {
                match s.tags.get(&(repo.to_string(), reference.to_string())) {
                    Some(d) => d.clone(),
                    None => {
                        return respond(
                            stream,
                            404,
                            &[("Content-Type", "application/json".into())],
                            &error_body("MANIFEST_UNKNOWN", "manifest unknown"),
                            head,
                        )
                    }
                }
            };
            match s.manifests.get(&(repo.to_string(), digest.clone())) {
                Some((media_type, bytes)) => {
                    let mut headers = vec![
                        ("Content-Type", media_type.clone()),
                        ("Docker-Content-Digest", digest.clone()),
                    ];
                    if mode.tag_schema_if_match {
                        headers.push(("ETag", format!("\"{digest}\"")));
                    }
                    respond(stream, 200, &headers, bytes, head)
                }
                None => respond(
                    stream,
                    404,
                    &[("Content-Type", "application/json".into())],
                    &error_body("MANIFEST_UNKNOWN", "manifest unknown"),
                    head,
                ),
            }
        }
        "PUT" => {
            let media_type = req.headers.get("content-type").cloned().unwrap_or_default();
            let digest = sha256(&req.body);
            let parsed: Value = match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(_) => {
                    return respond(
                        stream,
                        400,
                        &[],
                        &error_body("MANIFEST_INVALID", "not JSON"),
                        false,
                    )
                }
            };
            let mut s = state.lock().unwrap();
            let key = (repo.to_string(), reference.to_string());
            if mode.tag_schema_if_match
                && req.headers.get("if-none-match").map(String::as_str) == Some("*")
            {
                conditional.conditional_puts.fetch_add(1, Ordering::SeqCst);
                if s.tags.contains_key(&key) || mode.refuse_if_none_match {
                    conditional
                        .precondition_failed
                        .fetch_add(1, Ordering::SeqCst);
                    return respond(
                        stream,
                        412,
                        &[],
                        &error_body("PRECONDITION_FAILED", "the tag exists"),
                        false,
                    );
                }
            }
            if let (true, Some(if_match)) = (mode.tag_schema_if_match, req.headers.get("if-match"))
            {
                conditional.conditional_puts.fetch_add(1, Ordering::SeqCst);
                let interfere = conditional
                    .interfere
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if interfere {
                    add_foreign_entry(&mut s, &key);
                }
                let current = s.tags.get(&key).map(|d| format!("\"{d}\""));
                if current.as_deref() != Some(if_match.as_str()) {
                    conditional
                        .precondition_failed
                        .fetch_add(1, Ordering::SeqCst);
                    return respond(
                        stream,
                        412,
                        &[],
                        &error_body("PRECONDITION_FAILED", "the manifest changed"),
                        false,
                    );
                }
            }
            // Every referenced blob must exist, as in the real registry.
            let mut referenced = Vec::new();
            if let Some(c) = parsed["config"]["digest"].as_str() {
                referenced.push(c.to_string());
            }
            if let Some(layers) = parsed["layers"].as_array() {
                referenced.extend(
                    layers
                        .iter()
                        .filter_map(|l| l["digest"].as_str().map(String::from)),
                );
            }
            if let Some(missing) = referenced.iter().find(|d| !s.blobs.contains_key(*d)) {
                return respond(
                    stream,
                    400,
                    &[],
                    &error_body("MANIFEST_BLOB_UNKNOWN", missing),
                    false,
                );
            }
            s.manifests.insert(
                (repo.to_string(), digest.clone()),
                (media_type, req.body.clone()),
            );
            if !reference.starts_with("sha256:") {
                s.tags
                    .insert((repo.to_string(), reference.to_string()), digest.clone());
            }
            let mut headers = vec![
                ("Docker-Content-Digest", digest.clone()),
                ("Location", format!("/v2/{repo}/manifests/{digest}")),
            ];
            if let (false, Some(subject)) = (
                mode.tag_schema_if_match,
                parsed["subject"]["digest"].as_str(),
            ) {
                headers.push(("OCI-Subject", subject.to_string()));
            }
            respond(stream, 201, &headers, b"", false)
        }
        _ => respond(stream, 405, &[], b"", false),
    }
}

fn blobs(
    stream: &mut TcpStream,
    state: &Mutex<State>,
    digest: &str,
    req: &Request,
) -> std::io::Result<()> {
    let head = req.method == "HEAD";
    let s = state.lock().unwrap();
    match s.blobs.get(digest) {
        Some(bytes) => respond(
            stream,
            200,
            &[
                ("Content-Type", "application/octet-stream".into()),
                ("Docker-Content-Digest", digest.to_string()),
            ],
            bytes,
            head,
        ),
        None => respond(
            stream,
            404,
            &[],
            &error_body("BLOB_UNKNOWN", "blob unknown"),
            head,
        ),
    }
}

fn uploads(
    stream: &mut TcpStream,
    state: &Mutex<State>,
    repo: &str,
    id: &str,
    req: &Request,
) -> std::io::Result<()> {
    let mut s = state.lock().unwrap();
    match req.method.as_str() {
        "POST" => {
            if let Some(digest) = req.query.get("digest") {
                if !req.body.is_empty() && sha256(&req.body) == *digest {
                    s.blobs.insert(digest.clone(), req.body.clone());
                    return respond(
                        stream,
                        201,
                        &[("Location", format!("/v2/{repo}/blobs/{digest}"))],
                        b"",
                        false,
                    );
                }
            }
            s.next_upload += 1;
            let id = format!("u{}", s.next_upload);
            s.uploads.insert(id.clone(), Vec::new());
            respond(
                stream,
                202,
                &[
                    ("Location", format!("/v2/{repo}/blobs/uploads/{id}")),
                    ("Range", "0-0".into()),
                ],
                b"",
                false,
            )
        }
        "PATCH" => {
            let Some(buf) = s.uploads.get_mut(id) else {
                return respond(
                    stream,
                    404,
                    &[],
                    &error_body("BLOB_UPLOAD_UNKNOWN", id),
                    false,
                );
            };
            buf.extend_from_slice(&req.body);
            let len = buf.len();
            respond(
                stream,
                202,
                &[
                    ("Location", format!("/v2/{repo}/blobs/uploads/{id}")),
                    ("Range", format!("0-{}", len.saturating_sub(1))),
                ],
                b"",
                false,
            )
        }
        "PUT" => {
            let Some(mut buf) = s.uploads.remove(id) else {
                return respond(
                    stream,
                    404,
                    &[],
                    &error_body("BLOB_UPLOAD_UNKNOWN", id),
                    false,
                );
            };
            buf.extend_from_slice(&req.body);
            let digest = req.query.get("digest").cloned().unwrap_or_default();
            if sha256(&buf) != digest {
                return respond(
                    stream,
                    400,
                    &[],
                    &error_body("DIGEST_INVALID", &digest),
                    false,
                );
            }
            s.blobs.insert(digest.clone(), buf);
            respond(
                stream,
                201,
                &[
                    ("Location", format!("/v2/{repo}/blobs/{digest}")),
                    ("Docker-Content-Digest", digest),
                ],
                b"",
                false,
            )
        }
        _ => respond(stream, 405, &[], b"", false),
    }
}

/// Another writer's update of the tagged index `key`: one more signature entry, retagged.
fn add_foreign_entry(s: &mut State, key: &(String, String)) {
    let Some(digest) = s.tags.get(key).cloned() else {
        return;
    };
    let Some((media_type, bytes)) = s.manifests.get(&(key.0.clone(), digest)).cloned() else {
        return;
    };
    let Ok(mut index) = serde_json::from_slice::<Value>(&bytes) else {
        return;
    };
    let n = s.next_upload;
    s.next_upload += 1;
    let foreign = format!("foreign writer {n}");
    if let Some(list) = index["manifests"].as_array_mut() {
        list.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(foreign.as_bytes()),
            "size": foreign.len(),
            "artifactType": "application/vnd.cncf.notary.signature",
        }));
    }
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = sha256(&bytes);
    s.manifests
        .insert((key.0.clone(), digest.clone()), (media_type, bytes));
    s.tags.insert(key.clone(), digest);
}
