"""StreamingLLM: keep the first few (attention-sink) visual tokens and the most recent ones.

Paper: G. Xiao et al., "Efficient Streaming Language Models with Attention Sinks" (ICLR 2024):
a rolling KV cache that always keeps the initial "attention sink" tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.methods.base import Method, SelectionResult, check_budget
from vidcost.methods.common import check_features, check_whole_number, keep_count, pre_llm_plan
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec


class StreamingLLM(Method):
    """StreamingLLM (Xiao et al. 2024) applied to the video tokens, as the video-pruning papers compare it.

    Of the T·P visual tokens, the first `sink_tokens` (the attention sinks) and the most recent
    K − `sink_tokens` are kept, K = round(budget·T·P) (at least 1). When K ≤ `sink_tokens`, the first K
    are kept. It needs no features, attention or query: the choice depends only on positions, which
    makes it the cheapest method and the recency-only baseline (HieraVid Table 1).

    Budget: the fraction of visual tokens kept, from layer 0 on (a pre-LLM method here; the paper's
    rolling cache is applied once to the whole prefilled video).

    Parameters (defaults): sink_tokens=4 in [0, 1024] — the paper's four initial tokens.
    """

    name: ClassVar[str] = "streamingllm"
    defaults: ClassVar[dict[str, Any]] = {"sink_tokens": 4}

    def _sinks(self, **params: Any) -> int:
        return check_whole_number(self.name, "sink_tokens", self.resolved_params(**params)["sink_tokens"], 0, 1024)

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """round(budget·T·P) visual tokens at every layer."""
        self._sinks(**params)
        return pre_llm_plan(spec, budget)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Keep the sink tokens and the most recent tokens; positions ascend."""
        import torch

        frames, per_frame, dim = check_features(features, self.name)
        total = frames * per_frame
        kept = keep_count(total, check_budget(budget))
        sinks = min(self._sinks(**params), kept)
        positions = torch.cat([torch.arange(sinks), torch.arange(total - (kept - sinks), total)])
        return SelectionResult(tokens=features.reshape(total, dim)[positions].clone(), positions=positions)
