//! `ettin_chunk`: a long text split on a model's own tokenizer into chunks that each fit the
//! model, for a table of one row per chunk (embed each, KNN, best chunk per document). Part of
//! the embedding surface; it needs only the tokenizer, so it runs in the backend in both
//! inference modes.

use ettin_engine::chunk::chunker;
use ettin_engine::EngineError;
use pgrx::prelude::*;

use crate::error::{raise, OrRaise};
use crate::guc;
use crate::models::{resolve_model, Task};

/// A non-negative count argument, or ERROR 22023 naming it.
fn count(value: i32, name: &str, hint: &str) -> usize {
    usize::try_from(value).unwrap_or_else(|_| {
        raise(
            EngineError::invalid(format!("{name} must not be negative, not {value}"))
                .with_hint(hint),
        )
    })
}

/// The chunks of `input` on the tokenizer of `model` (NULL: ettin.embed_model): at most
/// `max_tokens` tokens each (NULL: the model's max length less its special tokens and default
/// prompt), consecutive chunks sharing `overlap` tokens, ending at a paragraph or sentence end
/// when one is in the second half of the budget. Positions are 1-based characters, inclusive:
/// `substr(input, start_char, end_char - start_char + 1) = chunk`. NULL or empty text: no rows.
#[pg_extern(stable, parallel_safe)]
fn ettin_chunk(
    input: Option<&str>,
    model: default!(Option<&str>, "NULL"),
    max_tokens: default!(Option<i32>, "NULL"),
    overlap: default!(Option<i32>, 0),
) -> TableIterator<
    'static,
    (
        name!(seq, i32),
        name!(chunk, String),
        name!(start_char, i32),
        name!(end_char, i32),
    ),
> {
    let budget_hint = "pass NULL for the model's own budget, or a positive number of tokens";
    let max_tokens = max_tokens.map(|n| count(n, "max_tokens", budget_hint));
    let overlap = count(
        overlap.unwrap_or(0),
        "overlap",
        "pass 0 for chunks that do not overlap",
    );
    let Some(input) = input else {
        return TableIterator::new(Vec::new());
    };
    let (_, dir) = resolve_model(model, Task::Embed);
    let chunks = chunker(&dir)
        .and_then(|c| {
            c.chunk(
                input,
                max_tokens,
                overlap,
                guc::MAX_TOKENS_PER_CALL.get() as usize,
            )
        })
        .or_raise();
    TableIterator::new(
        chunks
            .into_iter()
            .map(|c| (c.seq as i32, c.text, c.start_char as i32, c.end_char as i32)),
    )
}
