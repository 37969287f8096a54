"""Query attention: the softmax rows a few text queries pay to the visual keys, from one layer's q/k.

FastV-style methods rank visual tokens by the attention the last token (or the question tokens) pays
them at layer K. Only those Q query rows are needed, so they are computed from the layer's q/k
projections directly: a [Q, N] score matrix per head, never the n×n attention matrix. The same path
serves every family: Qwen-VL's rotary embedding composes its M-RoPE (t, h, w) sections into one cos/sin
per token, which `rotate_half` applies as it applies 1-D RoPE (`apply_rotary_pos_emb` of both models).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def query_attention(layer: Any, layer_input: "torch.Tensor", position_embeddings: tuple["torch.Tensor", "torch.Tensor"],
                    query_rows: "torch.Tensor", key_slice: slice, form: str = "rope_causal",
                    precision: str = "float32") -> "torch.Tensor":
    """Softmax attention of `query_rows` over all keys, restricted to the keys in `key_slice`.

    Args:
        layer: a Qwen2 or Qwen-VL decoder layer (input_layernorm, self_attn.{q,k}_proj).
        layer_input: [1, N, D] hidden states entering that layer.
        position_embeddings: (cos, sin), each [1, N, head_dim], the RoPE (or composed M-RoPE) of the sequence.
        query_rows: [Q] int64 sequence rows of the queries.
        key_slice: the rows of the keys to return (the visual tokens).
        form: "rope_causal" — as the layer attends: RoPE on q and k, each query sees the keys up to its own
            row, float32 scores; "plain" — PruneVid's `attn_weights_wo_pos`: q·kᵀ/√d without RoPE and
            without a mask, in the model's dtype, softmax in float32 cast back to that dtype
            (`vidcost.methods.base.AttentionForm`).
        precision: "float32" — scores and softmax in float32; "model" — as transformers' eager attention
            computes them: q·kᵀ·scale in the model's dtype, softmax in float32 rounded back to it
            (`vidcost.methods.base.AttentionPrecision`). "plain" is always the latter, as its official code.

    Returns:
        [Q, H, K] attention probabilities (each row sums to 1 over all N keys before slicing): float32, or
        in the model's dtype for precision "model" and the "plain" form.
    """
    import torch
    from transformers.models.qwen2.modeling_qwen2 import rotate_half

    attn = layer.self_attn
    head_dim = attn.head_dim
    groups = attn.num_key_value_groups  # query heads per KV head (GQA)
    x = layer.input_layernorm(layer_input)[0]  # [N, D]
    n = x.shape[0]
    q = attn.q_proj(x[query_rows]).view(len(query_rows), -1, head_dim)  # [Q, H, hd]
    k = attn.k_proj(x).view(n, -1, head_dim)  # [N, KV, hd]
    kv_heads = k.shape[1]
    if form == "plain":
        q = q.view(len(query_rows), kv_heads, groups, head_dim)
        scores = torch.einsum("qgrd,ngd->qgrn", q, k) * attn.scaling  # the model's dtype, as the official
        scores = scores.reshape(len(query_rows), kv_heads * groups, n)
        return torch.softmax(scores, dim=-1, dtype=torch.float32).to(x.dtype)[:, :, key_slice]
    cos, sin = (t[0].to(x.dtype) for t in position_embeddings)  # [N, hd]
    q = q * cos[query_rows, None] + rotate_half(q) * sin[query_rows, None]
    k = k * cos[:, None] + rotate_half(k) * sin[:, None]
    q = q.view(len(query_rows), kv_heads, groups, head_dim)  # head h uses KV head h // groups
    in_model_dtype = precision == "model"
    if not in_model_dtype:
        q, k = q.float(), k.float()
    scores = torch.einsum("qgrd,ngd->qgrn", q, k) * attn.scaling  # [Q, KV, groups, N]
    scores = scores.reshape(len(query_rows), kv_heads * groups, n)  # [Q, H, N]
    keys = torch.arange(n, device=x.device)
    future = keys[None, :] > query_rows[:, None]  # causal: a query sees keys up to its own row
    scores = scores.masked_fill(future[:, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32)
    return (weights.to(x.dtype) if in_model_dtype else weights)[:, :, key_slice]


def decode_attention(layer: Any, layer_input: "torch.Tensor", position_embeddings: tuple["torch.Tensor", "torch.Tensor"],
                     keys: "torch.Tensor", precision: str = "float32") -> "torch.Tensor":
    """The attention one decode token pays every cached key at a layer that has just run it.

    Args:
        layer: the decoder layer.
        layer_input: [1, 1, D] the token's hidden state entering that layer.
        position_embeddings: (cos, sin) of the token's position, each [1, 1, head_dim].
        keys: [1, KV, n, head_dim] the layer's cached keys (RoPE applied; the token's own last).
        precision: "float32", or "model" — q·kᵀ·scale in the model's dtype and the softmax rounded back to
            it (DyCoke's `calculate_attention_weights`, which its decode stage reads).

    Returns:
        [H, n] softmax attention (no mask: a decode token sees the whole cache), float32 or the model's dtype.
    """
    import torch
    from transformers.models.qwen2.modeling_qwen2 import rotate_half

    attn = layer.self_attn
    head_dim, groups = attn.head_dim, attn.num_key_value_groups
    x = layer.input_layernorm(layer_input)[0]  # [1, D]
    q = attn.q_proj(x).view(-1, head_dim)  # [H, hd]
    cos, sin = (t[0, 0].to(x.dtype) for t in position_embeddings)  # [hd]
    q = q * cos + rotate_half(q) * sin
    k = keys[0].repeat_interleave(groups, dim=0)  # [H, n, hd]: head h uses KV head h // groups
    if precision == "model":
        scores = torch.einsum("hd,hnd->hn", q, k) * attn.scaling  # the cache is in the model's dtype too
        return torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    scores = torch.einsum("hd,hnd->hn", q.float(), k.float()) * attn.scaling
    return torch.softmax(scores, dim=-1)
