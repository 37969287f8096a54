"""SinkWindow: a pre-LLM crop to the first visual tokens and the most recent ones — not StreamingLLM.

StreamingLLM (G. Xiao et al., "Efficient Streaming Language Models with Attention Sinks", ICLR 2024) as
the Video-LLM papers run it (FrameFusion's baseline `replace_Qwen2_streamingllm`, thu-nics/FrameFusion,
which HieraVid Tables 1–2 compare against): every token of the sequence passes every layer, each
query attends only to the sequence's first `init_num` tokens (the attention sinks, system-prompt text)
and a window of the last `length_rate·n − init_num` tokens, and the KV cache keeps that window. Its
saving is inside the attention alone; the projections and MLP see all n tokens, so in the paper
convention (HieraVid Eq. 12) it can never cost less than the linear share of a layer — 0.707 of
vanilla for LLaVA-Video-7B (64 × 169 tokens), 0.806 for LLaVA-OneVision-7B (32 × 196). The published
ratios (0.752 / 0.707 / 0.650 at 30 / 20 / 10 % on LLaVA-Video-7B, 0.75 / 0.723 / 0.659 on LLaVA-OV-7B)
fall below that floor, so no sinks-plus-window configuration reproduces them, and a windowed attention
is not a schedule of visual tokens that vidcost's runtime and cost model express. vidcost therefore
does not offer a method named `streamingllm`: the published StreamingLLM rows stay unjoined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.methods.base import Method, SelectionResult
from vidcost.methods.common import check_budget, check_features, keep_count, pre_llm_plan
from vidcost.methods.params import Param
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec


class SinkWindow(Method):
    """Keep the first `sink_tokens` visual tokens and the most recent ones, before the LLM.

    Of the T·P visual tokens, the first `sink_tokens` and the last K − `sink_tokens` are kept,
    K = round(budget·T·P) (at least 1); when K ≤ `sink_tokens`, the first K. It looks at positions
    only (no features, attention or query): the recency baseline, costing what any pre-LLM method at
    that budget costs. It is StreamingLLM's token choice applied once to the video before the prefill,
    not StreamingLLM (see the module docstring for why).
    """

    name: ClassVar[str] = "sinkwindow"
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("sink_tokens", 4, "int", 0, 1024, doc="leading visual tokens always kept (StreamingLLM's 4 sinks)"),
    )
    paper: ClassVar[str] = "after Xiao et al., Efficient Streaming Language Models with Attention Sinks, ICLR 2024"

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """round(budget·T·P) visual tokens at every layer."""
        self.checked_params(**params)
        return pre_llm_plan(spec, budget)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Keep the sink tokens and the most recent tokens; positions ascend."""
        import torch

        sinks = self.checked_params(**params)["sink_tokens"]
        frames, per_frame, dim = check_features(features, self.name)
        total = frames * per_frame
        kept = keep_count(total, check_budget(budget))
        sinks = min(sinks, kept)
        device = features.device
        positions = torch.cat([torch.arange(sinks, device=device),
                               torch.arange(total - (kept - sinks), total, device=device)])
        return SelectionResult(tokens=features.reshape(total, dim)[positions].clone(), positions=positions)
