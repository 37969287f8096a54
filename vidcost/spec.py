"""ModelSpec: the dimensions of a Video LLM that cost depends on.

A spec comes from a preset name (a plain table, values from DESIGN §3) or from a Hugging Face
`config.json` (a file, or a local model directory holding one). Nested multimodal configs
(`text_config` / `vision_config` of LlavaOnevisionConfig, Qwen2VLConfig, Qwen2_5_VLConfig) and plain LLM
configs (Qwen2Config, LlamaConfig, MistralConfig) are read. No torch, no transformers: pricing a spec is fast.

Qwen-VL models encode two frames into one set of tokens (the temporal patch) and take any resolution
that is a multiple of 28 px (14 px patches, 2×2 merge): their `tokens_per_frame` counts the tokens of one
temporal patch, (H/28)·(W/28), and `method_view()` is the spec as a pruning method sees the video —
one "frame" per temporal patch.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from vidcost.errors import ConfigError

# Vision tower of the LLaVA family: SigLIP-so400m-patch14-384, 26 layers used (DESIGN §3).
_SIGLIP_SO400M = dict(
    vision_hidden_size=1152,
    vision_intermediate_size=4304,
    vision_layers=26,
    vision_heads=16,
    image_size=384,
    patch_size=14,
)

# Vision tower of Qwen2.5-VL (all sizes): a 32-layer ViT, 1280 wide, 16 heads, 14 px patches, SwiGLU MLP;
# windowed attention (112 px windows) except in layers 7, 15, 23 and 31; 2×2 merge; temporal patch 2.
_QWEN2_5_VL_VISION = dict(
    vision_hidden_size=1280, vision_layers=32, vision_heads=16, image_size=448, patch_size=14, pool_stride=2,
    temporal_patch_size=2, vision_window_size=112, vision_full_attention_layers=(7, 15, 23, 31),
    tokens_per_frame=256, frames=32, architecture="qwen2_5_vl",
)
# The families the staged runtime runs, one module each in vidcost/runtime/families/ (the model_type).
RUNTIME_FAMILIES = ("llava_onevision", "qwen2_5_vl", "qwen2_vl")
# Families whose frames can have any size that is a multiple of patch × merge (--resolution).
DYNAMIC_RESOLUTION_FAMILIES = ("qwen2_5_vl", "qwen2_vl")

# Presets: one row per model, gpt-fast style. Keys are ModelSpec fields.
PRESETS: dict[str, dict[str, Any]] = {
    "llava-onevision-7b": dict(
        hidden_size=3584, intermediate_size=18944, num_layers=28, num_heads=28, num_kv_heads=4,
        vocab_size=152064, tie_word_embeddings=False, tokens_per_frame=196, frames=32,
        pool_stride=2, **_SIGLIP_SO400M,
    ),
    "llava-video-7b": dict(
        hidden_size=3584, intermediate_size=18944, num_layers=28, num_heads=28, num_kv_heads=4,
        vocab_size=152064, tie_word_embeddings=False, tokens_per_frame=169, frames=64,
        pool_stride=2, **_SIGLIP_SO400M,
    ),
    "llava-onevision-0.5b": dict(
        hidden_size=896, intermediate_size=4864, num_layers=24, num_heads=14, num_kv_heads=2,
        vocab_size=151936, tie_word_embeddings=True, tokens_per_frame=196, frames=32,
        pool_stride=2, **_SIGLIP_SO400M,
    ),
    "llava-onevision-72b": dict(
        hidden_size=8192, intermediate_size=29568, num_layers=80, num_heads=64, num_kv_heads=8,
        vocab_size=152064, tie_word_embeddings=False, tokens_per_frame=196, frames=32,
        pool_stride=2, **_SIGLIP_SO400M,
    ),
    # Qwen2-VL: (H/28)·(W/28) tokens per 2 frames (temporal patch 2) → 256 per 2 frames at 448×448;
    # 32 frames → 4,096 tokens. Its ViT is 32 layers × 1280 (mlp_ratio 4), full attention in every layer.
    # LLM: huggingface.co/Qwen/Qwen2-VL-7B-Instruct config.json (as mirrored in
    # huggingface.co/unsloth/Qwen2-VL-7B-Instruct-unsloth-bnb-4bit); ViT: transformers' Qwen2VLVisionConfig.
    "qwen2-vl-7b": dict(
        hidden_size=3584, intermediate_size=18944, num_layers=28, num_heads=28, num_kv_heads=4,
        vocab_size=152064, tie_word_embeddings=False, tokens_per_frame=256, frames=32,
        vision_hidden_size=1280, vision_intermediate_size=5120, vision_layers=32, vision_heads=16,
        image_size=448, patch_size=14, pool_stride=2, temporal_patch_size=2, architecture="qwen2_vl",
    ),
    # Qwen2.5-VL, from the published config.json files: huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct
    # (tied embeddings, vocab 151936), huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct(-AWQ), and
    # huggingface.co/Qwen/Qwen2.5-VL-72B-Instruct (its -AWQ copy pads the MLP to 29696 for 4-bit groups;
    # the bf16 release keeps Qwen2.5-72B's 29568). The ViT differs only in its MLP width (3456 for 72B).
    "qwen2.5-vl-3b": dict(
        hidden_size=2048, intermediate_size=11008, num_layers=36, num_heads=16, num_kv_heads=2,
        vocab_size=151936, tie_word_embeddings=True, vision_intermediate_size=3420, **_QWEN2_5_VL_VISION,
    ),
    "qwen2.5-vl-7b": dict(
        hidden_size=3584, intermediate_size=18944, num_layers=28, num_heads=28, num_kv_heads=4,
        vocab_size=152064, tie_word_embeddings=False, vision_intermediate_size=3420, **_QWEN2_5_VL_VISION,
    ),
    "qwen2.5-vl-72b": dict(
        hidden_size=8192, intermediate_size=29568, num_layers=80, num_heads=64, num_kv_heads=8,
        vocab_size=152064, tie_word_embeddings=False, vision_intermediate_size=3456, **_QWEN2_5_VL_VISION,
    ),
    # The embedded default: LLaVA-OneVision-shaped, a full forward well under a second on a CPU.
    # 224 px / patch 14 → 16×16 patches, 2×2 pooling → 8×8 = 64 tokens per frame.
    "tiny": dict(
        hidden_size=256, intermediate_size=768, num_layers=6, num_heads=8, num_kv_heads=2,
        vocab_size=4096, tie_word_embeddings=False, tokens_per_frame=64, frames=16,
        vision_hidden_size=128, vision_intermediate_size=512, vision_layers=4, vision_heads=4,
        image_size=224, patch_size=14, pool_stride=2,
    ),
    # A Qwen2.5-VL of the tiny LLM's size, fast on a CPU: 224 px → 16×16 patches → 8×8 = 64 tokens per
    # two frames; its 4-layer ViT has windowed layers (112 px windows: 4 per frame) and full layers 1, 3.
    "tiny-qwen2.5-vl": dict(
        hidden_size=256, intermediate_size=768, num_layers=6, num_heads=8, num_kv_heads=2,
        vocab_size=4096, tie_word_embeddings=False, vision_intermediate_size=128,
        **{**_QWEN2_5_VL_VISION, "vision_hidden_size": 64, "vision_layers": 4, "vision_heads": 4,
           "vision_full_attention_layers": (1, 3), "image_size": 224, "tokens_per_frame": 64, "frames": 8},
    ),
}

DEFAULT_PRESET = "tiny"
DEFAULT_TEXT_TOKENS = 32

# Hugging Face checkpoints with each preset's dimensions: an lmms-eval run of one (`pretrained=...`) and a
# profile of the preset (or of a local copy of the checkpoint) are the same model when joined.
CHECKPOINTS: dict[str, tuple[str, ...]] = {
    "llava-onevision-0.5b": ("lmms-lab/llava-onevision-qwen2-0.5b-ov", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"),
    "llava-onevision-7b": ("lmms-lab/llava-onevision-qwen2-7b-ov", "llava-hf/llava-onevision-qwen2-7b-ov-hf"),
    "llava-onevision-72b": ("lmms-lab/llava-onevision-qwen2-72b-ov-sft", "llava-hf/llava-onevision-qwen2-72b-ov-hf"),
    "llava-video-7b": ("lmms-lab/LLaVA-Video-7B-Qwen2",),
    "qwen2-vl-7b": ("Qwen/Qwen2-VL-7B-Instruct",),
    "qwen2.5-vl-3b": ("Qwen/Qwen2.5-VL-3B-Instruct",),
    "qwen2.5-vl-7b": ("Qwen/Qwen2.5-VL-7B-Instruct",),
    "qwen2.5-vl-72b": ("Qwen/Qwen2.5-VL-72B-Instruct",),
}

# Plain decoders a config.json may hold (alone, or as a video LLM's `text_config`), priced as an LLM whose
# input includes the visual tokens; gpt2 / opt / phi have a two-matrix MLP. With RUNTIME_FAMILIES, the
# model_type values vidcost reads: any other is a typo or a model it would misprice.
LLM_FAMILIES: tuple[str, ...] = ("qwen2", "llama", "mistral", "gpt2", "opt", "phi")


@dataclass(frozen=True)
class ModelSpec:
    """Everything the cost of a Video LLM prefill depends on.

    Attributes:
        name: preset name or the path the spec was read from.
        hidden_size: LLM hidden size d.
        intermediate_size: LLM MLP intermediate size m.
        num_layers: LLM decoder layers L.
        num_heads: attention heads.
        num_kv_heads: key/value heads (GQA); equal to `num_heads` for multi-head attention.
        vocab_size: LM-head rows.
        tie_word_embeddings: LM head shares the embedding matrix (fewer weight bytes).
        tokens_per_frame: visual tokens per frame entering the LLM (after pooling) — per temporal patch
            of `temporal_patch_size` frames (Qwen-VL: two).
        frames: frames per video (a last temporal patch that is not full repeats the last frame, as the
            Qwen-VL processor pads it).
        text_tokens: text (prompt + question) tokens entering the LLM.
        head_dim: per-head size; `hidden_size // num_heads` unless the config says otherwise.
        mlp_matrices: 3 for SwiGLU (gate, up, down), 2 for a plain MLP.
        vision_*: the vision tower (0 layers when unknown).
        image_size / patch_size: vision input side (the height) in pixels and patch side.
        image_width: frame width in pixels when it differs from `image_size`; 0 for square frames.
        pool_stride: spatial pooling of patch features per side before the LLM (LLaVA-OV: 2; the 2×2
            merge of Qwen-VL).
        temporal_patch_size: frames the vision tower encodes into one set of tokens (Qwen-VL: 2).
        vision_window_size: window side in pixels of a windowed-attention vision layer (Qwen2.5-VL: 112);
            0 when every vision layer attends over the whole frame.
        vision_full_attention_layers: the vision layers that attend over the whole frame when the others
            are windowed.
        architecture: the family (the transformers `model_type`: "llava_onevision", "qwen2_5_vl",
            "qwen2_vl") or "llm" (a plain decoder).
        config_path: the config.json the spec was read from, when it was.
    """

    name: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    tokens_per_frame: int
    frames: int
    text_tokens: int = DEFAULT_TEXT_TOKENS
    head_dim: int = 0
    mlp_matrices: int = 3
    tie_word_embeddings: bool = False
    vision_hidden_size: int = 0
    vision_intermediate_size: int = 0
    vision_layers: int = 0
    vision_heads: int = 0
    image_size: int = 0
    patch_size: int = 0
    pool_stride: int = 1
    image_width: int = 0
    temporal_patch_size: int = 1
    vision_window_size: int = 0
    vision_full_attention_layers: tuple[int, ...] = ()
    architecture: str = "llava_onevision"
    config_path: str | None = None

    def __post_init__(self) -> None:
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden_size // max(self.num_heads, 1))
        _check_positive(self, ("hidden_size", "intermediate_size", "num_layers", "num_heads",
                               "num_kv_heads", "vocab_size", "tokens_per_frame", "head_dim", "temporal_patch_size"))
        # A tuple however it arrived (a JSON list from a stored record): the spec stays hashable.
        object.__setattr__(self, "vision_full_attention_layers", tuple(self.vision_full_attention_layers))
        if self.frames < 1:
            raise ConfigError(f"frames must be at least 1, got {self.frames}; pass --frames 1 or more")
        if self.text_tokens < 0:
            raise ConfigError(f"text tokens must be 0 or more, got {self.text_tokens}")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}; "
                "fix the config")

    @property
    def temporal_patches(self) -> int:
        """T': the sets of tokens the video becomes — frames / temporal patch, a partial last patch included."""
        return -(-self.frames // self.temporal_patch_size)

    @property
    def num_visual_tokens(self) -> int:
        """Visual tokens entering the LLM without pruning: temporal patches × tokens per frame (patch)."""
        return self.temporal_patches * self.tokens_per_frame

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(height, width) of a frame entering the vision tower, in pixels."""
        return self.image_size, self.image_width or self.image_size

    def method_view(self) -> "ModelSpec":
        """The spec as a pruning method sees the video: T' "frames" of `tokens_per_frame` tokens each.

        A method plans on `frames` and `tokens_per_frame` and gets `[T', P, D]` features; for Qwen-VL a
        frame there is a temporal patch of two frames. The identity for one frame per patch. LLM FLOPs
        price alike on both; the vision tower only on the spec itself (the view has lost the patch size).
        """
        if self.temporal_patch_size == 1:
            return self
        return dataclasses.replace(self, frames=self.temporal_patches, temporal_patch_size=1)

    def with_resolution(self, height: int, width: int | None = None) -> "ModelSpec":
        """The spec at a frame size of height × width pixels (square when `width` is None).

        Raises:
            ConfigError: a family with a fixed frame size, or a size that is not a multiple of the
                patch grid (patch × merge: 28 px for Qwen-VL).
        """
        width = height if width is None else width
        if self.architecture not in DYNAMIC_RESOLUTION_FAMILIES:
            raise ConfigError(
                f"model '{self.name}' ({self.architecture}) takes {self.image_size} px frames; --resolution "
                f"applies to the families {list(DYNAMIC_RESOLUTION_FAMILIES)}")
        grid = self.patch_size * self.pool_stride
        for side in (height, width):
            if isinstance(side, bool) or not isinstance(side, int) or side < grid or side % grid:
                nearest = max(grid, round(side / grid) * grid) if isinstance(side, int) else grid
                raise ConfigError(
                    f"resolution {height}x{width} is not a multiple of the {grid} px patch grid "
                    f"({self.patch_size} px patches, {self.pool_stride}×{self.pool_stride} merge) of "
                    f"'{self.name}'; pass e.g. --resolution {nearest}")
        return dataclasses.replace(self, image_size=height, image_width=0 if width == height else width,
                                   tokens_per_frame=(height // grid) * (width // grid))

    @property
    def kv_dim(self) -> int:
        """Width of the K (or V) projection: kv heads × head dim (GQA-sized)."""
        return self.num_kv_heads * self.head_dim

    @property
    def patches_per_frame(self) -> int:
        """Vision-tower patches per frame (0 when the vision tower is unknown)."""
        if not self.patch_size:
            return 0
        height, width = self.frame_shape
        return (height // self.patch_size) * (width // self.patch_size)

    def with_overrides(self, **changes: Any) -> "ModelSpec":
        """A copy with some fields replaced (None values are ignored); validates again."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as stored in profile records."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        frames = f"{self.frames} frames"
        if self.temporal_patch_size > 1:
            frames += f" in {self.temporal_patches} patches of {self.temporal_patch_size}"
        return (f"{self.name}: d={self.hidden_size} m={self.intermediate_size} L={self.num_layers} "
                f"heads={self.num_heads}/{self.num_kv_heads} | {frames} × "
                f"{self.tokens_per_frame} tokens + {self.text_tokens} text")


def canonical_model(name: Any) -> str | None:
    """The name a model is joined under: its preset when `name` is a preset, one of its `CHECKPOINTS`
    (a Hub id, or a local directory or config.json path ending in the checkpoint's name), else `name`."""
    if name is None:
        return None
    text = str(name).rstrip("/")
    if text in PRESETS:
        return text
    path = Path(text)
    leaf = (path.parent.name if path.name == "config.json" else path.name).lower()
    for preset, repos in CHECKPOINTS.items():
        if any(leaf == repo.rsplit("/", 1)[-1].lower() for repo in repos):
            return preset
    return text


def _check_positive(spec: ModelSpec, names: tuple[str, ...]) -> None:
    for field_name in names:
        value = getattr(spec, field_name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{field_name} must be a positive integer, got {value!r} for '{spec.name}'")


def load_spec(
    model: str = DEFAULT_PRESET,
    *,
    frames: int | None = None,
    tokens_per_frame: int | None = None,
    text_tokens: int | None = None,
    resolution: tuple[int, int] | None = None,
) -> ModelSpec:
    """Build a ModelSpec from a preset name, a config.json path, or a model directory holding one.

    Args:
        model: preset name (see `PRESETS`) or a path.
        frames: override the frame count.
        tokens_per_frame: override the visual tokens per frame.
        text_tokens: override the text tokens.
        resolution: (height, width) of the frames, for families of dynamic resolution (Qwen-VL); sets
            the tokens per frame.

    Raises:
        ConfigError: unknown preset, missing file, unreadable JSON, a missing key (named), or a
            resolution the model cannot take.
    """
    if model in PRESETS:
        spec = ModelSpec(name=model, **PRESETS[model])
    else:
        path = Path(model)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ConfigError(
                f"Unknown model '{model}': not a preset and no config.json there; choose a preset "
                f"from {sorted(PRESETS)} or pass a path to a config.json or a model directory")
        spec = spec_from_config(read_config_json(path), name=str(model), config_path=str(path))
    if resolution is not None:
        spec = spec.with_resolution(*resolution)
    return spec.with_overrides(frames=frames, tokens_per_frame=tokens_per_frame, text_tokens=text_tokens)


def read_config_json(path: Path) -> dict[str, Any]:
    """A config.json as a dict; an unreadable or non-object file is a named ConfigError."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"Cannot read config '{path}': {err}; pass a valid config.json") from err
    if not isinstance(data, dict):
        raise ConfigError(f"Config '{path}' is not a JSON object")
    return data


def _require(config: dict[str, Any], key: str, where: str, *aliases: str) -> Any:
    for name in (key, *aliases):
        if name in config and config[name] is not None:
            return _positive_int(config[name], name, where)
    raise ConfigError(f"config.json {where}is missing key '{key}'; add it or use a preset")


def _optional(config: dict[str, Any], key: str, where: str, default: Any) -> Any:
    value = config.get(key)
    return default if value is None else _positive_int(value, key, where)


def _positive_int(value: Any, key: str, where: str) -> int:
    # A dimension of 0, a string or a float would otherwise fail later as a ZeroDivisionError / TypeError.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"config.json {where}key '{key}' must be a positive integer, got {value!r}; fix it")
    return value


def known_families() -> str:
    """The families vidcost reads, in words (for error messages: a short list, not transformers' hundreds)."""
    return f"video LLMs {', '.join(RUNTIME_FAMILIES)}; plain decoders (priced only) {', '.join(LLM_FAMILIES)}"


def _check_model_type(config: dict[str, Any], key: str, known: Sequence[str]) -> None:
    """A `model_type` outside the families vidcost reads is a typo or a model it would misprice."""
    value = config.get("model_type")
    if value is not None and value not in known:
        raise ConfigError(f"config.json key '{key}' is {value!r}, not a model family vidcost reads; known: "
                          f"{known_families()}; fix the key or use a preset")


def spec_from_config(config: dict[str, Any], *, name: str, config_path: str | None = None) -> ModelSpec:
    """Read a ModelSpec from a Hugging Face config dictionary (nested multimodal or plain LLM).

    Raises:
        ConfigError: a `model_type` outside the families vidcost reads (`known_families`), a missing key,
            or a value that is not a positive integer (each named).
    """
    _check_model_type(config, "model_type", (*RUNTIME_FAMILIES, *LLM_FAMILIES))
    model_type = config.get("model_type", "")
    if "text_config" in config:
        text, where = config["text_config"], "text_config "
    else:
        text, where = config, ""
    if not isinstance(text, dict):
        raise ConfigError(f"config.json text_config must be an object, got {type(text).__name__}")
    if text is not config:  # a video LLM's decoder: a plain family, or its own "<family>_text"
        _check_model_type(text, "text_config.model_type", (*LLM_FAMILIES, *(f"{f}_text" for f in RUNTIME_FAMILIES)))
    hidden = _require(text, "hidden_size", where, "n_embd", "d_model")
    heads = _require(text, "num_attention_heads", where, "n_head")
    fields: dict[str, Any] = dict(
        hidden_size=hidden,
        intermediate_size=_require(text, "intermediate_size", where, "n_inner"),
        num_layers=_require(text, "num_hidden_layers", where, "n_layer"),
        num_heads=heads,
        num_kv_heads=_optional(text, "num_key_value_heads", where, heads),
        vocab_size=_require(text, "vocab_size", where),
        head_dim=_optional(text, "head_dim", where, hidden // heads),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
        mlp_matrices=2 if text.get("hidden_act") in ("gelu", "gelu_new", "relu") and
        text.get("model_type") in ("gpt2", "opt", "phi") else 3,
    )
    vision = config.get("vision_config")
    vision_type = vision.get("model_type", "") if isinstance(vision, dict) else ""
    if model_type == "qwen2_5_vl" or vision_type in ("qwen2_5_vl", "qwen2_5_vl_vision"):
        fields.update(_qwen2_5_vl_vision(vision or {}), architecture="qwen2_5_vl")
    elif model_type == "qwen2_vl" or vision_type in ("qwen2_vl", "qwen2_vl_vision"):
        fields.update(_qwen2_vl_vision(vision or {}), architecture="qwen2_vl")
    elif isinstance(vision, dict):
        # A SigLIP-style tower priced as LLaVA-OneVision's (a model_type outside the known families was refused
        # above; one without a model_type is taken as LLaVA-OneVision).
        fields.update(_siglip_vision(vision), architecture=model_type or "llava_onevision")
    else:
        # A plain LLM: no vision tower; visual tokens are priced as tokens entering the LLM.
        fields.update(architecture="llm", tokens_per_frame=196, frames=32)
    return ModelSpec(name=name, config_path=config_path, **fields)


def _siglip_vision(vision: dict[str, Any]) -> dict[str, Any]:
    image = _require(vision, "image_size", "vision_config ")
    patch = _require(vision, "patch_size", "vision_config ")
    side = image // patch
    # LLaVA-OV video pooling: 2×2 bilinear to ceil(side/2) per side (27 → 14).
    pooled = math.ceil(side / 2)
    return dict(
        vision_hidden_size=_require(vision, "hidden_size", "vision_config "),
        vision_intermediate_size=_require(vision, "intermediate_size", "vision_config "),
        vision_layers=_require(vision, "num_hidden_layers", "vision_config "),
        vision_heads=_require(vision, "num_attention_heads", "vision_config "),
        image_size=image, patch_size=patch, pool_stride=2,
        tokens_per_frame=pooled * pooled, frames=32,
    )


def _qwen2_vl_vision(vision: dict[str, Any]) -> dict[str, Any]:
    where = "vision_config "
    embed = _optional(vision, "embed_dim", where, 1280)
    mlp_ratio = vision.get("mlp_ratio", 4)
    if isinstance(mlp_ratio, bool) or not isinstance(mlp_ratio, (int, float)) or mlp_ratio <= 0:
        raise ConfigError(f"config.json vision_config key 'mlp_ratio' must be a positive number, got {mlp_ratio!r}")
    return dict(
        vision_hidden_size=embed,
        vision_intermediate_size=int(embed * mlp_ratio),
        vision_layers=_optional(vision, "depth", where, 32),
        vision_heads=_optional(vision, "num_heads", where, 16),
        **_qwen_vl_frames(vision, where),
    )


def _qwen_vl_frames(vision: dict[str, Any], where: str) -> dict[str, Any]:
    """Patch, merge and temporal patch of a Qwen-VL tower; 448 px frames by default (--resolution changes it)."""
    patch = _optional(vision, "patch_size", where, _optional(vision, "spatial_patch_size", where, 14))
    merge = _optional(vision, "spatial_merge_size", where, 2)
    side = 448 // (patch * merge) * (patch * merge)
    # (H/28)·(W/28) merged tokens per temporal patch: 256 at 448 × 448.
    return dict(image_size=side, patch_size=patch, pool_stride=merge,
                temporal_patch_size=_optional(vision, "temporal_patch_size", where, 2),
                tokens_per_frame=(side // (patch * merge)) ** 2, frames=32)


def _qwen2_5_vl_vision(vision: dict[str, Any]) -> dict[str, Any]:
    """Qwen2.5-VL's tower; absent keys take transformers' Qwen2_5_VLVisionConfig defaults, as it does."""
    where = "vision_config "
    full = vision.get("fullatt_block_indexes", (7, 15, 23, 31))
    if not isinstance(full, (list, tuple)) or not all(isinstance(i, int) and i >= 0 for i in full):
        raise ConfigError(f"config.json vision_config key 'fullatt_block_indexes' must be a list of layer "
                          f"indices, got {full!r}; fix it")
    return dict(
        vision_hidden_size=_optional(vision, "hidden_size", where, 1280),
        vision_intermediate_size=_optional(vision, "intermediate_size", where, 3420),
        vision_layers=_optional(vision, "depth", where, 32),
        vision_heads=_optional(vision, "num_heads", where, 16),
        vision_window_size=_optional(vision, "window_size", where, 112),
        vision_full_attention_layers=tuple(full),
        **_qwen_vl_frames(vision, where),
    )
