//! Connections shared across coins: every coin that lists the same server (host, port, TLS mode)
//! talks to it over one connection, so a batch that touches many coins on one server costs one
//! JSON-RPC array, not one per coin.

use super::budget::Meter;
use super::{Connection, ElectrumError, ServerSpec, Wire};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

type Key = (String, u16, bool, bool);

/// The live connections by server; a connection closes when the last coin using it lets go.
pub struct Hub {
    client_name: String,
    wire: Wire,
    conns: Mutex<HashMap<Key, Weak<Connection>>>,
    /// Each server's cost estimate, kept across reconnects while it is above zero.
    meters: Mutex<HashMap<Key, Arc<Mutex<Meter>>>>,
    connecting: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Hub {
    /// A hub whose connections introduce themselves as `client_name` and write as `wire` says
    /// (array size, cost budget).
    pub fn new(client_name: String, wire: Wire) -> Hub {
        Hub {
            client_name,
            wire,
            conns: Mutex::default(),
            meters: Mutex::default(),
            connecting: Mutex::default(),
        }
    }

    fn key(spec: &ServerSpec) -> Key {
        (
            spec.host.to_ascii_lowercase(),
            spec.port,
            spec.tls,
            spec.verify_cert,
        )
    }

    fn live(&self, key: &Key) -> Option<Arc<Connection>> {
        let mut conns = lock(&self.conns);
        match conns.get(key).and_then(Weak::upgrade) {
            Some(c) if c.is_alive() => Some(c),
            _ => {
                conns.remove(key);
                None
            }
        }
    }

    /// The live connection to a server, or a new one (one connect at a time per server).
    pub async fn connect(&self, spec: &ServerSpec) -> Result<Arc<Connection>, ElectrumError> {
        let key = Self::key(spec);
        if let Some(c) = self.live(&key) {
            return Ok(c);
        }
        let gate = lock(&self.connecting)
            .entry(key.clone())
            .or_default()
            .clone();
        let _one_at_a_time = gate.lock().await;
        if let Some(c) = self.live(&key) {
            return Ok(c);
        }
        let meter = {
            let now = tokio::time::Instant::now();
            let mut meters = lock(&self.meters);
            // A meter back at zero, with no connection on it, holds nothing worth keeping.
            meters.retain(|_, m| Arc::strong_count(m) > 1 || lock(m).level(now) > 0.0);
            match meters.get(&key) {
                Some(m) => {
                    lock(m).reconnected(now);
                    m.clone()
                }
                None => {
                    let m = super::budget::new_meter();
                    meters.insert(key.clone(), m.clone());
                    m
                }
            }
        };
        let opened = Connection::open(spec, &self.client_name, self.wire, meter).await;
        let mut conns = lock(&self.conns);
        // Forget servers nobody uses any more, so both maps stay as small as the live set.
        conns.retain(|_, w| w.strong_count() > 0);
        if let Ok(conn) = &opened {
            conns.insert(key, Arc::downgrade(conn));
        }
        lock(&self.connecting)
            .retain(|k, gate| Arc::strong_count(gate) > 1 || conns.contains_key(k));
        opened
    }
}
