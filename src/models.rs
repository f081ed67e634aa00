//! Models for every SQL surface: which model a call means (its argument or the task's default
//! setting), where it is (downloaded from the Hub when allowed), and the loaded model of this
//! backend, or — with ettin.inference = shared — the request the inference worker answers.

use std::path::{Path, PathBuf};

use ettin_engine::hub::{self, DownloadObserver};
use ettin_engine::registry;
use ettin_engine::runtime::{self, Runtime};
use ettin_engine::{
    quoted, resolve_model_dir, CudaOptions, DeviceChoice, EngineError, LoadOptions, Loaded,
};
use pgrx::prelude::*;

use crate::error::OrRaise;
use crate::guc;
use crate::paths::onnxruntime_library_path;

/// ONNX Runtime, loaded on this backend's first use (never in _PG_init).
pub(crate) fn runtime() -> &'static Runtime {
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
    pub(crate) fn default_model(self) -> String {
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

pub(crate) fn is_superuser() -> bool {
    // SAFETY: superuser() reads the current role's catalog entry; always valid in a backend.
    unsafe { pg_sys::superuser() }
}

/// Fetch `name` (and `onnx_file` if not the default graph) from the Hub into ettin.model_dir.
pub(crate) fn download_model(root: &Path, name: &str, onnx_file: Option<&str>) -> PathBuf {
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
