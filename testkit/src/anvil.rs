//! EVM helpers shared by the tests (`tests/evm_support` re-exports this module) and the bench:
//! a real anvil node and small in-process HTTP servers (a counting proxy, fakes).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kdfd::client::Client;
use serde_json::{json, Value};
use std::future::Future;
use std::io::BufRead;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

/// The anvil binary: `$KDFD_ANVIL`, else whatever `scripts/anvil/install.sh` installs (once).
pub fn anvil_bin() -> String {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("KDFD_ANVIL") {
            return p;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/anvil/install.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("run install.sh");
        assert!(
            out.status.success(),
            "install.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
    .clone()
}

/// A running anvil on 127.0.0.1 and a free port; killed on drop.
pub struct Anvil {
    child: Child,
    pub addr: SocketAddr,
}

impl Anvil {
    pub fn start() -> Anvil {
        let mut child = Command::new(anvil_bin())
            .args(["--host", "127.0.0.1", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn anvil");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the "Listening on" line, then keeps draining so anvil never blocks on its pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.trim().strip_prefix("Listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_string());
                    }
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().expect("anvil address"),
            Err(_) => {
                let _ = child.kill();
                panic!("anvil did not print its address");
            }
        };
        Anvil { child, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One JSON-RPC call to anvil (test set-up), panicking on an error answer.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        let mut c = Client::connect(self.addr).await.unwrap();
        let req = json!({"jsonrpc":"2.0","id":1,"method":method,"params":params});
        // anvil refuses a body without a JSON content type.
        let r = c
            .send_with_headers("POST", req.to_string(), JSON)
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    pub async fn set_balance(&self, addr: &str, wei: alloy_primitives::U256) {
        self.rpc("anvil_setBalance", json!([addr, format!("{wei:#x}")]))
            .await;
    }

    /// Plants the test token at `contract` (see `token_runtime`).
    pub async fn plant_token(&self, contract: &str, decimals: u8) {
        let code = alloy_primitives::hex::encode_prefixed(token_runtime(decimals));
        self.rpc("anvil_setCode", json!([contract, code])).await;
    }

    /// Sets `holder`'s token balance: slot keccak256(pad32(holder) ‖ pad32(0)), Solidity's
    /// layout for `mapping(address => uint256)` at slot 0.
    pub async fn set_token_balance(
        &self,
        contract: &str,
        holder: alloy_primitives::Address,
        value: alloy_primitives::U256,
    ) {
        let mut pre = [0u8; 64];
        pre[12..32].copy_from_slice(holder.as_slice());
        let slot = alloy_primitives::keccak256(pre);
        self.rpc(
            "anvil_setStorageAt",
            json!([contract, format!("{slot}"), format!("0x{value:064x}")]),
        )
        .await;
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 66-byte hand-assembled ERC-20 subset: `balanceOf(address)` reads the mapping at slot 0,
/// `decimals()` returns the constant given, any other call reverts with empty data.
pub fn token_runtime(decimals: u8) -> Vec<u8> {
    #[rustfmt::skip]
    let code = vec![
        // 0x00: selector = calldata[0..32] >> 224
        0x60, 0x00,                         // PUSH1 0
        0x35,                               // CALLDATALOAD      [word0]
        0x60, 0xe0,                         // PUSH1 224
        0x1c,                               // SHR               [sel]
        // 0x06: balanceOf(address)?
        0x80,                               // DUP1              [sel sel]
        0x63, 0x70, 0xa0, 0x82, 0x31,       // PUSH4 0x70a08231  [sel sel 70a08231]
        0x14,                               // EQ                [sel eq]
        0x60, 0x1d,                         // PUSH1 0x1d        [sel eq 1d]
        0x57,                               // JUMPI             [sel] → 0x1d if eq
        // 0x10: decimals()?
        0x63, 0x31, 0x3c, 0xe5, 0x67,       // PUSH4 0x313ce567  [sel 313ce567]
        0x14,                               // EQ                [eq]
        0x60, 0x37,                         // PUSH1 0x37
        0x57,                               // JUMPI             [] → 0x37 if eq
        // 0x19: anything else: revert(0, 0)
        0x60, 0x00,                         // PUSH1 0
        0x80,                               // DUP1
        0xfd,                               // REVERT
        // 0x1d: balanceOf: mem[0..32] = holder word, mem[32..64] = 0 (the mapping's slot)
        0x5b,                               // JUMPDEST
        0x60, 0x04,                         // PUSH1 4
        0x35,                               // CALLDATALOAD      [holder]
        0x60, 0x00,                         // PUSH1 0
        0x52,                               // MSTORE            mem[0] = holder
        0x60, 0x00,                         // PUSH1 0
        0x60, 0x20,                         // PUSH1 32
        0x52,                               // MSTORE            mem[32] = 0
        0x60, 0x40,                         // PUSH1 64          (size)
        0x60, 0x00,                         // PUSH1 0           (offset)
        0x20,                               // KECCAK256         [slot]
        0x54,                               // SLOAD             [balance]
        0x60, 0x00,                         // PUSH1 0
        0x52,                               // MSTORE            mem[0] = balance
        0x60, 0x20,                         // PUSH1 32          (size)
        0x60, 0x00,                         // PUSH1 0           (offset)
        0xf3,                               // RETURN            mem[0..32]
        // 0x37: decimals: return the constant as one word
        0x5b,                               // JUMPDEST
        0x60, decimals,                     // PUSH1 decimals
        0x60, 0x00,                         // PUSH1 0
        0x52,                               // MSTORE            mem[0] = decimals
        0x60, 0x20,                         // PUSH1 32
        0x60, 0x00,                         // PUSH1 0
        0xf3,                               // RETURN            mem[0..32]
    ];
    debug_assert_eq!(code[0x1d], 0x5b);
    debug_assert_eq!(code[0x37], 0x5b);
    code
}

type Handler =
    Arc<dyn Fn(Bytes) -> Pin<Box<dyn Future<Output = (u16, Bytes)> + Send>> + Send + Sync>;

/// An in-process HTTP/1 server on 127.0.0.1 that counts connections and requests and answers
/// each body with `handler`. Stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicU64>,
    pub connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start<F, Fut>(handler: F) -> Server
    where
        F: Fn(Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (u16, Bytes)> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |b| Box::pin(handler(b)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (rq, cn) = (requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                cn.fetch_add(1, Ordering::SeqCst);
                let (handler, rq) = (handler.clone(), rq.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (handler, rq) = (handler.clone(), rq.clone());
                        async move {
                            rq.fetch_add(1, Ordering::SeqCst);
                            let body = req.into_body().collect().await?.to_bytes();
                            let (status, out) = handler(body).await;
                            let resp = hyper::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(out))
                                .unwrap();
                            Ok::<_, hyper::Error>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Server {
            addr,
            requests,
            connections,
            task,
        }
    }

    /// A proxy that forwards every body to `upstream` and counts what passes.
    pub async fn proxy(upstream: SocketAddr) -> Server {
        Server::start(move |body| async move {
            let mut c = Client::connect(upstream).await.unwrap();
            let r = c.send_with_headers("POST", body, JSON).await.unwrap();
            (r.status, r.body)
        })
        .await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port with nothing listening (bound, then released).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// A listener that accepts connections and never answers; returns its URL and the task to abort.
pub async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (url, task)
}
