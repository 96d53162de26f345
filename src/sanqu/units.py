"""Administrative units (townships…): polygons with a code and a name, burnt onto the grid.

Read once per run (:func:`read_units`), then rasterized block by block into the
``unit`` raster of :class:`~sanqu.surfaces.Surfaces` (index 1..n in code order,
0 outside every unit). Per-unit farmland quotas refer to the units by code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from .align import burn, read_polygons
from .check import overlap_pairs
from .config import UnitsSpec
from .errors import ConfigError, InputError
from .grid import Block, Grid

#: Most units a run can hold (the unit raster is uint16; 0 means "no unit").
MAX_UNITS = 65535


@dataclass(frozen=True)
class Units:
    """Administrative units in code order.

    Attributes
    ----------
    codes, names : tuple of str
        Code and name of unit ``i + 1`` (raster index) at position ``i``.
    geometries : tuple of shapely geometries
        One (multi)polygon per unit, in the grid's CRS.
    notes : tuple of str
        Remarks on the layer (e.g. overlapping units).
    """

    codes: tuple[str, ...]
    names: tuple[str, ...]
    geometries: tuple[shapely.Geometry, ...]
    notes: tuple[str, ...] = ()

    def burn(self, grid: Grid, block: Block | None = None) -> np.ndarray:
        """Unit index per cell of ``block``'s read window (or the whole grid), uint16."""
        return burn(self.geometries, range(1, len(self.codes) + 1), grid, block, "uint16")


def _text(value: object) -> str:
    """A code or name as text; integral floats (codes read from DBF) lose their ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def read_units(spec: UnitsSpec, grid: Grid) -> Units:
    """Read the units layer: dissolve features by code, sort by code.

    Raises
    ------
    InputError
        If the layer cannot be read, lacks a field, has an empty code, gives one
        code two names, or holds more than :data:`MAX_UNITS` units.
    """
    df = read_polygons(spec.path, "units", grid, spec.layer, datum_shift=spec.datum_shift)
    for key, name in (("code_field", spec.code_field), ("name_field", spec.name_field)):
        if name not in df.columns:
            fields = [c for c in df.columns if c != "geometry"]
            raise InputError(f"units.{key}: field {name!r} is not in {spec.path.name} "
                             f"(fields: {fields})")
    codes = [_text(v) for v in df[spec.code_field]]
    names = [_text(v) for v in df[spec.name_field]]
    if any(not c or c.lower() == "nan" for c in codes):
        raise InputError(f"units.code_field: {spec.path.name} has a feature without a code "
                         f"in field {spec.code_field!r}")
    by_code: dict[str, tuple[str, list[shapely.Geometry]]] = {}
    for code, name, geom in zip(codes, names, df.geometry.values, strict=True):
        known, parts = by_code.setdefault(code, (name, []))
        if known != name:
            raise InputError(f"units.name_field: code {code!r} has two names, {known!r} and "
                             f"{name!r}")
        parts.append(geom)
    if len(by_code) > MAX_UNITS:
        raise InputError(f"units: {len(by_code)} units; at most {MAX_UNITS} are supported")
    order = sorted(by_code)
    geoms = tuple(shapely.union_all(by_code[c][1]) for c in order)
    notes = []
    pairs = overlap_pairs(np.asarray(geoms, dtype=object))
    if len(pairs):
        area = sum(p[2] for p in pairs) / 10_000
        notes.append(f"units: {len(pairs)} pairs of units overlap ({area:.2f} ha); cells there "
                     "go to the unit with the later code")
    return Units(tuple(order), tuple(by_code[c][0] for c in order), geoms, tuple(notes))


def quota_index(codes: tuple[str, ...], quotas: dict[str, float]) -> dict[int, float]:
    """Per-unit quotas keyed by unit index (1-based, code order) instead of code.

    Raises
    ------
    ConfigError
        If a quota names a code that no unit has.

    Examples
    --------
    >>> quota_index(("3401", "3402"), {"3402": 5.0})
    {2: 5.0}
    """
    index = {code: i + 1 for i, code in enumerate(codes)}
    unknown = sorted(c for c in quotas if c not in index)
    if unknown:
        raise ConfigError(
            f"lines.farmland.unit_quotas.{unknown[0]}: no administrative unit has this code "
            f"(units have {len(index)} codes, e.g. {list(index)[:3]})")
    return {index[c]: quotas[c] for c in sorted(quotas, key=index.__getitem__)}
