//! The SQL functions. Each reads the settings it needs, calls the engine and converts the result.

use std::cell::RefCell;
use std::ffi::CStr;
use std::path::{Path, PathBuf};

use ettin_engine::cpu::CpuFeatures;
use ettin_engine::hub::{self, DownloadObserver};
use ettin_engine::memo::{CallKey, CallKeyDigest, CallMemo};
use ettin_engine::registry;
use ettin_engine::runtime::{self, Runtime, DEFAULT_LIBRARY_NAME};
use ettin_engine::shared::{self, ScoreRequest};
use ettin_engine::{
    capped_max_length, quoted, resolve_model_dir, ActivationChoice, BatchLimits, CudaOptions,
    DeviceChoice, EngineError, LoadOptions, Loaded, ScoreOptions,
};
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::error::OrRaise;
use crate::guc;

/// `$libdir` of this server, where `make install` puts the ONNX Runtime library.
pub(crate) fn pkglib_dir() -> PathBuf {
    // SAFETY: pkglib_path is a NUL-terminated path Postgres fills at startup and never changes.
    let raw = unsafe { CStr::from_ptr((&raw const pg_sys::pkglib_path).cast()) };
    PathBuf::from(raw.to_string_lossy().into_owned())
}

pub fn onnxruntime_library_path() -> PathBuf {
    let configured = guc::string(&guc::ONNXRUNTIME_LIBRARY);
    if configured.is_empty() {
        pkglib_dir().join(DEFAULT_LIBRARY_NAME)
    } else if let Some(rest) = configured.strip_prefix("$libdir/") {
        pkglib_dir().join(rest)
    } else {
        PathBuf::from(configured)
    }
}

fn runtime() -> &'static Runtime {
    runtime::load(&onnxruntime_library_path()).or_raise()
}

/// Which function family asks for a model: it decides the default model and graph settings.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    /// rerank_score / ettin_rerank: ettin.model, ettin.onnx_file.
    Rerank,
    /// ettin_embed: ettin.embed_model, ettin.embed_onnx_file.
    Embed,
}

impl Task {
    fn default_model(self) -> String {
        match self {
            Task::Rerank => guc::string(&guc::MODEL),
            Task::Embed => guc::string(&guc::EMBED_MODEL),
        }
    }

    pub(crate) fn onnx_file(self) -> Option<String> {
        let setting = match self {
            Task::Rerank => &guc::ONNX_FILE,
            Task::Embed => &guc::EMBED_ONNX_FILE,
        };
        Some(guc::string(setting)).filter(|f| !f.is_empty())
    }
}

/// Download progress as NOTICEs; cancel checks while waiting and between files.
struct SqlObserver;

impl DownloadObserver for SqlObserver {
    fn progress(&mut self, message: &str) {
        pgrx::notice!("{message}");
    }
    fn check_cancel(&mut self) {
        pgrx::check_for_interrupts!();
    }
}

fn is_superuser() -> bool {
    // SAFETY: superuser() reads the current role's catalog entry; always valid in a backend.
    unsafe { pg_sys::superuser() }
}

/// Fetch `name` (and `onnx_file` if not the default graph) from the Hub into ettin.model_dir.
fn download_model(root: &Path, name: &str, onnx_file: Option<&str>) -> PathBuf {
    hub::download(
        root,
        &guc::string(&guc::HUB_ENDPOINT),
        name,
        onnx_file,
        &mut SqlObserver,
    )
    .or_raise()
}

pub(crate) fn shared_inference() -> bool {
    guc::INFERENCE.get() == guc::Inference::Shared
}

/// The named model (or the task's default) and its directory; a missing one with a Hub id's
/// shape is downloaded when ettin.allow_download lets this role trigger it (other missing names
/// fall through to the loader's "directory does not exist").
pub(crate) fn resolve_model(name: Option<&str>, task: Task) -> (String, PathBuf) {
    let default_name = task.default_model();
    let name = name.unwrap_or(&default_name).to_owned();
    let name = name.as_str();
    let root = PathBuf::from(guc::string(&guc::MODEL_DIR));
    let mut dir = resolve_model_dir(&root, name).or_raise();
    let wanted = task.onnx_file();
    if (!dir.exists() || hub::lacks_variant(&dir, wanted.as_deref())) && hub::is_hub_id(name) {
        let allowed = match guc::ALLOW_DOWNLOAD.get() {
            guc::AllowDownload::Off => false,
            guc::AllowDownload::Superuser => is_superuser(),
            guc::AllowDownload::All => true,
        };
        if allowed {
            dir = download_model(&root, name, wanted.as_deref());
        } else if !dir.exists() {
            crate::error::raise(
                EngineError::missing(format!("model {} is not in {}", quoted(name), quoted(root.display()))).with_hint(
                    "a superuser can fetch it with SELECT ettin_download('<name>'), allow downloads with \
                     ettin.allow_download, or copy the model directory there (see the README's offline section)",
                ),
            );
        }
        // A downloaded model without the variant, and no right to fetch it: the loader says
        // which ONNX files are there.
    }
    (name.to_owned(), dir)
}

/// The named model loaded in this backend (once; later calls reuse it).
pub(crate) fn model(name: Option<&str>, task: Task) -> Loaded {
    let (name, dir) = resolve_model(name, task);
    let name = name.as_str();
    let onnx_file = task.onnx_file();
    let options = LoadOptions {
        intra_threads: guc::THREADS.get().max(0) as usize,
        spinning: guc::SPINNING.get(),
        onnx_file,
        device: match guc::DEVICE.get() {
            guc::DeviceSetting::Cpu => DeviceChoice::Cpu,
            guc::DeviceSetting::Cuda => DeviceChoice::Cuda,
            guc::DeviceSetting::Auto => DeviceChoice::Auto,
        },
        cuda: CudaOptions {
            device_id: guc::CUDA_DEVICE_ID.get(),
            tf32: guc::CUDA_TF32.get(),
            memory_limit: guc::CUDA_MEMORY_LIMIT_MB.get().max(0) as usize * 1024 * 1024,
        },
    };
    registry::get_or_load(
        || Ok(runtime()),
        name,
        &dir,
        options,
        |m| {
            pgrx::log!(
                "ettin: model {} loaded: {}",
                quoted(name),
                m.describe_load()
            );
        },
    )
    .or_raise()
}

/// The scoring settings of this session; a batch_tokens of 0 is resolved by the model (device).
fn score_options() -> ScoreOptions {
    ScoreOptions {
        max_length: guc::MAX_LENGTH.get() as usize,
        limits: BatchLimits {
            max_pairs: guc::BATCH_SIZE.get() as usize,
            max_tokens: guc::BATCH_TOKENS.get() as usize,
        },
        activation: match guc::ACTIVATION.get() {
            guc::ActivationSetting::Model => ActivationChoice::Model,
            guc::ActivationSetting::Raw => ActivationChoice::Raw,
            guc::ActivationSetting::Sigmoid => ActivationChoice::Sigmoid,
        },
        max_total_tokens: guc::MAX_TOKENS_PER_CALL.get() as usize,
    }
}

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

thread_local! {
    /// Scores of this transaction's last calls. Postgres evaluates a STABLE call with constant
    /// arguments once at plan time (row estimates, e.g. for `unnest(rerank_score(...))`) and
    /// again in the executor; the second evaluation reuses the first's scores.
    static RECENT_CALLS: RefCell<CallMemo<Vec<Option<f32>>>> = const { RefCell::new(CallMemo::new(4)) };
}

/// Everything a call's scores depend on: the function's inputs and the settings.
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

/// Everything a call's scores depend on: the function's inputs and the settings.
fn call_key(query: &str, documents: &[Option<&str>], model_name: Option<&str>) -> CallKeyDigest {
    let mut key = call_key_for(Task::Rerank, model_name, &score_options());
    key.add(query.as_bytes());
    for document in documents {
        key.add_optional(document.map(str::as_bytes));
    }
    key.into()
}

/// Score `query` against each non-NULL document; NULL documents get NULL. An identical call
/// earlier in the same transaction (the plan-time evaluation of this one) gives its scores.
fn score_documents(
    query: &str,
    documents: &[Option<&str>],
    model_name: Option<&str>,
) -> Vec<Option<f32>> {
    if documents.iter().all(Option::is_none) {
        return vec![None; documents.len()];
    }
    let scope = local_transaction_id();
    let key = call_key(query, documents, model_name);
    if let Some(scores) = RECENT_CALLS.with(|memo| memo.borrow_mut().get(scope, &key)) {
        return scores;
    }
    let scores = score_documents_now(query, documents, model_name);
    RECENT_CALLS.with(|memo| memo.borrow_mut().put(scope, key, scores.clone()));
    scores
}

fn score_documents_now(
    query: &str,
    documents: &[Option<&str>],
    model_name: Option<&str>,
) -> Vec<Option<f32>> {
    let pairs: Vec<(&str, &str)> = documents.iter().flatten().map(|d| (query, *d)).collect();
    let mut check_cancel = || {
        pgrx::check_for_interrupts!();
    };
    let scores = if shared_inference() {
        let (name, dir) = resolve_model(model_name, Task::Rerank);
        let request = ScoreRequest {
            name,
            dir,
            onnx_file: Task::Rerank.onnx_file(),
            options: score_options(),
            query: query.to_owned(),
            documents: pairs.iter().map(|(_, d)| (*d).to_owned()).collect(),
        };
        shared::score(&crate::worker::socket_path(), request, &mut check_cancel)
    } else {
        model(model_name, Task::Rerank)
            .cross_encoder()
            .and_then(|m| m.score(&pairs, &score_options(), &mut check_cancel))
    };
    let mut scores = scores.or_raise().into_iter();
    documents
        .iter()
        .map(|d| d.and_then(|_| scores.next()))
        .collect()
}

fn worker_status() -> serde_json::Value {
    match shared::status(&crate::worker::socket_path()) {
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

/// Score one (query, document) pair. NULL query or document gives NULL.
#[pg_extern(stable, parallel_safe, name = "rerank_score")]
fn rerank_score_one(
    query: Option<&str>,
    document: Option<&str>,
    model: default!(Option<&str>, "NULL"),
) -> Option<f32> {
    score_documents(query?, &[Some(document?)], model)
        .pop()
        .flatten()
}

/// Score many documents against one query; scores in input order, NULL element → NULL score.
#[pg_extern(stable, parallel_safe, name = "rerank_score")]
fn rerank_score_many(
    query: Option<&str>,
    documents: Option<Array<&str>>,
    model: default!(Option<&str>, "NULL"),
) -> Option<Vec<Option<f32>>> {
    let (query, documents) = (query?, documents?);
    let documents: Vec<Option<&str>> = documents.iter().collect();
    Some(score_documents(query, &documents, model))
}

/// Every non-NULL document ranked best first as (1-based position in `documents`, score);
/// ties keep input order; `top_k` NULL means all.
#[pg_extern(stable, parallel_safe)]
fn ettin_rerank(
    query: Option<&str>,
    documents: Option<Array<&str>>,
    top_k: default!(Option<i32>, "NULL"),
    model: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (name!(idx, i32), name!(score, f32))> {
    if let Some(k) = top_k {
        if k < 0 {
            crate::error::raise(
                ettin_engine::EngineError::invalid(format!("top_k must be NULL or >= 0, not {k}"))
                    .with_hint("pass NULL to rank every document"),
            );
        }
    }
    let (Some(query), Some(documents)) = (query, documents) else {
        return TableIterator::new(Vec::new());
    };
    let documents: Vec<Option<&str>> = documents.iter().collect();
    let scores = score_documents(query, &documents, model);
    let mut ranked: Vec<(i32, f32)> = scores
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (i as i32 + 1, s)))
        .collect();
    // Stable sort: equal scores keep input order.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    if let Some(k) = top_k {
        ranked.truncate(k as usize);
    }
    TableIterator::new(ranked)
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
        let status = shared::status(&crate::worker::socket_path()).or_raise();
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
                "embedding" => m.length_limit.unwrap_or(512),
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
