//! The ONNX Runtime session every ONNX model kind shares (rerankers and embedders): building it
//! on the chosen device, checking what it takes, and running one padded batch.

use std::borrow::Cow;
use std::path::Path;
use std::time::Instant;

use ort::session::{builder::GraphOptimizationLevel, RunOptions, Session, SessionInputValue};
use ort::value::{Tensor, TensorRef, ValueType};
use parking_lot::Mutex;

use crate::cpu::CpuFeatures;
use crate::error::{EngineError, Result};
use crate::quote::quoted;
use crate::runtime::Runtime;
use crate::tokenize::EncodedPair;

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

/// ONNX metadata the export tool writes into int8 graphs: "7-bit" or "full-range" weights.
pub const INT8_WEIGHTS_KEY: &str = "ettin.int8_weights";
/// ONNX metadata of graphs that need the sequence padded to a multiple of this many tokens (the
/// long graph's banded attention works on blocks of 64).
pub const PAD_MULTIPLE_KEY: &str = "ettin.pad_multiple";
/// ONNX metadata of graphs whose attention keeps fewer heads' n × n scores alive at once than the
/// model has (the long graph: none, its attention is tiled), for the memory estimate.
pub const HEADS_AT_ONCE_KEY: &str = "ettin.attention_heads_at_once";

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

/// A loaded graph on its device, with what it takes and returns.
pub struct OnnxSession {
    session: Mutex<Session>,
    pub device: Device,
    /// Why this device: e.g. "auto: ONNX Runtime has no CUDA provider".
    pub device_reason: String,
    feeds_attention_mask: bool,
    feeds_token_type_ids: bool,
    /// The graph's outputs: name and declared type.
    pub outputs: Vec<(String, ValueType)>,
    onnx_display: String,
    /// Run options that give the arena's memory back after the run (memory.rs says when).
    release_memory: RunOptions,
    /// Batches are padded to a multiple of this many tokens (1: to their longest input).
    pad_multiple: usize,
    /// Attention heads whose scores the graph keeps alive at once, when it says (memory.rs).
    pub heads_at_once: Option<usize>,
}

/// The error for a graph ONNX Runtime cannot load or ettin cannot feed.
pub fn onnx_error(onnx: &Path, what: &str, detail: &dyn std::fmt::Display) -> EngineError {
    EngineError::external(format!(
        "could not load ONNX model {}: {what}",
        quoted(onnx.display())
    ))
    .with_detail(detail)
    .with_hint(
        "check that the file is a complete ONNX export; re-export it with tools/export_model.py",
    )
}

impl OnnxSession {
    /// Build a session for `onnx` on the device `options` choose; `onnx_relative` names the
    /// file in errors. Inputs must be int64 input_ids [, attention_mask, token_type_ids].
    pub fn open(
        runtime: &Runtime,
        onnx: &Path,
        onnx_relative: &str,
        options: &LoadOptions,
    ) -> Result<Self> {
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
                    .map_err(|e| onnx_error(onnx, "session options were refused", &e))?;
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
                    .commit_from_file(onnx)
                    .map_err(|e| onnx_error(onnx, "ONNX Runtime rejected it", &e))
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

        // What the export tool wrote into the graph (read, then the borrow of the session ends).
        let (int8_weights, pad_multiple, heads_at_once) = {
            let metadata = session.metadata().ok();
            let custom = |key: &str| metadata.as_ref().and_then(|m| m.custom(key));
            let number =
                |key: &str, least: usize| -> Result<Option<usize>> {
                    custom(key)
                        .map(|v| {
                            v.parse::<usize>()
                                .ok()
                                .filter(|n| *n >= least)
                                .ok_or_else(|| {
                                    onnx_error(
                                onnx,
                                &format!("its metadata {key} is not a number of at least {least}"),
                                &v,
                            )
                                })
                        })
                        .transpose()
                };
            (
                custom(INT8_WEIGHTS_KEY),
                number(PAD_MULTIPLE_KEY, 1)?.unwrap_or(1),
                number(HEADS_AT_ONCE_KEY, 0)?,
            )
        };
        if device == Device::Cpu {
            check_int8_weights(
                onnx_relative,
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
                    onnx,
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
                    onnx,
                    &format!("input {} is not int64", quoted(input.name())),
                    &format!("{:?}", input.dtype()),
                ));
            }
        }
        if !input_names.contains(&"input_ids") {
            return Err(onnx_error(
                onnx,
                "it has no input_ids input",
                &format!("inputs: {input_names:?}"),
            ));
        }
        let feeds_attention_mask = input_names.contains(&"attention_mask");
        let feeds_token_type_ids = input_names.contains(&"token_type_ids");
        let outputs = session
            .outputs()
            .iter()
            .map(|o| (o.name().to_owned(), o.dtype().clone()))
            .collect();
        let arenas = match device {
            Device::Cpu => "cpu:0".to_owned(),
            Device::Cuda(id) => format!("cpu:0;gpu:{id}"),
        };
        let mut release_memory =
            RunOptions::new().map_err(|e| onnx_error(onnx, "run options were refused", &e))?;
        release_memory
            .set("memory.enable_memory_arena_shrinkage", &arenas)
            .map_err(|e| onnx_error(onnx, "run options were refused", &e))?;
        Ok(OnnxSession {
            session: Mutex::new(session),
            device,
            device_reason,
            feeds_attention_mask,
            feeds_token_type_ids,
            outputs,
            onnx_display: onnx.display().to_string(),
            release_memory,
            pad_multiple,
            heads_at_once,
        })
    }

    /// The length a batch whose longest input has `longest` tokens is padded to.
    pub fn padded_len(&self, longest: usize) -> usize {
        longest.div_ceil(self.pad_multiple) * self.pad_multiple
    }

    /// Where the session runs, as ettin_models() shows it: `cpu` or `cuda:<id>`.
    pub fn device_name(&self) -> String {
        match self.device {
            Device::Cpu => "cpu".into(),
            Device::Cuda(id) => format!("cuda:{id}"),
        }
    }

    /// Pad one batch to its longest input, rounded up to the graph's pad multiple (right padding
    /// with `pad_id`, attention mask 0), run the graph and hand
    /// `read` the output `output`'s shape and data with the attention mask. With `release_memory`
    /// the arena gives back what the run took. Returns `read`'s result and the nanoseconds ONNX
    /// Runtime ran.
    pub fn run<T>(
        &self,
        batch: &[&EncodedPair],
        pad_id: i64,
        output: &str,
        release_memory: bool,
        read: impl FnOnce(&[i64], &[f32], &[i64]) -> Result<T>,
    ) -> Result<(T, u64)> {
        let rows = batch.len();
        let seq = self.padded_len(batch.iter().map(|e| e.ids.len()).max().unwrap_or(0));
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
                quoted(&self.onnx_display)
            ))
            .with_detail(e)
        };
        let shape = [rows, seq];
        let mut inputs: Vec<(Cow<'static, str>, SessionInputValue<'_>)> = vec![(
            "input_ids".into(),
            Tensor::from_array((shape, ids)).map_err(run_error)?.into(),
        )];
        // Borrowed, not moved: pooling still needs the mask after the run.
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
        let outputs = if release_memory {
            session.run_with_options(inputs, &self.release_memory)
        } else {
            session.run(inputs)
        }
        .map_err(run_error)?;
        let run_ns = run_started.elapsed().as_nanos() as u64;
        let (out_shape, data) = outputs[output]
            .try_extract_tensor::<f32>()
            .map_err(run_error)?;
        Ok((read(out_shape, data, &mask)?, run_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

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
