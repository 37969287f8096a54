"""PyramidDrop: FastV-style last-query attention ranking repeated at several LLM depths.

Paper: L. Xing et al., "PyramidDrop: Accelerating Your Large Vision-Language Models via Pyramid Visual
Redundancy Reduction" (arXiv 2410.17247, 2024): its staged drop with a per-stage ratio λ. The full text
is not among the seeds, so the method is cited by component names rather than equation numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method, check_budget
from vidcost.methods.common import check_range, rank_keep
from vidcost.schedule import Schedule

if TYPE_CHECKING:

    from vidcost.spec import ModelSpec

PAPER_RATIO = 0.5  # PDrop's λ; the default stages move earlier rather than solve for a smaller λ
_BISECTION_STEPS = 60  # λ to ~1e-18: far finer than one token changes the schedule


def default_stage_layers(num_layers: int, stages: int = 4) -> tuple[int, ...]:
    """Boundaries of `stages` equal-depth stages: (8, 16, 24) for 32 layers, (7, 14, 21) for 28."""
    bounds = sorted({round(num_layers * s / stages) for s in range(1, stages)})
    return tuple(b for b in bounds if 1 <= b < num_layers)


def pyramid_counts(total: int, ratio: float, stages: int) -> list[int]:
    """Visual tokens after each of `stages` drops: round(total · ratio^s), at least 1 (PDrop's λ^s)."""
    counts, previous = [], total
    for stage in range(1, stages + 1):
        previous = min(previous, max(1, round(total * ratio ** stage)))
        counts.append(previous)
    return counts


def pyramid_schedule(num_layers: int, total: int, layers: Sequence[int], ratio: float) -> list[int]:
    """Visual tokens entering each layer when stage s (starting at layers[s-1]) keeps total · ratio^s."""
    counts = [total] * num_layers
    for layer, count in zip(layers, pyramid_counts(total, ratio, len(layers))):
        counts[layer:] = [count] * (num_layers - layer)
    return counts


def solve_ratio(num_layers: int, total: int, layers: Sequence[int], budget: float) -> float:
    """The stage ratio λ whose pyramid schedule has mean visual fraction closest to `budget` from above.

    The mean fraction grows monotonically with λ, so bisection finds the smallest λ meeting the budget.
    """
    target = budget * num_layers * total
    low, high = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = (low + high) / 2
        if sum(pyramid_schedule(num_layers, total, layers, mid)) >= target:
            high = mid
        else:
            low = mid
    return high


class PyramidDrop(Method):
    """PyramidDrop (PDrop; Xing et al. 2024): drop visual tokens in stages inside the LLM.

    The LLM is split into stages; at the start of stage s the visual tokens are ranked by the attention
    the last instruction token pays them (mean over heads, as in FastV) and the top ``λ^s`` of the
    original count are kept (each stage keeps λ times the tokens of the stage before).
    Nothing happens before the LLM: `select_visual` passes all T·P tokens through.

    Budget: the mean visual-token fraction over layers (the "average retention" at which PDrop is compared
    with single-stage methods). The paper fixes λ = 0.5; vidcost instead solves for λ (bisection on the
    rounded schedule) so that the plan's mean fraction is the smallest one ≥ the budget. Rounding: stage
    s keeps round(T·P·λ^s) tokens, at least 1.

    Parameters (defaults):
        layers: first layer of stages 2..4; None (default) → four equal-depth stages as in the paper
            (8/16/24 of LLaVA-1.5's 32 layers; 7/14/21 of Qwen2-7B's 28). When the budget is below what
            these stages reach with λ ≥ 0.5 (the paper's λ), the default stages move earlier: stages
            (f, f+s, f+2s) with s = (L-f)/3 and the latest f ≥ 1 for which the solved λ is ≥ 0.5 (f = 1
            if none). Explicit layers are never moved (a ConfigError says which budget they can reach).
    """

    name: ClassVar[str] = "pdrop"
    defaults: ClassVar[dict[str, Any]] = {"layers": None}
    attention_need: ClassVar[str] = "last"

    def _layers(self, num_layers: int, **params: Any) -> tuple[tuple[int, ...], bool]:
        """The validated stage layers and whether they are the default ones."""
        if num_layers < 2:
            raise ConfigError(f"pdrop needs at least 2 LLM layers to drop inside the LLM, got {num_layers}")
        layers = self.resolved_params(**params)["layers"]
        if layers is None:
            return default_stage_layers(num_layers), True
        if isinstance(layers, int):
            layers = (layers,)
        if isinstance(layers, str):
            layers = [part for part in layers.replace(",", " ").split() if part]
        try:
            parsed = tuple(int(layer) for layer in layers)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"pdrop parameter layers={layers!r} must be layer numbers, e.g. (8, 16, 24)") from err
        if not parsed or list(parsed) != sorted(set(parsed)):
            raise ConfigError(f"pdrop parameter layers={layers!r} must be non-empty and strictly ascending")
        for layer in parsed:
            check_range("pdrop", "layers", layer, 1, num_layers - 1)
        return parsed, False

    def stage_layers(self, num_layers: int, total: int, budget: float, **params: Any) -> tuple[int, ...]:
        """The layers at which stages start for this budget (see the class docstring)."""
        budget = check_budget(budget)
        layers, defaulted = self._layers(num_layers, **params)
        if defaulted and (not self._reachable(num_layers, total, layers, budget)
                          or solve_ratio(num_layers, total, layers, budget) < PAPER_RATIO):
            layers = self._earlier_layers(num_layers, total, budget, layers[0])
        if not self._reachable(num_layers, total, layers, budget):
            floor = sum(pyramid_schedule(num_layers, total, layers, 0.0)) / (num_layers * total)
            raise ConfigError(
                f"pdrop with stages at layers {list(layers)} of {num_layers} cannot reach budget {budget}; the "
                f"lowest mean fraction is {floor:.3f}: raise the budget or start the first stage earlier")
        return layers

    def _earlier_layers(self, num_layers: int, total: int, budget: float, first: int) -> tuple[int, ...]:
        """Stages (f, f+s, f+2s), s = (L-f)/3, with the latest first layer f whose solved λ ≥ 0.5."""
        candidates = []
        for start in range(first, 0, -1):
            step = (num_layers - start) / 3
            layers = tuple(sorted({start, *(min(num_layers - 1, round(start + i * step)) for i in (1, 2))}))
            candidates.append(layers)
            if (self._reachable(num_layers, total, layers, budget)
                    and solve_ratio(num_layers, total, layers, budget) >= PAPER_RATIO):
                return layers
        return candidates[-1]

    @staticmethod
    def _reachable(num_layers: int, total: int, layers: Sequence[int], budget: float) -> bool:
        return bool(layers) and sum(pyramid_schedule(num_layers, total, layers, 0.0)) <= budget * num_layers * total

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """Visual tokens per layer: full until the first stage, then round(N·λ^s) with λ solved for the budget."""
        budget = check_budget(budget)
        total, num_layers = spec.num_visual_tokens, spec.num_layers
        self._layers(num_layers, **params)  # validate even when nothing is dropped
        if budget >= 1.0:
            return Schedule.constant(num_layers, total, spec.text_tokens, total)
        layers = self.stage_layers(num_layers, total, budget, **params)
        ratio = solve_ratio(num_layers, total, layers, budget)
        return Schedule(tuple(pyramid_schedule(num_layers, total, layers, ratio)), spec.text_tokens, total)

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """Keep the `keep` tokens the last query attends to most (mean over heads), as PDrop ranks."""
        return LayerReduction(keep=rank_keep(context.attention, context.hidden.shape[0], keep, self.name))
