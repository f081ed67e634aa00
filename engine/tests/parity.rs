//! Scores match sentence-transformers' CrossEncoder.predict() on the committed fixtures.

mod common;

use common::*;

/// Every reference length of a fixture: "512" and "64" were asked of CrossEncoder explicitly;
/// "default" is what it does with the max length the model was saved with, which ettin must
/// apply by itself when its own cap does not come first (the default ettin.max_length).
fn check_fixture(name: &str) {
    let model = load(&fixture_dir(name));
    let reference = reference(name);
    assert!(!reference.scores.is_empty());
    let keys: Vec<&str> = reference.scores.keys().map(String::as_str).collect();
    check_lengths(name, &model, name, &keys);
}

#[test]
fn modular_model_matches_sentence_transformers() {
    check_fixture("modular");
}

#[test]
fn classic_model_matches_sentence_transformers() {
    check_fixture("classic");
}

#[test]
fn classic_model_saved_by_sentence_transformers_6_matches() {
    // modules.json with a lone Transformer module, max length 128 in tokenizer_config.json.
    let model = load(&fixture_dir("classic-st6"));
    assert_eq!(model.files.layout, ettin_engine::Layout::Classic);
    assert_eq!(model.files.length_limit, Some(128));
    assert_eq!(model.effective_max_length(512), 128);
    check_fixture("classic-st6");
}

#[test]
fn a_pair_scores_the_same_alone_and_in_a_mixed_batch() {
    for name in ["modular", "classic"] {
        let model = load(&fixture_dir(name));
        let reference = reference(name);
        let pairs = as_refs(&reference.pairs);
        let batch: Vec<(&str, &str)> = pairs[..100].to_vec();
        let in_batch = model.score(&batch, &options(512), &mut || {}).unwrap();
        let sigma = std_dev(&in_batch);
        for i in [0usize, 7, 42, 99] {
            let alone = model
                .score(&batch[i..i + 1], &options(512), &mut || {})
                .unwrap()[0];
            let d = (alone - in_batch[i]).abs();
            assert!(
                d <= 1e-4 * sigma,
                "{name} pair {i}: alone {alone} vs batch {} (σ {sigma})",
                in_batch[i]
            );
        }
    }
}

#[test]
fn activation_choice_overrides_the_model_default() {
    use ettin_engine::ActivationChoice;
    let model = load(&fixture_dir("classic"));
    let pairs = [("copyright notice", "copyright notice"), ("a", "x")];
    let mut raw_opts = options(512);
    raw_opts.activation = ActivationChoice::Raw;
    let raw = model.score(&pairs, &raw_opts, &mut || {}).unwrap();
    let default = model.score(&pairs, &options(512), &mut || {}).unwrap();
    for (r, d) in raw.iter().zip(&default) {
        assert!(
            (1.0 / (1.0 + (-r).exp()) - d).abs() < 1e-6,
            "classic default is sigmoid of the logit"
        );
    }
    let modular = load(&fixture_dir("modular"));
    let mut sig_opts = options(512);
    sig_opts.activation = ActivationChoice::Sigmoid;
    let logit = modular.score(&pairs, &options(512), &mut || {}).unwrap();
    let sig = modular.score(&pairs, &sig_opts, &mut || {}).unwrap();
    for (l, s) in logit.iter().zip(&sig) {
        assert!(
            (1.0 / (1.0 + (-l).exp()) - s).abs() < 1e-6,
            "sigmoid applies to the modular logit"
        );
    }
}

#[test]
fn between_batches_runs_before_each_tokenization_chunk_and_each_batch() {
    let model = load(&fixture_dir("modular"));
    let reference = reference("modular");
    let pairs = as_refs(&reference.pairs);
    let mut calls = 0;
    let mut opts = options(512);
    opts.limits.max_pairs = 10;
    model
        .score(&pairs[..95], &opts, &mut || calls += 1)
        .unwrap();
    // 95 pairs: one tokenization chunk (256 pairs each), then 10 batches of at most 10.
    assert_eq!(calls, 1 + 10);
}

#[test]
fn the_token_guard_refuses_oversized_calls_before_running_the_model() {
    let model = load(&fixture_dir("modular"));
    let long = "free software ".repeat(400);
    let pairs: Vec<(&str, &str)> = (0..50).map(|_| ("license", long.as_str())).collect();
    let mut opts = options(512);
    opts.max_total_tokens = 10_000;
    let mut batches = 0;
    let err = model
        .score(&pairs, &opts, &mut || batches += 1)
        .unwrap_err();
    assert_eq!(err.kind, ettin_engine::ErrorKind::TooLarge);
    assert!(err.message.contains("10000"), "{err}");
    opts.max_total_tokens = 50 * 512;
    assert_eq!(model.score(&pairs, &opts, &mut || {}).unwrap().len(), 50);
}

#[test]
fn do_lower_case_lowercases_like_sentence_transformers() {
    // The classic fixture's WordPiece normalizer already lowercases; the modular BPE does not, so
    // do_lower_case must make "LICENSE" and "license" score the same.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture_dir("modular");
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).unwrap();
        std::fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&entry, dir.join(rel)).unwrap();
    }
    let cfg = dir.join("sentence_bert_config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replacen('{', "{\"do_lower_case\": true,", 1)).unwrap();
    let lower = load(&dir);
    let plain = load(&src);
    let pairs = [
        ("FREE Software", "The GNU License"),
        ("free software", "the gnu license"),
    ];
    let l = lower.score(&pairs, &options(512), &mut || {}).unwrap();
    let p = plain.score(&pairs, &options(512), &mut || {}).unwrap();
    assert_eq!(l[0], l[1]);
    assert_eq!(l[1], p[1]);
    assert_ne!(p[0], p[1]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_cls_only_graph_matches_sentence_transformers_too() {
    let model = load_graph("modular", "onnx/model_cls.onnx");
    assert!(model.files.onnx.ends_with("onnx/model_cls.onnx"));
    let reference = reference("modular");
    let pairs = as_refs(&reference.pairs);
    for max_length in [512usize, 64] {
        let got = model
            .score(&pairs, &options(max_length), &mut || {})
            .unwrap();
        assert_close(
            &format!("modular CLS-only graph max_length={max_length}"),
            &got,
            &reference.scores[&max_length.to_string()],
            1e-3,
            &reference.pairs,
        );
    }
    let c = model.counters.snapshot();
    assert_eq!(c.calls, 2);
    assert_eq!(c.pairs, 2 * pairs.len() as u64);
    assert!(c.inference_ms > 0.0 && c.inference_ms <= c.total_ms && c.tokenize_ms < c.total_ms);
}

fn load_graph(fixture: &str, onnx_file: &str) -> ettin_engine::Model {
    ettin_engine::Model::load(
        runtime(),
        &fixture_dir(fixture),
        ettin_engine::LoadOptions {
            intra_threads: 1,
            onnx_file: Some(onnx_file.into()),
            ..Default::default()
        },
    )
    .unwrap()
}

/// `model`'s scores at each reference length of `fixture` ("default": no cap of ettin's own).
fn check_lengths(label: &str, model: &ettin_engine::Model, fixture: &str, keys: &[&str]) {
    let reference = reference(fixture);
    let pairs = as_refs(&reference.pairs);
    for key in keys {
        let max_length = key.parse().unwrap_or(usize::MAX);
        let got = model
            .score(&pairs, &options(max_length), &mut || {})
            .unwrap();
        assert_close(
            &format!("{label} max_length={key}"),
            &got,
            &reference.scores[*key],
            1e-3,
            &reference.pairs,
        );
    }
}

#[test]
fn the_long_graph_matches_sentence_transformers_up_to_8k_tokens() {
    // modular-long: 7999 positions, pairs of 92 to 11157 tokens (the longest cut at 7999), the
    // last layer global; modular: 1024 positions, its last layer local (the CLS row then sees
    // only its window).
    let long = load_graph("modular-long", "onnx/model_long.onnx");
    check_lengths(
        "modular-long, long graph",
        &long,
        "modular-long",
        &["default", "2048", "512"],
    );
    // The plain graph agrees where its n × n attention is affordable in a test.
    let plain = load_graph("modular-long", "onnx/model.onnx");
    check_lengths(
        "modular-long, plain graph",
        &plain,
        "modular-long",
        &["2048", "512"],
    );
    let local_last = load_graph("modular", "onnx/model_long.onnx");
    check_lengths(
        "modular, long graph",
        &local_last,
        "modular",
        &["default", "512", "64"],
    );
}

#[test]
fn the_long_graph_keeps_8k_tokens_within_the_default_budget() {
    // One head's n × n scores at a time: an 8K-token pair fits 2 GB where the plain graph's
    // estimate (every head at once) does not.
    let long = load_graph("modular-long", "onnx/model_long.onnx");
    let plain = load_graph("modular-long", "onnx/model.onnx");
    let reference = reference("modular-long");
    let pairs = as_refs(&reference.pairs);
    let mut opts = options(usize::MAX);
    opts.limits.max_memory = 2048 << 20;
    let scores = long.score(&pairs[4..], &opts, &mut || {}).unwrap();
    assert_eq!(scores.len(), 2);
    assert!(long.batch_bytes(1, 7999) < 2048 << 20);
    assert!(plain.batch_bytes(1, 7999) > 2048 << 20);
    let e = plain.score(&pairs[4..], &opts, &mut || {}).unwrap_err();
    assert_eq!(e.kind, ettin_engine::ErrorKind::TooLarge);
}
