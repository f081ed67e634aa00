//! Pair (cross-encoder) and single-text (embedder) encoding with the model's own tokenizer.json. Whatever truncation or padding the file
//! carries is ignored (ModernBERT's says truncate at 7999): ettin sets LongestFirst truncation at
//! the requested max_length (special tokens included) and pads per batch itself.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use tokenizers::normalizers::{Lowercase, NormalizerWrapper, Sequence};
use tokenizers::{
    EncodeInput, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{EngineError, Result};
use crate::quote::quoted;

/// One encoded (query, document) pair, or one text. Kept as u32 (what the tokenizer produces) until a batch
/// is assembled, so thousands of encoded documents take half the memory of int64 tensors.
#[derive(Debug, Clone, Default)]
pub struct EncodedPair {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

pub struct PairTokenizer {
    base: Tokenizer,
    pad_id: i64,
    // Configuring truncation needs `&mut Tokenizer`, and max_length is a per-call setting:
    // keep one configured copy per length seen in this backend.
    by_max_length: Mutex<HashMap<usize, Arc<Tokenizer>>>,
}

/// A model's tokenizer.json as the file says (rerankers and embedders each apply their own rules
/// for truncation and special tokens on top).
pub fn read_tokenizer(path: &Path) -> Result<Tokenizer> {
    if !path.is_file() {
        return Err(EngineError::missing(format!(
            "tokenizer file {} does not exist",
            quoted(path.display())
        ))
        .with_hint("a model directory needs tokenizer.json; run the export tool on the model"));
    }
    Tokenizer::from_file(path).map_err(|e| {
        EngineError::external(format!("could not read tokenizer {}", quoted(path.display())))
            .with_detail(e)
            .with_hint("tokenizer.json must be a Hugging Face fast-tokenizer file; copy it again from the model repository")
    })
}

/// Names that tokenizers commonly give their padding token, most specific first.
const PAD_TOKENS: [&str; 4] = ["[PAD]", "<pad>", "<|pad|>", "<|endoftext|>"];

impl PairTokenizer {
    /// Load `tokenizer.json`. `pad_token`/`config_pad_id` come from the model's configs when known;
    /// `lowercase` is sentence-transformers' `do_lower_case`.
    pub fn load(
        path: &Path,
        pad_token: Option<&str>,
        config_pad_id: Option<i64>,
        lowercase: bool,
    ) -> Result<Self> {
        let mut base = read_tokenizer(path)?;
        let pad_id = pad_token
            .and_then(|t| base.token_to_id(t))
            .or_else(|| base.get_padding().map(|p| p.pad_id))
            .map(|id| id as i64)
            .or(config_pad_id)
            .or_else(|| {
                PAD_TOKENS
                    .iter()
                    .find_map(|t| base.token_to_id(t))
                    .map(|id| id as i64)
            })
            .unwrap_or(0);
        if lowercase {
            // As sentence-transformers does: a Lowercase normalizer ahead of the file's own, so
            // added tokens are still matched before lowercasing.
            let mut chain: Vec<NormalizerWrapper> = vec![Lowercase.into()];
            chain.extend(base.get_normalizer().cloned());
            base.with_normalizer(Some(Sequence::new(chain)))
                .map_err(|e| {
                    EngineError::external("tokenizer rejected a lowercase normalizer")
                        .with_detail(e)
                })?;
        }
        base.with_padding(None);
        base.with_truncation(None)
            .map_err(|e| EngineError::external("tokenizer rejected truncation").with_detail(e))?;
        Ok(PairTokenizer {
            base,
            pad_id,
            by_max_length: Mutex::new(HashMap::new()),
        })
    }

    /// The tokenizer without truncation or padding (lowercasing included when the model asks).
    pub fn plain(&self) -> &Tokenizer {
        &self.base
    }

    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }

    fn configured(&self, max_length: usize) -> Result<Arc<Tokenizer>> {
        let mut cache = self.by_max_length.lock();
        if let Some(t) = cache.get(&max_length) {
            return Ok(Arc::clone(t));
        }
        let mut t = self.base.clone();
        t.with_truncation(Some(TruncationParams {
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| {
            EngineError::invalid(format!(
                "max_length {max_length} is too small for this tokenizer"
            ))
            .with_detail(e)
        })?;
        let t = Arc::new(t);
        cache.insert(max_length, Arc::clone(&t));
        Ok(t)
    }

    /// Encode each (query, document) pair with the tokenizer's pair template, truncated to
    /// `max_length` tokens in total, on up to `threads` threads (parallel.rs). Not the tokenizers
    /// batch API: it starts a rayon thread pool whose threads would not have the backend's
    /// signals blocked.
    pub fn encode_pairs(
        &self,
        pairs: &[(&str, &str)],
        max_length: usize,
        threads: usize,
    ) -> Result<Vec<EncodedPair>> {
        self.encode_all(pairs, max_length, threads, |(q, d)| {
            EncodeInput::Dual((*q).into(), (*d).into())
        })
    }

    /// Encode single texts with the tokenizer's single-sequence template (special tokens
    /// included), truncated to `max_length` tokens: what sentence-transformers' Transformer
    /// module does for an embedder at its max_seq_length.
    pub fn encode_texts(
        &self,
        texts: &[&str],
        max_length: usize,
        threads: usize,
    ) -> Result<Vec<EncodedPair>> {
        self.encode_all(texts, max_length, threads, |t| {
            EncodeInput::Single((*t).into())
        })
    }

    /// Encode each item (`input` says how it reads) with special tokens, truncated at
    /// `max_length`, on up to `threads` threads.
    fn encode_all<T: Sync>(
        &self,
        items: &[T],
        max_length: usize,
        threads: usize,
        input: impl for<'a> Fn(&'a T) -> EncodeInput<'a> + Sync,
    ) -> Result<Vec<EncodedPair>> {
        let tokenizer = self.configured(max_length)?;
        crate::parallel::map(items, threads, |item| {
            let encoding = tokenizer.encode_fast(input(item), true).map_err(|e| {
                EngineError::external("the tokenizer failed on an input").with_detail(e)
            })?;
            Ok(EncodedPair {
                ids: encoding.get_ids().to_vec(),
                type_ids: encoding.get_type_ids().to_vec(),
            })
        })
    }

    /// How many leading tokens of `prompt + text` are the prompt's, as sentence-transformers
    /// counts them for `include_prompt = false`: the prompt encoded alone, less a trailing
    /// special token ([SEP]); the leading [CLS] counts as prompt.
    pub fn prompt_length(&self, prompt: &str, max_length: usize) -> Result<usize> {
        let encoded = self.encode_texts(&[prompt], max_length, 1)?;
        let ids = &encoded[0].ids;
        let special = |id: u32| {
            self.base
                .get_added_tokens_decoder()
                .get(&id)
                .is_some_and(|t| t.special)
        };
        Ok(match ids.last() {
            Some(last) if special(*last) => ids.len() - 1,
            _ => ids.len(),
        })
    }
}
