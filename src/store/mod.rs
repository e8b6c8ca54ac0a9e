//! kdfd's per-wallet SQLite database, `<db_root>/<rmd160 hex>/kdfd.sqlite`.
//!
//! All SQLite work runs on dedicated std threads owned by the `Store`: callers send boxed
//! closures over a channel and get the answer through a tokio oneshot, so no tokio worker ever
//! blocks on disk I/O or a lock. Writes (`call`, `submit`) go to one connection on one thread:
//! no SQLITE_BUSY between our own writers, and they run in submission order. `read` runs on a
//! second, query-only connection on its own thread, each job in one read transaction: WAL lets
//! it read a committed snapshot while the writer works, so an RPC page never waits behind a
//! sync's commit (its fsync) and sees every write whose `call` has returned.
//!
//! Durability: WAL journal with `synchronous=FULL`. WAL+NORMAL already survives a killed
//! process (kill -9: committed pages are in the OS cache), but can lose the last commits on
//! power loss; FULL fsyncs the WAL at every commit, so an acknowledged write (e.g. an address
//! counter the user was shown) survives power loss too. Our write rate is low (one commit per
//! RPC or per history batch), so the fsync is affordable.
//!
//! Schema: `PRAGMA user_version` = number of migrations applied. Migrations are an ordered
//! list of SQL strings; adding one is appending one line to `MIGRATIONS`. A database from a
//! newer kdfd (user_version > known) is refused rather than misread.

mod hd;

pub use hd::HdAccountRow;

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

/// Migration i (0-based) takes the schema from version i to i+1. Append only, never edit.
pub const MIGRATIONS: &[&str] = &[
    // v1: HD accounts (KDF's hd_account columns; the wallet is the database, not a column).
    "CREATE TABLE hd_account (
        coin TEXT NOT NULL,
        account_id INTEGER NOT NULL,
        account_xpub TEXT NOT NULL,
        external_addresses_number INTEGER NOT NULL,
        internal_addresses_number INTEGER NOT NULL,
        PRIMARY KEY (coin, account_id)
    );",
    // v2: transaction history (queries in src/history/db.rs): one row per (coin, tx), with the key
    // of the wallet script set its details were derived for (a changed set, e.g. a new HD
    // address, means re-deriving that row); and the wallet addresses each tx touches.
    "CREATE TABLE tx_history (
        coin TEXT NOT NULL,
        tx_hash TEXT NOT NULL,
        height INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        details TEXT NOT NULL,
        scripts_key TEXT NOT NULL,
        PRIMARY KEY (coin, tx_hash)
    );
    CREATE INDEX tx_history_order ON tx_history (coin, height);
    CREATE TABLE tx_address (
        coin TEXT NOT NULL,
        tx_hash TEXT NOT NULL,
        address TEXT NOT NULL,
        PRIMARY KEY (coin, tx_hash, address)
    );",
    // v3: the reads that must not touch the (large) details, from indexes alone. The page order
    // of `my_tx_history` (src/history/pages.rs): unmined (height 0) by hash, then height
    // descending, ties by hash (`tx_history_order` did not cover the hash, so every page read
    // and sorted every row). And what a sync step knows of each stored tx (`db::known`), which
    // read every row up to `scripts_key`, after the details.
    "DROP INDEX tx_history_order;
    CREATE INDEX tx_history_page ON tx_history (coin, height DESC, tx_hash);
    CREATE INDEX tx_history_known ON tx_history (coin, tx_hash, height, timestamp, scripts_key);",
];

/// The database file name inside the wallet's directory.
pub const DB_FILE: &str = "kdfd.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database schema version {found} is newer than this kdfd supports ({supported}); use a newer kdfd")]
    TooNew { found: i64, supported: usize },
    #[error("database I/O error: {0}")]
    Io(String),
    #[error("invalid store argument: {0}")]
    Invalid(String),
    #[error("the database thread has stopped")]
    Closed,
}

/// `<db_root>/<wallet_id_hex>/kdfd.sqlite`, creating the directory. The id must be hex (it is
/// the wallet's rmd160), which also keeps it from naming another path.
pub fn db_path(db_root: &Path, wallet_id_hex: &str) -> Result<PathBuf, StoreError> {
    if wallet_id_hex.is_empty() || !wallet_id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Invalid(format!(
            "wallet id '{wallet_id_hex}' is not hex"
        )));
    }
    let dir = db_root.join(wallet_id_hex);
    crate::private_fs::create_dir(&dir)
        .map_err(|e| StoreError::Io(format!("creating '{}': {e}", dir.display())))?;
    Ok(dir.join(DB_FILE))
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// A handle to the database thread. Cheap to clone; the thread and its connection end when
/// the last clone is dropped (after the queued jobs ran).
#[derive(Clone)]
pub struct Store {
    tx: Arc<mpsc::Sender<Job>>,
    rd: Arc<mpsc::Sender<ReadJob>>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating) the database and applies pending migrations. Blocks the calling
    /// thread until that is done: call it at start-up or inside `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Self::open_with(path.as_ref(), MIGRATIONS)
    }

    pub(crate) fn open_with(
        path: &Path,
        migrations: &'static [&'static str],
    ) -> Result<Store, StoreError> {
        // Owner-only before SQLite creates it; its -wal and -shm take the same mode.
        let io = |e: std::io::Error| StoreError::Io(format!("'{}': {e}", path.display()));
        crate::private_fs::private_file(path).map_err(io)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            crate::private_fs::tighten_file(Path::new(&side)).map_err(io)?;
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), StoreError>>();
        let p = path.to_path_buf();
        std::thread::Builder::new()
            .name("kdfd-sqlite".into())
            .spawn(move || {
                let mut conn = match init(&p, migrations) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut since_checkpoint = 0usize;
                loop {
                    let job = if since_checkpoint == 0 {
                        match rx.recv() {
                            Ok(job) => job,
                            Err(_) => break,
                        }
                    } else {
                        match rx.recv_timeout(CHECKPOINT_IDLE) {
                            Ok(job) => job,
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                checkpoint(&conn);
                                since_checkpoint = 0;
                                continue;
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    };
                    // A panicking job drops its answer channel (the caller sees Closed) but
                    // must not take the thread, and every later call, down with it.
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
                    since_checkpoint += 1;
                    if since_checkpoint >= CHECKPOINT_EVERY {
                        checkpoint(&conn);
                        since_checkpoint = 0;
                    }
                }
            })
            .map_err(|e| StoreError::Io(format!("spawning the database thread: {e}")))?;
        ready_rx.recv().map_err(|_| StoreError::Closed)??;
        // After the writer migrated: the reader sees the current schema.
        let rd = spawn_reader(path)?;
        Ok(Store {
            tx: Arc::new(tx),
            rd: Arc::new(rd),
            path: Arc::new(path.to_path_buf()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the database thread and returns its result. `f` may open a transaction
    /// (`conn.transaction()`); it must not block on anything but SQLite.
    pub async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f).await
    }

    /// Queues `f` now and returns its result to await later, so a caller can go on (fetch the
    /// next chunk) while the database thread writes. Jobs run in the order they were queued.
    pub fn submit<R, F>(&self, f: F) -> impl std::future::Future<Output = Result<R, StoreError>>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        let queued = self.tx.send(job).map_err(|_| StoreError::Closed);
        async move {
            queued?;
            rx.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// Runs the read-only `f` on the read connection, in one read transaction (one snapshot of
    /// committed data), beside whatever the writer is doing.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        self.rd.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.call(|c| Ok(user_version(c)?)).await
    }
}

fn user_version(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// WAL checkpoints run on the writer thread when its queue has been empty this long, or after
/// `CHECKPOINT_EVERY` jobs without such a pause (so the WAL stays bounded under steady load).
/// SQLite's own automatic checkpoint (at 1 000 WAL pages) ran inside whichever commit crossed
/// the mark: ~10 ms added to one acknowledged write, e.g. the last chunk of a history sync.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_millis(100);
const CHECKPOINT_EVERY: usize = 256;

/// PASSIVE: copies what no reader still needs and never waits. A failure only leaves the WAL
/// longer; the next checkpoint retries.
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(error = %e, "sqlite checkpoint failed");
    }
}

/// The read connection's thread: query-only, every job inside `BEGIN … COMMIT` so that its
/// statements share one snapshot.
fn spawn_reader(path: &Path) -> Result<mpsc::Sender<ReadJob>, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA query_only=1;")?;
    // Reads the schema now, not in the first RPC that reads.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let (tx, rx) = mpsc::channel::<ReadJob>();
    std::thread::Builder::new()
        .name("kdfd-sqlite-rd".into())
        .spawn(move || {
            let mut conn = conn;
            while let Ok(job) = rx.recv() {
                let Ok(t) = conn.transaction() else {
                    drop(job);
                    continue;
                };
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&t)));
                let _ = t.finish();
            }
        })
        .map_err(|e| StoreError::Io(format!("spawning the database read thread: {e}")))?;
    Ok(tx)
}

/// Opens the connection, sets the pragmas and migrates, all on the database thread.
fn init(path: &Path, migrations: &[&str]) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io(format!(
            "journal_mode WAL refused (got {mode})"
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=0;",
    )?;
    // IMMEDIATE: take the write lock before reading user_version, so two processes opening
    // the same file cannot both apply a migration.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found = user_version(&tx)?;
    if found < 0 || found as usize > migrations.len() {
        return Err(StoreError::TooNew {
            found,
            supported: migrations.len(),
        });
    }
    for sql in &migrations[found as usize..] {
        tx.execute_batch(sql)?;
    }
    // PRAGMA takes no bound parameters; the value is our own integer.
    tx.execute_batch(&format!("PRAGMA user_version = {}", migrations.len()))?;
    tx.commit()?;
    Ok(conn)
}

#[cfg(test)]
mod tests;
