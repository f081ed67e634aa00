#!/usr/bin/env python3
"""Build ettin's test models and their reference scores.

Two tiny random-weight rerankers with real architectures, laid out exactly as Hub repos ship them:

* ``modular``: a sentence-transformers *modular* CrossEncoder like cross-encoder/ettin-reranker-*:
  ModernBertModel → Pooling(cls) → Dense(H→H, no bias, GELU) → LayerNorm → Dense(H→1), with a
  byte-level BPE tokenizer shaped like ModernBERT's (pair template ``[CLS] A [SEP] B [SEP]``,
  truncation 7999 baked in) and ``onnx/model.onnx`` = the backbone only (last_hidden_state).
* ``modular-long``: the same architecture with 4 layers (the last one global, as in every Ettin
  reranker) and the real models' 7999 positions; its reference.json holds a few pairs of up to
  ~9000 tokens scored at the model's own length ("default", 7999), 2048 and 512. Both modular
  fixtures carry the export tool's ``onnx/model_long.onnx`` (banded attention, CLS-only).
* ``classic``: BertForSequenceClassification (1 label) with a WordPiece tokenizer, ONNX with a
  ``logits`` output and a ``token_type_ids`` input, no modules.json (like ms-marco-MiniLM).
* ``classic-st6``: the same model after ``CrossEncoder(classic, max_length=128).save()`` under
  sentence-transformers 6: a modules.json with a lone Transformer module
  (transformer_task "sequence-classification"), the Sigmoid activation in
  config_sentence_transformers.json and the max length in tokenizer_config.json. Its reference
  "default" scores come from ``CrossEncoder(dir)`` as saved (max length 128), "64" as above.
  (``modular`` is itself what ``model.save()`` of sentence-transformers 6 writes.)
* ``static``: a random-weight StaticEmbedding SentenceTransformer (the layout of
  sentence-transformers/static-retrieval-mrl-en-v1, 32 dimensions instead of 1024 to stay small)
  with "query"/"document" prompts, as ``model.save()`` of sentence-transformers 6 writes it
  (module at the root); reference vectors from ``SentenceTransformer.encode`` for plain texts,
  each prompt name and ``truncate_dim=8``, including an empty text, a 3000-word text, CJK and emoji.
* ``embed-bert``: a random-weight transformer embedder in the Hub layout of
  sentence-transformers/all-MiniLM-L6-v2 (sentence-transformers ≤ 5 type paths, legacy pooling
  flags, max_seq_length 128 in sentence_bert_config.json): BertModel (token_type_ids) → mean
  Pooling → Normalize, a tokenizer.json with truncation 64 and fixed padding baked in (which
  sentence-transformers ignores), a "query: " prompt; ONNX backbone (last_hidden_state).
* ``embed-modernbert``: what ``model.save()`` of sentence-transformers 6 writes for
  ModernBertModel → Pooling(cls+mean, include_prompt false) → Dense(2H→16, tanh) → Normalize,
  max length 96 in tokenizer_config.json, prompts with ``default_prompt_name`` "document".
  Both embedders' reference vectors: ``encode()`` plain, per prompt name and ``truncate_dim=8``,
  on the static fixture's texts (so the 3000-word text is truncated).

The oracle is ``CrossEncoder.predict()`` from sentence-transformers 6: scores for a few hundred
(query, document) pairs are written to ``reference.json`` next to each model, at max_length 512
and 64. The models are small enough to commit, so tests need no torch.

Usage: tools/make_fixtures.py [--out tests/fixtures/models] [--seed 0] [--hidden 64] [--layers 3]
       [--only static,embed-bert,...]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import CrossEncoder
from sentence_transformers.base.modules import Dense, Transformer
from sentence_transformers.sentence_transformer.modules import LayerNorm, Pooling
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from export_model import Backbone, ClsBackbone, export_long, export_onnx, write_int8  # the same export the export tool does
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    ModernBertConfig,
    ModernBertModel,
    PreTrainedTokenizerFast,
)

CORPUS_FILES = sorted(Path("/usr/share/common-licenses").glob("*"))
# None: CrossEncoder(dir).predict() with the model's own max length (what ettin does by default).
MAX_LENGTHS = (None, 512, 64)


def corpus_sentences() -> list[str]:
    """English sentences from the license texts every Debian machine has."""
    text = " ".join(p.read_text(errors="ignore") for p in CORPUS_FILES if p.is_file())
    text = re.sub(r"\s+", " ", text)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text)]
    return [s for s in sentences if 20 <= len(s) <= 400]


def make_pairs(sentences: list[str], rng: random.Random, count: int) -> list[tuple[str, str]]:
    """Query/document pairs: short queries against passages of varied length, plus edge cases."""
    pairs = []
    for _ in range(count):
        words = rng.choice(sentences).split()
        start = rng.randrange(max(1, len(words) - 3))
        query = " ".join(words[start : start + rng.randint(2, 9)])
        n = rng.choice([1, 1, 2, 3, 4, 6, 10, 16])
        first = rng.randrange(len(sentences) - n)
        doc = " ".join(sentences[first : first + n])
        pairs.append((query, doc))
    long_doc = " ".join(sentences[100:260])  # thousands of tokens: far beyond max_length
    special = [
        ("", "An empty query still gets a score."),
        ("a", "x"),
        ("?", "."),
        ("free software license", long_doc),
        (long_doc[:3000], "a long query and a short document"),
        ("東京の天気はどうですか", "東京は今日晴れです。気温は二十度です。"),
        ("数据库中的重新排序", "PostgreSQL 扩展可以在数据库内部对搜索结果重新排序。"),
        ("🚀 rocket launch 🔥", "The rocket 🚀 launched at dawn 🌅 and the crowd cheered 🎉."),
        ("café naïve résumé", "Ünïcödé àccents and ligatures: ﬁ ﬂ, Ελληνικά, русский текст."),
        ("  leading and trailing spaces  ", "\ttabs\tand\nnewlines\n in the document "),
        ("[CLS] [SEP] special tokens", "[PAD] [MASK] text that looks like special tokens [SEP]"),
        ("copyright notice", "copyright notice"),
    ]
    return pairs + special


def train_bpe_tokenizer(sentences: list[str], out: Path) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer shaped like ModernBERT's (GPT-NeoX style)."""
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1500, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(sentences, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.enable_truncation(7999)  # baked in, as in ModernBERT's tokenizer.json; ettin must override it
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        unk_token="[UNK]",
        model_max_length=7999,
    )
    fast.save_pretrained(out)
    return fast


def train_wordpiece_tokenizer(sentences: list[str], out: Path) -> PreTrainedTokenizerFast:
    """A BERT-style uncased WordPiece tokenizer with segment ids 0/1 for the pair."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(sentences, trainers.WordPieceTrainer(vocab_size=1500, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        unk_token="[UNK]",
        model_max_length=512,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    fast.save_pretrained(out)
    return fast


def predict(model_dir: Path, pairs, max_length: int | None) -> list[float]:
    """CrossEncoder.predict at max_length, or (None) at the max length the model was saved with."""
    model = CrossEncoder(str(model_dir), max_length=max_length, device="cpu")
    return [float(s) for s in model.predict(pairs, batch_size=32)]


def build_modular(
    out: Path, sentences, pairs, rankings, seed: int, hidden: int, layers: int, init_std: float, heads: int = 4, reference: bool = True,
    max_positions: int = 1024,
) -> None:
    torch.manual_seed(seed)
    work = out.parent / (out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    tokenizer = train_bpe_tokenizer(sentences, work / "tok")
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 3 // 2,
        max_position_embeddings=max_positions,
        global_attn_every_n_layers=3,
        local_attention=128,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        initializer_range=init_std,
        attn_implementation="eager",
    )
    backbone = ModernBertModel(config)
    backbone.save_pretrained(work / "tok")
    transformer = Transformer(str(work / "tok"), transformer_task="feature-extraction")
    dense = Dense(hidden, hidden, bias=False, activation_function=torch.nn.GELU())
    norm = LayerNorm(hidden)
    score = Dense(hidden, 1, bias=True, activation_function=torch.nn.Identity(), module_output_name="scores")
    with torch.no_grad():
        for layer in (dense.linear, score.linear):
            layer.weight.normal_(0.0, 1.0 / hidden**0.5)
        score.linear.weight.mul_(3.0)
        score.linear.bias.fill_(0.5)
        norm.norm.weight.uniform_(0.5, 1.5)
        norm.norm.bias.normal_(0.0, 0.1)
    model = CrossEncoder(
        modules=[transformer, Pooling(hidden, pooling_mode="cls"), dense, norm, score],
        activation_fn=torch.nn.Identity(),
        device="cpu",
    )
    shutil.rmtree(out, ignore_errors=True)
    model.save(str(out))
    (out / "README.md").unlink(missing_ok=True)  # a generated model card; nothing ettin reads
    export_onnx(Backbone(backbone, False), tokenizer, "last_hidden_state", out / "onnx" / "model.onnx", False)
    # The export tool's faster graph (last layer for the CLS position only), selected with ettin.onnx_file.
    export_onnx(ClsBackbone(backbone), tokenizer, "cls_hidden_state", out / "onnx" / "model_cls.onnx", False)
    # Its full-range int8 variant (metadata ettin.int8_weights = full-range): ettin loads it only
    # on CPUs with VNNI/AMX.
    write_int8(out / "onnx" / "model_cls.onnx", out / "onnx" / "model_cls_int8_vnni.onnx", full_range=True)
    # The long graph (banded attention, CLS-only): ettin.onnx_file = 'onnx/model_long.onnx'.
    export_long(backbone.eval(), out / "onnx" / "model_long.onnx")
    shutil.rmtree(work)
    if reference:
        write_reference(out, pairs, rankings)


def build_modular_long(out: Path, sentences, seed: int, hidden: int, init_std: float) -> None:
    """4 layers (local, local between two global ones), 7999 positions; pairs of up to ~9000
    tokens (cut at the model's 7999 by default), scored at the model's length, 2048 and 512."""
    build_modular(out, sentences, [], [], seed, hidden, 4, init_std, reference=False, max_positions=7999)
    rng = random.Random(seed + 1)
    pairs = []
    for words in (40, 300, 1500, 2800, 4500, 7000):
        start = rng.randrange(len(sentences))
        doc, i = [], start
        while sum(len(s.split()) for s in doc) < words:
            doc.append(sentences[i % len(sentences)])
            i += 1
        query = " ".join(rng.choice(sentences).split()[:6])
        pairs.append((query, " ".join(doc)))
    write_reference(out, pairs, [], max_lengths=(None, 2048, 512))
    for unused in ("model_cls.onnx", "model_cls_int8_vnni.onnx"):  # the other fixture tests these
        (out / "onnx" / unused).unlink()


def build_classic(out: Path, sentences, pairs, rankings, seed: int, hidden: int, layers: int, init_std: float) -> None:
    torch.manual_seed(seed)
    shutil.rmtree(out, ignore_errors=True)
    tokenizer = train_wordpiece_tokenizer(sentences, out)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
        num_labels=1,
        initializer_range=init_std,
        pad_token_id=tokenizer.pad_token_id,
        attn_implementation="eager",
    )
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(8.0)  # spread the logits over several units so rankings mean something
    model.save_pretrained(out)
    export_onnx(Backbone(model, True), tokenizer, "logits", out / "onnx" / "model.onnx", True)
    write_reference(out, pairs, rankings)


def build_classic_st6(out: Path, classic: Path, pairs, rankings, saved_max_length: int = 128) -> None:
    """The classic model as sentence-transformers 6's CrossEncoder.save() writes it."""
    shutil.rmtree(out, ignore_errors=True)
    CrossEncoder(str(classic), max_length=saved_max_length, device="cpu").save(str(out))
    (out / "README.md").unlink(missing_ok=True)  # a generated model card; nothing ettin reads
    (out / "onnx").mkdir()
    shutil.copy(classic / "onnx" / "model.onnx", out / "onnx" / "model.onnx")  # same weights
    write_reference(out, pairs, rankings, max_lengths=(None, 64))


def build_static(out: Path, sentences, seed: int, dim: int = 32) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    torch.manual_seed(seed)
    work = out.parent / (out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    tokenizer = train_wordpiece_tokenizer(sentences, work)
    static = StaticEmbedding(tokenizer._tokenizer, embedding_dim=dim)
    model = SentenceTransformer(modules=[static], prompts={"query": "query: ", "document": "passage: "}, device="cpu")
    shutil.rmtree(out, ignore_errors=True)
    model.save(str(out))
    (out / "README.md").unlink(missing_ok=True)
    shutil.rmtree(work)
    texts = embedding_texts(sentences)
    encode = lambda **kw: [[float(x) for x in v] for v in model.encode(texts, batch_size=16, **kw)]  # noqa: E731
    ref = {
        "oracle": "sentence_transformers.SentenceTransformer.encode (6.x), float32",
        "texts": texts,
        "vectors": {"plain": encode(), "query": encode(prompt_name="query"), "document": encode(prompt_name="document"),
                    "truncate_dim_8": encode(truncate_dim=8)},
    }
    (out / "reference.json").write_text(json.dumps(ref, ensure_ascii=False, indent=0))
    print(f"{out.name}: {len(texts)} texts × {dim} dimensions")


def embedding_texts(sentences) -> list[str]:
    return sentences[:40] + [
        "", "   ", "[SEP] literal special tokens [PAD]", " ".join(sentences[100:400])[:20000],
        "日本語のテキストと中文文本", "emoji 🚀🔥 and accents: café naïve", "UPPER case Text",
    ]


def write_embedding_reference(out: Path, texts) -> None:
    """encode() of the directory as saved, loaded back the way a user loads it."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(out), device="cpu")
    encode = lambda **kw: [[float(x) for x in v] for v in model.encode(texts, batch_size=16, **kw)]  # noqa: E731
    ref = {
        "oracle": "sentence_transformers.SentenceTransformer.encode (6.x), float32",
        "max_seq_length": model.max_seq_length,
        "texts": texts,
        "vectors": {"plain": encode(), "query": encode(prompt_name="query"), "document": encode(prompt_name="document"),
                    "truncate_dim_8": encode(truncate_dim=8)},
    }
    (out / "reference.json").write_text(json.dumps(ref, ensure_ascii=False, indent=0))
    print(f"{out.name}: {len(texts)} texts × {len(ref['vectors']['plain'][0])} dimensions, max_seq_length {model.max_seq_length}")


def build_embed_bert(out: Path, sentences, seed: int, hidden: int = 32, layers: int = 2) -> None:
    """all-MiniLM-L6-v2's Hub layout (sentence-transformers ≤ 5 files), random BERT weights."""
    from transformers import BertModel

    torch.manual_seed(seed)
    shutil.rmtree(out, ignore_errors=True)
    tokenizer = train_wordpiece_tokenizer(sentences, out)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=hidden * 2, max_position_embeddings=512, initializer_range=0.2,
        pad_token_id=tokenizer.pad_token_id, attn_implementation="eager",
    )
    bert = BertModel(config, add_pooling_layer=False).eval()
    bert.save_pretrained(out)
    export_onnx(Backbone(bert, True), tokenizer, "last_hidden_state", out / "onnx" / "model.onnx", True)
    # MiniLM's tokenizer.json carries truncation 128 and fixed padding; ours 64, to prove they are ignored.
    tok = json.loads((out / "tokenizer.json").read_text())
    tok["truncation"] = {"direction": "Right", "max_length": 64, "strategy": "LongestFirst", "stride": 0}
    tok["padding"] = {"strategy": {"Fixed": 64}, "direction": "Right", "pad_to_multiple_of": None,
                      "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}
    (out / "tokenizer.json").write_text(json.dumps(tok))
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}))
    # No 2_Normalize folder: the module has no files, and the Hub's all-MiniLM-L6-v2 has none either.
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (out / "config_sentence_transformers.json").write_text(json.dumps({
        "__version__": {"sentence_transformers": "2.0.0"}, "prompts": {"query": "query: "}, "default_prompt_name": None}))
    write_embedding_reference(out, embedding_texts(sentences))


def build_embed_modernbert(out: Path, sentences, seed: int, hidden: int = 32, layers: int = 2) -> None:
    """model.save() of sentence-transformers 6: a ModernBERT embedder with every option ettin reads."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize

    torch.manual_seed(seed + 1)
    work = out.parent / (out.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    tokenizer = train_bpe_tokenizer(sentences, work / "tok")
    config = ModernBertConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=hidden * 3 // 2, max_position_embeddings=1024, global_attn_every_n_layers=3,
        local_attention=128, pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, initializer_range=0.2, attn_implementation="eager",
    )
    backbone = ModernBertModel(config).eval()
    backbone.save_pretrained(work / "tok")
    transformer = Transformer(str(work / "tok"), transformer_task="feature-extraction", max_seq_length=96)
    pooling = Pooling(hidden, pooling_mode=("cls", "mean"), include_prompt=False)
    dense = Dense(2 * hidden, 16, bias=True, activation_function=torch.nn.Tanh())
    model = SentenceTransformer(
        modules=[transformer, pooling, dense, Normalize()],
        prompts={"query": "search_query: ", "document": "search_document: "},
        default_prompt_name="document",
        device="cpu",
    )
    shutil.rmtree(out, ignore_errors=True)
    model.save(str(out))
    (out / "README.md").unlink(missing_ok=True)
    export_onnx(Backbone(backbone, False), tokenizer, "last_hidden_state", out / "onnx" / "model.onnx", False)
    shutil.rmtree(work)
    write_embedding_reference(out, embedding_texts(sentences))


def make_rankings(pairs, rng: random.Random, queries: int = 4, documents: int = 40):
    """A few queries, each against many documents: what ettin_rerank and rerank_score(q, docs[]) get."""
    docs = [d for _, d in pairs]
    return [(pairs[rng.randrange(len(pairs))][0], rng.sample(docs, documents)) for _ in range(queries)]


def write_reference(model_dir: Path, pairs, rankings, max_lengths=MAX_LENGTHS) -> None:
    """Reference scores keyed by max_length ("default": the max length the model was saved with)."""
    key = lambda m: "default" if m is None else str(m)  # noqa: E731
    scores = {key(m): predict(model_dir, pairs, m) for m in max_lengths}
    ranking_scores = [
        {"query": q, "documents": docs, "scores": {key(m): predict(model_dir, [(q, d) for d in docs], m) for m in max_lengths}}
        for q, docs in rankings
    ]
    ref = {
        "oracle": "sentence_transformers.CrossEncoder.predict(batch_size=32), default activation",
        "pairs": [list(p) for p in pairs],
        "scores": scores,
        "rankings": ranking_scores,
    }
    (model_dir / "reference.json").write_text(json.dumps(ref, ensure_ascii=False, indent=0))
    for m, s in scores.items():
        print(f"{model_dir.name} max_length={m}: std {np.std(s):.3f}, range {min(s):.3f}..{max(s):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures/models"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--init-std", type=float, default=0.2)
    ap.add_argument("--only", default="", help="comma-separated fixture names to rebuild (default: all)")
    ap.add_argument("--references-only", action="store_true",
                    help="keep the models; recompute the cross-encoders' reference scores for their pairs and rankings")
    args = ap.parse_args()
    wanted = lambda name: not args.only or name in args.only.split(",")  # noqa: E731
    if args.references_only:
        for name, lengths in (("modular", MAX_LENGTHS), ("classic", MAX_LENGTHS), ("classic-st6", (None, 64))):
            if wanted(name):
                ref = json.loads((args.out / name / "reference.json").read_text())
                rankings = [(r["query"], r["documents"]) for r in ref["rankings"]]
                write_reference(args.out / name, [tuple(p) for p in ref["pairs"]], rankings, lengths)
        return
    sentences = corpus_sentences()
    rng = random.Random(args.seed)
    pairs = make_pairs(sentences, rng, args.pairs)
    rankings = make_rankings(pairs, rng)
    if wanted("modular"):
        build_modular(args.out / "modular", sentences, pairs, rankings, args.seed, args.hidden, args.layers, args.init_std)
    if wanted("modular-long"):
        build_modular_long(args.out / "modular-long", sentences, args.seed, args.hidden, args.init_std)
    if wanted("classic"):
        build_classic(args.out / "classic", sentences, pairs, rankings, args.seed, args.hidden, args.layers - 1, args.init_std)
    if wanted("classic-st6"):
        build_classic_st6(args.out / "classic-st6", args.out / "classic", pairs, rankings)
    if wanted("static"):
        build_static(args.out / "static", sentences, args.seed)
    if wanted("embed-bert"):
        build_embed_bert(args.out / "embed-bert", sentences, args.seed)
    if wanted("embed-modernbert"):
        build_embed_modernbert(args.out / "embed-modernbert", sentences, args.seed)


if __name__ == "__main__":
    main()
