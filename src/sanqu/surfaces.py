"""The compact whole-area rasters that the per-cell stages hand to the whole-area stages.

One byte a cell each: the study mask, the land-use class index, the three
evaluation levels, a steep-slope flag and the protected-area flag. A province at
30 m (~190 M cells) fits in about 1.3 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Grid


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

    @classmethod
    def empty(cls, grid: Grid, class_names: tuple[str, ...]) -> Surfaces:
        """Zeroed rasters on ``grid``, to be filled block by block."""
        def z(dtype: type) -> np.ndarray:
            return np.zeros(grid.shape, dtype=dtype)

        return cls(grid, z(bool), z(np.uint8), class_names, z(np.uint8), z(np.uint8),
                   z(np.uint8), z(bool), z(bool))

    def is_class(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Cells whose land-use class is one of ``names``."""
        lut = np.zeros(256, dtype=bool)
        lut[[self.class_names.index(n) + 1 for n in names]] = True
        return lut[self.landclass]  # class 0 (outside) is never listed

    def cells(self, hectares: float) -> int:
        """Whole cells in an area given in hectares (rounded to nearest)."""
        return int(round(hectares * 10_000 / self.grid.cell_area))

    def hectares(self, cells: int | np.integer) -> float:
        """Area of ``cells`` cells in hectares."""
        return float(cells) * self.grid.cell_area / 10_000
