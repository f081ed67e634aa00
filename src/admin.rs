//! What a DBA asks ettin about the server: `ettin_info()` (versions, library, CPU, worker),
//! `ettin_models()` (loaded models and their work) and `ettin_download()` (fetch a model ahead).

use std::path::PathBuf;

use ettin_engine::cpu::CpuFeatures;
use ettin_engine::model::UNSTATED_MAX_LENGTH;
use ettin_engine::registry;
use ettin_engine::shared;
use ettin_engine::{capped_max_length, EngineError};
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::error::OrRaise;
use crate::guc;
use crate::models::{download_model, is_superuser, runtime, shared_inference, Task};
use crate::paths::inference_socket;

fn worker_status() -> serde_json::Value {
    match shared::status(&inference_socket()) {
        Ok(status) => serde_json::to_value(status).unwrap_or_default(),
        Err(e) => serde_json::json!({ "error": e.message }),
    }
}

/// Version, ONNX Runtime library and execution providers (of this backend, or in shared mode of
/// the inference worker, with its queue and counters).
#[pg_extern(stable, parallel_safe)]
fn ettin_info() -> JsonB {
    let cpu = CpuFeatures::detect();
    let mut cpu_json = serde_json::to_value(&cpu).unwrap_or_default();
    cpu_json["int8_advice"] = cpu.int8_advice().into();
    if shared_inference() {
        return JsonB(serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "cpu": cpu_json,
            "inference": "shared",
            "worker": worker_status(),
            "model_dir": guc::string(&guc::MODEL_DIR),
            "model": guc::string(&guc::MODEL),
            "embed_model": guc::string(&guc::EMBED_MODEL),
            "hub_endpoint": guc::string(&guc::HUB_ENDPOINT),
        }));
    }
    let rt = runtime();
    JsonB(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "cpu": cpu_json,
        "inference": "backend",
        "onnxruntime": rt.version,
        "library": rt.library.display().to_string(),
        "providers": rt.providers,
        "cuda_available": rt.providers.iter().any(|p| p == "CUDAExecutionProvider"),
        "device_setting": format!("{:?}", guc::DEVICE.get()).to_lowercase(),
        "model_dir": guc::string(&guc::MODEL_DIR),
        "model": guc::string(&guc::MODEL),
        "embed_model": guc::string(&guc::EMBED_MODEL),
        "models_loaded": registry::loaded_count(),
        "hub_endpoint": guc::string(&guc::HUB_ENDPOINT),
    }))
}

/// Download a model (`org/name` or `org/name@revision`) from ettin.hub_endpoint into
/// ettin.model_dir ahead of time; returns its directory. Superuser only.
#[pg_extern(volatile)]
fn ettin_download(model: &str) -> String {
    if !is_superuser() {
        crate::error::raise_insufficient_privilege(
            "only superusers may call ettin_download()",
            "ask a superuser to download the model, or to set ettin.allow_download = 'all'",
        );
    }
    if guc::ALLOW_DOWNLOAD.get() == guc::AllowDownload::Off {
        crate::error::raise(
            EngineError::invalid("downloads are disabled (ettin.allow_download = off)")
                .with_hint("set ettin.allow_download to 'superuser' or 'all', or copy the model into ettin.model_dir"),
        );
    }
    let root = PathBuf::from(guc::string(&guc::MODEL_DIR));
    download_model(&root, model, Task::Rerank.onnx_file().as_deref())
        .display()
        .to_string()
}

/// The models this backend has loaded, how, and the work each has done in this backend
/// (times in milliseconds: tokenizing, inside ONNX Runtime, and whole calls).
#[pg_extern(stable, parallel_safe)]
fn ettin_models() -> TableIterator<
    'static,
    (
        name!(name, String),
        name!(path, String),
        name!(onnx_file, String),
        name!(layout, String),
        name!(device, String),
        name!(max_length, i32),
        name!(load_ms, f32),
        name!(calls, i64),
        name!(pairs, i64),
        name!(tokens, i64),
        name!(tokenize_ms, f64),
        name!(inference_ms, f64),
        name!(total_ms, f64),
    ),
> {
    let max_length = guc::MAX_LENGTH.get() as usize;
    let (models, device_suffix) = if shared_inference() {
        let status = shared::status(&inference_socket()).or_raise();
        (status.models, " (shared)")
    } else {
        let loaded = registry::loaded_named();
        (loaded.iter().map(|(name, m)| m.status(name)).collect(), "")
    };
    let rows: Vec<_> = models
        .into_iter()
        .map(|m| {
            // Embedders truncate at their own length (0: a StaticEmbedding model does not).
            let max_length = match m.layout.as_str() {
                "embedding" => m.length_limit.unwrap_or(UNSTATED_MAX_LENGTH),
                "static" => 0,
                _ => capped_max_length(max_length, m.length_limit),
            };
            let c = m.counters;
            (
                m.name,
                m.path,
                m.onnx_file,
                m.layout,
                m.device + device_suffix,
                max_length as i32,
                m.load_ms,
                c.calls as i64,
                c.pairs as i64,
                c.tokens as i64,
                c.tokenize_ms,
                c.inference_ms,
                c.total_ms,
            )
        })
        .collect();
    TableIterator::new(rows)
}
