"""Paper vs exact FLOPs for every preset, and which term accounts for the difference.

The paper convention (HieraVid Eq. 12, FastV, DivPrune) counts Σ_layers 4·n·d² + 2·n²·d + 2·n·d·m with
n the visual tokens: one FLOP per multiply-add of a multi-head model with a two-matrix MLP, no text, no
LM head, no vision tower. The exact convention is what a dense kernel executes. This script walks from
one to the other, one assumption at a time, for the vanilla schedule of each preset, and checks that
both ends equal `vidcost.cost.estimate_cost`. Order of the steps (the attribution depends on it):
text tokens → GQA-sized K/V → third SwiGLU matrix → 2 FLOPs per MAC → LM head → vision tower.

    python analysis/cost_conventions.py [--text-tokens 32]
"""

from __future__ import annotations


from vidcost.cli.args import ArgumentParser, run_script, whole_number
from vidcost.cost import estimate_cost, format_flops, vanilla_schedule, vision_flops
from vidcost.spec import PRESETS, ModelSpec, load_spec


def layer_macs(spec: ModelSpec, n: int, *, gqa: bool, mlp_matrices: int) -> int:
    """Multiply-adds of one layer on n tokens: projections, QKᵀ + P·V, MLP."""
    d, q_width = spec.hidden_size, spec.num_heads * spec.head_dim
    kv_width = spec.kv_dim if gqa else q_width
    projections = n * d * (2 * q_width + 2 * kv_width)
    attention = 2 * n * n * q_width
    return projections + attention + n * d * spec.intermediate_size * mlp_matrices


def waterfall(spec: ModelSpec) -> list[tuple[str, int]]:
    """(step, cumulative FLOPs) from the paper convention to exact + vision."""
    visual, text, layers = spec.num_visual_tokens, spec.text_tokens, spec.num_layers
    steps = [("paper: HieraVid Eq. 12, visual tokens", layers * layer_macs(spec, visual, gqa=False, mlp_matrices=2))]
    steps.append((f"+ {text} text tokens", layers * layer_macs(spec, visual + text, gqa=False, mlp_matrices=2)))
    steps.append((f"GQA: K/V projections {spec.num_kv_heads}/{spec.num_heads} of the heads",
                  layers * layer_macs(spec, visual + text, gqa=True, mlp_matrices=2)))
    macs = layers * layer_macs(spec, visual + text, gqa=True, mlp_matrices=spec.mlp_matrices)
    steps.append((f"SwiGLU: {spec.mlp_matrices} MLP matrices, not 2", macs))
    steps.append(("2 FLOPs per multiply-add", 2 * macs))
    steps.append(("+ LM head on the last position", 2 * macs + 2 * spec.hidden_size * spec.vocab_size))
    steps.append(("+ vision tower + projector", steps[-1][1] + vision_flops(spec)))
    return steps


def report(spec: ModelSpec) -> str:
    schedule = vanilla_schedule(spec)
    steps = waterfall(spec)
    paper = estimate_cost(spec, schedule, convention="paper").prefill_flops
    exact = estimate_cost(spec, schedule, convention="exact", include_vision=True)
    causal = estimate_cost(spec, schedule, convention="exact", causal=True, include_vision=True)
    # Both ends of the walk must be the cost model's own numbers.
    if steps[0][1] != paper or steps[-1][1] != exact.prefill_flops:
        raise SystemExit(f"{spec.name}: waterfall ends {steps[0][1]}/{steps[-1][1]} differ from "
                         f"estimate_cost {paper}/{exact.prefill_flops}")
    lines = [f"{spec}", f"  {'step':<44} {'change':>16} {'cumulative':>16} {'× paper':>8}"]
    previous = None
    deltas = []
    for label, value in steps:
        sign = "+" if previous is None or value >= previous else "−"
        change = "" if previous is None else f"{sign}{format_flops(abs(value - previous))}"
        if previous is not None:
            deltas.append((abs(value - previous), label))
        lines.append(f"  {label:<44} {change:>16} {format_flops(value):>16} {value / paper:>8.2f}")
        previous = value
    largest = max(deltas)
    lines.append(f"  exact / paper = {exact.prefill_flops / paper:.2f}; the largest single term: '{largest[1]}' "
                 f"({format_flops(largest[0])})")
    lines.append(f"  with --causal (flash kernels skip the masked half): {format_flops(causal.prefill_flops)} "
                 f"(−{format_flops(exact.prefill_flops - causal.prefill_flops)}); elementwise estimate, not "
                 f"included: {format_flops(exact.elementwise_flops)}")
    return "\n".join(lines)


def main() -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-tokens", type=whole_number(0), default=None, help="text tokens (default: the spec's)")
    args = parser.parse_args()
    for name in PRESETS:
        print(report(load_spec(name, text_tokens=args.text_tokens)))
        print()


if __name__ == "__main__":
    run_script(main)
