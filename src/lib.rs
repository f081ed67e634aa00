//! ettin: search models inside Postgres — rerank with cross-encoders, embed text for pgvector.
//!
//! This crate is the SQL layer only: it reads settings, converts types and turns engine errors
//! into Postgres ERRORs. Models, tokenization, batching and ONNX Runtime live in `ettin-engine`.
//!
//! - SQL surfaces, one file each: `rerank` (rerank_score, ettin_rerank), `embed` (ettin_embed,
//!   ettin_embed_table) and `chunk` (ettin_chunk: long texts into chunks that fit an embedder),
//!   `sync` (ettin_sync_start/stop: vectors that follow their text; its SQL in sql/sync.sql),
//!   `admin` (ettin_info, ettin_models, ettin_download).
//! - What they share: `models` (which model a call means, loaded here or asked of the shared
//!   worker), `call_memo` (a statement computes once), `guc` (settings), `error` (SQLSTATEs),
//!   `paths` (`$libdir`, the ONNX Runtime library, the worker's socket).
//! - `workers/`: background workers registered from shared_preload_libraries (inference
//!   supervisor, sync launcher and workers).

use pgrx::prelude::*;

mod admin;
mod call_memo;
mod chunk;
mod embed;
mod error;
mod guc;
mod models;
mod paths;
mod rerank;
mod sync;
mod workers;

::pgrx::pg_module_magic!(name, version);

/// Registers settings (and, when preloaded, the background workers the settings ask for).
/// ONNX Runtime and models load on first use: threads created here would be lost when the
/// postmaster forks.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::register();
    workers::register_if_preloading();
}
