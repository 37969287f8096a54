"""vidcost: what visual-token pruning really buys a Video LLM deployment.

The pipeline, one module per noun: `spec` (ModelSpec) → `schedule` (Schedule) → `cost` (CostEstimate)
→ `methods` (pruning methods) → `runtime` (a real transformers forward) → `profiling` (ProfileRecord)
→ `store` → `fit` / `predict` → `pareto` / `report`.

Importing the package does not import torch; the modules that need it import it themselves.
"""

from vidcost.errors import ConfigError, DataFormatError, FitError, ProfilingError, VidcostError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataFormatError", "FitError", "ProfilingError", "VidcostError", "__version__"]
