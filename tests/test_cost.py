"""CostModel: the paper convention reproduces published numbers; the exact convention's terms add up."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidcost.cost import (CostEstimate, decode_flops, decode_kv_lengths, estimate_cost, estimate_memory,
                          flops_ratio, format_bytes, format_flops, kv_cache_bytes, llm_parameters, prefill_flops,
                          vanilla_schedule, vision_flops)
from vidcost.errors import ConfigError
from vidcost.schedule import Schedule, parse_schedule
from vidcost.spec import PRESETS, ModelSpec, load_spec


def three_digits(value: float) -> float:
    return float(f"{value:.3g}")


def test_paper_convention_reproduces_hieravid_vanilla_numbers() -> None:
    ov = load_spec("llava-onevision-7b")   # 32 frames × 196 tokens
    video = load_spec("llava-video-7b")    # 64 frames × 169 tokens
    assert (ov.frames, ov.tokens_per_frame, video.frames, video.tokens_per_frame) == (32, 196, 64, 169)
    assert three_digits(estimate_cost(ov, vanilla_schedule(ov)).prefill_flops / 1e12) == 40.8
    assert three_digits(estimate_cost(video, vanilla_schedule(video)).prefill_flops / 1e12) == 80.2


def test_paper_convention_reproduces_fastv_row_of_hieravid_table_2() -> None:
    # HieraVid Table 2, LLaVA-OneVision, FastV at a 30 % budget (K=2): 12.7 T, 31.2 %.
    spec = load_spec("llava-onevision-7b")
    schedule = parse_schedule("0:1.0,2:0.3", num_layers=28, initial_visual_tokens=6272, text_tokens=0)
    assert three_digits(estimate_cost(spec, schedule).prefill_flops / 1e12) == 12.7
    assert round(flops_ratio(spec, schedule), 3) == 0.312


@pytest.mark.parametrize("model, flops_t, ratio", [("llava-onevision-7b", 10.6, 0.259),
                                                     ("llava-video-7b", 19.1, 0.238)])
def test_paper_convention_reproduces_pre_llm_rows_at_30_percent(model: str, flops_t: float, ratio: float) -> None:
    # HieraVid Tables 1-2, PruMerge / PruneVid rows at a 30 % budget: 30 % of the tokens at every layer.
    spec = load_spec(model)
    kept = round(0.3 * spec.num_visual_tokens)
    schedule = Schedule.constant(spec.num_layers, kept, 0, spec.num_visual_tokens)
    assert three_digits(estimate_cost(spec, schedule).prefill_flops / 1e12) == flops_t
    assert flops_ratio(spec, schedule) == pytest.approx(ratio, abs=1e-3)  # the tables round 23.85 % down


def test_paper_formula_term_by_term() -> None:
    spec = load_spec("tiny")
    schedule = Schedule((100, 100, 40, 40, 10, 10), text_tokens=7, initial_visual_tokens=100)
    estimate = estimate_cost(spec, schedule, convention="paper")
    d, m = spec.hidden_size, spec.intermediate_size
    expected = sum(4 * n * d * d + 2 * n * n * d + 2 * n * d * m for n in schedule.visual_tokens)
    assert estimate.prefill_flops == expected
    assert [entry.visual_tokens for entry in estimate.layers] == list(schedule.visual_tokens)
    assert all(entry.text_tokens == 0 for entry in estimate.layers)
    assert estimate.lm_head_flops == estimate.vision_flops == estimate.elementwise_flops == 0
    with_text = estimate_cost(spec, schedule, convention="paper", include_text=True)
    assert with_text.prefill_flops == sum(4 * n * d * d + 2 * n * n * d + 2 * n * d * m
                                          for n in (v + 7 for v in schedule.visual_tokens))


def test_exact_convention_terms() -> None:
    spec = load_spec("tiny")  # d=256, m=768, 8 heads / 2 KV heads, head_dim 32, SwiGLU
    n_visual, n_text = 50, 10
    n = n_visual + n_text
    schedule = Schedule.constant(spec.num_layers, n_visual, n_text)
    estimate = estimate_cost(spec, schedule, convention="exact")
    layer = estimate.layers[0]
    d, kv = spec.hidden_size, spec.kv_dim
    assert kv == 64  # GQA: 2 KV heads × 32
    assert layer.projection_flops == 2 * n * d * d * 2 + 2 * n * d * kv * 2
    assert layer.attention_flops == 2 * 2 * n * n * d
    assert layer.mlp_flops == 2 * n * d * spec.intermediate_size * 3
    assert estimate.lm_head_flops == 2 * d * spec.vocab_size
    assert estimate.prefill_flops == spec.num_layers * layer.flops + estimate.lm_head_flops
    assert estimate.elementwise_flops > 0  # reported beside, not inside, the total
    causal = estimate_cost(spec, schedule, convention="exact", causal=True)
    assert causal.layers[0].attention_flops * 2 == layer.attention_flops
    assert causal.layers[0].mlp_flops == layer.mlp_flops
    vision = estimate_cost(spec, schedule, convention="exact", include_vision=True)
    assert vision.vision_flops == vision_flops(spec) > 0
    assert vision.prefill_flops == estimate.prefill_flops + vision.vision_flops


def test_exact_exceeds_paper_for_qwen2_7b() -> None:
    # 2 FLOPs/MAC on the MLP and three matrices outweigh GQA's smaller K/V projections.
    spec = load_spec("llava-onevision-7b")
    schedule = vanilla_schedule(spec)
    paper = estimate_cost(spec, schedule, convention="paper")
    exact = estimate_cost(spec, schedule, convention="exact")
    assert exact.prefill_flops > 2 * paper.prefill_flops
    mha = dataclasses.replace(spec, num_kv_heads=spec.num_heads)
    assert estimate_cost(mha, schedule, convention="exact").prefill_flops > exact.prefill_flops


def test_paper_convention_rejects_exact_only_options() -> None:
    spec = load_spec("tiny")
    with pytest.raises(ConfigError, match="paper convention"):
        estimate_cost(spec, vanilla_schedule(spec), causal=True)
    with pytest.raises(ConfigError, match="paper convention"):
        estimate_cost(spec, vanilla_schedule(spec), include_vision=True)
    with pytest.raises(ConfigError, match="paper convention"):
        flops_ratio(spec, vanilla_schedule(spec), causal=True)
    with pytest.raises(ConfigError, match="'flop'"):
        estimate_cost(spec, vanilla_schedule(spec), convention="flop")


def test_schedule_of_wrong_length_is_rejected() -> None:
    spec = load_spec("tiny")
    with pytest.raises(ConfigError, match="has 3 layers but model 'tiny' has 6"):
        estimate_cost(spec, Schedule.constant(3, 10, 0))


@st.composite
def schedules(draw: st.DrawFn) -> tuple[ModelSpec, Schedule]:
    spec = load_spec(draw(st.sampled_from(sorted(PRESETS))))
    initial = spec.num_visual_tokens
    counts = sorted(draw(st.lists(st.integers(0, initial), min_size=spec.num_layers,
                                  max_size=spec.num_layers)), reverse=True)
    return spec, Schedule(tuple(counts), draw(st.integers(0, 64)), initial)


@settings(max_examples=60, deadline=None)
@given(schedules(), st.sampled_from(["paper", "exact"]), st.booleans())
def test_layers_total_and_ratio_agree(case: tuple[ModelSpec, Schedule], convention: str,
                                                 causal: bool) -> None:
    spec, schedule = case
    causal = causal and convention == "exact"
    estimate = estimate_cost(spec, schedule, convention=convention, causal=causal)
    assert prefill_flops(spec, schedule, convention=convention, causal=causal) == estimate.prefill_flops
    # The per-layer entries (built lazily) add up to the total priced per run of equal counts.
    assert sum(entry.flops for entry in estimate.layers) + estimate.lm_head_flops == estimate.prefill_flops
    assert sum(entry.elementwise_flops for entry in estimate.layers) <= estimate.elementwise_flops
    assert [entry.visual_tokens for entry in estimate.layers] == list(schedule.visual_tokens)
    vanilla = Schedule.constant(spec.num_layers, schedule.initial_visual_tokens, schedule.text_tokens)
    ratio = flops_ratio(spec, schedule, convention, causal=causal)
    assert 0.0 <= ratio <= 1.0
    assert ratio == pytest.approx(estimate.prefill_flops / estimate_cost(
        spec, vanilla, convention=convention, causal=causal).prefill_flops)


@settings(max_examples=40, deadline=None)
@given(schedules())
def test_pruning_more_never_costs_more(case: tuple[ModelSpec, Schedule]) -> None:
    spec, schedule = case
    fewer = Schedule(tuple(n // 2 for n in schedule.visual_tokens), schedule.text_tokens,
                     schedule.initial_visual_tokens)
    for convention in ("paper", "exact"):
        assert prefill_flops(spec, fewer, convention=convention) <= prefill_flops(spec, schedule, convention=convention)
    assert kv_cache_bytes(spec, fewer) <= kv_cache_bytes(spec, schedule)


def test_llm_parameters_match_qwen2_7b() -> None:
    # Qwen2-7B (untied): 7,615,616,512 parameters, as its transformers model reports.
    assert llm_parameters(load_spec("llava-onevision-7b")) == 7_615_616_512


def test_memory_estimate() -> None:
    spec = load_spec("llava-onevision-7b")
    vanilla = vanilla_schedule(spec)
    pruned = parse_schedule("0:1.0,2:0.3", num_layers=28, initial_visual_tokens=6272, text_tokens=32)
    memory = estimate_memory(spec, vanilla, dtype_bytes=2)
    # KV: 2 (K and V) · 28 layers · (6272 + 32) tokens · 4 KV heads · 128 · 2 bytes.
    assert memory.kv_cache_bytes == 2 * 28 * 6304 * 512 * 2
    assert memory.weights_bytes > 2 * 7_615_616_512  # plus the vision tower and projector
    # 32 frames of 729 SigLIP patches, 26 layers' hidden states kept (output_hidden_states) + the last MLP's
    assert memory.vision_peak_bytes == 32 * 729 * ((26 + 2) * 1152 + 2 * 4304) * 2
    llm = memory.kv_cache_bytes + memory.activation_peak_bytes + 6272 * 3584 * 2  # + the projected features
    assert memory.total_bytes == memory.weights_bytes + max(memory.vision_peak_bytes, llm)
    assert memory.peak_phase == "vision"  # at 32 frames the tower's transient exceeds the LLM's
    pruned_memory = estimate_memory(spec, pruned, dtype_bytes=2)
    assert pruned_memory.kv_cache_bytes == 2 * (2 * 6304 + 26 * (1882 + 32)) * 512 * 2
    assert estimate_memory(spec, vanilla, dtype_bytes=4).weights_bytes == 2 * memory.weights_bytes
    eager = estimate_memory(spec, vanilla, attention="eager")
    assert eager.activation_peak_bytes > memory.activation_peak_bytes  # the n×n score matrix
    assert estimate_memory(spec, vanilla, generated_tokens=10).kv_cache_bytes == \
        memory.kv_cache_bytes + 2 * 28 * 10 * 512 * 2
    with pytest.raises(ConfigError, match="dtype_bytes 3"):
        estimate_memory(spec, vanilla, dtype_bytes=3)
    assert "GiB" in str(memory) and "\n" not in str(memory)


def test_the_vision_transient_grows_with_frames_and_not_with_the_budget() -> None:
    spec = load_spec("llava-onevision-7b", frames=8)
    few = estimate_memory(spec, vanilla_schedule(spec))
    pruned = estimate_memory(spec, parse_schedule("0:0.1", num_layers=28, initial_visual_tokens=1568,
                                                  text_tokens=32))
    many = estimate_memory(load_spec("llava-onevision-7b", frames=16), vanilla_schedule(load_spec(
        "llava-onevision-7b", frames=16)))
    assert pruned.vision_peak_bytes == few.vision_peak_bytes and many.vision_peak_bytes == 2 * few.vision_peak_bytes
    assert pruned.llm_bytes < few.llm_bytes
    qwen = load_spec("qwen2.5-vl-7b")
    rows = qwen.temporal_patches * qwen.patches_per_frame  # no hidden states kept: residual, norm, SwiGLU, rotary
    assert estimate_memory(qwen, vanilla_schedule(qwen)).vision_peak_bytes == rows * (2 * 1280 + 3 * 3420 + 160) * 2


def test_decode_flops() -> None:
    spec = load_spec("llava-onevision-7b")
    d, m, L = 3584, 18944, 28
    assert decode_flops(spec, 100, convention="paper") == L * (4 * d * d + 2 * 100 * d + 2 * d * m)
    short, long = decode_flops(spec, 1000), decode_flops(spec, 2000)
    assert long - short == L * 1000 * 4 * 28 * 128  # QKᵀ and P·V over 1000 more keys, per layer
    pruned = parse_schedule("0:1.0,2:0.3", num_layers=28, initial_visual_tokens=6272, text_tokens=32)
    lengths = decode_kv_lengths(pruned, generated_tokens=5)
    assert lengths[0] == 6272 + 32 + 5 and lengths[2] == 1882 + 32 + 5
    assert decode_flops(spec, lengths) < decode_flops(spec, decode_kv_lengths(vanilla_schedule(spec)))
    with pytest.raises(ConfigError, match="3 entries"):
        decode_flops(spec, [1, 2, 3])
    with pytest.raises(ConfigError, match="-1"):
        decode_flops(spec, -1)


def test_results_serialise_and_print_on_one_line() -> None:
    spec = load_spec("tiny")
    estimate = estimate_cost(spec, vanilla_schedule(spec), convention="exact")
    assert isinstance(estimate, CostEstimate)
    data = estimate.to_dict()
    assert data["prefill_flops"] == estimate.prefill_flops and len(data["layers"]) == spec.num_layers
    assert set(data["layers"][0]) >= {"layer", "visual_tokens", "text_tokens", "flops"}
    assert "\n" not in str(estimate) and "\n" not in str(estimate.layers[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        estimate.prefill_flops = 0  # type: ignore[misc]
    assert format_flops(40.77e12) == "40.77 TFLOPs" and format_bytes(3 * 2**30) == "3.00 GiB"


def test_qwen2_5_vl_windows_tile_the_merged_grid() -> None:
    # 448 px: 16 × 16 merged tokens in 4 × 4 windows of 8 × 8 patches; 336 × 588: a 12 × 21 grid, windows
    # of 4 merged tokens and a last column of 1.
    from vidcost.cost import _window_scores

    assert _window_scores(load_spec("qwen2.5-vl-7b")) == 16 * 64 ** 2
    spec = load_spec("qwen2.5-vl-7b", resolution=(336, 588))
    assert _window_scores(spec) == 2 ** 4 * (3 * 4 ** 2) * (5 * 4 ** 2 + 1)
    full = dataclasses.replace(spec, vision_window_size=0)
    assert vision_flops(full) > vision_flops(spec) > 0
    assert vision_flops(load_spec("qwen2.5-vl-7b", frames=3)) == vision_flops(load_spec("qwen2.5-vl-7b", frames=4))


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "qwen2-vl"])
def test_qwen_vl_vision_parameters_match_the_real_tower(name: str) -> None:
    torch = pytest.importorskip("torch")
    from vidcost.cost import vision_parameters
    from vidcost.runtime.families import get_family

    spec = load_spec("tiny-qwen2.5-vl")
    if name == "qwen2-vl":
        spec = dataclasses.replace(spec, architecture="qwen2_vl", vision_intermediate_size=256)
    family = get_family(spec.architecture)
    with torch.device("meta"):
        model = family.model_class()._from_config(family.hf_config(spec))
    assert vision_parameters(spec) == sum(p.numel() for p in model.model.visual.parameters())
    assert vision_parameters(spec) + llm_parameters(spec) == sum(p.numel() for p in model.parameters())
