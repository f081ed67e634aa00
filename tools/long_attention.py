"""A ModernBERT backbone whose attention costs what the model needs, for long inputs
(`onnx/model_long.onnx`, written by tools/export_model.py for every ModernBERT reranker with CLS
pooling, i.e. every Ettin reranker).

ModernBERT's local layers (two in three) attend only to keys within 64 positions
(`|i - j| <= config.sliding_window`), but the plain export computes them as a full n × n score
tensor with a dense n × n mask, like its global layers. Here:

* local layers are banded: the sequence is cut into blocks of 64 queries, and each block attends
  to its own and the two neighbouring key blocks (192 keys) with a constant 64 × 192 band mask:
  O(n × 192) instead of O(n²) time and memory;
* global layers attend to every key, one head at a time, with a key-padding bias of shape
  [batch, 1, n]: no dense mask, and at most one head's n × n scores alive at once;
* the last layer runs for the CLS position only (as model_cls.onnx): `cls_hidden_state`.

The graph needs the sequence padded to a multiple of 64 (right padding, attention_mask 0): its
metadata `ettin.pad_multiple` says so, and ettin pads batches to it. Weights and every other
computation are the model's own modules, so scores match `CrossEncoder.predict()`.
"""

from __future__ import annotations

import torch

BLOCK = 64
# A masked score: finite (adding two stays finite), so rows whose keys are all padding stay
# finite too instead of turning into NaN that would reach real rows through 0 × NaN.
MASKED = -1e9


def band_bias(window: int) -> torch.Tensor:
    """[BLOCK, 3·BLOCK]: 0 where query a (of a block) may see key c of its three-block window."""
    a = torch.arange(BLOCK)[:, None]
    c = torch.arange(3 * BLOCK)[None, :]
    distance = c - BLOCK - a
    return torch.where(distance.abs() <= window, 0.0, MASKED)


def neighbour_blocks(x: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """x: [..., BLOCK + n + BLOCK, d] (padded by a block on each side) → [..., blocks, 3·BLOCK, d]:
    for each block of n, the previous, own and next block of x."""
    n = blocks * BLOCK
    lead = x.shape[:-2]
    parts = [x[..., i * BLOCK : i * BLOCK + n, :].reshape(*lead, blocks, BLOCK, x.shape[-1]) for i in range(3)]
    return torch.cat(parts, dim=-2)


def local_attention(q, k, v, key_bias, window: int, scale: float):
    """q, k, v: [b, h, n, d] with n a multiple of BLOCK; key_bias: [b, 1, n] (0 or MASKED)."""
    b, h, n, d = q.shape
    blocks = n // BLOCK
    pad = (0, 0, BLOCK, BLOCK)
    kb = neighbour_blocks(torch.nn.functional.pad(k, pad), blocks)  # [b, h, blocks, 3B, d]
    vb = neighbour_blocks(torch.nn.functional.pad(v, pad), blocks)
    bias = torch.nn.functional.pad(key_bias, (BLOCK, BLOCK), value=MASKED).unsqueeze(-1)  # [b, 1, n+2B, 1]
    bias = neighbour_blocks(bias, blocks).squeeze(-1).unsqueeze(-2)  # [b, 1, blocks, 1, 3B]
    qb = q.reshape(b, h, blocks, BLOCK, d)
    scores = torch.matmul(qb, kb.transpose(-1, -2)) * scale + band_bias(window) + bias
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(probs, vb).reshape(b, h, n, d)


def global_attention(q, k, v, key_bias, scale: float):
    """Every key, one head at a time; key_bias [b, 1, n] broadcasts over the queries."""
    heads = []
    for i in range(q.shape[1]):
        scores = torch.matmul(q[:, i], k[:, i].transpose(-1, -2)) * scale + key_bias
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        heads.append(torch.matmul(probs, v[:, i]))
    return torch.stack(heads, dim=1)


class LongClsBackbone(torch.nn.Module):
    """input_ids, attention_mask ([batch, n], n a multiple of 64) → cls_hidden_state [batch, hidden]."""

    def __init__(self, hf_model):
        super().__init__()
        self.m = hf_model

    def attention(self, layer, x, key_bias, rope, queries: slice | None = None):
        from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

        attn = layer.attn
        config = self.m.config
        heads, head_dim = config.num_attention_heads, attn.head_dim
        batch, seq = x.shape[0], x.shape[1]
        qkv = attn.Wqkv(x).view(batch, seq, 3, heads, head_dim)
        q, k, v = (t.transpose(1, 2) for t in qkv.unbind(dim=2))
        cos, sin = rope
        q, k = apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)
        scale = head_dim**-0.5
        if queries is not None:  # the CLS row of the last layer: one query, its keys
            keys = slice(None)
            if layer.attention_type == "sliding_attention":
                keys = slice(0, config.sliding_window + 1)  # within the window of position 0
            out = global_attention(q[:, :, queries], k[:, :, keys], v[:, :, keys], key_bias[..., keys], scale)
        elif layer.attention_type == "sliding_attention":
            out = local_attention(q, k, v, key_bias, config.sliding_window, scale)
        else:
            out = global_attention(q, k, v, key_bias, scale)
        rows = out.shape[2]
        return attn.Wo(out.transpose(1, 2).reshape(batch, rows, heads * head_dim))

    def forward(self, input_ids, attention_mask):
        m = self.m
        position_ids = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        hidden = m.embeddings(input_ids=input_ids)
        key_bias = ((1.0 - attention_mask.to(hidden.dtype)) * MASKED).unsqueeze(1)  # [b, 1, n]
        rope = {t: m.rotary_emb(hidden, position_ids, t) for t in set(m.config.layer_types)}
        for layer in m.layers[:-1]:
            hidden = hidden + self.attention(layer, layer.attn_norm(hidden), key_bias, rope[layer.attention_type])
            hidden = hidden + layer.mlp(layer.mlp_norm(hidden))
        last = m.layers[-1]
        cos, sin = rope[last.attention_type]
        # Keys and values from every position; the query and everything after it for CLS only.
        x = last.attn_norm(hidden)
        cls = hidden[:, :1] + self.attention(last, x, key_bias, (cos, sin), queries=slice(0, 1))
        cls = cls + last.mlp(last.mlp_norm(cls))
        return m.final_norm(cls)[:, 0]
