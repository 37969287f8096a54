"""Checks every pruning method must pass — vidcost's registry tests call them, and so can a method's author.

`check_method(method_or_name)` runs a method through the interface the way the runtime does, on
constructed videos (random, static, three scenes), and raises AssertionError naming what failed:

* the plan: a valid Schedule for the model, meeting the budget as the method's `budget_rule` says;
* the selection: positions int64, unique, ascending (unless its `sequence_order` is "method") and in range; as many tokens as the plan's first
  layer (any count ≥ 1 for a `data_dependent_counts` method); segments that partition the frames; groups
  aligned with the tokens;
* the in-LLM stages, driven before every layer where the plan drops (every layer after the first for a
  data-dependent method), with softmax attention rows of the shape the runtime passes: indices unique,
  ascending and in range, exactly the planned count, merged states of the right shape;
* determinism: the same seed gives the same tokens, positions, segments and stages;
* budget 1.0 keeps every token unchanged;
* nothing the method is handed is modified;
* every tensor the method creates is on its input's device: factory calls (`torch.arange`, `zeros`,
  `full`, `tensor`, `randperm`, …) without an explicit `device=` fail while the method runs
  (`factory_device_guard`), which on a CPU-only machine is how a CUDA-only failure shows up.

Usage in a plug-in's own tests::

    from vidcost.methods.testing import check_method
    def test_my_method():
        check_method("path/to/my_method.py:MyMethod")
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from vidcost.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from vidcost.methods.base import Method, SelectionResult
    from vidcost.schedule import Schedule

# Functions that create a tensor from nothing and so choose a device: each must be told which.
FACTORY_FUNCTIONS = ("arange", "range", "zeros", "ones", "full", "empty", "tensor", "as_tensor", "rand", "randn",
                     "randint", "randperm", "linspace", "logspace", "eye", "empty_strided", "scalar_tensor",
                     "tril_indices", "triu_indices")


def factory_device_guard() -> contextlib.AbstractContextManager:
    """A context in which a tensor factory called without `device=` raises AssertionError.

    `torch.as_tensor(t)` of a tensor and `torch.tensor(t)` keep t's device only by accident of the input,
    so they too must say where the result goes. The `*_like` functions inherit their input's device and
    are allowed.
    """
    import torch
    from torch.overrides import TorchFunctionMode

    factories = {getattr(torch, name) for name in FACTORY_FUNCTIONS if hasattr(torch, name)}

    class _Guard(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
            kwargs = kwargs or {}
            if func in factories and kwargs.get("device") is None:
                raise AssertionError(f"torch.{func.__name__} called without device=: the tensor lands on the "
                                     "default device, not the input's (pass device=features.device)")
            return func(*args, **kwargs)

    return _Guard()


# Tensor operations that read a device value on the host (a synchronisation on a GPU), or whose output
# size depends on the data (nonzero, masked_select, unique: also a synchronisation).
HOST_READS = ("__bool__", "__int__", "__float__", "__index__", "item", "tolist", "cpu", "numpy", "nonzero",
              "masked_select", "unique", "argwhere")


# Factories that copy Python data (a list, a number) from the host to the device: no synchronisation, but
# a transfer per call on a GPU, which a timed window should not hold either.
HOST_COPIES = ("tensor", "as_tensor")


class HostReadCounter:
    """Counts the host reads (see `HOST_READS`) made while it is active: `with HostReadCounter() as reads:`,
    and apart from them (`copies`) the host-to-device copies of Python data (`HOST_COPIES`).

    On a CPU these cost nothing, but each read is a device synchronisation on a GPU; a loop over tokens must
    make none, so a test asserts that the count does not grow with the number of picks.

    Args:
        when: count only while this returns True (e.g. inside a timer's windows); default always.
    """

    def __init__(self, when: Callable[[], bool] | None = None) -> None:
        self.calls: list[str] = []
        self.copies: list[str] = []
        self._when = when or (lambda: True)
        self._mode: Any = None

    def __enter__(self) -> "HostReadCounter":
        from torch.overrides import TorchFunctionMode

        calls, copies, when = self.calls, self.copies, self._when

        class _Count(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
                name = getattr(func, "__name__", "")
                if not when():
                    pass
                elif name in HOST_READS or (name in ("__getitem__", "__setitem__") and _has_bool_index(args)):
                    calls.append(name)
                elif name in HOST_COPIES and args and _is_python_data(args[0]):
                    copies.append(name)
                return func(*args, **(kwargs or {}))

        self._mode = _Count()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)

    @property
    def count(self) -> int:
        return len(self.calls)


def _is_python_data(value: Any) -> bool:
    """Data a factory copies from the host: a number, or a non-empty list / tuple (transformers' caches start
    from `torch.tensor([])`, which moves nothing)."""
    import torch

    if isinstance(value, torch.Tensor):
        return False
    return not (isinstance(value, (list, tuple)) and len(value) == 0)


def _has_bool_index(args: Any) -> bool:
    """A boolean-mask index (its result size depends on the data)."""
    import torch

    index = args[1] if len(args) > 1 else None
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(item, torch.Tensor) and item.dtype == torch.bool for item in items)


def resolve(method_or_name: "Method | str", **params: Any) -> "Method":
    """A method instance from an instance, a registered name, `module:Class` or `file.py:Class`."""
    from vidcost.methods import get_method
    from vidcost.methods.base import Method

    if isinstance(method_or_name, Method):
        return method_or_name
    return get_method(method_or_name, **params)


def constructed_video(kind: str, frames: int = 6, per_frame: int = 16, dim: int = 12,
                      seed: int = 0) -> "torch.Tensor":
    """[T, P, D] features: "random", "static" (one frame repeated, tiny noise) or "scenes" (three scenes)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(frames, per_frame, dim, generator=generator)
    if kind == "static":
        return (noise[:1].expand(frames, -1, -1) + 0.01 * noise.flip(0)).contiguous()
    if kind == "scenes":
        scene_of = torch.arange(frames) * 3 // frames
        return (torch.randn(3, per_frame, dim, generator=generator)[scene_of] + 0.05 * noise).contiguous()
    if kind != "random":
        raise ValueError(f"unknown video kind {kind!r}; use random, static or scenes")
    return noise


def spec_for(features: "torch.Tensor", model: str = "tiny") -> Any:
    """The model spec whose frames and tokens per frame match [T, P, D] features."""
    from vidcost.spec import load_spec

    return load_spec(model, frames=features.shape[0], tokens_per_frame=features.shape[1])


def check_plan(method: "Method", spec: Any, budget: float) -> "Schedule":
    """The plan, checked against the spec and the method's budget rule."""
    from vidcost.methods.common import keep_count
    from vidcost.schedule import Schedule

    schedule = method.plan(spec, budget)
    assert isinstance(schedule, Schedule), f"{method.name}.plan returned {type(schedule).__name__}, not a Schedule"
    total = spec.num_visual_tokens
    assert schedule.num_layers == spec.num_layers, f"plan has {schedule.num_layers} layers, the model {spec.num_layers}"
    assert schedule.initial_visual_tokens == total, f"plan starts from {schedule.initial_visual_tokens}, not {total}"
    rule = method.budget_rule
    counts = schedule.visual_tokens
    if rule == "all":
        assert set(counts) == {total}, f"{method.name} prunes nothing, yet plans {schedule}"
    elif rule == "mean":
        assert abs(schedule.mean_visual_fraction - budget) <= 1.0 / total + 1e-9, \
            f"mean fraction {schedule.mean_visual_fraction:.4f} is not the budget {budget}: {schedule}"
    elif rule == "after_first_stage":
        assert counts[-1] == keep_count(total, budget), f"after the drop {counts[-1]} ≠ round(budget·N): {schedule}"
    elif rule == "nearest":
        assert 1 <= min(counts) and max(counts) <= total, str(schedule)
    elif len(set(counts)) == 1:  # "kept", pre-LLM only
        assert counts[0] == keep_count(total, budget), f"{counts[0]} tokens ≠ round(budget·N): {schedule}"
    else:  # "kept" with later in-LLM stages: at least the budget enters the LLM
        assert counts[0] >= keep_count(total, budget), f"{counts[0]} tokens enter the LLM, below the budget: {schedule}"
    if budget >= 1.0 and rule != "all":
        assert counts == (total,) * spec.num_layers, f"budget 1.0 must keep every token: {schedule}"
    return schedule


def check_positions(positions: "torch.Tensor", total: int, what: str, count: int | None = None,
                    ascending: bool = True) -> None:
    """int64, [K], the planned count, in range, unique — and ascending unless the method keeps its own order."""
    import torch

    assert positions.dtype == torch.long, f"{what} are {positions.dtype}, not int64"
    assert positions.dim() == 1, f"{what} are shaped {tuple(positions.shape)}, not [K]"
    if count is not None:
        assert positions.numel() == count, f"{positions.numel()} {what}, the plan says {count}"
    if ascending:
        assert bool((positions[1:] > positions[:-1]).all()), f"{what} must be unique and ascending"
    else:
        assert torch.unique(positions).numel() == positions.numel(), f"{what} must be unique"
    if positions.numel():
        assert 0 <= int(positions.min()) and int(positions.max()) < total, f"{what} outside [0, {total})"


def check_selection(method: "Method", features: "torch.Tensor", budget: float, query: "torch.Tensor | None",
                    seed: int, schedule: "Schedule") -> "SelectionResult":
    """`select_visual`'s answer, checked (the base pass-through for methods that work only in the LLM)."""
    import torch

    frames, per_frame, dim = features.shape
    total = frames * per_frame
    if not method.selects_before_llm():
        assert schedule.visual_tokens[0] == total, f"{method.name} drops tokens at layer 0 but has no select_visual"
    originals = features.clone(), None if query is None else query.clone()
    with factory_device_guard():
        result = method.select_visual(features, budget, query=query, seed=seed)
    assert torch.equal(features, originals[0]), "select_visual modified its features"
    assert query is None or torch.equal(query, originals[1]), "select_visual modified its query"
    planned = None if method.data_dependent_counts else schedule.visual_tokens[0]
    check_positions(result.positions, total, "selected positions", planned,
                    ascending=method.sequence_order == "position")
    count = result.positions.numel()
    assert count >= 1, "the selection kept no token"
    assert tuple(result.tokens.shape) == (count, dim), f"tokens shaped {tuple(result.tokens.shape)}, not [{count}, {dim}]"
    assert result.tokens.device == features.device and result.positions.device == features.device, \
        "the selection's tensors are not on the features' device"
    if result.segments:  # contiguous, in order, covering 0..T-1
        starts, ends = [a for a, _ in result.segments], [b for _, b in result.segments]
        assert starts[0] == 0 and ends[-1] == frames - 1, f"segments {result.segments} do not cover the frames"
        assert all(a <= b for a, b in result.segments), f"empty segment in {result.segments}"
        assert all(s == e + 1 for s, e in zip(starts[1:], ends[:-1])), f"segments {result.segments} not contiguous"
    if result.groups is not None:
        assert tuple(result.groups.shape) == (count,), f"groups shaped {tuple(result.groups.shape)}, not [{count}]"
    return result


@dataclass(frozen=True)
class StageAnswer:
    """One in-LLM stage as `drive_llm_stages` ran it."""

    layer: int
    keep: "torch.Tensor"
    hidden: "torch.Tensor | None"


def drive_llm_stages(method: "Method", schedule: "Schedule", selection: "SelectionResult", frames: int,
                     per_frame: int, seed: int, heads: int = 4, question_rows: int = 3) -> list[StageAnswer]:
    """Run the in-LLM stages as the runtime does, with random softmax attention; check every answer.

    Returns:
        the stages that changed the tokens, in layer order.
    """
    import torch

    from vidcost.methods.base import LayerContext

    answers: list[StageAnswer] = []
    generator = torch.Generator().manual_seed(seed + 1)
    rows = {"last": 1, "question": question_rows, "after_video": question_rows + 2}.get(method.attention_need)
    hidden, positions, groups, state = selection.tokens, selection.positions, selection.groups, selection.state
    for layer in range(1, schedule.num_layers):
        planned, count = schedule.visual_tokens[layer], hidden.shape[0]
        if not (planned < count or (method.data_dependent_counts and layer > 0)):
            continue
        logits = torch.randn(rows or 1, heads, count + 5, generator=generator)
        attention = logits.softmax(-1)[..., :count].contiguous() if rows else None  # [Q, H, N]
        context = LayerContext(layer=layer, hidden=hidden, positions=positions, attention=attention,
                               num_frames=frames, tokens_per_frame=per_frame, seed=seed,
                               segments=selection.segments, groups=groups, state=state,
                               num_layers=schedule.num_layers)
        before = hidden.clone(), positions.clone(), None if attention is None else attention.clone()
        with factory_device_guard():
            reduction = method.reduce_in_llm(context, min(planned, count))
        assert torch.equal(hidden, before[0]) and torch.equal(positions, before[1]), "reduce_in_llm modified its input"
        assert attention is None or torch.equal(attention, before[2]), "reduce_in_llm modified the attention"
        kept = reduction.keep.numel()
        expected = kept if method.data_dependent_counts and 1 <= kept <= count else planned
        check_positions(reduction.keep, count, f"kept indices before layer {layer}", expected)
        if reduction.hidden is not None:
            assert tuple(reduction.hidden.shape) == (kept, hidden.shape[1]), "merged states of the wrong shape"
        state = reduction.state
        if kept == count and reduction.hidden is None:
            continue
        answers.append(StageAnswer(layer, reduction.keep, reduction.hidden))
        hidden = reduction.hidden if reduction.hidden is not None else hidden[reduction.keep]
        positions = positions[reduction.keep]
        groups = None if groups is None else groups[reduction.keep]
    return answers


def check_deterministic(method: "Method", features: "torch.Tensor", budget: float, query: "torch.Tensor | None",
                        seed: int, schedule: "Schedule") -> None:
    """The same seed gives the same selection and the same in-LLM stages."""
    import torch

    frames, per_frame, _ = features.shape
    first = check_selection(method, features, budget, query, seed, schedule)
    again = check_selection(method, features, budget, query, seed, schedule)
    assert torch.equal(first.positions, again.positions), "the same seed selected different positions"
    assert torch.equal(first.tokens, again.tokens), "the same seed gave different tokens"
    assert first.segments == again.segments, "the same seed gave different segments"
    stages = [drive_llm_stages(method, schedule, first, frames, per_frame, seed) for _ in range(2)]
    assert len(stages[0]) == len(stages[1]), "the same seed ran a different number of in-LLM stages"
    for a, b in zip(*stages):
        assert torch.equal(a.keep, b.keep), f"the same seed kept different tokens before layer {a.layer}"
        assert (a.hidden is None) == (b.hidden is None) and (a.hidden is None or torch.equal(a.hidden, b.hidden))


def check_full_budget(method: "Method", features: "torch.Tensor", query: "torch.Tensor | None", seed: int) -> None:
    """Budget 1.0 keeps every token, unchanged, at every layer."""
    import torch

    frames, per_frame, dim = features.shape
    total = frames * per_frame
    schedule = check_plan(method, spec_for(features), 1.0)
    result = check_selection(method, features, 1.0, query, seed, schedule)
    assert torch.equal(result.positions, torch.arange(total)), "budget 1.0 must keep every position"
    assert torch.equal(result.tokens, features.reshape(total, dim)), "budget 1.0 must keep the tokens unchanged"
    assert not drive_llm_stages(method, schedule, result, frames, per_frame, seed), "budget 1.0 pruned in the LLM"


def run_case(method: "Method", features: "torch.Tensor", budget: float, query: "torch.Tensor | None",
             seed: int) -> bool:
    """Plan, select and drive the stages of one case; False when the method refuses the budget (ConfigError)."""
    frames, per_frame, _ = features.shape
    try:
        schedule = check_plan(method, spec_for(features), budget)
        selection = check_selection(method, features, budget, query, seed, schedule)
        drive_llm_stages(method, schedule, selection, frames, per_frame, seed)
    except ConfigError as err:
        # A budget or a one-frame video the method cannot reach must say so by name.
        assert "budget" in str(err) or frames == 1, f"{method.name} refused with an unclear error: {err}"
        return False
    return True


def check_method(method_or_name: "Method | str", *, budgets: Sequence[float] = (0.5, 0.25),
                 kinds: Sequence[str] = ("random", "static", "scenes"), seed: int = 0, **params: Any) -> None:
    """Every check of this module on constructed videos; raises AssertionError naming what failed.

    Args:
        method_or_name: a `Method` instance, a registered name, `module:Class` or `path/file.py:Class`.
        budgets: budgets to try besides 1.0.
        kinds: constructed videos to try (see `constructed_video`).
        seed: seed of the videos, the questions and the method.
        params: method parameters (only with a name).
    """
    import torch

    method = resolve(method_or_name, **params)
    for kind in kinds:
        features = constructed_video(kind, seed=seed)
        query = torch.randn(3, features.shape[-1], generator=torch.Generator().manual_seed(seed + 7))
        check_full_budget(method, features, query, seed)
        for budget in budgets:
            if run_case(method, features, budget, query, seed):
                check_deterministic(method, features, budget, query, seed, check_plan(method, spec_for(features), budget))
    check_bad_budgets(method)


def check_bad_budgets(method: "Method") -> None:
    """A budget outside (0, 1] is a ConfigError quoting it."""
    from vidcost.spec import load_spec

    for budget in (0.0, -0.5, 1.5):
        try:
            method.plan(load_spec("tiny"), budget)
        except ConfigError as err:
            assert repr(budget) in str(err), f"the error for budget {budget} does not quote it: {err}"
        else:
            raise AssertionError(f"{method.name} planned budget {budget}, which is outside (0, 1]")

