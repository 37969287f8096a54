"""LoadedModel: a real transformers Video-LLM, shape-only (seeded random weights) or local weights.

The model class and its config come from the spec's family (`vidcost.runtime.families`:
LLaVA-OneVision, Qwen2.5-VL, Qwen2-VL).

Shape-only models are what cost profiling needs: a model's cost does not depend on its weights
(DESIGN §6). They are built without transformers' per-module weight initialisation (minutes for 7B on a
CPU) and then materialised with one seeded normal draw per parameter, so building is fast and the same
seed gives the same weights. Local weights load with `local_files_only=True` and no remote code;
nothing is ever fetched from a hub.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidcost.errors import ConfigError, ProfilingError

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec

DTYPES = ("float32", "bfloat16", "float16")
INIT_STD = 0.02  # initializer_range of Qwen2 / SigLIP configs
POOL_SIZE = 1_000_003  # a prime: cyclic filling never aligns with a matrix row


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for the staged runtime.

    Attributes:
        model: the family's `...ForConditionalGeneration`, in eval mode.
        spec: the ModelSpec it was built from.
        device: torch device string ("cpu", "cuda:0").
        dtype: parameter dtype name ("float32", "bfloat16").
        tokenizer: the model directory's tokenizer, or None (seeded token ids are used instead).
        source: "shape-only" or the local weights directory.
    """

    model: Any
    spec: "ModelSpec"
    device: str
    dtype: str
    tokenizer: Any = None
    source: str = "shape-only"

    def __str__(self) -> str:
        return f"LoadedModel({self.spec.name}, {self.source}, {self.device}, {self.dtype})"


def resolve_device(device: str) -> str:
    """Validate a device name; "cuda" becomes "cuda:0".

    Raises:
        ProfilingError: CUDA requested but not available, or a device index this machine does not have.
        ConfigError: an unknown device name.
    """
    import torch

    if device == "cpu":
        return "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ProfilingError(
                f"--device {device} was requested but CUDA is not available on this machine; use --device cpu")
        if device == "cuda":
            return "cuda:0"
        index = device.removeprefix("cuda:")
        if not index.isdigit():  # also "cuda1": without the prefix, index is the whole name
            raise ConfigError(f"unknown device '{device}'; choose cpu, cuda or cuda:N")
        count = torch.cuda.device_count()
        if int(index) >= count:
            raise ProfilingError(f"--device {device} does not exist: this machine has {count} visible CUDA "
                                 f"device(s); use cuda:0 to cuda:{count - 1}")
        return f"cuda:{int(index)}"
    raise ConfigError(f"unknown device '{device}'; choose cpu or cuda")


def resolve_dtype(dtype: str | None, device: str) -> str:
    """Default dtype: bfloat16 on GPU, float32 on CPU; validate an explicit choice."""
    if dtype is None:
        return "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype '{dtype}'; choose one of {list(DTYPES)}")
    if dtype == "float16" and device == "cpu":
        raise ConfigError("float16 is not supported on CPU; use --dtype float32 or bfloat16")
    return dtype


def build_model(spec: "ModelSpec", *, model_path: str | None = None, device: str = "cpu",
                dtype: str | None = None, seed: int = 0, attn_implementation: str = "sdpa") -> LoadedModel:
    """Build the model of a spec (shape-only) or load it from a local directory.

    Args:
        spec: model dimensions; its family's config (`Family.hf_config`) is used for shape-only models.
        model_path: a local model directory with config.json and weights; None builds shape-only.
        device: "cpu", "cuda" or "cuda:N".
        dtype: "float32", "bfloat16" (or "float16" on GPU); default bfloat16 on GPU, float32 on CPU.
        seed: seeds the random weights of a shape-only model.
        attn_implementation: "sdpa" (default, fast) or "eager" (what FLOP counters can see).

    Raises:
        ConfigError: bad dtype/device, a family the runtime does not run, a missing or unreadable model
            directory, or one of another family than the spec's.
        ProfilingError: CUDA requested without CUDA, or out of memory while building.
    """
    import torch

    from vidcost.runtime.families import get_family

    family = get_family(spec.architecture)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    torch_dtype = getattr(torch, dtype)
    try:
        if model_path is not None:
            model, tokenizer = _load_local(model_path, family, torch_dtype, attn_implementation)
            model.to(device)
            source = str(model_path)
        else:
            model = _build_shape_only(spec, family, torch_dtype, device, seed, attn_implementation)
            tokenizer, source = None, "shape-only"
    except torch.OutOfMemoryError as err:
        raise ProfilingError(
            f"out of memory building '{spec.name}' on {device} in {dtype}; use a smaller --model, "
            "--dtype bfloat16, or a device with more memory") from err
    model.eval()
    return LoadedModel(model=model, spec=spec, device=device, dtype=dtype, tokenizer=tokenizer, source=source)


def _build_shape_only(spec: "ModelSpec", family: Any, torch_dtype: "torch.dtype", device: str, seed: int,
                      attn_implementation: str) -> Any:
    import torch
    from transformers.initialization import no_init_weights

    config = family.hf_config(spec)
    model_class = family.model_class()
    _set_attention(config, attn_implementation)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype if torch_dtype.is_floating_point else torch.float32)
    try:
        # Skipping transformers' init saves minutes for 7B; the parameters are drawn below instead.
        # Constructing on the target device keeps the buffers (RoPE inv_freq, position ids) real.
        with no_init_weights(), torch.device(device):
            model = model_class(config)
    finally:
        torch.set_default_dtype(previous)
    # No model.to(dtype): that would also round float32 buffers such as RoPE's inv_freq.
    materialise_weights(model, seed)
    return model


def materialise_weights(model: Any, seed: int) -> None:
    """Seeded random weights: norms 1, biases 0, everything else N(0, 0.02²) values.

    Norms are found by name: `norm` (RMSNorm / LayerNorm of the decoder and SigLIP), and `ln_` (the
    RMSNorm before Qwen-VL's patch merger).

    Drawing billions of normals takes minutes for a 7B model, so one pool of `POOL_SIZE` normals is drawn
    (a prime length, so matrix rows never line up with it) and each parameter is filled with the pool,
    cyclically, from its own seeded offset — a copy at memory speed, on the parameter's own device.
    Cost does not depend on the values; the values only need to be finite, varied and reproducible.
    """
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    pool_cpu = torch.empty(POOL_SIZE, dtype=torch.float32).normal_(0.0, INIT_STD, generator=generator)
    pools: dict[tuple[Any, Any], Any] = {}
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ("norm" in name or ".ln_" in name) and name.endswith("weight"):
                param.fill_(1.0)
            elif name.endswith("bias"):
                param.zero_()
            else:
                key = (param.device, param.dtype)
                if key not in pools:
                    pool = pool_cpu.to(device=param.device, dtype=param.dtype)
                    pools[key] = torch.cat([pool, pool])  # doubled, so any offset has POOL_SIZE values after it
                _fill_cyclic(param.view(-1), pools[key], int(torch.randint(POOL_SIZE, (1,), generator=generator)))


def _fill_cyclic(flat: Any, doubled_pool: Any, offset: int) -> None:
    """flat[i] = pool[(offset + i) mod POOL_SIZE], written in POOL_SIZE-long chunks."""
    window = doubled_pool[offset:offset + POOL_SIZE]
    for start in range(0, flat.numel(), POOL_SIZE):
        end = min(start + POOL_SIZE, flat.numel())
        flat[start:end].copy_(window[:end - start])


def _set_attention(config: Any, attn_implementation: str) -> None:
    if attn_implementation not in ("sdpa", "eager"):
        raise ConfigError(f"unknown attention implementation '{attn_implementation}'; choose sdpa or eager")
    for sub in (config, getattr(config, "text_config", None), getattr(config, "vision_config", None)):
        if sub is not None:
            sub._attn_implementation = attn_implementation


def _load_local(model_path: str, family: Any, torch_dtype: "torch.dtype", attn_implementation: str) -> tuple[Any, Any]:
    from vidcost.spec import read_config_json

    directory = Path(model_path)
    if not (directory / "config.json").is_file():
        raise ConfigError(
            f"--model-path '{model_path}' has no config.json; pass a local model directory of one of the "
            "runtime's families")
    model_type = read_config_json(directory / "config.json").get("model_type")
    if model_type != family.name:
        raise ConfigError(f"--model-path '{model_path}' holds a '{model_type}' model but the spec is "
                          f"'{family.name}'; pass --model {model_path} so the spec is read from it")
    try:
        model = family.model_class().from_pretrained(
            str(directory), local_files_only=True, trust_remote_code=False, dtype=torch_dtype,
            attn_implementation=attn_implementation)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load weights from '{model_path}': {err}") from err
    return model, _load_tokenizer(directory)


def _load_tokenizer(directory: Path) -> Any:
    """The directory's tokenizer if it has one, else None (no network, no remote code)."""
    names = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
    if not any((directory / name).is_file() for name in names):
        return None
    from transformers import AutoTokenizer

    with contextlib.suppress(OSError, ValueError):
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True, trust_remote_code=False)
    return None
