"""A ModernBERT backbone whose attention costs what the model needs, for long inputs
(`onnx/model_long.onnx`, written by tools/export_model.py for every ModernBERT reranker with CLS
pooling, i.e. every Ettin reranker).

ModernBERT's local layers (two in three) attend only to keys within 64 positions
(`|i - j| <= config.sliding_window`), but the plain export computes them as a full n × n score
tensor with a dense n × n mask, like its global layers. Here:

* local layers are banded: the sequence is cut into blocks of 64 queries, and each block attends
  to its own and the two neighbouring key blocks (192 keys) with a constant 64 × 192 band mask:
  O(n × 192) instead of O(n²) time and memory;
* global layers attend to every key through ONNX Runtime's fused MultiHeadAttention (tiled: no
  n × n scores in memory), the key padding folded into the product (fused_attention): no dense
  mask;
* the last layer runs for the CLS position only (as model_cls.onnx): `cls_hidden_state`.

The graph needs the sequence padded to a multiple of 64 (right padding, attention_mask 0): its
metadata `ettin.pad_multiple` says so, and ettin pads batches to it. Weights and every other
computation are the model's own modules, so scores match `CrossEncoder.predict()`.
"""

from __future__ import annotations

import torch
from torch.onnx import symbolic_helper

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
    """Every key, one head at a time; key_bias [b, 1, n] is added to every query's scores. For
    one query row (the CLS row of the last layer)."""
    heads = []
    for i in range(q.shape[1]):
        scores = torch.matmul(q[:, i], k[:, i].transpose(-1, -2)) * scale + key_bias
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        heads.append(torch.matmul(probs, v[:, i]))
    return torch.stack(heads, dim=1)


@torch.library.custom_op("ettin::fused_attention", mutates_args=())
def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    """Full attention as ONNX Runtime's com.microsoft MultiHeadAttention, whose CPU kernel tiles
    it (flash attention: no n × n scores in memory, 8K tokens × 4 heads in ~0.2 s on 2 cores) —
    but only without a mask. So the key-padding bias rides in the product as one more dimension:
    queries get 1/scale there and keys their bias, and scale × (q'·k') = scale × q·k + bias.
    q, k: [b, n, h·(d+1)]; v: [b, n, h·d] → [b, n, h·d]. In torch (export tracing, tests) the
    same arithmetic runs as plain matmuls; the export writes the ONNX Runtime op."""
    b, n, _ = q.shape
    qh = q.view(b, n, heads, -1).transpose(1, 2)
    kh = k.view(b, k.shape[1], heads, -1).transpose(1, 2)
    vh = v.view(b, v.shape[1], heads, -1).transpose(1, 2)
    probs = torch.softmax(torch.matmul(qh, kh.transpose(-1, -2)) * scale, dim=-1)
    return torch.matmul(probs, vh).transpose(1, 2).reshape(b, n, -1)


@fused_attention.register_fake
def _(q, k, v, heads, scale):
    return v.new_empty(q.shape[0], q.shape[1], v.shape[2])


@symbolic_helper.parse_args("v", "v", "v", "i", "f")
def _fused_attention_onnx(g, q, k, v, heads, scale):
    out = g.op("com.microsoft::MultiHeadAttention", q, k, v, num_heads_i=heads, scale_f=scale)
    out.setType(v.type())  # self-attention: the output has the values' shape
    return out


torch.onnx.register_custom_op_symbolic("ettin::fused_attention", _fused_attention_onnx, 17)


def fused_global_attention(q, k, v, key_bias, scale: float):
    """q, k, v: [b, h, n, d]; key_bias [b, 1, n] → [b, h, n, d] through FusedAttention."""
    b, h, n, d = q.shape
    extra_q = torch.full_like(q[..., :1], 1.0 / scale)
    extra_k = key_bias.unsqueeze(-1).expand(-1, h, -1, -1)  # [b, h, n, 1]
    packed = lambda x: x.transpose(1, 2).reshape(b, n, -1)  # noqa: E731  [b, n, h·dim]
    out = fused_attention(packed(torch.cat([q, extra_q], dim=-1)), packed(torch.cat([k, extra_k], dim=-1)), packed(v), h, scale)
    return out.view(b, n, h, d).transpose(1, 2)


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
            out = fused_global_attention(q, k, v, key_bias, scale)
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
