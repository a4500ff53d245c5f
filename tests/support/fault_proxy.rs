//! A TCP proxy on 127.0.0.1 in front of a real registry that injects faults on new
//! connections: 503, 500, 429 with `Retry-After`, and connections closed mid-request.
//! Every third connection is forwarded untouched, so a client that retries gets through.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

#[derive(Default)]
pub struct FaultCounts {
    pub connections: AtomicUsize,
    pub status_503: AtomicUsize,
    pub status_500: AtomicUsize,
    pub status_429: AtomicUsize,
    pub resets: AtomicUsize,
    pub forwarded: AtomicUsize,
}

pub struct FaultProxy {
    pub addr: String,
    pub counts: Arc<FaultCounts>,
}

impl FaultProxy {
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let counts = Arc::new(FaultCounts::default());
        let (c, up) = (counts.clone(), upstream.to_string());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let i = c.connections.fetch_add(1, Ordering::SeqCst);
                let (c, up) = (c.clone(), up.clone());
                thread::spawn(move || handle(stream, i, &c, &up));
            }
        });
        FaultProxy { addr, counts }
    }

    pub fn injected(&self) -> usize {
        let c = &self.counts;
        c.status_503.load(Ordering::SeqCst)
            + c.status_500.load(Ordering::SeqCst)
            + c.status_429.load(Ordering::SeqCst)
            + c.resets.load(Ordering::SeqCst)
    }
}

fn read_head(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 65536 {
        match s.read(&mut b) {
            Ok(1) => buf.push(b[0]),
            _ => return,
        }
    }
}

fn respond(mut s: TcpStream, status: &str, extra: &str) {
    read_head(&mut s);
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = s.flush();
    let _ = s.shutdown(Shutdown::Write);
}

fn handle(mut client: TcpStream, i: usize, c: &FaultCounts, upstream: &str) {
    match (i % 3, (i / 3) % 4) {
        (0, _) => {
            c.forwarded.fetch_add(1, Ordering::SeqCst);
            let Ok(server) = TcpStream::connect(upstream) else {
                return;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let up = thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(Shutdown::Write);
            });
            let mut server = server;
            let _ = std::io::copy(&mut server, &mut client);
            let _ = client.shutdown(Shutdown::Write);
            let _ = up.join();
        }
        (_, 0) => {
            c.status_503.fetch_add(1, Ordering::SeqCst);
            respond(client, "503 Service Unavailable", "");
        }
        (_, 1) => {
            c.status_429.fetch_add(1, Ordering::SeqCst);
            respond(client, "429 Too Many Requests", "Retry-After: 1\r\n");
        }
        (_, 2) => {
            c.status_500.fetch_add(1, Ordering::SeqCst);
            respond(client, "500 Internal Server Error", "");
        }
        _ => {
            c.resets.fetch_add(1, Ordering::SeqCst);
            read_head(&mut client);
            drop(client);
        }
    }
}
