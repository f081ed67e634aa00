//! `ettin_chunk`'s engine on the fixture models' own tokenizers: byte-level BPE (ModernBERT),
//! WordPiece (BERT) and a StaticEmbedding table's. Each chunk is its span of the text, fits the
//! budget when tokenized alone, consecutive chunks share the tokens asked for, and every token of
//! the text is in a chunk.

mod common;

use common::fixture_dir;
use ettin_engine::chunk::{Chunk, Chunker};
use tokenizers::Tokenizer;

const GUARD: usize = 1_000_000;

/// A long text with paragraphs, sentences, accents, CJK and emoji (multi-token characters).
fn long_text() -> String {
    let mut text = String::new();
    for p in 0..12 {
        for s in 0..6 {
            text.push_str(&format!(
                "Paragraph {p} sentence {s} talks about naïve café owners and 東京 tea 🍵 prices! "
            ));
        }
        text.push_str("\n\n");
    }
    text
}

fn tokenizer(fixture: &str) -> Tokenizer {
    let mut t = Tokenizer::from_file(fixture_dir(fixture).join("tokenizer.json")).unwrap();
    t.with_truncation(None).unwrap();
    t.with_padding(None);
    t
}

fn tokens(t: &Tokenizer, text: &str) -> usize {
    t.encode(text, false).unwrap().get_ids().len()
}

fn check(fixture: &str, chunks: &[Chunk], text: &str, max_tokens: usize) {
    let t = tokenizer(fixture);
    let chars: Vec<char> = text.chars().collect();
    for c in chunks {
        let span: String = chars[c.start_char - 1..c.end_char].iter().collect();
        assert_eq!(span, c.text, "{fixture}: chunk {} is not its span", c.seq);
        let n = tokens(&t, &c.text);
        assert!(
            n <= max_tokens,
            "{fixture}: chunk {} has {n} tokens > {max_tokens}",
            c.seq
        );
    }
    // Every token of the whole text lies inside some chunk.
    let whole = t.encode_char_offsets(text, false).unwrap();
    for &(s, e) in whole.get_offsets() {
        assert!(
            chunks
                .iter()
                .any(|c| c.start_char - 1 <= s && e <= c.end_char),
            "{fixture}: the token at chars {s}..{e} is in no chunk"
        );
    }
    let seqs: Vec<usize> = chunks.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=chunks.len()).collect::<Vec<_>>());
}

#[test]
fn chunks_fit_cover_and_overlap_on_every_tokenizer() {
    let text = long_text();
    for fixture in ["modular", "embed-bert", "embed-modernbert", "static"] {
        let chunker = Chunker::load(&fixture_dir(fixture)).unwrap();
        for (max_tokens, overlap) in [(80, 0), (80, 16), (7, 3)] {
            let chunks = chunker
                .chunk(&text, Some(max_tokens), overlap, GUARD)
                .unwrap();
            assert!(chunks.len() > 3, "{fixture}: {} chunks", chunks.len());
            check(fixture, &chunks, &text, max_tokens);
            for pair in chunks.windows(2) {
                if overlap == 0 {
                    assert!(
                        pair[1].start_char > pair[0].end_char,
                        "{fixture}: chunks overlap"
                    );
                } else {
                    assert!(
                        pair[1].start_char <= pair[0].end_char,
                        "{fixture}: no overlap"
                    );
                }
            }
        }
        // Sentences are 34-64 tokens here: a budget of 80 leaves room to end at one, and all
        // chunks but the last do.
        let chunks = chunker.chunk(&text, Some(80), 0, GUARD).unwrap();
        let at_sentence = chunks.iter().filter(|c| c.text.ends_with('!')).count();
        assert!(
            at_sentence + 1 >= chunks.len(),
            "{fixture}: {at_sentence} of {} end a sentence",
            chunks.len()
        );
    }
}

#[test]
fn the_default_budget_is_the_model_length_less_special_tokens_and_prompt() {
    // embed-bert: max_seq_length 128, [CLS] and [SEP], no default prompt.
    assert_eq!(
        Chunker::load(&fixture_dir("embed-bert"))
            .unwrap()
            .default_max_tokens,
        126
    );
    // embed-modernbert: model_max_length 96, [CLS] and [SEP], default prompt "search_document: ".
    let t = tokenizer("embed-modernbert");
    let prompt = tokens(&t, "search_document: ");
    assert!(prompt >= 3);
    let chunker = Chunker::load(&fixture_dir("embed-modernbert")).unwrap();
    assert_eq!(chunker.default_max_tokens, 96 - 2 - prompt);
    let text = long_text();
    let chunks = chunker.chunk(&text, None, 0, GUARD).unwrap();
    check("embed-modernbert", &chunks, &text, 96 - 2 - prompt);
    // StaticEmbedding states no length: 512 tokens a chunk.
    assert_eq!(
        Chunker::load(&fixture_dir("static"))
            .unwrap()
            .default_max_tokens,
        512
    );
}
