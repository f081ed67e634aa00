//! ettin: rerank search results inside Postgres with cross-encoder models.
//!
//! This crate is the SQL layer only: it reads settings, converts types and turns engine errors
//! into Postgres ERRORs. Models, tokenization, batching and ONNX Runtime live in `ettin-engine`.

use pgrx::prelude::*;

mod api;
mod embed;
mod error;
mod guc;
mod worker;

::pgrx::pg_module_magic!(name, version);

/// Registers settings (and, when preloaded with ettin.inference = shared, the supervisor
/// background worker). ONNX Runtime and models load on first use: threads created here would be
/// lost when the postmaster forks.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::register();
    worker::register_if_preloading();
}
