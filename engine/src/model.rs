//! A loaded reranker: its files, tokenizer and ONNX Runtime session, and the scoring pipeline
//! encode → plan batches → (pad → run → head/logit) per batch → activation → input order.

use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ort::session::{builder::GraphOptimizationLevel, Session, SessionInputValue};
use ort::value::{Tensor, TensorRef, ValueType};
use parking_lot::Mutex;

use crate::batch::{plan_batches, BatchLimits};
use crate::cpu::CpuFeatures;
use crate::error::{EngineError, ErrorKind, Result};
use crate::files::{read_model_files, Layout, ModelFiles};
use crate::head::{Activation, Pooling};
use crate::quote::quoted;
use crate::runtime::Runtime;
use crate::tokenize::{EncodedPair, PairTokenizer};

/// How scores are post-processed (the `ettin.activation` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ActivationChoice {
    /// What the model's sentence-transformers config says (CrossEncoder.predict's default).
    Model,
    /// The raw logit.
    Raw,
    Sigmoid,
}

/// Where a model should run (the `ettin.device` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    Cpu,
    /// CUDA or an error: never a silent CPU fallback.
    Cuda,
    /// CUDA when the loaded ONNX Runtime has the provider and it starts, else CPU.
    #[default]
    Auto,
}

/// CUDA execution provider options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaOptions {
    pub device_id: i32,
    /// TF32 matmuls: ONNX Runtime's default and faster, but scores move ~1e-3 σ; off for parity.
    pub tf32: bool,
    /// Bound on the session's GPU memory arena in bytes (0: no bound); several backends share a GPU.
    pub memory_limit: usize,
}

impl Default for CudaOptions {
    fn default() -> Self {
        CudaOptions {
            device_id: 0,
            tf32: true,
            memory_limit: 0,
        }
    }
}

/// The device a loaded model actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda(i32),
}

const CUDA_PROVIDER: &str = "CUDAExecutionProvider";

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (one per physical core).
    pub intra_threads: usize,
    /// Let idle intra-op threads spin between ops instead of sleeping: faster for one caller,
    /// wasted cores when many backends share them.
    pub spinning: bool,
    /// A graph other than onnx/model.onnx, relative to the model directory.
    pub onnx_file: Option<String>,
    pub device: DeviceChoice,
    pub cuda: CudaOptions,
}

/// What makes two loads of one directory different models (threads and spinning do not: they
/// apply when a model loads).
pub type ModelKey = (Option<String>, DeviceChoice, CudaOptions);

impl LoadOptions {
    pub fn cache_key(&self) -> ModelKey {
        (self.onnx_file.clone(), self.device, self.cuda)
    }
}

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

fn add_elapsed(counter: &AtomicU64, since: Instant) {
    counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// A requested max_length capped by the model's length limit, if it has one.
pub fn capped_max_length(requested: usize, length_limit: Option<usize>) -> usize {
    length_limit.map_or(requested, |limit| requested.min(limit))
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

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct ScoreOptions {
    /// Tokens per pair including special tokens; capped by the model's position limit.
    pub max_length: usize,
    pub limits: BatchLimits,
    pub activation: ActivationChoice,
    /// Memory guard: most tokens (after truncation) one call may hold.
    pub max_total_tokens: usize,
}

pub struct Model {
    pub files: ModelFiles,
    pub load_ms: f32,
    tokenizer: PairTokenizer,
    session: Mutex<Session>,
    feeds_attention_mask: bool,
    feeds_token_type_ids: bool,
    output_name: String,
    output: GraphOutput,
    pub device: Device,
    /// What the graph's metadata says of its int8 weights ("7-bit", "full-range"), if anything.
    pub int8_weights: Option<String>,
    /// Why this device: e.g. "auto: ONNX Runtime has no CUDA provider".
    pub device_reason: String,
    pub options: LoadOptions,
    pub counters: Counters,
}

/// Backbone outputs ettin accepts for the modular layout, and the logits output of classic models.
const HIDDEN_OUTPUTS: [&str; 3] = ["last_hidden_state", "token_embeddings", CLS_OUTPUT];
const CLS_OUTPUT: &str = "cls_hidden_state";
const LOGITS_OUTPUT: &str = "logits";

pub const CPU_BATCH_TOKENS: usize = 1024;
pub const GPU_BATCH_TOKENS: usize = 16384;

fn cuda_provider(device_id: i32, cuda: CudaOptions) -> ort::ep::ExecutionProviderDispatch {
    let mut ep = ort::ep::CUDA::default()
        .with_device_id(device_id)
        .with_tf32(cuda.tf32);
    if cuda.memory_limit > 0 {
        // Grow the arena only by what is asked, so the bound is what a session really holds.
        ep = ep
            .with_memory_limit(cuda.memory_limit)
            .with_arena_extend_strategy(ort::ep::ArenaExtendStrategy::SameAsRequested);
    }
    ep.build().error_on_failure()
}

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
        let onnx_error = |what: &str, detail: &dyn std::fmt::Display| {
            EngineError::external(format!("could not load ONNX model {}: {what}", quoted(files.onnx.display())))
                .with_detail(detail)
                .with_hint("check that the file is a complete ONNX export; re-export it with tools/export_model.py")
        };
        let has_cuda = runtime.providers.iter().any(|p| p == CUDA_PROVIDER);
        let build = |device: Device| {
            crate::signals::with_signals_blocked(|| -> Result<Session> {
                let mut builder = Session::builder(&runtime.environment)
                    .and_then(|b| {
                        b.with_optimization_level(GraphOptimizationLevel::All)
                            .map_err(Into::into)
                    })
                    .and_then(|b| {
                        b.with_intra_threads(options.intra_threads)
                            .map_err(Into::into)
                    })
                    .and_then(|b| {
                        b.with_intra_op_spinning(options.spinning)
                            .map_err(Into::into)
                    })
                    .map_err(|e| onnx_error("session options were refused", &e))?;
                if let Device::Cuda(id) = device {
                    builder = builder
                        .with_execution_providers([cuda_provider(id, options.cuda)])
                        .map_err(|e| {
                            EngineError::external(format!("the CUDA execution provider did not start on device {id}"))
                                .with_detail(e)
                                .with_hint("check the GPU (nvidia-smi) and that the CUDA 13 and cuDNN 9 libraries are on the server's library path; or set ettin.device = 'cpu'")
                        })?;
                }
                builder
                    .commit_from_file(&files.onnx)
                    .map_err(|e| onnx_error("ONNX Runtime rejected it", &e))
            })
        };
        let device_id = options.cuda.device_id;
        let (session, device, device_reason) = match options.device {
            DeviceChoice::Cpu => (
                build(Device::Cpu)?,
                Device::Cpu,
                "ettin.device = cpu".to_owned(),
            ),
            DeviceChoice::Cuda if !has_cuda => {
                return Err(EngineError::unsupported(format!(
                    "ettin.device = cuda, but the ONNX Runtime at {} has no CUDA execution provider", quoted(runtime.library.display())))
                .with_detail(format!("providers: {:?}", runtime.providers))
                .with_hint("point ettin.onnxruntime_library at a GPU build (the onnxruntime-gpu wheel's libonnxruntime.so.1.31.1, see the README's GPU section), or set ettin.device = 'cpu' or 'auto'"));
            }
            DeviceChoice::Cuda => (
                build(Device::Cuda(device_id))?,
                Device::Cuda(device_id),
                "ettin.device = cuda".to_owned(),
            ),
            DeviceChoice::Auto if !has_cuda => (
                build(Device::Cpu)?,
                Device::Cpu,
                "auto: ONNX Runtime has no CUDA provider".to_owned(),
            ),
            DeviceChoice::Auto => match build(Device::Cuda(device_id)) {
                Ok(session) => (
                    session,
                    Device::Cuda(device_id),
                    "auto: ONNX Runtime has the CUDA provider".to_owned(),
                ),
                Err(e) => (
                    build(Device::Cpu)?,
                    Device::Cpu,
                    format!("auto: CUDA did not start ({})", e.message),
                ),
            },
        };

        let int8_weights = session
            .metadata()
            .ok()
            .and_then(|m| m.custom(INT8_WEIGHTS_KEY));
        if device == Device::Cpu {
            check_int8_weights(
                &files.onnx_relative().display().to_string(),
                int8_weights.as_deref(),
                &CpuFeatures::detect(),
            )?;
        }
        let input_names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for input in session.inputs() {
            if !matches!(
                input.name(),
                "input_ids" | "attention_mask" | "token_type_ids"
            ) {
                return Err(onnx_error(
                    &format!(
                        "it declares the input {}, which ettin cannot feed",
                        quoted(input.name())
                    ),
                    &format!("inputs: {input_names:?}"),
                ));
            }
            if !matches!(
                input.dtype(),
                ValueType::Tensor {
                    ty: ort::value::TensorElementType::Int64,
                    ..
                }
            ) {
                return Err(onnx_error(
                    &format!("input {} is not int64", quoted(input.name())),
                    &format!("{:?}", input.dtype()),
                ));
            }
        }
        if !input_names.contains(&"input_ids") {
            return Err(onnx_error(
                "it has no input_ids input",
                &format!("inputs: {input_names:?}"),
            ));
        }
        let output_names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        let wanted: &[&str] = match files.layout {
            Layout::Modular => &HIDDEN_OUTPUTS,
            Layout::Classic => &[LOGITS_OUTPUT],
        };
        let output = session
            .outputs()
            .iter()
            .find(|o| wanted.contains(&o.name()))
            .ok_or_else(|| layout_mismatch(&files, wanted, &output_names))?;
        let output_kind = match (files.layout, output.name()) {
            (Layout::Classic, _) => GraphOutput::Logits,
            (Layout::Modular, CLS_OUTPUT) => GraphOutput::ClsHiddenState,
            (Layout::Modular, _) => GraphOutput::HiddenStates,
        };
        if output_kind == GraphOutput::ClsHiddenState
            && files.head.as_ref().map(|h| h.pooling) != Some(Pooling::Cls)
        {
            return Err(onnx_error(
                "its cls_hidden_state output only serves a model with CLS pooling, and this model pools otherwise",
                &"1_Pooling/config.json",
            ));
        }
        check_output_shape(&files, output_kind, output.dtype())
            .map_err(|what| onnx_error(&what, &format!("{:?}", output.dtype())))?;
        let output_name = output.name().to_owned();
        let feeds_attention_mask = input_names.contains(&"attention_mask");
        let feeds_token_type_ids = input_names.contains(&"token_type_ids");
        Ok(Model {
            files,
            tokenizer,
            feeds_attention_mask,
            feeds_token_type_ids,
            output_name,
            output: output_kind,
            device,
            int8_weights,
            device_reason,
            options,
            counters: Counters::default(),
            session: Mutex::new(session),
            load_ms: started.elapsed().as_secs_f32() * 1000.0,
        })
    }

    /// Where the session runs, as ettin_models() shows it: `cpu` or `cuda:<id>`.
    pub fn device(&self) -> String {
        match self.device {
            Device::Cpu => "cpu".into(),
            Device::Cuda(id) => format!("cuda:{id}"),
        }
    }

    /// The padded-token budget per ONNX Runtime call when ettin.batch_tokens is 0. On CPU,
    /// batches of ~1K tokens keep activations in cache and pad little: 1.5–1.75× the throughput
    /// of 32 × 512 on the benchmark's pairs (docs/bench.md); a GPU wants big batches.
    pub fn default_batch_tokens(&self) -> usize {
        match self.device {
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

    /// Score (query, document) pairs, returning one score per pair in input order.
    /// `between_batches` runs before each chunk of tokenization and each ONNX Runtime call (the
    /// SQL layer checks for cancel there).
    pub fn score(
        &self,
        pairs: &[(&str, &str)],
        options: &ScoreOptions,
        between_batches: &mut dyn FnMut(),
    ) -> Result<Vec<f32>> {
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let call_started = Instant::now();
        let encoded = self.encode(pairs, options, between_batches)?;
        let total_tokens: usize = encoded.iter().map(|e| e.ids.len()).sum();
        let lengths: Vec<usize> = encoded.iter().map(|e| e.ids.len()).collect();
        let mut scores = vec![0f32; pairs.len()];
        let batches = plan_batches(&lengths, self.batch_limits(options.limits));
        let batch_count = batches.len() as u64;
        for batch in batches {
            between_batches();
            let logits = self.infer(&batch.iter().map(|i| &encoded[*i]).collect::<Vec<_>>())?;
            for (i, logit) in batch.iter().zip(logits) {
                scores[*i] = logit;
            }
        }
        let activation = self.activation(options.activation);
        scores.iter_mut().for_each(|s| *s = activation.apply(*s));
        self.count_call(pairs.len(), total_tokens, batch_count, call_started);
        Ok(scores)
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
        let max_length = self.effective_max_length(options.max_length);
        // Tokenizing thousands of long documents takes a while too: check for cancel per chunk.
        let mut encoded = Vec::with_capacity(pairs.len());
        let mut total_tokens = 0;
        for chunk in pairs.chunks(ENCODE_CHUNK) {
            between_batches();
            let tokenize_started = Instant::now();
            let chunk = self.tokenizer.encode_pairs(chunk, max_length)?;
            add_elapsed(&self.counters.tokenize_ns, tokenize_started);
            total_tokens += chunk.iter().map(|e| e.ids.len()).sum::<usize>();
            if total_tokens > options.max_total_tokens {
                return Err(EngineError::new(
                    ErrorKind::TooLarge,
                    format!(
                        "this call needs more than {} tokens ({} pairs of up to {max_length} tokens)",
                        options.max_total_tokens,
                        pairs.len()
                    ),
                )
                .with_hint("score fewer documents per call, lower ettin.max_length, or ask a superuser to raise ettin.max_tokens_per_call"));
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

    /// Pad one batch to its longest pair, run the graph and turn each row into a logit (before
    /// the activation).
    pub fn infer(&self, batch: &[&EncodedPair]) -> Result<Vec<f32>> {
        let rows = batch.len();
        let seq = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let pad_id = self.tokenizer.pad_id();
        let mut ids = Vec::with_capacity(rows * seq);
        let mut mask = Vec::with_capacity(rows * seq);
        let mut type_ids = Vec::with_capacity(if self.feeds_token_type_ids {
            rows * seq
        } else {
            0
        });
        for e in batch {
            let pad = seq - e.ids.len();
            ids.extend(e.ids.iter().map(|v| *v as i64));
            ids.extend(std::iter::repeat_n(pad_id, pad));
            mask.extend(std::iter::repeat_n(1i64, e.ids.len()));
            mask.extend(std::iter::repeat_n(0i64, pad));
            if self.feeds_token_type_ids {
                type_ids.extend(e.type_ids.iter().map(|v| *v as i64));
                type_ids.extend(std::iter::repeat_n(0i64, pad));
            }
        }
        let run_error = |e: ort::Error| {
            EngineError::external(format!(
                "ONNX Runtime failed to run {}",
                quoted(self.files.onnx.display())
            ))
            .with_detail(e)
        };
        let shape = [rows, seq];
        let mut inputs: Vec<(Cow<'static, str>, SessionInputValue<'_>)> = vec![(
            "input_ids".into(),
            Tensor::from_array((shape, ids)).map_err(run_error)?.into(),
        )];
        // Borrowed, not moved: the head still needs the mask (mean pooling) after the run.
        if self.feeds_attention_mask {
            inputs.push((
                "attention_mask".into(),
                TensorRef::from_array_view((shape, mask.as_slice()))
                    .map_err(run_error)?
                    .into(),
            ));
        }
        if self.feeds_token_type_ids {
            inputs.push((
                "token_type_ids".into(),
                Tensor::from_array((shape, type_ids))
                    .map_err(run_error)?
                    .into(),
            ));
        }
        let mut session = self.session.lock();
        let run_started = Instant::now();
        let outputs = session.run(inputs).map_err(run_error)?;
        add_elapsed(&self.counters.inference_ns, run_started);
        let (out_shape, data) = outputs[self.output_name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(run_error)?;
        match (&self.files.head, self.output) {
            (Some(head), GraphOutput::ClsHiddenState) => {
                let hidden = head.hidden_size;
                self.check_returned_shape(&out_shape, &[rows, hidden])?;
                Ok(data[..rows * hidden]
                    .chunks_exact(hidden)
                    .map(|cls| head.forward(cls))
                    .collect())
            }
            (Some(head), _) => {
                let hidden = head.hidden_size;
                self.check_returned_shape(&out_shape, &[rows, seq, hidden])?;
                let mut pooled = Vec::with_capacity(hidden);
                Ok((0..rows)
                    .map(|r| {
                        let states = &data[r * seq * hidden..(r + 1) * seq * hidden];
                        head.pool(states, &mask[r * seq..(r + 1) * seq], &mut pooled);
                        head.forward(&pooled)
                    })
                    .collect())
            }
            (None, _) => {
                if out_shape.len() != 2 || out_shape[0] as usize != rows || out_shape[1] != 1 {
                    return Err(EngineError::external(format!(
                        "{} returned logits of shape {:?}, expected [{rows}, 1]",
                        quoted(self.files.onnx.display()),
                        &out_shape[..]
                    )));
                }
                Ok(data[..rows].to_vec())
            }
        }
    }
}

/// ONNX metadata the export tool writes into int8 graphs: "7-bit" or "full-range" weights.
pub const INT8_WEIGHTS_KEY: &str = "ettin.int8_weights";

/// Full-range int8 weights are exact only where int8 matmuls accumulate in 32 bits (VNNI, AMX);
/// ONNX Runtime's AVX2 kernels saturate on them and return wrong scores, so refuse the graph
/// there rather than rank badly.
pub fn check_int8_weights(
    onnx_file: &str,
    int8_weights: Option<&str>,
    cpu: &CpuFeatures,
) -> Result<()> {
    if int8_weights == Some("full-range") && !cpu.int8_dot_product() {
        return Err(EngineError::unsupported(format!(
            "{} has full-range int8 weights, which this CPU ({}) cannot multiply exactly: it has no AVX512-VNNI, AVX-VNNI or AMX",
            quoted(onnx_file),
            if cpu.model.is_empty() { "unknown model" } else { cpu.model.as_str() },
        ))
        .with_hint("use the 7-bit variant (onnx/model_cls_int8.onnx from tools/export_model.py --int8), or the fp32 graph"));
    }
    Ok(())
}

/// The graph's outputs disagree with the layout the model's files describe (say, a `logits`
/// graph under a Pooling chain): one error that names both.
fn layout_mismatch(files: &ModelFiles, wanted: &[&str], outputs: &[&str]) -> EngineError {
    let hint = match files.layout {
        Layout::Modular => "a modular model needs the backbone graph (last_hidden_state): export it with tools/export_model.py; a graph with logits belongs to a classic model, whose modules.json has a lone Transformer module",
        Layout::Classic => "a classic cross-encoder needs a graph with the classification head (logits): export it with tools/export_model.py",
    };
    EngineError::external(format!(
        "model {}: {} makes it a {} cross-encoder, which needs a graph output named {}, but {} outputs {outputs:?}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_range_int8_is_refused_only_without_an_int8_dot_product() {
        let avx2 = CpuFeatures::parse("model name\t: AMD EPYC 7R32\nflags\t\t: avx2 fma\n");
        let vnni = CpuFeatures::parse(
            "model name\t: AMD EPYC 9R14\nflags\t\t: avx2 avx512f avx512_vnni\n",
        );
        let amx = CpuFeatures::parse("model name\t: Xeon\nflags\t\t: avx2 amx_tile amx_int8\n");
        let e = check_int8_weights("onnx/model_cls_int8_vnni.onnx", Some("full-range"), &avx2)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unsupported);
        assert!(
            e.message.contains("AMD EPYC 7R32") && e.message.contains("model_cls_int8_vnni.onnx"),
            "{e}"
        );
        assert!(e.hint.unwrap().contains("7-bit"));
        assert!(check_int8_weights("x.onnx", Some("full-range"), &vnni).is_ok());
        assert!(check_int8_weights("x.onnx", Some("full-range"), &amx).is_ok());
        assert!(check_int8_weights("x.onnx", Some("7-bit"), &avx2).is_ok());
        assert!(check_int8_weights("x.onnx", None, &avx2).is_ok());
    }
}
