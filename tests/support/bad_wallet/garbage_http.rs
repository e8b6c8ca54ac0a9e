//! A tiny HTTP/1.1 server on 127.0.0.1 that answers every POST with garbage: a body that is
//! not JSON, or JSON-RPC answers (ids echoed) whose results are not hex. Threads, no crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone, Copy)]
pub enum Answer {
    NotJson,
    NotHex,
}

pub struct Server {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl Server {
    pub fn start(answer: Answer) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                let count = count.clone();
                std::thread::spawn(move || serve(s, answer, &count));
            }
        });
        Server { port, requests }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// HTTP requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// The answer to one JSON-RPC body: each item's id echoed with a result that is not hex.
fn not_hex(body: &[u8]) -> String {
    let item = |v: &serde_json::Value| serde_json::json!({"jsonrpc": "2.0", "id": v["id"], "result": "0xZZ-not-hex"});
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Array(items)) => {
            serde_json::Value::Array(items.iter().map(item).collect()).to_string()
        }
        Ok(v) => item(&v).to_string(),
        Err(_) => "{}".into(),
    }
}

fn serve(s: TcpStream, answer: Answer, count: &AtomicUsize) {
    let mut w = match s.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(s);
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        count.fetch_add(1, Ordering::SeqCst);
        let text = match answer {
            Answer::NotJson => "<html><body>502 garbage {not json".to_string(),
            Answer::NotHex => not_hex(&body),
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        if w.write_all(head.as_bytes()).is_err() || w.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}
