//! The sync worker (async syncs, sql/sync.sql): a launcher started with the server — after
//! recovery, so never on a hot standby, and again after a promotion or a crash restart — starts
//! one worker per database; a database without syncs lets its worker exit, and gets one again
//! when ettin_sync_start pokes the launcher.
//!
//! A database's worker runs each due sync's batches (`ettin_sync_batch`), one transaction per
//! batch, acting as the table's owner inside a security-restricted operation (as REFRESH
//! MATERIALIZED VIEW does): the owner's triggers and index expressions run with the owner's
//! rights, never the superuser's. It sleeps on its latch when nothing is pending; a commit that
//! leaves work sets it (src/sync.rs), and it wakes on its own for a sync's backoff or every
//! minute.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, BgWorkerStartTime,
    DynamicBackgroundWorker, SignalWakeFlags,
};
use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use pgrx::spi::Spi;

/// Databases a server can run workers for at once.
const MAX_DATABASES: usize = 64;
/// Batches of one sync before the worker turns to the next: no sync starves the others.
const BATCHES_PER_TURN: usize = 20;

/// Set in the postmaster when ettin is preloaded; inherited by every backend.
pub static WORKER_PRELOADED: AtomicBool = AtomicBool::new(false);

/// The pids a backend needs to wake the launcher and its database's worker.
#[derive(Clone, Copy)]
pub struct SyncPids {
    launcher: i32,
    workers: [(u32, i32); MAX_DATABASES],
}

impl Default for SyncPids {
    fn default() -> Self {
        SyncPids {
            launcher: 0,
            workers: [(0, 0); MAX_DATABASES],
        }
    }
}

// SAFETY: plain integers, no pointers.
unsafe impl PGRXSharedMemory for SyncPids {}

pub static SYNC_PIDS: PgLwLock<SyncPids> = unsafe { PgLwLock::new(c"ettin_sync_pids") };

pub fn launcher_pid() -> Option<i32> {
    if !WORKER_PRELOADED.load(Ordering::Relaxed) {
        return None;
    }
    Some(SYNC_PIDS.share().launcher).filter(|p| *p > 0)
}

pub fn worker_pid(database: u32) -> Option<i32> {
    if !WORKER_PRELOADED.load(Ordering::Relaxed) {
        return None;
    }
    let pids = SYNC_PIDS.share();
    pids.workers
        .iter()
        .find(|(db, pid)| *db == database && *pid > 0)
        .map(|(_, pid)| *pid)
}

/// A database's slot when its worker found no syncs there: no worker until a sync starts.
const QUIET: i32 = -1;
/// A database's slot when a sync started there (or its worker stopped): start a worker.
const WANTED: i32 = -2;

fn worker_state(database: u32) -> i32 {
    SYNC_PIDS
        .share()
        .workers
        .iter()
        .find(|(db, _)| *db == database)
        .map_or(0, |(_, pid)| *pid)
}

/// ettin_sync_start in `database`: a worker is wanted there. Returns the pids to signal: the
/// launcher (to start one) and the running worker (to look at its syncs again).
pub fn want_worker_in(database: u32) -> (Option<i32>, Option<i32>) {
    if worker_state(database) <= 0 {
        set_worker_pid(database, WANTED);
    }
    (launcher_pid(), worker_pid(database))
}

/// Record the state of `database`: its worker's pid, QUIET or WANTED.
fn set_worker_pid(database: u32, pid: i32) {
    let mut pids = SYNC_PIDS.exclusive();
    let slot = pids
        .workers
        .iter()
        .position(|(db, _)| *db == database)
        .or_else(|| pids.workers.iter().position(|(_, p)| *p == 0));
    if let Some(i) = slot {
        pids.workers[i] = (database, pid);
    }
}

/// From _PG_init while shared_preload_libraries loads: shared memory and the launcher.
pub fn register() {
    pgrx::pg_shmem_init!(SYNC_PIDS);
    WORKER_PRELOADED.store(true, Ordering::Relaxed);
    BackgroundWorkerBuilder::new("ettin sync launcher")
        .set_type("ettin sync launcher")
        .set_function("ettin_sync_launcher_main")
        .set_library("ettin")
        .enable_spi_access()
        // After recovery only: a hot standby's tables are read-only, and a promotion starts it.
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(Duration::from_secs(5)))
        .load();
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn ettin_sync_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(Some("postgres"), None);
    // SAFETY: MyProcPid is this process's pid.
    SYNC_PIDS.exclusive().launcher = unsafe { pg_sys::MyProcPid };
    let mut running: HashMap<u32, DynamicBackgroundWorker> = HashMap::new();
    // The first round looks at every database (after a start, a crash or a promotion nothing is
    // known); later ones only where a sync started or a worker stopped short: a database without
    // syncs never has a session of ours open (DROP DATABASE would have to wait for it).
    let mut first_round = true;
    loop {
        let databases: Vec<(u32, String)> = BackgroundWorker::transaction(|| {
            Spi::connect(|client| {
                client
                    .select(
                        "SELECT oid::int8, datname::text FROM pg_database \
                         WHERE datallowconn AND NOT datistemplate ORDER BY oid",
                        None,
                        &[],
                    )
                    .map(|rows| {
                        rows.filter_map(|r| {
                            Some((r.get::<i64>(1).ok()?? as u32, r.get::<String>(2).ok()??))
                        })
                        .collect()
                    })
                    .unwrap_or_default()
            })
        });
        running.retain(|db, handle| {
            if !matches!(handle.pid(), Err(BackgroundWorkerStatus::Stopped)) {
                return true; // running, or not started yet
            }
            // It exited: for want of syncs (QUIET), or stopped or failed: then start another.
            if worker_state(*db) != QUIET {
                set_worker_pid(*db, WANTED);
            }
            false
        });
        for (db, name) in databases {
            if running.contains_key(&db) || !(first_round || worker_state(db) == WANTED) {
                continue;
            }
            match BackgroundWorkerBuilder::new(&format!("ettin sync {name}"))
                .set_type("ettin sync")
                .set_function("ettin_sync_worker_main")
                .set_library("ettin")
                .enable_spi_access()
                .set_start_time(BgWorkerStartTime::RecoveryFinished)
                .set_restart_time(None)
                .set_argument(Some(pg_sys::Datum::from(db)))
                .set_extra(&name)
                // SAFETY: MyProcPid is this process's pid.
                .set_notify_pid(unsafe { pg_sys::MyProcPid })
                .load_dynamic()
            {
                Ok(handle) => {
                    running.insert(db, handle);
                }
                Err(e) => {
                    log!("ettin sync launcher: cannot start a worker for database {name}: {e:?}");
                }
            }
        }
        first_round = false;
        if !BackgroundWorker::wait_latch(Some(Duration::from_secs(10))) {
            break; // the postmaster died
        }
        if BackgroundWorker::sigterm_received() {
            break;
        }
        // SIGHUP: a poke (ettin_sync_start) or a configuration reload: either way, a new round.
        let _ = BackgroundWorker::sighup_received();
    }
    SYNC_PIDS.exclusive().launcher = 0;
}

/// A due async sync: its table, target column and owner.
struct DueSync {
    table: pg_sys::Oid,
    target: String,
    owner: pg_sys::Oid,
}

/// The extension's schema in this database, None if it is not installed.
fn extension_schema() -> Option<String> {
    Spi::get_one::<String>(
        "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
         WHERE e.extname = 'ettin'",
    )
    .ok()
    .flatten()
}

/// (every sync of this database, the async ones due now, seconds until the next backoff ends).
fn load_syncs(schema: &str) -> (usize, Vec<DueSync>, Option<f64>) {
    let query = format!(
        "SELECT c.tbl::oid, c.target_column::text, r.relowner, \
                (c.mode = 'async' AND (c.retry_at IS NULL OR c.retry_at <= now())) AS due, \
                extract(epoch FROM c.retry_at - now())::float8 AS wait \
         FROM {schema}.ettin_sync_config c JOIN pg_class r ON r.oid = c.tbl AND r.relkind IN ('r', 'p')"
    );
    Spi::connect(|client| {
        let rows = client.select(&query, None, &[]).ok()?;
        let mut total = 0;
        let mut due = Vec::new();
        let mut wait: Option<f64> = None;
        for row in rows {
            total += 1;
            let (Ok(Some(table)), Ok(Some(target)), Ok(Some(owner))) = (
                row.get::<pg_sys::Oid>(1),
                row.get::<String>(2),
                row.get::<pg_sys::Oid>(3),
            ) else {
                continue;
            };
            if row.get::<bool>(4).ok().flatten() == Some(true) {
                due.push(DueSync {
                    table,
                    target,
                    owner,
                });
            } else if let Ok(Some(w)) = row.get::<f64>(5) {
                wait = Some(wait.map_or(w, |x: f64| x.min(w)));
            }
        }
        Some((total, due, wait))
    })
    .unwrap_or((0, Vec::new(), None))
}

/// One batch of one sync, in its own transaction, as the table's owner. Returns the rows written
/// (-1: the sync failed as a whole and waits for its backoff).
fn run_batch(schema: &str, sync: &DueSync) -> i32 {
    BackgroundWorker::transaction(|| {
        let (mut saved_user, mut saved_context) = (pg_sys::Oid::INVALID, 0);
        // SAFETY: plain reads and writes of this backend's current user and security context,
        // restored below (an ERROR restores them as part of the transaction's abort).
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
            pg_sys::SetUserIdAndSecContext(
                sync.owner,
                saved_context | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
            );
        }
        let written = Spi::get_one_with_args::<i32>(
            &format!("SELECT {schema}.ettin_sync_batch($1::oid::regclass, $2::name)"),
            &[sync.table.into(), sync.target.as_str().into()],
        );
        // SAFETY: as above.
        unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
        match written {
            Ok(Some(n)) => n,
            Ok(None) => 0,
            Err(e) => {
                warning!("ettin sync: batch of table {:?} failed: {e}", sync.table);
                -1
            }
        }
    })
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn ettin_sync_worker_main(arg: pg_sys::Datum) {
    let database = arg.value() as u32;
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let name = BackgroundWorker::get_extra().to_owned();
    BackgroundWorker::connect_worker_to_spi(Some(&name), None);
    // SAFETY: MyProcPid is this process's pid.
    set_worker_pid(database, unsafe { pg_sys::MyProcPid });
    loop {
        let (schema, total, due, wait) =
            BackgroundWorker::transaction(|| match extension_schema() {
                Some(schema) => {
                    let (total, due, wait) = load_syncs(&schema);
                    (Some(schema), total, due, wait)
                }
                None => (None, 0, Vec::new(), None),
            });
        let Some(schema) = schema.filter(|_| total > 0) else {
            set_worker_pid(database, QUIET); // no syncs here: the launcher looks again later
            return;
        };
        let mut more = false;
        for sync in &due {
            for _ in 0..BATCHES_PER_TURN {
                if BackgroundWorker::sigterm_received() {
                    set_worker_pid(database, 0);
                    return;
                }
                let written = run_batch(&schema, sync);
                if written <= 0 {
                    break;
                }
                more = true;
            }
        }
        if more {
            continue; // work was left: another round at once
        }
        let sleep = wait
            .map(|s| Duration::from_secs_f64(s.clamp(0.05, 60.0)))
            .unwrap_or(Duration::from_secs(60));
        if !BackgroundWorker::wait_latch(Some(sleep)) || BackgroundWorker::sigterm_received() {
            break;
        }
    }
    set_worker_pid(database, 0);
}
