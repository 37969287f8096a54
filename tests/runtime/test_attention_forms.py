"""How an in-LLM stage's attention is computed (`Method.attention_form`, `attention_precision`), on a real
decoder layer."""

from __future__ import annotations

import pytest
import torch

from vidcost.methods import get_method
from vidcost.runtime import StagedRuntime, build_inputs, build_model
from vidcost.runtime.attention import query_attention
from vidcost.spec import load_spec


@pytest.fixture(scope="module")
def loaded():
    return build_model(load_spec("tiny", frames=2), seed=3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_plain_is_prunevids_attention_without_positions_or_mask(loaded, dtype):
    """PruneVid's LlamaAttention: softmax(q·kᵀ/√d) on q/k before RoPE, no mask, in the model's dtype."""
    lm = loaded.model.model.language_model
    layer = lm.layers[1].to(dtype)
    try:
        hidden = torch.randn(1, 12, lm.config.hidden_size, generator=torch.Generator().manual_seed(0)).to(dtype)
        rope = lm.rotary_emb(hidden, torch.arange(12)[None])
        rows = torch.arange(6, 12)
        got = query_attention(layer, hidden, rope, rows, slice(2, 6), form="plain")
        attn = layer.self_attn
        x = layer.input_layernorm(hidden)[0]
        q = attn.q_proj(x[rows]).view(6, -1, attn.head_dim).transpose(0, 1)  # [H, Q, hd]
        k = attn.k_proj(x).view(12, -1, attn.head_dim).transpose(0, 1).repeat_interleave(attn.num_key_value_groups, 0)
        expected = torch.softmax(q @ k.transpose(1, 2) * attn.scaling, dim=-1, dtype=torch.float32).to(dtype)
        assert got.dtype == dtype  # rounded as the official rounds it
        assert torch.allclose(got.float(), expected.transpose(0, 1)[:, :, 2:6].float(),
                              atol=1e-2 if dtype == torch.bfloat16 else 1e-6)
        causal = query_attention(layer, hidden.float(), rope, rows, slice(2, 6)) if dtype == torch.float32 else None
        assert causal is None or not torch.allclose(got, causal, atol=1e-4)  # RoPE and the mask matter
    finally:
        layer.float()


def test_model_precision_is_the_layers_own_eager_attention_in_bf16(loaded):
    """precision "model": the attention map transformers' eager path returns for this layer (what FastV's
    `layer_outputs[1]` and PyramidDrop's softmax(…, float32).to(dtype) read), bf16 value for bf16 value;
    "float32" differs from it by bf16's rounding, which is what decides near-ties."""
    lm = loaded.model.model.language_model
    layer = lm.layers[1].to(torch.bfloat16)
    attn, config = layer.self_attn, layer.self_attn.config
    previous = config._attn_implementation
    try:
        n = 40
        hidden = torch.randn(1, n, lm.config.hidden_size, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
        rope = lm.rotary_emb(hidden, torch.arange(n)[None])
        mask = torch.full((n, n), torch.finfo(torch.bfloat16).min, dtype=torch.bfloat16).triu(1)[None, None]
        config._attn_implementation = "eager"
        with torch.no_grad():
            weights = attn(hidden_states=layer.input_layernorm(hidden), position_embeddings=rope, attention_mask=mask)[1]
        rows = torch.tensor([n - 1])
        got = query_attention(layer, hidden, rope, rows, slice(4, 30), precision="model")
        eager = weights[0, :, -1:, 4:30].transpose(0, 1)  # [Q, H, K]
        assert got.dtype == torch.bfloat16
        assert torch.equal(got, eager)
        in_float32 = query_attention(layer, hidden, rope, rows, slice(4, 30))
        assert in_float32.dtype == torch.float32 and not torch.equal(in_float32, got.float())
    finally:
        config._attn_implementation = previous
        layer.float()


def test_prunevid_ranks_with_every_row_after_the_video(loaded, monkeypatch):
    from vidcost.runtime import prefill as prefill_module

    seen = []
    original = prefill_module.query_attention

    def spy(layer, layer_input, rope, rows, key_slice, form="rope_causal", precision="float32"):
        seen.append((rows.clone(), key_slice, form, layer_input.shape[1]))
        return original(layer, layer_input, rope, rows, key_slice, form=form, precision=precision)

    monkeypatch.setattr(prefill_module, "query_attention", spy)
    runtime, inputs = StagedRuntime(loaded), build_inputs(loaded, seed=5)
    runtime.prefill(inputs, get_method("prunevid"), 0.3)
    (rows, key_slice, form, n), = seen
    assert form == "plain" and rows.tolist() == list(range(key_slice.stop, n))


def test_a_stage_after_attention_acts_between_the_layers_attention_and_its_mlp(loaded):
    """FrameFusion's place (`in_llm_stage_at = "after_attention"`): the stage gets layer K−1's post-attention
    states, layer K−1's MLP runs on the kept tokens only, and layer K−1's cache keeps every token."""
    from vidcost.methods.fastv import FastV

    class InsideFastV(FastV):
        name = "insidefastv"
        in_llm_stage_at = "after_attention"

        def reduce_in_llm(self, context, keep):
            reduction = super().reduce_in_llm(context, keep)
            seen["stage"] = (context.hidden.clone(), reduction.keep.clone())
            return reduction

    seen = {}
    runtime, inputs = StagedRuntime(loaded), build_inputs(loaded, seed=5)
    norm = runtime.lm.layers[1].post_attention_layernorm
    hook = norm.register_forward_pre_hook(lambda module, args: seen.setdefault("mlp_input", args[0].clone()))
    try:
        result = runtime.prefill(inputs, InsideFastV(params={"layer": 2}), 0.25)
    finally:
        hook.remove()
    hidden, keep = seen["stage"]
    prefix = inputs.prefix_ids.numel()
    mlp_visual = seen["mlp_input"][0, prefix:prefix + keep.numel()]
    assert torch.equal(mlp_visual, hidden[keep])  # layer 1's MLP saw the kept post-attention states only
    cached = result.executed.kv_visual_tokens
    assert cached[1] == inputs.spec.num_visual_tokens > cached[2] == keep.numel()  # layer 1 cached every token
