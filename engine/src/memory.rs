//! How much memory one batch's activations take, the per-batch budget (`ettin.max_batch_memory`)
//! and when a batch gives ONNX Runtime's arena memory back.
//!
//! Attention is what grows: each layer holds scores and probabilities of heads × n × n floats,
//! so a batch costs rows × length², not rows × length. The estimate
//! `rows × (16 × heads × n² + 64 × hidden × n)` bytes was fitted to the peak RSS that
//! onnxruntime 1.31 reached on a random-weight ettin-reranker-17m backbone (4 heads, hidden 256;
//! one row of 512, 1K, 2K, 4K, 8K tokens: 21, 62, 288, 1049, 4120 MB above the loaded model;
//! 4 × 512: 64 MB, 8 × 512: 123 MB, 2 × 2K: 569 MB); it errs on the high side for short batches.
//! A graph whose attention does not hold every head's n × n scores at once says so in its
//! metadata (session.rs): the export tool's long graph tiles global attention and bands the local
//! one, so only the linear term remains (measured on the same model: 8K tokens 126 MB, 2K 34 MB,
//! 4 × 512 30 MB, against estimates of 131, 34 and 34 MB).
//!
//! ONNX Runtime's CPU arena keeps its high-water mark for the life of the session: without help,
//! a backend that scored one 8K-token pair holds ~4 GB until it exits. A batch estimated above
//! what the model's ordinary batch needs (one row of the device's default token budget, at least
//! [`KEEP_ARENA_FLOOR`]) runs with arena shrinkage, which returns what the run used (measured:
//! RSS back from 4.2 GB to 100 MB). Ordinary batches keep their arena: shrinking costs 15-18% on
//! them (17m, 1 × 1024 tokens: 97 → 114 ms; 2 × 512: 62 → 71 ms), and what they keep is what
//! every backend that reranks holds anyway.

use crate::error::{EngineError, ErrorKind, Result};

/// Batches estimated above this (or above the model's ordinary batch, if more) give the arena
/// memory back after their run.
pub const KEEP_ARENA_FLOOR: usize = 64 << 20;

/// The shape numbers the estimate needs, from the model's config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivationCost {
    pub heads: usize,
    pub hidden: usize,
}

impl ActivationCost {
    /// For a model whose config does not say (a graph without config.json): BERT-base's shape.
    pub const UNKNOWN: ActivationCost = ActivationCost {
        heads: 12,
        hidden: 768,
    };

    /// Estimated bytes of one batch of `rows` inputs padded to `seq` tokens.
    pub fn bytes(&self, rows: usize, seq: usize) -> usize {
        let attention = 16usize
            .saturating_mul(self.heads)
            .saturating_mul(seq)
            .saturating_mul(seq);
        let linear = 64usize.saturating_mul(self.hidden).saturating_mul(seq);
        rows.saturating_mul(attention.saturating_add(linear))
    }

    /// An error unless one input of `seq` tokens fits `budget` bytes (0: no budget).
    pub fn check_one(&self, seq: usize, budget: usize) -> Result<()> {
        let need = self.bytes(1, seq);
        if budget == 0 || need <= budget {
            return Ok(());
        }
        Err(EngineError::new(
            ErrorKind::TooLarge,
            format!(
                "one input of {seq} tokens needs about {} MB for its activations, more than ettin.max_batch_memory ({} MB)",
                need.div_ceil(1 << 20),
                budget >> 20
            ),
        )
        .with_hint(
            "lower ettin.max_length, split long texts with ettin_chunk(), or ask a superuser to raise ettin.max_batch_memory",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETTIN_17M: ActivationCost = ActivationCost {
        heads: 4,
        hidden: 256,
    };

    #[test]
    fn the_estimate_covers_what_was_measured() {
        let mb = |rows, seq| ETTIN_17M.bytes(rows, seq) as f64 / (1u64 << 20) as f64;
        for (rows, seq, measured) in [
            (1, 512, 21.0),
            (1, 2048, 288.0),
            (1, 4096, 1049.0),
            (1, 8000, 4120.0),
            (4, 512, 64.0),
            (2, 2048, 569.0),
        ] {
            let estimate = mb(rows, seq);
            assert!(
                estimate >= measured * 0.95 && estimate <= measured * 2.0,
                "{rows} x {seq}: estimate {estimate:.0} MB, measured {measured} MB"
            );
        }
    }

    #[test]
    fn one_input_over_the_budget_is_refused_with_the_setting_named() {
        assert!(ETTIN_17M.check_one(8000, 0).is_ok());
        assert!(ETTIN_17M.check_one(4000, 2048 << 20).is_ok());
        let e = ETTIN_17M.check_one(8000, 2048 << 20).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge);
        assert!(
            e.message.contains("8000 tokens") && e.message.contains("2048 MB"),
            "{e}"
        );
        assert!(e.hint.unwrap().contains("ettin.max_batch_memory"));
    }
}
