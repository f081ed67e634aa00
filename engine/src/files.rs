//! Reading a model directory: which layout it is, which ONNX graph and tokenizer to use, the
//! scoring head's weights and the activation sentence-transformers would apply. Pure file parsing,
//! no ONNX Runtime, so every validation error is unit-testable.

use std::path::{Component, Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::head::{Activation, Dense, Head, Layer, LayerNorm, Pooling};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// sentence-transformers modules.json: backbone ONNX (last_hidden_state) + head in safetensors.
    Modular,
    /// A sequence-classification graph with a `logits` output.
    Classic,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Modular => "modular",
            Layout::Classic => "classic",
        }
    }
}

/// Everything ettin needs to know about a model directory before creating a session.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub layout: Layout,
    pub onnx: PathBuf,
    pub tokenizer: PathBuf,
    pub head: Option<Head>,
    /// What `CrossEncoder.predict()` applies to the logit by default.
    pub activation: Activation,
    /// The longest sequence the model's position embeddings allow, if known.
    pub max_positions: Option<usize>,
    pub lowercase: bool,
    pub pad_token: Option<String>,
    pub pad_token_id: Option<i64>,
}

/// Resolve a model name under the model root: `org/name` → `<root>/org/name`. Names are relative
/// paths of plain parts; `..`, absolute paths and empty parts would escape or alias the root.
pub fn resolve_model_dir(root: &Path, name: &str) -> Result<PathBuf> {
    let bad = |why: &str| {
        EngineError::invalid(format!("invalid model name \"{name}\": {why}"))
            .with_hint("name a model as a relative path under ettin.model_dir, such as cross-encoder/ettin-reranker-17m-v1")
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Err(bad("absolute paths are not allowed"));
    }
    if name.contains('\0') {
        return Err(bad("it contains a NUL character"));
    }
    for part in name.split('/') {
        match part {
            "" => return Err(bad("it has an empty path component")),
            "." | ".." => return Err(bad("'.' and '..' are not allowed")),
            _ if part.contains('\\') => return Err(bad("backslashes are not allowed")),
            _ => {}
        }
    }
    let relative = Path::new(name);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(bad("only plain path components are allowed"));
    }
    if root.as_os_str().is_empty() {
        return Err(EngineError::invalid("ettin.model_dir is not set")
            .with_hint("a superuser sets ettin.model_dir to the directory that holds the models"));
    }
    Ok(root.join(relative))
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EngineError::missing(format!("model file \"{}\" does not exist", path.display()))
        } else {
            EngineError::external(format!("could not read \"{}\"", path.display())).with_detail(e)
        }
    })?;
    serde_json::from_str(&text).map_err(|e| {
        EngineError::external(format!("\"{}\" is not valid JSON", path.display())).with_detail(e)
    })
}

fn read_json_if_exists(path: &Path) -> Result<Option<Value>> {
    if path.is_file() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

fn first_existing(dir: &Path, candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(|c| dir.join(c)).find(|p| p.is_file())
}

/// Check an `ettin.onnx_file` value: a relative path of plain parts inside the model directory.
pub fn check_onnx_file(file: &str) -> Result<()> {
    let bad = |why: &str| {
        EngineError::invalid(format!("invalid ONNX file \"{file}\": {why}")).with_hint(
            "name a file inside the model directory, such as onnx/model_int8.onnx, or leave ettin.onnx_file empty",
        )
    };
    if file.is_empty() {
        return Err(bad("it is empty"));
    }
    if file.contains('\0') || file.contains('\\') {
        return Err(bad("NUL characters and backslashes are not allowed"));
    }
    let path = Path::new(file);
    if path.is_absolute() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad("only a relative path without '.' or '..' is allowed"));
    }
    Ok(())
}

/// The `.onnx` files of a model directory (top level and onnx/), for hints.
fn onnx_files_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for sub in ["", "onnx"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".onnx") {
                    found.push(if sub.is_empty() {
                        name
                    } else {
                        format!("{sub}/{name}")
                    });
                }
            }
        }
    }
    found.sort();
    found
}

/// Read and validate a model directory. `onnx_file` picks a graph other than the default
/// (onnx/model.onnx, else model.onnx), e.g. an int8 variant from the export tool.
pub fn read_model_files(dir: &Path, onnx_file: Option<&str>) -> Result<ModelFiles> {
    if !dir.is_dir() {
        return Err(EngineError::missing(format!("model directory \"{}\" does not exist", dir.display())).with_hint(
            "put the model's files there (see the README's offline section), or check ettin.model_dir and the model name",
        ));
    }
    let onnx = match onnx_file {
        Some(file) => {
            check_onnx_file(file)?;
            first_existing(dir, &[file]).ok_or_else(|| {
                EngineError::missing(format!(
                    "model directory \"{}\" has no {file} (ettin.onnx_file)",
                    dir.display()
                ))
                .with_hint(format!(
                    "ONNX files there: {:?}; create variants with tools/export_model.py --int8/--fp16, or reset ettin.onnx_file",
                    onnx_files_in(dir)
                ))
            })?
        }
        None => first_existing(dir, &["onnx/model.onnx", "model.onnx"]).ok_or_else(|| {
            EngineError::missing(format!(
                "model directory \"{}\" has no onnx/model.onnx or model.onnx",
                dir.display()
            ))
            .with_hint("export the model to ONNX with tools/export_model.py")
        })?,
    };
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(EngineError::missing(format!(
            "model directory \"{}\" has no tokenizer.json",
            dir.display()
        ))
        .with_hint("copy the model's tokenizer.json (a fast tokenizer) into the directory"));
    }
    let config = read_json_if_exists(&dir.join("config.json"))?.unwrap_or(Value::Null);
    let st_config =
        read_json_if_exists(&dir.join("config_sentence_transformers.json"))?.unwrap_or(Value::Null);
    let tokenizer_config =
        read_json_if_exists(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null);

    let modules_path = dir.join("modules.json");
    let (layout, head, lowercase) = if modules_path.is_file() {
        let (head, lowercase) = read_modules(dir, &modules_path, &config)?;
        (Layout::Modular, Some(head), lowercase)
    } else {
        let lowercase = read_json_if_exists(&dir.join("sentence_bert_config.json"))?
            .and_then(|c| c.get("do_lower_case").and_then(Value::as_bool))
            .unwrap_or(false);
        (Layout::Classic, None, lowercase)
    };

    let activation = model_activation(layout, &config, &st_config)?;
    Ok(ModelFiles {
        dir: dir.to_path_buf(),
        layout,
        onnx,
        tokenizer,
        head,
        activation,
        max_positions: max_positions(&config),
        lowercase,
        pad_token: special_token(&tokenizer_config, "pad_token"),
        pad_token_id: config.get("pad_token_id").and_then(Value::as_i64),
    })
}

fn special_token(tokenizer_config: &Value, key: &str) -> Option<String> {
    match tokenizer_config.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// The position-embedding limit. RoBERTa-style models (XLM-R, bge-reranker) offset positions by
/// pad_token_id + 1, so two of their positions are unusable.
fn max_positions(config: &Value) -> Option<usize> {
    let n = config.get("max_position_embeddings")?.as_u64()? as usize;
    let model_type = config
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if matches!(model_type, "roberta" | "xlm-roberta" | "camembert") {
        let pad = config
            .get("pad_token_id")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize;
        Some(n.saturating_sub(pad + 1))
    } else {
        Some(n)
    }
}

/// The activation `CrossEncoder.predict()` applies by default: the configured `activation_fn`
/// (config_sentence_transformers.json, or config.json's `sentence_transformers` entry); else
/// Sigmoid for a classic single-logit model and Identity for a modular one.
fn model_activation(layout: Layout, config: &Value, st_config: &Value) -> Result<Activation> {
    let configured = st_config
        .get("activation_fn")
        .or_else(|| {
            config
                .get("sentence_transformers")
                .and_then(|s| s.get("activation_fn"))
        })
        .and_then(Value::as_str);
    match configured {
        Some(name) => Activation::from_torch_name(name).ok_or_else(|| {
            EngineError::unsupported(format!(
                "the model's activation_fn \"{name}\" is not supported"
            ))
            .with_hint("set ettin.activation to 'raw' or 'sigmoid'")
        }),
        None => Ok(match layout {
            Layout::Classic => Activation::Sigmoid,
            Layout::Modular => Activation::Identity,
        }),
    }
}

/// The kind of a modules.json entry, from its type path. sentence-transformers 3.x–5.x write
/// `sentence_transformers.models.Dense`; 6.x moved modules to other packages but kept the class
/// names, so the last path component identifies the module.
fn module_kind(type_path: &str) -> Option<&str> {
    if !type_path.starts_with("sentence_transformers.") {
        return None;
    }
    let name = type_path.rsplit('.').next()?;
    matches!(name, "Transformer" | "Pooling" | "Dense" | "LayerNorm").then_some(name)
}

fn read_modules(dir: &Path, modules_path: &Path, config: &Value) -> Result<(Head, bool)> {
    let modules = read_json(modules_path)?;
    let modules = modules.as_array().ok_or_else(|| {
        EngineError::external(format!(
            "\"{}\" is not a JSON list of modules",
            modules_path.display()
        ))
    })?;
    let mut pooling: Option<Pooling> = None;
    let mut layers = Vec::new();
    let mut lowercase = false;
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
                "model \"{}\": module {position} has type \"{type_path}\", which ettin does not support",
                dir.display()
            ))
            .with_hint("ettin supports Transformer, Pooling, Dense and LayerNorm modules; export another head with tools/export_model.py")
        })?;
        match (position, kind) {
            (0, "Transformer") => {
                let cfg = read_json_if_exists(&module_dir.join("sentence_bert_config.json"))?.unwrap_or(Value::Null);
                lowercase = cfg.get("do_lower_case").and_then(Value::as_bool).unwrap_or(false);
            }
            (0, other) | (_, other @ "Transformer") => {
                return Err(EngineError::unsupported(format!(
                    "model \"{}\": module {position} is {other}; ettin expects exactly one Transformer module, first",
                    dir.display()
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
            (_, _) => layers.push(Layer::LayerNorm(read_layer_norm(&module_dir)?)),
        }
        if position > 0 && kind != "Pooling" && pooling.is_none() {
            return Err(EngineError::unsupported(format!(
                "model \"{}\": module {position} ({kind}) comes before any Pooling module",
                dir.display()
            )));
        }
    }
    let pooling = pooling.ok_or_else(|| {
        EngineError::unsupported(format!(
            "model \"{}\": modules.json has no Pooling module",
            dir.display()
        ))
    })?;
    let hidden_size = hidden_size.ok_or_else(|| {
        EngineError::external(format!(
            "model \"{}\": hidden size unknown (no config.json hidden_size)",
            dir.display()
        ))
    })?;
    let head = Head {
        pooling,
        hidden_size,
        layers,
    };
    head.validate().map_err(|e| EngineError {
        message: format!("model \"{}\": {}", dir.display(), e.message),
        ..e
    })?;
    Ok((head, lowercase))
}

fn resolve_module_dir(dir: &Path, rel: &str) -> Result<PathBuf> {
    let path = Path::new(rel);
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(EngineError::external(format!(
            "model \"{}\": modules.json names the module path \"{rel}\", outside the model directory",
            dir.display()
        )));
    }
    Ok(dir.join(path))
}

fn read_pooling(cfg: &Value, module_dir: &Path) -> Result<Pooling> {
    // sentence-transformers 6 writes "pooling_mode": "cls"; earlier versions one flag per mode.
    let mode = match cfg.get("pooling_mode").and_then(Value::as_str) {
        Some(mode) => mode.to_owned(),
        None => {
            let flags = [
                "cls_token",
                "mean_tokens",
                "max_tokens",
                "mean_sqrt_len_tokens",
                "weightedmean_tokens",
                "lasttoken",
            ];
            let on: Vec<&str> = flags
                .iter()
                .filter(|f| {
                    cfg.get(format!("pooling_mode_{f}"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                })
                .copied()
                .collect();
            match on.as_slice() {
                ["cls_token"] => "cls".to_owned(),
                ["mean_tokens"] => "mean".to_owned(),
                _ => on.join("+"),
            }
        }
    };
    match mode.as_str() {
        "cls" => Ok(Pooling::Cls),
        "mean" => Ok(Pooling::Mean),
        other => Err(EngineError::unsupported(format!(
            "pooling mode \"{other}\" in \"{}\" is not supported (cls and mean are)",
            module_dir.display()
        ))),
    }
}

/// Load float32 tensors from a module's model.safetensors.
struct ModuleWeights {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl ModuleWeights {
    fn open(module_dir: &Path) -> Result<Self> {
        let path = module_dir.join("model.safetensors");
        if !path.is_file() {
            let hint = if module_dir.join("pytorch_model.bin").is_file() {
                "this module has only pytorch_model.bin; convert it with tools/export_model.py"
            } else {
                "copy the module's model.safetensors from the model repository"
            };
            return Err(EngineError::missing(format!(
                "head weights \"{}\" do not exist",
                path.display()
            ))
            .with_hint(hint));
        }
        let bytes = std::fs::read(&path).map_err(|e| {
            EngineError::external(format!("could not read \"{}\"", path.display())).with_detail(e)
        })?;
        Ok(ModuleWeights { path, bytes })
    }

    fn tensor(&self, name: &str, expected_shape: &[usize]) -> Result<Option<Vec<f32>>> {
        let tensors = SafeTensors::deserialize(&self.bytes).map_err(|e| {
            EngineError::external(format!(
                "\"{}\" is not a valid safetensors file",
                self.path.display()
            ))
            .with_detail(e)
        })?;
        let view = match tensors.tensor(name) {
            Ok(v) => v,
            Err(_) => return Ok(None),
        };
        if view.shape() != expected_shape {
            return Err(EngineError::external(format!(
                "tensor \"{name}\" in \"{}\" has shape {:?}, expected {:?}",
                self.path.display(),
                view.shape(),
                expected_shape
            ))
            .with_hint(
                "the head weights do not match the module's config.json; re-export the model",
            ));
        }
        if view.dtype() != Dtype::F32 {
            return Err(EngineError::unsupported(format!(
                "tensor \"{name}\" in \"{}\" is {:?}; ettin reads float32 head weights",
                self.path.display(),
                view.dtype()
            )));
        }
        Ok(Some(
            view.data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ))
    }

    fn required(&self, name: &str, expected_shape: &[usize]) -> Result<Vec<f32>> {
        self.tensor(name, expected_shape)?.ok_or_else(|| {
            EngineError::external(format!(
                "\"{}\" has no tensor \"{name}\"",
                self.path.display()
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
                "\"{}\" lacks the integer \"{key}\"",
                path.display()
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
            "\"{}\" asks for a residual Dense layer, which ettin does not apply",
            cfg_path.display()
        )));
    }
    let activation_name = cfg
        .get("activation_function")
        .and_then(Value::as_str)
        .unwrap_or("torch.nn.modules.activation.Tanh");
    let activation = Activation::from_torch_name(activation_name).ok_or_else(|| {
        EngineError::unsupported(format!(
            "activation \"{activation_name}\" in \"{}\" is not supported",
            cfg_path.display()
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
    fn model_names_resolve_under_the_root() {
        let root = Path::new("/models");
        assert_eq!(
            resolve_model_dir(root, "cross-encoder/ettin-reranker-17m-v1").unwrap(),
            PathBuf::from("/models/cross-encoder/ettin-reranker-17m-v1")
        );
        assert_eq!(
            resolve_model_dir(root, "local").unwrap(),
            PathBuf::from("/models/local")
        );
    }

    #[test]
    fn model_names_that_escape_the_root_are_rejected() {
        let root = Path::new("/models");
        for name in [
            "",
            "../etc",
            "a/../../b",
            "/etc/passwd",
            "a//b",
            "a/",
            "./a",
            "a/.",
            "a\\..\\b",
            "a\0b",
        ] {
            let err = resolve_model_dir(root, name).unwrap_err();
            assert_eq!(
                err.kind,
                crate::error::ErrorKind::InvalidParameter,
                "{name:?}"
            );
            assert!(err.hint.is_some());
        }
    }

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
        assert_eq!(module_kind("sentence_transformers.models.Normalize"), None);
        assert_eq!(module_kind("my_package.Dense"), None);
    }

    #[test]
    fn roberta_position_limit_accounts_for_the_padding_offset() {
        let cfg: Value = serde_json::json!({"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1});
        assert_eq!(max_positions(&cfg), Some(512));
        let cfg: Value = serde_json::json!({"model_type": "bert", "max_position_embeddings": 512});
        assert_eq!(max_positions(&cfg), Some(512));
    }
}
