//! ettin's engine: model files, tokenization, batching, the ONNX Runtime session, the scoring
//! head of rerankers and the pooling of embedders. It knows nothing about Postgres; the extension converts types and errors.

pub mod batch;
pub mod cpu;
pub mod embed;
pub mod error;
pub mod files;
pub mod head;
pub mod hub;
pub mod memo;
pub mod model;
pub mod modules;
pub mod parallel;
pub mod quote;
pub mod registry;
pub mod runtime;
pub mod session;
pub mod shared;
pub mod signals;
pub mod tokenize;

pub use batch::BatchLimits;
pub use error::{EngineError, ErrorKind, Result};
pub use files::{resolve_model_dir, Layout};
pub use model::{
    capped_max_length, ActivationChoice, CudaOptions, Device, DeviceChoice, EmbedOptions,
    LoadOptions, Model, ModelStatus, ScoreOptions,
};
pub use quote::quoted;
pub use registry::Loaded;
