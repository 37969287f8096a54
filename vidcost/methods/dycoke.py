"""DyCoke temporal token merging: in windows of frames, drop tokens that repeat the window's anchor frame.

Paper: K. Tao et al., "DyCoke: Dynamic Compression of Tokens for Fast Video Large Language Models"
(CVPR 2025), its temporal token merging (TTM) module. DyCoke's second part, dynamic KV-cache pruning
during decoding, does not change the prefill and is not modelled. The full text is not among the seeds;
components are cited by name.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.errors import ConfigError
from vidcost.methods.base import Method, SelectionResult, check_budget
from vidcost.methods.common import check_features, check_whole_number, keep_count, sorted_topk, split_budget
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec

_ANCHOR_BONUS = 3.0  # anchor scores are 3 + variability; dissimilarities 1 - cos lie in [0, 2]


def window_bounds(frames: int, window: int, budget: float) -> list[tuple[int, int]]:
    """(first, last) frames of each window; windows widen when the anchors alone exceed the budget.

    With w frames per window the anchors are 1/w of the tokens; at budgets below that DyCoke could not
    keep its anchors, so the window becomes max(w, ⌈1/budget⌉) frames (at most all T frames).
    """
    width = min(frames, max(window, math.ceil(1.0 / budget - 1e-9)))
    return [(start, min(start + width, frames) - 1) for start in range(0, frames, width)]


class DyCoke(Method):
    """DyCoke temporal token merging (Tao et al. 2025): pre-LLM, windows of frames.

    The frames are cut into windows of `window` frames. The first frame of a window is its anchor and is
    kept; in every other frame of the window a token is scored by its cosine dissimilarity to the token at
    the same spatial position in the anchor frame (1 − cos, TTM's similarity) and the most dissimilar are
    kept — tokens that repeat the anchor are redundant and dropped. DyCoke's published TTM
    compares frame pairs inside windows of 4 and prunes a fixed 70 % of the non-anchor tokens; vidcost
    uses the anchor-comparison form of DESIGN §5 and solves for the pruned fraction instead.

    Budget: the fraction of visual tokens kept, K = round(budget·T·P) (at least 1 per window). The free
    ratio (the paper's pruning rate) is solved: each window gets a share of K proportional to its frame
    count (largest-remainder rounding), anchors first. At budgets below 1/window the windows widen to
    ⌈1/budget⌉ frames so the anchors still fit; if a window's share is smaller than one frame (budget <
    1/T), the anchor positions whose content changes most across the window are kept.

    Parameters (defaults): window=4 in [1, 1024] — frames per window (the paper's group of 4).
    """

    name: ClassVar[str] = "dycoke"
    defaults: ClassVar[dict[str, Any]] = {"window": 4}

    def _window(self, **params: Any) -> int:
        return check_whole_number(self.name, "window", self.resolved_params(**params)["window"], 1, 1024)

    def window_counts(self, frames: int, per_frame: int, budget: float, **params: Any) -> tuple[
            list[tuple[int, int]], list[int]]:
        """The windows and the tokens each keeps; the counts sum to round(budget·T·P)."""
        budget = check_budget(budget)
        bounds = window_bounds(frames, self._window(**params), budget)
        total = keep_count(frames * per_frame, budget)
        sizes = [(last - first + 1) * per_frame for first, last in bounds]
        try:
            return bounds, split_budget(total, sizes, sizes)
        except ConfigError as err:
            raise ConfigError(
                f"dycoke at budget {budget} keeps {total} tokens for {len(bounds)} windows of frames; every "
                f"window needs at least one: raise the budget or the window (now {self._window(**params)})"
            ) from err

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """round(budget·T·P) visual tokens at every layer."""
        _, counts = self.window_counts(spec.frames, spec.tokens_per_frame, budget, **params)
        return Schedule.constant(spec.num_layers, sum(counts), spec.text_tokens, spec.num_visual_tokens)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Anchors first, then the tokens most unlike the anchor, per window; positions ascend."""
        import torch

        frames, per_frame, dim = check_features(features, self.name)
        bounds, counts = self.window_counts(frames, per_frame, budget, **params)
        unit = torch.nn.functional.normalize(features.float(), dim=-1)  # [T, P, D]
        anchor_of = torch.tensor([first for first, last in bounds for _ in range(last - first + 1)])
        # TTM: dissimilarity to the same position in the window's anchor frame, [T, P].
        dissimilarity = 1.0 - (unit * unit[anchor_of]).sum(-1)
        picks = []
        for (first, last), count in zip(bounds, counts):  # one vectorised top-k per window
            window_scores = dissimilarity[first:last + 1].clone()  # [w, P]
            # Anchor positions rank by how much they change over the window (used only when count < P).
            window_scores[0] = _ANCHOR_BONUS + window_scores[1:].mean(0) if last > first else _ANCHOR_BONUS
            picks.append(sorted_topk(window_scores.flatten(), count) + first * per_frame)
        positions = torch.cat(picks)
        return SelectionResult(tokens=features.reshape(frames * per_frame, dim)[positions].clone(),
                               positions=positions)
