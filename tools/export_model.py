#!/usr/bin/env python3
"""Turn a sentence-transformers CrossEncoder (or, with --embedder, a SentenceTransformer
embedder) into a directory ettin loads, and check it.

  tools/export_model.py SOURCE OUT [--fp16] [--int8] [--max-length 512]
  tools/export_model.py --embedder SOURCE OUT [--int8]

--embedder: the model is saved as sentence-transformers 6 saves it (Pooling, Dense, Normalize
configs and weights) and its Transformer alone is exported to onnx/model.onnx (input_ids,
attention_mask[, token_type_ids] → last_hidden_state); the tool checks ONNX Runtime's
last_hidden_state against torch's on sample texts (max |diff| ≤ 1e-4) and reports int8 variants.

SOURCE is a local model directory or a Hub id (the Hub is only contacted for an id). Both layouts:

* modular (modules.json: Transformer → Pooling → Dense/LayerNorm … → 1 logit, all Ettin rerankers):
  the model is saved as sentence-transformers saves it (head weights in each module's
  model.safetensors) and the backbone alone is exported to onnx/model.onnx
  (input_ids, attention_mask → last_hidden_state), exactly the Hub's layout.
* classic (one sequence-classification model, e.g. ms-marco-MiniLM): transformers' files plus
  onnx/model.onnx with a `logits` output (token_type_ids only if the model takes them).

For a ModernBERT backbone with CLS pooling (every Ettin reranker) it also writes
onnx/model_cls.onnx: the same function, with the last layer computed for the CLS position only and
a `cls_hidden_state` [batch, hidden] output (select it with SET ettin.onnx_file =
'onnx/model_cls.onnx'), and onnx/model_long.onnx: CLS-only too, with banded attention in the
local layers and mask-free, one-head-at-a-time attention in the global ones (tools/
long_attention.py): O(n) memory where the others need O(n²), for documents up to the model's 8K
tokens (SET ettin.onnx_file = 'onnx/model_long.onnx'). --fp16 adds model_fp16.onnx; --int8 adds
two dynamic-int8 variants (per-channel weights, opt-in), each also for the CLS-only and long
graphs (model_cls_int8.onnx ...):

* model_int8.onnx: 7-bit weights (reduce_range), correct on every x86 CPU. Without VNNI (AVX2
  only) it is the one to use: full-range weights saturate the u8×s8 kernels there.
* model_int8_vnni.onnx: full-range 8-bit weights, for CPUs with AVX512-VNNI, AVX-VNNI or AMX
  (ettin_info()->'cpu' says), where they are as fast and rank closer to fp32. ettin refuses it
  on a CPU without them (ERROR 0A000) instead of returning saturated scores; the file says what
  it is in its metadata (ettin.int8_weights).

Before finishing, the tool scores sample pairs the way ettin does (tokenizer.json, ONNX Runtime,
the head in numpy) and compares with CrossEncoder.predict(): the fp32 exports (model.onnx,
model_cls.onnx, model_long.onnx) must agree within 1e-3 × σ of the scores, or the tool exits
non-zero. fp16/int8 variants are reported (max difference, Spearman), not gated.
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from safetensors.numpy import load_file
from scipy.stats import spearmanr
from sentence_transformers import CrossEncoder
from tokenizers import Tokenizer

SAMPLE_PAIRS = [
    ("what is a cross-encoder", "A cross-encoder reads the query and the document together and outputs a score."),
    ("what is a cross-encoder", "Postgres is a relational database."),
    ("free software license", "The GNU General Public License is a free, copyleft license for software."),
    ("free software license", "Bananas are rich in potassium."),
    ("", "an empty query"),
    ("a", "x"),
    ("東京の天気", "東京は晴れです。"),
    ("rocket 🚀", "The rocket launched at dawn 🌅."),
    ("long document", "word " * 2000),
]


def is_modular(model: CrossEncoder) -> bool:
    return len(model) > 1


class Backbone(torch.nn.Module):
    def __init__(self, hf_model, takes_token_types: bool):
        super().__init__()
        self.m = hf_model
        self.takes_token_types = takes_token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.takes_token_types:
            kwargs["token_type_ids"] = token_type_ids
        out = self.m(**kwargs)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state


class ClsBackbone(torch.nn.Module):
    """ModernBERT backbone for a CLS-pooling head, computing the same CLS vector with less work:
    the last layer's attention, output projection and MLP only run for position 0 (its keys and
    values still come from every position), and only that row is layer-normed and returned as
    `cls_hidden_state` [batch, hidden]. Everything else is the model's own modules."""

    def __init__(self, hf_model):
        super().__init__()
        self.m = hf_model

    def forward(self, input_ids, attention_mask):
        from transformers.masking_utils import create_bidirectional_mask, create_bidirectional_sliding_window_mask
        from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

        m = self.m
        config = m.config
        position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        hidden = m.embeddings(input_ids=input_ids)
        mask_kwargs = {"config": config, "inputs_embeds": hidden, "attention_mask": attention_mask}
        masks = {
            "full_attention": create_bidirectional_mask(**mask_kwargs),
            "sliding_attention": create_bidirectional_sliding_window_mask(**mask_kwargs),
        }
        rope = {t: m.rotary_emb(hidden, position_ids, t) for t in set(config.layer_types)}
        for layer in m.layers[:-1]:
            hidden = layer(hidden, attention_mask=masks[layer.attention_type], position_embeddings=rope[layer.attention_type])
        last = m.layers[-1]
        attn = last.attn
        heads, head_dim = config.num_attention_heads, attn.head_dim
        width = heads * head_dim
        x = last.attn_norm(hidden)
        w = attn.Wqkv.weight
        b = attn.Wqkv.bias
        batch, seq = x.shape[0], x.shape[1]
        # Query for position 0 only; keys and values for all positions.
        q = torch.nn.functional.linear(x[:, :1], w[:width], None if b is None else b[:width])
        kv = torch.nn.functional.linear(x, w[width:], None if b is None else b[width:])
        q = q.view(batch, 1, heads, head_dim).transpose(1, 2)
        k, v = kv.view(batch, seq, 2, heads, head_dim).unbind(dim=2)
        k, v = k.transpose(1, 2), v.transpose(1, 2)
        cos, sin = rope[last.attention_type]
        q, _ = apply_rotary_pos_emb(q, q, cos[:, :1], sin[:, :1], unsqueeze_dim=1)
        _, k = apply_rotary_pos_emb(k, k, cos, sin, unsqueeze_dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) * head_dim**-0.5
        mask = masks[last.attention_type]
        if mask is not None:
            row = mask[:, :, :1, :]
            scores = scores.masked_fill(~row, torch.finfo(scores.dtype).min) if row.dtype == torch.bool else scores + row
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(batch, 1, width)
        cls = hidden[:, :1] + attn.Wo(out)
        cls = cls + last.mlp(last.mlp_norm(cls))
        return m.final_norm(cls)[:, 0]


def supports_cls_only(model: CrossEncoder) -> bool:
    """The CLS-only graph fits ModernBERT backbones whose head pools the CLS token."""
    if not is_modular(model) or model[0].auto_model.config.model_type != "modernbert":
        return False
    pooling = model[1]
    return getattr(pooling, "pooling_mode", None) == "cls" or getattr(pooling, "pooling_mode_cls_token", False)


def export_onnx(module: torch.nn.Module, tokenizer, output_name: str, path: Path, takes_token_types: bool) -> None:
    example = tokenizer([("a query", "a document")], return_tensors="pt")
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if takes_token_types else [])
    axes = {n: {0: "batch_size", 1: "sequence_length"} for n in names}
    axes[output_name] = {0: "batch_size"} if output_name in ("logits", "cls_hidden_state") else {0: "batch_size", 1: "sequence_length"}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module.eval(),
        tuple(example[n] for n in names),
        str(path),
        input_names=names,
        output_names=[output_name],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )


def export_long(hf_model, path: Path) -> None:
    """The long graph (tools/long_attention.py), with the metadata ettin reads: pad batches to a
    multiple of 64 tokens; no head's n × n scores held at once (attention memory grows with n,
    not n², for the memory estimate)."""
    from long_attention import BLOCK, LongClsBackbone

    ids = torch.randint(5, 100, (2, 2 * BLOCK))
    mask = torch.ones_like(ids)
    mask[1, BLOCK + 7 :] = 0
    axes = {n: {0: "batch_size", 1: "sequence_length"} for n in ("input_ids", "attention_mask")}
    axes["cls_hidden_state"] = {0: "batch_size"}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        LongClsBackbone(hf_model).eval(), (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
        output_names=["cls_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False,
        custom_opsets={"com.microsoft": 1},
    )
    set_metadata(path, {"ettin.pad_multiple": str(BLOCK), "ettin.attention_heads_at_once": "0"})


def set_metadata(path: Path, props: dict) -> None:
    """Add ONNX metadata_props to the file, keeping those it has."""
    import onnx

    model = onnx.load(str(path))
    merged = {p.key: p.value for p in model.metadata_props} | props
    onnx.helper.set_model_props(model, merged)
    onnx.save(model, str(path))


def pad_multiple(session: ort.InferenceSession) -> int:
    return int(session.get_modelmeta().custom_metadata_map.get("ettin.pad_multiple", "1"))


def takes_token_type_ids(hf_model) -> bool:
    # inspect.signature follows the decorators transformers wraps forward() in.
    takes = "token_type_ids" in inspect.signature(hf_model.forward).parameters
    return takes and getattr(hf_model.config, "type_vocab_size", 0) > 1


def export(source: str, out: Path) -> CrossEncoder:
    model = CrossEncoder(source, device="cpu")
    transformer = model[0]
    hf_model = transformer.auto_model
    tokenizer = transformer.tokenizer
    token_types = takes_token_type_ids(hf_model)
    shutil.rmtree(out, ignore_errors=True)
    if is_modular(model):
        model.save(str(out))
        export_onnx(Backbone(hf_model, token_types), tokenizer, "last_hidden_state", out / "onnx" / "model.onnx", token_types)
        if supports_cls_only(model):
            export_onnx(ClsBackbone(hf_model.eval()), tokenizer, "cls_hidden_state", out / "onnx" / "model_cls.onnx", False)
            export_long(hf_model.eval(), out / "onnx" / "model_long.onnx")
    else:
        if getattr(hf_model.config, "num_labels", 1) != 1:
            sys.exit(f"{source}: {hf_model.config.num_labels} labels; ettin scores single-logit rerankers")
        hf_model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        activation = model.activation_fn
        name = f"{type(activation).__module__}.{type(activation).__name__}"
        (out / "config_sentence_transformers.json").write_text(json.dumps({"activation_fn": name}, indent=2))
        export_onnx(Backbone(hf_model, token_types), tokenizer, "logits", out / "onnx" / "model.onnx", token_types)
    (out / "README.md").unlink(missing_ok=True)
    return model


def head_layers(out: Path):
    """The head as ettin applies it: (kind, weights) per module after the backbone."""
    modules = json.loads((out / "modules.json").read_text())
    layers = []
    for m in modules[1:]:
        kind = m["type"].rsplit(".", 1)[-1]
        cfg = json.loads((out / m["path"] / "config.json").read_text())
        weights = load_file(out / m["path"] / "model.safetensors") if (out / m["path"] / "model.safetensors").exists() else {}
        layers.append((kind, cfg, weights))
    return layers


def apply_activation(name: str, x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    last = name.rsplit(".", 1)[-1]
    return {
        "Identity": lambda v: v,
        "Tanh": np.tanh,
        "Sigmoid": lambda v: 1 / (1 + np.exp(-v)),
        "ReLU": lambda v: np.maximum(v, 0),
        "GELU": lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))),
    }[last](x)


def ettin_scores(out: Path, onnx_file: str, pairs, max_length: int, model: CrossEncoder) -> np.ndarray:
    """Score pairs the way ettin does: tokenizer.json with our own truncation, ORT, numpy head."""
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length, strategy="longest_first")
    session = ort.InferenceSession(str(out / "onnx" / onnx_file), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    scores = []
    multiple = pad_multiple(session)
    pad_id = tok.token_to_id("[PAD]") or 0
    for q, d in pairs:
        enc = tok.encode(q, d)
        n = len(enc.ids)
        padded = -(-n // multiple) * multiple  # ettin pads to the graph's multiple, mask 0
        feed = {"input_ids": np.array([enc.ids + [pad_id] * (padded - n)], dtype=np.int64),
                "attention_mask": np.array([[1] * n + [0] * (padded - n)], dtype=np.int64)}
        if "token_type_ids" in inputs:
            feed["token_type_ids"] = np.array([enc.type_ids], dtype=np.int64)
        (y,) = session.run(None, feed)
        cls_only = session.get_outputs()[0].name == "cls_hidden_state"
        if (out / "modules.json").exists():
            x = None
            for kind, cfg, w in head_layers(out):
                if kind == "Pooling":
                    mode = cfg.get("pooling_mode", "cls" if cfg.get("pooling_mode_cls_token") else "mean")
                    x = y[0] if cls_only else (y[0, 0] if mode == "cls" else y[0].mean(axis=0))
                elif kind == "Dense":
                    x = x @ w["linear.weight"].T + (w["linear.bias"] if "linear.bias" in w else 0)
                    x = apply_activation(cfg.get("activation_function", "torch.nn.modules.activation.Tanh"), x)
                elif kind == "LayerNorm":
                    x = (x - x.mean()) / np.sqrt(x.var() + 1e-5) * w["norm.weight"] + w["norm.bias"]
            logit = float(x[0])
        else:
            logit = float(y[0, 0])
        scores.append(logit)
    activation = model.activation_fn
    return apply_activation(f"{type(activation).__name__}", np.array(scores))


def write_fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dst))


def write_int8(src: Path, dst: Path, full_range: bool = False) -> None:
    """Dynamic int8 (per-channel weights). 7-bit weights by default (reduce_range): x86 int8
    kernels without VNNI multiply u8 activations by s8 weights with 16-bit saturating adds, which
    full-range weights overflow (AVX2 EPYC, per-query Spearman vs fp32: 0.89 → 0.99 for 17m,
    0.42 → 0.77 for 150m, random weights). With VNNI/AMX, full range is exact and as fast; the
    file records which it is (metadata ettin.int8_weights), and ettin checks it against the CPU."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), per_channel=True, reduce_range=not full_range, weight_type=QuantType.QInt8)
    # The source's own metadata (the long graph's padding) carries over.
    source = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    set_metadata(dst, source | {"ettin.int8_weights": "full-range" if full_range else "7-bit"})


SAMPLE_TEXTS = [text for pair in SAMPLE_PAIRS for text in pair]


def export_embedder_onnx(model, path: Path) -> None:
    """The Transformer module of a SentenceTransformer as a last_hidden_state graph."""
    hf_model = model[0].auto_model.eval()
    token_types = takes_token_type_ids(hf_model)
    export_onnx(Backbone(hf_model, token_types), model[0].tokenizer, "last_hidden_state", path, token_types)


def check_embedder_onnx(model, path: Path) -> float:
    """Largest |difference| between ONNX Runtime's and torch's hidden states on SAMPLE_TEXTS
    (real positions only), at the model's max_seq_length."""
    hf_model = model[0].auto_model.eval()
    tokenizer = model[0].tokenizer
    feats = tokenizer(SAMPLE_TEXTS, padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="pt")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    with torch.no_grad():
        expected = hf_model(**{n: feats[n] for n in names}).last_hidden_state.numpy()
    got = session.run(["last_hidden_state"], {n: feats[n].numpy() for n in names})[0]
    mask = feats["attention_mask"].numpy().astype(bool)
    return float(np.max(np.abs(got[mask] - expected[mask])))


def main_embedder(args) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.source, device="cpu")
    shutil.rmtree(args.out, ignore_errors=True)
    model.save(str(args.out))
    (args.out / "README.md").unlink(missing_ok=True)
    onnx_path = args.out / "onnx" / "model.onnx"
    export_embedder_onnx(model, onnx_path)
    if args.int8:
        write_int8(onnx_path, onnx_path.with_name("model_int8.onnx"))
        write_int8(onnx_path, onnx_path.with_name("model_int8_vnni.onnx"), full_range=True)
    for graph in sorted((args.out / "onnx").glob("*.onnx")):
        diff = check_embedder_onnx(model, graph)
        verdict = "ok" if diff <= 1e-4 else ("FAIL" if graph.name == "model.onnx" else "variant")
        print(f"{graph.name}: last_hidden_state max |diff| {diff:.2e} vs torch: {verdict}")
        if verdict == "FAIL":
            sys.exit("the fp32 export does not reproduce the model's hidden states; not usable")
    print(f"{args.out}: ready for ettin_embed (embedding layout, {model.get_embedding_dimension()} dimensions)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("out", type=Path)
    ap.add_argument("--embedder", action="store_true", help="a SentenceTransformer embedder, not a CrossEncoder")
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--max-length", type=int, default=512)
    args = ap.parse_args()
    if args.embedder:
        return main_embedder(args)

    model = export(args.source, args.out)
    onnx_dir = args.out / "onnx"
    bases = [b for b in ("model", "model_cls", "model_long") if (onnx_dir / f"{b}.onnx").exists()]
    for base in bases:
        if args.fp16:
            write_fp16(onnx_dir / f"{base}.onnx", onnx_dir / f"{base}_fp16.onnx")
        if args.int8:
            write_int8(onnx_dir / f"{base}.onnx", onnx_dir / f"{base}_int8.onnx")
            write_int8(onnx_dir / f"{base}.onnx", onnx_dir / f"{base}_int8_vnni.onnx", full_range=True)

    reference = CrossEncoder(args.source, device="cpu", max_length=args.max_length)
    expected = np.array(reference.predict(SAMPLE_PAIRS, batch_size=32), dtype=np.float64)
    sigma = float(np.std(expected)) or 1.0
    ok = True
    for onnx_file in [f"{b}{v}.onnx" for b in bases for v in ("", "_fp16", "_int8", "_int8_vnni")]:
        if not (onnx_dir / onnx_file).exists():
            continue
        got = ettin_scores(args.out, onnx_file, SAMPLE_PAIRS, args.max_length, model)
        diff = float(np.max(np.abs(got - expected)))
        rho = spearmanr(got, expected).statistic
        verdict = "ok" if diff <= 1e-3 * sigma else ("FAIL" if onnx_file in ("model.onnx", "model_cls.onnx", "model_long.onnx") else "variant")
        print(f"{onnx_file}: max |diff| {diff:.2e} (limit {1e-3 * sigma:.2e}), Spearman {rho:.4f}: {verdict}")
        ok &= verdict != "FAIL"
    if not ok:
        sys.exit("the fp32 export does not reproduce CrossEncoder.predict(); not usable")
    print(f"{args.out}: ready for ettin ({'modular' if is_modular(model) else 'classic'} layout)")


if __name__ == "__main__":
    main()
