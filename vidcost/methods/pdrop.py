"""PyramidDrop: FastV-style last-instruction-token ranking repeated at the start of every stage.

Paper: L. Xing et al., "PyramidDrop: Accelerating Your Large Vision-Language Models via Pyramid Visual
Redundancy Reduction" (CVPR 2025, arXiv 2410.17247). Official code: Cooperx521/PyramidDrop,
`LlamaModel.pdrop_forward` and `pdrop_rank_drop` (llava/model/modeling_llama_pdrop.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method
from vidcost.methods.common import check_budget, rank_keep
from vidcost.methods.params import Param
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    from vidcost.spec import ModelSpec

_BISECTION_STEPS = 60  # λ to ~1e-18: far finer than one token changes the schedule


def default_stage_layers(num_layers: int, stages: int = 4) -> tuple[int, ...]:
    """First layers of stages 2..S spread evenly: (8, 16, 24) for 32 layers, (7, 14, 21) for 28."""
    bounds = sorted({round(num_layers * s / stages) for s in range(1, stages)})
    return tuple(b for b in bounds if 1 <= b < num_layers)


def pyramid_counts(total: int, ratio: float, stages: int) -> list[int]:
    """Visual tokens of stages 2..S+1: int(total · ratio^s), at least 1 (`image_token_ratio_list`, floored
    as `pdrop_rank_drop` does with `int(cur_image_token * ratio)`)."""
    counts, previous = [], total
    for stage in range(1, stages + 1):
        previous = min(previous, max(1, int(total * ratio ** stage)))
        counts.append(previous)
    return counts


def pyramid_schedule(num_layers: int, total: int, layers: Sequence[int], ratio: float) -> list[int]:
    """Visual tokens entering each layer when the stage starting at layers[s-1] keeps int(total · ratio^s)."""
    counts = [total] * num_layers
    for layer, count in zip(layers, pyramid_counts(total, ratio, len(layers))):
        counts[layer:] = [count] * (num_layers - layer)
    return counts


def mean_fraction(num_layers: int, total: int, layers: Sequence[int], ratio: float) -> float:
    return sum(pyramid_schedule(num_layers, total, layers, ratio)) / (num_layers * total)


def solve_ratio(num_layers: int, total: int, layers: Sequence[int], budget: float) -> float:
    """The stage ratio λ whose pyramid schedule has the smallest mean visual fraction ≥ `budget`."""
    low, high = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = (low + high) / 2
        low, high = (low, mid) if mean_fraction(num_layers, total, layers, mid) >= budget else (mid, high)
    return high


class PyramidDrop(Method):
    """PyramidDrop (Xing et al. 2025): drop visual tokens in stages inside the LLM, λ per stage.

    The LLM is split into S stages; at the start of stage s+1 (layer `layers[s-1]`) the visual tokens are
    ranked by the attention the last instruction token pays them — computed, as `pdrop_rank_drop` does,
    with *that* layer's own q/k projections on the states entering it (`attention_source = "current"`:
    `self.layers[rank_layer].self_attn` on the output of layer rank_layer − 1), softmax, mean over heads —
    and the top int(N·λ^s) of the original N are kept. Nothing happens before the LLM.

    Budget: the mean visual-token fraction over layers. The paper and its code fix λ = `ratio` = 0.5 and
    spread the stages evenly over the layers (`--layer_list [8,16,24]` of LLaVA's 32 layers → 7/14/21 of
    Qwen2-7B's 28, mean fraction 0.469 with S = 4). Lower (or higher) budgets are reached the way the
    paper's own ablation does (its Table "stages S", λ = 0.5, layers evenly distributed): by the number of
    stages S. vidcost plans the S in [1, L] whose mean fraction is nearest the budget (ties: the larger
    fraction); a budget below what S = L reaches is a ConfigError naming the reachable range.
    An explicit `stages` or `layers` fixes the stage starts instead; λ is then solved (bisection) for the
    smallest mean fraction ≥ the budget — a departure from the paper's fixed λ that the user asked for.

    Parameters (defaults): ratio=0.5 (λ), stages=None (solved from the budget), layers=None (S stages
    spread evenly).
    """

    name: ClassVar[str] = "pdrop"
    position_rule: ClassVar[str] = "renumber"  # pdrop_rank_drop re-lays position_ids after every stage
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("ratio", 0.5, "float", 0.0, 1.0, low_open=True, high_open=True,
              doc="λ: each stage keeps this fraction of the stage before (the paper's 0.5)"),
        Param("stages", None, "int", 1, None, doc="number of stages S (default: nearest the budget); fixing it "
              "solves λ instead"),
        Param("layers", None, "layers", 1, None, doc="first layers of stages 2..S (default: evenly spread); "
              "fixing them solves λ instead"),
    )
    paper: ClassVar[str] = ("Xing et al., PyramidDrop: Accelerating Your Large Vision-Language Models via Pyramid "
                            "Visual Redundancy Reduction, CVPR 2025")
    budget_rule: ClassVar[str] = "nearest"
    attention_need: ClassVar[str] = "last"
    attention_source: ClassVar[str] = "current"

    def _fixed_layers(self, num_layers: int, **params: Any) -> tuple[int, ...] | None:
        """The stage starts the user fixed (through `layers` or `stages`), validated; None if free."""
        if num_layers < 2:
            raise ConfigError(f"pdrop needs at least 2 LLM layers to drop inside the LLM, got {num_layers}")
        p = self.checked_params(**params)
        if p["layers"] is not None:
            for layer in p["layers"]:
                if not 1 <= layer < num_layers:
                    raise ConfigError(f"pdrop parameter layers={list(p['layers'])} must lie in [1, {num_layers - 1}]"
                                      f" for a model of {num_layers} layers")
            return p["layers"]
        if p["stages"] is not None:
            if p["stages"] > num_layers:
                raise ConfigError(f"pdrop parameter stages={p['stages']} exceeds the model's {num_layers} layers")
            return default_stage_layers(num_layers, p["stages"])
        return None

    def stage_layers(self, num_layers: int, total: int, budget: float, **params: Any) -> tuple[int, ...]:
        """The layers at which stages 2..S start for this budget (see the class docstring)."""
        budget = check_budget(budget)
        fixed = self._fixed_layers(num_layers, **params)
        if fixed is not None:
            floor = mean_fraction(num_layers, total, fixed, 0.0)
            if budget < floor:
                raise ConfigError(f"pdrop with stages starting at layers {list(fixed)} of {num_layers} cannot reach "
                                  f"budget {budget}; the lowest mean fraction is {floor:.3f}: raise the budget or "
                                  "start the first stage earlier")
            return fixed
        ratio = self.checked_params(**params)["ratio"]
        options = [default_stage_layers(num_layers, stages) for stages in range(1, num_layers + 1)]
        means = [mean_fraction(num_layers, total, layers, ratio) for layers in options]
        if budget < min(means) - 0.5 / (num_layers * total):
            raise ConfigError(f"pdrop with λ={ratio:g} reaches mean visual fractions [{min(means):.3f}, 1] on this "
                              f"model (1 to {num_layers} stages spread over its layers), not budget {budget}: raise "
                              "the budget, lower --param ratio, or fix --param stages to solve λ")
        best = min(range(len(options)), key=lambda i: (abs(means[i] - budget), -means[i]))
        return options[best]

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """Full until the first stage, then int(N·λ^s) per stage (λ fixed or solved, see the class docstring)."""
        budget = check_budget(budget)
        total, num_layers = spec.num_visual_tokens, spec.num_layers
        fixed = self._fixed_layers(num_layers, **params)  # validate even when nothing is dropped
        if budget >= 1.0:
            return Schedule.constant(num_layers, total, spec.text_tokens, total)
        layers = self.stage_layers(num_layers, total, budget, **params)
        ratio = solve_ratio(num_layers, total, layers, budget) if fixed is not None else \
            self.checked_params(**params)["ratio"]
        return Schedule(tuple(pyramid_schedule(num_layers, total, layers, ratio)), spec.text_tokens, total)

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """Keep the `keep` tokens the last instruction token attends to most (mean over heads), in order."""
        return LayerReduction(keep=rank_keep(context.attention, context.hidden.shape[0], keep, self.name))
