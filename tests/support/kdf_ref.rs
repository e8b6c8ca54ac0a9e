//! The real KDF binary (`../shared/kdf-reference/kdf`, built from KDF's own source) as a test
//! tool: started as its own process with P2P off, on loopback, on a port of its own, and talked
//! to over real HTTP, like anvil or ElectrumX. Never linked; none of its code is here.

use kdfd::client::Client;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the reference binary is: `KDF_REFERENCE_BIN`, else `shared/kdf-reference/kdf` beside
/// the repository (where the workplace and CI put it).
pub fn kdf_reference_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KDF_REFERENCE_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kdf-reference/kdf")
}

/// A running KDF; killed on drop.
pub struct KdfRef {
    child: Child,
    pub addr: SocketAddr,
    pub userpass: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl KdfRef {
    /// Starts KDF in Iguana mode with `passphrase` on the coins file `coins` and waits until it
    /// answers `version`.
    pub async fn start(coins: &Path, passphrase: &str, userpass: &str) -> KdfRef {
        let bin = kdf_reference_bin();
        assert!(
            bin.is_file(),
            "the reference KDF binary is missing at {} (set KDF_REFERENCE_BIN)",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let conf = json!({
            "gui": "kdfd-differential", "netid": 8762, "passphrase": passphrase,
            "rpc_password": userpass, "rpcport": port, "disable_p2p": true,
            "i_am_seed": false, "dbdir": dir.path().join("db"),
        });
        std::fs::create_dir_all(dir.path().join("db")).expect("dbdir");
        let log = std::fs::File::create(dir.path().join("kdf.log")).expect("log file");
        let child = Command::new(&bin)
            .arg(conf.to_string())
            .env("MM_COINS_PATH", coins)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn the reference KDF");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let k = KdfRef {
            child,
            addr,
            userpass: userpass.to_string(),
            _dir: dir,
        };
        let start = Instant::now();
        loop {
            if let Ok(mut c) = Client::connect(addr).await {
                if let Ok((200, v)) = c.post_json(&json!({"method": "version"})).await {
                    if v["result"].is_string() {
                        return k;
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the reference KDF did not answer within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One POST; (status, JSON body).
    pub async fn post(&self, body: &Value) -> (u16, Value) {
        let mut c = Client::connect(self.addr).await.expect("connect to KDF");
        c.post_json(body).await.expect("KDF answers")
    }
}

impl Drop for KdfRef {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
