"""DeviceSpec: what a roofline needs of an accelerator — dense tensor peak per dtype, memory bandwidth,
and (where measured) how efficiency rises with the rows of a GEMM.

Three sources, one type:

* the datasheet table `DEVICES` (`--device-spec a100`): vendor peaks, each entry citing its datasheet, and
  for the per-operator model the SMs, clock and L2 deviceQuery reports and whatever kernel-level efficiency
  its authors published for that GPU (FlashAttention-2 / -3 papers; each cited in `kernel_source`). A
  datasheet gives no efficiency curve, so the roofline on one (`--roofline peak`) runs at peak — a lower
  bound on latency; `analysis/roofline_vs_published.py` measures both against the papers' measured numbers;
* a user's device JSON (`--device-spec my_gpu.json`, the fields of `DeviceSpec.to_dict`);
* `--device-spec local`: `measure_local_device` times GEMMs, attention and a copy on the machine it runs
  on and fits Hockney's model to the GEMM times, t(n) = W(n) / r∞ · (1 + n½ / n) (R. Hockney, "The
  communication challenge for MPP", Parallel Computing 20, 1994; here n is the rows of the GEMM): the
  achieved rate r∞ replaces the peak and n½ — the rows at which half of r∞ is reached — gives the
  efficiency n / (n + n½) at the token counts pruning produces.

Peaks are dense (no 2:4 sparsity), in FLOP/s; bandwidth in bytes/s.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vidcost.errors import ConfigError, DataFormatError

TERA, GIGA = 1e12, 1e9
LOCAL = "local"


@dataclass(frozen=True)
class DeviceSpec:
    """An accelerator as a roofline sees it.

    Attributes:
        name: the table's name, the JSON's, or "local (<device name>)".
        peak_flops: dense matmul peak in FLOP/s per dtype ("bfloat16", "float16", "float32").
        memory_bandwidth: bytes/s.
        memory_bytes: device memory (0 when unknown).
        source: where the values come from (a datasheet, a file, a measurement).
        gemm_half_rows: Hockney's n½ for GEMMs — rows at which half the peak is reached; 0 means a
            pure roofline at peak (no measured curve).
        attention_half_tokens: the same for attention over n tokens (0: at peak).
        attention_rate_fraction: attention's asymptotic rate over the GEMM peak (1 for a datasheet).
        measured: True when `peak_flops` are achieved rates measured on this machine, not datasheet peaks.
        weight_stream_bandwidth: bytes/s a one-row GEMM (a decode step's matrix-vector products) streams
            weights from memory at, measured on a matrix larger than the caches; 0 when not measured (the
            datasheet bandwidth stands in: `weight_read_bandwidth`).

    What the per-operator model (`vidcost.operators.OperatorModel`) needs besides (the roofline ignores it):

        sm_count: streaming multiprocessors (compute units), over which GEMM tiles run in waves; 0 when
            unknown (no wave quantisation).
        boost_clock_mhz / l2_bytes: the architecture's boost clock and L2 cache, for the record (the
            peaks already hold the clock; 0 when unknown).
        gemm_efficiency: the fraction of `peak_flops` large cuBLAS GEMMs sustain (1 for measured peaks).
        flash_efficiency: the fraction of `peak_flops` a fused attention kernel (FlashAttention-2, which
            PyTorch's SDPA runs) sustains on long sequences; flash_half_tokens: the sequence length at which
            half of that is reached (0: the rate at every length).
        memory_efficiency: the fraction of `memory_bandwidth` memory-bound kernels (norms, rotary, activations,
            copies) sustain.
        launch_seconds: the shortest a kernel takes on the device, launch to completion.
        host_op_seconds: host time to dispatch one op (PyTorch eager, through transformers' modules).
        host_overlaps: True when the host issues kernels ahead of the device (a GPU's asynchronous
            launches: a layer takes the longer of the two); False on a CPU, where each op runs on the thread
            that dispatches it (the two add).
        kernel_source: where these come from (each number cited).

    A device fitted to profiles (`vidcost fit --per-operator-out`) also says where its numbers hold:

        coverage: what the fit saw ({"models", "frames": [lowest, highest], "methods"}, as a calibration's);
            empty for a datasheet or `local` device.
        held_out: regime ("inside", "other_model", "other_frames": `vidcost.latency.REGIMES`) → quantity →
            {"median", "max", "count"} of the per-operator model's held-out error in that regime, the band of
            its predictions there (`errors_for`); a regime the fit's store could not measure is missing.
    """

    name: str
    peak_flops: Mapping[str, float]
    memory_bandwidth: float
    memory_bytes: float = 0.0
    source: str = ""
    gemm_half_rows: float = 0.0
    attention_half_tokens: float = 0.0
    attention_rate_fraction: float = 1.0
    measured: bool = False
    weight_stream_bandwidth: float = 0.0
    sm_count: int = 0
    boost_clock_mhz: float = 0.0
    l2_bytes: float = 0.0
    gemm_efficiency: float = 1.0
    flash_efficiency: float = 1.0
    flash_half_tokens: float = 0.0
    memory_efficiency: float = 1.0
    launch_seconds: float = 0.0
    host_op_seconds: float = 0.0
    host_overlaps: bool = True
    kernel_source: str = ""
    coverage: Mapping[str, Any] = field(default_factory=dict)
    held_out: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)

    def errors_for(self, regime: str) -> dict[str, float]:
        """quantity → the held-out max error measured in `regime` (empty: none measured there)."""
        return {key: float(values["max"]) for key, values in self.held_out.get(regime, {}).items()}

    @property
    def weight_read_bandwidth(self) -> float:
        """The rate a decode step reads weights at: measured where it was, else the memory bandwidth."""
        return self.weight_stream_bandwidth or self.memory_bandwidth

    def flops_per_second(self, dtype: str) -> float:
        """The peak for a dtype.

        Raises:
            ConfigError: the device lists no peak for it.
        """
        peak = self.peak_flops.get(dtype)
        if not peak:
            raise ConfigError(f"device '{self.name}' has no {dtype} peak (it lists {sorted(self.peak_flops)}); "
                              f"choose one of those with --dtype, or give a device JSON with peak_tflops.{dtype}")
        return float(peak)

    def efficiency(self, rows: float, *, attention: bool = False) -> float:
        """Fraction of the peak a GEMM of `rows` rows reaches, n / (n + n½); attention over `rows` tokens
        reaches `attention_rate_fraction` of that form with its own n½."""
        if rows <= 0:
            return 0.0
        if attention:
            return self.attention_rate_fraction * rows / (rows + self.attention_half_tokens)
        return rows / (rows + self.gemm_half_rows)

    def flash_efficiency_at(self, keys: float) -> float:
        """Fraction of peak a fused attention kernel reaches over `keys` keys: flash_efficiency · n / (n + n½)."""
        if keys <= 0:
            return 0.0
        return self.flash_efficiency * keys / (keys + self.flash_half_tokens)

    def to_dict(self) -> dict[str, Any]:
        """The device-JSON form (TFLOP/s and GB/s, as datasheets print them; microseconds, MB)."""
        return {"name": self.name, "peak_tflops": {k: v / TERA for k, v in self.peak_flops.items()},
                "memory_bandwidth_gbps": self.memory_bandwidth / GIGA, "memory_gb": self.memory_bytes / GIGA,
                "source": self.source, "gemm_half_rows": self.gemm_half_rows,
                "attention_half_tokens": self.attention_half_tokens,
                "attention_rate_fraction": self.attention_rate_fraction, "measured": self.measured,
                "weight_stream_bandwidth_gbps": self.weight_stream_bandwidth / GIGA,
                "sm_count": self.sm_count, "boost_clock_mhz": self.boost_clock_mhz, "l2_mb": self.l2_bytes / 1e6,
                "gemm_efficiency": self.gemm_efficiency, "flash_efficiency": self.flash_efficiency,
                "flash_half_tokens": self.flash_half_tokens, "memory_efficiency": self.memory_efficiency,
                "launch_us": self.launch_seconds * 1e6,
                "host_op_us": self.host_op_seconds * 1e6, "host_overlaps": self.host_overlaps,
                "kernel_source": self.kernel_source, "coverage": dict(self.coverage),
                "held_out": {regime: {quantity: dict(values) for quantity, values in summary.items()}
                             for regime, summary in self.held_out.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "device JSON") -> "DeviceSpec":
        """Read the `to_dict` form, validated.

        Raises:
            DataFormatError: a field missing, not a number, not finite or not positive.
        """
        def number(key: str, value: Any, *, positive: bool = True) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0 or (positive and value == 0):
                raise DataFormatError(f"{where}: '{key}' must be a {'positive' if positive else 'non-negative'} "
                                      f"finite number, got {value!r}")
            return float(value)

        def fraction(key: str, value: Any) -> float:
            value = number(key, value)
            if value > 1:
                raise DataFormatError(f"{where}: '{key}' is a fraction of the peak, in (0, 1], got {value!r}")
            return value

        for key in ("name", "peak_tflops", "memory_bandwidth_gbps"):
            if key not in data:
                raise DataFormatError(f"{where}: missing '{key}' (a device JSON needs name, peak_tflops "
                                      "{dtype: TFLOP/s} and memory_bandwidth_gbps)")
        peaks = data["peak_tflops"]
        if not isinstance(peaks, Mapping) or not peaks:
            raise DataFormatError(f"{where}: 'peak_tflops' must map dtypes to TFLOP/s, e.g. {{\"bfloat16\": 312}}")
        return cls(name=str(data["name"]),
                   peak_flops={str(k): number(f"peak_tflops.{k}", v) * TERA for k, v in peaks.items()},
                   memory_bandwidth=number("memory_bandwidth_gbps", data["memory_bandwidth_gbps"]) * GIGA,
                   memory_bytes=number("memory_gb", data.get("memory_gb", 0), positive=False) * GIGA,
                   source=str(data.get("source", where)),
                   gemm_half_rows=number("gemm_half_rows", data.get("gemm_half_rows", 0), positive=False),
                   attention_half_tokens=number("attention_half_tokens", data.get("attention_half_tokens", 0),
                                                positive=False),
                   attention_rate_fraction=number("attention_rate_fraction", data.get("attention_rate_fraction", 1)),
                   measured=bool(data.get("measured", False)),
                   weight_stream_bandwidth=number("weight_stream_bandwidth_gbps",
                                                  data.get("weight_stream_bandwidth_gbps", 0), positive=False) * GIGA,
                   sm_count=int(number("sm_count", data.get("sm_count", 0), positive=False)),
                   boost_clock_mhz=number("boost_clock_mhz", data.get("boost_clock_mhz", 0), positive=False),
                   l2_bytes=number("l2_mb", data.get("l2_mb", 0), positive=False) * 1e6,
                   gemm_efficiency=fraction("gemm_efficiency", data.get("gemm_efficiency", 1)),
                   flash_efficiency=fraction("flash_efficiency", data.get("flash_efficiency", 1)),
                   flash_half_tokens=number("flash_half_tokens", data.get("flash_half_tokens", 0), positive=False),
                   memory_efficiency=fraction("memory_efficiency", data.get("memory_efficiency", 1)),
                   launch_seconds=number("launch_us", data.get("launch_us", 0), positive=False) / 1e6,
                   host_op_seconds=number("host_op_us", data.get("host_op_us", 0), positive=False) / 1e6,
                   host_overlaps=bool(data.get("host_overlaps", True)),
                   kernel_source=str(data.get("kernel_source", "")),
                   coverage=_coverage(data.get("coverage", {}), where),
                   held_out=_held_out(data.get("held_out", {}), where))

    def __str__(self) -> str:
        peaks = ", ".join(f"{k} {v / TERA:.1f} TFLOP/s" for k, v in sorted(self.peak_flops.items()))
        curve = f", GEMM n½ {self.gemm_half_rows:.0f} rows" if self.gemm_half_rows else ", at peak"
        return f"{self.name}: {peaks}, {self.memory_bandwidth / GIGA:.0f} GB/s{curve}"


def _coverage(value: Any, where: str) -> dict[str, Any]:
    """A device JSON's "coverage": models, a [lowest, highest] frame range and methods, or nothing."""
    if not isinstance(value, Mapping) or not all(isinstance(value.get(key, []), list)
                                                 for key in ("models", "frames", "methods")):
        raise DataFormatError(f"{where}: 'coverage' must map models, frames and methods to lists, got {value!r}")
    return {key: list(value[key]) for key in ("models", "frames", "methods") if key in value}


def _held_out(value: Any, where: str) -> dict[str, dict[str, dict[str, float]]]:
    """A device JSON's "held_out": regime → quantity → {"median", "max", "count"} of non-negative numbers."""
    def summary(regime: str, quantity: str, values: Any) -> dict[str, float]:
        if not isinstance(values, Mapping) or "max" not in values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                for v in values.values()):
            raise DataFormatError(f"{where}: held_out.{regime}.{quantity} must hold non-negative numbers median, "
                                  f"max and count, got {values!r}; fit the device again")
        return {k: float(v) for k, v in values.items()}

    from vidcost.latency import REGIMES

    if not isinstance(value, Mapping) or any(regime not in REGIMES or not isinstance(per, Mapping)
                                             for regime, per in value.items()):
        raise DataFormatError(f"{where}: 'held_out' must map regimes ({', '.join(REGIMES)}) to error "
                              f"summaries, got {value!r}")
    return {regime: {quantity: summary(regime, quantity, values) for quantity, values in per.items()}
            for regime, per in value.items()}


MIB = 1024 * 1024
# Every table GPU runs under PyTorch eager on some host: the host's cost of dispatching one op. A tiny eager
# op on CUDA in PyTorch's operator benchmark (the floor; transformers' modules add their own Python).
HOST_DISPATCH_SECONDS = 3.333e-6
HOST_DISPATCH_SOURCE = ("host cost per op 3.3 µs: PyTorch operator benchmark quoted in pytorch/pytorch PR #32194 "
                        "(split_M8_N8_parts2_cuda, forward 3.333 µs)")
# Kernel-level efficiencies measured by their authors (not fitted to the end-to-end rows of
# analysis/roofline_vs_published.py). FlashAttention-2's "50-73%" is read as 50 % at its shortest benchmarked
# sequence (512) and 73 % at its longest: 0.73 · n / (n + n½) = 0.5 at n = 512 gives n½ = 235 tokens.
FA2_A100 = ('Dao, "FlashAttention-2" (arXiv:2307.08691), A100 80GB SXM4: "optimized GEMM can reach up to 80-90% of '
            'the theoretical maximum device throughput" (GEMM 0.80, the low end); FlashAttention-2 "reaching 50-73% '
            'of the theoretical maximum FLOPs/s on A100" (fused attention 0.73, n½ 235 tokens)')
A100_KERNELS = {"gemm_efficiency": 0.80, "flash_efficiency": 0.73, "flash_half_tokens": 235.0}
FA3_H100 = ('Shah et al., "FlashAttention-3" (arXiv:2407.08608): "FlashAttention-2 achieving only 35% utilization on '
            'the H100 GPU" (fused attention 0.35: PyTorch SDPA runs FlashAttention-2); no cited GEMM efficiency '
            'for H100 (GEMMs at peak)')
H100_KERNELS = {"flash_efficiency": 0.35}

def _datasheet(name: str, tflops: float, bandwidth_gbps: float, memory_gb: float, source: str,
               dtypes: tuple[str, ...] = ("bfloat16", "float16"), *, sm_count: int = 0, boost_clock_mhz: float = 0.0,
               l2_mib: float = 0.0, architecture: str = "", kernels: Mapping[str, float] | None = None,
               kernel_sources: Sequence[str] = ()) -> DeviceSpec:
    """A table entry: datasheet peaks, the architecture's SMs, clock and L2 (`architecture` cites them), and
    the kernel-level numbers published for that GPU (`kernels`, each source in `kernel_sources`)."""
    cited = [architecture] if architecture else []
    cited += [HOST_DISPATCH_SOURCE, *kernel_sources]
    return DeviceSpec(name, {dtype: tflops * TERA for dtype in dtypes}, bandwidth_gbps * GIGA, memory_gb * GIGA,
                      source, sm_count=sm_count, boost_clock_mhz=boost_clock_mhz, l2_bytes=l2_mib * MIB,
                      host_op_seconds=HOST_DISPATCH_SECONDS, **dict(kernels or {}), kernel_source="; ".join(cited))


# Dense BF16/FP16 tensor-core peaks (datasheets print "with sparsity" at twice these) and memory bandwidth; SM
# counts, max clocks and L2 as deviceQuery reports them on those GPUs (or the vendor's architecture pages).
DEVICES: dict[str, DeviceSpec] = {spec.name: spec for spec in (
    _datasheet("a100-sxm-80gb", 312, 2039, 80, "NVIDIA A100 Tensor Core GPU datasheet (2021): BF16/FP16 "
               "Tensor Core 312 TFLOPS (624 sparse); A100 80GB SXM 2,039 GB/s", sm_count=108, boost_clock_mhz=1410,
               l2_mib=40, architecture="deviceQuery on an NVIDIA A100-SXM4-80GB (gist.github.com/gengwg/"
               "3520df2ebf8872e5ee4818367e3a4122): 108 multiprocessors, max clock 1410 MHz, L2 41,943,040 bytes",
               kernels=A100_KERNELS, kernel_sources=(FA2_A100,)),
    _datasheet("a100-sxm-40gb", 312, 1555, 40, "NVIDIA A100 Tensor Core GPU datasheet (2021): BF16/FP16 "
               "Tensor Core 312 TFLOPS; A100 40GB SXM 1,555 GB/s", sm_count=108, boost_clock_mhz=1410, l2_mib=40,
               architecture="deviceQuery on NVIDIA A100 40GB with NVLink (Paderborn Center for Parallel Computing "
               "documentation, upb-pc2.atlassian.net PC2DOK 'NVIDIA A100 40GB with NVLINK'): 108 multiprocessors, "
               "max clock 1410 MHz, L2 41,943,040 bytes", kernels=A100_KERNELS, kernel_sources=(FA2_A100,)),
    _datasheet("a800", 312, 2039, 80, "NVIDIA A800 Tensor Core GPU datasheet (A800 80GB SXM): BF16/FP16 "
               "Tensor Core 312 TFLOPS; 2,039 GB/s"),
    _datasheet("h100-sxm", 989.4, 3350, 80, "NVIDIA H100 Tensor Core GPU datasheet: H100 SXM BF16/FP16 "
               "Tensor Core 1,979 TFLOPS with sparsity (989.4 dense); 3.35 TB/s", sm_count=132, boost_clock_mhz=1980,
               l2_mib=50, architecture="deviceQuery on NVIDIA H100 80GB HBM3 (SXM5; repository thamada/nvidia-smi, "
               "nvsim/H100SXMx8_deviceQuery.py): 132 multiprocessors, max clock 1980 MHz, L2 52,428,800 bytes",
               kernels=H100_KERNELS, kernel_sources=(FA3_H100,)),
    _datasheet("h100-pcie", 756.5, 2000, 80, "NVIDIA H100 Tensor Core GPU datasheet: H100 PCIe BF16/FP16 "
               "Tensor Core 1,513 TFLOPS with sparsity (756.5 dense); 2 TB/s", sm_count=114, boost_clock_mhz=1755,
               l2_mib=50 * 1e6 / MIB, architecture="NVIDIA LaunchPad H100 MIG guide (docs.nvidia.com/launchpad/ai/"
               "h100-mig): '114 SMs per GPU ... 50 MB L2 cache'; max boost 1755 MHz as Chips and Cheese read it on "
               "an H100 PCIe ('Nvidia's H100: Funny L2, and Tons of Bandwidth', 2023)"),
    _datasheet("h200", 989.4, 4800, 141, "NVIDIA H200 Tensor Core GPU datasheet: H200 SXM BF16/FP16 Tensor "
               "Core 1,979 TFLOPS with sparsity (989.4 dense); 141 GB HBM3e at 4.8 TB/s", sm_count=132,
               architecture="132 SMs: the GH100 configuration of the H100 SXM (retailer listings; no deviceQuery of "
               "an H200 found: clock and L2 left unset)"),
    _datasheet("b200", 2250, 8000, 180, "NVIDIA HGX B200 datasheet (per GPU): FP16/BF16 Tensor Core "
               "4.5 PFLOPS with sparsity (2.25 dense); 180 GB HBM3e at 8 TB/s", sm_count=148, l2_mib=129536 / 1024,
               architecture="Chips and Cheese, 'Nvidia's B200: Keeping the CUDA Juggernaut Rolling' (measured on "
               "8× B200): 148 SMs; a device-property dump: L2 129,536 KiB (clock not found)"),
    _datasheet("l40s", 362.05, 864, 48, "NVIDIA L40S datasheet: BF16/FP16 Tensor 362.05 TFLOPS "
               "(733 with sparsity); 48 GB GDDR6 at 864 GB/s", sm_count=142, boost_clock_mhz=2520, l2_mib=96,
               architecture="deviceQuery on an NVIDIA L40S (README of the cuda-device-query crate): 142 "
               "multiprocessors, max clock 2520 MHz, L2 100,663,296 bytes"),
    _datasheet("rtx-4090", 165.2, 1008, 24, "NVIDIA Ada Lovelace GPU architecture whitepaper, Appendix A "
               "(GeForce RTX 4090): BF16/FP16 Tensor with FP32 accumulate 165.2 TFLOPS dense — the "
               "accumulation frameworks use; 1,008 GB/s", sm_count=128, boost_clock_mhz=2520, l2_mib=72,
               architecture="deviceQuery on NVIDIA GeForce RTX 4090 (public dumps): 128 multiprocessors, max clock "
               "2520 MHz, L2 75,497,472 bytes"),
    _datasheet("v100-sxm", 125, 900, 32, "NVIDIA Tesla V100 datasheet: V100 SXM2 Tensor Performance 125 "
               "TFLOPS (FP16; no BF16); 900 GB/s", dtypes=("float16",), sm_count=80, boost_clock_mhz=1530, l2_mib=6,
               architecture="deviceQuery on a Tesla V100-SXM2-32GB (repository felicepantaleo/gpu_training, README): "
               "80 multiprocessors, max clock 1530 MHz, L2 6 MiB"),
    _datasheet("mi300x", 1307.4, 5300, 192, "AMD Instinct MI300X accelerator datasheet: BF16/FP16 1,307.4 "
               "TFLOPS dense (2,614.9 sparse); 192 GB HBM3 at 5.3 TB/s", sm_count=304, l2_mib=32,
               architecture="ROCm documentation, 'AMD Instinct MI300 series microarchitecture' (docs 6.2.2): up to "
               "304 CUs, each XCD's 38 CUs sharing a 4 MB L2 (8 XCDs; the 256 MB Infinity Cache not counted)"),
)}
ALIASES = {"a100": "a100-sxm-80gb", "h100": "h100-sxm"}


def device_names() -> list[str]:
    """Every name `--device-spec` takes (table names, aliases and "local")."""
    return sorted(DEVICES) + sorted(ALIASES) + [LOCAL]


def load_device(name: str, *, dtype: str = "bfloat16", device: str = "cpu") -> DeviceSpec:
    """A device by table name or alias, from a device JSON path, or measured here ("local").

    Args:
        name: a name of `device_names()`, or a path ending in .json.
        dtype / device: for "local" only — what the microbenchmark runs in and on.

    Raises:
        ConfigError: an unknown name (the names listed) or a JSON path that does not exist.
        DataFormatError: a device JSON that is not valid.
    """
    key = name.strip().lower()
    if key in DEVICES or key in ALIASES:
        return DEVICES[ALIASES.get(key, key)]
    if key == LOCAL:
        return measure_local_device(dtype=dtype, device=device)
    if key.endswith(".json"):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"device JSON '{name}' does not exist; give a path to a file with name, "
                              "peak_tflops and memory_bandwidth_gbps, or one of " + ", ".join(device_names()))
        from vidcost.store import read_json_object

        where = f"device JSON '{name}'"
        return DeviceSpec.from_dict(read_json_object(path, where), where=where)
    raise ConfigError(f"unknown --device-spec '{name}'; choose one of {', '.join(device_names())}, "
                      "or give a device JSON file")


@dataclass(frozen=True)
class HockneyFit:
    """t(n) = W(n) / r∞ · (1 + n½ / n), fitted to timed work W at sizes n.

    Attributes:
        rate: r∞ in FLOP/s (or bytes/s).
        half_size: n½, the size at which half of r∞ is reached.
        sizes / seconds / work: the measurements fitted.
    """

    rate: float
    half_size: float
    sizes: tuple[float, ...] = field(default=(), repr=False)
    seconds: tuple[float, ...] = field(default=(), repr=False)
    work: tuple[float, ...] = field(default=(), repr=False)

    def predict_seconds(self, work: float, size: float) -> float:
        return work / self.rate * (1 + self.half_size / size)


def fit_hockney(sizes: list[float], work: list[float], seconds: list[float]) -> HockneyFit:
    """Fit Hockney's r∞ and n½ by non-negative least squares in relative error.

    t = a·W + b·W/n is linear in a = 1/r∞ and b = n½/r∞; each row is divided by its t, so a small
    GEMM's microseconds weigh as much as a large one's milliseconds. Where the fitted n½ lies beyond the
    largest size measured, the timings show no rising efficiency in their range (a kernel whose rate
    falls with size, or noise) and the rate alone is kept: r∞ = median W/t, n½ = 0.

    Raises:
        ConfigError: fewer than two sizes, or a fit with no positive rate.
    """
    import numpy as np
    from scipy.optimize import lsq_linear

    if len(set(sizes)) < 2:
        raise ConfigError(f"Hockney's model needs timings at two sizes or more, got {sorted(set(sizes))}")
    t = np.asarray(seconds, dtype=float)
    w = np.asarray(work, dtype=float)
    n = np.asarray(sizes, dtype=float)
    design = np.column_stack([w, w / n]) / t[:, None]
    scale = np.abs(design).max(axis=0)
    result = lsq_linear(design / scale, np.ones_like(t), bounds=(0, np.inf))
    a, b = result.x / scale
    if a > 0 and b / a <= n.max():
        return HockneyFit(1 / a, b / a, tuple(n), tuple(t), tuple(w))
    rate = float(np.median(w / t))
    if not rate > 0:
        raise ConfigError("the timings give no positive rate; rerun on a quieter machine")
    return HockneyFit(rate, 0.0, tuple(n), tuple(t), tuple(w))


def measure_local_device(*, dtype: str = "float32", device: str = "cpu", width: int = 1024,
                         repeats: int = 5, clock: Callable[[], float] = time.perf_counter) -> DeviceSpec:
    """Measure this machine: GEMMs [n, width] × [width, 4·width] at n = 16 … 2048 rows, causal SDPA
    attention over 256 … 4096 tokens, a large copy, a one-row GEMM over a 256 MiB matrix (the rate a decode
    step streams weights at) and the host's cost per op (`_dispatch_costs`); fit Hockney's r∞ and n½ to the
    first two (`fit_hockney`).

    Takes a few seconds on a CPU. The median of `repeats` timed runs after one warm-up, with a device
    synchronise around each on a GPU (one kernel per run, so the sync costs no overlap).

    Raises:
        ConfigError: an unknown dtype or device, or timings too noisy to fit.
    """
    import torch

    from vidcost.profiling.environment import device_name
    from vidcost.runtime.model import resolve_device, resolve_dtype

    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    torch_dtype = getattr(torch, dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def seconds(run: Callable[[], Any]) -> float:
        run()
        sync()
        samples = []
        for _ in range(repeats):
            start = clock()
            run()
            sync()
            samples.append(clock() - start)
        return statistics.median(samples)

    with torch.inference_mode():
        weight = torch.randn(width, 4 * width, dtype=torch_dtype, device=device)
        gemm_rows = [16, 64, 256, 1024, 2048]
        gemm_times = []
        for rows in gemm_rows:
            activations = torch.randn(rows, width, dtype=torch_dtype, device=device)
            gemm_times.append(seconds(lambda: activations @ weight))
        gemm = fit_hockney(gemm_rows, [2 * rows * width * 4 * width for rows in gemm_rows], gemm_times)

        heads, head_dim = 8, 64
        lengths = [256, 1024, 2048, 4096]
        attention_times = []
        for length in lengths:
            q = torch.randn(1, heads, length, head_dim, dtype=torch_dtype, device=device)
            attention_times.append(seconds(
                lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)))
        # Causal QKᵀ and P·V: 2 · 2·n²·hd per head, halved.
        attention = fit_hockney(lengths, [2 * heads * length * length * head_dim for length in lengths],
                                attention_times)

        elements = 64 * 2**20 // torch.finfo(torch_dtype).bits * 8  # 64 MiB
        source_tensor = torch.empty(elements, dtype=torch_dtype, device=device)
        target = torch.empty_like(source_tensor)
        copy_seconds = seconds(lambda: target.copy_(source_tensor))
        bandwidth = 2 * source_tensor.numel() * source_tensor.element_size() / copy_seconds  # read + write
        source_tensor = target = None  # freed before the 256 MiB matrix
        # A decode step's GEMMs have one row: they stream their weights once. 256 MiB is beyond any last-level
        # cache, so this is the rate from memory, not from cache.
        matrix = torch.randn(width, 256 * 2**20 // (width * torch.finfo(torch_dtype).bits // 8),
                             dtype=torch_dtype, device=device)
        row = torch.randn(1, width, dtype=torch_dtype, device=device)
        stream = matrix.numel() * matrix.element_size() / seconds(lambda: row @ matrix)
        matrix = None
        host_op, launch = _dispatch_costs(torch, torch_dtype, device, clock)

    return DeviceSpec(
        name=f"local ({device_name(device)})", peak_flops={dtype: gemm.rate}, memory_bandwidth=bandwidth,
        source=(f"measured by vidcost on {device} in {dtype}: GEMM r∞ {gemm.rate / GIGA:.1f} GFLOP/s, "
                f"n½ {gemm.half_size:.0f} rows; attention r∞ {attention.rate / GIGA:.1f} GFLOP/s, "
                f"n½ {attention.half_size:.0f} tokens; copy {bandwidth / GIGA:.1f} GB/s; one-row GEMM streams "
                f"weights at {stream / GIGA:.1f} GB/s; {host_op * 1e6:.1f} µs of host per op in transformers' modules"
                + (f", {launch * 1e6:.1f} µs per tiny kernel on the device" if launch else "")),
        gemm_half_rows=gemm.half_size, attention_half_tokens=attention.half_size,
        attention_rate_fraction=attention.rate / gemm.rate, measured=True, weight_stream_bandwidth=stream,
        flash_efficiency=min(1.0, attention.rate / gemm.rate), flash_half_tokens=attention.half_size,
        launch_seconds=launch, host_op_seconds=host_op, host_overlaps=device.startswith("cuda"),
        kernel_source="measured by vidcost on this machine (`--device-spec local`): GEMM and attention rates and "
                      "n½, the host's cost per op inside transformers' modules (a 2-layer Qwen2 forward)"
                      + (", device time per tiny kernel" if launch else ""))


def _dispatch_costs(torch: Any, dtype: Any, device: str, clock: Callable[[], float], ops: int = 2000
                    ) -> tuple[float, float]:
    """(host seconds per dispatched op, device seconds per tiny kernel; 0 on a CPU).

    The host cost is what an op costs the host inside transformers' modules (`_module_op_seconds`: one-token
    forwards of a small Qwen2 built from its config, over the ops one dispatches) — Python module calls,
    argument handling and output allocation, more than a bare dispatch on a CPU. On a GPU the device's floor is
    timed with CUDA events around `ops` in-place adds queued behind a long GEMM, so the host has run ahead and
    the events see the kernels back to back.
    """
    host = _module_op_seconds(torch, dtype, device, clock)
    if not device.startswith("cuda"):
        return host, 0.0
    tiny = torch.zeros(1, dtype=dtype, device=device)
    big = torch.randn(8192, 8192, dtype=dtype, device=device)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    big @ big  # tens of milliseconds of device work while the host queues the adds
    begin.record()
    for _ in range(ops):
        tiny.add_(1)
    end.record()
    torch.cuda.synchronize()
    return host, begin.elapsed_time(end) / 1e3 / ops


def _module_op_seconds(torch: Any, dtype: Any, device: str, clock: Callable[[], float], steps: int = 20) -> float:
    """Host seconds per dispatched op of transformers' `Qwen2ForCausalLM` one-token forwards on a model so small
    (2 layers, width 64) that its kernels cost next to nothing: the median forward's time (in inference mode,
    as the runtime runs) over the ops one forward dispatches, counted with a TorchDispatchMode under no_grad —
    the decomposition the per-operator model's op lists are written and checked in (inference mode hands
    composite ops such as `matmul` down whole: 140 ops against 175). On a GPU the forwards are issued without
    a synchronise, the host running ahead of kernels shorter than the ops that launch them."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from transformers import Qwen2Config, Qwen2ForCausalLM

    class Counter(TorchDispatchMode):
        dispatched = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Counter.dispatched += 1
            return func(*args, **(kwargs or {}))

    config = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=256, attn_implementation="sdpa")
    model = Qwen2ForCausalLM(config).to(device=device, dtype=dtype).eval()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    token = torch.zeros(1, 1, dtype=torch.long, device=device)
    with torch.no_grad(), Counter():
        model(token, use_cache=False)
    with torch.inference_mode():
        for _ in range(3):  # warm-up
            model(token, use_cache=False)
        sync()
        samples = []
        for _ in range(steps):
            start = clock()
            model(token, use_cache=False)
            samples.append(clock() - start)
        sync()
    return statistics.median(samples) / Counter.dispatched


def device_for_observations(name: str, chosen: Sequence[Any]) -> DeviceSpec:
    """The device `vidcost fit --device-spec` names for observations `chosen` of one device: a table name or
    device JSON as given; "local" measures this machine with the torch threads the profiles ran with
    (`Observation.threads`; a CPU's fit keys its device by them), warning when it is not the machine they ran
    on.

    Raises:
        ConfigError: an unknown device name.
    """
    import warnings

    if name.strip().lower() == LOCAL:
        import torch

        profiled, threads = chosen[0].device, chosen[0].threads  # threads: a CPU's records only
        previous = torch.get_num_threads()
        torch.set_num_threads(threads or previous)
        try:
            device = load_device(name, dtype=chosen[0].config.dtype, device="cpu" if threads else "cuda")
        finally:
            torch.set_num_threads(previous)
        here = device.name.removeprefix("local (").removesuffix(")")
        if here not in profiled:
            warnings.warn(f"--device-spec local measured {here}, but the profiles ran on {profiled}: the byte "
                          "terms are this machine's", stacklevel=3)
        return device
    return load_device(name)


def byte_terms_for(name: str, chosen: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """The byte terms `vidcost fit --device-spec` sets (`vidcost.latency.bandwidth_terms`) for observations
    `chosen` of one device, from that device's bandwidth (`device_for_observations`).

    Raises:
        ConfigError: an unknown device name.
    """
    from vidcost.latency import bandwidth_terms

    device = device_for_observations(name, chosen)
    rate = device.weight_read_bandwidth
    how = "one-row GEMM weight stream" if device.weight_stream_bandwidth else "memory bandwidth"
    return bandwidth_terms(rate, f"{device.name}: {how} {rate / 1e9:.1f} GB/s")
