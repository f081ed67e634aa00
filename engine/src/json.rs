//! Reading the JSON files of a model directory (config.json, modules.json, module configs) with
//! errors that name the file: a leaf every reader of model files shares.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::quote::quoted;

/// The file's JSON; a missing file is 58P01 (undefined file), an unreadable or malformed one 38000.
pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EngineError::missing(format!(
                "model file {} does not exist",
                quoted(path.display())
            ))
        } else {
            EngineError::external(format!("could not read {}", quoted(path.display())))
                .with_detail(e)
        }
    })?;
    serde_json::from_str(&text).map_err(|e| {
        EngineError::external(format!("{} is not valid JSON", quoted(path.display())))
            .with_detail(e)
    })
}

/// The file's JSON, or None when the file does not exist.
pub(crate) fn read_json_if_exists(path: &Path) -> Result<Option<Value>> {
    if path.is_file() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// The first of `candidates` (paths relative to `dir`) that is a file.
pub(crate) fn first_existing(dir: &Path, candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(|c| dir.join(c)).find(|p| p.is_file())
}
