"""The per-operator model's kernel lists against the kernels the installed transformers' real layers dispatch,
and each operator's price (issue #19)."""

from __future__ import annotations

import collections
import dataclasses
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from vidcost.devices import DEVICES, DeviceSpec
from vidcost.operators import (ATTENTION, GEMM, OperatorList, OperatorModel, decoder_layer_kernels, gemm,
                               vision_layer_kernels)
from vidcost.spec import ModelSpec

# Ops that dispatch but launch no kernel (they change a tensor's metadata only).
VIEW_OPS = {"view", "t", "transpose", "unsqueeze", "slice", "expand", "_unsafe_view", "select", "as_strided",
            "permute", "squeeze", "alias", "detach", "split", "unbind", "reshape"}
GEMM_OPS = {"mm", "addmm", "bmm"}


class KernelRecorder(TorchDispatchMode):
    """Every op a forward dispatches: its name, and for GEMMs the (m, n, k) and batch it ran."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels: list[str] = []
        self.host_ops = 0
        self.gemms: list[tuple[tuple[int, int, int], int]] = []
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in VIEW_OPS:
            self.host_ops += 1
            return out
        self.kernels.append(name)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if name in GEMM_OPS:
            a, b = tensors[-2], tensors[-1]
            batch = a.shape[0] if name == "bmm" else 1
            self.gemms.append(((a.shape[-2], b.shape[-1], a.shape[-1]), batch))
        return out


def _config(cls, heads: int, kv_heads: int, attention: str):
    config = cls(hidden_size=64, intermediate_size=128, num_attention_heads=heads, num_key_value_heads=kv_heads,
                 num_hidden_layers=1, vocab_size=100)
    config._attn_implementation = attention
    return config


def _spec(config) -> ModelSpec:
    return ModelSpec("test", config.hidden_size, config.intermediate_size, 1, config.num_attention_heads,
                     config.num_key_value_heads, config.vocab_size, 10, 1)


def _run_layer(family: str, heads: int, kv_heads: int, attention: str, dtype, rows: int, cached: int):
    """Dispatch one real decoder layer: a prefill of `rows` tokens, or (cached > 0) a decode step of one token
    after `cached` cached ones; returns the recorder, the FLOPs FlopCounterMode saw and the config."""
    from transformers import DynamicCache, LlamaConfig, Qwen2Config
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer, Qwen2RotaryEmbedding

    from vidcost.runtime.prefill import _cache_keyword

    layer_cls, config_cls = {"qwen2": (Qwen2DecoderLayer, Qwen2Config), "llama": (LlamaDecoderLayer, LlamaConfig)}[family]
    config = _config(config_cls, heads, kv_heads, attention)
    torch.manual_seed(0)
    layer = layer_cls(config, 0).eval().to(dtype)
    rotary = Qwen2RotaryEmbedding(config)
    cache = DynamicCache(config=config) if cached else None
    keyword = _cache_keyword(layer)
    with torch.no_grad():
        if cached:
            start = torch.arange(cached)[None]
            first = torch.randn(1, cached, 64, dtype=dtype)
            layer(first, position_ids=start, position_embeddings=tuple(t.to(dtype) for t in rotary(first, start)),
                  use_cache=True, **{keyword: cache})
        x = torch.randn(1, rows, 64, dtype=dtype)
        positions = (torch.arange(rows) + cached)[None]
        embeddings = tuple(t.to(dtype) for t in rotary(x, positions))
        keys = rows + cached
        mask = None
        if attention == "eager":
            mask = torch.zeros(1, 1, rows, keys, dtype=dtype)
            mask[..., cached:] = torch.full((rows, rows), float("-inf"), dtype=dtype).triu(1)
        kwargs = dict(attention_mask=mask, position_ids=positions, position_embeddings=embeddings,
                      use_cache=bool(cached), **{keyword: cache})
        snapshot = [(c.keys.clone(), c.values.clone()) for c in cache.layers] if cached else None
        with KernelRecorder() as recorder:
            layer(x, **kwargs)
        if cached:  # the same step again for the FLOP count, on the same cache
            for c, (k, v) in zip(cache.layers, snapshot):
                c.keys, c.values = k, v
        with FlopCounterMode(display=False) as counter:
            layer(x, **kwargs)
    return recorder, counter.get_total_flops(), config


CASES = [(family, heads, kv, attention, dtype, rows, cached)
         for family in ("qwen2", "llama") for heads, kv in ((4, 2), (4, 4)) for attention in ("sdpa", "eager")
         for dtype in (torch.float32, torch.bfloat16) for rows, cached in ((10, 0), (1, 10))]


@pytest.mark.parametrize("family,heads,kv_heads,attention,dtype,rows,cached", CASES)
def test_decoder_layer_kernels_are_what_the_real_layer_dispatches(family, heads, kv_heads, attention, dtype, rows,
                                                                    cached):
    recorder, counted_flops, config = _run_layer(family, heads, kv_heads, attention, dtype, rows, cached)
    size = torch.finfo(dtype).bits // 8
    listed = decoder_layer_kernels(_spec(config), rows, rows + cached, size, implementation=attention, cached=cached)
    assert len(listed.kernels) == len(recorder.kernels), (
        f"{len(listed.kernels)} listed vs {len(recorder.kernels)} dispatched: "
        f"{collections.Counter(recorder.kernels)}")
    assert listed.host_ops == recorder.host_ops
    listed_gemms = sorted((k.shape, k.batch) for k in listed.kernels if k.kind == GEMM)
    assert listed_gemms == sorted(recorder.gemms)
    # FLOPs: FlopCounterMode counts the GEMMs (eager's QKᵀ and P·V among them) but not the CPU's fused SDPA
    # kernel; the fused kernel's FLOPs are 4 · heads · head_dim per (query, key) pair it computes: with a causal
    # mask only the pairs on and below the diagonal.
    gemm_flops = sum(k.flops for k in listed.kernels if k.kind == GEMM)
    assert gemm_flops == counted_flops
    if attention == "sdpa":
        (fused,) = [k for k in listed.kernels if k.kind == ATTENTION]
        keys = rows + cached
        pairs = rows * (rows + 1) // 2 if rows > 1 else keys
        assert fused.flops == 4 * heads * (64 // heads) * pairs


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_vision_layer_kernels_are_what_siglip_dispatches(attention, dtype):
    from transformers import SiglipVisionConfig
    from transformers.models.siglip.modeling_siglip import SiglipEncoderLayer

    config = SiglipVisionConfig(hidden_size=64, intermediate_size=128, num_attention_heads=4)
    config._attn_implementation = attention
    layer = SiglipEncoderLayer(config).eval().to(dtype)
    frames, patches = 3, 10
    x = torch.randn(frames, patches, 64, dtype=dtype)
    with torch.no_grad():
        with KernelRecorder() as recorder:
            layer(x, attention_mask=None)
        with FlopCounterMode(display=False) as counter:
            layer(x, attention_mask=None)
    size = torch.finfo(dtype).bits // 8
    listed = vision_layer_kernels(frames * patches, patches, frames, frames * patches * patches, 64, 128, 4, size,
                                  implementation=attention)
    assert len(listed.kernels) == len(recorder.kernels)
    assert listed.host_ops == recorder.host_ops
    gemms = [k for k in listed.kernels if k.kind == GEMM]
    assert sorted((k.shape, k.batch) for k in gemms) == sorted(recorder.gemms)
    assert sum(k.flops for k in gemms) == counter.get_total_flops()  # fused attention is not counted there


# The A100's 108 SMs (NVIDIA A100 Tensor Core GPU Architecture whitepaper); no launch or host cost.
A100 = dataclasses.replace(DEVICES["a100-sxm-80gb"], sm_count=108, launch_seconds=0.0, host_op_seconds=0.0)


def test_gemm_waves_quantise_over_the_sms():
    """One more tile than the SMs hold takes a second full wave."""
    model = OperatorModel(A100, "bfloat16")
    k = 4096
    one_wave = model.gemm_compute_seconds(128, 128 * A100.sm_count, k)
    two_waves = model.gemm_compute_seconds(128, 128 * A100.sm_count + 1, k)
    assert two_waves == pytest.approx(2 * one_wave)
    rate = A100.flops_per_second("bfloat16") * A100.gemm_efficiency
    assert one_wave == pytest.approx(2 * 128 * 128 * A100.sm_count * k / rate)


def test_a_few_rows_are_bound_by_the_weight_read():
    model = OperatorModel(A100, "bfloat16")
    kernel = gemm("q_proj", 4, 3584, 3584, 2)
    assert kernel.bytes == (4 * 3584 * 2 + 3584 * 3584) * 2
    assert model.kernel_seconds(kernel) == pytest.approx(kernel.bytes / A100.memory_bandwidth)


def test_a_layer_takes_the_longer_of_device_and_host_time():
    slow_host = dataclasses.replace(A100, host_op_seconds=1e-3)
    spec = ModelSpec("test", 896, 4864, 24, 14, 2, 151936, 196, 8)
    step = decoder_layer_kernels(spec, 1, 1000, 2, cached=999)
    assert OperatorModel(slow_host, "bfloat16").seconds(step) == pytest.approx(
        (len(step.kernels) + step.host_ops) * 1e-3)
    device_time = sum(OperatorModel(A100, "bfloat16").kernel_seconds(k) for k in step.kernels)
    assert OperatorModel(A100, "bfloat16").seconds(step) == pytest.approx(device_time)


def test_launch_floor_prices_tiny_kernels():
    floored = dataclasses.replace(A100, launch_seconds=5e-6)
    tiny = OperatorList((gemm("tiny", 1, 8, 8, 2),))
    assert OperatorModel(floored, "bfloat16").seconds(tiny) == pytest.approx(5e-6)


def test_eager_attention_costs_more_than_fused_at_long_sequences():
    spec = ModelSpec("test", 3584, 18944, 28, 28, 4, 152064, 196, 32)
    fused = OperatorModel(A100, "bfloat16", "sdpa").seconds(decoder_layer_kernels(spec, 6272, 6272, 2))
    eager = OperatorModel(A100, "bfloat16", "eager").seconds(
        decoder_layer_kernels(spec, 6272, 6272, 2, implementation="eager"))
    assert eager > 1.2 * fused


def test_flash_efficiency_rises_with_the_sequence():
    device = dataclasses.replace(A100, flash_efficiency=0.7, flash_half_tokens=500)
    assert device.flash_efficiency_at(500) == pytest.approx(0.35)
    assert device.flash_efficiency_at(16000) > device.flash_efficiency_at(1000) > device.flash_efficiency_at(100)


def test_device_json_round_trips_the_kernel_fields():
    spec = DEVICES["h100-sxm"]
    again = DeviceSpec.from_dict(spec.to_dict())
    for field in ("sm_count", "gemm_efficiency", "flash_efficiency", "flash_half_tokens", "launch_seconds",
                  "host_op_seconds", "l2_bytes", "boost_clock_mhz"):
        assert getattr(again, field) == pytest.approx(getattr(spec, field)), field
    assert again.kernel_source == spec.kernel_source


def test_device_json_refuses_an_efficiency_above_one():
    from vidcost.errors import DataFormatError

    data = {**DEVICES["a100-sxm-80gb"].to_dict(), "gemm_efficiency": 1.5}
    with pytest.raises(DataFormatError, match="gemm_efficiency.*fraction"):
        DeviceSpec.from_dict(data)


@pytest.mark.parametrize("method", ["fastv", "mmgvid", "divprune", "pdrop"])
def test_predictions_fall_with_the_kept_tokens(method):
    from vidcost.predict import predict

    ttfts = [predict("llava-onevision-7b", method=method, budget=b, device_spec="a100").ttft_ms
             for b in (0.9, 0.5, 0.3)]
    assert ttfts[0] > ttfts[1] > ttfts[2]
    assert math.isfinite(ttfts[0])


def test_device_json_round_trips_a_fits_coverage_and_bands():
    bands = {"inside": {"speedup": {"median": 0.02, "max": 0.05, "count": 10.0}}}
    fitted = dataclasses.replace(A100, coverage={"models": ["tiny"], "frames": [4, 16], "methods": ["fastv"]},
                                 held_out=bands)
    again = DeviceSpec.from_dict(fitted.to_dict())
    assert again.coverage == fitted.coverage and again.held_out == bands
    assert again.errors_for("inside") == {"speedup": 0.05} and again.errors_for("other_model") == {}


@pytest.mark.parametrize("held_out", [{"elsewhere": {}}, {"inside": {"speedup": {"median": 0.1}}},
                                      {"inside": {"speedup": {"max": -1}}}, {"inside": [1]}])
def test_device_json_refuses_malformed_bands(held_out):
    from vidcost.errors import DataFormatError

    with pytest.raises(DataFormatError, match="held_out"):
        DeviceSpec.from_dict({**A100.to_dict(), "held_out": held_out})


def test_table_kernel_numbers_are_cited():
    """An efficiency below 1 in the table comes with the paper that measured it."""
    for device in DEVICES.values():
        if device.gemm_efficiency < 1 or device.flash_efficiency < 1:
            assert "arXiv:" in device.kernel_source, device.name
        if device.sm_count:
            assert "SM" in device.kernel_source or "multiprocessors" in device.kernel_source or \
                "CU" in device.kernel_source, device.name


def test_eager_vision_attention_prices_the_materialised_scores():
    """LLaVA-NeXT's SigLIP runs eager attention: at 729 patches a frame its n² scores cost more than the fused
    kernel, and only the vision stage changes."""
    from vidcost.errors import ConfigError
    from vidcost.predict import predict

    fused = predict("llava-onevision-7b", frames=32, device_spec="a100")
    eager = predict("llava-onevision-7b", frames=32, device_spec="a100", vision_attention="eager")
    assert eager.stages_ms["vision"] > 1.3 * fused.stages_ms["vision"]
    assert eager.llm_prefill_ms == pytest.approx(fused.llm_prefill_ms)
    with pytest.raises(ConfigError, match="'fused' is not one of"):
        predict("llava-onevision-7b", device_spec="a100", vision_attention="fused")


def test_a_list_priced_over_its_distinct_kernels_is_priced_kernel_by_kernel():
    from vidcost.kernels import OperatorList

    spec = ModelSpec("test", 896, 4864, 24, 14, 2, 151936, 196, 8)
    layer = decoder_layer_kernels(spec, 600, 600, 2)
    repeated = OperatorList(layer.kernels * 3 + (gemm("extra", 8, 8, 8, 2),), layer.host_ops)
    model = OperatorModel(dataclasses.replace(A100, host_op_seconds=1e-6, launch_seconds=2e-6), "bfloat16")
    assert sum(count for _, count in repeated.distinct) == len(repeated.kernels)
    one_by_one = sum(model.kernel_seconds(kernel) for kernel in repeated.kernels)
    assert model.seconds(dataclasses.replace(repeated)) == pytest.approx(
        max(one_by_one, (len(repeated.kernels) + repeated.host_ops) * 1e-6))
