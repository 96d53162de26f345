"""sanqu: delineate China's three zones and three lines (三区三线) from raster evaluations.

The pipeline, one module per stage::

    config → align → factors → evaluate → lines → allocate → vectorize → export

Typical use::

    from sanqu import load_config, delineate, evaluate, explain
    cfg = load_config("configs/dianbu.yaml")
    result = delineate(cfg, "out")          # the whole pipeline
    evaluation = evaluate(cfg, "eval-out")  # the 双评价 with every intermediate grade
    print(explain(cfg, 39541782.5, 3540073.3))  # why one cell gets its levels
"""

from __future__ import annotations

__version__ = "0.1.0"

from .jitcache import drop_stale  # noqa: E402

drop_stale()  # before any kernel is loaded: numba does not track callees in other files

from .config import Config, default_config_path, load_config  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    InputError,
    InputNotFoundError,
    OutputError,
    QuotaError,
    SanquError,
)
from .explain import Explanation, explain  # noqa: E402
from .pipeline import EvaluationRun, RunResult, delineate, evaluate  # noqa: E402
from .study import Study  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
    "EvaluationRun",
    "Explanation",
    "InputError",
    "InputNotFoundError",
    "OutputError",
    "QuotaError",
    "RunResult",
    "SanquError",
    "Study",
    "__version__",
    "default_config_path",
    "delineate",
    "evaluate",
    "explain",
    "load_config",
]
