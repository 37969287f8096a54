"""Each method's declared position rule (`Method.position_rule`) is what the decoder layers see.

The ids are read where RoPE is computed (the language model's `rotary_emb`, called once per prefill
segment and once per decode step), so they are the ones every decoder layer rotates with.
"""

from __future__ import annotations

import pytest
import torch

from vidcost.methods import get_method
from vidcost.runtime import StagedRuntime, build_inputs, build_model
from vidcost.spec import load_spec


def _rope_calls(runtime: StagedRuntime, inputs, method: str, budget: float, decode_tokens: int = 2):
    """The position ids of every rotary-embedding call of one prefill + decode, and the result."""
    seen = []
    hook = runtime.lm.rotary_emb.register_forward_hook(lambda module, args, out: seen.append(args[1].clone()))
    try:
        result = runtime.prefill(inputs, get_method(method), budget, decode_tokens=decode_tokens)
    finally:
        hook.remove()
    return seen, result


@pytest.fixture(scope="module")
def llava():
    loaded = build_model(load_spec("tiny", frames=4), seed=3)
    return StagedRuntime(loaded), build_inputs(loaded, seed=5)


@pytest.fixture(scope="module")
def qwen():
    loaded = build_model(load_spec("tiny-qwen2.5-vl", frames=4), seed=3)
    return StagedRuntime(loaded), build_inputs(loaded, seed=5)


def test_the_rules_are_declared_as_the_official_code_numbers_its_sequence():
    assert {name: get_method(name).position_rule for name in ("divprune", "dycoke", "prunevid")} == dict.fromkeys(
        ("divprune", "dycoke", "prunevid"), "compact")
    assert {get_method(name).position_rule for name in ("fastv", "framefusion", "hieravid", "uniform")} == {"original"}
    assert get_method("pdrop").position_rule == "renumber"


def test_compact_numbers_the_shorter_sequence_from_zero_and_decodes_after_it(llava):
    runtime, inputs = llava
    seen, result = _rope_calls(runtime, inputs, "divprune", 0.25)
    prefill, decode = seen[0], seen[1:]
    length = prefill.shape[-1]
    assert length < inputs.spec.num_visual_tokens + inputs.spec.text_tokens  # tokens were dropped
    assert torch.equal(prefill, torch.arange(length)[None])
    assert [int(d) for d in decode] == [length, length + 1]
    assert torch.equal(result.position_ids, prefill)


def test_original_keeps_the_full_layouts_ids_with_gaps_and_decodes_after_the_full_layout(llava):
    runtime, inputs = llava
    seen, result = _rope_calls(runtime, inputs, "uniform", 0.25)
    prefill, decode = seen[0], seen[1:]
    layout = inputs.layout_positions()
    assert prefill.shape[-1] < layout.shape[-1] and bool(torch.isin(prefill, layout).all())
    assert int(prefill.max()) == int(layout.max())  # the question keeps its ids after the gap
    assert [int(d) for d in decode] == [inputs.next_position, inputs.next_position + 1]


def test_an_in_llm_prune_keeps_the_columns_of_the_sequence_it_prunes(llava):
    """FastV (original) prunes inside the LLM: the layers after it see a subset of the full layout's ids."""
    runtime, inputs = llava
    seen, _ = _rope_calls(runtime, inputs, "fastv", 0.25, decode_tokens=1)
    full, pruned = seen[0], seen[1]
    assert torch.equal(full, inputs.layout_positions())
    assert pruned.shape[-1] < full.shape[-1] and bool(torch.isin(pruned, full).all())
    assert int(seen[-1]) == inputs.next_position


def test_budget_one_is_the_same_under_either_rule(llava):
    runtime, inputs = llava
    compact, _ = _rope_calls(runtime, inputs, "divprune", 1.0, decode_tokens=1)
    assert torch.equal(compact[0], inputs.layout_positions()) and int(compact[1]) == inputs.next_position


def test_mrope_keeps_the_kept_patches_time_and_space_ids_under_compact(qwen):
    runtime, inputs = qwen
    seen, result = _rope_calls(runtime, inputs, "divprune", 0.5, decode_tokens=1)
    prefill = seen[0]
    layout = inputs.layout_positions()
    assert prefill.shape[0] == 3 and prefill.shape[-1] < layout.shape[-1]
    columns = {tuple(layout[:, 0, i].tolist()) for i in range(layout.shape[-1])}
    assert all(tuple(prefill[:, 0, i].tolist()) in columns for i in range(prefill.shape[-1]))
    assert int(seen[1].max()) == inputs.next_position


def test_an_unknown_rule_is_refused_when_the_method_is_defined():
    from vidcost.errors import ConfigError
    from vidcost.methods.baselines import Uniform

    with pytest.raises(ConfigError, match="position_rule 'compacted' is not one of"):
        type("Typo", (Uniform,), {"position_rule": "compacted"})


def test_renumber_lays_every_stage_out_from_zero_and_decodes_each_layer_after_its_stage(llava):
    """PyramidDrop: the official `pdrop_rank_drop` renumbers the kept sequence with arange, and its decode
    subtracts each stage's dropped count at that stage's layer."""
    runtime, inputs = llava
    method = get_method("pdrop", layers=[2, 4])
    seen = []
    hook = runtime.lm.rotary_emb.register_forward_hook(lambda module, args, out: seen.append(args[1].clone()))
    try:
        result = runtime.prefill(inputs, method, 0.5, decode_tokens=2)
    finally:
        hook.remove()
    stages = [ids for ids in seen if ids.shape[-1] > 1]
    lengths = [ids.shape[-1] for ids in stages]
    assert len(stages) == 3 and lengths[0] > lengths[1] > lengths[2]  # full, after stage 1, after stage 2
    assert all(torch.equal(ids, torch.arange(n)[None]) for ids, n in zip(stages, lengths))
    decode = [int(ids) for ids in seen if ids.shape[-1] == 1]
    assert sorted(decode) == sorted(n + step for step in (0, 1) for n in lengths)  # one rotary call per stage
    assert result.executed.visual_tokens[0] > result.executed.visual_tokens[-1]
