//! An embedder's prompts (config_sentence_transformers.json) and how a text carries one, as
//! sentence-transformers 6 does: the prompt text is prepended before tokenizing. Read by the model
//! files (transformer embedders) and by StaticEmbedding alike.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::json::read_json_if_exists;
use crate::quote::quoted;

/// A model's prompts (config_sentence_transformers.json): name → text prepended to the input.
#[derive(Debug, Clone, Default)]
pub struct Prompts {
    pub prompts: BTreeMap<String, String>,
    pub default_prompt_name: Option<String>,
}

impl Prompts {
    pub fn read(dir: &Path) -> Result<Self> {
        let cfg = read_json_if_exists(&dir.join("config_sentence_transformers.json"))?
            .unwrap_or(Value::Null);
        Ok(Prompts::from_config(&cfg))
    }

    /// The prompts of a parsed config_sentence_transformers.json.
    pub fn from_config(cfg: &Value) -> Self {
        let mut prompts: BTreeMap<String, String> = cfg
            .get("prompts")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        // sentence-transformers 6 gives every model empty "query" and "document" prompts.
        for name in ["query", "document"] {
            prompts.entry(name.to_owned()).or_default();
        }
        Prompts {
            prompts,
            default_prompt_name: cfg
                .get("default_prompt_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    /// The prompt text for `name` (None: the model's default prompt, if it has one).
    pub fn text(&self, name: Option<&str>) -> Result<&str> {
        let Some(name) = name.or(self.default_prompt_name.as_deref()) else {
            return Ok("");
        };
        self.prompts.get(name).map(String::as_str).ok_or_else(|| {
            EngineError::invalid(format!("the model has no prompt named {}", quoted(name)))
                .with_hint(format!(
                    "prompt names of this model: {}",
                    self.prompts
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
        })
    }
}

/// `text` as the model sees it under `prompt`: the prompt prepended before tokenizing, as
/// sentence-transformers does (it changes how the first word splits).
pub fn with_prompt<'a>(prompt: &str, text: &'a str) -> Cow<'a, str> {
    match prompt {
        "" => Cow::Borrowed(text),
        p => Cow::Owned(format!("{p}{text}")),
    }
}
