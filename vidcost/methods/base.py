"""The pruning-method interface every method implements, and the results it hands back.

A method has two faces:

* `plan(spec, budget, **params) -> Schedule` — cheap and analytic: how many visual tokens enter each
  LLM layer at this budget. No torch.
* The real selection on tensors:
  - `select_visual(features [T, P, D], budget, query=None, seed=0, **params) -> SelectionResult` runs
    before the LLM on the projected, pooled visual features. It returns exactly
    `plan(...).visual_tokens[0]` tokens.
  - `reduce_in_llm(context, keep) -> LayerReduction` runs between decoder layers for methods with in-LLM
    stages; the runtime calls it before every layer where the planned visual count drops, with `keep`
    the planned count for that layer, and the method must keep exactly that many.

A method whose counts depend on the data (`data_dependent_counts = True`: FrameFusion merges only the
pairs above its similarity threshold) plans an *estimate*; its `select_visual` may return any count
≥ 1, the runtime calls `reduce_in_llm` before every layer after the first with `keep` the planned count
as a target, the stage keeps any count in [1, N] (all N: nothing happens there), and the executed
schedule records what happened. Such a method carries its own per-run state (`SelectionResult.state`
→ `LayerContext.state` → `LayerReduction.state` → the next stage), never on the instance.

Parameters are declared once (`Method.parameters`, see `vidcost.methods.params`): defaults, valid
ranges and validation all come from that declaration.

Budget: the fraction of visual tokens kept, as the method's paper reports it (DESIGN §5); how a
method's plan meets it is its `budget_rule`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from vidcost.errors import ConfigError
from vidcost.methods.common import check_budget, check_features
from vidcost.methods.params import Param, params_from_defaults

if TYPE_CHECKING:  # torch is imported only where tensors are touched
    import torch

    from vidcost.schedule import Schedule
    from vidcost.spec import ModelSpec

AttentionNeed = Literal["none", "last", "question", "after_video"]
AttentionSource = Literal["previous", "current"]
# How that attention is computed: "rope_causal" — as the layer attends (RoPE on q and k, the causal mask,
# float32 scores); "plain" — q·kᵀ/√d without RoPE and without a mask, in the model's dtype with a float32
# softmax cast back (PruneVid's `attn_weights_wo_pos` in its LlamaAttention).
AttentionForm = Literal["rope_causal", "plain"]
# The arithmetic of that attention (and of the method's reductions of it): "float32" — q·kᵀ and the softmax
# in float32, ties ranked to the lower index (vidcost's default: fewer ties); "model" — as the official code
# computes it in the model's dtype: q·kᵀ·scale rounded to that dtype, the softmax in float32 rounded back
# (transformers' eager attention, which FastV's and PyramidDrop's rankings read), the head mean in that
# dtype too, and `torch.topk`'s own choice among the ties that rounding makes — the official's on the same
# device. In a float32 model both are the same.
AttentionPrecision = Literal["float32", "model"]
# How the surviving sequence is numbered for RoPE — the method's declaration, following its official code:
#   "original" — every kept token keeps its id in the full layout, with gaps where tokens were dropped, and
#       decoding continues after the full layout (FastV, FrameFusion, HieraVid: their code prunes inside a
#       forward whose position ids were laid out for the whole prompt);
#   "compact" — the sequence after a pre-LLM selection is numbered 0…n′−1 and decoding continues at n′, as
#       when the official code simply feeds the LLM a shorter sequence (DivPrune replaces LLaVA's
#       `encode_images`, DyCoke's merge and PruneVid's pre-LLM stage run before the prompt is laid out);
#   "renumber" — compact, and again after every in-LLM stage: the layers after stage s see 0…n_s−1 and a
#       decode step's position there is n_s + step (the official PyramidDrop: `pdrop_rank_drop` lays the
#       kept sequence out with `torch.arange`, and `pdrop_forward` subtracts each stage's dropped count
#       from the decode position ids at that stage's layer).
# M-RoPE families (Qwen-VL) keep each kept token's (t, h, w) ids under either rule: a subset of patches
# dropped irregularly is no grid the processor could lay out as a shorter video, and the (t, h, w) ids of
# the patches that remain are the equivalent that keeps where and when each one was.
PositionRule = Literal["original", "compact", "renumber"]
# Where an in-LLM stage acts: "layer_input" — between layers, on the output of the layer before the drop;
# "after_attention" — inside that layer, after its attention and residual and before its MLP (FrameFusion's
# patched `Qwen2DecoderLayer.forward` calls it there): that layer caches every token, its MLP sees the kept.
InLLMStageAt = Literal["layer_input", "after_attention"]
# The order of the kept tokens in the sequence: "position" — ascending original position (checked);
# "method" — the order the method returns them in, as its official code lays them out (DyCoke appends each
# frame's kept tokens in ascending similarity), unique but not ascending.
SequenceOrder = Literal["position", "method"]
# How a plan meets the budget: "kept" — round(budget·T·P) enter the LLM (at least that many when later
# stages prune inside it); "mean" — the mean visual fraction over layers equals the budget (within one
# token); "after_first_stage" — round(budget·T·P) after the in-LLM drop (FastV); "all" — nothing is
# pruned (vanilla); "nearest" — the method reaches only some budgets (whole pooling grids, a per-frame
# count, a number of stages) and plans the reachable one nearest the budget, a named error outside its
# reachable range.
BudgetRule = Literal["kept", "mean", "after_first_stage", "all", "nearest"]


@dataclass(frozen=True)
class SelectionResult:
    """What a pre-LLM selection lets into the LLM.

    Attributes:
        tokens: [K, D] kept (or merged) visual tokens, in the order of `positions`.
        positions: [K] int64 original flat index in T·P of each kept / representative token, unique;
            ascending unless the method's `sequence_order` is "method" (its official order). The tokens
            enter the LLM in this order, numbered as the method's `position_rule` says.
        segments: (first_frame, last_frame) inclusive, for methods that segment the video; else empty.
            The runtime hands them to the method's in-LLM stages (`LayerContext.segments`).
        groups: [K] int64 group id of each kept token, for a method whose in-LLM stage works per group
            (PruneVid: one group per segment's static tokens and per frame's dynamic tokens); None
            otherwise. The runtime keeps it aligned with the tokens still in the sequence
            (`LayerContext.groups`).
        state: the method's per-run state for its in-LLM stages (`data_dependent_counts` methods), handed
            back as `LayerContext.state`; None otherwise.
    """

    tokens: "torch.Tensor"
    positions: "torch.Tensor"
    segments: tuple[tuple[int, int], ...] = ()
    groups: "torch.Tensor | None" = None
    state: Any = None

    def __str__(self) -> str:
        return f"SelectionResult({self.tokens.shape[0]} tokens, {len(self.segments)} segments)"


@dataclass(frozen=True)
class LayerContext:
    """What the runtime hands an in-LLM stage before decoder layer `layer`.

    Attributes:
        layer: index of the decoder layer about to run on the reduced tokens.
        hidden: [N, D] hidden states of the visual tokens currently in the sequence (the output of
            layer `layer - 1`), ascending by position.
        positions: [N] original flat index in T·P of each current visual token.
        attention: [Q, H, N] softmax attention (over all keys, causal) that Q text query rows pay to the
            N visual keys, computed from layer `layer - 1`'s q/k projections; Q = 1 (the last token) for
            `attention_need == "last"`, Q = the question tokens after the video for "question", every row
            after the visual tokens for "after_video"; None for "none"; computed as `attention_form` says,
            float32 or — `attention_precision` "model" — in the model's dtype. Never an n×n matrix.
        num_frames: T.
        tokens_per_frame: P.
        seed: the run's seed, for methods with a random choice.
        segments: the segments the method's pre-LLM selection reported (`SelectionResult.segments`), or
            empty. They travel with the run, never on the method instance.
        groups: [N] int64 group id of each current visual token (`SelectionResult.groups`, restricted
            to the tokens still present), or None.
        state: the per-run state the previous stage returned (`SelectionResult.state` or
            `LayerReduction.state`), or None.
        num_layers: L, the model's decoder layers (0: not given).
    """

    layer: int
    hidden: "torch.Tensor"
    positions: "torch.Tensor"
    attention: "torch.Tensor | None"
    num_frames: int
    tokens_per_frame: int
    seed: int = 0
    segments: tuple[tuple[int, int], ...] = ()
    groups: "torch.Tensor | None" = None
    state: Any = None
    num_layers: int = 0


@dataclass(frozen=True)
class DecodeContext:
    """What the runtime hands a decode-time stage at one greedy decode step.

    Attributes:
        step: the decode step (0: the step after the first generated token).
        attention: [H, Nv] attention the current token pays the Nv visual rows of the KV cache at layer
            `decode_layer − 1` (softmax over every cached key, RoPE applied, as that layer attends): float32,
            or in the model's dtype under `attention_precision` "model".
        state: what the previous step's `DecodeReduction` returned (None at step 0).
    """

    step: int
    attention: "torch.Tensor"
    state: Any = None


@dataclass(frozen=True)
class DecodeReduction:
    """A decode-time stage's answer for one step.

    Attributes:
        keep: [K] int64 indices into the Nv visual cache rows the layers from `decode_layer` on attend to at
            this step (the cache itself keeps every row), or None for all of them.
        state: handed to the next step's `DecodeContext`.
    """

    keep: "torch.Tensor | None"
    state: Any = None


@dataclass(frozen=True)
class LayerReduction:
    """An in-LLM stage's answer.

    Attributes:
        keep: [K] int64 indices into the current N visual tokens, ascending.
        hidden: [K, D] replacement hidden states for the kept tokens (merged averages), or None to keep
            the kept tokens' own states.
        state: the per-run state for the next stage (`data_dependent_counts` methods), or None.
        finished: this run needs no further in-LLM stage of the method (`data_dependent_counts` methods):
            the runtime stops calling it — no attention row, no selection window — at the later layers.
    """

    keep: "torch.Tensor"
    hidden: "torch.Tensor | None" = None
    state: Any = None
    finished: bool = False


@dataclass
class Method:
    """Base class of a pruning method. Subclasses set `name`, `defaults`, and override the stages.

    Attributes:
        name: registry name.
        parameters: the declared parameters (`Param`: default, valid range, one-line doc); `defaults` is
            derived from them. A subclass may give only `defaults` (a plug-in's shortcut): its values are
            then not range-checked.
        defaults: parameter name → default.
        paper: the paper the method follows (authors, title, venue), for `vidcost methods`.
        official: where the method's budget meets its official configuration, for a method whose official
            code has no budget of its own (vidcost solves one of its ratios): the budget — or parameters —
            that reproduce the official setting, every other budget being vidcost's variant; "" otherwise.
        budget_rule: how the plan meets the budget (see `BudgetRule`).
        data_dependent_counts: the plan's counts are an estimate and the selections decide (see the
            module docstring).
        attention_need: which query rows an in-LLM stage needs ("none", "last", "question", "after_video").
        attention_form: how that attention is computed (see `AttentionForm`).
        attention_precision: in which dtype (see `AttentionPrecision`).
        attention_source: whose q/k projections give that attention for a stage before layer K:
            "previous" — layer K−1's, on its input (FastV ranks by the attention map of the layer before
            the prune); "current" — layer K's own, on the states entering it, before it runs
            (PyramidDrop ranks inside the layer that drops).
        position_rule: how the surviving sequence is numbered for RoPE (see `PositionRule`).
        sequence_order: the order of the kept tokens in the sequence (see `SequenceOrder`).
        in_llm_stage_at: where the in-LLM stage acts (see `InLLMStageAt`).
    """

    name: ClassVar[str] = ""
    parameters: ClassVar[tuple[Param, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    paper: ClassVar[str] = ""
    official: ClassVar[str] = ""
    budget_rule: ClassVar[BudgetRule] = "kept"
    data_dependent_counts: ClassVar[bool] = False
    attention_need: ClassVar[AttentionNeed] = "none"
    attention_source: ClassVar[AttentionSource] = "previous"
    attention_form: ClassVar[AttentionForm] = "rope_causal"
    attention_precision: ClassVar[AttentionPrecision] = "float32"
    position_rule: ClassVar[PositionRule] = "original"
    sequence_order: ClassVar[SequenceOrder] = "position"
    in_llm_stage_at: ClassVar[InLLMStageAt] = "layer_input"
    params: dict[str, Any] = field(default_factory=dict)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attribute, allowed in (("position_rule", PositionRule), ("sequence_order", SequenceOrder),
                                   ("attention_need", AttentionNeed), ("attention_form", AttentionForm),
                                   ("attention_precision", AttentionPrecision),
                                   ("in_llm_stage_at", InLLMStageAt)):
            if getattr(cls, attribute) not in get_args(allowed):  # a typo would silently mean the default
                raise ConfigError(f"method {cls.__name__}: {attribute} {getattr(cls, attribute)!r} is not one of "
                                  f"{list(get_args(allowed))}")
        # One declaration: `parameters` gives `defaults`; a `defaults`-only class gets unchecked declarations.
        if "parameters" in cls.__dict__:
            cls.defaults = {p.name: p.default for p in cls.parameters}
        elif "defaults" in cls.__dict__:
            cls.parameters = params_from_defaults(cls.defaults)

    def checked_params(self, **overrides: Any) -> dict[str, Any]:
        """`resolved_params` with every value validated against its declaration (`Param.check`)."""
        merged = self.resolved_params(**overrides)
        for param in self.parameters:
            merged[param.name] = param.check(self.name, merged[param.name])
        return merged

    @classmethod
    def stage(cls) -> str:
        """Where the method works: "before the LLM", "inside the LLM", "before and inside the LLM" or "none"."""
        inside = cls.reduce_in_llm is not Method.reduce_in_llm
        if cls.selects_before_llm():
            return "before and inside the LLM" if inside else "before the LLM"
        return "inside the LLM" if inside else "none"

    def resolved_params(self, **overrides: Any) -> dict[str, Any]:
        """Defaults updated with `self.params` then `overrides`; unknown names are an error."""
        merged = {**self.defaults, **self.params, **{k: v for k, v in overrides.items() if v is not None}}
        unknown = sorted(set(merged) - set(self.defaults))
        if unknown:
            raise ConfigError(
                f"Unknown parameter(s) {unknown} for method '{self.name}'; valid: {sorted(self.defaults)}")
        return merged

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> "Schedule":
        """Visual and text tokens entering each LLM layer at this budget."""
        raise NotImplementedError

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Pre-LLM selection on [T, P, D] features; `query` is [Q, D] embeddings of the question's own
        tokens (the user's question, without the chat template around it), or None.

        This default is for methods that work only inside the LLM: every token enters it (positions
        0..T·P−1). The runtime skips the call for such methods rather than timing a copy.
        """
        import torch


        check_budget(budget)
        self.checked_params(**params)
        frames, per_frame, dim = check_features(features, self.name)
        return SelectionResult(tokens=features.reshape(frames * per_frame, dim).clone(),
                               positions=torch.arange(frames * per_frame, dtype=torch.long, device=features.device))

    @classmethod
    def selects_before_llm(cls) -> bool:
        """Whether the method has a pre-LLM stage of its own (it overrides `select_visual`)."""
        return cls.select_visual is not Method.select_visual

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """In-LLM stage: keep exactly `keep` of the current visual tokens."""
        raise NotImplementedError(f"method '{self.name}' has no in-LLM stage")

    def official_budget(self, spec: "ModelSpec") -> float | None:
        """The budget at which this method's plan is its official configuration on `spec`, for a method whose
        official code has no budget (see `official`); None when every budget is the method's own, or the
        official one depends on the video."""
        return None

    def decode_layer(self, num_layers: int) -> int | None:
        """The first layer whose decode-time attention the method restricts (`reduce_in_decode`), or None
        (the default): the method leaves decoding alone."""
        return None

    def reduce_in_decode(self, context: DecodeContext) -> DecodeReduction:
        """Decode-time stage, once per decode step: the visual cache rows layers ≥ `decode_layer` attend to."""
        raise NotImplementedError(f"method '{self.name}' has no decode-time stage")


