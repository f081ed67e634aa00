//! Reranking: `rerank_score` (one pair, or one query against many documents) and
//! `ettin_rerank` (documents ranked best first). Settings in, engine call, scores out.

use std::cell::RefCell;

use ettin_engine::memo::{CallKeyDigest, CallMemo};
use ettin_engine::shared::{self, ScoreRequest};
use ettin_engine::{ActivationChoice, EngineError, ScoreOptions};
use pgrx::prelude::*;

use crate::call_memo::{call_key_for, local_transaction_id};
use crate::error::OrRaise;
use crate::guc;
use crate::models::{model, resolve_model, shared_inference, Task};
use crate::paths::inference_socket;

/// The scoring settings of this session; a batch_tokens of 0 is resolved by the model (device).
pub(crate) fn score_options() -> ScoreOptions {
    ScoreOptions {
        max_length: guc::MAX_LENGTH.get() as usize,
        limits: guc::batch_limits(),
        activation: match guc::ACTIVATION.get() {
            guc::ActivationSetting::Model => ActivationChoice::Model,
            guc::ActivationSetting::Raw => ActivationChoice::Raw,
            guc::ActivationSetting::Sigmoid => ActivationChoice::Sigmoid,
        },
        max_total_tokens: guc::MAX_TOKENS_PER_CALL.get() as usize,
    }
}

thread_local! {
    /// Scores of this transaction's last calls. Postgres evaluates a STABLE call with constant
    /// arguments once at plan time (row estimates, e.g. for `unnest(rerank_score(...))`) and
    /// again in the executor; the second evaluation reuses the first's scores.
    static RECENT_CALLS: RefCell<CallMemo<Vec<Option<f32>>>> = const { RefCell::new(CallMemo::new(4)) };
}

/// Everything a call's scores depend on: the function's inputs and the settings.
fn call_key(query: &str, documents: &[Option<&str>], model_name: Option<&str>) -> CallKeyDigest {
    let mut key = call_key_for(Task::Rerank, model_name, &score_options());
    key.add(query.as_bytes());
    for document in documents {
        key.add_optional(document.map(str::as_bytes));
    }
    key.into()
}

/// Score `query` against each non-NULL document; NULL documents get NULL. An identical call
/// earlier in the same transaction (the plan-time evaluation of this one) gives its scores.
fn score_documents(
    query: &str,
    documents: &[Option<&str>],
    model_name: Option<&str>,
) -> Vec<Option<f32>> {
    if documents.iter().all(Option::is_none) {
        return vec![None; documents.len()];
    }
    let scope = local_transaction_id();
    let key = call_key(query, documents, model_name);
    if let Some(scores) = RECENT_CALLS.with(|memo| memo.borrow_mut().get(scope, &key)) {
        return scores;
    }
    let scores = score_documents_now(query, documents, model_name);
    RECENT_CALLS.with(|memo| memo.borrow_mut().put(scope, key, scores.clone()));
    scores
}

fn score_documents_now(
    query: &str,
    documents: &[Option<&str>],
    model_name: Option<&str>,
) -> Vec<Option<f32>> {
    let pairs: Vec<(&str, &str)> = documents.iter().flatten().map(|d| (query, *d)).collect();
    let mut check_cancel = || {
        pgrx::check_for_interrupts!();
    };
    let scores = if shared_inference() {
        let (name, dir) = resolve_model(model_name, Task::Rerank);
        let request = ScoreRequest {
            name,
            dir,
            onnx_file: Task::Rerank.onnx_file(),
            options: score_options(),
            query: query.to_owned(),
            documents: pairs.iter().map(|(_, d)| (*d).to_owned()).collect(),
        };
        shared::score(&inference_socket(), request, &mut check_cancel)
    } else {
        model(model_name, Task::Rerank)
            .cross_encoder()
            .and_then(|m| m.score(&pairs, &score_options(), &mut check_cancel))
    };
    let mut scores = scores.or_raise().into_iter();
    documents
        .iter()
        .map(|d| d.and_then(|_| scores.next()))
        .collect()
}

/// Score one (query, document) pair. NULL query or document gives NULL.
#[pg_extern(stable, parallel_safe, name = "rerank_score")]
fn rerank_score_one(
    query: Option<&str>,
    document: Option<&str>,
    model: default!(Option<&str>, "NULL"),
) -> Option<f32> {
    score_documents(query?, &[Some(document?)], model)
        .pop()
        .flatten()
}

/// Score many documents against one query; scores in input order, NULL element → NULL score.
#[pg_extern(stable, parallel_safe, name = "rerank_score")]
fn rerank_score_many(
    query: Option<&str>,
    documents: Option<Array<&str>>,
    model: default!(Option<&str>, "NULL"),
) -> Option<Vec<Option<f32>>> {
    let (query, documents) = (query?, documents?);
    let documents: Vec<Option<&str>> = documents.iter().collect();
    Some(score_documents(query, &documents, model))
}

/// Every non-NULL document ranked best first as (1-based position in `documents`, score);
/// ties keep input order; `top_k` NULL means all.
#[pg_extern(stable, parallel_safe)]
fn ettin_rerank(
    query: Option<&str>,
    documents: Option<Array<&str>>,
    top_k: default!(Option<i32>, "NULL"),
    model: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (name!(idx, i32), name!(score, f32))> {
    if let Some(k) = top_k {
        if k < 0 {
            crate::error::raise(
                EngineError::invalid(format!("top_k must be NULL or >= 0, not {k}"))
                    .with_hint("pass NULL to rank every document"),
            );
        }
    }
    let (Some(query), Some(documents)) = (query, documents) else {
        return TableIterator::new(Vec::new());
    };
    let documents: Vec<Option<&str>> = documents.iter().collect();
    let scores = score_documents(query, &documents, model);
    let mut ranked: Vec<(i32, f32)> = scores
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|s| (i as i32 + 1, s)))
        .collect();
    // Stable sort: equal scores keep input order.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    if let Some(k) = top_k {
        ranked.truncate(k as usize);
    }
    TableIterator::new(ranked)
}
