"""Hugging Face configs for a ModelSpec: the bridge from vidcost's dimensions to a real transformers model.

A spec read from a config.json gets that file back (local files only, nothing fetched); a preset gets a
`LlavaOnevisionConfig` with a Qwen2 text config and a SigLIP vision config of the preset's dimensions.
transformers is imported inside the functions: pricing a spec never needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidcost.errors import ConfigError
from vidcost.spec import read_config_json

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from vidcost.spec import ModelSpec

ROPE_THETA = 1_000_000.0  # all Qwen2 LLMs (DESIGN §3)
# Qwen2's image/video placeholder ids; presets with a small vocabulary use its last two ids instead.
QWEN2_IMAGE_TOKEN, QWEN2_VIDEO_TOKEN = 151646, 151647


def text_config(spec: "ModelSpec") -> "PretrainedConfig":
    """A Qwen2 decoder config with the spec's LLM dimensions (SwiGLU, GQA, RoPE θ = 1e6)."""
    from transformers import Qwen2Config

    return Qwen2Config(
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        head_dim=spec.head_dim,
        vocab_size=spec.vocab_size,
        tie_word_embeddings=spec.tie_word_embeddings,
        rope_theta=ROPE_THETA,
        max_position_embeddings=max(32768, 2 * (spec.num_visual_tokens + spec.text_tokens)),
        hidden_act="silu",
    )


def vision_config(spec: "ModelSpec") -> "PretrainedConfig":
    """A SigLIP vision-tower config with the spec's vision dimensions."""
    from transformers import SiglipVisionConfig

    if not spec.vision_layers:
        raise ConfigError(f"model '{spec.name}' has no vision tower in its spec; use a LLaVA-OneVision config")
    return SiglipVisionConfig(
        hidden_size=spec.vision_hidden_size,
        intermediate_size=spec.vision_intermediate_size,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        # LLaVA-OneVision takes patch features, never SigLIP's attention-pooling head: don't build it.
        vision_use_head=False,
    )


def llava_onevision_config(spec: "ModelSpec") -> "PretrainedConfig":
    """The LlavaOnevisionConfig of a spec: its own config.json when it came from one, else built from dims."""
    from transformers import LlavaOnevisionConfig

    if spec.architecture not in ("llava_onevision",):
        raise ConfigError(
            f"model '{spec.name}' is a '{spec.architecture}' model, not LLaVA-OneVision; its family "
            "(vidcost.runtime.families) builds its config")
    if spec.config_path:
        return LlavaOnevisionConfig(**read_config_json(Path(spec.config_path)))
    small_vocab = spec.vocab_size <= QWEN2_VIDEO_TOKEN
    extra: dict[str, Any] = {}
    if small_vocab:
        extra = dict(image_token_index=spec.vocab_size - 2, video_token_index=spec.vocab_size - 1)
    return LlavaOnevisionConfig(
        text_config=text_config(spec).to_dict(),
        vision_config=vision_config(spec).to_dict(),
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        image_grid_pinpoints=[[spec.image_size, spec.image_size]],
        tie_word_embeddings=spec.tie_word_embeddings,
        **extra,
    )
