//! The moves this process is driving, by slug: a move runs as a task of its own (a copy outlasts any
//! reconcile), and the Tenant's reconciles read its progress from here for the condition message. What a
//! move has done is in Landlord's records, not here: a process that dies loses only the progress figures.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

#[derive(Default)]
pub struct Moves(Mutex<HashMap<String, Running>>);

struct Running {
    progress: Arc<Progress>,
    task: AbortHandle,
}

/// What a running move reports.
pub struct Progress {
    started: Instant,
    /// Bytes through the pipe so far (the copy's own counter).
    pub copied: Arc<AtomicU64>,
    note: Mutex<String>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            started: Instant::now(),
            copied: Arc::default(),
            note: Mutex::new("starting".into()),
        }
    }

    /// What the move is doing, in a few words (`3 sessions left`, `copying`).
    pub fn note(&self, note: impl Into<String>) {
        *self.note.lock().unwrap_or_else(|e| e.into_inner()) = note.into();
    }

    pub fn current(&self) -> (String, u64, Duration) {
        let note = self.note.lock().unwrap_or_else(|e| e.into_inner()).clone();
        (
            note,
            self.copied.load(Ordering::Relaxed),
            self.started.elapsed(),
        )
    }
}

impl Moves {
    /// The progress of the move of `slug`, if this process drives it now.
    pub fn progress(&self, slug: &str) -> Option<Arc<Progress>> {
        let running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        running
            .get(slug)
            .filter(|r| !r.task.is_finished())
            .map(|r| r.progress.clone())
    }

    /// Drives the move of `slug` with `drive`, unless this process drives it already; returns its progress.
    pub fn drive<F, Fut>(self: &Arc<Self>, slug: &str, drive: F) -> Arc<Progress>
    where
        F: FnOnce(Arc<Progress>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|_, r| !r.task.is_finished());
        if let Some(r) = running.get(slug) {
            return r.progress.clone();
        }
        let progress = Arc::new(Progress::new());
        let task = tokio::spawn(drive(progress.clone())).abort_handle();
        running.insert(
            slug.to_string(),
            Running {
                progress: progress.clone(),
                task,
            },
        );
        progress
    }

    /// The Lease is lost: another replica takes the moves over from the records (their session locks go
    /// with these tasks' connections).
    pub fn stop_all(&self) {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (_, r) in running.drain() {
            r.task.abort();
        }
    }
}
