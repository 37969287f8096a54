"""Grid: what a sweep varies (models, frames, methods with their parameters, budgets), what it holds
fixed (`SweepSettings`), and the cells it expands to, each with its configuration hash.

A grid comes from the command line or from a TOML file (read with the standard library's `tomllib`);
both go through `grid_from_mapping`, so they accept the same keys and fail with the same messages.
`expand_grid` checks every cell exactly as `vidcost profile` would (`check_request`) before anything is
built, and gives each its `config_hash`: the SHA-256 of everything that decides what the cell measures,
so a rerun finds the cells it already has in the store. Pure Python: no torch.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from vidcost.errors import ConfigError
from vidcost.profiling.session import DEFAULT_ENERGY_BLOCKS
from vidcost.spec import DEFAULT_PRESET, ModelSpec

VANILLA = "vanilla"
# Keys of a method's table in a grid file that are not parameters of the method.
METHOD_KEYS = ("name", "budgets")


@dataclass(frozen=True)
class MethodEntry:
    """One method of a grid and the parameters it runs with (its defaults fill the rest).

    Attributes:
        name: registry name (see `vidcost.methods.method_names`).
        params: parameters overriding the method's defaults.
        budgets: budgets for this method only, instead of the grid's (None: the grid's).
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    budgets: tuple[float, ...] | None = None

    @property
    def label(self) -> str:
        """`fastv` or `fastv(layer=3)`: the name and the parameters given."""
        given = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}({given})" if given else self.name


@dataclass(frozen=True)
class SweepSettings:
    """What every cell of a sweep shares (the `vidcost profile` options of the same names).

    Attributes:
        repeats / warmup: measured and warm-up runs per configuration.
        decode_tokens: greedy decode steps after each prefill (0: prefill only).
        energy_blocks: energy blocks per configuration (GPU with NVML only).
        device: "cpu", "cuda" or "cuda:N" (with Ray: "cpu" or "cuda", Ray picks each worker's GPU).
        dtype: "float32", "bfloat16", "float16"; None: bfloat16 on GPU, float32 on CPU.
        seed: seeds the weights, the synthetic video and the token ids.
        threads: torch CPU threads (None: torch's choice, or `--cpus-per-task` on Ray).
        tokens_per_frame / text_tokens: overrides of every model's spec.
        resolution: (height, width) of the frames for Qwen-VL models (multiples of 28 px); None: the
            model's, or the video's own size.
        model_path: local weights for the (single) model; None: shape-only.
        video / question: a video file and question text; None: the seeded synthetic clip.
    """

    repeats: int = 5
    warmup: int = 1
    decode_tokens: int = 0
    energy_blocks: int = DEFAULT_ENERGY_BLOCKS
    device: str = "cpu"
    dtype: str | None = None
    seed: int = 0
    threads: int | None = None
    tokens_per_frame: int | None = None
    text_tokens: int | None = None
    resolution: tuple[int, int] | None = None
    model_path: str | None = None
    video: str | None = None
    question: str | None = None

    @property
    def device_kind(self) -> str:
        """"cpu" or "cuda": the part of the device a cell's identity depends on (any GPU of a cluster)."""
        return device_kind(self.device)


@dataclass(frozen=True)
class Grid:
    """Models × frames × methods × budgets, and the settings every cell shares.

    Attributes:
        methods: the methods, each with its parameters (and optionally its own budgets).
        budgets: kept fractions of visual tokens (a vanilla entry runs once, at 1.0).
        frames: frame counts; None: each model's own.
        models: presets, config.json paths or model directories.
        settings: what the cells share.
    """

    methods: tuple[MethodEntry, ...]
    budgets: tuple[float, ...]
    frames: tuple[int, ...] | None = None
    models: tuple[str, ...] = (DEFAULT_PRESET,)
    settings: SweepSettings = field(default_factory=SweepSettings)


@dataclass(frozen=True)
class Cell:
    """One configuration of a sweep: a method at a budget on a model at a frame count, beside vanilla.

    Attributes:
        model: the grid's model entry (a preset, a config.json or a directory).
        spec: the model's spec at this cell's frame count.
        method: the method's `MethodEntry` (its label names the parameters given).
        params: the method's resolved parameters (defaults included).
        budget: the kept fraction of visual tokens.
        settings: the sweep's shared settings, `dtype` resolved.
        config_hash: hex digest identifying the cell in the store (see `config_hash`).
    """

    model: str
    spec: ModelSpec
    method: MethodEntry
    params: Mapping[str, Any]
    budget: float
    settings: SweepSettings
    config_hash: str

    @property
    def frames(self) -> int:
        return self.spec.frames

    @property
    def label(self) -> str:
        """e.g. `fastv(layer=3) @ 0.25, 8 frames, tiny`."""
        return f"{self.method.label} @ {self.budget:g}, {self.frames} frames, {self.model}"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the dry run's and the sweep's `--json`)."""
        return {"config_hash": self.config_hash, "model": self.model, "frames": self.frames,
                "method": self.method.name, "params": dict(self.params), "budget": self.budget,
                "device": self.settings.device, "dtype": self.settings.dtype}

    def __str__(self) -> str:
        return f"Cell({self.label}, {self.config_hash})"


def device_kind(device: str) -> str:
    """"cpu" or "cuda" for a device name, checked without importing torch.

    Raises:
        ConfigError: not cpu, cuda or cuda:N.
    """
    if device == "cpu":
        return "cpu"
    if device == "cuda" or (device.startswith("cuda:") and device.removeprefix("cuda:").isdigit()):
        return "cuda"
    raise ConfigError(f"unknown device '{device}'; choose cpu, cuda or cuda:N")


def config_hash(spec: ModelSpec, method: str, params: Mapping[str, Any], budget: float,
                settings: SweepSettings) -> str:
    """The identity of a cell: SHA-256 (first 16 hex digits) of everything that decides what it measures.

    The model spec (with the frame count), the method and its resolved parameters, the budget, dtype, the
    device *kind* (so a cell run on any GPU of a cluster is the same cell), repeats, warm-up, decode
    tokens, energy blocks, seed, threads, the inputs (weights, video, question) and vidcost's version.
    Not the git revision: a commit that changes no measurement should not redo a sweep.
    """
    from vidcost import __version__

    payload = {"vidcost": __version__, "model": spec.to_dict(), "method": method, "params": dict(params),
               "budget": float(budget), "frames": spec.frames, "device": settings.device_kind,
               **{k: v for k, v in asdict(settings).items() if k != "device"}}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def expand_grid(grid: Grid) -> list[Cell]:
    """Every cell of a grid, in run order (model, frames, method, budget), each checked before any runs.

    Raises:
        ConfigError: an empty grid (no models, methods, budgets or frames), an unknown model, method or
            parameter, a budget a method cannot reach, bad settings, or a cell listed twice — the cell
            named.
    """
    from vidcost.runtime.model import resolve_dtype

    _check_not_empty(grid)
    settings = _checked_settings(grid.settings)
    settings = SweepSettings(**{**asdict(settings), "dtype": resolve_dtype(settings.dtype, settings.device)})
    cells: list[Cell] = []
    seen: dict[str, Cell] = {}
    for model in grid.models:
        for spec in _model_specs(model, grid.frames, settings):
            for entry in grid.methods:
                budgets = (1.0,) if entry.name == VANILLA else entry.budgets or grid.budgets
                for budget in budgets:
                    cell = _checked_cell(model, spec, entry, budget, settings)
                    if cell.config_hash in seen:
                        raise ConfigError(f"the grid lists the cell {cell.label} twice; remove the duplicate "
                                          "budget, frame count, model or method entry")
                    seen[cell.config_hash] = cell
                    cells.append(cell)
    return cells


def _check_not_empty(grid: Grid) -> None:
    hints = {"models": "--model M", "methods": "--methods a,b", "frames": "--frames 8,16",
             "budgets": "--budgets 0.1,0.25"}
    # Budgets may come from the methods' own lists instead, and a vanilla entry needs none.
    needs_budgets = any(entry.name != VANILLA and not entry.budgets for entry in grid.methods)
    for name, hint in hints.items():
        values = getattr(grid, name)
        if values is not None and len(values) == 0 and (name != "budgets" or needs_budgets):
            raise ConfigError(f"empty grid: no {name}; pass {hint} or list them under `{name}` in the grid file")


def _checked_settings(settings: SweepSettings) -> SweepSettings:
    for name in ("device", "dtype", "model_path", "video", "question"):
        value = getattr(settings, name)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
    device_kind(settings.device)
    for name in ("seed", "threads", "tokens_per_frame", "text_tokens"):
        value = getattr(settings, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if settings.threads is not None and settings.threads < 1:
        raise ConfigError(f"--threads must be a whole number ≥ 1, got {settings.threads!r}")
    if settings.model_path is not None and not Path(settings.model_path).is_dir():
        raise ConfigError(f"--model-path '{settings.model_path}' is not a directory; pass a local model directory")
    if settings.video is not None and not Path(settings.video).is_file():
        raise ConfigError(f"--video '{settings.video}' does not exist; pass a video file")
    return settings


def _model_specs(model: str, frames: tuple[int, ...] | None, settings: SweepSettings) -> list[ModelSpec]:
    from vidcost.runtime.families import get_family
    from vidcost.runtime.inputs import check_text_tokens
    from vidcost.spec import load_spec

    spec = load_spec(model, tokens_per_frame=settings.tokens_per_frame, text_tokens=settings.text_tokens,
                     resolution=settings.resolution)
    family = get_family(spec.architecture)  # an unsupported family fails now, as `vidcost profile` does
    if settings.video is not None and settings.resolution is None:
        spec = family.fit_to_video(spec, settings.video)
    if settings.model_path is None:  # shape-only: seeded token ids, whose length the spec fixes now
        check_text_tokens(spec.text_tokens)
    specs = []
    for count in frames or (spec.frames,):
        if isinstance(count, bool) or not isinstance(count, int):
            raise ConfigError(f"frames must be whole numbers, got {count!r}")
        specs.append(spec.with_overrides(frames=count))
    return specs


def _checked_cell(model: str, spec: ModelSpec, entry: MethodEntry, budget: float,
                  settings: SweepSettings) -> Cell:
    from vidcost.profiling.session import check_request

    where = f"{entry.label} @ {budget!r}, {spec.frames} frames, {model}"
    try:
        method = check_request(spec, entry.name, budget, params=dict(entry.params), repeats=settings.repeats,
                               warmup=settings.warmup, decode_tokens=settings.decode_tokens,
                               energy_blocks=settings.energy_blocks)
        params = method.resolved_params()
    except ConfigError as err:
        raise ConfigError(f"cell {where}: {err}") from err
    budget = float(budget)
    return Cell(model=model, spec=spec, method=entry, params=params, budget=budget, settings=settings,
                config_hash=config_hash(spec, entry.name, params, budget, settings))


def load_grid(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Grid:
    """A grid from a TOML file (see the README for its keys), `overrides` (e.g. from the CLI) on top.

    Raises:
        ConfigError: see `read_grid_file` and `grid_from_mapping`.
    """
    return grid_from_mapping({**read_grid_file(path), **(overrides or {})}, source=f"grid file '{path}'")


def read_grid_file(path: str | Path) -> dict[str, Any]:
    """The plain values of a TOML grid file (read with the standard library's `tomllib`).

    Raises:
        ConfigError: the file is missing, unreadable or not valid TOML (tomllib's message names the line
            and column).
    """
    source = Path(path)
    try:
        return tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"grid file '{source}' does not exist; pass a TOML grid file") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read grid file '{source}': {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"grid file '{source}' is not valid TOML: {err}; fix that line") from err


def grid_from_mapping(data: Mapping[str, Any], source: str = "the grid") -> Grid:
    """A grid from plain values: `methods`, `budgets`, `frames`, `model`/`models` and every `SweepSettings`
    field; a single value stands for a one-element list.

    `methods` holds names, or tables with a `name`, an optional `budgets` list and the method's parameters.

    Raises:
        ConfigError: an unknown key or a value of the wrong type (the key named).
    """
    setting_names = [f.name for f in fields(SweepSettings)]
    known = ["methods", "budgets", "frames", "model", "models", *setting_names]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; valid keys: {known}")
    if "model" in data and "models" in data:
        raise ConfigError(f"{source}: give `model` or `models`, not both")
    values = {k: data[k] for k in setting_names if k in data}
    if values.get("resolution") is not None:
        values["resolution"] = _resolution(values["resolution"], source)
    settings = SweepSettings(**values)
    if "models" in data or "model" in data:
        models = _strings(data.get("models", data.get("model")), "models", source)
    else:  # the weights' own config.json, as `vidcost profile --model-path` does
        models = [settings.model_path or DEFAULT_PRESET]
    if settings.model_path is not None and len(models) > 1:
        raise ConfigError(f"{source}: model_path holds the weights of one model; sweep {models} without it "
                          "(shape-only) or one at a time")
    frames = _numbers(data["frames"], "frames", source, int) if "frames" in data else None
    return Grid(methods=tuple(_method_entries(data.get("methods", []), source)),
                budgets=tuple(_numbers(data.get("budgets", []), "budgets", source, float)),
                frames=tuple(frames) if frames is not None else None, models=tuple(models), settings=settings)


def _resolution(value: Any, source: str) -> tuple[int, int]:
    """`448` or `[336, 588]` (height, width) → (height, width)."""
    sides = value if isinstance(value, (list, tuple)) else [value]
    if len(sides) not in (1, 2) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sides):
        raise ConfigError(f"{source}: `resolution` must be N or [HEIGHT, WIDTH] in pixels, got {value!r}")
    return int(sides[0]), int(sides[-1])


def _method_entries(values: Any, source: str) -> list[MethodEntry]:
    entries = []
    for value in values if isinstance(values, list) else [values]:
        if isinstance(value, str):
            entries.append(MethodEntry(value))
        elif isinstance(value, dict) and isinstance(value.get("name"), str):
            params = {k: v for k, v in value.items() if k not in METHOD_KEYS}
            budgets = value.get("budgets")
            entries.append(MethodEntry(value["name"], params,
                                       None if budgets is None else tuple(_numbers(budgets, "budgets", source, float))))
        else:
            raise ConfigError(f"{source}: a `methods` entry must be a method name or a table with a `name`, "
                              f"got {value!r}")
    return entries


def _numbers(values: Any, key: str, source: str, kind: type) -> list[Any]:
    values = values if isinstance(values, list) else [values]
    allowed = (int, float) if kind is float else (int,)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, allowed):
            what = "numbers" if kind is float else "whole numbers"
            raise ConfigError(f"{source}: `{key}` must be {what}, got {value!r}")
    return [kind(v) for v in values]


def _strings(values: Any, key: str, source: str) -> list[str]:
    values = values if isinstance(values, list) else [values]
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{source}: `{key}` must be names or paths, got {values!r}")
    return list(values)
