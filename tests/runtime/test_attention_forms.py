"""The two ways an in-LLM stage's attention is computed (`Method.attention_form`), on a real decoder layer."""

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
        assert torch.allclose(got, expected.transpose(0, 1)[:, :, 2:6].float(), atol=1e-2 if dtype == torch.bfloat16
                              else 1e-6)
        causal = query_attention(layer, hidden.float(), rope, rows, slice(2, 6)) if dtype == torch.float32 else None
        assert causal is None or not torch.allclose(got, causal, atol=1e-4)  # RoPE and the mask matter
    finally:
        layer.float()


def test_prunevid_ranks_with_every_row_after_the_video(loaded, monkeypatch):
    from vidcost.runtime import prefill as prefill_module

    seen = []
    original = prefill_module.query_attention

    def spy(layer, layer_input, rope, rows, key_slice, form="rope_causal"):
        seen.append((rows.clone(), key_slice, form, layer_input.shape[1]))
        return original(layer, layer_input, rope, rows, key_slice, form=form)

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
