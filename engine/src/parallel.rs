//! Tokenizing and pooling many texts on the call's cores: a few scoped threads, each started with
//! every signal blocked (signals.rs) and joined before the call returns; results keep input order.
//! ONNX Runtime has its own intra-op pool; this serves the work around it (and StaticEmbedding,
//! which is nothing but this work).

use crate::error::{EngineError, Result};
use crate::signals::with_signals_blocked;

/// Fewer items than this per thread are not worth a thread.
const MIN_ITEMS_PER_THREAD: usize = 16;

/// Threads for `setting` (ettin.threads; 0: the cores this process may use, at most 8).
pub fn threads(setting: usize) -> usize {
    match setting {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
        n => n,
    }
}

/// `f` over every item, on up to `threads` threads, in input order; the first error wins.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let threads = threads.min(items.len() / MIN_ITEMS_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    with_signals_blocked(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = items
                .chunks(per_thread)
                .map(|chunk| scope.spawn(|| chunk.iter().map(&f).collect::<Result<Vec<R>>>()))
                .collect();
            let mut out = Vec::with_capacity(items.len());
            for handle in handles {
                let part = handle
                    .join()
                    .map_err(|_| EngineError::external("a tokenizer thread panicked"))??;
                out.extend(part);
            }
            Ok(out)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_input_order_and_errors_come_back() {
        let items: Vec<usize> = (0..1000).collect();
        let doubled = map(&items, 4, |i| Ok(i * 2)).unwrap();
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let e = map(&items, 4, |i| {
            if *i == 700 {
                Err(EngineError::invalid("seven hundred"))
            } else {
                Ok(*i)
            }
        })
        .unwrap_err();
        assert_eq!(e.message, "seven hundred");
        assert_eq!(map(&items[..3], 8, |i| Ok(*i)).unwrap(), vec![0, 1, 2]);
    }
}
