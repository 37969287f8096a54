"""RooflineModel: stage latencies from a device's peaks alone, for a GPU nobody has profiled yet.

Each operation takes the longer of its compute time and its memory time (Williams, Waterman and
Patterson, "Roofline", CACM 2009): FLOPs / (peak · efficiency(rows)) against bytes moved / bandwidth.
The efficiency is Hockney's n / (n + n½) with the device's measured n½ (`DeviceSpec`, from
`--device-spec local` or a device JSON), or 1 for a datasheet entry — a pure roofline at peak, which
under-predicts latency most at small token counts (LLM-Viewer: −57 % for LLaMA-7B prefill at 128
tokens on an A100, −16 % at 2048). It has no term for a pruning method's own selection time, nor for
launch overheads: predictions from it say `calibrated: false`.

Per stage, with the model's dimensions and the executed schedule (`vidcost.cost`):

* vision / projector: the tower's and projector's FLOPs on frames × patches rows, against their weights;
* llm_prefill: per decoder layer, GEMMs on n rows and attention over n tokens, against the layer's weights
  and the keys and values it writes;
* first_token: the LM head on one row, against its weights;
* decode: per layer, one row's FLOPs against the weights and the whole KV cache read.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidcost.cost import (decode_kv_lengths, estimate_cost, layer_parameters, projector_flops, vision_flops,
                          vision_parameters)
from vidcost.devices import DeviceSpec
from vidcost.latency import DECODE, Configuration

NOT_MODELLED = ("selection", "other")


@dataclass(frozen=True)
class RooflineModel:
    """A device's roofline in one dtype; `stage_ms` as `LatencyModel.stage_ms`.

    Attributes:
        device: the device's peaks (and n½, where measured).
        dtype: the dtype its peak is taken for.
    """

    device: DeviceSpec
    dtype: str

    def _seconds(self, flops: float, rows: float, bytes_moved: float, *, attention: bool = False) -> float:
        peak = self.device.flops_per_second(self.dtype)
        efficiency = self.device.efficiency(rows, attention=attention)
        compute = flops / (peak * efficiency) if flops else 0.0
        return max(compute, bytes_moved / self.device.memory_bandwidth)

    def stage_ms(self, config: Configuration) -> dict[str, float]:
        """Milliseconds of each stage (selection and "other" are 0: a roofline has no term for them)."""
        spec, schedule, size = config.spec, config.schedule, config.dtype_bytes
        cost = estimate_cost(spec, schedule, convention="exact", causal=True)
        projector = projector_flops(spec)
        tower_rows = spec.frames * spec.patches_per_frame
        stages = {name: 0.0 for name in NOT_MODELLED}
        stages["vision"] = self._seconds(vision_flops(spec) - projector, tower_rows,
                                         vision_parameters(spec) * size)
        stages["projector"] = self._seconds(projector, tower_rows, 0.0)
        layer_bytes = layer_parameters(spec) * size
        prefill = 0.0
        for layer in cost.layers:
            tokens = layer.visual_tokens + layer.text_tokens
            written = 2 * tokens * spec.kv_dim * size
            gemm = self._seconds(layer.projection_flops + layer.mlp_flops, tokens, layer_bytes + written)
            prefill += gemm + self._seconds(layer.attention_flops, tokens, 0.0, attention=True)
        stages["llm_prefill"] = prefill
        head_bytes = spec.vocab_size * spec.hidden_size * size
        head = self._seconds(cost.lm_head_flops, 1, head_bytes)  # the last position, in prefill and in each step
        stages["first_token"] = head
        decode = head
        lengths = decode_kv_lengths(schedule, generated_tokens=config.decode_tokens // 2)
        per_token_layer = 2 * layer_parameters(spec)
        for length in lengths:
            read = layer_bytes + 2 * length * spec.kv_dim * size
            decode += self._seconds(per_token_layer + 4 * length * spec.num_heads * spec.head_dim, 1, read)
        stages[DECODE] = decode
        return {name: 1e3 * seconds for name, seconds in stages.items()}
