//! Reading a model directory: which layout it is, which ONNX graph and tokenizer to use, the
//! scoring head's weights and the activation sentence-transformers would apply. Pure file parsing,
//! no ONNX Runtime, so every validation error is unit-testable.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::head::{Activation, Head};
use crate::json::{first_existing, read_json_if_exists};
use crate::memory::ActivationCost;
use crate::modules::{read_modules, Modules, TransformerConfig};
use crate::prompts::Prompts;
use crate::quote::quoted;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// sentence-transformers modules.json: backbone ONNX (last_hidden_state) + head in safetensors.
    Modular,
    /// A sequence-classification graph with a `logits` output.
    Classic,
    /// A sentence-transformers embedder: backbone ONNX + Pooling (+ Dense, Normalize) in Rust.
    Embedding,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Modular => "modular",
            Layout::Classic => "classic",
            Layout::Embedding => "embedding",
        }
    }

    /// True for the layouts that score (query, document) pairs.
    pub fn is_cross_encoder(self) -> bool {
        self != Layout::Embedding
    }
}

/// Everything ettin needs to know about a model directory before creating a session.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub layout: Layout,
    /// What decided the layout, for errors: "modules.json: a lone Transformer module …".
    pub layout_reason: String,
    pub onnx: PathBuf,
    pub tokenizer: PathBuf,
    pub head: Option<Head>,
    /// What `CrossEncoder.predict()` applies to the logit by default.
    pub activation: Activation,
    /// The longest input, special tokens included, sentence-transformers would give the model:
    /// its saved max length, capped by the position embeddings. Caps ettin.max_length.
    pub length_limit: Option<usize>,
    pub lowercase: bool,
    pub pad_token: Option<String>,
    pub pad_token_id: Option<i64>,
    /// An embedder's prompts (config_sentence_transformers.json).
    pub prompts: Prompts,
    /// The attention heads and hidden size that a batch's activation memory grows with.
    pub activation_cost: ActivationCost,
}

/// Resolve a model name under the model root: `org/name` → `<root>/org/name`. Names are relative
/// paths of plain parts; `..`, absolute paths and empty parts would escape or alias the root.
pub fn resolve_model_dir(root: &Path, name: &str) -> Result<PathBuf> {
    let bad = |why: &str| {
        EngineError::invalid(format!("invalid model name {name_q}: {why}", name_q = quoted(&name)))
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

/// Check an `ettin.onnx_file` value: a relative path of plain parts inside the model directory.
pub fn check_onnx_file(file: &str) -> Result<()> {
    let bad = |why: &str| {
        EngineError::invalid(format!("invalid ONNX file {file_q}: {why}", file_q = quoted(&file))).with_hint(
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
        return Err(EngineError::missing(format!("model directory {} does not exist", quoted(dir.display()))).with_hint(
            "put the model's files there (see the README's offline section), or check ettin.model_dir and the model name",
        ));
    }
    let onnx = match onnx_file {
        Some(file) => {
            check_onnx_file(file)?;
            first_existing(dir, &[file]).ok_or_else(|| {
                EngineError::missing(format!(
                    "model directory {} has no {} (ettin.onnx_file)", quoted(dir.display()), quoted(file)))
                .with_hint(format!(
                    "ONNX files there: {:?}; create variants with tools/export_model.py --int8/--fp16, or reset ettin.onnx_file",
                    onnx_files_in(dir)
                ))
            })?
        }
        None => first_existing(dir, &["onnx/model.onnx", "model.onnx"]).ok_or_else(|| {
            EngineError::missing(format!(
                "model directory {} has no onnx/model.onnx or model.onnx",
                quoted(dir.display())
            ))
            .with_hint("export the model to ONNX with tools/export_model.py")
        })?,
    };
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(EngineError::missing(format!(
            "model directory {} has no tokenizer.json",
            quoted(dir.display())
        ))
        .with_hint("copy the model's tokenizer.json (a fast tokenizer) into the directory"));
    }
    let config = read_json_if_exists(&dir.join("config.json"))?.unwrap_or(Value::Null);
    let st_config =
        read_json_if_exists(&dir.join("config_sentence_transformers.json"))?.unwrap_or(Value::Null);
    let tokenizer_config =
        read_json_if_exists(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null);

    let modules_path = dir.join("modules.json");
    let modules = if modules_path.is_file() {
        Some(read_modules(dir, &modules_path, &config)?)
    } else {
        None
    };
    let (layout, head, transformer, layout_reason) = decide_layout(dir, modules, &config)?;
    let activation = model_activation(layout, &config, &st_config)?;
    Ok(ModelFiles {
        dir: dir.to_path_buf(),
        layout,
        layout_reason,
        onnx,
        tokenizer,
        head,
        activation,
        length_limit: length_limit(&config, &tokenizer_config, &transformer),
        lowercase: transformer.lowercase,
        pad_token: special_token(&tokenizer_config, "pad_token"),
        pad_token_id: config.get("pad_token_id").and_then(Value::as_i64),
        prompts: Prompts::from_config(&st_config),
        activation_cost: activation_cost(&config),
    })
}

/// The model's attention heads and hidden size (config.json), for the memory estimate.
fn activation_cost(config: &Value) -> ActivationCost {
    let field = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| config.get(*k).and_then(Value::as_u64))
            .map(|v| v as usize)
            .filter(|v| *v > 0)
    };
    ActivationCost {
        heads: field(&["num_attention_heads", "n_head", "num_heads"])
            .unwrap_or(ActivationCost::UNKNOWN.heads),
        hidden: field(&["hidden_size", "d_model", "n_embd", "dim"])
            .unwrap_or(ActivationCost::UNKNOWN.hidden),
    }
}

/// The architectures config.json names, e.g. ["BertForSequenceClassification"].
fn architectures(config: &Value) -> Vec<&str> {
    config
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Which layout a directory is, from its module list and config.json together (the graph's
/// outputs are checked against it when the session loads):
/// - Transformer → Pooling → …: modular (a backbone graph, the head applied by ettin) when the
///   chain ends in one logit, an embedder when it ends in a vector;
/// - a lone Transformer module (what sentence-transformers 6 saves for a classic cross-encoder)
///   or no modules.json: classic (a graph with `logits`), which needs a sequence-classification
///   model; a lone Transformer of a plain encoder is an embedding model, not a cross-encoder.
fn decide_layout(
    dir: &Path,
    modules: Option<Modules>,
    config: &Value,
) -> Result<(Layout, Option<Head>, TransformerConfig, String)> {
    let archs = architectures(config);
    let classifier = archs
        .iter()
        .any(|a| a.ends_with("ForSequenceClassification"));
    let archs_text = if archs.is_empty() {
        "no architectures".to_owned()
    } else {
        archs.join(", ")
    };
    match modules {
        Some(Modules::Chain { transformer, head }) => {
            let outputs = head.validate()?;
            let reason = format!(
                "modules.json: Transformer → Pooling ({}) → {} more module(s) with {outputs} output(s)",
                head.pooling.iter().map(|p| p.as_str()).collect::<Vec<_>>().join("+"),
                head.layers.len()
            );
            let layout = if outputs == 1 && !head.normalizes() {
                Layout::Modular
            } else {
                Layout::Embedding
            };
            Ok((layout, Some(head), transformer, reason))
        }
        Some(Modules::LoneTransformer(transformer)) => {
            let task = transformer.task.as_deref();
            let reason = format!(
                "modules.json: a lone Transformer module (transformer_task {}), config.json: {archs_text}",
                task.unwrap_or("unset")
            );
            let agrees = match task {
                Some("sequence-classification") => classifier || archs.is_empty(),
                None => classifier,
                Some(_) => false,
            };
            if !agrees {
                return Err(EngineError::unsupported(format!(
                    "model {}: {reason}; a cross-encoder needs either a Pooling → Dense head in modules.json or a sequence-classification model",
                    quoted(dir.display())
                ))
                .with_hint("this looks like an embedding or base model; rerank with a cross-encoder (a CrossEncoder saved by sentence-transformers)"));
            }
            Ok((Layout::Classic, None, transformer, reason))
        }
        None => {
            let transformer = TransformerConfig::read(dir)?;
            let reason = format!("no modules.json, config.json: {archs_text}");
            Ok((Layout::Classic, None, transformer, reason))
        }
    }
}

/// The longest input sentence-transformers would give this model: the max_seq_length saved by
/// sentence-transformers ≤ 5, else tokenizer_config.json's model_max_length (where 6 saves it;
/// transformers writes 1e30 for "no limit"), and never past the position embeddings.
fn length_limit(
    config: &Value,
    tokenizer_config: &Value,
    transformer: &TransformerConfig,
) -> Option<usize> {
    let saved = transformer.max_seq_length.or_else(|| {
        tokenizer_config
            .get("model_max_length")
            .and_then(Value::as_u64)
            .filter(|n| *n < 1 << 40)
            .map(|n| n as usize)
    });
    match (saved, max_positions(config)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl ModelFiles {
    /// The ONNX file relative to the model directory, as ettin.onnx_file names it.
    pub fn onnx_relative(&self) -> &Path {
        self.onnx.strip_prefix(&self.dir).unwrap_or(&self.onnx)
    }
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
                "the model's activation_fn {name_q} is not supported",
                name_q = quoted(&name)
            ))
            .with_hint("set ettin.activation to 'raw' or 'sigmoid'")
        }),
        None => Ok(match layout {
            Layout::Classic => Activation::Sigmoid,
            Layout::Modular | Layout::Embedding => Activation::Identity,
        }),
    }
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
    fn roberta_position_limit_accounts_for_the_padding_offset() {
        let cfg: Value = serde_json::json!({"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1});
        assert_eq!(max_positions(&cfg), Some(512));
        let cfg: Value = serde_json::json!({"model_type": "bert", "max_position_embeddings": 512});
        assert_eq!(max_positions(&cfg), Some(512));
    }
}
