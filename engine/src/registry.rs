//! Backend-local model cache: each process loads a model once (keyed by its resolved directory
//! and ONNX file) and keeps it, with its ONNX Runtime session, until the process exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::Result;
use crate::model::{not_a_cross_encoder, Model};
use crate::options::EmbedOptions;
use crate::runtime::Runtime;
use crate::session::{LoadOptions, ModelKey};
use crate::static_embedding::{static_module_dir, StaticEmbedder};
use crate::status::ModelStatus;

/// A loaded model of either kind: ONNX (cross-encoders, transformer embedders) or a
/// StaticEmbedding table, which needs no ONNX Runtime at all.
#[derive(Clone)]
pub enum Loaded {
    Onnx(Arc<Model>),
    Static(Arc<StaticEmbedder>),
}

impl Loaded {
    /// The ONNX model, for scoring; a StaticEmbedding model is refused as not a cross-encoder.
    pub fn cross_encoder(&self) -> Result<&Arc<Model>> {
        match self {
            Loaded::Onnx(model) => Ok(model),
            Loaded::Static(s) => Err(not_a_cross_encoder(
                &s.dir,
                "modules.json: a lone StaticEmbedding module",
            )),
        }
    }

    /// Embed texts with whichever kind this is (a cross-encoder is refused).
    pub fn embed(
        &self,
        texts: &[&str],
        options: &EmbedOptions,
        between_batches: &mut dyn FnMut(),
    ) -> Result<Vec<Vec<f32>>> {
        match self {
            Loaded::Onnx(model) => model.embed(texts, options, between_batches),
            Loaded::Static(s) => s.embed(texts, options, between_batches),
        }
    }

    pub fn status(&self, name: &str) -> ModelStatus {
        match self {
            Loaded::Onnx(model) => model.status(name),
            Loaded::Static(s) => s.status(name),
        }
    }

    /// How the load went, for the server log: "<file> on <device> (<why>) in <ms> ms".
    pub fn describe_load(&self) -> String {
        match self {
            Loaded::Onnx(m) => format!(
                "{} on {} ({}) in {:.0} ms",
                crate::quoted(m.files.onnx.display()),
                m.device(),
                m.device_reason(),
                m.load_ms
            ),
            Loaded::Static(s) => format!(
                "StaticEmbedding, {} dimensions, in {:.0} ms (no ONNX Runtime)",
                s.dim, s.load_ms
            ),
        }
    }
}

struct Entry {
    dir: PathBuf,
    key: ModelKey,
    name: String,
    model: Loaded,
}

static MODELS: Mutex<Vec<Entry>> = parking_lot::const_mutex(Vec::new());
// Serialises loads, so concurrent first uses (the shared worker's threads) load a model once
// instead of holding several copies at a time; lookups of loaded models do not wait for it.
static LOADING: Mutex<()> = parking_lot::const_mutex(());

/// The cached model for `dir` and these options, loading it on first use (then `on_load` sees
/// it, e.g. to log the device). `name` is how the caller named it. `runtime` is asked for only
/// when an ONNX model loads: a StaticEmbedding model needs no ONNX Runtime library.
pub fn get_or_load(
    runtime: impl FnOnce() -> Result<&'static Runtime>,
    name: &str,
    dir: &Path,
    options: LoadOptions,
    on_load: impl FnOnce(&Loaded),
) -> Result<Loaded> {
    let key = options.cache_key();
    if let Some(model) = cached(dir, &key) {
        return Ok(model);
    }
    let _loading = LOADING.lock();
    if let Some(model) = cached(dir, &key) {
        // Another thread loaded it while this one waited.
        return Ok(model);
    }
    let model = if static_module_dir(dir)?.is_some() {
        let mut embedder = StaticEmbedder::load(dir)?;
        embedder.threads = crate::parallel::threads(options.intra_threads);
        Loaded::Static(Arc::new(embedder))
    } else {
        Loaded::Onnx(Arc::new(Model::load(runtime()?, dir, options)?))
    };
    on_load(&model);
    MODELS.lock().push(Entry {
        dir: dir.to_path_buf(),
        key,
        name: name.to_owned(),
        model: model.clone(),
    });
    Ok(model)
}

fn cached(dir: &Path, key: &ModelKey) -> Option<Loaded> {
    MODELS
        .lock()
        .iter()
        .find(|e| e.dir == dir && e.key == *key)
        .map(|e| e.model.clone())
}

/// Every model loaded in this process with the name it was first asked for, in load order.
pub fn loaded_named() -> Vec<(String, Loaded)> {
    MODELS
        .lock()
        .iter()
        .map(|e| (e.name.clone(), e.model.clone()))
        .collect()
}

pub fn loaded_count() -> usize {
    MODELS.lock().len()
}
