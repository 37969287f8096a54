"""ModelSpec: presets carry DESIGN §3's numbers; config.json files are read, bad ones named."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vidcost.errors import ConfigError
from vidcost.spec import DEFAULT_PRESET, PRESETS, ModelSpec, load_spec, spec_from_config

# DESIGN §3: d, m, L, heads, KV heads, vocab, visual tokens per frame, frames.
DESIGN_TABLE = {
    "llava-onevision-7b": (3584, 18944, 28, 28, 4, 152064, 196, 32),
    "llava-video-7b": (3584, 18944, 28, 28, 4, 152064, 169, 64),
    "llava-onevision-0.5b": (896, 4864, 24, 14, 2, 151936, 196, 32),
    "llava-onevision-72b": (8192, 29568, 80, 64, 8, 152064, 196, 32),
    "qwen2-vl-7b": (3584, 18944, 28, 28, 4, 152064, 256, 32),  # 256 per 2-frame temporal patch at 448 px
}


@pytest.mark.parametrize("name", sorted(DESIGN_TABLE))
def test_presets_match_the_design_table(name: str) -> None:
    spec = load_spec(name)
    assert (spec.hidden_size, spec.intermediate_size, spec.num_layers, spec.num_heads, spec.num_kv_heads,
            spec.vocab_size, spec.tokens_per_frame, spec.frames) == DESIGN_TABLE[name]
    assert spec.head_dim * spec.num_heads == spec.hidden_size
    assert spec.kv_dim == spec.num_kv_heads * spec.head_dim
    assert spec.mlp_matrices == 3


def test_llava_vision_tower_is_siglip_so400m() -> None:
    spec = load_spec("llava-onevision-7b")
    assert (spec.vision_hidden_size, spec.vision_intermediate_size, spec.vision_layers, spec.vision_heads) == \
        (1152, 4304, 26, 16)
    assert spec.patches_per_frame == 729 and spec.num_visual_tokens == 32 * 196
    assert load_spec("llava-onevision-0.5b").tie_word_embeddings


def test_default_preset_and_overrides() -> None:
    assert load_spec().name == DEFAULT_PRESET == "tiny"
    spec = load_spec("tiny", frames=4, tokens_per_frame=10, text_tokens=0)
    assert (spec.frames, spec.tokens_per_frame, spec.text_tokens, spec.num_visual_tokens) == (4, 10, 0, 40)
    assert spec.with_overrides(frames=None) == spec
    assert spec.to_dict()["frames"] == 4 and "\n" not in str(spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.frames = 2  # type: ignore[misc]


@pytest.mark.parametrize("overrides, fragment", [
    (dict(frames=0), "frames must be at least 1, got 0"),
    (dict(tokens_per_frame=0), "tokens_per_frame"),
    (dict(text_tokens=-1), "-1"),
])
def test_bad_overrides_are_config_errors(overrides: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        load_spec("tiny", **overrides)


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        load_spec("llava-13b")
    assert "'llava-13b'" in str(info.value)
    assert all(name in str(info.value) for name in PRESETS)


def test_heads_must_divide() -> None:
    with pytest.raises(ConfigError, match="not a multiple"):
        ModelSpec(name="x", hidden_size=64, intermediate_size=128, num_layers=2, num_heads=6, num_kv_heads=4,
                  vocab_size=10, tokens_per_frame=4, frames=1)


LLAVA_CONFIG = {
    "model_type": "llava_onevision",
    "text_config": {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
                    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
                    "vocab_size": 151936},
    "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
                      "num_hidden_layers": 26, "num_attention_heads": 16, "image_size": 384,
                      "patch_size": 14},
    "tie_word_embeddings": True,
}


def test_nested_llava_config_from_file_and_directory(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAVA_CONFIG))
    for where in (str(path), str(tmp_path)):
        spec = load_spec(where, frames=8)
        assert spec.config_path == str(path) and spec.architecture == "llava_onevision"
        assert (spec.hidden_size, spec.num_layers, spec.num_kv_heads, spec.head_dim) == (896, 24, 2, 64)
        assert spec.tokens_per_frame == 196  # 27×27 patches pooled to 14×14
        assert spec.frames == 8 and spec.tie_word_embeddings


def test_plain_llm_config() -> None:
    config = {"model_type": "llama", "hidden_size": 128, "intermediate_size": 344, "num_hidden_layers": 2,
              "num_attention_heads": 4, "vocab_size": 1000}
    spec = spec_from_config(config, name="llama")
    assert spec.architecture == "llm" and spec.num_kv_heads == 4 and spec.vision_layers == 0


@pytest.mark.parametrize("section, key", [("text_config", "num_hidden_layers"), ("vision_config", "patch_size"),
                                          ("text_config", "vocab_size")])
def test_missing_key_is_named(tmp_path: Path, section: str, key: str) -> None:
    config = json.loads(json.dumps(LLAVA_CONFIG))
    del config[section][key]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_spec(str(tmp_path))


def test_unreadable_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="Cannot read config"):
        load_spec(str(tmp_path))
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a JSON object"):
        load_spec(str(tmp_path))


def test_qwen2_vl_tokens_are_256_per_two_frames() -> None:
    # DESIGN §3: (H/28)·(W/28) merged tokens per 2-frame temporal patch; at 448 px that is 256 per 2 frames.
    spec = load_spec("qwen2-vl-7b", frames=8)
    assert spec.architecture == "qwen2_vl" and spec.image_size == 448
    assert spec.num_visual_tokens == (8 // 2) * (448 // 28) ** 2 == 1024
    nested = {"model_type": "qwen2_vl", "tie_word_embeddings": False,
              "text_config": {"model_type": "qwen2_vl_text", "hidden_size": 1536, "intermediate_size": 8960,
                              "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
                              "vocab_size": 151936},
              "vision_config": {"model_type": "qwen2_vl_vision", "depth": 32, "embed_dim": 1280, "mlp_ratio": 4,
                                "num_heads": 16, "hidden_size": 1536, "patch_size": 14}}
    # The Hub's older flat form: the text keys at the top level beside vision_config.
    flat = {**{k: v for k, v in nested.items() if k != "text_config"}, **nested["text_config"],
            "model_type": "qwen2_vl"}
    for config in (nested, flat):
        read = spec_from_config(config, name="q").with_overrides(frames=8)
        assert (read.hidden_size, read.num_layers, read.num_kv_heads, read.vision_layers) == (1536, 28, 2, 32)
        assert read.architecture == "qwen2_vl" and read.num_visual_tokens == 1024


@pytest.mark.parametrize("section, key, value", [
    ("text_config", "num_attention_heads", 0), ("text_config", "hidden_size", "896"),
    ("text_config", "head_dim", 0), ("text_config", "num_key_value_heads", 1.5),
    ("vision_config", "patch_size", 0), ("vision_config", "image_size", "384"),
    ("vision_config", "num_hidden_layers", True),
])
def test_bad_config_values_are_named(section: str, key: str, value: object) -> None:
    # Each once escaped as a ZeroDivisionError or TypeError traceback.
    config = json.loads(json.dumps(LLAVA_CONFIG))
    config[section][key] = value
    with pytest.raises(ConfigError, match=f"{section} key '{key}' must be a positive integer, got {value!r}"):
        spec_from_config(config, name="bad")


def test_bad_qwen2_vl_vision_values_are_named() -> None:
    text = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "vocab_size": 100}
    for key, value in (("embed_dim", "x"), ("mlp_ratio", "x"), ("depth", 0)):
        config = {"model_type": "qwen2_vl", **text, "vision_config": {key: value}}
        with pytest.raises(ConfigError, match=f"'{key}' must be a positive"):
            spec_from_config(config, name="bad")


# Published config.json dims (see the comments on the presets): d, m, L, heads, KV heads, vocab, tied,
# vision width, vision MLP, vision layers.
QWEN2_5_VL_TABLE = {
    "qwen2.5-vl-3b": (2048, 11008, 36, 16, 2, 151936, True, 1280, 3420, 32),
    "qwen2.5-vl-7b": (3584, 18944, 28, 28, 4, 152064, False, 1280, 3420, 32),
    "qwen2.5-vl-72b": (8192, 29568, 80, 64, 8, 152064, False, 1280, 3456, 32),
}


@pytest.mark.parametrize("name", sorted(QWEN2_5_VL_TABLE))
def test_qwen2_5_vl_presets_match_their_published_configs(name: str) -> None:
    spec = load_spec(name)
    assert (spec.hidden_size, spec.intermediate_size, spec.num_layers, spec.num_heads, spec.num_kv_heads,
            spec.vocab_size, spec.tie_word_embeddings, spec.vision_hidden_size, spec.vision_intermediate_size,
            spec.vision_layers) == QWEN2_5_VL_TABLE[name]
    assert spec.architecture == "qwen2_5_vl" and spec.head_dim == 128
    assert (spec.vision_window_size, spec.vision_full_attention_layers) == (112, (7, 15, 23, 31))
    assert (spec.temporal_patch_size, spec.tokens_per_frame, spec.frames) == (2, 256, 32)
    assert spec.num_visual_tokens == 16 * 256


def test_temporal_patches_pad_a_partial_last_patch_and_methods_see_patches() -> None:
    spec = load_spec("tiny-qwen2.5-vl", frames=7)
    assert (spec.temporal_patches, spec.num_visual_tokens) == (4, 4 * 64)
    view = spec.method_view()
    assert (view.frames, view.tokens_per_frame, view.num_visual_tokens) == (4, 64, 256)
    assert view.method_view() == view and load_spec("tiny").method_view() == load_spec("tiny")
    assert "7 frames in 4 patches of 2" in str(spec)


def test_resolution_sets_the_tokens_per_patch() -> None:
    spec = load_spec("qwen2.5-vl-7b", resolution=(336, 588))
    assert spec.tokens_per_frame == 12 * 21 and spec.frame_shape == (336, 588)
    assert spec.patches_per_frame == 24 * 42
    assert load_spec("qwen2-vl-7b", resolution=(224, 224)).tokens_per_frame == 64


@pytest.mark.parametrize("resolution, fragment", [
    ((300, 300), "resolution 300x300 is not a multiple of the 28 px patch grid .* --resolution 308"),
    ((448, 14), "448x14 is not a multiple"),
])
def test_bad_resolution_is_named(resolution: tuple[int, int], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_spec("qwen2.5-vl-3b", resolution=resolution)


def test_resolution_of_a_fixed_size_family_is_refused() -> None:
    with pytest.raises(ConfigError, match="takes 384 px frames; --resolution applies to .*qwen2_5_vl"):
        load_spec("llava-onevision-7b", resolution=(448, 448))


def test_qwen2_5_vl_config_is_read_with_transformers_defaults() -> None:
    # The 72B's published config.json lists only the vision keys that differ from transformers' defaults.
    config = {"model_type": "qwen2_5_vl", "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
              "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 152064,
              "vision_config": {"hidden_size": 1280, "intermediate_size": 3456, "model_type": "qwen2_5_vl",
                                "out_hidden_size": 8192, "spatial_patch_size": 14, "tokens_per_second": 2}}
    spec = spec_from_config(config, name="72b")
    preset = load_spec("qwen2.5-vl-72b")
    assert dataclasses.replace(spec, name=preset.name) == preset
    config["vision_config"]["fullatt_block_indexes"] = "7"
    with pytest.raises(ConfigError, match="'fullatt_block_indexes' must be a list"):
        spec_from_config(config, name="bad")


def test_another_multimodal_family_is_never_priced_or_built_as_llava_onevision() -> None:
    config = {**LLAVA_CONFIG, "model_type": "idefics3"}
    with pytest.raises(ConfigError, match="key 'model_type' is 'idefics3', not a model family vidcost reads"):
        spec_from_config(config, name="other")


@pytest.mark.parametrize("where, value", [("model_type", "llava_onevisoin"), ("text_config.model_type", "qwen9")])
def test_a_model_type_outside_the_families_is_named(where: str, value: str) -> None:
    config = json.loads(json.dumps(LLAVA_CONFIG))
    section = config["text_config"] if where.startswith("text_config") else config
    section["model_type"] = value
    with pytest.raises(ConfigError) as info:
        spec_from_config(config, name="typo")
    message = str(info.value)
    from vidcost.spec import RUNTIME_FAMILIES

    assert f"key '{where}' is '{value}'" in message and all(family in message for family in RUNTIME_FAMILIES)
    assert len(message) < 300


@pytest.mark.parametrize("name, canonical", [
    ("llava-onevision-7b", "llava-onevision-7b"), ("llava-onevision-qwen2-7b-ov", "llava-onevision-7b"),
    ("lmms-lab/llava-onevision-qwen2-0.5b-ov", "llava-onevision-0.5b"),
    ("/models/llava-onevision-qwen2-7b-ov-hf/", "llava-onevision-7b"),
    ("/models/LLaVA-Video-7B-Qwen2/config.json", "llava-video-7b"), ("my-finetune", "my-finetune"), (None, None),
])
def test_a_checkpoint_joins_under_its_preset(name, canonical) -> None:
    from vidcost.spec import canonical_model

    assert canonical_model(name) == canonical
