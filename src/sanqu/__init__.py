"""sanqu: delineate China's three zones and three lines (三区三线) from raster evaluations.

The pipeline, one module per stage::

    config → align → factors → evaluate → lines → allocate → vectorize → export

Typical use::

    from sanqu import load_config, delineate
    result = delineate(load_config("configs/dianbu.yaml"), "out")
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config, default_config_path, load_config  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    InputError,
    InputNotFoundError,
    OutputError,
    QuotaError,
    SanquError,
)
from .pipeline import RunResult, delineate  # noqa: E402
from .study import Study  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
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
    "load_config",
]
