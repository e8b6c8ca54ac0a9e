//! KDF's RPC-task protocol: long work (activation, account balances, withdraw) runs as a task
//! with a number; clients poll its status and may cancel it.
//!
//! - One process-wide id counter from 0, shared by every task kind (as KDF's).
//! - `status` answers `InProgress`/`UserActionRequired`/`Ok`/`Error`; with `forget_if_finished`
//!   (KDF's default) a finished task is dropped after that answer.
//! - Finished tasks are bounded: the GUI polls with `forget_if_finished: false`, so the oldest
//!   finished tasks beyond `keep_finished` are forgotten instead of piling up.
//! - Every status change is published (task id, the SSE `client_id`, the status), for `TASK:<id>`
//!   events.
//!
//! Statuses are kept as JSON values because what a task reports is its method's wire shape; the
//! RPC layer builds them, this module only stores and hands them out.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// A task's state as `status` reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Still running; the details (a bare string for a unit variant).
    InProgress(Value),
    /// Waiting for the user (Trezor only in KDF; kdfd never asks).
    UserActionRequired(Value),
    /// Done: the method's result.
    Ok(Value),
    /// Failed: the full error object (`error`, `error_path`, `error_trace`, `error_type`, `error_data`).
    Error(Value),
}

impl Status {
    /// Whether the task is over.
    pub fn finished(&self) -> bool {
        matches!(self, Status::Ok(_) | Status::Error(_))
    }

    /// KDF's `{"status": .., "details": ..}` object.
    pub fn to_json(&self) -> Value {
        let (status, details) = match self {
            Status::InProgress(d) => ("InProgress", d),
            Status::UserActionRequired(d) => ("UserActionRequired", d),
            Status::Ok(d) => ("Ok", d),
            Status::Error(d) => ("Error", d),
        };
        serde_json::json!({"status": status, "details": details})
    }
}

/// Why a `status` or `cancel` request fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// No task of that kind with that id (never existed, forgotten, or being cancelled).
    #[error("No such task '{0}'")]
    NoSuchTask(u64),
    /// `cancel` on a finished task.
    #[error("Task is finished already")]
    Finished,
}

/// A status change, published for the event stream.
#[derive(Debug, Clone)]
pub struct Update {
    /// The task.
    pub task_id: u64,
    /// The SSE client its init named.
    pub client_id: u64,
    /// `{"status", "details"}`.
    pub status: Value,
}

struct Entry {
    kind: &'static str,
    client_id: u64,
    status: Status,
    abort: Option<tokio::task::AbortHandle>,
}

#[derive(Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    finished: VecDeque<u64>,
}

/// Every task of the process.
pub struct Tasks {
    next_id: AtomicU64,
    table: Arc<Mutex<Table>>,
    keep_finished: usize,
    updates: broadcast::Sender<Update>,
}

/// What a running task uses to report progress.
#[derive(Clone)]
pub struct Progress {
    id: u64,
    table: Arc<Mutex<Table>>,
    updates: broadcast::Sender<Update>,
}

impl Progress {
    /// Sets the `InProgress` details.
    pub fn set(&self, details: Value) {
        set_status(
            &self.table,
            &self.updates,
            self.id,
            Status::InProgress(details),
            0,
        );
    }

    /// The task's id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

fn lock(m: &Mutex<Table>) -> std::sync::MutexGuard<'_, Table> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn set_status(
    table: &Mutex<Table>,
    updates: &broadcast::Sender<Update>,
    id: u64,
    status: Status,
    keep_finished: usize,
) {
    let update = {
        let mut t = lock(table);
        let Some(e) = t.entries.get_mut(&id) else {
            return;
        };
        if e.status.finished() {
            return;
        }
        let finished = status.finished();
        e.status = status;
        let update = Update {
            task_id: id,
            client_id: e.client_id,
            status: e.status.to_json(),
        };
        if finished {
            e.abort = None;
            t.finished.push_back(id);
            while t.finished.len() > keep_finished.max(1) {
                if let Some(old) = t.finished.pop_front() {
                    t.entries.remove(&old);
                }
            }
        }
        update
    };
    // No subscriber is fine: the event is dropped, as KDF drops events for absent clients.
    let _ = updates.send(update);
}

impl Tasks {
    /// A task table that keeps at most `keep_finished` finished tasks.
    pub fn new(keep_finished: usize) -> Tasks {
        Tasks {
            next_id: AtomicU64::new(0),
            table: Arc::default(),
            keep_finished,
            updates: broadcast::channel(1024).0,
        }
    }

    /// Status changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.updates.subscribe()
    }

    /// Starts a task of `kind` on the runtime; answers its id at once. `initial` is the first
    /// `InProgress` details. The future's `Ok`/`Err` values become the `Ok`/`Error` details.
    pub fn spawn<F, Fut>(&self, kind: &'static str, client_id: u64, initial: Value, f: F) -> u64
    where
        F: FnOnce(Progress) -> Fut,
        Fut: Future<Output = Result<Value, Value>> + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let status = Status::InProgress(initial);
        let first = Update {
            task_id: id,
            client_id,
            status: status.to_json(),
        };
        lock(&self.table).entries.insert(
            id,
            Entry {
                kind,
                client_id,
                status,
                abort: None,
            },
        );
        let _ = self.updates.send(first);
        let progress = Progress {
            id,
            table: self.table.clone(),
            updates: self.updates.clone(),
        };
        let (table, updates, keep) = (self.table.clone(), self.updates.clone(), self.keep_finished);
        let work = f(progress);
        let handle = tokio::spawn(async move {
            let status = match work.await {
                Ok(v) => Status::Ok(v),
                Err(e) => Status::Error(e),
            };
            set_status(&table, &updates, id, status, keep);
        });
        // The task may already be done; only a running task keeps its abort handle.
        if let Some(e) = lock(&self.table).entries.get_mut(&id) {
            if !e.status.finished() {
                e.abort = Some(handle.abort_handle());
            }
        }
        id
    }

    /// The status of a task of `kind`; forgets a finished one when `forget` is set.
    pub fn status(&self, kind: &str, id: u64, forget: bool) -> Result<Status, TaskError> {
        let mut t = lock(&self.table);
        let e = t
            .entries
            .get(&id)
            .filter(|e| e.kind == kind)
            .ok_or(TaskError::NoSuchTask(id))?;
        let status = e.status.clone();
        if forget && status.finished() {
            t.entries.remove(&id);
            t.finished.retain(|&f| f != id);
        }
        Ok(status)
    }

    /// Cancels a running task of `kind`: its future is dropped (which undoes what it reserved)
    /// and the task is forgotten.
    pub fn cancel(&self, kind: &str, id: u64) -> Result<(), TaskError> {
        let mut t = lock(&self.table);
        let e = t
            .entries
            .get(&id)
            .filter(|e| e.kind == kind)
            .ok_or(TaskError::NoSuchTask(id))?;
        if e.status.finished() {
            return Err(TaskError::Finished);
        }
        if let Some(e) = t.entries.remove(&id) {
            if let Some(a) = e.abort {
                a.abort();
            }
        }
        Ok(())
    }

    /// Tasks held now (running and finished), for tests and the benchmark.
    pub fn len(&self) -> usize {
        lock(&self.table).entries.len()
    }

    /// Whether no task is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn ids_count_from_zero_across_kinds() {
        let t = Tasks::new(10);
        let a = t.spawn("a", 0, json!("Start"), |_| async { Ok(json!(1)) });
        let b = t.spawn("b", 0, json!("Start"), |_| async {
            Err(json!({"error": "x"}))
        });
        assert_eq!((a, b), (0, 1));
        settle().await;
        assert_eq!(t.status("a", 0, false), Ok(Status::Ok(json!(1))));
        // Another kind's manager does not know the id.
        assert_eq!(t.status("a", 1, false), Err(TaskError::NoSuchTask(1)));
        assert_eq!(
            t.status("b", 1, true),
            Ok(Status::Error(json!({"error": "x"})))
        );
        assert_eq!(t.status("b", 1, true), Err(TaskError::NoSuchTask(1)));
        assert_eq!(t.cancel("a", 0), Err(TaskError::Finished));
    }

    #[tokio::test]
    async fn progress_cancel_and_bounds() {
        let t = Tasks::new(3);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut updates = t.subscribe();
        let id = t.spawn("a", 7, json!("Start"), |p| async move {
            p.set(json!("Working"));
            let _ = rx.await;
            Ok(json!("done"))
        });
        settle().await;
        assert_eq!(
            t.status("a", id, true),
            Ok(Status::InProgress(json!("Working")))
        );
        let first = updates.recv().await.unwrap();
        assert_eq!((first.task_id, first.client_id), (id, 7));
        t.cancel("a", id).unwrap();
        drop(tx);
        assert_eq!(t.status("a", id, false), Err(TaskError::NoSuchTask(id)));
        for _ in 0..10 {
            t.spawn("a", 0, json!("Start"), |_| async { Ok(json!(0)) });
        }
        settle().await;
        assert_eq!(t.len(), 3, "only the newest finished tasks are kept");
    }
}
