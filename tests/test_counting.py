"""The exact convention agrees with FlopCounterMode counting real transformers forwards."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from vidcost.cost import estimate_cost, vanilla_schedule, vision_flops  # noqa: E402
from vidcost.counting import count_flops  # noqa: E402
from vidcost.hfconfig import text_config  # noqa: E402
from vidcost.schedule import Schedule, parse_schedule  # noqa: E402
from vidcost.spec import ModelSpec, load_spec, spec_from_config  # noqa: E402

MHA = ModelSpec(name="mha", hidden_size=64, intermediate_size=176, num_layers=2, num_heads=4, num_kv_heads=4,
                vocab_size=300, tokens_per_frame=16, frames=2, text_tokens=5)
GQA = ModelSpec(name="gqa", hidden_size=96, intermediate_size=256, num_layers=3, num_heads=6, num_kv_heads=2,
                vocab_size=500, tokens_per_frame=9, frames=3, text_tokens=11)


def counted(model: torch.nn.Module, **inputs: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs, logits_to_keep=1, use_cache=False)
    return counter.get_total_flops()


def within_one_percent(analytic: int, measured: int) -> bool:
    return abs(analytic - measured) <= 0.01 * measured


@pytest.mark.parametrize("spec", [MHA, GQA], ids=["multi-head", "grouped-query"])
@pytest.mark.parametrize("visual_tokens", [12, 40])
def test_exact_matches_flop_counter_on_real_forward(spec: ModelSpec, visual_tokens: int) -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.Qwen2ForCausalLM._from_config(text_config(spec), attn_implementation="eager").eval()
    embeds = torch.randn(1, visual_tokens + spec.text_tokens, spec.hidden_size)
    measured = counted(model, inputs_embeds=embeds)
    schedule = Schedule.constant(spec.num_layers, visual_tokens, spec.text_tokens)
    analytic = estimate_cost(spec, schedule, convention="exact").prefill_flops
    assert within_one_percent(analytic, measured), (analytic, measured)
    # The paper convention is a different quantity: it must not pass for the exact one.
    assert not within_one_percent(estimate_cost(spec, schedule, convention="paper").prefill_flops, measured)


def write_llava_config(directory: Path) -> Path:
    config = transformers.LlavaOnevisionConfig(
        text_config=dict(model_type="qwen2", hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
                         max_position_embeddings=4096),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14,
                           vision_use_head=False),
        image_token_index=510, video_token_index=511, vision_feature_layer=-1,
        vision_feature_select_strategy="full")
    path = directory / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    return path


@pytest.mark.parametrize("frames", [1, 3])
def test_exact_with_vision_matches_llava_onevision_from_config_json(tmp_path: Path, frames: int) -> None:
    path = write_llava_config(tmp_path)
    spec = load_spec(str(tmp_path), frames=frames)
    assert spec.config_path == str(path) and spec.tokens_per_frame == 4  # 56/14 = 4 → pooled 2×2
    config = transformers.LlavaOnevisionConfig(**json.loads(path.read_text()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.LlavaOnevisionForConditionalGeneration._from_config(
            config, attn_implementation="eager").eval()
    video_tokens = spec.num_visual_tokens + 1  # + the image-newline token
    ids = torch.tensor([[1, 2, 3] + [config.video_token_index] * video_tokens + [4, 5, 6, 7]])
    pixels = torch.randn(1, frames, 3, 56, 56)
    measured = counted(model, input_ids=ids, pixel_values_videos=pixels)
    # The newline token and the prompt enter the LLM as non-visual tokens.
    schedule = Schedule.constant(spec.num_layers, spec.num_visual_tokens, ids.shape[1] - spec.num_visual_tokens)
    analytic = estimate_cost(spec, schedule, convention="exact", include_vision=True)
    assert within_one_percent(analytic.prefill_flops, measured), (analytic.prefill_flops, measured)
    assert analytic.vision_flops > 0.1 * measured  # the vision term really is part of the match


def test_meta_count_equals_real_cpu_count() -> None:
    schedule = vanilla_schedule(GQA)
    meta = count_flops(GQA, schedule, with_fvcore=False)
    cpu = count_flops(GQA, schedule, device="cpu", with_fvcore=False)
    assert meta.device == "meta" and cpu.device == "cpu"
    assert meta.flop_counter_flops == cpu.flop_counter_flops
    # And the staged forward counts what the full transformers forward counts.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.Qwen2ForCausalLM._from_config(text_config(GQA), attn_implementation="eager").eval()
    embeds = torch.randn(1, GQA.num_visual_tokens + GQA.text_tokens, GQA.hidden_size)
    assert counted(model, inputs_embeds=embeds) == cpu.flop_counter_flops


def test_pruned_schedule_counts_fewer_flops_as_priced() -> None:
    spec = load_spec("tiny")
    pruned = parse_schedule("0:1.0,2:0.3,4:0.1", num_layers=6, initial_visual_tokens=spec.num_visual_tokens,
                            text_tokens=spec.text_tokens)
    vanilla = count_flops(spec, vanilla_schedule(spec), with_fvcore=False)
    result = count_flops(spec, pruned, with_fvcore=False)
    assert result.flop_counter_flops < 0.5 * vanilla.flop_counter_flops
    assert abs(result.relative_difference) < 0.01


def test_seven_billion_model_counts_on_meta_with_fvcore() -> None:
    spec = load_spec("llava-onevision-7b", frames=4)
    result = count_flops(spec, vanilla_schedule(spec), include_vision=True)
    assert abs(result.relative_difference) < 0.01, result
    assert result.vision_flops > 0 and set(result.by_operator) >= {"mm", "bmm"}
    # fvcore counts one per multiply-add: about half of FlopCounterMode.
    assert result.fvcore_flops is not None, result.fvcore_note
    assert 0.45 < result.fvcore_flops / result.flop_counter_flops < 0.55
    assert "layers" in result.fvcore_table and "vision_tower" in result.fvcore_table
    assert "\n" not in str(result)
    data = result.to_dict()
    assert data["flop_counter_flops"] == data["llm_flops"] + data["vision_flops"]
    assert data["analytic_exact_flops"] == result.analytic_flops and "fvcore" in data["conventions"]


def test_qwen2_vl_vision_tower_gives_the_spec_tokens_and_priced_flops() -> None:
    # A small Qwen2-VL read from its transformers config: 4 frames at 448 px → grid (2, 32, 32).
    config = transformers.Qwen2VLConfig(
        text_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=1000),
        vision_config=dict(depth=2, embed_dim=32, mlp_ratio=4, num_heads=2, hidden_size=64, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2))
    spec = spec_from_config(config.to_dict(), name="qwen2-vl-small").with_overrides(frames=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.Qwen2VLForConditionalGeneration._from_config(config, attn_implementation="eager")
    grid = torch.tensor([[2, 32, 32]])  # [temporal patches, patch rows, patch columns]
    pixels = torch.randn(2 * 32 * 32, 3 * 2 * 14 * 14)  # one row per 2×14×14 patch
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model.eval().model.visual(pixels, grid_thw=grid)
    merged = out if isinstance(out, torch.Tensor) else out.pooler_output  # [tokens entering the LLM, d]
    assert merged.shape == (spec.num_visual_tokens, spec.hidden_size) == (512, 64)
    assert within_one_percent(vision_flops(spec), counter.get_total_flops())


def stock_qwen_vl(spec: ModelSpec) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The stock Qwen-VL model of a spec (eager attention) and a video prompt for its own forward."""
    from vidcost.runtime.families import get_family

    family = get_family(spec.architecture)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = family.model_class()._from_config(family.hf_config(spec), attn_implementation="eager").eval()
    video = family.random_video(model, spec, "cpu")
    ids = torch.tensor([[1, 2, 3] + [model.config.video_token_id] * spec.num_visual_tokens + [4, 5, 6, 7, 8]])
    return model, dict(input_ids=ids, pixel_values_videos=video.pixel_values,
                       video_grid_thw=torch.tensor([video.grid_thw]), mm_token_type_ids=(ids > 8).int() * 2)


@pytest.mark.parametrize("resolution", [(224, 224), (336, 252)], ids=["224x224", "336x252-partial-windows"])
def test_exact_with_vision_matches_the_stock_qwen2_5_vl_forward(resolution: tuple[int, int]) -> None:
    """Windowed and full-attention ViT layers, the merger and the LLM, against FlopCounterMode on the stock
    `Qwen2_5_VLForConditionalGeneration(...)` forward with a video (3 frames: one padded patch)."""
    spec = load_spec("tiny-qwen2.5-vl", frames=3, resolution=resolution)
    model, inputs = stock_qwen_vl(spec)
    measured = counted(model, **inputs)
    schedule = Schedule.constant(spec.num_layers, spec.num_visual_tokens, 8)
    analytic = estimate_cost(spec, schedule, convention="exact", include_vision=True)
    assert within_one_percent(analytic.prefill_flops, measured), (analytic.prefill_flops, measured)
    assert analytic.vision_flops > 0.2 * measured  # the vision term really is part of the match
    # Pricing every vision layer as full attention (Qwen2-VL's) would miss the windows.
    unwindowed = dataclasses.replace(spec, vision_window_size=0)
    assert vision_flops(unwindowed) > vision_flops(spec)


def test_exact_with_vision_matches_the_stock_qwen2_vl_forward() -> None:
    tiny = load_spec("tiny-qwen2.5-vl", frames=2)
    spec = dataclasses.replace(tiny, architecture="qwen2_vl", vision_intermediate_size=256, vision_window_size=0,
                               vision_full_attention_layers=())
    model, inputs = stock_qwen_vl(spec)
    analytic = estimate_cost(spec, Schedule.constant(spec.num_layers, spec.num_visual_tokens, 8), convention="exact",
                             include_vision=True)
    assert within_one_percent(analytic.prefill_flops, counted(model, **inputs))


def test_qwen2_5_vl_3b_counts_on_meta_within_one_percent() -> None:
    """The real 3B tower (32 layers, 4 of them full) and LLM, on the meta device, as `vidcost flops --count`;
    at 336 × 588 the 12 × 21 merged grid leaves partial windows in both directions."""
    spec = load_spec("qwen2.5-vl-3b", frames=2, resolution=(336, 588))
    result = count_flops(spec, vanilla_schedule(spec), include_vision=True, with_fvcore=False)
    assert abs(result.relative_difference) < 0.01, result
    assert result.vision_flops > 0 and result.llm_flops > result.vision_flops
    assert within_one_percent(vision_flops(spec), result.vision_flops)


def test_qwen_meta_count_equals_real_cpu_count() -> None:
    spec = load_spec("tiny-qwen2.5-vl", frames=2)
    meta = count_flops(spec, vanilla_schedule(spec), include_vision=True, with_fvcore=False)
    cpu = count_flops(spec, vanilla_schedule(spec), include_vision=True, device="cpu", with_fvcore=False)
    assert meta.vision_flops == cpu.vision_flops and meta.flop_counter_flops == cpu.flop_counter_flops
