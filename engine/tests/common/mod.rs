//! Shared helpers: the ONNX Runtime library and the committed fixture models with their
//! sentence-transformers reference scores.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ettin_engine::runtime::{self, Runtime};
use ettin_engine::{ActivationChoice, BatchLimits, LoadOptions, Model, ScoreOptions};

/// ONNX Runtime for tests: `ETTIN_ORT_LIB`, else the copy `make deps` extracts into .build/.
pub fn runtime() -> &'static Runtime {
    let path = std::env::var("ETTIN_ORT_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.build/onnxruntime/libonnxruntime.so.1.31.1")
        });
    let path = path.canonicalize().unwrap_or(path);
    runtime::load(&path)
        .unwrap_or_else(|e| panic!("ONNX Runtime is needed for these tests (run `make deps`): {e}"))
}

/// A committed fixture, or (ETTIN_FIXTURES, set by tests/tools/test_export.sh) the export tool's
/// re-export of it.
pub fn fixture_dir(name: &str) -> PathBuf {
    match std::env::var_os("ETTIN_FIXTURES") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/models")
            .join(name),
    }
}

pub fn load(dir: &Path) -> Model {
    Model::load(
        runtime(),
        dir,
        LoadOptions {
            intra_threads: 1,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

pub struct Reference {
    pub pairs: Vec<(String, String)>,
    pub scores: std::collections::HashMap<String, Vec<f32>>,
}

pub fn reference(name: &str) -> Reference {
    let text =
        std::fs::read_to_string(fixture_dir(name).join("reference.json")).expect("reference.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("reference.json is JSON");
    let pairs = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let scores = v["scores"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                s.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect(),
            )
        })
        .collect();
    Reference { pairs, scores }
}

pub fn options(max_length: usize) -> ScoreOptions {
    ScoreOptions {
        max_length,
        limits: BatchLimits {
            max_pairs: 32,
            max_tokens: 16384,
            max_memory: 0,
        },
        activation: ActivationChoice::Model,
        max_total_tokens: 1 << 24,
    }
}

pub fn std_dev(xs: &[f32]) -> f32 {
    let n = xs.len() as f64;
    let mean = xs.iter().map(|x| *x as f64).sum::<f64>() / n;
    (xs.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt() as f32
}

/// Assert every score is within `tolerance × σ(expected)` of the expected one.
pub fn assert_close(
    label: &str,
    got: &[f32],
    expected: &[f32],
    tolerance: f32,
    pairs: &[(String, String)],
) {
    assert_eq!(got.len(), expected.len(), "{label}: count");
    let limit = tolerance * std_dev(expected);
    let mut worst = (0.0f32, 0usize);
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let d = (g - e).abs();
        if d > worst.0 {
            worst = (d, i);
        }
    }
    let (d, i) = worst;
    assert!(
        d <= limit,
        "{label}: pair {i} differs by {d} (> {limit}): got {} expected {} for {:?}",
        got[i],
        expected[i],
        pairs
            .get(i)
            .map(|p| (&p.0[..p.0.len().min(60)], &p.1[..p.1.len().min(60)]))
    );
}

pub fn as_refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect()
}
