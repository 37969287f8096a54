"""The evaluation backend: lmms-eval answers its requests with vidcost's runtime and methods.

An lmms-eval model named `vidcost` (`vidcost.eval.backend.VidcostLMM`, registered through lmms-eval's
entry-point group `lmms_eval.models` by `manifests()` below) answers each `generate_until` request with the
staged runtime and a pruning method, and stores that request's measured cost (`RequestRecord`) in the
vidcost store — so accuracy and cost come from the same forward pass. `vidcost eval` (`vidcost.eval.runner`)
runs lmms-eval once per (method, budget) of a grid.

Modules: `config` (the backend's `model_args`, checked before anything is built), `prompt` (a request's
video and question → the runtime's `PromptInputs`, through the model directory's own processor), `answer`
(one request: prefill, greedy decode, cost), `record` (the per-request cost record), `backend` (the
lmms-eval class; the only module that imports lmms-eval at import time), `runner` (`vidcost eval`).
"""

from __future__ import annotations

MODEL_ID = "vidcost"


def manifests() -> list:
    """lmms-eval's entry-point payload (`lmms_eval.models.registry_v2.ModelManifest`) for the `vidcost` model."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=MODEL_ID, simple_class_path="vidcost.eval.backend.VidcostLMM")]
