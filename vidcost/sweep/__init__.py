"""Sweep: grids of profile cells that resume and scale out, locally and on Ray.

Main entry: `run_sweep(grid, store=...) -> SweepResult`; `plan_sweep` says what a run would do without
running anything. The parts, in the order a sweep uses them:

- `grid` — `Grid` (models × frames × methods × budgets, `SweepSettings` shared), `load_grid` (TOML),
  `expand_grid` → `Cell`s, each checked and given its `config_hash`;
- `resume` — which cells the store holds complete (`stored_cells`), and `CellWriter`, the store's one
  writer during a sweep: one lock, one append per cell, a torn last write cut off;
- `worker` — `SweepWorker`: a model built once per worker (`ProfileSession`), a `CellResult` per cell;
- `executor` / `ray_executor` — where the workers run: this process, or one Ray actor per GPU or CPU slot;
- `driver` — `plan_sweep`, `run_sweep`: the only code that writes the store.

A sweep's records are ordinary profile records (with `config_hash` set), so `vidcost report` and
`vidcost fit` read its store as they read any other.
"""

from vidcost.sweep.driver import CellOutcome, SweepPlan, SweepResult, plan_sweep, run_sweep
from vidcost.sweep.grid import Cell, Grid, MethodEntry, SweepSettings, expand_grid, grid_from_mapping, load_grid

__all__ = ["Cell", "CellOutcome", "Grid", "MethodEntry", "SweepPlan", "SweepResult", "SweepSettings", "expand_grid",
           "grid_from_mapping", "load_grid", "plan_sweep", "run_sweep"]
