"""Small configs on the guideline preset, and tiny GeoTIFF studies with every input."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from sanqu.config import Config, config_from_dict
from sanqu.evaluate import Evaluation

#: Every optional input of the guideline preset.
OPTIONAL = (
    "precipitation", "evapotranspiration", "accumulated_temperature", "soil_silt", "soil_texture",
    "rainfall_erosivity", "soil_erodibility", "cover_management", "vegetation_cover",
    "desertification", "rocky_desertification", "salinisation", "soil_environment",
    "meteorological_hazard", "hazard_danger", "second_hazard", "air_capacity", "water_capacity",
    "comfort", "drive_time",
)

#: Land-use codes of the small configs.
CLASSES = {"cultivated": [1], "forest": [2], "built": [3], "water": [4], "grassland": [5]}

#: Soil texture codes of the small configs (illustrative, for the tests only).
TEXTURES = {"clay": [1], "loam": [2], "silt": [3]}


def document(present: tuple[str, ...] = OPTIONAL, folder: Path | None = None) -> dict[str, Any]:
    """A minimal study config extending the preset, with the given optional inputs present."""
    folder = folder or Path("/nonexistent")
    inputs = {"dem": {"path": str(folder / "dem.tif")},
              "landuse": {"path": str(folder / "landuse.tif")}}
    inputs.update({k: {"path": str(folder / f"{k}.tif")} for k in present})
    return {
        "name": "golden",
        "extends": "guideline",
        "grid": {"reference": "dem", "block_size": 64},
        "study_area": {"valid_inputs": ["dem", "landuse"]},
        "inputs": inputs,
        "landuse": {"input": "landuse", "classes": copy.deepcopy(CLASSES)},
        "categories": {"soil_texture": {"classes": copy.deepcopy(TEXTURES)}},
        "factors": {"water_conservation": {"runoff_coefficients": {
            "cultivated": 0.3, "forest": "mixed_forest", "built": 0.9, "water": 0.0,
            "grassland": "grassland"}}},
        "lines": {"red_line": {}, "farmland": {"cultivated_classes": ["cultivated"]},
                  "ugb": {"seed_classes": ["built"]}},
    }


def eco_by_landuse(doc: dict[str, Any]) -> dict[str, Any]:
    """Replace the ecology services by a land-use lookup, for studies without climate inputs."""
    doc.setdefault("evaluation", {}).setdefault("eco_importance", {}).setdefault("steps", {})[
        "service"] = {"replace": True, "op": "lookup", "layer": "landuse", "scale": 3,
                      "table": {"forest": 1, "water": 1, "grassland": 2, "cultivated": 3,
                                "built": 3}}
    return doc


def config(present: tuple[str, ...] = OPTIONAL, edit: Any = None) -> Config:
    """:func:`document` validated; ``edit`` may change the document first."""
    doc = document(present)
    if edit is not None:
        edit(doc)
    return config_from_dict(doc)


def run(cfg: Config, result: str, layers: dict[str, Any]) -> dict[str, list[int]]:
    """Run one result's per-cell steps on a row of cells; every step's grades by name."""
    ev = Evaluation(result, cfg)
    arrays = {k: np.atleast_2d(np.asarray(v, dtype=np.float32)) for k, v in layers.items()}
    mask = np.ones(next(iter(arrays.values())).shape, dtype=bool)
    _, steps = ev.run(arrays, mask, keep=True)
    env = dict(steps)
    for p in ev.block_plan:  # skipped steps hand their input on: show it under their name
        if p.status == "pass":
            env[p.name] = env[p.source]
    return {k: v[0].tolist() for k, v in env.items()}


def write_tif(path: Path, data: np.ndarray, nodata: float | None = None, cell: float = 30.0,
              ) -> Path:
    """A single-band GeoTIFF in CGCS2000 GK zone 39 (EPSG:4527)."""
    profile = {"driver": "GTiff", "height": data.shape[0], "width": data.shape[1], "count": 1,
               "dtype": data.dtype, "crs": "EPSG:4527", "nodata": nodata,
               "transform": Affine(cell, 0, 39_500_000, 0, -cell, 3_500_000)}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    return path
