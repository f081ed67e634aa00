//! What a loaded model reports: the work it has done in this process (counters both pipelines
//! and StaticEmbedding add to) and the row ettin_models() shows for it, in a backend or in the
//! shared worker's status answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Work a model has done in this process, for ettin_models() and the benchmark's "time outside
/// inference" figure.
#[derive(Debug, Default)]
pub struct Counters {
    pub calls: AtomicU64,
    pub pairs: AtomicU64,
    pub tokens: AtomicU64,
    pub batches: AtomicU64,
    /// Nanoseconds in tokenization, in ONNX Runtime's run, and in the whole score() call.
    pub tokenize_ns: AtomicU64,
    pub inference_ns: AtomicU64,
    pub total_ns: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct CounterValues {
    pub calls: u64,
    pub pairs: u64,
    pub tokens: u64,
    pub batches: u64,
    pub tokenize_ms: f64,
    pub inference_ms: f64,
    pub total_ms: f64,
}

impl Counters {
    pub fn snapshot(&self) -> CounterValues {
        let ms = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / 1e6;
        CounterValues {
            calls: self.calls.load(Ordering::Relaxed),
            pairs: self.pairs.load(Ordering::Relaxed),
            tokens: self.tokens.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            tokenize_ms: ms(&self.tokenize_ns),
            inference_ms: ms(&self.inference_ns),
            total_ms: ms(&self.total_ns),
        }
    }
}

pub(crate) fn add_elapsed(counter: &AtomicU64, since: Instant) {
    counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// A loaded model and its counters, as ettin_models() and the shared worker's status report it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ModelStatus {
    pub name: String,
    pub path: String,
    pub onnx_file: String,
    pub layout: String,
    pub device: String,
    pub load_ms: f32,
    #[serde(flatten)]
    pub counters: CounterValues,
    /// The model's length limit (saved max length, position embeddings): caps ettin.max_length.
    pub length_limit: Option<usize>,
    /// Pairs waiting in the shared worker's queue (0 in a backend).
    pub queued_pairs: usize,
}
