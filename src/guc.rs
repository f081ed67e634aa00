//! ettin's settings. Every one is documented here and in the README.

use std::ffi::CString;

use ettin_engine::BatchLimits;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::PostgresGucEnum;

/// Default model name when a function's `model` argument is NULL; resolved under `ettin.model_dir`.
pub static MODEL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"cross-encoder/ettin-reranker-17m-v1"));

/// Default embedding model when ettin_embed's `model` argument is NULL; resolved like
/// `ettin.model`. The default is the StaticEmbedding retriever of the Ettin announcement.
pub static EMBED_MODEL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"sentence-transformers/static-retrieval-mrl-en-v1"));

/// Dimensions ettin_embed keeps (`encode(truncate_dim=...)` for Matryoshka models); 0 keeps all.
pub static EMBED_DIM: GucSetting<i32> = GucSetting::<i32>::new(0);

/// The embedding model's ONNX graph, relative to its directory (e.g. an int8 variant); empty
/// means onnx/model.onnx. Separate from ettin.onnx_file, which picks the reranker's graph.
pub static EMBED_ONNX_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Root directory that model names resolve under (`org/name` → `<model_dir>/org/name/`).
/// Superuser-only: it decides which files the server reads.
pub static MODEL_DIR: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"/var/lib/postgresql/ettin/models"));

/// Most tokens per (query, document) pair including special tokens; longer pairs are truncated
/// (longest side first). The model's own max length (its saved max_seq_length /
/// model_max_length, and its position embeddings) always caps it, so the default — the largest
/// value — truncates where `CrossEncoder.predict()` does. A model that states no length: 512.
pub static MAX_LENGTH: GucSetting<i32> = GucSetting::<i32>::new(MAX_LENGTH_LIMIT);
pub const MAX_LENGTH_LIMIT: i32 = 32768;

/// Most pairs in one ONNX Runtime call.
pub static BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(32);

/// Most padded tokens (pairs × longest pair) in one ONNX Runtime call; 0 picks per device
/// (CPU: 1024 — small batches stay in cache and pad less, measured 1.5× faster than 32 × 512;
/// GPU: 16384). Also bounds the memory one batch takes.
pub static BATCH_TOKENS: GucSetting<i32> = GucSetting::<i32>::new(0);

/// The ONNX graph to load, relative to the model directory (e.g. `onnx/model_int8.onnx` from
/// the export tool's --int8); empty means onnx/model.onnx, else model.onnx.
pub static ONNX_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Memory guard: most megabytes of activations one ONNX Runtime call may need, by the estimate of
/// memory.rs (attention grows with length²: one 8K-token pair of ettin-reranker-17m needs
/// ~4 GB, of the 150m ~12 GB). Batches are planned under it; an input that alone needs more is
/// ERROR 54000. Superuser-only so a user cannot lift it. The default lets a 24 GB server run
/// ~10 such calls at once; the memory is given back after each.
pub static MAX_BATCH_MEMORY_MB: GucSetting<i32> = GucSetting::<i32>::new(2048);

/// Memory guard: most tokens (after truncation) one function call may tokenize and score.
/// Superuser-only so a user cannot lift it. The default fits 10 000 documents at 512 tokens.
pub static MAX_TOKENS_PER_CALL: GucSetting<i32> = GucSetting::<i32>::new(8_000_000);

/// ONNX Runtime intra-op threads per backend; 0 lets ONNX Runtime use one per physical core.
/// Also the threads that tokenize a call's texts and pool StaticEmbedding vectors (0: the cores,
/// at most 8). Takes effect when a backend loads a model.
pub static THREADS: GucSetting<i32> = GucSetting::<i32>::new(0);

/// Let ONNX Runtime's idle intra-op threads spin between ops instead of sleeping. Off by default:
/// a database server shares its cores, and spinning threads burn them while other backends wait.
/// On: ~10–20% more pairs/s for one caller (README, Speed). Takes effect when a backend loads a
/// model.
pub static SPINNING: GucSetting<bool> = GucSetting::<bool>::new(false);

/// ONNX Runtime shared library; empty means `$libdir/libonnxruntime.so.1.31.1`, where
/// `make install` puts it. Set in postgresql.conf (sighup); a backend reads it once, when it
/// first loads ONNX Runtime: a process can hold only one ONNX Runtime.
pub static ONNXRUNTIME_LIBRARY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);

/// Base URL of the Hugging Face Hub or a mirror that missing models are downloaded from.
pub static HUB_ENDPOINT: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"https://huggingface.co"));

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AllowDownload {
    /// Never download; models must be placed in ettin.model_dir.
    #[name = c"off"]
    Off,
    /// A missing model is downloaded on first use in a superuser's session (and by ettin_download).
    #[name = c"superuser"]
    Superuser,
    /// Any role's first use of a missing model downloads it.
    #[name = c"all"]
    All,
}

/// Who may trigger a download of a missing model: `off`, `superuser` or `all`.
pub static ALLOW_DOWNLOAD: GucSetting<AllowDownload> =
    GucSetting::<AllowDownload>::new(AllowDownload::Superuser);

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ActivationSetting {
    /// What the model's sentence-transformers config says (CrossEncoder.predict's default).
    #[name = c"model"]
    Model,
    /// The raw logit.
    #[name = c"raw"]
    Raw,
    /// The logistic function of the logit, in (0, 1).
    #[name = c"sigmoid"]
    Sigmoid,
}

/// How scores are post-processed: `model`, `raw` or `sigmoid`.
pub static ACTIVATION: GucSetting<ActivationSetting> =
    GucSetting::<ActivationSetting>::new(ActivationSetting::Model);

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeviceSetting {
    /// ONNX Runtime's CPU provider.
    #[name = c"cpu"]
    Cpu,
    /// The CUDA provider, or an ERROR when it is missing or does not start (never a silent CPU run).
    #[name = c"cuda"]
    Cuda,
    /// CUDA when the loaded ONNX Runtime has it and it starts, else CPU; the server log says which.
    #[name = c"auto"]
    Auto,
}

/// Where models run: `cpu`, `cuda` or `auto`. Applies when a backend loads a model; a model
/// loaded under another device setting is a separate cache entry.
pub static DEVICE: GucSetting<DeviceSetting> =
    GucSetting::<DeviceSetting>::new(DeviceSetting::Auto);

/// CUDA device ordinal models load on.
pub static CUDA_DEVICE_ID: GucSetting<i32> = GucSetting::<i32>::new(0);

/// TF32 matmuls on the GPU: ONNX Runtime's default and faster; off reproduces CPU fp32 scores
/// within 1e-3 σ.
pub static CUDA_TF32: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Bound, in MB, on each model session's CUDA memory arena (0: no bound). Every backend that
/// loads a model on the GPU holds its own session: set this so N backends fit the card.
pub static CUDA_MEMORY_LIMIT_MB: GucSetting<i32> = GucSetting::<i32>::new(0);

#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Inference {
    /// Each backend loads the models it uses and runs ONNX Runtime itself.
    #[name = c"backend"]
    Backend,
    /// One worker process (ettin-inferd, supervised by a background worker) owns the models;
    /// backends send it their pairs. Needs shared_preload_libraries = 'ettin' and a restart.
    #[name = c"shared"]
    Shared,
}

/// Where inference runs: `backend` (each connection) or `shared` (one worker for all; server
/// start, with `shared_preload_libraries = 'ettin'`).
pub static INFERENCE: GucSetting<Inference> = GucSetting::<Inference>::new(Inference::Backend);

pub fn register() {
    GucRegistry::define_string_guc(
        c"ettin.model",
        c"Default reranker model name.",
        c"Used when a function's model argument is NULL; resolved under ettin.model_dir.",
        &MODEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ettin.embed_model",
        c"Default embedding model name for ettin_embed.",
        c"Used when ettin_embed's model argument is NULL; resolved under ettin.model_dir.",
        &EMBED_MODEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ettin.embed_dim",
        c"Dimensions ettin_embed keeps (0: all).",
        c"sentence-transformers' truncate_dim: the first n dimensions, after normalization, for Matryoshka models.",
        &EMBED_DIM,
        0,
        65535,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ettin.embed_onnx_file",
        c"ONNX graph of the embedding model, relative to its directory (empty: onnx/model.onnx).",
        c"Selects a variant such as onnx/model_int8.onnx for transformer embedders; StaticEmbedding models have no graph.",
        &EMBED_ONNX_FILE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ettin.model_dir",
        c"Directory that model names resolve under.",
        c"A model named org/name is read from <model_dir>/org/name/.",
        &MODEL_DIR,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ettin.max_length",
        c"Most tokens per (query, document) pair, special tokens included.",
        c"Longer pairs are truncated, longest side first; the model's own max length caps it (the default keeps that one, as CrossEncoder.predict() does).",
        &MAX_LENGTH,
        16,
        MAX_LENGTH_LIMIT,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ettin.batch_size",
        c"Most pairs in one ONNX Runtime call.",
        c"",
        &BATCH_SIZE,
        1,
        4096,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ettin.batch_tokens",
        c"Most padded tokens in one ONNX Runtime call (0: per device, CPU 1024, GPU 16384).",
        c"Pairs times the longest pair's length; bounds the memory one batch takes.",
        &BATCH_TOKENS,
        0,
        1 << 22,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ettin.onnx_file",
        c"ONNX graph to load, relative to the model directory (empty: onnx/model.onnx).",
        c"Selects a variant such as onnx/model_int8.onnx; each file is loaded and cached separately.",
        &ONNX_FILE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ettin.max_batch_memory",
        c"Most megabytes of activations one ONNX Runtime call may need (memory guard).",
        c"Estimated from the batch's inputs and lengths (attention grows with length squared); an input that alone needs more fails with program_limit_exceeded.",
        &MAX_BATCH_MEMORY_MB,
        16,
        1 << 20,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    GucRegistry::define_int_guc(
        c"ettin.max_tokens_per_call",
        c"Most tokens one call may tokenize and score (memory guard).",
        c"Counted after truncation; a call over it fails with program_limit_exceeded.",
        &MAX_TOKENS_PER_CALL,
        1024,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ettin.threads",
        c"ONNX Runtime intra-op threads per backend (0: one per physical core).",
        c"Applies when a backend loads a model.",
        &THREADS,
        0,
        256,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"ettin.spinning",
        c"Let idle ONNX Runtime threads spin between ops instead of sleeping.",
        c"Faster for one caller, wasted cores when many backends share them. Applies when a backend loads a model.",
        &SPINNING,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"ettin.activation",
        c"Score post-processing: model, raw or sigmoid.",
        c"model applies what the model's sentence-transformers config says (Identity for Ettin rerankers, Sigmoid for classic single-logit models).",
        &ACTIVATION,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ettin.hub_endpoint",
        c"Hugging Face Hub (or mirror) that missing models are downloaded from.",
        c"Files are fetched from <endpoint>/<org>/<name>/resolve/<revision>/<file>.",
        &HUB_ENDPOINT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"ettin.allow_download",
        c"Who may trigger a download of a missing model: off, superuser or all.",
        c"ettin_download() (superuser) fetches a model ahead of time whatever this says, unless it is off.",
        &ALLOW_DOWNLOAD,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"ettin.device",
        c"Where models run: cpu, cuda or auto.",
        c"auto uses CUDA when the loaded ONNX Runtime has the CUDA provider and it starts, else CPU. cuda without it is an error.",
        &DEVICE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ettin.cuda_device_id",
        c"CUDA device ordinal models load on.",
        c"",
        &CUDA_DEVICE_ID,
        0,
        64,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"ettin.cuda_tf32",
        c"Allow TF32 matmuls on the GPU (faster; off for exact parity with CPU fp32).",
        c"",
        &CUDA_TF32,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ettin.cuda_memory_limit",
        c"Bound on each model session's CUDA memory arena (0: none).",
        c"Each backend that loads a model on the GPU holds its own session.",
        &CUDA_MEMORY_LIMIT_MB,
        0,
        1 << 20,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    // Sighup, not postmaster: a library that is not preloaded may not define postmaster settings
    // (FATAL). The supervisor is only started when this says shared at server start.
    GucRegistry::define_enum_guc(
        c"ettin.inference",
        c"Where inference runs: backend (each connection) or shared (one worker process).",
        c"shared needs shared_preload_libraries = 'ettin' and takes effect at server start.",
        &INFERENCE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ettin.onnxruntime_library",
        c"Path of the ONNX Runtime shared library (postgresql.conf only).",
        c"Empty means $libdir/libonnxruntime.so.1.31.1. A backend reads it when it first loads ONNX Runtime.",
        &ONNXRUNTIME_LIBRARY,
        GucContext::Sighup,
        GucFlags::default(),
    );
    // After this, `SET ettin.max_lenght = 64` (a typo) is an ERROR instead of a placeholder that
    // silently does nothing; placeholders set before the library loaded are dropped with a WARNING.
    // SAFETY: a static NUL-terminated prefix; Postgres copies it.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"ettin".as_ptr()) };
}

pub fn string(setting: &GucSetting<Option<CString>>) -> String {
    setting
        .get()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The batch limits of this session: pairs, padded tokens (0: the model's device default) and
/// the activation memory budget in bytes.
pub fn batch_limits() -> BatchLimits {
    BatchLimits {
        max_pairs: BATCH_SIZE.get() as usize,
        max_tokens: BATCH_TOKENS.get() as usize,
        max_memory: (MAX_BATCH_MEMORY_MB.get().max(0) as usize) << 20,
    }
}
