//! A loaded ONNX model — a cross-encoder or a transformer embedder — and the pipeline both use:
//! encode → plan batches → (pad → run → head) per batch → post-process → input order.
//! Scoring ends each row in a logit and an activation; embedding in a vector (pooling, Dense,
//! Normalize, truncate_dim). StaticEmbedding models (static_embedding.rs) need no ONNX Runtime.

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ort::value::ValueType;

use crate::batch::{plan_batches, BatchLimits};
use crate::error::{EngineError, ErrorKind, Result};
use crate::files::{read_model_files, Layout, ModelFiles};
use crate::head::Activation;
use crate::memory::{ActivationCost, KEEP_ARENA_FLOOR};
use crate::options::{ActivationChoice, EmbedOptions, ScoreOptions};
use crate::prompts::with_prompt;
use crate::quote::quoted;
use crate::runtime::Runtime;
use crate::session::{onnx_error, OnnxSession};
use crate::session::{Device, LoadOptions};
use crate::status::{add_elapsed, Counters, ModelStatus};
use crate::tokenize::{EncodedPair, PairTokenizer};

/// The length of a model that states none (no saved max length, no position embeddings).
pub const UNSTATED_MAX_LENGTH: usize = 512;

/// The max_length in force: the requested cap within the model's own length limit, which is
/// where sentence-transformers truncates (a model that states none: 512).
pub fn capped_max_length(requested: usize, length_limit: Option<usize>) -> usize {
    requested.min(length_limit.unwrap_or(UNSTATED_MAX_LENGTH))
}

/// What the graph returns, and so what the head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GraphOutput {
    /// [batch, seq, hidden]: a backbone; the head pools it.
    HiddenStates,
    /// [batch, hidden]: the export tool's CLS-only backbone (its last layer computes only the
    /// first position); the head uses it as the pooled vector.
    ClsHiddenState,
    /// [batch, 1]: a classic model's logits.
    Logits,
}

pub struct Model {
    pub files: ModelFiles,
    pub load_ms: f32,
    tokenizer: PairTokenizer,
    session: OnnxSession,
    output_name: String,
    output: GraphOutput,
    /// Threads that tokenize a call's inputs: ettin.threads, as for ONNX Runtime (resolved once:
    /// finding the usable cores reads cgroup files).
    tokenize_threads: usize,
    /// The model's shape for the memory estimate, with the heads the graph keeps alive at once.
    cost: ActivationCost,
    pub options: LoadOptions,
    pub counters: Counters,
}

/// Backbone outputs ettin accepts for the modular layout, and the logits output of classic models.
const HIDDEN_OUTPUTS: [&str; 3] = ["last_hidden_state", "token_embeddings", CLS_OUTPUT];
const CLS_OUTPUT: &str = "cls_hidden_state";
const LOGITS_OUTPUT: &str = "logits";

pub const CPU_BATCH_TOKENS: usize = 1024;
pub const GPU_BATCH_TOKENS: usize = 16384;

/// Pairs tokenized between two cancel checks.
const ENCODE_CHUNK: usize = 256;

impl Model {
    /// Read, validate and load the model in `dir`: every file is checked here, so a bad model
    /// fails at load with one message rather than in the middle of a batch.
    pub fn load(runtime: &Runtime, dir: &Path, options: LoadOptions) -> Result<Model> {
        let started = Instant::now();
        let files = read_model_files(dir, options.onnx_file.as_deref())?;
        let tokenizer = PairTokenizer::load(
            &files.tokenizer,
            files.pad_token.as_deref(),
            files.pad_token_id,
            files.lowercase,
        )?;
        let onnx_relative = files.onnx_relative().display().to_string();
        let session = OnnxSession::open(runtime, &files.onnx, &onnx_relative, &options)?;
        let output_names: Vec<&str> = session.outputs.iter().map(|(n, _)| n.as_str()).collect();
        let wanted: &[&str] = match files.layout {
            Layout::Modular | Layout::Embedding => &HIDDEN_OUTPUTS,
            Layout::Classic => &[LOGITS_OUTPUT],
        };
        let (output_name, output_type) = session
            .outputs
            .iter()
            .find(|(name, _)| wanted.contains(&name.as_str()))
            .ok_or_else(|| layout_mismatch(&files, wanted, &output_names))?;
        let output_kind = match (files.layout, output_name.as_str()) {
            (Layout::Classic, _) => GraphOutput::Logits,
            (_, CLS_OUTPUT) => GraphOutput::ClsHiddenState,
            (_, _) => GraphOutput::HiddenStates,
        };
        if output_kind == GraphOutput::ClsHiddenState
            && !files.head.as_ref().is_some_and(|h| h.pools_cls_only())
        {
            return Err(onnx_error(
                &files.onnx,
                "its cls_hidden_state output only serves a model with CLS pooling, and this model pools otherwise",
                &"1_Pooling/config.json",
            ));
        }
        check_output_shape(&files, output_kind, output_type)
            .map_err(|what| onnx_error(&files.onnx, &what, &format!("{output_type:?}")))?;
        let cost = ActivationCost {
            heads: session.heads_at_once.unwrap_or(files.activation_cost.heads),
            ..files.activation_cost
        };
        Ok(Model {
            cost,
            output_name: output_name.clone(),
            output: output_kind,
            tokenize_threads: crate::parallel::threads(options.intra_threads),
            files,
            tokenizer,
            session,
            options,
            counters: Counters::default(),
            load_ms: started.elapsed().as_secs_f32() * 1000.0,
        })
    }

    /// Where the session runs, as ettin_models() shows it: `cpu` or `cuda:<id>`.
    pub fn device(&self) -> String {
        self.session.device_name()
    }

    /// Why this device: e.g. "auto: ONNX Runtime has no CUDA provider".
    pub fn device_reason(&self) -> &str {
        &self.session.device_reason
    }

    /// The padded-token budget per ONNX Runtime call when ettin.batch_tokens is 0. On CPU,
    /// batches of ~1K tokens keep activations in cache and pad little: 1.5–1.75× the throughput
    /// of 32 × 512 on the benchmark's pairs (docs/bench.md); a GPU wants big batches.
    pub fn default_batch_tokens(&self) -> usize {
        match self.session.device {
            Device::Cpu => CPU_BATCH_TOKENS,
            Device::Cuda(_) => GPU_BATCH_TOKENS,
        }
    }

    /// `limits` with a max_tokens of 0 replaced by this model's device default.
    pub fn batch_limits(&self, limits: BatchLimits) -> BatchLimits {
        BatchLimits {
            max_tokens: match limits.max_tokens {
                0 => self.default_batch_tokens(),
                n => n,
            },
            ..limits
        }
    }

    /// What ettin_models() shows for this model, loaded under `name`.
    pub fn status(&self, name: &str) -> ModelStatus {
        ModelStatus {
            name: name.to_owned(),
            path: self.files.dir.display().to_string(),
            onnx_file: self.files.onnx_relative().display().to_string(),
            layout: self.files.layout.as_str().to_owned(),
            device: self.device(),
            load_ms: self.load_ms,
            counters: self.counters.snapshot(),
            length_limit: self.files.length_limit,
            queued_pairs: 0,
        }
    }

    /// The tokens per pair actually used for a requested max_length.
    pub fn effective_max_length(&self, requested: usize) -> usize {
        capped_max_length(requested, self.files.length_limit)
    }

    /// A cross-encoder's calls on an embedder (and the reverse) are refused with the function
    /// that fits, before any work.
    fn require_cross_encoder(&self) -> Result<()> {
        if self.files.layout.is_cross_encoder() {
            return Ok(());
        }
        Err(not_a_cross_encoder(
            &self.files.dir,
            &self.files.layout_reason,
        ))
    }

    fn require_embedder(&self) -> Result<()> {
        if !self.files.layout.is_cross_encoder() {
            return Ok(());
        }
        Err(not_an_embedder(&self.files.dir, &self.files.layout_reason))
    }

    /// Score (query, document) pairs, returning one score per pair in input order.
    /// `between_batches` runs before each chunk of tokenization and each ONNX Runtime call (the
    /// SQL layer checks for cancel there).
    pub fn score(
        &self,
        pairs: &[(&str, &str)],
        options: &ScoreOptions,
        between_batches: &mut dyn FnMut(),
    ) -> Result<Vec<f32>> {
        self.require_cross_encoder()?;
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let call_started = Instant::now();
        let encoded = self.encode(pairs, options, between_batches)?;
        let activation = self.activation(options.activation);
        let mut scores = vec![0f32; pairs.len()];
        let batches =
            self.run_batches(&encoded, options.limits, 0, between_batches, |i, row| {
                scores[i] = activation.apply(row[0]);
            })?;
        self.count_call(pairs.len(), total_tokens(&encoded), batches, call_started);
        Ok(scores)
    }

    /// Embed texts as `SentenceTransformer.encode` does: the prompt prepended to each text, the
    /// model's own max_seq_length, pooling (leaving the prompt out when the model says so),
    /// Dense/Normalize, then the first `truncate_dim` dimensions. One vector per text, in order.
    pub fn embed(
        &self,
        texts: &[&str],
        options: &EmbedOptions,
        between_batches: &mut dyn FnMut(),
    ) -> Result<Vec<Vec<f32>>> {
        self.require_embedder()?;
        let prompt = self.files.prompts.text(options.prompt_name.as_deref())?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let call_started = Instant::now();
        let max_length = self.embed_max_length();
        // Only a Pooling with include_prompt false needs to know where the prompt ends.
        let prompt_tokens = match &self.files.head {
            Some(head) if !prompt.is_empty() && !head.include_prompt => {
                self.tokenizer.prompt_length(prompt, max_length)?
            }
            _ => 0,
        };
        let inputs: Vec<Cow<str>> = texts.iter().map(|t| with_prompt(prompt, t)).collect();
        let encoded = self.encode_guarded(
            inputs.len(),
            max_length,
            options.max_total_tokens,
            between_batches,
            |range| {
                let chunk: Vec<&str> = inputs[range].iter().map(|c| c.as_ref()).collect();
                self.tokenizer
                    .encode_texts(&chunk, max_length, self.tokenize_threads)
            },
        )?;
        let mut vectors = vec![Vec::new(); texts.len()];
        let batches = self.run_batches(
            &encoded,
            options.limits,
            prompt_tokens,
            between_batches,
            |i, mut row| {
                if options.truncate_dim > 0 {
                    row.truncate(options.truncate_dim);
                }
                vectors[i] = row;
            },
        )?;
        self.count_call(texts.len(), total_tokens(&encoded), batches, call_started);
        Ok(vectors)
    }

    /// An embedder's truncation length: its saved max_seq_length, else its positions, else 512.
    pub fn embed_max_length(&self) -> usize {
        self.files.length_limit.unwrap_or(UNSTATED_MAX_LENGTH)
    }

    /// Plan batches over `encoded` and run them, handing each row's output (a logit, or an
    /// embedding) to `put` with the row's input index. Returns the number of batches.
    fn run_batches(
        &self,
        encoded: &[EncodedPair],
        limits: BatchLimits,
        prompt_tokens: usize,
        between_batches: &mut dyn FnMut(),
        mut put: impl FnMut(usize, Vec<f32>),
    ) -> Result<u64> {
        let limits = self.batch_limits(limits);
        self.check_batch_memory(encoded, limits)?;
        let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
        let batches = plan_batches(&lengths, limits, |rows, seq| self.batch_bytes(rows, seq));
        let count = batches.len() as u64;
        for batch in batches {
            between_batches();
            let rows = self.infer_rows(
                &batch.iter().map(|i| &encoded[*i]).collect::<Vec<_>>(),
                prompt_tokens,
            )?;
            for (i, row) in batch.into_iter().zip(rows) {
                put(i, row);
            }
        }
        Ok(count)
    }

    /// An error unless the longest input fits `limits.max_memory` on its own (checked before any
    /// batch runs: a call is refused whole, not after some of its batches).
    pub fn check_batch_memory(&self, encoded: &[EncodedPair], limits: BatchLimits) -> Result<()> {
        let longest = encoded.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        self.cost
            .check_one(self.session.padded_len(longest), limits.max_memory)
    }

    /// Batches estimated above this give ONNX Runtime's arena memory back (memory.rs): more than
    /// the model's ordinary batch (one row of the device's default token budget).
    fn keep_arena_bytes(&self) -> usize {
        KEEP_ARENA_FLOOR.max(self.batch_bytes(1, self.default_batch_tokens()))
    }

    /// Estimated activation bytes of a batch of `rows` inputs whose longest has `longest` tokens,
    /// as the session pads it.
    pub fn batch_bytes(&self, rows: usize, longest: usize) -> usize {
        self.cost.bytes(rows, self.session.padded_len(longest))
    }

    /// The activation a choice means for this model.
    pub fn activation(&self, choice: ActivationChoice) -> Activation {
        match choice {
            ActivationChoice::Model => self.files.activation,
            ActivationChoice::Raw => Activation::Identity,
            ActivationChoice::Sigmoid => Activation::Sigmoid,
        }
    }

    /// Add one finished call to the counters (score() does; the shared worker per request).
    pub fn count_call(&self, pairs: usize, tokens: usize, batches: u64, started: Instant) {
        let c = &self.counters;
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.pairs.fetch_add(pairs as u64, Ordering::Relaxed);
        c.tokens.fetch_add(tokens as u64, Ordering::Relaxed);
        c.batches.fetch_add(batches, Ordering::Relaxed);
        add_elapsed(&c.total_ns, started);
    }

    /// Tokenize pairs at the effective max_length, enforcing the per-call token guard.
    pub fn encode(
        &self,
        pairs: &[(&str, &str)],
        options: &ScoreOptions,
        between_batches: &mut dyn FnMut(),
    ) -> Result<Vec<EncodedPair>> {
        self.require_cross_encoder()?;
        let max_length = self.effective_max_length(options.max_length);
        self.encode_guarded(
            pairs.len(),
            max_length,
            options.max_total_tokens,
            between_batches,
            |range| {
                self.tokenizer
                    .encode_pairs(&pairs[range], max_length, self.tokenize_threads)
            },
        )
    }

    /// Tokenize `count` inputs chunk by chunk (cancel checks between chunks: tokenizing
    /// thousands of long texts takes a while too), refusing a call past `max_total_tokens`.
    fn encode_guarded(
        &self,
        count: usize,
        max_length: usize,
        max_total_tokens: usize,
        between_batches: &mut dyn FnMut(),
        encode_chunk: impl Fn(std::ops::Range<usize>) -> Result<Vec<EncodedPair>>,
    ) -> Result<Vec<EncodedPair>> {
        let mut encoded = Vec::with_capacity(count);
        let mut total_tokens = 0;
        for start in (0..count).step_by(ENCODE_CHUNK) {
            between_batches();
            let tokenize_started = Instant::now();
            let chunk = encode_chunk(start..(start + ENCODE_CHUNK).min(count))?;
            add_elapsed(&self.counters.tokenize_ns, tokenize_started);
            total_tokens += self::total_tokens(&chunk);
            if total_tokens > max_total_tokens {
                return Err(EngineError::new(
                    ErrorKind::TooLarge,
                    format!(
                        "this call needs more than {max_total_tokens} tokens ({count} inputs of up to {max_length} tokens)"
                    ),
                )
                .with_hint("pass fewer texts per call, lower ettin.max_length, or ask a superuser to raise ettin.max_tokens_per_call"));
            }
            encoded.extend(chunk);
        }
        Ok(encoded)
    }

    /// A graph whose output shape differs from what its declaration promised is refused, not
    /// read out of bounds.
    fn check_returned_shape(&self, got: &[i64], expected: &[usize]) -> Result<()> {
        if got.len() != expected.len() || got.iter().zip(expected).any(|(g, e)| *g as usize != *e) {
            return Err(EngineError::external(format!(
                "{} returned shape {got:?}, expected {expected:?}",
                quoted(self.files.onnx.display())
            )));
        }
        Ok(())
    }

    /// One batch's logits (before the activation): the shared worker's entry point.
    pub fn infer(&self, batch: &[&EncodedPair]) -> Result<Vec<f32>> {
        Ok(self
            .infer_rows(batch, 0)?
            .into_iter()
            .map(|row| row[0])
            .collect())
    }

    /// Run one batch and turn each row into the head's output: one logit for a cross-encoder,
    /// the embedding for an embedder. `prompt_tokens` leading tokens are the prompt's.
    fn infer_rows(&self, batch: &[&EncodedPair], prompt_tokens: usize) -> Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let longest = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let seq = self.session.padded_len(longest);
        let read =
            |out_shape: &[i64], data: &[f32], mask: &[i64]| match (&self.files.head, self.output) {
                (Some(head), GraphOutput::ClsHiddenState) => {
                    let hidden = head.hidden_size;
                    self.check_returned_shape(out_shape, &[rows, hidden])?;
                    Ok(data[..rows * hidden]
                        .chunks_exact(hidden)
                        .map(|cls| head.forward_vec(cls))
                        .collect())
                }
                (Some(head), _) => {
                    let hidden = head.hidden_size;
                    self.check_returned_shape(out_shape, &[rows, seq, hidden])?;
                    let mut pooled = Vec::with_capacity(hidden * head.pooling.len());
                    Ok((0..rows)
                        .map(|r| {
                            let states = &data[r * seq * hidden..(r + 1) * seq * hidden];
                            let mask = &mask[r * seq..(r + 1) * seq];
                            head.pool(states, mask, prompt_tokens, &mut pooled);
                            head.forward_vec(&pooled)
                        })
                        .collect())
                }
                (None, _) => {
                    if out_shape.len() != 2 || out_shape[0] as usize != rows || out_shape[1] != 1 {
                        return Err(EngineError::external(format!(
                            "{} returned logits of shape {:?}, expected [{rows}, 1]",
                            quoted(self.files.onnx.display()),
                            out_shape
                        )));
                    }
                    Ok(data[..rows].iter().map(|l| vec![*l]).collect())
                }
            };
        let release_memory = self.batch_bytes(rows, longest) > self.keep_arena_bytes();
        let (rows, run_ns) = self.session.run(
            batch,
            self.tokenizer.pad_id(),
            &self.output_name,
            release_memory,
            read,
        )?;
        self.counters
            .inference_ns
            .fetch_add(run_ns, Ordering::Relaxed);
        Ok(rows)
    }
}

fn total_tokens(encoded: &[EncodedPair]) -> usize {
    encoded.iter().map(|e| e.ids.len()).sum()
}

/// The error for an embedder given to rerank_score/ettin_rerank.
pub fn not_a_cross_encoder(dir: &Path, layout_reason: &str) -> EngineError {
    EngineError::unsupported(format!(
        "model {} is an embedding model ({layout_reason}), not a cross-encoder",
        quoted(dir.display()),
    ))
    .with_hint("embed texts with ettin_embed(); rerank with a cross-encoder such as cross-encoder/ettin-reranker-17m-v1")
}

/// The error for a cross-encoder given to ettin_embed.
pub fn not_an_embedder(dir: &Path, layout_reason: &str) -> EngineError {
    EngineError::unsupported(format!(
        "model {} is a cross-encoder ({layout_reason}), not an embedding model",
        quoted(dir.display()),
    ))
    .with_hint("score (query, document) pairs with rerank_score() or ettin_rerank(); embed with a SentenceTransformer model such as sentence-transformers/static-retrieval-mrl-en-v1")
}

/// The graph's outputs disagree with the layout the model's files describe (say, a `logits`
/// graph under a Pooling chain): one error that names both.
fn layout_mismatch(files: &ModelFiles, wanted: &[&str], outputs: &[&str]) -> EngineError {
    let hint = match files.layout {
        Layout::Embedding => "an embedding model needs the backbone graph (last_hidden_state): export it with tools/export_model.py --embedder",
        Layout::Modular => "a modular model needs the backbone graph (last_hidden_state): export it with tools/export_model.py; a graph with logits belongs to a classic model, whose modules.json has a lone Transformer module",
        Layout::Classic => "a classic cross-encoder needs a graph with the classification head (logits): export it with tools/export_model.py",
    };
    EngineError::external(format!(
        "model {}: {} makes it a {} model, which needs a graph output named {}, but {} outputs {outputs:?}",
        quoted(files.dir.display()),
        files.layout_reason,
        files.layout.as_str(),
        wanted.join(" or "),
        quoted(files.onnx_relative().display()),
    ))
    .with_hint(hint)
}

/// Check the declared output against the layout: [batch, seq, hidden] floats for a backbone
/// (hidden matching the head when the graph fixes it), [batch, 1] floats for logits.
fn check_output_shape(
    files: &ModelFiles,
    output: GraphOutput,
    dtype: &ValueType,
) -> std::result::Result<(), String> {
    let ValueType::Tensor { ty, shape, .. } = dtype else {
        return Err("its output is not a tensor".into());
    };
    if *ty != ort::value::TensorElementType::Float32 {
        return Err(format!("its output is {ty:?}, ettin reads float32"));
    }
    match &files.head {
        Some(head) if output == GraphOutput::ClsHiddenState => {
            if shape.len() != 2 || (shape[1] > 0 && shape[1] as usize != head.hidden_size) {
                return Err(format!(
                    "its cls_hidden_state has shape {:?}; the head expects [batch, {}]",
                    &shape[..],
                    head.hidden_size
                ));
            }
        }
        Some(head) => {
            if shape.len() != 3 {
                return Err(format!(
                    "its output has rank {}, a backbone's last_hidden_state has rank 3",
                    shape.len()
                ));
            }
            if shape[2] > 0 && shape[2] as usize != head.hidden_size {
                return Err(format!(
                    "its hidden size is {} but the head expects {}",
                    shape[2], head.hidden_size
                ));
            }
        }
        None => {
            if shape.len() != 2 || (shape[1] > 0 && shape[1] != 1) {
                return Err(format!(
                    "its logits have shape {:?}; ettin needs one logit per pair",
                    &shape[..]
                ));
            }
        }
    }
    Ok(())
}
