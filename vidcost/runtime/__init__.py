"""Runtime: a real Video-LLM prefill (LLaVA-OneVision, Qwen2.5-VL, Qwen2-VL), staged so a pruning method
can act between stages.

Main class: `StagedRuntime` (vision tower → projector / merger → pre-LLM selection → decoder layers one
at a time → first token). `build_model` makes the model (shape-only or local weights), `build_inputs` the
pixels and token ids (synthetic or decoded video). What differs per family is in
`vidcost.runtime.families` (`get_family(name)`). torch and transformers are imported inside.
"""

from vidcost.runtime.inputs import PromptInputs, build_inputs
from vidcost.runtime.model import LoadedModel, build_model
from vidcost.runtime.prefill import STAGES, PrefillResult, StagedRuntime

__all__ = ["STAGES", "LoadedModel", "PrefillResult", "PromptInputs", "StagedRuntime", "build_inputs",
           "build_model"]
