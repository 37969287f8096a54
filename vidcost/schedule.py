"""Schedule: the visual and text tokens entering every LLM layer — the currency all parts share.

A method's plan for a budget produces one, the runtime records the one it actually executed, the
cost model prices it. The CLI form `"0:1.0,2:0.3"` means: from layer 0 keep 100 % of the visual
tokens, from layer 2 on keep 30 % (fractions of the initial visual tokens, rounded to whole tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from vidcost.errors import ConfigError


@dataclass(frozen=True)
class Schedule:
    """Tokens entering each LLM layer.

    Attributes:
        visual_tokens: visual tokens entering layer i, one entry per layer, never increasing.
        text_tokens: text tokens entering every layer (text is never dropped).
        initial_visual_tokens: visual tokens before any selection (frames × tokens per frame);
            the denominator of every fraction.
        cached_visual_tokens: visual tokens layer i's KV cache holds after the prefill, one entry per
            layer; None (the usual case) means what entered the layer (`visual_tokens`). Fewer means
            the method later trims that layer's cache to the tokens that survive a prune (PruneVid's
            official code keeps only the kept tokens' keys and values in the layers before its prune).
    """

    visual_tokens: tuple[int, ...]
    text_tokens: int
    initial_visual_tokens: int
    cached_visual_tokens: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "visual_tokens", tuple(int(n) for n in self.visual_tokens))
        if self.cached_visual_tokens is not None:
            cached = tuple(int(n) for n in self.cached_visual_tokens)
            object.__setattr__(self, "cached_visual_tokens", None if cached == self.visual_tokens else cached)
        if not self.visual_tokens:
            raise ConfigError("a schedule needs at least one layer")
        if self.initial_visual_tokens < 0 or self.text_tokens < 0:
            raise ConfigError(
                f"token counts must be 0 or more, got {self.initial_visual_tokens} visual / "
                f"{self.text_tokens} text")
        for layer, (before, after) in enumerate(zip(self.visual_tokens, self.visual_tokens[1:]), 1):
            if after > before:
                raise ConfigError(
                    f"visual tokens increase at layer {layer} ({before} → {after}); a schedule never grows")
        if self.visual_tokens[0] > self.initial_visual_tokens:
            raise ConfigError(
                f"visual tokens {self.visual_tokens[0]} at layer 0 exceed the initial "
                f"{self.initial_visual_tokens}")
        if self.visual_tokens[-1] < 0:
            raise ConfigError(
                f"visual tokens {self.visual_tokens[-1]} at layer {self.num_layers - 1} are negative; "
                "a layer keeps 0 or more")
        if self.cached_visual_tokens is not None:
            self._check_cached(self.cached_visual_tokens)

    def _check_cached(self, cached: tuple[int, ...]) -> None:
        if len(cached) != self.num_layers:
            raise ConfigError(f"cached visual tokens give {len(cached)} layers; the schedule has {self.num_layers}")
        for layer, (kept, entered) in enumerate(zip(cached, self.visual_tokens)):
            # A cache can only be trimmed to tokens that survive to the end of the prefill.
            if not self.visual_tokens[-1] <= kept <= entered:
                raise ConfigError(
                    f"layer {layer} caches {kept} visual tokens; it must hold between the {self.visual_tokens[-1]} "
                    f"that survive the prefill and the {entered} that entered it")

    @property
    def kv_visual_tokens(self) -> tuple[int, ...]:
        """Visual tokens in each layer's KV cache after the prefill (what decoding attends over)."""
        return self.cached_visual_tokens if self.cached_visual_tokens is not None else self.visual_tokens

    @classmethod
    def constant(cls, num_layers: int, visual_tokens: int, text_tokens: int,
                 initial_visual_tokens: int | None = None) -> "Schedule":
        """The same visual token count at every layer (vanilla, or a pre-LLM-only method)."""
        initial = visual_tokens if initial_visual_tokens is None else initial_visual_tokens
        return cls((visual_tokens,) * num_layers, text_tokens, initial)

    @classmethod
    def from_fractions(cls, breakpoints: Sequence[tuple[int, float]], *, num_layers: int,
                       initial_visual_tokens: int, text_tokens: int) -> "Schedule":
        """Build from (first layer, kept fraction) pairs; layers before the first pair keep 100 %.

        Raises:
            ConfigError: a layer outside [0, num_layers), a fraction outside [0, 1], layers not
                strictly ascending, or a fraction larger than the one before it.
        """
        counts = [initial_visual_tokens] * num_layers
        previous_layer, previous_fraction = -1, 1.0
        for layer, fraction in breakpoints:
            if not 0 <= layer < num_layers:
                raise ConfigError(
                    f"schedule layer {layer} is out of range; the model has layers 0..{num_layers - 1}")
            if not 0.0 <= fraction <= 1.0:
                raise ConfigError(f"schedule fraction {fraction} at layer {layer} is outside [0, 1]")
            if layer <= previous_layer:
                raise ConfigError(f"schedule layers must ascend; layer {layer} follows {previous_layer}")
            if fraction > previous_fraction:
                raise ConfigError(
                    f"schedule fraction {fraction} at layer {layer} exceeds {previous_fraction} before "
                    "it; visual tokens are never added back")
            kept = round(fraction * initial_visual_tokens)
            counts[layer:] = [kept] * (num_layers - layer)
            previous_layer, previous_fraction = layer, fraction
        return cls(tuple(counts), text_tokens, initial_visual_tokens)

    @property
    def num_layers(self) -> int:
        return len(self.visual_tokens)

    @property
    def mean_visual_fraction(self) -> float:
        """Mean over layers of the kept visual fraction: the one axis every method compares on."""
        if self.initial_visual_tokens == 0:
            return 1.0
        return sum(self.visual_tokens) / (self.num_layers * self.initial_visual_tokens)

    def segments(self) -> list[tuple[int, int, int]]:
        """Runs of constant visual tokens as (first layer, last layer, visual tokens)."""
        runs: list[tuple[int, int, int]] = []
        for layer, count in enumerate(self.visual_tokens):
            if runs and runs[-1][2] == count:
                runs[-1] = (runs[-1][0], layer, count)
            else:
                runs.append((layer, layer, count))
        return runs

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"visual_tokens": list(self.visual_tokens), "text_tokens": self.text_tokens,
                                "initial_visual_tokens": self.initial_visual_tokens}
        if self.cached_visual_tokens is not None:
            data["cached_visual_tokens"] = list(self.cached_visual_tokens)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Schedule":
        cached = data.get("cached_visual_tokens")
        return cls(tuple(data["visual_tokens"]), data["text_tokens"], data["initial_visual_tokens"],
                   tuple(cached) if cached is not None else None)

    def __str__(self) -> str:
        runs = ", ".join(f"L{a}-{b}:{n}" if a != b else f"L{a}:{n}" for a, b, n in self.segments())
        cached = "" if self.cached_visual_tokens is None else f"; cache trimmed to {self.cached_visual_tokens[0]}+"
        return (f"Schedule({runs} of {self.initial_visual_tokens} visual, +{self.text_tokens} text; "
                f"mean {self.mean_visual_fraction:.1%}{cached})")


def parse_schedule(text: str, *, num_layers: int, initial_visual_tokens: int,
                   text_tokens: int) -> Schedule:
    """Parse the CLI form `"0:1.0,2:0.3"` into a Schedule.

    Raises:
        ConfigError: pointing at the malformed part, e.g. `'2:x' in "0:1.0,2:x"`.
    """
    pairs: list[tuple[int, float]] = []
    for part in text.split(","):
        layer_text, sep, fraction_text = part.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            pairs.append((int(layer_text), float(fraction_text)))
        except ValueError:
            raise ConfigError(
                f"malformed schedule part '{part.strip()}' in \"{text}\"; write LAYER:FRACTION pairs "
                "separated by commas, e.g. \"0:1.0,2:0.3\"") from None
    return Schedule.from_fractions(pairs, num_layers=num_layers, initial_visual_tokens=initial_visual_tokens,
                                   text_tokens=text_tokens)
