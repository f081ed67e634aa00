//! Background workers. Postgres starts them only for a library in shared_preload_libraries, so
//! each registers from _PG_init while that list loads, and decides there whether its settings
//! want it:
//! - `inference`: with ettin.inference = shared, supervises ettin-inferd, the process that owns
//!   the models (the SQL functions send it their requests).
//! - `sync`: always when preloaded; fills the vectors of async syncs (sql/sync.sql).

use pgrx::pg_sys;

mod inference;
pub mod sync;

/// Called from _PG_init: register the background workers ettin's settings ask for.
pub fn register_if_preloading() {
    // SAFETY: a plain global the postmaster sets while loading shared_preload_libraries.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    inference::register();
    sync::register();
}
