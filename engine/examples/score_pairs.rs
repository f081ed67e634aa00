//! Time the engine alone (no Postgres) on pairs from a JSON file: `[[query, document], ...]`.
//!   cargo run --release -p ettin-engine --example score_pairs -- MODEL_DIR PAIRS.json [THREADS] [PAIRS_PER_CALL]
//! Used to tell engine cost from SQL-layer cost when the benchmark shows a gap.

use std::path::Path;
use std::time::Instant;

use ettin_engine::runtime;
use ettin_engine::{ActivationChoice, BatchLimits, LoadOptions, Model, ScoreOptions};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let model_dir = args.get(1).ok_or("MODEL_DIR")?;
    let pairs_file = args.get(2).ok_or("PAIRS.json")?;
    let threads: usize = args.get(3).map(|t| t.parse()).transpose()?.unwrap_or(2);
    let per_call: usize = args.get(4).map(|t| t.parse()).transpose()?.unwrap_or(100);
    let library = std::env::var("ETTIN_ORT_LIB")
        .unwrap_or_else(|_| "/var/cache/ettin/onnxruntime/libonnxruntime.so.1.31.1".into());
    let rt = runtime::load(Path::new(&library))?;
    let model = Model::load(
        rt,
        Path::new(model_dir),
        LoadOptions {
            intra_threads: threads,
            spinning: std::env::var("ETTIN_SPINNING").is_ok_and(|v| v == "1"),
            onnx_file: std::env::var("ETTIN_ONNX_FILE").ok(),
            ..Default::default()
        },
    )?;
    let pairs: Vec<(String, String)> = serde_json::from_str(&std::fs::read_to_string(pairs_file)?)?;
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect();
    let options = ScoreOptions {
        max_length: 512,
        limits: BatchLimits {
            max_pairs: env_or("ETTIN_BATCH_SIZE", 32),
            max_tokens: env_or("ETTIN_BATCH_TOKENS", 16384),
            max_memory: 0,
        },
        activation: ActivationChoice::Model,
        max_total_tokens: 1 << 30,
    };
    model.score(&refs[..32.min(refs.len())], &options, &mut || {})?;
    let started = Instant::now();
    for chunk in refs.chunks(per_call) {
        model.score(chunk, &options, &mut || {})?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{:?}", model.counters.snapshot());
    println!(
        "{} pairs in {secs:.2} s: {:.1} pairs/s ({threads} threads, {per_call} pairs per call)",
        refs.len(),
        refs.len() as f64 / secs
    );
    Ok(())
}
