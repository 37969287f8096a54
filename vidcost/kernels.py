"""Kernel and OperatorList: what a stage launches on a device, as the per-operator model prices it (issue #19).

`vidcost.operators` writes these lists for the model's layers from their shapes; `vidcost.selection_trace`
records them from a pruning method's own dispatched ops, and the operator model prices those too: kept apart
so the tracer does not import the model that prices what it records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

GEMM, ATTENTION, MEMORY = "gemm", "attention", "memory"


@dataclass(frozen=True)
class Kernel:
    """One kernel a stage launches.

    Attributes:
        name: what transformers calls the op ("q_proj", "input_layernorm.pow", "attention" …).
        kind: GEMM, ATTENTION or MEMORY.
        flops: its floating-point operations (2 per multiply-add).
        bytes: bytes it reads from and writes to device memory.
        shape: a GEMM's (m, n, k) per matrix; attention's (query rows, keys, heads · head_dim).
        batch: independent matrices of that shape (heads of a batched GEMM, frames of attention).
        causal: attention over a causal mask (a fused kernel skips the masked half).
    """

    name: str
    kind: str
    flops: float = 0.0
    bytes: float = 0.0
    shape: tuple[int, int, int] = (0, 0, 0)
    batch: int = 1
    causal: bool = False


@dataclass(frozen=True)
class OperatorList:
    """The kernels of one stage (or one layer) and the host-only ops dispatched with them."""

    kernels: tuple[Kernel, ...]
    host_ops: int = 0

    def __add__(self, other: "OperatorList") -> "OperatorList":
        return OperatorList(self.kernels + other.kernels, self.host_ops + other.host_ops)

    @property
    def flops(self) -> float:
        return sum(kernel.flops for kernel in self.kernels)

    @cached_property
    def distinct(self) -> tuple[tuple[Kernel, int], ...]:
        """Each distinct kernel with how many times it runs: a price sums over these (a traced selection
        repeats its loop's kernels thousands of times)."""
        return tuple(Counter(self.kernels).items())
