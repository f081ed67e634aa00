//! Batch planning: pairs sorted by length so padding is small, each batch capped by a pair count,
//! a token budget (padded length × pairs) and a memory budget (the activations' estimated bytes,
//! which grow with length², memory.rs), so one long document cannot blow up memory.

/// Limits for one ONNX Runtime call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BatchLimits {
    pub max_pairs: usize,
    /// Padded tokens per batch; 0 means the model's device default (`Model::default_batch_tokens`).
    pub max_tokens: usize,
    /// Estimated activation bytes per batch (`ettin.max_batch_memory`); 0: no budget.
    #[serde(default)]
    pub max_memory: usize,
}

/// Split pair indices into batches. `lengths[i]` is pair i's token count; `bytes(rows, seq)`
/// estimates a batch's activation memory. Returns batches of indices, longest pairs first; within
/// a batch indices are ordered longest first. A pair over a budget on its own still gets a batch
/// (the caller refuses those first, with an error that names the setting).
pub fn plan_batches(
    lengths: &[usize],
    limits: BatchLimits,
    bytes: impl Fn(usize, usize) -> usize,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    // Stable sort: equal lengths keep input order, so plans are deterministic.
    order.sort_by(|a, b| lengths[*b].cmp(&lengths[*a]));
    let max_pairs = limits.max_pairs.max(1);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut padded_len = 0;
    for i in order {
        // Sorted descending, so the first pair of a batch sets its padded length.
        let len = if current.is_empty() {
            lengths[i]
        } else {
            padded_len
        };
        let rows = current.len() + 1;
        if !current.is_empty()
            && (current.len() >= max_pairs
                || rows * len > limits.max_tokens
                || (limits.max_memory > 0 && bytes(rows, len) > limits.max_memory))
        {
            batches.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            padded_len = lengths[i];
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens_only(_rows: usize, _seq: usize) -> usize {
        0
    }

    #[test]
    fn batches_respect_pair_and_token_limits() {
        let lengths = [10, 50, 20, 50, 5, 40];
        let batches = plan_batches(
            &lengths,
            BatchLimits {
                max_pairs: 2,
                max_tokens: 1000,
                max_memory: 0,
            },
            tokens_only,
        );
        assert_eq!(batches, vec![vec![1, 3], vec![5, 2], vec![0, 4]]);
        let batches = plan_batches(
            &lengths,
            BatchLimits {
                max_pairs: 10,
                max_tokens: 100,
                max_memory: 0,
            },
            tokens_only,
        );
        // 50+50 fits (2×50), a third would pad to 150 tokens.
        assert_eq!(batches, vec![vec![1, 3], vec![5, 2], vec![0, 4]]);
    }

    #[test]
    fn a_pair_longer_than_the_budget_still_gets_its_own_batch() {
        let batches = plan_batches(
            &[500, 10],
            BatchLimits {
                max_pairs: 8,
                max_tokens: 100,
                max_memory: 0,
            },
            tokens_only,
        );
        assert_eq!(batches, vec![vec![0], vec![1]]);
    }

    #[test]
    fn every_pair_is_planned_exactly_once() {
        let lengths: Vec<usize> = (0..257).map(|i| (i * 37) % 91 + 3).collect();
        let batches = plan_batches(
            &lengths,
            BatchLimits {
                max_pairs: 16,
                max_tokens: 700,
                max_memory: 0,
            },
            tokens_only,
        );
        let mut seen: Vec<usize> = batches.concat();
        seen.sort();
        assert_eq!(seen, (0..257).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.len() <= 16);
            assert!(b.len() == 1 || b.len() * lengths[b[0]] <= 700);
        }
    }

    #[test]
    fn batches_stay_under_the_memory_budget() {
        // Cost grows with rows × length²: 4 pairs of 100 tokens cost 40000, one of 300 90000.
        let lengths = [100, 100, 100, 100, 300, 10];
        let cost = |rows: usize, seq: usize| rows * seq * seq;
        let limits = BatchLimits {
            max_pairs: 32,
            max_tokens: 100_000,
            max_memory: 25_000,
        };
        let batches = plan_batches(&lengths, limits, cost);
        assert_eq!(batches, vec![vec![4], vec![0, 1], vec![2, 3], vec![5]]);
        for b in &batches {
            let seq = lengths[b[0]];
            assert!(b.len() == 1 || cost(b.len(), seq) <= 25_000, "{b:?}");
        }
    }
}
