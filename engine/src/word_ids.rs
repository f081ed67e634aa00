//! Token ids by the word, for StaticEmbedding's BERT-style tokenizers (static-retrieval-mrl-en-v1
//! uses bert-base-uncased's): BertNormalizer, BertPreTokenizer, WordPiece. What takes the time in
//! a StaticEmbedding call is the tokenizer, not the averaging: it normalizes the whole text with
//! character alignments, splits it, looks each word up piece by piece and builds an Encoding with
//! every token's string and offsets (docs/static-breakdown.md). Natural text repeats its words, so
//! the ids of each word are kept once computed, and a text's ids are its words' ids in order.
//!
//! Exact, not approximate: in this pipeline every step is local to a word. The normalizer works
//! character by character (control characters dropped, whitespace made ' ', spaces put around
//! CJK ideographs, accents stripped, lowercased), the pre-tokenizer splits at whitespace (and
//! punctuation, within a word here) and WordPiece sees one word at a time. So the text is cut
//! where the tokenizer itself would cut — at ' ', '\t', '\n', '\r', and around CJK ideographs
//! when the normalizer puts spaces there — and the words not yet known are tokenized together in
//! one call as a pre-tokenized input, which runs the same normalizer, pre-tokenizer and model on
//! each. A tokenizer with anything else (another model, pre-tokenizer or normalizer, truncation,
//! an added token that spans a cut or must stand as a single word) gets no cache: `for_tokenizer`
//! says None and the caller tokenizes whole texts. Tests compare both ways on hard texts.

use std::collections::HashMap;

use parking_lot::RwLock;
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::Tokenizer;

/// Words kept per model and process (then new words are tokenized, not kept): a few MB at most.
const MAX_WORDS: usize = 100_000;
/// Longer "words" (URLs, runs without spaces) are tokenized every time, not kept.
const MAX_WORD_BYTES: usize = 48;

/// The CJK ranges BertNormalizer puts spaces around (tokenizers' `is_chinese_char`).
fn is_cjk_ideograph(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F |
        0x2B740..=0x2B81F | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

fn is_cut(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

pub struct WordIds {
    /// BertNormalizer's handle_chinese_chars: each CJK ideograph is a word of its own.
    cjk_words: bool,
    words: RwLock<HashMap<Box<str>, Box<[u32]>>>,
}

/// Where a word's ids come from while a text is put together.
enum Piece {
    Known(usize, usize), // a range of `known`
    New(usize),          // index into the words tokenized in this call
}

impl WordIds {
    /// A cache for `tokenizer` if its pipeline is one where cutting at words changes nothing.
    pub fn for_tokenizer(tokenizer: &Tokenizer) -> Option<WordIds> {
        if !matches!(tokenizer.get_model(), ModelWrapper::WordPiece(_))
            || !matches!(
                tokenizer.get_pre_tokenizer(),
                Some(PreTokenizerWrapper::BertPreTokenizer(_))
            )
            || tokenizer.get_truncation().is_some()
        {
            return None;
        }
        let cjk_words = match tokenizer.get_normalizer() {
            Some(NormalizerWrapper::BertNormalizer(n)) => n.handle_chinese_chars,
            None => false,
            Some(_) => return None,
        };
        let spans_a_cut = |content: &str| {
            content
                .chars()
                .any(|c| c.is_whitespace() || is_cjk_ideograph(c))
        };
        if tokenizer
            .get_added_tokens_decoder()
            .values()
            .any(|t| t.single_word || spans_a_cut(&t.content))
        {
            return None;
        }
        Some(WordIds {
            cjk_words,
            words: RwLock::new(HashMap::new()),
        })
    }

    /// The words of `text` where the tokenizer would cut it, in order.
    fn words<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices() {
            let alone = self.cjk_words && is_cjk_ideograph(c);
            if is_cut(c) || alone {
                if start < i {
                    out.push(&text[start..i]);
                }
                let end = i + c.len_utf8();
                if alone {
                    out.push(&text[i..end]);
                }
                start = end;
            }
        }
        if start < text.len() {
            out.push(&text[start..]);
        }
        out
    }

    /// `text`'s token ids (no special tokens), as `tokenizer.encode_fast(text, false)` gives them.
    pub fn ids(&self, tokenizer: &Tokenizer, text: &str) -> tokenizers::Result<Vec<u32>> {
        let words = self.words(text);
        let mut known: Vec<u32> = Vec::new();
        let mut pieces = Vec::with_capacity(words.len());
        let mut new: Vec<&str> = Vec::new();
        let room = {
            let cache = self.words.read();
            for word in &words {
                match cache.get(*word) {
                    Some(ids) => {
                        pieces.push(Piece::Known(known.len(), known.len() + ids.len()));
                        known.extend_from_slice(ids);
                    }
                    None => {
                        pieces.push(Piece::New(new.len()));
                        new.push(word);
                    }
                }
            }
            cache.len() < MAX_WORDS
        };
        if new.is_empty() {
            return Ok(known);
        }
        // The new words in one call, pre-tokenized: each goes through the whole pipeline alone
        // and its tokens carry its index as word id (encode_fast would leave word ids out).
        let encoding = tokenizer.encode(new.as_slice(), false)?;
        let mut fresh: Vec<Vec<u32>> = vec![Vec::new(); new.len()];
        for (id, word) in encoding.get_ids().iter().zip(encoding.get_word_ids()) {
            if let Some(w) = word {
                fresh[*w as usize].push(*id);
            }
        }
        let mut out = Vec::with_capacity(known.len() + encoding.get_ids().len());
        for piece in &pieces {
            match *piece {
                Piece::Known(from, to) => out.extend_from_slice(&known[from..to]),
                Piece::New(i) => out.extend_from_slice(&fresh[i]),
            }
        }
        if room {
            let mut cache = self.words.write();
            for (word, ids) in new.iter().zip(fresh) {
                if cache.len() >= MAX_WORDS {
                    break;
                }
                if word.len() <= MAX_WORD_BYTES {
                    cache.insert((*word).into(), ids.into());
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture_tokenizer(name: &str) -> Tokenizer {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/models")
            .join(name)
            .join("tokenizer.json");
        Tokenizer::from_file(path).unwrap()
    }

    /// Texts where cutting at words could go wrong, and the fixture's own reference texts.
    fn hard_texts() -> Vec<String> {
        let mut texts: Vec<String> = [
            "",
            " ",
            "Hello, world! It's 3.14 — isn't it?",
            "tabs\tand\nnewlines\r\nand  double  spaces ",
            "control\u{0}chars\u{7}in\u{b}side\u{c}words\u{fffd}here\u{200b}zero width",
            "no\u{a0}break\u{2003}em\u{3000}ideographic spaces",
            "Café naïve résumé ÀÉÎÕÜ coöperate Straße İstanbul ǅ",
            "e\u{301}\u{302} combining marks a\u{308}\u{332}",
            "中文字符混合English文本，还有标点。和数字123",
            "abc中def文ghi 한국어 텍스트 日本語のテキスト カタカナ",
            "emoji 🙂👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
            "literal [CLS] and [SEP] and [MASK]tokens[PAD] and [UNK]",
            "Привет мир, это текст по-русски. Ελληνικά γράμματα.",
            "https://example.com/a/very/long/url?with=params&and=more#fragment_without_spaces_at_all_anywhere",
            "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.push("x".repeat(150) + " " + &"ab".repeat(60));
        texts.push(texts.join(" "));
        let reference: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../tests/fixtures/models/static/reference.json"),
            )
            .unwrap(),
        )
        .unwrap();
        for t in reference["texts"].as_array().unwrap() {
            texts.push(t.as_str().unwrap().to_owned());
        }
        texts
    }

    #[test]
    fn ids_by_the_word_equal_the_tokenizers_own() {
        for fixture in ["static", "embed-bert"] {
            let mut tokenizer = fixture_tokenizer(fixture);
            // embed-bert's file carries all-MiniLM-L6-v2's baked-in truncation and padding.
            tokenizer.with_truncation(None).unwrap();
            tokenizer.with_padding(None);
            let cache = WordIds::for_tokenizer(&tokenizer).expect("a WordPiece tokenizer");
            let texts = hard_texts();
            // Twice: first every word is new, then every short word is known.
            for round in 0..2 {
                for text in &texts {
                    let want = tokenizer.encode_fast(text.as_str(), false).unwrap();
                    let got = cache.ids(&tokenizer, text).unwrap();
                    assert_eq!(got, want.get_ids(), "{fixture}, round {round}: {text:?}");
                }
            }
            assert!(cache.words.read().len() > 100);
        }
    }

    #[test]
    fn other_pipelines_get_no_cache() {
        // ModernBERT's byte-level BPE: spaces belong to the tokens after them.
        assert!(WordIds::for_tokenizer(&fixture_tokenizer("modular")).is_none());
        // The same WordPiece tokenizer with truncation: the cut would land elsewhere.
        let mut truncated = fixture_tokenizer("static");
        truncated
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: 8,
                ..Default::default()
            }))
            .unwrap();
        assert!(WordIds::for_tokenizer(&truncated).is_none());
    }
}
