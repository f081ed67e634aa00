//! Backend-local model cache: each process loads a model once (keyed by its resolved directory
//! and ONNX file) and keeps it, with its ONNX Runtime session, until the process exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Result;
use crate::model::{LoadOptions, Model, ModelKey};
use crate::runtime::Runtime;

struct Entry {
    dir: PathBuf,
    key: ModelKey,
    name: String,
    model: Arc<Model>,
}

static MODELS: Mutex<Vec<Entry>> = parking_lot::const_mutex(Vec::new());
// Serialises loads, so concurrent first uses (the shared worker's threads) load a model once
// instead of holding several copies at a time; lookups of loaded models do not wait for it.
static LOADING: Mutex<()> = parking_lot::const_mutex(());

/// The cached model for `dir` and these options, loading it on first use (then `on_load` sees
/// it, e.g. to log the device). `name` is how the caller named it.
pub fn get_or_load(
    runtime: &Runtime,
    name: &str,
    dir: &Path,
    options: LoadOptions,
    on_load: impl FnOnce(&Model),
) -> Result<Arc<Model>> {
    let key = options.cache_key();
    if let Some(model) = cached(dir, &key) {
        return Ok(model);
    }
    let _loading = LOADING.lock();
    if let Some(model) = cached(dir, &key) {
        // Another thread loaded it while this one waited.
        return Ok(model);
    }
    let model = Arc::new(Model::load(runtime, dir, options)?);
    on_load(&model);
    MODELS.lock().push(Entry {
        dir: dir.to_path_buf(),
        key,
        name: name.to_owned(),
        model: Arc::clone(&model),
    });
    Ok(model)
}

fn cached(dir: &Path, key: &ModelKey) -> Option<Arc<Model>> {
    MODELS
        .lock()
        .iter()
        .find(|e| e.dir == dir && e.key == *key)
        .map(|e| Arc::clone(&e.model))
}

/// Every model loaded in this process with the name it was first asked for, in load order.
pub fn loaded_named() -> Vec<(String, Arc<Model>)> {
    MODELS
        .lock()
        .iter()
        .map(|e| (e.name.clone(), Arc::clone(&e.model)))
        .collect()
}

pub fn loaded_count() -> usize {
    MODELS.lock().len()
}
