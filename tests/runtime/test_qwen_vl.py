"""Qwen2.5-VL and Qwen2-VL in the staged runtime: the stock forward, M-RoPE positions, plans, padding, resolution."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import get_method, method_names
from vidcost.runtime import StagedRuntime, build_inputs, build_model
from vidcost.runtime.attention import query_attention
from vidcost.runtime.families import get_family
from vidcost.spec import load_spec

FRAMES = 4  # two temporal patches of 64 tokens


def qwen2_vl_spec(frames: int = FRAMES):
    """tiny-qwen2.5-vl's dimensions as a Qwen2-VL: full attention in every vision layer, a 4× MLP."""
    tiny = load_spec("tiny-qwen2.5-vl", frames=frames)
    return dataclasses.replace(tiny, name="tiny-qwen2-vl", architecture="qwen2_vl", vision_intermediate_size=256,
                               vision_window_size=0, vision_full_attention_layers=())


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen2_vl"])
def loaded(request):
    spec = load_spec("tiny-qwen2.5-vl", frames=FRAMES) if request.param == "qwen2_5_vl" else qwen2_vl_spec()
    return build_model(spec, seed=3)


@pytest.fixture(scope="module")
def inputs(loaded):
    return build_inputs(loaded, seed=5)


@pytest.fixture(scope="module")
def runtime(loaded):
    return StagedRuntime(loaded)


def stock_logits(loaded, inputs):
    family = get_family(loaded.spec.architecture)
    with torch.inference_mode():
        out = loaded.model(**family.stock_inputs(inputs), logits_to_keep=1)
    return out.logits[0, -1].float()


@pytest.fixture(scope="module")
def stock(loaded, inputs):
    return stock_logits(loaded, inputs)


def test_families_are_found_by_name_and_listed_in_the_spec():
    from vidcost.runtime.families import family_names
    from vidcost.spec import RUNTIME_FAMILIES

    assert family_names() == sorted(RUNTIME_FAMILIES) == ["llava_onevision", "qwen2_5_vl", "qwen2_vl"]
    assert get_family("qwen2_5_vl").name == "qwen2_5_vl" and get_family("qwen2_vl").mrope
    with pytest.raises(ConfigError, match=r"does not run 'llm' models; supported families: \['llava_onevision'"):
        get_family("llm")


def test_the_model_is_the_stock_transformers_class(loaded):
    expected = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration", "qwen2_vl": "Qwen2VLForConditionalGeneration"}
    assert type(loaded.model).__name__ == expected[loaded.spec.architecture]
    windowed = loaded.spec.architecture == "qwen2_5_vl"
    assert (getattr(loaded.model.model.visual, "fullatt_block_indexes", None) == [1, 3]) == windowed


@pytest.mark.parametrize("name", method_names())
def test_logits_equal_stock_forward_at_budget_one(runtime, inputs, stock, name):
    """Every method at budget 1.0 (and vanilla) gives the stock forward's logits on a video input."""
    try:
        method = get_method(name)
    except ConfigError as err:
        pytest.skip(str(err))
    result = runtime.prefill(inputs, method, 1.0, seed=1)
    torch.testing.assert_close(result.logits, stock, rtol=1e-5, atol=1e-5)
    assert result.first_token == int(torch.argmax(stock))


def test_the_stock_forward_really_uses_mrope(loaded, inputs, stock):
    """Given 1-D positions 0..N-1 instead of its M-RoPE ids, the stock model answers differently."""
    family = get_family(loaded.spec.architecture)
    one_d = torch.arange(inputs.input_ids().shape[1])[None]
    with torch.inference_mode():
        logits = loaded.model(**family.stock_inputs(inputs), position_ids=one_d, logits_to_keep=1).logits[0, -1].float()
    assert not torch.allclose(logits, stock, atol=1e-4)


def test_kept_tokens_keep_their_unpruned_mrope_ids(loaded, runtime, inputs):
    """Random pre-LLM selection: the sequence's (t, h, w) ids are the kept tokens' columns of the stock
    `get_rope_index` over the full layout, and the logits are the stock text model's on those ids."""
    method = get_method("random")
    result = runtime.prefill(inputs, method, 0.3, seed=7)
    family = get_family(loaded.spec.architecture)
    stock_inputs = family.stock_inputs(inputs)
    full, _ = loaded.model.model.get_rope_index(stock_inputs["input_ids"], stock_inputs["mm_token_type_ids"],
                                                video_grid_thw=stock_inputs["video_grid_thw"])  # [3, 1, N_full]
    features, _ = runtime.encode_video(inputs.pixel_values, inputs=inputs)
    selection = method.select_visual(features, 0.3, seed=7)
    p, total = inputs.prefix_ids.numel(), inputs.spec.num_visual_tokens
    columns = torch.cat([torch.arange(p), p + selection.positions, torch.arange(p + total, full.shape[-1])])
    assert result.position_ids.shape == (3, 1, columns.numel())
    assert torch.equal(result.position_ids, full[..., columns])
    # The (t, h, w) of a kept token from its flat index: t·step + start, start + row, start + column.
    grid_t, grid_h, grid_w = inputs.grid_thw
    per_patch, width = (grid_h // 2) * (grid_w // 2), grid_w // 2
    kept = result.position_ids[:, 0, p:p + selection.positions.numel()]
    flat = selection.positions
    assert torch.equal(kept[1] - p, flat % per_patch // width) and torch.equal(kept[2] - p, flat % width)
    assert bool((torch.diff(kept[0]) >= 0).all()) and int(kept[0].min()) == p
    lm = loaded.model.model.language_model
    with torch.inference_mode():
        embed = lm.embed_tokens
        hidden = torch.cat([embed(inputs.prefix_ids), selection.tokens, embed(inputs.question_ids)])[None]
        out = lm(inputs_embeds=hidden, position_ids=full[..., columns])
        logits = loaded.model.lm_head(out.last_hidden_state[:, -1])[0].float()
        contiguous = lm(inputs_embeds=hidden)  # 0..N'-1 on all three rows: a different answer
        wrong = loaded.model.lm_head(contiguous.last_hidden_state[:, -1])[0].float()
    torch.testing.assert_close(result.logits, logits, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(result.logits, wrong, atol=1e-4)


def test_decode_steps_equal_the_stock_forward_on_its_own_cache(loaded, runtime, inputs, monkeypatch):
    """Vanilla: greedy tokens and each step's logits equal the stock forward's, whose decode positions
    continue after the largest M-RoPE id (its rope_deltas)."""
    steps, step_logits = 3, []
    original = runtime._next_token

    def recording(last_hidden):
        token, logits = original(last_hidden)
        step_logits.append(logits.clone())
        return token, logits

    monkeypatch.setattr(runtime, "_next_token", recording)
    result = runtime.prefill(inputs, get_method("vanilla"), 1.0, decode_tokens=steps)
    family = get_family(loaded.spec.architecture)
    keyword = "cache" if "cache" in inspect.signature(loaded.model.forward).parameters else "past_key_values"
    with torch.inference_mode():
        out = loaded.model(**family.stock_inputs(inputs), use_cache=True, logits_to_keep=1)
        cache, stock = out.past_key_values, [out.logits[0, -1].float()]
        for _ in range(steps):
            out = loaded.model(input_ids=stock[-1].argmax().view(1, 1), use_cache=True, **{keyword: cache})
            stock.append(out.logits[0, -1].float())
    assert list(result.generated) == [int(logits.argmax()) for logits in stock]
    for ours, theirs in zip(step_logits, stock):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert inputs.next_position == int(inputs.position_ids.max()) + 1 < inputs.input_ids().shape[1]


@pytest.mark.parametrize("name", method_names())
def test_executed_schedule_equals_the_plan(runtime, inputs, name):
    """Every method through the `Method` interface on [T', P, D] features: executed == planned (or, for a
    data-dependent method, meeting the budget)."""
    try:
        method = get_method(name)
    except ConfigError as err:
        pytest.skip(str(err))
    view = inputs.spec.method_view()
    result = runtime.prefill(inputs, method, 0.6, seed=1)  # DyCoke and PDrop's λ = 0.5 reach no budget below ~0.5
    assert result.planned == method.plan(view, 0.6)
    if method.data_dependent_counts:  # the plan is an estimate; what ran meets the budget as its rule says
        assert abs(result.executed.mean_visual_fraction - 0.6) <= 2 / inputs.spec.num_visual_tokens
    else:
        assert result.executed == result.planned
    assert result.planned.initial_visual_tokens == inputs.spec.num_visual_tokens == 2 * 64
    assert torch.isfinite(result.logits).all()


def test_methods_see_temporal_patches(runtime, inputs):
    features, separator = runtime.encode_video(inputs.pixel_values, inputs=inputs)
    assert features.shape == (2, 64, inputs.spec.hidden_size) and separator is None
    view = inputs.spec.method_view()
    assert (view.frames, view.tokens_per_frame, view.num_visual_tokens) == (2, 64, inputs.spec.num_visual_tokens)


def test_query_attention_equals_eager_attention_rows_under_mrope():
    """The M-RoPE cos/sin are composed per token: query_attention's rotate_half path is exact for them."""
    eager = build_model(load_spec("tiny-qwen2.5-vl", frames=2), seed=2, attn_implementation="eager")
    lm = eager.model.model.language_model
    layer, n = lm.layers[1], 40
    hidden = torch.randn(1, n, lm.config.hidden_size, generator=torch.Generator().manual_seed(0))
    steps = torch.arange(n)
    positions = torch.stack([steps // 7, steps % 5 + 3, steps % 3 + 9])[:, None]  # [3, 1, N], distinct rows
    rope = lm.rotary_emb(hidden, positions)
    mask = torch.triu(torch.full((n, n), torch.finfo(hidden.dtype).min), diagonal=1)[None, None]
    with torch.inference_mode():
        _, weights = layer.self_attn(hidden_states=layer.input_layernorm(hidden), position_embeddings=rope,
                                     attention_mask=mask)  # [1, H, N, N]
        rows = torch.tensor([n - 1, n - 5])
        got = query_attention(layer, hidden, rope, rows, slice(3, 30))
    torch.testing.assert_close(got, weights[0][:, rows, 3:30].permute(1, 0, 2).float(), rtol=1e-5, atol=1e-6)


def test_odd_frame_count_is_padded_like_the_processor():
    """3 frames fill two temporal patches: the last patch repeats frame 2, as Qwen2VLVideoProcessor pads."""
    loaded = build_model(load_spec("tiny-qwen2.5-vl", frames=3), seed=1)
    inputs = build_inputs(loaded, seed=2)
    assert inputs.grid_thw == (2, 16, 16) and inputs.spec.num_visual_tokens == 128
    rows = inputs.pixel_values.view(2, 16 * 16, 3, 2, 14 * 14)  # [t, patches, C, temporal, pixels]
    assert torch.equal(rows[1, :, :, 0], rows[1, :, :, 1]) and not torch.equal(rows[0, :, :, 0], rows[0, :, :, 1])
    result = StagedRuntime(loaded).prefill(inputs, get_method("vanilla"), 1.0)
    torch.testing.assert_close(result.logits, stock_logits(loaded, inputs), rtol=1e-5, atol=1e-5)


def test_resolution_sets_tokens_per_patch_and_non_square_frames_run():
    spec = load_spec("tiny-qwen2.5-vl", frames=2, resolution=(280, 168))  # 10 × 6 merged tokens
    loaded = build_model(spec, seed=1)
    inputs = build_inputs(loaded, seed=2)
    assert spec.tokens_per_frame == 60 and inputs.grid_thw == (1, 20, 12)
    runtime = StagedRuntime(loaded)
    result = runtime.prefill(inputs, get_method("vanilla"), 1.0)
    torch.testing.assert_close(result.logits, stock_logits(loaded, inputs), rtol=1e-5, atol=1e-5)
    pruned = runtime.prefill(inputs, get_method("uniform"), 0.25)
    assert pruned.executed == pruned.planned


def test_local_weights_round_trip(tmp_path):
    original = build_model(load_spec("tiny-qwen2.5-vl", frames=2), seed=4)
    original.model.save_pretrained(tmp_path)
    from_dir = load_spec(str(tmp_path), frames=2)
    assert from_dir.architecture == "qwen2_5_vl" and from_dir.vision_full_attention_layers == (1, 3)
    loaded = build_model(from_dir, model_path=str(tmp_path))
    inputs = build_inputs(original)
    a = StagedRuntime(original).prefill(inputs, get_method("vanilla"), 1.0)
    b = StagedRuntime(loaded).prefill(inputs, get_method("vanilla"), 1.0)
    torch.testing.assert_close(a.logits, b.logits)
    with pytest.raises(ConfigError, match="holds a 'qwen2_5_vl' model but the spec is 'llava_onevision'"):
        build_model(load_spec("tiny"), model_path=str(tmp_path))


def test_a_video_file_sets_the_frame_size_as_the_processor_would(tmp_path):
    """64 × 96 px is below the video processor's 128 merged tokens a frame: resized up, aspect ratio kept."""
    import av

    from vidcost.runtime.video import synthetic_video

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for frame in synthetic_video(4, (64, 96), seed=1):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    spec = get_family("qwen2_5_vl").fit_to_video(load_spec("tiny-qwen2.5-vl", frames=2), str(path))
    assert spec.frame_shape == (280, 392) and spec.tokens_per_frame == 10 * 14
    assert get_family("llava_onevision").fit_to_video(load_spec("tiny"), str(path)) == load_spec("tiny")
    loaded = build_model(spec, seed=0)
    inputs = build_inputs(loaded, video=str(path))
    assert inputs.grid_thw == (1, 20, 28)
    result = StagedRuntime(loaded).prefill(inputs, get_method("uniform"), 0.5)
    assert result.executed == result.planned


@pytest.mark.gpu
def test_qwen2_5_vl_on_cuda_matches_stock_and_follows_the_plan():
    """On a GPU (bfloat16): the staged tower and decoder against the stock forward, a pruned plan executed."""
    loaded = build_model(load_spec("tiny-qwen2.5-vl", frames=FRAMES), device="cuda", seed=3)
    inputs = build_inputs(loaded, seed=5)
    assert inputs.vision_kwargs["cu_seqlens"].device.type == "cpu"  # no host read of a device tensor per layer
    runtime = StagedRuntime(loaded)
    result = runtime.prefill(inputs, get_method("vanilla"), 1.0)
    torch.testing.assert_close(result.logits, stock_logits(loaded, inputs), rtol=2e-2, atol=2e-2)
    pruned = runtime.prefill(inputs, get_method("mmgvid"), 0.25, decode_tokens=2)
    assert pruned.executed == pruned.planned and len(pruned.generated) == 3
