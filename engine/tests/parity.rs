//! Scores match sentence-transformers' CrossEncoder.predict() on the committed fixtures.

mod common;

use common::*;

fn check_fixture(name: &str) {
    let model = load(&fixture_dir(name));
    let reference = reference(name);
    let pairs = as_refs(&reference.pairs);
    for max_length in [512usize, 64] {
        let got = model
            .score(&pairs, &options(max_length), &mut || {})
            .unwrap();
        let expected = &reference.scores[&max_length.to_string()];
        assert_close(
            &format!("{name} max_length={max_length}"),
            &got,
            expected,
            1e-3,
            &reference.pairs,
        );
    }
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
fn between_batches_runs_once_per_batch() {
    let model = load(&fixture_dir("modular"));
    let reference = reference("modular");
    let pairs = as_refs(&reference.pairs);
    let mut calls = 0;
    let mut opts = options(512);
    opts.limits.max_pairs = 10;
    model
        .score(&pairs[..95], &opts, &mut || calls += 1)
        .unwrap();
    assert_eq!(calls, 10);
}
