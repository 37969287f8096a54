"""Baseline methods: `vanilla` (no pruning), `uniform` (spatial pooling to the budget), `random`.

They are the reference points every real method is compared against: vanilla is the cost being cut,
uniform and random cut it without looking at the content. All three work only before the LLM, so their
plans are constant over layers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from vidcost.methods.base import Method, SelectionResult
from vidcost.methods.common import check_budget, check_features, keep_count, pre_llm_plan
from vidcost.methods.params import Param
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec


class Vanilla(Method):
    """No pruning: every visual token enters every layer, whatever the budget."""

    name = "vanilla"
    parameters: tuple[Param, ...] = ()
    paper = "the unpruned model"
    budget_rule = "all"

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        check_budget(budget)
        self.checked_params(**params)
        return Schedule.constant(spec.num_layers, spec.num_visual_tokens, spec.text_tokens)


def frame_grid(tokens_per_frame: int) -> tuple[int, int]:
    """The (rows, cols) grid of a frame's tokens: square when P is a square number, else one row."""
    side = math.isqrt(tokens_per_frame)
    return (side, side) if side * side == tokens_per_frame else (1, tokens_per_frame)


def pooled_grid(tokens_per_frame: int, budget: float) -> tuple[int, int]:
    """The pooled (rows, cols) per frame whose size is closest to budget · P (ties: the squarer grid).

    Pooling a grid can only reach products rows × cols, so the kept count is the nearest such product
    to the budget, not always round(budget · P); the plan reports the count pooling really gives.
    """
    rows, cols = frame_grid(tokens_per_frame)
    target = keep_count(tokens_per_frame, budget)
    best: tuple[int, int, int, int] | None = None  # (miss, squareness, rows, cols)
    for r in range(1, rows + 1):
        c = min(cols, max(1, round(target / r)))
        candidate = (abs(r * c - target), abs(r - c), r, c)
        if best is None or candidate < best:
            best = candidate
    assert best is not None  # rows >= 1, so the loop ran
    return best[2], best[3]


class Uniform(Method):
    """Spatial average pooling of each frame's token grid to the budget (content-blind).

    Each frame's R×C grid (8×8 for the tiny preset, 14×14 for LLaVA-OV) is adaptive-average-pooled to
    r×c cells with r·c closest to budget · P (see `pooled_grid`); every frame keeps the same count. A
    pooled token takes the RoPE position of the original token at its cell's centre.
    """

    name = "uniform"
    parameters: tuple[Param, ...] = ()
    paper = "content-blind baseline: adaptive average pooling of each frame's grid"
    budget_rule = "nearest"

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        check_budget(budget)
        self.checked_params(**params)
        rows, cols = pooled_grid(spec.tokens_per_frame, budget)
        return Schedule.constant(spec.num_layers, spec.frames * rows * cols, spec.text_tokens,
                                 spec.num_visual_tokens)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        import torch

        check_budget(budget)
        self.checked_params(**params)
        frames, per_frame, dim = check_features(features, self.name)
        rows, cols = frame_grid(per_frame)
        out_rows, out_cols = pooled_grid(per_frame, budget)
        grid = features.reshape(frames, rows, cols, dim).permute(0, 3, 1, 2)  # [T, D, R, C]
        pooled = torch.nn.functional.adaptive_avg_pool2d(grid.float(), (out_rows, out_cols))  # [T, D, r, c]
        tokens = pooled.permute(0, 2, 3, 1).reshape(frames * out_rows * out_cols, dim).to(features.dtype)
        device = features.device
        centre_rows = _cell_centres(rows, out_rows, device)
        centre_cols = _cell_centres(cols, out_cols, device)
        in_frame = (centre_rows[:, None] * cols + centre_cols[None, :]).reshape(-1)  # [r·c] ascending
        positions = (torch.arange(frames, device=device)[:, None] * per_frame + in_frame[None, :]).reshape(-1)
        return SelectionResult(tokens=tokens, positions=positions)


def _cell_centres(size: int, cells: int, device: "torch.device") -> "torch.Tensor":
    """Centre index of each adaptive-pooling cell [floor(i·size/cells), ceil((i+1)·size/cells))."""
    import torch

    cell = torch.arange(cells, device=device)  # arithmetic on the device: no list copied from the host
    starts = torch.div(cell * size, cells, rounding_mode="floor")
    ends = -torch.div(-(cell + 1) * size, cells, rounding_mode="floor")  # ceil
    return torch.div(starts + ends - 1, 2, rounding_mode="floor")


class RandomSelection(Method):
    """Keep round(budget · T·P) visual tokens drawn uniformly at random over the whole video (seeded)."""

    name = "random"
    parameters: tuple[Param, ...] = ()
    paper = "content-blind baseline: a seeded uniform sample"

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        self.checked_params(**params)
        return pre_llm_plan(spec, budget)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        import torch

        check_budget(budget)
        self.checked_params(**params)
        frames, per_frame, dim = check_features(features, self.name)
        total = frames * per_frame
        # The draw is made on the CPU on purpose: the same seed keeps the same tokens on every device.
        generator = torch.Generator(device="cpu").manual_seed(seed)
        chosen = torch.randperm(total, generator=generator, device="cpu")[:keep_count(total, budget)]
        positions = torch.sort(chosen).values.to(features.device)
        return SelectionResult(tokens=features.reshape(total, dim)[positions], positions=positions)
