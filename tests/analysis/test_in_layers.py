"""analysis/in_layers.py's recorder: what the runtime hands each stage of a method, with the runtime untouched.

The replays need the authors' repositories (not downloaded by the test suite); the recorder they stand on
is vidcost's own and tested here: a stage's record is what the runtime ran, and the runtime is as it was
after recording.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ANALYSIS = Path(__file__).resolve().parents[2] / "analysis"


@pytest.fixture(scope="module")
def in_layers():
    sys.path.insert(0, str(ANALYSIS))
    try:
        import in_layers
    finally:
        sys.path.pop(0)
    return in_layers


@pytest.fixture(scope="module")
def bench(in_layers):
    return in_layers.build_bench("float32", frames=2, per_frame=16, init_std=0.0625, seed=0)


def test_a_stage_record_is_what_the_runtime_ran(in_layers, bench):
    from vidcost.runtime import prefill as prefill_module

    originals = prefill_module.query_attention, prefill_module.decode_attention
    method, stages = in_layers.run_method(bench, "pdrop", 0.5)
    layers = [stage for stage in stages if stage.kind == "layer"]
    planned = method.plan(bench.inputs.spec.method_view(), 0.5).visual_tokens
    assert [stage.index for stage in layers] == [7, 14, 21]  # the official [8, 16, 24] of 32, on 28 layers
    for stage in layers:
        seq, new = stage.data["seq"], stage.data["new"]
        assert stage.data["target"] == planned[stage.index] == new.num_visual < seq.num_visual
        layer, layer_input = stage.data["source"]
        assert layer is bench.lm.layers[stage.index]  # "current": the dropping layer's own q/k
        assert torch.equal(layer_input, seq.hidden)
        assert set(new.visual_positions.tolist()) <= set(seq.visual_positions.tolist())
        assert stage.data["context"].attention.shape == (1, 8, seq.num_visual)
    # the runtime and the method are as they were
    assert (prefill_module.query_attention, prefill_module.decode_attention) == originals
    assert "_reduce" not in vars(bench.runtime) and "reduce_in_llm" not in vars(method)


def test_decode_steps_are_recorded_with_the_keys_they_ranked(in_layers, bench):
    method, stages = in_layers.run_method(bench, "dycoke", 0.6, decode_steps=3)
    decode = [stage for stage in stages if stage.kind == "decode"]
    assert [stage.index for stage in decode] == [0, 1, 2]
    kept = stages[0].data["positions"].numel()
    for stage in decode:
        _, (layer, entering, _, keys), _ = stage.data["call"]
        assert layer is bench.lm.layers[method.decode_layer(28) - 1] and entering.shape[1] == 1
        # the layer before's cache: the prompt (text + kept visual) and the tokens generated so far
        assert keys.shape[2] == bench.inputs.spec.text_tokens + kept + stage.index + 1
