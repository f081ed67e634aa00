//! Splitting a long text into chunks that each fit a model, on the model's own tokenizer
//! (`ettin_chunk`): consecutive runs of tokens, at most `max_tokens` each (special tokens not
//! counted), sharing `overlap` tokens with the previous chunk, ending where a paragraph or a
//! sentence ends when one lies in the second half of the budget, else at the budget.
//!
//! Positions are characters, 1-based and inclusive (Postgres' `substr`): a chunk runs from its
//! first token's first character to its last token's last character, so every token of the
//! text is in some chunk (whitespace between two chunks may be in neither). A chunk never ends
//! inside a character that spans several byte-level tokens (an emoji), and is re-tokenized to
//! check it still fits: a boundary can change how the first word splits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tokenizers::{PostProcessor, Tokenizer};

use crate::error::{EngineError, ErrorKind, Result};
use crate::files::read_model_files;
use crate::model::UNSTATED_MAX_LENGTH;
use crate::quote::quoted;
use crate::static_embedding::static_module_dir;
use crate::tokenize::{read_tokenizer, PairTokenizer};

/// Bytes of text per token below which a text is refused before tokenizing (a token covers a
/// few bytes; this bounds what the tokenizer allocates for a text past the token guard).
const MIN_BYTES_PER_TOKEN_GUARD: usize = 16;

static CHUNKERS: Mutex<Vec<(PathBuf, Arc<Chunker>)>> = parking_lot::const_mutex(Vec::new());

/// The chunker of the model in `dir`, loaded once per process.
pub fn chunker(dir: &Path) -> Result<Arc<Chunker>> {
    if let Some((_, c)) = CHUNKERS.lock().iter().find(|(d, _)| d == dir) {
        return Ok(Arc::clone(c));
    }
    let loaded = Arc::new(Chunker::load(dir)?);
    CHUNKERS
        .lock()
        .push((dir.to_path_buf(), Arc::clone(&loaded)));
    Ok(loaded)
}

/// One chunk: its 1-based number, text, and character span in the original (1-based, inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub seq: usize,
    pub text: String,
    pub start_char: usize,
    pub end_char: usize,
}

/// A model's tokenizer with what a chunk of it may hold. Needs only the tokenizer and configs:
/// no ONNX Runtime session, so it works the same in backend and shared inference mode.
pub struct Chunker {
    tokenizer: Tokenizer,
    /// The model's length less its special tokens and its default prompt.
    pub default_max_tokens: usize,
}

impl Chunker {
    /// The chunker of the model in `dir`: an ONNX model (its length limit, as embedding
    /// truncates) or a StaticEmbedding one (tokenizer.json's own truncation, if any).
    pub fn load(dir: &Path) -> Result<Chunker> {
        if let Some(module) = static_module_dir(dir)? {
            let mut tokenizer = read_tokenizer(&module.join("tokenizer.json"))?;
            let limit = tokenizer.get_truncation().map(|t| t.max_length);
            tokenizer.with_padding(None);
            tokenizer.with_truncation(None).map_err(|e| {
                EngineError::external("tokenizer rejected truncation").with_detail(e)
            })?;
            let prompts = crate::prompts::Prompts::read(dir)?;
            let prompt = prompts.text(None)?.to_owned();
            return Chunker::new(tokenizer, limit, 0, &prompt);
        }
        let files = read_model_files(dir, None)?;
        let tokenizer = PairTokenizer::load(
            &files.tokenizer,
            files.pad_token.as_deref(),
            files.pad_token_id,
            files.lowercase,
        )?
        .plain()
        .clone();
        let specials = tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        let prompt = files.prompts.text(None)?.to_owned();
        Chunker::new(tokenizer, files.length_limit, specials, &prompt)
    }

    fn new(
        tokenizer: Tokenizer,
        limit: Option<usize>,
        specials: usize,
        prompt: &str,
    ) -> Result<Self> {
        let prompt_tokens = if prompt.is_empty() {
            0
        } else {
            count_tokens(&tokenizer, prompt)?
        };
        // A model that states no length (a StaticEmbedding table without truncation): 512.
        let limit = limit.unwrap_or(UNSTATED_MAX_LENGTH);
        Ok(Chunker {
            default_max_tokens: limit.saturating_sub(specials + prompt_tokens).max(1),
            tokenizer,
        })
    }

    /// The chunks of `text`: at most `max_tokens` tokens each (None: the model's budget),
    /// consecutive chunks sharing `overlap` tokens. An empty text has no chunks. A text of more
    /// than `max_total_tokens` tokens is refused (the per-call memory guard).
    pub fn chunk(
        &self,
        text: &str,
        max_tokens: Option<usize>,
        overlap: usize,
        max_total_tokens: usize,
    ) -> Result<Vec<Chunk>> {
        let max_tokens = max_tokens.unwrap_or(self.default_max_tokens);
        if max_tokens == 0 {
            return Err(EngineError::invalid("max_tokens must be at least 1")
                .with_hint("pass NULL for the model's own budget"));
        }
        if overlap >= max_tokens {
            return Err(EngineError::invalid(format!(
                "overlap ({overlap}) must be smaller than max_tokens ({max_tokens})"
            ))
            .with_hint("an overlap of 10-20% of max_tokens is usual"));
        }
        let too_long = |what: String| {
            EngineError::new(ErrorKind::TooLarge, what).with_hint(
                "split the text first, or ask a superuser to raise ettin.max_tokens_per_call",
            )
        };
        if text.len() > max_total_tokens.saturating_mul(MIN_BYTES_PER_TOKEN_GUARD) {
            return Err(too_long(format!(
                "the text ({} bytes) is too long to chunk in one call (ettin.max_tokens_per_call = {max_total_tokens})",
                text.len()
            )));
        }
        let encoding = self
            .tokenizer
            .encode_char_offsets(text, false)
            .map_err(|e| {
                EngineError::external("the tokenizer failed on the text").with_detail(e)
            })?;
        let offsets = encoding.get_offsets();
        if offsets.len() > max_total_tokens {
            return Err(too_long(format!(
                "the text has {} tokens, more than ettin.max_tokens_per_call ({max_total_tokens})",
                offsets.len()
            )));
        }
        let chars: Vec<char> = text.chars().collect();
        let plan = Plan {
            offsets,
            chars: &chars,
        };
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < offsets.len() {
            let mut end = plan.end_of_chunk(start, max_tokens);
            // Re-tokenized alone, a chunk can take a token more than its slice of the whole
            // text did (a word split differently at its start): shorten until it fits.
            let text = loop {
                let candidate = plan.text(start, end);
                if end - start == 1 || count_tokens(&self.tokenizer, &candidate)? <= max_tokens {
                    break candidate;
                }
                end = plan.step_back(start, end - 1);
            };
            chunks.push(Chunk {
                seq: chunks.len() + 1,
                text,
                start_char: offsets[start].0 + 1,
                end_char: offsets[end - 1].1,
            });
            if end == offsets.len() {
                break;
            }
            start = (end - overlap.min(end)).max(start + 1);
        }
        Ok(chunks)
    }
}

fn count_tokens(tokenizer: &Tokenizer, text: &str) -> Result<usize> {
    tokenizer
        .encode_fast(text, false)
        .map(|e| e.get_ids().len())
        .map_err(|e| {
            EngineError::external(format!("the tokenizer failed on {}", quoted(text)))
                .with_detail(e)
        })
}

/// Token character offsets ([start, end) in `chars`) of one text, and where chunks may end.
struct Plan<'a> {
    offsets: &'a [(usize, usize)],
    chars: &'a [char],
}

impl Plan<'_> {
    /// The end (exclusive token index) of the chunk starting at `start`: the budget's end, or
    /// the last paragraph end, else sentence end, in the budget's second half.
    fn end_of_chunk(&self, start: usize, max_tokens: usize) -> usize {
        let hard = (start + max_tokens).min(self.offsets.len());
        if hard == self.offsets.len() {
            return hard;
        }
        let hard = self.step_back(start, hard);
        let earliest = (start + max_tokens.div_ceil(2)).min(hard);
        let candidates = || (earliest..=hard).rev().filter(|&e| e > start);
        candidates()
            .find(|&e| self.ends_paragraph(e))
            .or_else(|| candidates().find(|&e| self.ends_sentence(e)))
            .unwrap_or(hard)
    }

    /// `end`, or the nearest earlier token boundary (after `start`) that does not cut a
    /// character several tokens share.
    fn step_back(&self, start: usize, mut end: usize) -> usize {
        while end > start + 1
            && end < self.offsets.len()
            && self.offsets[end].0 < self.offsets[end - 1].1
        {
            end -= 1;
        }
        end
    }

    /// The characters between token `end - 1` and the first non-space character of token
    /// `end` (byte-level tokenizers put the space inside the next token).
    fn gap(&self, end: usize) -> &[char] {
        let from = self.offsets[end - 1].1;
        let (token_start, token_end) = self.offsets[end];
        let mut to = token_start.max(from);
        while to < token_end && self.chars[to].is_whitespace() {
            to += 1;
        }
        &self.chars[from.min(to)..to]
    }

    fn ends_paragraph(&self, end: usize) -> bool {
        self.gap(end).iter().filter(|c| **c == '\n').count() >= 2
    }

    fn ends_sentence(&self, end: usize) -> bool {
        let last = self.chars[..self.offsets[end - 1].1]
            .iter()
            .rev()
            .find(|c| !matches!(c, '"' | '\'' | ')' | '”' | '’'));
        match last {
            Some('.' | '!' | '?' | '…') => self.gap(end).iter().any(|c| c.is_whitespace()),
            Some('。' | '！' | '？') => true,
            _ => false,
        }
    }

    fn text(&self, start: usize, end: usize) -> String {
        self.chars[self.offsets[start].0..self.offsets[end - 1].1]
            .iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;

    const GUARD: usize = 1_000_000;

    /// A word-level tokenizer: every word and punctuation mark one token.
    fn words() -> Chunker {
        let mut vocab: std::collections::HashMap<String, u32> = Default::default();
        vocab.insert("[UNK]".into(), 0);
        let mut tokenizer = Tokenizer::new(
            WordLevel::builder()
                .vocab(vocab.into_iter().collect())
                .unk_token("[UNK]".into())
                .build()
                .unwrap(),
        );
        tokenizer.with_pre_tokenizer(Some(Whitespace {}));
        Chunker {
            tokenizer,
            default_max_tokens: 8,
        }
    }

    fn spans_match(text: &str, chunks: &[Chunk]) {
        let chars: Vec<char> = text.chars().collect();
        for c in chunks {
            let span: String = chars[c.start_char - 1..c.end_char].iter().collect();
            assert_eq!(span, c.text, "{c:?}");
        }
    }

    #[test]
    fn chunks_cover_the_tokens_with_the_overlap_asked() {
        let text = "one two three four five six seven eight nine ten eleven twelve";
        let c = words();
        let chunks = c.chunk(text, Some(5), 2, GUARD).unwrap();
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "one two three four five",
                "four five six seven eight",
                "seven eight nine ten eleven",
                "ten eleven twelve"
            ]
        );
        assert_eq!(
            chunks.iter().map(|c| c.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        spans_match(text, &chunks);
        // No overlap: each word exactly once.
        let chunks = c.chunk(text, Some(5), 0, GUARD).unwrap();
        let joined: Vec<&str> = chunks.iter().flat_map(|c| c.text.split(' ')).collect();
        assert_eq!(joined.join(" "), text);
    }

    #[test]
    fn chunks_end_at_sentences_and_paragraphs_within_the_budget() {
        let text = "Alpha beta gamma. Delta epsilon zeta iota.\n\nKappa lambda mu. Nu xi";
        let c = words();
        let chunks = c.chunk(text, Some(10), 0, GUARD).unwrap();
        // The paragraph end (after "iota .", 9 tokens) wins over the budget's end and the
        // sentence end after "gamma .".
        assert_eq!(chunks[0].text, "Alpha beta gamma. Delta epsilon zeta iota.");
        assert_eq!(chunks[1].text, "Kappa lambda mu. Nu xi");
        spans_match(text, &chunks);
        // A budget of 6 tokens: the sentence end after "gamma ." (4 tokens) is in its second half.
        let chunks = c.chunk(text, Some(6), 0, GUARD).unwrap();
        assert_eq!(chunks[0].text, "Alpha beta gamma.");
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let text = "héllo wörld ünïcode façade naïve café";
        let c = words();
        let chunks = c.chunk(text, Some(2), 0, GUARD).unwrap();
        assert_eq!(chunks.len(), 3);
        assert_eq!((chunks[1].start_char, chunks[1].end_char), (13, 26));
        spans_match(text, &chunks);
    }

    #[test]
    fn bad_budgets_are_refused_and_empty_text_has_no_chunks() {
        let c = words();
        assert!(c.chunk("", None, 0, GUARD).unwrap().is_empty());
        assert!(c.chunk("   ", None, 0, GUARD).unwrap().is_empty());
        let e = c.chunk("a b", Some(0), 0, GUARD).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::InvalidParameter);
        let e = c.chunk("a b", Some(4), 4, GUARD).unwrap_err();
        assert!(e.message.contains("overlap"), "{e}");
        // The default budget applies when none is given.
        let text = (1..=20)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(c.chunk(&text, None, 0, GUARD).unwrap().len(), 3);
        // The token guard: 20 tokens against a limit of 19.
        let e = c.chunk(&text, None, 0, 19).unwrap_err();
        assert_eq!(e.kind, crate::error::ErrorKind::TooLarge);
    }
}
