//! The per-transaction memo of recent calls: Postgres evaluates a STABLE call with constant
//! arguments at plan time and again in the executor; both reranking and embedding key their
//! recent results by the transaction and a digest of everything the result depends on.

use ettin_engine::memo::CallKey;
use pgrx::prelude::*;

use crate::guc;
use crate::models::Task;

/// This backend's current local transaction id: the scope of [`RECENT_CALLS`].
pub(crate) fn local_transaction_id() -> u64 {
    // SAFETY: MyProc is this backend's PGPROC, set before any SQL function can run.
    unsafe {
        #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15", feature = "pg16"))]
        let lxid = (*pg_sys::MyProc).lxid;
        #[cfg(any(feature = "pg17", feature = "pg18"))]
        let lxid = (*pg_sys::MyProc).vxid.lxid;
        lxid as u64
    }
}

/// The part of a call's memo key every function shares: the model the call resolves to, its
/// graph, the call's options and every setting that changes results (device, inference mode).
pub(crate) fn call_key_for(
    task: Task,
    model_name: Option<&str>,
    options: &impl std::fmt::Debug,
) -> CallKey {
    let mut key = CallKey::new(match task {
        Task::Rerank => "score",
        Task::Embed => "embed",
    });
    key.add(guc::string(&guc::MODEL_DIR).as_bytes())
        .add(
            model_name
                .map_or_else(|| task.default_model(), str::to_owned)
                .as_bytes(),
        )
        .add(task.onnx_file().unwrap_or_default().as_bytes())
        .add(
            format!(
                "{options:?} {:?} {:?} {} {}",
                guc::INFERENCE.get(),
                guc::DEVICE.get(),
                guc::CUDA_DEVICE_ID.get(),
                guc::CUDA_TF32.get()
            )
            .as_bytes(),
        );
    key
}
