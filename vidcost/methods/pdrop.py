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


OFFICIAL_STAGES = 4  # `--layer_list [8,16,24]`: four stages of LLaVA-1.5's 32 layers
OFFICIAL_RATIO = 0.5  # `--image_token_ratio_list [0.5,0.25,0.125]`: λ = 0.5
MIN_LAST_STAGE = 2  # a last stage of a single visual token is no plan anyone deploys


class PyramidDrop(Method):
    """PyramidDrop (Xing et al. 2025): drop visual tokens in stages inside the LLM, λ per stage.

    The LLM is split into S stages; at the start of stage s+1 (layer `layers[s-1]`) the visual tokens are
    ranked by the attention the last instruction token pays them — computed, as `pdrop_rank_drop` does,
    with *that* layer's own q/k projections on the states entering it (`attention_source = "current"`:
    `self.layers[rank_layer].self_attn` on the output of layer rank_layer − 1), softmax, mean over heads —
    and the top int(N·λ^s) of the original N are kept. Nothing happens before the LLM. After each stage
    the sequence is renumbered from 0 (`position_rule` "renumber", as `pdrop_rank_drop` lays it out).

    Stages: the official scripts' `--layer_list [8,16,24]` of LLaVA-1.5's 32 layers, scaled to the model's
    depth (7/14/21 of Qwen2-7B's 28); `stages` spreads S stages evenly instead, `layers` names them.

    Budget: the mean visual-token fraction over layers. The official code fixes λ = 0.5, which on those
    stages is one budget (0.469 on 28 layers; a budget that rounds to it at 3 decimals plans exactly the
    official configuration). At any other budget vidcost solves λ (bisection: the smallest mean fraction ≥
    the budget) — vidcost's variant, named so in `vidcost methods`. An explicit `ratio` fixes λ, and the
    budget must then be the mean fraction it gives. A budget below what the stages reach with at least
    `MIN_LAST_STAGE` tokens in the last stage (the first stage keeps everything: ≈ 0.27 with the official
    layers) is a ConfigError naming the reachable range.

    Parameters (defaults): ratio=None (λ solved for the budget; 0.5 is the official), stages=None (the
    official 4), layers=None (the official layer list scaled to the model).
    """

    name: ClassVar[str] = "pdrop"
    position_rule: ClassVar[str] = "renumber"  # pdrop_rank_drop re-lays position_ids after every stage
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("ratio", None, "float", 0.0, 1.0, low_open=True, high_open=True,
              doc="λ: each stage keeps this fraction of the stage before (default: solved for the budget, "
                  "vidcost's variant; the official 0.5 is the plan at its own budget, 0.469 on 28 layers)"),
        Param("stages", None, "int", 1, None, doc="number of stages S spread evenly (default: the official 4)"),
        Param("layers", None, "layers", 1, None, doc="first layers of stages 2..S (default: the official "
              "[8,16,24] of 32 layers, scaled to the model)"),
    )
    paper: ClassVar[str] = ("Xing et al., PyramidDrop: Accelerating Your Large Vision-Language Models via Pyramid "
                            "Visual Redundancy Reduction, CVPR 2025")
    budget_rule: ClassVar[str] = "mean"
    official: ClassVar[str] = ("λ = 0.5 on the layers [8, 16, 24] scaled to the model: the budget the plan quotes for "
                               "it (0.469 on 28 layers); any other budget solves λ — vidcost's variant")
    attention_need: ClassVar[str] = "last"
    attention_source: ClassVar[str] = "current"
    attention_precision: ClassVar[str] = "model"  # softmax(…, float32).to(query_states.dtype), then the head mean

    def stage_layers(self, num_layers: int, **params: Any) -> tuple[int, ...]:
        """The layers at which stages 2..S start: `layers`, `stages` evenly spread, or the official four."""
        if num_layers < 2:
            raise ConfigError(f"pdrop needs at least 2 LLM layers to drop inside the LLM, got {num_layers}")
        p = self.checked_params(**params)
        if p["layers"] is not None:
            for layer in p["layers"]:
                if not 1 <= layer < num_layers:
                    raise ConfigError(f"pdrop parameter layers={list(p['layers'])} must lie in [1, {num_layers - 1}]"
                                      f" for a model of {num_layers} layers")
            return tuple(p["layers"])
        stages = p["stages"] if p["stages"] is not None else OFFICIAL_STAGES
        if stages > num_layers:
            raise ConfigError(f"pdrop parameter stages={stages} exceeds the model's {num_layers} layers")
        return default_stage_layers(num_layers, stages)

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """Full until the first stage, then int(N·λ^s) per stage, λ solved for the budget (or fixed)."""
        budget = check_budget(budget)
        total, num_layers = spec.num_visual_tokens, spec.num_layers
        layers = self.stage_layers(num_layers, **params)  # validated even when nothing is dropped
        if budget >= 1.0:
            return Schedule.constant(num_layers, total, spec.text_tokens, total)
        ratio = self.checked_params(**params)["ratio"]
        if ratio is not None:
            mean = mean_fraction(num_layers, total, layers, ratio)
            if abs(mean - budget) > 0.5 / num_layers:
                raise ConfigError(f"pdrop with λ={ratio:g} on stages starting at layers {list(layers)} keeps a mean "
                                  f"visual fraction of {mean:.3f}, not budget {budget}: pass --budget {mean:.3f}, "
                                  "or drop --param ratio to solve λ for the budget")
        else:
            lowest = (MIN_LAST_STAGE / total) ** (1.0 / len(layers)) if layers else 1.0
            floor = mean_fraction(num_layers, total, layers, lowest)
            if budget < floor:
                raise ConfigError(f"pdrop on stages starting at layers {list(layers)} of {num_layers} reaches mean "
                                  f"visual fractions [{floor:.3f}, 1] (its first stage keeps every token, its last "
                                  f"at least {MIN_LAST_STAGE}), not budget {budget}: raise the budget, or start "
                                  "the first stage earlier with --param layers=")
            official = mean_fraction(num_layers, total, layers, OFFICIAL_RATIO)
            # the official configuration's own budget, as it is quoted (0.469): exactly the official plan
            ratio = OFFICIAL_RATIO if round(official, 3) == round(budget, 3) else solve_ratio(
                num_layers, total, layers, budget)
        return Schedule(tuple(pyramid_schedule(num_layers, total, layers, ratio)), spec.text_tokens, total)

    def official_budget(self, spec: "ModelSpec") -> float | None:
        """λ = 0.5 on the official layers: the mean fraction it keeps, as the plan quotes it (3 decimals)."""
        p = self.checked_params()
        if p["ratio"] not in (None, OFFICIAL_RATIO) or p["stages"] is not None or p["layers"] is not None:
            return None
        layers = self.stage_layers(spec.num_layers)
        return round(mean_fraction(spec.num_layers, spec.num_visual_tokens, layers, OFFICIAL_RATIO), 3)

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """Keep the `keep` tokens the last instruction token attends to most (mean over heads), in order."""
        return LayerReduction(keep=rank_keep(context.attention, context.hidden.shape[0], keep, self.name))
