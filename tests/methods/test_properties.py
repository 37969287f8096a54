"""Registry-wide properties of every pruning method (hypothesis), pre-LLM and in-LLM stages.

For every name in `vidcost.methods.METHODS`: positions unique, ascending and in range; the token count
equals the plan and matches the budget; the same seed gives the same answer; budget 1.0 keeps everything;
inputs are never modified; in-LLM stages keep exactly the planned count. A method whose module has not
landed yet is skipped with get_method's "not available in this build" reason, never silently passed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method, method_names
from vidcost.methods.common import keep_count
from vidcost.spec import load_spec

NAMES = method_names()
# How each method's budget fixes its counts (DESIGN §5): "mean" = the mean visual fraction over layers,
# "after_first_stage" = the count after the in-LLM drop, "all" = no pruning, "kept" = round(budget·T·P)
# from layer 0 (the default for methods with constant plans), "grid" = nearest pooled grid (uniform).
BUDGET_RULE = {"pdrop": "mean", "framefusion": "mean", "fastv": "after_first_stage", "vanilla": "all",
               "uniform": "grid"}
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


def load(name: str):
    """The method, or a skip naming why it is not in this build yet."""
    try:
        return get_method(name)
    except ConfigError as err:
        if "not available in this build" in str(err):
            pytest.skip(f"{name}: {err}")
        raise


@st.composite
def videos(draw, min_frames: int = 2):
    """(features [T, P, D], query [3, D], budget, seed) with random, static or three-scene content."""
    frames = draw(st.integers(min_frames, 6))
    per_frame = draw(st.sampled_from([4, 6, 9, 16]))
    dim = draw(st.integers(4, 12))
    budget = draw(st.sampled_from([1.0, 0.5, 0.25]) | st.floats(0.05, 1.0))
    seed = draw(st.integers(0, 2**16))
    kind = draw(st.sampled_from(["random", "static", "scenes"]))
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(frames, per_frame, dim, generator=generator)
    if kind == "static":
        features = noise[:1].expand(frames, -1, -1) + 0.01 * noise.flip(0)
    elif kind == "scenes":
        scene_of = torch.arange(frames) * 3 // frames  # [T] scene index 0..2
        features = torch.randn(3, per_frame, dim, generator=generator)[scene_of] + 0.05 * noise
    else:
        features = noise
    return features.contiguous(), torch.randn(3, dim, generator=generator), budget, seed


def plan_or_reject(method, spec, budget):
    """The plan, or reject the example when the method clearly refuses a too-small budget or one frame."""
    try:
        return method.plan(spec, budget)
    except ConfigError as err:
        assume(not ("budget" in str(err) or spec.frames == 1))
        raise


def select_or_reject(method, features, budget, query, seed):
    """select_visual's answer (the base pass-through for in-LLM-only methods)."""
    if not method.selects_before_llm():
        frames, per_frame, _ = features.shape
        spec = load_spec("tiny", frames=frames, tokens_per_frame=per_frame)
        if method.plan(spec, budget).visual_tokens[0] != frames * per_frame:
            pytest.fail(f"{method.name} drops tokens at layer 0 but has no select_visual")
    try:
        return method.select_visual(features, budget, query=query, seed=seed)
    except ConfigError as err:
        assume(not ("budget" in str(err) or features.shape[0] == 1))
        raise


def check_budget_rule(name, schedule, budget):
    total = schedule.initial_visual_tokens
    rule = BUDGET_RULE.get(name, "kept")
    if rule == "all":
        assert set(schedule.visual_tokens) == {total}
    elif rule == "mean":
        assert abs(schedule.mean_visual_fraction - budget) <= 1.0 / total + 1e-9, str(schedule)
    elif rule == "after_first_stage":
        assert schedule.visual_tokens[-1] == keep_count(total, budget), str(schedule)
    elif rule == "grid":
        assert 1 <= schedule.visual_tokens[0] <= total
    elif len(set(schedule.visual_tokens)) == 1:  # pre-LLM only: round(budget·T·P)
        assert schedule.visual_tokens[0] == keep_count(total, budget), str(schedule)
    else:  # pre-LLM then in-LLM stages: at least the budget enters the LLM
        assert schedule.visual_tokens[0] >= keep_count(total, budget), str(schedule)


def check_positions(positions, count, total):
    assert positions.dtype == torch.long
    assert positions.shape == (count,)
    assert bool((positions[1:] > positions[:-1]).all()), "positions must be unique and ascending"
    if count:
        assert 0 <= int(positions[0]) and int(positions[-1]) < total


def run_in_llm(method, schedule, hidden, positions, frames, per_frame, seed):
    """Drive the in-LLM stages as the runtime does; return the (keep, hidden) answers of every stage."""
    answers = []
    generator = torch.Generator().manual_seed(seed + 1)
    rows = {"last": 1, "question": 3}.get(method.attention_need)
    for layer in range(1, schedule.num_layers):
        keep = schedule.visual_tokens[layer]
        if keep == schedule.visual_tokens[layer - 1]:
            continue
        count = hidden.shape[0]
        logits = torch.randn(rows or 1, 4, count + 5, generator=generator)
        attention = logits.softmax(-1)[..., :count].contiguous() if rows else None  # [Q, H, N]
        context = LayerContext(layer=layer, hidden=hidden, positions=positions, attention=attention,
                               num_frames=frames, tokens_per_frame=per_frame, seed=seed)
        before = (hidden.clone(), positions.clone(), None if attention is None else attention.clone())
        reduction = method.reduce_in_llm(context, keep)
        assert torch.equal(hidden, before[0]) and torch.equal(positions, before[1]), "input modified"
        assert attention is None or torch.equal(attention, before[2]), "attention modified"
        check_positions(reduction.keep, keep, count)
        if reduction.hidden is not None:
            assert reduction.hidden.shape == (keep, hidden.shape[1])
        answers.append((reduction.keep, reduction.hidden))
        hidden = reduction.hidden if reduction.hidden is not None else hidden[reduction.keep]
        positions = positions[reduction.keep]
    return answers


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(case=videos(min_frames=1))
def test_selection_and_in_llm_stages(name, case):
    features, query, budget, seed = case
    method = load(name)
    frames, per_frame, dim = features.shape
    spec = load_spec("tiny", frames=frames, tokens_per_frame=per_frame)
    schedule = plan_or_reject(method, spec, budget)
    originals = features.clone(), query.clone()
    result = select_or_reject(method, features, budget, query, seed)
    assert torch.equal(features, originals[0]) and torch.equal(query, originals[1]), "input modified"
    count = schedule.visual_tokens[0]
    check_positions(result.positions, count, frames * per_frame)
    assert result.tokens.shape == (count, dim)
    check_budget_rule(name, schedule, budget)
    if result.segments:  # segments partition the frames: contiguous, in order, covering 0..T-1
        starts = [first for first, _ in result.segments]
        ends = [last for _, last in result.segments]
        assert starts[0] == 0 and ends[-1] == frames - 1
        assert all(first <= last for first, last in result.segments)
        assert all(start == end + 1 for start, end in zip(starts[1:], ends[:-1]))
    run_in_llm(method, schedule, result.tokens, result.positions, frames, per_frame, seed)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(case=videos())
def test_same_seed_same_answer(name, case):
    features, query, budget, seed = case
    method = load(name)
    frames, per_frame, _ = features.shape
    schedule = plan_or_reject(method, load_spec("tiny", frames=frames, tokens_per_frame=per_frame), budget)
    first = select_or_reject(method, features, budget, query, seed)
    again = select_or_reject(method, features, budget, query, seed)
    assert torch.equal(first.positions, again.positions) and torch.equal(first.tokens, again.tokens)
    assert first.segments == again.segments
    stages = [run_in_llm(method, schedule, first.tokens, first.positions, frames, per_frame, seed)
              for _ in range(2)]
    for (keep_a, hidden_a), (keep_b, hidden_b) in zip(*stages):
        assert torch.equal(keep_a, keep_b)
        assert (hidden_a is None) == (hidden_b is None) and (hidden_a is None or torch.equal(hidden_a, hidden_b))


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(case=videos(min_frames=1))
def test_full_budget_keeps_everything(name, case):
    features, query, _, seed = case
    method = load(name)
    frames, per_frame, dim = features.shape
    total = frames * per_frame
    schedule = method.plan(load_spec("tiny", frames=frames, tokens_per_frame=per_frame), 1.0)
    assert schedule.visual_tokens == (total,) * schedule.num_layers
    result = select_or_reject(method, features, 1.0, query, seed)
    assert torch.equal(result.positions, torch.arange(total))
    assert torch.equal(result.tokens, features.reshape(total, dim))


@pytest.mark.parametrize("name", NAMES)
def test_budget_outside_range_is_a_config_error(name):
    method = load(name)
    spec = load_spec("tiny")
    for budget in (0.0, -0.5, 1.5):
        with pytest.raises(ConfigError, match=repr(budget)):
            method.plan(spec, budget)


def test_planning_never_imports_torch():
    """`vidcost flops --method X` must start fast: every method plans without torch."""
    code = ("import sys; from vidcost.methods import get_method, method_names; from vidcost.spec import load_spec; "
            "[get_method(n).plan(load_spec('llava-onevision-7b'), 0.25) for n in method_names()]; "
            "assert 'torch' not in sys.modules, 'planning imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


def numeric_parameters():
    """(method, parameter, default) for every numeric parameter of every registered method."""
    return [(name, key, value) for name in NAMES for key, value in get_method(name).defaults.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)]


@pytest.mark.parametrize("name, key, default", numeric_parameters())
def test_non_numeric_parameter_is_a_named_config_error(name, key, default):
    """`--param beta=abc` (a string), `=null` or `=true` is a one-line ConfigError, never a TypeError."""
    bad_values = ["abc", None, True]
    if isinstance(default, int):
        bad_values.append(2.5)  # a count or layer number must be whole, not truncated
    for bad in bad_values:
        method = get_method(name, **{key: bad})
        with pytest.raises(ConfigError, match=key):
            method.plan(load_spec("tiny"), 0.5)
            method.select_visual(torch.randn(4, 8, 16), 0.5)
