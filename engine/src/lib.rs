//! ettin's engine: model files, tokenization, batching, the ONNX Runtime session, the scoring
//! head of rerankers and the pooling of embedders. It knows nothing about Postgres; the extension
//! converts types and errors.
//!
//! Modules in layers; each imports only from layers before its own (tests/import_circles.py
//! checks that no two import each other):
//! 1. `error`, `quote`, `signals`, `cpu`, `batch`, `head`, `memo`, `memory`
//! 2. `json`, `parallel`, `runtime`, `options`, `status`
//! 3. `prompts`, `modules`, `tokenize`, `word_ids` (token ids by the word, StaticEmbedding)
//! 4. `files` (a model directory's layout), `session` (ONNX Runtime)
//! 5. `model` (the ONNX pipeline), `static_embedding`, `hub`
//! 6. `registry` (models loaded once per process), `chunk` (texts split to fit a model)
//! 7. `shared` (the inference worker)

pub mod batch;
pub mod chunk;
pub mod cpu;
pub mod error;
pub mod files;
pub mod head;
pub mod hub;
pub mod json;
pub mod memo;
pub mod memory;
pub mod model;
pub mod modules;
pub mod options;
pub mod parallel;
pub mod prompts;
pub mod quote;
pub mod registry;
pub mod runtime;
pub mod session;
pub mod shared;
pub mod signals;
pub mod static_embedding;
pub mod status;
pub mod tokenize;
pub mod word_ids;

pub use batch::BatchLimits;
pub use error::{EngineError, ErrorKind, Result};
pub use files::{resolve_model_dir, Layout};
pub use model::{capped_max_length, Model};
pub use options::{ActivationChoice, EmbedOptions, ScoreOptions};
pub use quote::quoted;
pub use registry::Loaded;
pub use session::{CudaOptions, Device, DeviceChoice, LoadOptions};
pub use status::ModelStatus;
