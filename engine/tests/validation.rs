//! Bad model directories fail at load with the right kind of error and a message naming the file.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ettin_engine::{ErrorKind, LoadOptions, Model};

/// A copy of a fixture model in a temporary directory, to break.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    copy_dir(&fixture_dir(name), &dst);
    (tmp, dst)
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

fn load_err(dir: &Path) -> ettin_engine::EngineError {
    match Model::load(
        runtime(),
        dir,
        LoadOptions {
            intra_threads: 1,
            ..Default::default()
        },
    ) {
        Ok(_) => panic!("{} loaded but should not", dir.display()),
        Err(e) => e,
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn missing_directory_and_files_are_missing_file_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = load_err(&tmp.path().join("nothing-here"));
    assert_eq!(e.kind, ErrorKind::MissingFile);

    let (_t, dir) = copy_fixture("modular");
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::MissingFile);
    assert!(e.message.contains("tokenizer.json"), "{e}");

    let (_t, dir) = copy_fixture("modular");
    std::fs::remove_dir_all(dir.join("onnx")).unwrap();
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::MissingFile);
    assert!(e.hint.as_deref().unwrap_or("").contains("export"), "{e:?}");

    let (_t, dir) = copy_fixture("modular");
    std::fs::remove_file(dir.join("4_Dense/model.safetensors")).unwrap();
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::MissingFile);
    assert!(e.message.contains("4_Dense"), "{e}");
}

#[test]
fn unreadable_onnx_is_an_external_error_naming_the_file() {
    let (_t, dir) = copy_fixture("modular");
    std::fs::write(dir.join("onnx/model.onnx"), b"definitely not a protobuf").unwrap();
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::External);
    assert!(e.message.contains("onnx/model.onnx"), "{e}");
    assert!(e.detail.is_some(), "ONNX Runtime's words go in the detail");
}

#[test]
fn head_weights_of_the_wrong_shape_are_rejected() {
    let (_t, dir) = copy_fixture("modular");
    edit(
        &dir.join("2_Dense/config.json"),
        "\"in_features\": 64",
        "\"in_features\": 32",
    );
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::External);
    assert!(
        e.message.contains("linear.weight") && e.message.contains("[64, 32]"),
        "{e}"
    );

    // Consistent weights and config, but a head that does not fit the backbone's hidden size.
    let (_t, dir) = copy_fixture("modular");
    edit(
        &dir.join("config.json"),
        "\"hidden_size\": 64",
        "\"hidden_size\": 48",
    );
    let e = load_err(&dir);
    assert!(
        e.message.contains("expects 64 inputs but receives 48"),
        "{e}"
    );
}

#[test]
fn residual_dense_layers_are_refused_not_silently_mis_scored() {
    let (_t, dir) = copy_fixture("modular");
    edit(
        &dir.join("2_Dense/config.json"),
        "\"bias\": false,",
        "\"bias\": false, \"use_residual\": true,",
    );
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("residual"), "{e}");
}

#[test]
fn unknown_module_types_are_named() {
    let (_t, dir) = copy_fixture("modular");
    edit(
        &dir.join("modules.json"),
        "sentence_transformers.sentence_transformer.modules.layer_norm.LayerNorm",
        "my_package.Whitening",
    );
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("my_package.Whitening"), "{e}");
}

#[test]
fn a_classic_graph_under_a_modular_layout_is_rejected_by_its_outputs() {
    let (_t, dir) = copy_fixture("classic");
    for part in [
        "modules.json",
        "1_Pooling",
        "2_Dense",
        "3_LayerNorm",
        "4_Dense",
    ] {
        let src = fixture_dir("modular").join(part);
        if src.is_dir() {
            copy_dir(&src, &dir.join(part));
        } else {
            std::fs::copy(&src, dir.join(part)).unwrap();
        }
    }
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::External);
    assert!(e.message.contains("last_hidden_state"), "{e}");
    assert!(
        e.message.contains("Pooling (cls)"),
        "names what made it modular: {e}"
    );
    assert!(
        e.message.contains("logits"),
        "names the graph's outputs: {e}"
    );
}

#[test]
fn a_backbone_graph_under_a_lone_transformer_is_rejected_by_its_outputs() {
    // sentence-transformers 6's classic layout, with the modular fixture's backbone graph.
    let (_t, dir) = copy_fixture("classic-st6");
    std::fs::copy(
        fixture_dir("modular").join("onnx/model.onnx"),
        dir.join("onnx/model.onnx"),
    )
    .unwrap();
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::External);
    assert!(
        e.message.contains("lone Transformer") && e.message.contains("last_hidden_state"),
        "{e}"
    );
    assert!(e.hint.unwrap().contains("classification head"));
}

#[test]
fn a_lone_transformer_without_a_classification_head_is_not_a_cross_encoder() {
    // An embedding model's Transformer (feature-extraction), or a config without a
    // *ForSequenceClassification architecture: refused before the graph loads.
    let (_t, dir) = copy_fixture("classic-st6");
    edit(
        &dir.join("sentence_bert_config.json"),
        "sequence-classification",
        "feature-extraction",
    );
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("feature-extraction"), "{e}");

    let (_t, dir) = copy_fixture("classic-st6");
    edit(
        &dir.join("config.json"),
        "BertForSequenceClassification",
        "BertModel",
    );
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("BertModel"), "{e}");

    // Without transformer_task (sentence-transformers before 6), the architecture decides.
    let (_t, dir) = copy_fixture("classic-st6");
    std::fs::write(dir.join("sentence_bert_config.json"), "{}").unwrap();
    assert!(Model::load(runtime(), &dir, LoadOptions::default()).is_ok());
    edit(
        &dir.join("config.json"),
        "BertForSequenceClassification",
        "BertModel",
    );
    assert_eq!(load_err(&dir).kind, ErrorKind::Unsupported);
}

#[test]
fn the_saved_max_length_caps_ettin_max_length() {
    // sentence-transformers ≤ 5 saved max_seq_length in sentence_bert_config.json; it wins over
    // tokenizer_config.json, and the position embeddings cap both.
    let (_t, dir) = copy_fixture("classic-st6");
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 96, "do_lower_case": false}"#,
    )
    .unwrap();
    let model = Model::load(runtime(), &dir, LoadOptions::default()).unwrap();
    assert_eq!(model.effective_max_length(512), 96);
    assert_eq!(model.effective_max_length(64), 64);
    edit(&dir.join("sentence_bert_config.json"), "96", "4096");
    let model = Model::load(runtime(), &dir, LoadOptions::default()).unwrap();
    assert_eq!(
        model.effective_max_length(8192),
        512,
        "max_position_embeddings"
    );
}

#[test]
fn malformed_tokenizer_and_json_are_external_errors() {
    let (_t, dir) = copy_fixture("modular");
    std::fs::write(dir.join("tokenizer.json"), "{\"version\": ").unwrap();
    assert_eq!(load_err(&dir).kind, ErrorKind::External);

    let (_t, dir) = copy_fixture("modular");
    std::fs::write(dir.join("modules.json"), "[{").unwrap();
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::External);
    assert!(e.message.contains("modules.json"), "{e}");
}

/// Hub repos made with sentence-transformers 3.x–5.x name modules `sentence_transformers.models.*`
/// and write pooling as one flag per mode; they must load and score like the 6.x layout.
#[test]
fn older_sentence_transformers_module_layout_scores_the_same() {
    let (_t, dir) = copy_fixture("modular");
    let modules = dir.join("modules.json");
    edit(
        &modules,
        "sentence_transformers.base.modules.transformer.Transformer",
        "sentence_transformers.models.Transformer",
    );
    edit(
        &modules,
        "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
        "sentence_transformers.models.Pooling",
    );
    edit(
        &modules,
        "sentence_transformers.sentence_transformer.modules.layer_norm.LayerNorm",
        "sentence_transformers.models.LayerNorm",
    );
    let text = std::fs::read_to_string(&modules).unwrap();
    std::fs::write(
        &modules,
        text.replace(
            "sentence_transformers.base.modules.dense.Dense",
            "sentence_transformers.models.Dense",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 64, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false,
            "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false,
            "pooling_mode_weightedmean_tokens": false, "pooling_mode_lasttoken": false, "include_prompt": true}"#,
    )
    .unwrap();
    let old = load(&dir);
    let reference = reference("modular");
    let pairs = as_refs(&reference.pairs);
    let got = old.score(&pairs[..60], &options(512), &mut || {}).unwrap();
    assert_close(
        "old layout",
        &got,
        &reference.scores["512"][..60],
        1e-3,
        &reference.pairs,
    );
}

#[test]
fn mean_pooling_is_supported_and_changes_scores_weightedmean_is_refused() {
    let (_t, dir) = copy_fixture("modular");
    edit(
        &dir.join("1_Pooling/config.json"),
        "\"pooling_mode\": \"cls\"",
        "\"pooling_mode\": \"mean\"",
    );
    let mean = load(&dir);
    let cls = load(&fixture_dir("modular"));
    let pairs = [("free software", "the license text"), ("a", "x")];
    let a = mean.score(&pairs, &options(512), &mut || {}).unwrap();
    let b = cls.score(&pairs, &options(512), &mut || {}).unwrap();
    assert!(
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() > 1e-4),
        "mean pooling must differ from cls: {a:?} {b:?}"
    );

    let (_t, dir) = copy_fixture("modular");
    edit(
        &dir.join("1_Pooling/config.json"),
        "\"pooling_mode\": \"cls\"",
        "\"pooling_mode\": \"weightedmean\"",
    );
    let e = load_err(&dir);
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("weightedmean"), "{e}");
}

fn load_with_file(dir: &Path, onnx_file: &str) -> ettin_engine::Result<Model> {
    Model::load(
        runtime(),
        dir,
        LoadOptions {
            intra_threads: 1,
            onnx_file: Some(onnx_file.to_owned()),
            ..Default::default()
        },
    )
}

#[test]
fn a_selected_onnx_file_must_exist_inside_the_model_directory() {
    let dir = fixture_dir("modular");
    let Err(e) = load_with_file(&dir, "onnx/model_int8.onnx") else {
        panic!("a missing variant loaded")
    };
    assert_eq!(e.kind, ErrorKind::MissingFile);
    assert!(e.message.contains("onnx/model_int8.onnx"), "{}", e.message);
    assert!(
        e.hint
            .as_deref()
            .unwrap_or("")
            .contains("onnx/model_cls.onnx"),
        "the hint lists the files there: {:?}",
        e.hint
    );
    for bad in [
        "../classic/onnx/model.onnx",
        "/etc/passwd",
        "onnx/../onnx/model.onnx",
        "",
    ] {
        let Err(e) = load_with_file(&dir, bad) else {
            panic!("{bad:?} loaded")
        };
        assert_eq!(
            e.kind,
            ErrorKind::InvalidParameter,
            "{bad:?}: {}",
            e.message
        );
    }
}

#[test]
fn a_cls_only_graph_is_refused_for_a_mean_pooling_head() {
    let (_t, dir) = copy_fixture("modular");
    edit(
        &dir.join("1_Pooling/config.json"),
        "\"pooling_mode\": \"cls\"",
        "\"pooling_mode\": \"mean\"",
    );
    let Err(e) = load_with_file(&dir, "onnx/model_cls.onnx") else {
        panic!("a CLS-only graph loaded under mean pooling")
    };
    assert_eq!(e.kind, ErrorKind::External);
    assert!(e.message.contains("CLS pooling"), "{}", e.message);
}

#[test]
fn a_full_range_int8_graph_loads_only_where_the_cpu_multiplies_it_exactly() {
    // The fixture's model_cls_int8_vnni.onnx says "ettin.int8_weights: full-range" in its
    // metadata. With VNNI/AMX it loads and ranks like fp32; without, it is refused (0A000).
    let cpu = ettin_engine::cpu::CpuFeatures::detect();
    let dir = fixture_dir("modular");
    match load_with_file(&dir, "onnx/model_cls_int8_vnni.onnx") {
        Ok(int8) => {
            assert!(
                cpu.int8_dot_product(),
                "loaded on a CPU without VNNI/AMX: {cpu:?}"
            );
            let fp32 = load(&dir);
            let reference = reference("modular");
            let pairs = as_refs(&reference.pairs);
            let a = int8.score(&pairs, &options(512), &mut || {}).unwrap();
            let b = fp32.score(&pairs, &options(512), &mut || {}).unwrap();
            let rho = spearman(&a, &b);
            assert!(rho > 0.9, "int8 vs fp32 Spearman {rho}");
        }
        Err(e) => {
            assert!(!cpu.int8_dot_product(), "refused on a VNNI CPU: {e}");
            assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
        }
    }
}

fn spearman(a: &[f32], b: &[f32]) -> f64 {
    fn ranks(x: &[f32]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..x.len()).collect();
        idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
        let mut r = vec![0.0; x.len()];
        for (rank, i) in idx.into_iter().enumerate() {
            r[i] = rank as f64;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y) * (x - y)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}
