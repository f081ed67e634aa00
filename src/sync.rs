//! Keeping vectors in sync with their text: `ettin_sync_start`, `ettin_sync_stop`, the
//! `ettin_syncs` view and `ettin_sync_failures` (all in sql/sync.sql: triggers and bookkeeping
//! are plain SQL), plus the few things SQL cannot do: wake the database's sync worker when a
//! transaction that left work commits, and say whether the worker runs at all. The worker itself
//! is workers/sync.rs.

use std::cell::Cell;

use pgrx::prelude::*;

use crate::workers::sync::{want_worker_in, worker_pid, WORKER_PRELOADED};

thread_local! {
    /// This transaction cleared a vector the worker must fill: wake it when it commits.
    static WAKE_AT_COMMIT: Cell<bool> = const { Cell::new(false) };
    /// This transaction started a sync: want a worker for this database when it commits.
    static POKE_AT_COMMIT: Cell<bool> = const { Cell::new(false) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Signals go out at commit, not before: a woken worker could not see the rows (or the new
/// sync) yet, and an aborted transaction leaves no work.
fn at_commit(flag: &'static std::thread::LocalKey<Cell<bool>>) {
    flag.with(|f| f.set(true));
    if !CALLBACK_REGISTERED.with(|r| r.replace(true)) {
        // SAFETY: registers a plain C callback for this backend's lifetime.
        unsafe { pg_sys::RegisterXactCallback(Some(at_transaction_end), std::ptr::null_mut()) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn at_transaction_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    let committed = match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT => true,
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => false,
        _ => return, // pre-commit, prepare: not the end yet
    };
    let (wake, poke) = (
        WAKE_AT_COMMIT.with(|w| w.replace(false)),
        POKE_AT_COMMIT.with(|p| p.replace(false)),
    );
    if !committed || !(wake || poke) {
        return;
    }
    // SAFETY: MyDatabaseId is this backend's database, set at connection.
    let database: u32 = unsafe { pg_sys::MyDatabaseId }.into();
    let (launcher, worker) = if poke {
        want_worker_in(database)
    } else {
        (None, worker_pid(database))
    };
    // SAFETY: signalling by pid: SIGHUP makes the launcher look for wanted workers, SIGUSR1 sets
    // a worker's latch (procsignal); a stale pid costs nothing.
    unsafe {
        if let Some(pid) = launcher {
            libc::kill(pid, libc::SIGHUP);
        }
        if let Some(pid) = worker {
            libc::kill(pid, libc::SIGUSR1);
        }
    }
}

/// Called by the sync trigger when it clears a target: the database's worker is woken when the
/// transaction commits.
#[pg_extern(volatile, parallel_unsafe)]
fn ettin_sync_wake() {
    at_commit(&WAKE_AT_COMMIT);
}

/// Whether the sync worker runs: only when ettin was loaded by shared_preload_libraries.
#[pg_extern(stable, parallel_safe)]
fn ettin_sync_worker_available() -> bool {
    WORKER_PRELOADED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Called by ettin_sync_start: when the transaction commits, the launcher starts this database's
/// worker if it has none, and a running one looks at its syncs again.
#[pg_extern(volatile, parallel_unsafe)]
fn ettin_sync_poke() {
    at_commit(&POKE_AT_COMMIT);
}

pgrx::extension_sql_file!(
    "../sql/sync.sql",
    name = "sync",
    requires = [
        "ettin_embed_table",
        ettin_sync_wake,
        ettin_sync_worker_available,
        ettin_sync_poke
    ],
);
