"""The compact whole-area rasters that the per-cell stages hand to the whole-area stages.

One byte a cell each: the study mask, the land-use class index, the three
evaluation levels, a steep-slope flag, the slope class and the nearness class
used to rank farmland, the protected-area and special-use flags; two bytes for
the administrative unit. A province at 30 m (~190 M cells) fits in about 2.3 GB
(the unit raster stays unwritten zero pages when no units are configured).

Areas given in hectares become whole cells here, rounded so that decisions hold
in area terms whatever the cell size: a minimum area rounds up (a kept patch is
never smaller than the minimum), a maximum rounds down (a filled hole, a cap is
never larger).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .grid import Grid
from .rules import one_of

#: The attribute of :class:`Surfaces` that holds each evaluation result's levels.
RESULT_ATTRS = {"eco_importance": "eco", "agri_suitability": "agri",
                "urban_suitability": "urban"}


@dataclass
class Surfaces:
    """Whole-area class rasters of one run, all of the grid's shape.

    Attributes
    ----------
    grid : Grid
        The study grid.
    mask : numpy.ndarray of bool
        True inside the study area.
    landclass : numpy.ndarray of uint8
        Index (1-based, in config order) of the cell's land-use class; 0 if none.
    class_names : tuple of str
        Land-use class names in index order (``class_names[0]`` is index 1).
    eco, agri, urban : numpy.ndarray of uint8
        Evaluation levels 1..3 (1 best), 0 outside.
    steep : numpy.ndarray of bool
        Slope above the farmland limit.
    protected : numpy.ndarray of bool
        Inside a protected area (all False when none is configured).
    slope_grade : numpy.ndarray of uint8
        Slope class 1 (flattest) … n by the farmland quality's ``slope_breaks``.
    near_grade : numpy.ndarray of uint8
        Nearness class 1 (nearest) … n of the farmland quality's ``near_factor``
        (all 1 when none is configured).
    special : numpy.ndarray of bool
        Marked as special-use land (特别用途区) by the UGB's ``special_use`` input.
    unit : numpy.ndarray of uint16
        Administrative unit index (1-based into ``unit_codes``); 0 when in none.
    unit_codes, unit_names : tuple of str
        Codes and names of the administrative units in index order.
    """

    grid: Grid
    mask: np.ndarray
    landclass: np.ndarray
    class_names: tuple[str, ...]
    eco: np.ndarray
    agri: np.ndarray
    urban: np.ndarray
    steep: np.ndarray
    protected: np.ndarray
    slope_grade: np.ndarray
    near_grade: np.ndarray
    special: np.ndarray
    unit: np.ndarray
    unit_codes: tuple[str, ...] = ()
    unit_names: tuple[str, ...] = ()

    @classmethod
    def empty(cls, grid: Grid, class_names: tuple[str, ...], unit_codes: tuple[str, ...] = (),
              unit_names: tuple[str, ...] = ()) -> Surfaces:
        """Zeroed rasters on ``grid``, to be filled block by block."""
        def z(dtype: type) -> np.ndarray:
            return np.zeros(grid.shape, dtype=dtype)

        return cls(grid, z(bool), z(np.uint8), class_names, z(np.uint8), z(np.uint8),
                   z(np.uint8), z(bool), z(bool), z(np.uint8), z(np.uint8), z(bool),
                   z(np.uint16), unit_codes, unit_names)

    def is_class(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Cells whose land-use class is one of ``names``."""
        return one_of(self.landclass, [self.class_names.index(n) + 1 for n in names]) & self.mask

    def cells_at_least(self, hectares: float) -> int:
        """Fewest whole cells covering at least ``hectares`` (for minimum areas and floors).

        Examples
        --------
        >>> from sanqu.grid import Grid
        >>> from affine import Affine
        >>> s = Surfaces.empty(Grid("EPSG:4527", Affine(30, 0, 0, 0, -30, 0), (1, 1)), ())
        >>> s.cells_at_least(1.0), s.cells_at_most(1.0), s.cells_at_least(0.09)
        (12, 11, 1)
        """
        return int(math.ceil(hectares * 10_000 / self.grid.cell_area - 1e-9))

    def cells_at_most(self, hectares: float) -> int:
        """Most whole cells within ``hectares`` (for maximum areas and caps)."""
        return int(math.floor(hectares * 10_000 / self.grid.cell_area + 1e-9))

    def hectares(self, cells: int | np.integer) -> float:
        """Area of ``cells`` cells in hectares."""
        return float(cells) * self.grid.cell_area / 10_000
