"""save_model: a vidcost model written as a Hugging Face model directory, loadable like a downloaded checkpoint.

`vidcost save-model --model tiny --out DIR` writes what `from_pretrained` and lmms-eval's own backends read:
`config.json` and the (seeded random) weights of the shape-only model, a tokenizer, the image and video
processors, and the chat template. Nothing is downloaded, so the tokenizer is built here:

* a byte-level BPE with no merges — the 256 byte symbols, one token per byte (what GPT-2 / Qwen2 byte-level
  BPE falls back to before merges), so any text round-trips through it;
* the family's special tokens at the ids its config names (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`;
  LLaVA-OneVision's `<image>` / `<video>`; Qwen-VL's `<|vision_start|>`, `<|vision_end|>`,
  `<|image_pad|>`, `<|video_pad|>`), the rest of the vocabulary filled with unreachable placeholders so the
  ids match the embedding table exactly;
* Qwen2's ChatML template (the LLMs of both families are Qwen2), accepting a message's content as a string
  (lmms-eval's `llava_hf`) or as a list of typed parts (transformers' processors, `qwen2_5_vl`).

The weights are random: answers are meaningless but deterministic, which is what comparing two backends on
the same directory needs. A preset with real dimensions (LLaVA-OV-7B) is written the same way, at its size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidcost.errors import ConfigError

if TYPE_CHECKING:
    from vidcost.spec import ModelSpec

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'video' %}{{ video_placeholder }}"
    "{% elif part['type'] == 'image' %}{{ image_placeholder }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Where each family's processor puts a video / an image inside a message's text.
PLACEHOLDERS = {
    "llava_onevision": {"video": "<video>\n", "image": "<image>\n"},
    "qwen2_5_vl": {"video": "<|vision_start|><|video_pad|><|vision_end|>",
                   "image": "<|vision_start|><|image_pad|><|vision_end|>"},
}
PLACEHOLDERS["qwen2_vl"] = PLACEHOLDERS["qwen2_5_vl"]
CHAT_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def chat_template(family: str) -> str:
    """The ChatML template with this family's video and image placeholders written in."""
    marks = PLACEHOLDERS[family]
    return (CHATML_TEMPLATE.replace("{{ video_placeholder }}", marks["video"].replace("\n", "\\n"))
            .replace("{{ image_placeholder }}", marks["image"].replace("\n", "\\n"))
            .replace("\\n", "\n"))


def special_token_ids(config: Any, family: str) -> dict[str, int]:
    """The special tokens of a family and the ids its config gives them (chat tokens right after the bytes)."""
    ids = {token: 256 + i for i, token in enumerate(CHAT_TOKENS)}
    if family == "llava_onevision":
        ids.update({"<image>": int(config.image_token_id), "<video>": int(config.video_token_id)})
    else:
        ids.update({"<|vision_start|>": int(config.vision_start_token_id),
                    "<|vision_end|>": int(config.vision_end_token_id),
                    "<|image_pad|>": int(config.image_token_id), "<|video_pad|>": int(config.video_token_id)})
    return ids


def build_tokenizer(config: Any, family: str, vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (no merges) of exactly `vocab_size` ids, with the family's special tokens.

    Raises:
        ConfigError: the vocabulary is too small for the bytes and the special tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = special_token_ids(config, family)
    if vocab_size < 256 + len(specials) or max(specials.values()) >= vocab_size:
        raise ConfigError(f"a vocabulary of {vocab_size} ids cannot hold the 256 byte tokens and the special "
                          f"tokens {specials}; save a model with a larger vocab_size")
    byte_symbols = pre_tokenizers.ByteLevel.alphabet()  # the 256 printable stand-ins of byte-level BPE
    vocab = {symbol: i for i, symbol in enumerate(sorted(byte_symbols))}
    by_id = {i: token for token, i in specials.items()}
    for i in range(256, vocab_size):
        vocab[by_id.get(i, f"<|vidcost_unused_{i}|>")] = i
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                      additional_special_tokens=[t for t in specials if t not in CHAT_TOKENS],
                                      clean_up_tokenization_spaces=False, model_max_length=32768)
    wrapped.chat_template = chat_template(family)
    return wrapped


def build_processor(config: Any, family: str, tokenizer: Any, spec: "ModelSpec") -> Any:
    """The family's transformers processor (image + video processors, tokenizer, chat template).

    Needs torchvision (transformers' video processors use it): `pip install -e ".[eval]"`.
    """
    try:
        if family == "llava_onevision":
            from transformers import (LlavaOnevisionImageProcessor, LlavaOnevisionProcessor,
                                      LlavaOnevisionVideoProcessor)

            size = {"height": spec.image_size, "width": spec.image_size}
            image = LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=config.image_grid_pinpoints)
            video = LlavaOnevisionVideoProcessor(size=size)
            patches = spec.image_size // spec.patch_size
            return LlavaOnevisionProcessor(
                image_processor=image, tokenizer=tokenizer, video_processor=video, num_image_tokens=patches * patches,
                vision_feature_select_strategy=config.vision_feature_select_strategy,
                chat_template=chat_template(family), vision_aspect_ratio=config.vision_aspect_ratio)
        from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

        vision = config.vision_config
        pixels = spec.image_size * spec.image_size  # the resolution the spec's tokens per patch assume
        sizes = dict(patch_size=vision.patch_size, temporal_patch_size=vision.temporal_patch_size,
                     merge_size=vision.spatial_merge_size, size={"shortest_edge": pixels, "longest_edge": pixels})
        processor_class = Qwen2_5_VLProcessor if family == "qwen2_5_vl" else Qwen2VLProcessor
        return processor_class(image_processor=Qwen2VLImageProcessor(**sizes), tokenizer=tokenizer,
                               video_processor=Qwen2VLVideoProcessor(**sizes), chat_template=chat_template(family))
    except ImportError as err:
        raise ConfigError(f"writing a processor needs torchvision ({err}); install the eval extra: "
                          "pip install -e \".[eval]\"") from err


def save_model(spec: "ModelSpec", out: str | Path, *, seed: int = 0, dtype: str = "float32",
               processor: bool = True, init_std: float | None = None) -> Path:
    """Write the spec's shape-only model as a Hugging Face directory; return the directory.

    Args:
        spec: the model (a preset or a config.json spec); its family must be one the runtime runs.
        out: the directory to write (created; must not hold a config.json already).
        seed: seeds the random weights (the same seed writes the same weights).
        dtype: the weights' dtype.
        processor: also write the image / video processors (needs torchvision); the tokenizer and chat
            template are always written.
        init_std: redraw every weight matrix from N(0, init_std²) (seeded). Transformers' own init (std
            0.02) makes a random model answer the same token whatever it is shown; at ~0.2 its answers depend
            on the video and the question, which is what comparing two backends answer by answer needs.

    Raises:
        ConfigError: `out` already holds a model, the vocabulary is too small for the tokenizer, or
            init_std is not positive.
    """
    from vidcost.runtime.families import get_family
    from vidcost.runtime.model import build_model

    out = Path(out)
    if (out / "config.json").exists():
        raise ConfigError(f"--out '{out}' already holds a model (config.json); choose an empty directory")
    if init_std is not None and not init_std > 0:
        raise ConfigError(f"--init-std {init_std} must be a positive number (e.g. 0.2)")
    family = get_family(spec.architecture).name
    loaded = build_model(spec, seed=seed, dtype=dtype)
    if init_std is not None:
        _redraw_weights(loaded.model, init_std, seed)
    config = loaded.model.config
    tokenizer = build_tokenizer(config, family, spec.vocab_size)
    # built before anything is written: without torchvision nothing is left half-written in `out`
    writer = build_processor(config, family, tokenizer, spec) if processor else tokenizer
    out.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(out)
    writer.save_pretrained(out)
    _write_provenance(out, spec, seed, init_std)
    return out


def _redraw_weights(model: Any, std: float, seed: int) -> None:
    """Every parameter of two or more dimensions ← N(0, std²); norms and biases keep their init."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                drawn = torch.randn(parameter.shape, generator=generator) * std
                parameter.copy_(drawn.to(parameter.dtype))


def _write_provenance(out: Path, spec: "ModelSpec", seed: int, init_std: float | None) -> None:
    """A note beside the weights saying they are random, and from which spec and seed."""
    note = {"written_by": "vidcost save-model", "spec": spec.name, "seed": seed, "init_std": init_std,
            "weights": "random (seeded); cost is real, answers are not"}
    (out / "vidcost_model.json").write_text(json.dumps(note, indent=2) + "\n")
