"""Model building: seeded shape-only weights, dtypes, devices, local weights."""

from __future__ import annotations

import pytest
import torch

from vidcost.errors import ConfigError, ProfilingError
from vidcost.runtime import StagedRuntime, build_inputs, build_model
from vidcost.runtime.model import resolve_device, resolve_dtype
from vidcost.methods import get_method
from vidcost.spec import load_spec

SPEC = load_spec("tiny", frames=2)


def _weights(loaded):
    return torch.cat([p.detach().float().flatten()[:1000] for p in loaded.model.parameters()])


def test_shape_only_weights_are_seeded():
    a, b, c = build_model(SPEC, seed=1), build_model(SPEC, seed=1), build_model(SPEC, seed=2)
    assert torch.equal(_weights(a), _weights(b))
    assert not torch.equal(_weights(a), _weights(c))
    norms = [p for n, p in a.model.named_parameters() if "norm" in n and n.endswith("weight")]
    assert norms and all(bool((p == 1).all()) for p in norms)
    std = a.model.model.language_model.layers[0].mlp.up_proj.weight.std().item()
    assert 0.015 < std < 0.025
    assert a.model.config.text_config.hidden_size == SPEC.hidden_size
    assert a.source == "shape-only" and a.dtype == "float32"


def test_bfloat16_build_keeps_rope_buffers_in_float32():
    loaded = build_model(SPEC, dtype="bfloat16")
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    assert loaded.model.model.language_model.rotary_emb.inv_freq.dtype == torch.float32
    inputs = build_inputs(loaded)
    result = StagedRuntime(loaded).prefill(inputs, get_method("vanilla"), 1.0)
    assert torch.isfinite(result.logits).all()


def test_dtype_and_device_validation():
    assert resolve_dtype(None, "cpu") == "float32"
    assert resolve_dtype(None, "cuda:0") == "bfloat16"
    with pytest.raises(ConfigError, match="unknown dtype 'fp8'"):
        resolve_dtype("fp8", "cpu")
    with pytest.raises(ConfigError, match="float16 is not supported on CPU"):
        resolve_dtype("float16", "cpu")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_cuda_device_index_is_checked(monkeypatch):
    """With two CUDA devices (faked): cuda:1 exists, cuda:2 does not, cuda:x is not a device."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == "cuda:0" and resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ProfilingError, match="--device cuda:2 does not exist: .* 2 visible .* cuda:0 to cuda:1"):
        resolve_device("cuda:2")
    for bad in ("cuda:x", "cuda1", "cuda:"):
        with pytest.raises(ConfigError, match=f"unknown device '{bad}'"):
            resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_a_profiling_error():
    with pytest.raises(ProfilingError, match="CUDA is not available"):
        build_model(SPEC, device="cuda")


def test_local_weights_round_trip(tmp_path):
    original = build_model(SPEC, seed=4)
    original.model.save_pretrained(tmp_path)
    loaded = build_model(SPEC, model_path=str(tmp_path))
    assert loaded.source == str(tmp_path) and loaded.tokenizer is None
    inputs = build_inputs(original)
    a = StagedRuntime(original).prefill(inputs, get_method("vanilla"), 1.0)
    b = StagedRuntime(loaded).prefill(inputs, get_method("vanilla"), 1.0)
    torch.testing.assert_close(a.logits, b.logits)


def test_model_path_without_config_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="has no config.json"):
        build_model(SPEC, model_path=str(tmp_path))


@pytest.mark.gpu
def test_builds_on_cuda():
    loaded = build_model(SPEC, device="cuda")
    assert loaded.device == "cuda:0" and loaded.dtype == "bfloat16"
    result = StagedRuntime(loaded).prefill(build_inputs(loaded), get_method("uniform"), 0.25)
    assert result.executed == result.planned
