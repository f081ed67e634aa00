//! Memory of long inputs (its own test binary: it reads this process's RSS, which tests running
//! beside it in one process would disturb): a batch estimated above the model's ordinary batch
//! (memory::KEEP_ARENA_FLOOR at least) gives ONNX Runtime's arena back, so RSS returns near where
//! it was; the budget refuses an input that alone needs more, before any batch runs; the plan
//! keeps batches under it.

mod common;

use common::{fixture_dir, load, options};
use ettin_engine::ErrorKind;

/// This process's `VmRSS` or `VmHWM` (peak) in MB.
fn status_mb(key: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        / 1024
}

fn long_document(words: usize) -> String {
    (0..words)
        .map(|i| format!("word{} license", i % 97))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn long_batches_give_memory_back_and_the_budget_refuses_what_cannot_fit() {
    // The modular fixture: 4 heads, 1024 positions. Eight 1024-token pairs in one batch are
    // estimated at ~570 MB of activations.
    let model = load(&fixture_dir("modular"));
    let document = long_document(2000);
    let pairs: Vec<(&str, &str)> = (0..8)
        .map(|_| ("free software", document.as_str()))
        .collect();
    let mut opts = options(1024);
    opts.limits.max_tokens = 8 * 1024;
    // Warm up with short pairs: the arena a steady workload keeps.
    model
        .score(&[("q", "a short document")], &opts, &mut || {})
        .unwrap();
    let before = status_mb("VmRSS");
    let scores = model.score(&pairs, &opts, &mut || {}).unwrap();
    let peak = status_mb("VmHWM");
    let after = status_mb("VmRSS");
    assert!(scores.iter().all(|s| s.is_finite()));
    assert!(
        peak >= before + 150,
        "the batch was not big: RSS {before} MB, peak {peak} MB"
    );
    assert!(
        after <= before + 100,
        "memory not given back: RSS {before} MB before, {after} MB after (peak {peak} MB)"
    );
    eprintln!("memory: RSS {before} MB before, peak {peak} MB, {after} MB after");

    // Short pairs after it score as before (the arena grows again as needed).
    let again = model.score(&pairs[..1], &opts, &mut || {}).unwrap();
    assert!((again[0] - scores[0]).abs() < 1e-4);

    // A budget of 80 MB: the plan splits the eight into batches that fit (~71 MB each needs one
    // pair a batch), scores unchanged.
    opts.limits.max_memory = 80 << 20;
    let split = model.score(&pairs, &opts, &mut || {}).unwrap();
    for (a, b) in scores.iter().zip(&split) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // 32 MB: one 1024-token pair alone needs more; refused, naming the setting.
    opts.limits.max_memory = 32 << 20;
    let e = model.score(&pairs, &opts, &mut || {}).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge);
    assert!(
        e.message.contains("1024 tokens") && e.message.contains("ettin.max_batch_memory"),
        "{e}"
    );
    // The same pairs cut at 256 tokens fit.
    let mut short = opts;
    short.max_length = 256;
    assert_eq!(model.score(&pairs, &short, &mut || {}).unwrap().len(), 8);
}
