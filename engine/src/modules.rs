//! sentence-transformers modules.json: which modules a model has, and the weights of the modules
//! after the backbone (Pooling → Dense / LayerNorm / Normalize), read from each module's
//! safetensors: a CrossEncoder's scoring head or an embedder's pooling chain.

use std::path::{Component, Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::head::{Activation, Dense, Head, Layer, LayerNorm, Pooling};
use crate::json::{read_json, read_json_if_exists};
use crate::quote::quoted;

/// The kind of a modules.json entry, from its type path. sentence-transformers 3.x–5.x write
/// `sentence_transformers.models.Dense`; 6.x moved modules to other packages but kept the class
/// names, so the last path component identifies the module.
fn module_kind(type_path: &str) -> Option<&str> {
    if !type_path.starts_with("sentence_transformers.") {
        return None;
    }
    let name = type_path.rsplit('.').next()?;
    matches!(
        name,
        "Transformer" | "Pooling" | "Dense" | "LayerNorm" | "Normalize"
    )
    .then_some(name)
}

/// What the Transformer module's `sentence_bert_config.json` says (keys of every version).
#[derive(Debug, Clone, Default)]
pub struct TransformerConfig {
    /// sentence-transformers ≤ 5: lowercase before tokenizing (6 bakes it into tokenizer.json).
    pub lowercase: bool,
    /// sentence-transformers ≤ 5 saved the truncation length here (6 saves tokenizer_config.json's
    /// model_max_length).
    pub max_seq_length: Option<usize>,
    /// sentence-transformers 6: "feature-extraction" (a backbone) or "sequence-classification".
    pub task: Option<String>,
}

impl TransformerConfig {
    pub fn read(module_dir: &Path) -> Result<Self> {
        let cfg = read_json_if_exists(&module_dir.join("sentence_bert_config.json"))?
            .unwrap_or(Value::Null);
        Ok(TransformerConfig {
            lowercase: cfg
                .get("do_lower_case")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            max_seq_length: cfg
                .get("max_seq_length")
                .and_then(Value::as_u64)
                .map(|v| v as usize),
            task: cfg
                .get("transformer_task")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// What a modules.json describes.
#[derive(Debug, Clone)]
pub enum Modules {
    /// Transformer → Pooling → Dense/LayerNorm/Normalize …: a backbone whose head ettin applies
    /// (ending in one logit: a CrossEncoder; in a vector: an embedder).
    Chain {
        transformer: TransformerConfig,
        head: Head,
    },
    /// A lone Transformer module: what sentence-transformers 6 saves for a classic
    /// *ForSequenceClassification cross-encoder, whose graph computes the logit itself.
    LoneTransformer(TransformerConfig),
}

pub fn read_modules(dir: &Path, modules_path: &Path, config: &Value) -> Result<Modules> {
    let modules = read_json(modules_path)?;
    let modules = modules.as_array().ok_or_else(|| {
        EngineError::external(format!(
            "{} is not a JSON list of modules",
            quoted(modules_path.display())
        ))
    })?;
    let mut pooling: Option<(Vec<Pooling>, bool)> = None;
    let mut layers = Vec::new();
    let mut transformer = TransformerConfig::default();
    let mut hidden_size = config
        .get("hidden_size")
        .and_then(Value::as_u64)
        .map(|v| v as usize);
    for (position, module) in modules.iter().enumerate() {
        let type_path = module.get("type").and_then(Value::as_str).unwrap_or("");
        let rel = module.get("path").and_then(Value::as_str).unwrap_or("");
        let module_dir = resolve_module_dir(dir, rel)?;
        let kind = module_kind(type_path).ok_or_else(|| {
            EngineError::unsupported(format!(
                "model {}: module {position} has type {}, which ettin does not support",
                quoted(dir.display()),
                quoted(type_path)
            ))
            .with_hint("ettin supports Transformer, Pooling, Dense, LayerNorm and Normalize modules (and a lone StaticEmbedding)")
        })?;
        match (position, kind) {
            (0, "Transformer") => transformer = TransformerConfig::read(&module_dir)?,
            (0, other) | (_, other @ "Transformer") => {
                return Err(EngineError::unsupported(format!(
                    "model {}: module {position} is {other}; ettin expects exactly one Transformer module, first",
                    quoted(dir.display())
                )))
            }
            (_, "Pooling") => {
                let cfg = read_json(&module_dir.join("config.json"))?;
                pooling = Some(read_pooling(&cfg, &module_dir)?);
                if let Some(dim) = cfg
                    .get("embedding_dimension")
                    .or_else(|| cfg.get("word_embedding_dimension"))
                    .and_then(Value::as_u64)
                {
                    hidden_size.get_or_insert(dim as usize);
                }
            }
            (_, "Dense") => layers.push(Layer::Dense(read_dense(&module_dir)?)),
            (_, "Normalize") => layers.push(Layer::Normalize),
            (_, _) => layers.push(Layer::LayerNorm(read_layer_norm(&module_dir)?)),
        }
        if position > 0 && kind != "Pooling" && pooling.is_none() {
            return Err(EngineError::unsupported(format!(
                "model {}: module {position} ({kind}) comes before any Pooling module",
                quoted(dir.display())
            )));
        }
    }
    if modules.len() == 1 {
        return Ok(Modules::LoneTransformer(transformer));
    }
    let (pooling, include_prompt) = pooling.ok_or_else(|| {
        EngineError::unsupported(format!(
            "model {}: modules.json has no Pooling module",
            quoted(dir.display())
        ))
    })?;
    let hidden_size = hidden_size.ok_or_else(|| {
        EngineError::external(format!(
            "model {}: hidden size unknown (no config.json hidden_size)",
            quoted(dir.display())
        ))
    })?;
    let head = Head {
        pooling,
        include_prompt,
        hidden_size,
        layers,
    };
    head.validate().map_err(|e| EngineError {
        message: format!("model {}: {}", quoted(dir.display()), e.message),
        ..e
    })?;
    Ok(Modules::Chain { transformer, head })
}

pub(crate) fn resolve_module_dir(dir: &Path, rel: &str) -> Result<PathBuf> {
    let path = Path::new(rel);
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(EngineError::external(format!(
            "model {}: modules.json names the module path {rel_q}, outside the model directory",
            quoted(dir.display()),
            rel_q = quoted(&rel)
        )));
    }
    Ok(dir.join(path))
}

/// The pooling modes (in concatenation order) and include_prompt of a Pooling config.
fn read_pooling(cfg: &Value, module_dir: &Path) -> Result<(Vec<Pooling>, bool)> {
    // sentence-transformers 6 writes "pooling_mode": "cls" (or a list); earlier versions one flag
    // per mode, concatenated in this order (no flag set means mean).
    let names: Vec<String> = match cfg.get("pooling_mode") {
        Some(Value::String(mode)) => vec![mode.clone()],
        Some(Value::Array(modes)) => modes
            .iter()
            .map(|m| m.as_str().unwrap_or("?").to_owned())
            .collect(),
        _ => {
            let flags = [
                ("cls_token", "cls"),
                ("max_tokens", "max"),
                ("mean_tokens", "mean"),
                ("mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                ("weightedmean_tokens", "weightedmean"),
                ("lasttoken", "lasttoken"),
            ];
            let on: Vec<String> = flags
                .iter()
                .filter(|(f, _)| {
                    cfg.get(format!("pooling_mode_{f}"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                })
                .map(|(_, mode)| (*mode).to_owned())
                .collect();
            if on.is_empty() {
                vec!["mean".to_owned()]
            } else {
                on
            }
        }
    };
    let modes = names
        .iter()
        .map(|name| {
            Pooling::from_name(name).ok_or_else(|| {
                EngineError::unsupported(format!(
                    "pooling mode {} in {} is not supported (cls, mean, max, mean_sqrt_len_tokens and lasttoken are)",
                    quoted(name),
                    quoted(module_dir.display()),
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let include_prompt = cfg
        .get("include_prompt")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    Ok((modes, include_prompt))
}

/// Load float32 tensors from a module's model.safetensors.
pub(crate) struct ModuleWeights {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl ModuleWeights {
    pub(crate) fn open(module_dir: &Path) -> Result<Self> {
        let path = module_dir.join("model.safetensors");
        if !path.is_file() {
            let hint = if module_dir.join("pytorch_model.bin").is_file() {
                "this module has only pytorch_model.bin; convert it with tools/export_model.py"
            } else {
                "copy the module's model.safetensors from the model repository"
            };
            return Err(EngineError::missing(format!(
                "head weights {} do not exist",
                quoted(path.display())
            ))
            .with_hint(hint));
        }
        let bytes = std::fs::read(&path).map_err(|e| {
            EngineError::external(format!("could not read {}", quoted(path.display())))
                .with_detail(e)
        })?;
        Ok(ModuleWeights { path, bytes })
    }

    fn tensor(&self, name: &str, expected_shape: &[usize]) -> Result<Option<Vec<f32>>> {
        Ok(self.load(name, Some(expected_shape))?.map(|(data, _)| data))
    }

    /// A 2-D float32 tensor of any size (an embedding table): its data, rows and columns.
    pub(crate) fn matrix(&self, name: &str) -> Result<(Vec<f32>, usize, usize)> {
        let missing = || {
            EngineError::external(format!(
                "{} has no tensor {}",
                quoted(self.path.display()),
                quoted(name)
            ))
        };
        let (data, shape) = self.load(name, None)?.ok_or_else(missing)?;
        match shape[..] {
            [rows, cols] => Ok((data, rows, cols)),
            _ => Err(EngineError::external(format!(
                "tensor {} in {} has shape {shape:?}, expected a matrix",
                quoted(name),
                quoted(self.path.display())
            ))),
        }
    }

    /// The float32 tensor `name` (None if absent), checked against `expected_shape` when given.
    fn load(
        &self,
        name: &str,
        expected_shape: Option<&[usize]>,
    ) -> Result<Option<(Vec<f32>, Vec<usize>)>> {
        let tensors = SafeTensors::deserialize(&self.bytes).map_err(|e| {
            EngineError::external(format!(
                "{} is not a valid safetensors file",
                quoted(self.path.display())
            ))
            .with_detail(e)
        })?;
        let view = match tensors.tensor(name) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        if expected_shape.is_some_and(|expected| view.shape() != expected) {
            return Err(EngineError::external(format!(
                "tensor {name_q} in {} has shape {:?}, expected {:?}",
                quoted(self.path.display()),
                view.shape(),
                expected_shape.unwrap_or_default(),
                name_q = quoted(&name)
            ))
            .with_hint(
                "the head weights do not match the module's config.json; re-export the model",
            ));
        }
        if view.dtype() != Dtype::F32 {
            return Err(EngineError::unsupported(format!(
                "tensor {name_q} in {} is {:?}; ettin reads float32 weights",
                quoted(self.path.display()),
                view.dtype(),
                name_q = quoted(&name)
            )));
        }
        Ok(Some((
            view.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            view.shape().to_vec(),
        )))
    }

    fn required(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>> {
        self.tensor(name, expected_shape)?.ok_or_else(|| {
            EngineError::external(format!(
                "{} has no tensor {name_q}",
                quoted(self.path.display()),
                name_q = quoted(&name)
            ))
        })
    }
}

fn config_usize(cfg: &Value, key: &str, path: &Path) -> Result<usize> {
    cfg.get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| {
            EngineError::external(format!(
                "{} lacks the integer {key_q}",
                quoted(path.display()),
                key_q = quoted(&key)
            ))
        })
}

fn read_dense(module_dir: &Path) -> Result<Dense> {
    let cfg_path = module_dir.join("config.json");
    let cfg = read_json(&cfg_path)?;
    let in_features = config_usize(&cfg, "in_features", &cfg_path)?;
    let out_features = config_usize(&cfg, "out_features", &cfg_path)?;
    let has_bias = cfg.get("bias").and_then(Value::as_bool).unwrap_or(true);
    if cfg
        .get("use_residual")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Err(EngineError::unsupported(format!(
            "{} asks for a residual Dense layer, which ettin does not apply",
            quoted(cfg_path.display())
        )));
    }
    let activation_name = cfg
        .get("activation_function")
        .and_then(Value::as_str)
        .unwrap_or("torch.nn.modules.activation.Tanh");
    let activation = Activation::from_torch_name(activation_name).ok_or_else(|| {
        EngineError::unsupported(format!(
            "activation {activation_name_q} in {} is not supported",
            quoted(cfg_path.display()),
            activation_name_q = quoted(&activation_name)
        ))
    })?;
    let weights = ModuleWeights::open(module_dir)?;
    let weight = weights.required("linear.weight", &[out_features, in_features])?;
    let bias = if has_bias {
        Some(weights.required("linear.bias", &[out_features])?)
    } else {
        None
    };
    Ok(Dense {
        in_features,
        out_features,
        weight,
        bias,
        activation,
    })
}

fn read_layer_norm(module_dir: &Path) -> Result<LayerNorm> {
    let cfg_path = module_dir.join("config.json");
    let cfg = read_json(&cfg_path)?;
    let dim = config_usize(&cfg, "dimension", &cfg_path)?;
    let weights = ModuleWeights::open(module_dir)?;
    Ok(LayerNorm {
        weight: weights.required("norm.weight", &[dim])?,
        bias: weights.required("norm.bias", &[dim])?,
        // sentence-transformers' LayerNorm module is torch.nn.LayerNorm(dimension): eps 1e-5.
        eps: 1e-5,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_type_names_of_all_sentence_transformers_versions_are_recognised() {
        assert_eq!(
            module_kind("sentence_transformers.models.Transformer"),
            Some("Transformer")
        );
        assert_eq!(
            module_kind("sentence_transformers.models.Dense"),
            Some("Dense")
        );
        assert_eq!(
            module_kind("sentence_transformers.base.modules.Dense"),
            Some("Dense")
        );
        assert_eq!(
            module_kind("sentence_transformers.models.Normalize"),
            Some("Normalize")
        );
        assert_eq!(
            module_kind("sentence_transformers.models.StaticEmbedding"),
            None
        );
        assert_eq!(module_kind("my_package.Dense"), None);
    }
}
