"""StagedRuntime: equals the stock forward, keeps RoPE positions, follows the plan, computes one attention row."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch

from vidcost.errors import ProfilingError
from vidcost.methods import get_method
from vidcost.methods.base import LayerContext, LayerReduction, Method, SelectionResult
from vidcost.methods.common import keep_count
from vidcost.runtime import StagedRuntime, build_inputs, build_model
from vidcost.runtime.attention import query_attention
from vidcost.schedule import Schedule
from vidcost.spec import load_spec

FRAMES = 4


@pytest.fixture(scope="module")
def loaded():
    return build_model(load_spec("tiny", frames=FRAMES), seed=3)


@pytest.fixture(scope="module")
def inputs(loaded):
    return build_inputs(loaded, seed=5)


@pytest.fixture(scope="module")
def runtime(loaded):
    return StagedRuntime(loaded)


@pytest.fixture(scope="module")
def stock_logits(loaded, inputs):
    with torch.inference_mode():
        out = loaded.model(input_ids=inputs.input_ids(), pixel_values_videos=inputs.pixel_values[None],
                           logits_to_keep=1)
    return out.logits[0, -1].float()


@pytest.mark.parametrize("name,budget", [("vanilla", 0.25), ("vanilla", 1.0), ("uniform", 1.0), ("fastv", 1.0),
                                         ("random", 1.0)])
def test_logits_equal_stock_forward_without_pruning(runtime, inputs, stock_logits, name, budget):
    result = runtime.prefill(inputs, get_method(name), budget, seed=1)
    torch.testing.assert_close(result.logits, stock_logits, rtol=1e-5, atol=1e-5)
    assert result.first_token == int(torch.argmax(stock_logits))


def test_eager_attention_path_matches_stock(inputs, stock_logits):
    eager = build_model(load_spec("tiny", frames=FRAMES), seed=3, attn_implementation="eager")
    result = StagedRuntime(eager).prefill(inputs, get_method("vanilla"), 1.0)
    torch.testing.assert_close(result.logits, stock_logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,budget", [("vanilla", 0.3), ("uniform", 0.25), ("uniform", 0.4), ("fastv", 0.25),
                                         ("fastv", 0.1), ("random", 0.5)])
def test_executed_schedule_equals_planned(runtime, inputs, name, budget):
    method = get_method(name)
    result = runtime.prefill(inputs, method, budget)
    assert result.executed == result.planned == method.plan(inputs.spec, budget)
    assert result.executed.text_tokens == inputs.spec.text_tokens


def test_fastv_drops_inside_the_llm(runtime, inputs):
    result = runtime.prefill(inputs, get_method("fastv", layer=3), 0.25)
    total = inputs.spec.num_visual_tokens
    assert result.executed.visual_tokens == (total,) * 3 + (keep_count(total, 0.25),) * 3


def test_kept_tokens_keep_their_original_rope_positions(loaded, runtime, inputs):
    """Random pre-LLM selection vs the stock language model run on the same tokens with explicit positions."""
    method = get_method("random")
    result = runtime.prefill(inputs, method, 0.3, seed=7)
    features, newline = runtime.encode_video(inputs.pixel_values)
    selection = method.select_visual(features, 0.3, seed=7)
    llava = loaded.model.model
    with torch.inference_mode():
        embed = llava.language_model.embed_tokens
        hidden = torch.cat([embed(inputs.prefix_ids), selection.tokens, newline[None],
                            embed(inputs.question_ids)])[None]
        p, total = inputs.prefix_ids.numel(), inputs.spec.num_visual_tokens
        positions = torch.cat([torch.arange(p), p + selection.positions,
                               p + total + torch.arange(1 + inputs.question_ids.numel())])[None]
        out = llava.language_model(inputs_embeds=hidden, position_ids=positions)
        logits = loaded.model.lm_head(out.last_hidden_state[:, -1])[0].float()
        contiguous = llava.language_model(inputs_embeds=hidden)  # positions 0..N-1: a different answer
        wrong = loaded.model.lm_head(contiguous.last_hidden_state[:, -1])[0].float()
    torch.testing.assert_close(result.logits, logits, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(result.logits, wrong, atol=1e-4)


def test_query_attention_equals_eager_attention_rows():
    eager = build_model(load_spec("tiny", frames=1), seed=2, attn_implementation="eager")
    lm = eager.model.model.language_model
    layer = lm.layers[1]
    n = 40
    hidden = torch.randn(1, n, lm.config.hidden_size, generator=torch.Generator().manual_seed(0))
    positions = torch.tensor([[0, 1, 2, 5, 9, 10, 11] + list(range(20, 20 + n - 7))])  # gaps, as after pruning
    rope = lm.rotary_emb(hidden, positions)
    mask = torch.triu(torch.full((n, n), torch.finfo(hidden.dtype).min), diagonal=1)[None, None]
    with torch.inference_mode():
        _, weights = layer.self_attn(hidden_states=layer.input_layernorm(hidden), position_embeddings=rope,
                                     attention_mask=mask)  # [1, H, N, N]
        rows = torch.tensor([n - 1, n - 5])
        got = query_attention(layer, hidden, rope, rows, slice(3, 30))
    assert got.shape == (2, lm.config.num_attention_heads, 27)
    torch.testing.assert_close(got, weights[0][:, rows, 3:30].permute(1, 0, 2).float(), rtol=1e-5, atol=1e-6)


class _Recorder(Method):
    """Drops half the visual tokens before layer 2 and records what the runtime handed it."""

    name: ClassVar[str] = "recorder"
    defaults: ClassVar[dict[str, Any]] = {}
    attention_need: ClassVar[str] = "question"
    contexts: ClassVar[list[LayerContext]] = []
    keep_override: ClassVar[int | None] = None

    def plan(self, spec, budget, **params):
        total = spec.num_visual_tokens
        return Schedule((total, total) + (total // 2,) * (spec.num_layers - 2), spec.text_tokens, total)

    def reduce_in_llm(self, context, keep):
        type(self).contexts.append(context)
        count = keep if self.keep_override is None else self.keep_override
        return LayerReduction(keep=torch.arange(0, 2 * count, 2), hidden=None)


def test_question_attention_and_context(runtime, inputs):
    _Recorder.contexts = []
    result = runtime.prefill(inputs, _Recorder(), 0.5, seed=4)
    (context,) = _Recorder.contexts
    total = inputs.spec.num_visual_tokens
    assert context.layer == 2 and context.seed == 4
    assert context.hidden.shape == (total, inputs.spec.hidden_size)
    assert torch.equal(context.positions, torch.arange(total))
    question = inputs.question_ids.numel()
    assert context.attention.shape == (question, inputs.spec.num_heads, total)
    sums = context.attention.sum(-1)  # visual share of each row: in (0, 1]
    assert bool(((sums > 0) & (sums <= 1 + 1e-5)).all())
    assert result.executed.visual_tokens[2:] == (total // 2,) * (inputs.spec.num_layers - 2)


def test_method_breaking_its_plan_is_reported(runtime, inputs):
    _Recorder.keep_override = 3
    try:
        with pytest.raises(ProfilingError, match="kept 3 tokens"):
            runtime.prefill(inputs, _Recorder(), 0.5)
    finally:
        _Recorder.keep_override = None


class _Overselect(Method):
    name: ClassVar[str] = "overselect"

    def plan(self, spec, budget, **params):
        return Schedule.constant(spec.num_layers, 10, spec.text_tokens, spec.num_visual_tokens)

    def select_visual(self, features, budget, query=None, seed=0, **params):
        flat = features.reshape(-1, features.shape[-1])
        return SelectionResult(tokens=flat[:12], positions=torch.arange(12))


def test_pre_llm_selection_size_is_checked(runtime, inputs):
    with pytest.raises(ProfilingError, match="selected 12 tokens"):
        runtime.prefill(inputs, _Overselect(), 0.5)


def test_prefill_with_reused_encoding_skips_vision(runtime, inputs, stock_logits):
    from vidcost.profiling.timer import PerfCounterBackend, StageTimer

    timer = StageTimer(PerfCounterBackend())
    encoded = runtime.encode_video(inputs.pixel_values)
    result = runtime.prefill(inputs, get_method("vanilla"), 1.0, timer=timer, encoded=encoded, per_layer=True)
    run = timer.finish_run()
    torch.testing.assert_close(result.logits, stock_logits, rtol=1e-5, atol=1e-5)
    assert "vision" not in run and {"llm_prefill", "first_token", "ttft", "layer_00", "layer_05"} <= set(run)
    assert sum(run[f"layer_{i:02d}"] for i in range(6)) <= run["llm_prefill"] + 1e-6


@pytest.mark.parametrize("name", __import__("vidcost.methods", fromlist=["method_names"]).method_names())
def test_every_registered_method_runs_its_plan(runtime, inputs, name):
    """The runtime drives any method through the interface only; the executed schedule is the plan (or, for a
    data-dependent method, meets the budget)."""
    from vidcost.errors import ConfigError

    try:
        method = get_method(name)
    except ConfigError as err:
        pytest.skip(str(err))
    result = runtime.prefill(inputs, method, 0.5, seed=1)
    if method.data_dependent_counts:  # the plan is an estimate; what ran meets the budget as its rule says
        assert abs(result.executed.mean_visual_fraction - 0.5) <= 2 / inputs.spec.num_visual_tokens
    else:
        assert result.executed.visual_tokens == result.planned.visual_tokens
    assert torch.isfinite(result.logits).all()
