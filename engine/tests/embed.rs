//! StaticEmbedding vectors match sentence-transformers' `SentenceTransformer.encode` on the
//! committed `static` fixture (saved by sentence-transformers 6), in both directory layouts.

mod common;

use std::path::Path;

use common::fixture_dir;
use ettin_engine::embed::StaticEmbedder;
use ettin_engine::ErrorKind;

struct Reference {
    texts: Vec<String>,
    vectors: serde_json::Map<String, serde_json::Value>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(fixture_dir("static").join("reference.json")).unwrap();
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

fn check(dir: &Path) {
    let model = StaticEmbedder::load(dir).unwrap();
    let reference = reference();
    let texts: Vec<&str> = reference.texts.iter().map(String::as_str).collect();
    for (key, prompt, truncate_dim) in [
        ("plain", None, 0),
        ("query", Some("query"), 0),
        ("document", Some("document"), 0),
        ("truncate_dim_8", None, 8),
    ] {
        let got = model
            .embed(&texts, prompt, truncate_dim, &mut || {})
            .unwrap();
        let d = max_diff(&got, &reference.vectors[key]);
        eprintln!("static {key}: max |diff| {d:.2e}");
        assert!(d <= 1e-5, "{key}: max |diff| {d}");
    }
}

#[test]
fn static_embeddings_match_sentence_transformers() {
    check(&fixture_dir("static"));
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
    check(&dir);
}

#[test]
fn unknown_prompt_names_list_the_models_prompts_and_rerankers_are_not_embedders() {
    let model = StaticEmbedder::load(&fixture_dir("static")).unwrap();
    let e = model
        .embed(&["x"], Some("passage"), 0, &mut || {})
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert!(
        e.hint.unwrap().contains("document, query"),
        "lists the names"
    );
    let empty = model.embed(&[""], None, 0, &mut || {}).unwrap();
    assert!(empty[0].iter().all(|v| *v == 0.0) && empty[0].len() == model.dim);
    let e = StaticEmbedder::load(&fixture_dir("modular")).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}
