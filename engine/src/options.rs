//! The options of one call, as the SQL layer (or the shared worker's client) sets them from
//! settings: how pairs are scored, how texts are embedded. Plain data, shared by both pipelines.

use crate::batch::BatchLimits;

/// How scores are post-processed (the `ettin.activation` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ActivationChoice {
    /// What the model's sentence-transformers config says (CrossEncoder.predict's default).
    Model,
    /// The raw logit.
    Raw,
    Sigmoid,
}

/// A scoring call's settings: truncation, batching, the activation and the token guard.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct ScoreOptions {
    /// Most tokens per pair including special tokens; the model's own max length caps it.
    pub max_length: usize,
    pub limits: BatchLimits,
    pub activation: ActivationChoice,
    /// Memory guard: most tokens (after truncation) one call may hold.
    pub max_total_tokens: usize,
}

/// An embedding call's settings: `encode(prompt_name=..., truncate_dim=...)`, batching and the
/// token guard.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EmbedOptions {
    pub prompt_name: Option<String>,
    /// Keep the first n dimensions (0: all), after Normalize, as sentence-transformers does.
    pub truncate_dim: usize,
    pub limits: BatchLimits,
    pub max_total_tokens: usize,
}
