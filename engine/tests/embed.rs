//! Embeddings match sentence-transformers' `SentenceTransformer.encode` on the committed embedder
//! fixtures (reference vectors written by tools/make_fixtures.py): `static` (StaticEmbedding,
//! saved by sentence-transformers 6 and in the Hub layout), `embed-bert` (all-MiniLM-L6-v2's Hub
//! layout: BERT → mean → Normalize) and `embed-modernbert` (sentence-transformers 6's save:
//! ModernBERT → cls+mean without the prompt → Dense → Normalize, a default prompt).

mod common;

use std::path::Path;

use common::{fixture_dir, load, runtime};
use ettin_engine::registry::{self, Loaded};
use ettin_engine::static_embedding::StaticEmbedder;
use ettin_engine::{BatchLimits, EmbedOptions, ErrorKind, LoadOptions};

struct Reference {
    texts: Vec<String>,
    vectors: serde_json::Map<String, serde_json::Value>,
}

fn reference(dir: &Path) -> Reference {
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    Reference {
        texts: v["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect(),
        vectors: v["vectors"].as_object().unwrap().clone(),
    }
}

fn options(prompt_name: Option<&str>, truncate_dim: usize, max_pairs: usize) -> EmbedOptions {
    EmbedOptions {
        prompt_name: prompt_name.map(str::to_owned),
        truncate_dim,
        limits: BatchLimits {
            max_pairs,
            max_tokens: 0,
            max_memory: 0,
        },
        max_total_tokens: 1_000_000,
    }
}

/// Largest |difference| per component over every text.
fn max_diff(got: &[Vec<f32>], expected: &serde_json::Value) -> f64 {
    let expected = expected.as_array().unwrap();
    assert_eq!(got.len(), expected.len());
    let mut worst = 0f64;
    for (g, e) in got.iter().zip(expected) {
        let e = e.as_array().unwrap();
        assert_eq!(g.len(), e.len(), "dimension");
        for (a, b) in g.iter().zip(e) {
            worst = worst.max((*a as f64 - b.as_f64().unwrap()).abs());
        }
    }
    worst
}

fn load_any(dir: &Path) -> Loaded {
    registry::get_or_load(
        || Ok(runtime()),
        &dir.display().to_string(),
        dir,
        LoadOptions {
            intra_threads: 1,
            ..Default::default()
        },
        |_| {},
    )
    .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Every reference case within 1e-5 per component, batched one at a time and 8 at a time (padding
/// must not change a vector).
fn check(dir: &Path, label: &str) {
    let model = load_any(dir);
    let reference = reference(dir);
    let texts: Vec<&str> = reference.texts.iter().map(String::as_str).collect();
    for max_pairs in [1, 8] {
        for (key, prompt, truncate_dim) in [
            ("plain", None, 0),
            ("query", Some("query"), 0),
            ("document", Some("document"), 0),
            ("truncate_dim_8", None, 8),
        ] {
            let got = model
                .embed(
                    &texts,
                    &options(prompt, truncate_dim, max_pairs),
                    &mut || {},
                )
                .unwrap();
            let d = max_diff(&got, &reference.vectors[key]);
            eprintln!("{label} {key} (batches of {max_pairs}): max |diff| {d:.2e}");
            assert!(d <= 1e-5, "{label} {key}: max |diff| {d}");
        }
    }
}

#[test]
fn static_embeddings_match_sentence_transformers() {
    check(&fixture_dir("static"), "static");
}

#[test]
fn bert_embedder_in_the_hub_layout_matches_sentence_transformers() {
    check(&fixture_dir("embed-bert"), "embed-bert");
}

#[test]
fn modernbert_embedder_saved_by_sentence_transformers_6_matches() {
    check(&fixture_dir("embed-modernbert"), "embed-modernbert");
}

#[test]
fn the_hub_layout_with_a_module_folder_gives_the_same_vectors() {
    // static-retrieval-mrl-en-v1 on the Hub: modules.json → 0_StaticEmbedding/.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("static");
    let module = dir.join("0_StaticEmbedding");
    std::fs::create_dir_all(&module).unwrap();
    let src = fixture_dir("static");
    for f in ["tokenizer.json", "model.safetensors"] {
        std::fs::copy(src.join(f), module.join(f)).unwrap();
    }
    for f in ["config_sentence_transformers.json", "reference.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("modules.json"),
        r#"[{"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "sentence_transformers.models.StaticEmbedding"}]"#,
    )
    .unwrap();
    check(&dir, "static (Hub layout)");
}

#[test]
fn unknown_prompt_names_list_the_models_prompts() {
    let model = StaticEmbedder::load(&fixture_dir("static")).unwrap();
    let e = model
        .embed(&["x"], &options(Some("passage"), 0, 8), &mut || {})
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert!(
        e.hint.unwrap().contains("document, query"),
        "lists the names"
    );
    let empty = model
        .embed(&[""], &options(None, 0, 8), &mut || {})
        .unwrap();
    assert!(empty[0].iter().all(|v| *v == 0.0) && empty[0].len() == model.dim);
    let onnx = load(&fixture_dir("embed-modernbert"));
    let e = onnx
        .embed(&["x"], &options(Some("passage"), 0, 8), &mut || {})
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert!(e.hint.unwrap().contains("document, query"));
}

#[test]
fn cross_encoders_and_embedders_refuse_each_others_calls_naming_the_right_function() {
    let reranker = load_any(&fixture_dir("modular"));
    let e = reranker
        .embed(&["x"], &options(None, 0, 8), &mut || {})
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("is a cross-encoder"), "{e}");
    assert!(e.hint.unwrap().contains("rerank_score"));

    let embedder = load(&fixture_dir("embed-bert"));
    let e = embedder
        .score(&[("q", "d")], &common::options(512), &mut || {})
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("is an embedding model"), "{e}");
    assert!(e.hint.unwrap().contains("ettin_embed"));

    let e = load_any(&fixture_dir("static"))
        .cross_encoder()
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("StaticEmbedding"), "{e}");
}

#[test]
fn the_token_guard_applies_to_embeddings() {
    let mut o = options(None, 0, 8);
    o.max_total_tokens = 50;
    let long = "word ".repeat(200);
    for model in [
        load_any(&fixture_dir("embed-bert")),
        load_any(&fixture_dir("static")),
    ] {
        let e = model.embed(&[long.as_str()], &o, &mut || {}).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    }
}
