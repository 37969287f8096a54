"""Small tensor helpers several pruning methods share: budgets to counts, similarities, top-k in order.

torch is imported inside each function so that importing a method module (to plan) stays torch-free.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Sequence

from vidcost.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from vidcost.schedule import Schedule
    from vidcost.spec import ModelSpec


def keep_count(total: int, budget: float, minimum: int = 1) -> int:
    """Tokens kept out of `total` at `budget`: round(budget · total), at least `minimum`, at most `total`."""
    return max(min(total, minimum), min(total, round(budget * total)))


def check_range(method: str, name: str, value: float, low: float, high: float,
                *, low_open: bool = False, high_open: bool = False) -> float:
    """Validate a method parameter; the error names the parameter, the value and the valid range."""
    bracket = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        # e.g. `--param beta=abc` arrives as a string; comparing it would raise a bare TypeError
        raise ConfigError(f"{method} parameter {name}={value!r} must be a number in {bracket}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise ConfigError(f"{method} parameter {name}={value!r} is outside {bracket}")
    return value


def low_precision(tensor: "torch.Tensor") -> bool:
    """bf16 / fp16: where a method runs its official arithmetic in the tensor's own dtype, so that rounding
    (and the near-ties it decides) matches the official code; float32 keeps vidcost's float32 paths."""
    import torch

    return tensor.dtype in (torch.bfloat16, torch.float16)


def check_budget(budget: float) -> float:
    """Validate a budget: the kept fraction of visual tokens, in (0, 1]."""
    if not isinstance(budget, (int, float)) or not 0.0 < float(budget) <= 1.0:
        raise ConfigError(f"budget {budget!r} is outside (0, 1]; pass the kept fraction, e.g. --budget 0.25")
    return float(budget)


def check_whole_number(method: str, name: str, value: Any, low: int, high: int) -> int:
    """Validate an integer method parameter (a count of frames or tokens) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{method} parameter {name}={value!r} must be a whole number in [{low}, {high}]")
    return int(check_range(method, name, value, low, high))


def pre_llm_plan(spec: "ModelSpec", budget: float) -> "Schedule":
    """The plan of a method that prunes only before the LLM: round(budget·T·P) visual tokens at every layer."""
    from vidcost.schedule import Schedule

    kept = keep_count(spec.num_visual_tokens, check_budget(budget))
    return Schedule.constant(spec.num_layers, kept, spec.text_tokens, spec.num_visual_tokens)


def check_features(features: "torch.Tensor", method: str) -> tuple[int, int, int]:
    """Validate pre-LLM input [T, P, D] and return (T, P, D)."""
    if features.dim() != 3 or min(features.shape) < 1:
        raise ConfigError(
            f"{method} expects visual features shaped [frames, tokens_per_frame, dim], got {tuple(features.shape)}")
    frames, per_frame, dim = features.shape
    return frames, per_frame, dim


def cosine_matrix(a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    """Pairwise cosine similarity: [..., N, D] × [..., M, D] → [..., N, M] (computed in float32)."""
    import torch

    a32 = torch.nn.functional.normalize(a.float(), dim=-1)
    b32 = torch.nn.functional.normalize(b.float(), dim=-1)
    return a32 @ b32.transpose(-1, -2)


def sorted_topk(scores: "torch.Tensor", k: int) -> "torch.Tensor":
    """Indices of the k largest scores (ties to the lower index, deterministic), ascending."""
    import torch

    if k >= scores.numel():
        return torch.arange(scores.numel(), device=scores.device)
    # A stable descending sort makes ties deterministic, unlike torch.topk.
    order = torch.sort(scores.float(), descending=True, stable=True).indices[:k]
    return torch.sort(order).values


def official_topk(scores: "torch.Tensor", k: int) -> "torch.Tensor":
    """Ascending indices of the k largest scores, ties broken as the official code breaks them.

    In bf16 / fp16 many scores tie, and the official code's `torch.topk` picks among them its own way
    (deterministic on one device): vidcost calls the same `topk` on the same values. In float32 ties are
    rare and go to the lower index (`sorted_topk`).
    """
    import torch

    if not low_precision(scores) or k >= scores.numel():
        return sorted_topk(scores, k)
    return torch.sort(torch.topk(scores, k).indices).values


def split_budget(total: int, weights: Sequence[float], capacities: Sequence[int], minimum: int = 1) -> list[int]:
    """Split `total` tokens over groups in proportion to `weights`, each in [minimum, capacity].

    Largest-remainder rounding, so the parts sum to exactly `total` whenever the bounds allow it.

    Raises:
        ConfigError: `total` is less than `minimum` per group (a group would get no token) or more than
            the groups hold.
    """
    groups = len(weights)
    if total < minimum * groups:
        raise ConfigError(
            f"budget of {total} tokens cannot give each of {groups} groups at least {minimum}; "
            "raise the budget or use fewer segments")
    if total > sum(capacities):
        raise ConfigError(f"budget of {total} tokens exceeds the {sum(capacities)} tokens available")
    shares = [minimum] * groups
    remaining = total - minimum * groups
    active = [i for i in range(groups) if capacities[i] > shares[i]]
    # Water-filling: hand out the rest by weight, capping groups at their capacity and re-spreading.
    while remaining > 0 and active:
        weight_sum = sum(max(weights[i], 0.0) for i in active) or float(len(active))
        ideal = {i: remaining * ((max(weights[i], 0.0) / weight_sum) if weight_sum else 1 / len(active))
                 for i in active}
        grants = {i: min(math.floor(ideal[i]), capacities[i] - shares[i]) for i in active}
        leftover = remaining - sum(grants.values())
        by_remainder = sorted(active, key=lambda i: (-(ideal[i] - math.floor(ideal[i])), i))
        for i in by_remainder:
            if leftover == 0:
                break
            if shares[i] + grants[i] < capacities[i]:
                grants[i] += 1
                leftover -= 1
        for i, grant in grants.items():
            shares[i] += grant
        remaining = total - sum(shares)
        active = [i for i in active if shares[i] < capacities[i]]
    return shares


def last_query_scores(attention: "torch.Tensor | None", num_tokens: int, keep: int, method: str) -> "torch.Tensor":
    """Importance of each visual token: the attention the query row(s) pay it, mean over heads and rows.

    FastV (Chen et al. 2024) ranks by the last token's attention averaged over heads; PyramidDrop and
    FrameFusion's pruning stage reuse that score.

    Args:
        attention: [Q, H, N] attention from Q query rows and H heads to the N visual tokens.
        num_tokens: N, the visual tokens (hidden states) the stage holds.
        keep: how many of them the stage keeps.
        method: the calling method's name, for the error message.

    Returns:
        [N] scores: float32, or — attention in bf16 / fp16 (`attention_precision` "model") — the head mean
        in that dtype, as the official `torch.mean` of its attention map rounds it.

    Raises:
        ConfigError: `keep` is outside [1, N], or the runtime passed no attention, one of the wrong rank,
            or one over a different number of tokens.
    """
    if not 1 <= keep <= num_tokens:
        raise ConfigError(f"{method} was asked to keep {keep} of {num_tokens} tokens; keep must be in [1, N]")
    if attention is None or attention.dim() != 3:
        shape = None if attention is None else tuple(attention.shape)
        raise ConfigError(
            f"{method} ranks tokens by last-query attention shaped [queries, heads, tokens], got {shape}; "
            "run it through a runtime that honours attention_need='last'")
    scores = attention.mean(dim=(0, 1)) if low_precision(attention) else attention.float().mean(dim=(0, 1))
    if scores.numel() != num_tokens:
        raise ConfigError(
            f"{method} got attention over {scores.numel()} tokens for {num_tokens} hidden states; they must match")
    return scores


def rank_keep(attention: "torch.Tensor | None", num_tokens: int, keep: int, method: str) -> "torch.Tensor":
    """Ascending indices of the `keep` tokens with the highest last-query attention (`official_topk`)."""
    return official_topk(last_query_scores(attention, num_tokens, keep, method), keep)
