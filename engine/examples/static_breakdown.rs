//! Where a StaticEmbedding call's time goes, engine only (no Postgres), on texts from a file (one
//! JSON string per line):
//!   cargo run --release -p ettin-engine --example static_breakdown -- MODEL_DIR TEXTS.jsonl [THREADS]
//! Prints µs per text, one thread unless said: the tokenizer on whole texts (what embed() did before
//! word_ids.rs), token ids by the word on the first pass (every word new) and once the words are
//! known, the whole embed() with known words (pool = embed − ids by the word), embed() on THREADS
//! threads, plus tokens per text. bench/static_breakdown.py runs it next to sentence-transformers.

use std::path::Path;
use std::time::Instant;

use ettin_engine::static_embedding::{static_module_dir, StaticEmbedder};
use ettin_engine::word_ids::WordIds;
use ettin_engine::EmbedOptions;

/// The best of `rounds` timings of `f`, in µs per text.
fn best_us(rounds: usize, texts: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6 / texts as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).ok_or("MODEL_DIR")?);
    let texts: Vec<String> = std::fs::read_to_string(args.get(2).ok_or("TEXTS.jsonl")?)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let threads: usize = args.get(3).map(|t| t.parse()).transpose()?.unwrap_or(2);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let module = static_module_dir(dir)?.ok_or("not a StaticEmbedding model")?;
    let tokenizer = tokenizers::Tokenizer::from_file(module.join("tokenizer.json"))
        .map_err(|e| e.to_string())?;
    let mut model = StaticEmbedder::load(dir)?;
    let options = EmbedOptions {
        prompt_name: None,
        truncate_dim: 0,
        limits: Default::default(),
        max_total_tokens: usize::MAX,
    };
    let mut tokens = 0;
    let tokenize = best_us(3, refs.len(), || {
        tokens = refs
            .iter()
            .map(|t| tokenizer.encode_fast(*t, false).map_or(0, |e| e.len()))
            .sum();
    });
    let words = WordIds::for_tokenizer(&tokenizer).ok_or("this tokenizer gets no word cache")?;
    let by_word = || {
        for t in &refs {
            words.ids(&tokenizer, t).map(drop).unwrap_or(());
        }
    };
    let words_first = best_us(1, refs.len(), by_word);
    let words_known = best_us(3, refs.len(), by_word);
    model.threads = 1;
    let one = best_us(3, refs.len(), || {
        model
            .embed(&refs, &options, &mut || {})
            .map(drop)
            .unwrap_or(())
    });
    model.threads = threads;
    let many = best_us(3, refs.len(), || {
        model
            .embed(&refs, &options, &mut || {})
            .map(drop)
            .unwrap_or(())
    });
    println!(
        "{{\"texts\": {}, \"tokens_per_text\": {:.1}, \"tokenize_us\": {tokenize:.2}, \"words_first_us\": {words_first:.2}, \"words_known_us\": {words_known:.2}, \"embed_1_thread_us\": {one:.2}, \"pool_us\": {:.2}, \"embed_us\": {many:.2}, \"threads\": {threads}}}",
        refs.len(),
        tokens as f64 / refs.len() as f64,
        one - words_known
    );
    Ok(())
}
