//! An HTTP/1.1 proxy on 127.0.0.1 in front of a real registry that injects faults request by
//! request: 503, 500, 429 with `Retry-After`, connections closed mid-request, stalls past the
//! client's timeout, and bodies cut short (`Content-Length` larger than the bytes sent, then
//! close). Each request gets its own connection both sides (`Connection: close`), so which
//! fault a request meets is decided by a plan, not by connection reuse.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::http1::{forward_head, read_request, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Forward,
    Status503,
    Status500,
    /// 429 with `Retry-After: 1`.
    Status429,
    /// Read the request head, then close without answering.
    Reset,
    /// Read the request, answer nothing for the plan's stall time, then close.
    Stall,
    /// Forward; a GET answered 200 with a body gets its full `Content-Length` but only half
    /// the body before the connection closes. Other answers are forwarded untouched (and
    /// counted as forwarded): their bodies are empty or not read by clients.
    Truncate,
}

/// Which fault each request meets: `cycle[n % len]` for the n-th request that `applies` to
/// (requests it does not apply to are forwarded).
#[derive(Clone)]
pub struct Plan {
    pub cycle: Vec<Fault>,
    pub stall: Duration,
    pub applies: fn(method: &str, path: &str) -> bool,
}

impl Plan {
    pub fn new(cycle: &[Fault]) -> Plan {
        Plan {
            cycle: cycle.to_vec(),
            stall: Duration::from_secs(5),
            applies: |_, _| true,
        }
    }
}

#[derive(Default)]
pub struct FaultCounts {
    pub connections: AtomicUsize,
    pub status_503: AtomicUsize,
    pub status_500: AtomicUsize,
    pub status_429: AtomicUsize,
    pub resets: AtomicUsize,
    pub stalls: AtomicUsize,
    pub truncations: AtomicUsize,
    pub forwarded: AtomicUsize,
}

pub struct FaultProxy {
    pub addr: String,
    pub counts: Arc<FaultCounts>,
    /// `METHOD path` of every truncated answer, in order.
    pub truncated: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Forward every third request; the others meet 503, 429, 500 and resets in turn.
    pub fn start(upstream: &str) -> FaultProxy {
        use Fault::*;
        FaultProxy::with_plan(
            upstream,
            Plan::new(&[
                Forward, Status503, Status503, Forward, Status429, Status429, Forward, Status500,
                Status500, Forward, Reset, Reset,
            ]),
        )
    }

    pub fn with_plan(upstream: &str, plan: Plan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let counts = Arc::new(FaultCounts::default());
        let truncated = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let seq = Arc::new(AtomicUsize::new(0));
        let (c, t, halt, up) = (
            counts.clone(),
            truncated.clone(),
            stop.clone(),
            upstream.to_string(),
        );
        thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                c.connections.fetch_add(1, Ordering::SeqCst);
                let (c, t, up, plan, seq) =
                    (c.clone(), t.clone(), up.clone(), plan.clone(), seq.clone());
                thread::spawn(move || handle(stream, &plan, &seq, &c, &t, &up));
            }
        });
        FaultProxy {
            addr,
            counts,
            truncated,
            stop,
        }
    }

    /// Faults injected so far (forwarded requests not counted).
    pub fn injected(&self) -> usize {
        let c = &self.counts;
        [
            &c.status_503,
            &c.status_500,
            &c.status_429,
            &c.resets,
            &c.stalls,
            &c.truncations,
        ]
        .iter()
        .map(|n| n.load(Ordering::SeqCst))
        .sum()
    }

    /// One line with every counter, for test output.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let n = |a: &AtomicUsize| a.load(Ordering::SeqCst);
        format!(
            "{} requests: {} forwarded, {} faults (503: {}, 500: {}, 429: {}, reset: {}, stall: {}, truncated: {})",
            n(&c.connections),
            n(&c.forwarded),
            self.injected(),
            n(&c.status_503),
            n(&c.status_500),
            n(&c.status_429),
            n(&c.resets),
            n(&c.stalls),
            n(&c.truncations)
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn respond(mut s: TcpStream, status: &str, extra: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = s.flush();
    let _ = s.shutdown(Shutdown::Write);
}

/// The upstream's whole answer to `req` (it closes after one answer).
fn relay(req: &Request, upstream: &str) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).ok()?;
    let _ = up.set_read_timeout(Some(Duration::from_secs(20)));
    up.write_all(forward_head(req).as_bytes()).ok()?;
    up.write_all(&req.body).ok()?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).ok()?;
    Some(response)
}

/// Head and body of a complete answer when it is a 200 with a non-empty body.
fn split_ok_body(response: &[u8]) -> Option<(&[u8], &[u8])> {
    if !response.starts_with(b"HTTP/1.1 200") {
        return None;
    }
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let (head, body) = response.split_at(end);
    (!body.is_empty()).then_some((head, body))
}

fn handle(
    mut client: TcpStream,
    plan: &Plan,
    seq: &AtomicUsize,
    c: &FaultCounts,
    truncated: &Mutex<Vec<String>>,
    upstream: &str,
) {
    let Some(req) = read_request(&mut client) else {
        return;
    };
    let path = req.target.split('?').next().unwrap_or("").to_string();
    let fault = if (plan.applies)(&req.method, &path) {
        plan.cycle[seq.fetch_add(1, Ordering::SeqCst) % plan.cycle.len()]
    } else {
        Fault::Forward
    };
    match fault {
        Fault::Status503 => {
            c.status_503.fetch_add(1, Ordering::SeqCst);
            respond(client, "503 Service Unavailable", "");
        }
        Fault::Status429 => {
            c.status_429.fetch_add(1, Ordering::SeqCst);
            respond(client, "429 Too Many Requests", "Retry-After: 1\r\n");
        }
        Fault::Status500 => {
            c.status_500.fetch_add(1, Ordering::SeqCst);
            respond(client, "500 Internal Server Error", "");
        }
        Fault::Reset => {
            c.resets.fetch_add(1, Ordering::SeqCst);
            drop(client);
        }
        Fault::Stall => {
            c.stalls.fetch_add(1, Ordering::SeqCst);
            thread::sleep(plan.stall);
            drop(client);
        }
        Fault::Forward | Fault::Truncate => {
            let Some(response) = relay(&req, upstream) else {
                return;
            };
            let cut = (fault == Fault::Truncate && req.method == "GET")
                .then(|| split_ok_body(&response))
                .flatten();
            if let Some((head, body)) = cut {
                c.truncations.fetch_add(1, Ordering::SeqCst);
                truncated
                    .lock()
                    .unwrap()
                    .push(format!("{} {path}", req.method));
                let _ = client.write_all(head);
                let _ = client.write_all(&body[..body.len() / 2]);
            } else {
                c.forwarded.fetch_add(1, Ordering::SeqCst);
                let _ = client.write_all(&response);
            }
            let _ = client.flush();
            let _ = client.shutdown(Shutdown::Write);
        }
    }
}
