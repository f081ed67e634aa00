//! The StaticEmbedding layout (sentence-transformers/static-retrieval-mrl-en-v1): a
//! token-embedding table averaged per text, pure Rust, no ONNX Runtime. Transformer embedders run
//! through model.rs like rerankers (same session, batching and tokenizer); this file shares their
//! tokenizer, weight readers, prompts, options and counters.
//!
//! What `SentenceTransformer.encode` does with it (sentence-transformers 6, checked against the
//! fixture's reference vectors): the prompt string is prepended to the text before tokenizing;
//! the text is tokenized without special tokens and without padding, truncated only if
//! tokenizer.json itself says so; the vector is the mean of the token rows (an empty text gives
//! zeros); nothing is normalized; `truncate_dim` keeps the first dimensions.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::Value;
use tokenizers::Tokenizer;

use crate::error::{EngineError, ErrorKind, Result};
use crate::json::read_json;
use crate::modules::{resolve_module_dir, ModuleWeights};
use crate::options::EmbedOptions;
use crate::prompts::{with_prompt, Prompts};
use crate::quote::quoted;
use crate::status::{Counters, ModelStatus};
use crate::tokenize::read_tokenizer;
use crate::word_ids::WordIds;

/// Where a StaticEmbedding module is: the Hub layout (`0_StaticEmbedding/`) or the model root
/// (what `model.save()` of sentence-transformers 6 writes). None if modules.json has no lone
/// StaticEmbedding module.
pub fn static_module_dir(dir: &Path) -> Result<Option<PathBuf>> {
    let path = dir.join("modules.json");
    if !path.is_file() {
        return Ok(None);
    }
    let modules = read_json(&path)?;
    let Some([module]) = modules.as_array().map(Vec::as_slice) else {
        return Ok(None);
    };
    let type_path = module.get("type").and_then(Value::as_str).unwrap_or("");
    if !(type_path.starts_with("sentence_transformers.") && type_path.ends_with(".StaticEmbedding"))
    {
        return Ok(None);
    }
    let rel = module.get("path").and_then(Value::as_str).unwrap_or("");
    resolve_module_dir(dir, rel).map(Some)
}

/// A loaded StaticEmbedding model.
pub struct StaticEmbedder {
    pub dir: PathBuf,
    pub dim: usize,
    pub prompts: Prompts,
    tokenizer: Tokenizer,
    /// Token ids kept by the word, for tokenizers where that is exact (word_ids.rs).
    word_ids: Option<WordIds>,
    /// vocab × dim, row-major.
    table: Vec<f32>,
    vocab: usize,
    pub load_ms: f32,
    pub counters: Counters,
    /// Threads that tokenize and pool a call's texts (ettin.threads; parallel.rs).
    pub threads: usize,
}

impl StaticEmbedder {
    pub fn load(dir: &Path) -> Result<Self> {
        let started = Instant::now();
        let module = static_module_dir(dir)?.ok_or_else(|| {
            EngineError::unsupported(format!(
                "model {} is not a StaticEmbedding model (modules.json has no lone StaticEmbedding module)",
                quoted(dir.display())
            ))
        })?;
        let mut tokenizer = read_tokenizer(&module.join("tokenizer.json"))?;
        // As StaticEmbedding does: no padding; the file's own truncation, if any, stays.
        tokenizer.with_padding(None);
        let (table, vocab, dim) = ModuleWeights::open(&module)?.matrix("embedding.weight")?;
        if vocab < tokenizer.get_vocab_size(true) {
            return Err(EngineError::external(format!(
                "model {}: the embedding table has {vocab} rows but the tokenizer {} tokens",
                quoted(dir.display()),
                tokenizer.get_vocab_size(true)
            )));
        }
        Ok(StaticEmbedder {
            dir: dir.to_path_buf(),
            dim,
            prompts: Prompts::read(dir)?,
            word_ids: WordIds::for_tokenizer(&tokenizer),
            tokenizer,
            table,
            vocab,
            load_ms: started.elapsed().as_secs_f32() * 1000.0,
            counters: Counters::default(),
            threads: crate::parallel::threads(0),
        })
    }

    /// What ettin_models() shows for this model, loaded under `name`.
    pub fn status(&self, name: &str) -> ModelStatus {
        ModelStatus {
            name: name.to_owned(),
            path: self.dir.display().to_string(),
            onnx_file: String::new(),
            layout: "static".to_owned(),
            device: "cpu".to_owned(),
            load_ms: self.load_ms,
            counters: self.counters.snapshot(),
            length_limit: None,
            queued_pairs: 0,
        }
    }

    /// One vector per text, as `encode(prompt_name=..., truncate_dim=...)` gives it.
    /// `between_chunks` runs every few hundred texts (cancel checks); the per-call token guard
    /// applies as for ONNX models.
    pub fn embed(
        &self,
        texts: &[&str],
        options: &EmbedOptions,
        between_chunks: &mut dyn FnMut(),
    ) -> Result<Vec<Vec<f32>>> {
        let prompt = self.prompts.text(options.prompt_name.as_deref())?;
        let started = Instant::now();
        let dim = match options.truncate_dim {
            0 => self.dim,
            n => n.min(self.dim),
        };
        let mut out = Vec::with_capacity(texts.len());
        let mut tokens = 0;
        for chunk in texts.chunks(256) {
            between_chunks();
            let embedded = crate::parallel::map(chunk, self.threads, |text| {
                let ids = self.token_ids(&with_prompt(prompt, text)).map_err(|e| {
                    EngineError::external("the tokenizer failed on a text").with_detail(e)
                })?;
                Ok((ids.len(), self.mean_of_rows(&ids, dim)?))
            })?;
            for (count, vector) in embedded {
                tokens += count;
                out.push(vector);
            }
            if tokens > options.max_total_tokens {
                return Err(EngineError::new(
                    ErrorKind::TooLarge,
                    format!(
                        "this call needs more than {} tokens ({} texts)",
                        options.max_total_tokens,
                        texts.len()
                    ),
                )
                .with_hint("pass fewer texts per call, or ask a superuser to raise ettin.max_tokens_per_call"));
            }
        }
        let c = &self.counters;
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.pairs.fetch_add(texts.len() as u64, Ordering::Relaxed);
        c.tokens.fetch_add(tokens as u64, Ordering::Relaxed);
        c.total_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(out)
    }

    /// A text's token ids without special tokens, by the word where the tokenizer allows it.
    fn token_ids(&self, text: &str) -> tokenizers::Result<Vec<u32>> {
        match &self.word_ids {
            Some(words) => words.ids(&self.tokenizer, text),
            None => Ok(self.tokenizer.encode_fast(text, false)?.get_ids().to_vec()),
        }
    }

    /// The mean of the table rows of `ids`, first `dim` columns (zeros for no ids); summed in
    /// f64 so long texts lose nothing to rounding.
    fn mean_of_rows(&self, ids: &[u32], dim: usize) -> Result<Vec<f32>> {
        let mut sum = vec![0f64; dim];
        for &id in ids {
            let id = id as usize;
            if id >= self.vocab {
                return Err(EngineError::external(format!(
                    "model {}: token id {id} is past the embedding table's {} rows",
                    quoted(self.dir.display()),
                    self.vocab
                )));
            }
            add_row(&mut sum, &self.table[id * self.dim..id * self.dim + dim]);
        }
        let n = ids.len().max(1) as f64;
        Ok(sum.into_iter().map(|s| (s / n) as f32).collect())
    }
}

/// `sum += row`, widened to f64. The hot loop of StaticEmbedding: a release build targets
/// baseline x86-64 (SSE2, two f64 lanes), so pick AVX-512 or AVX2 at run time when the CPU has it
/// (the same loop, compiled for wider vectors: 2–4× faster, identical results).
fn add_row(sum: &mut [f64], row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { add_row_avx512(sum, row) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { add_row_avx2(sum, row) };
        }
    }
    add_row_generic(sum, row)
}

#[inline(always)]
fn add_row_generic(sum: &mut [f64], row: &[f32]) {
    sum.iter_mut().zip(row).for_each(|(s, v)| *s += *v as f64);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_row_avx512(sum: &mut [f64], row: &[f32]) {
    add_row_generic(sum, row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_row_avx2(sum: &mut [f64], row: &[f32]) {
    add_row_generic(sum, row)
}
