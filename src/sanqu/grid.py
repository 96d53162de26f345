"""The study grid: one immutable value holding CRS, affine transform and shape.

Every raster in a run is aligned onto one :class:`Grid`. A grid can be cut into
:class:`Block` windows (with an optional halo of extra cells for neighbourhood
operations) so that per-cell stages run block by block with bounded memory.

Conventions: arrays are indexed ``[row, col]``; ``transform`` maps (col, row) to
(x, y) of the cell's upper-left corner; grids are north-up (no rotation).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from affine import Affine
from pyproj import CRS
from rasterio.windows import Window

from .errors import InputError


@dataclass(frozen=True)
class Block:
    """A window of the grid to process, with the halo read around it.

    Attributes
    ----------
    row, col : int
        Offset of the block's core in the grid.
    height, width : int
        Size of the core.
    halo : int
        Cells read on every side of the core (clipped reads are padded).
    """

    row: int
    col: int
    height: int
    width: int
    halo: int = 0

    @property
    def window(self) -> Window:
        """The core window, without halo."""
        return Window(self.col, self.row, self.width, self.height)

    @property
    def read_window(self) -> Window:
        """The core window grown by the halo on every side (may leave the grid)."""
        h = self.halo
        return Window(self.col - h, self.row - h, self.width + 2 * h, self.height + 2 * h)

    @property
    def core(self) -> tuple[slice, slice]:
        """Slices that cut the core out of an array read with :attr:`read_window`."""
        h = self.halo
        return slice(h, h + self.height), slice(h, h + self.width)

    @property
    def slices(self) -> tuple[slice, slice]:
        """Slices of the core in a whole-grid array."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


@dataclass(frozen=True)
class Grid:
    """An immutable, north-up raster grid.

    Parameters
    ----------
    crs : pyproj.CRS
        Coordinate reference system of the grid.
    transform : affine.Affine
        Maps (col, row) to (x, y) of the cell's upper-left corner.
    shape : tuple of int
        ``(rows, cols)``.
    """

    crs: CRS
    transform: Affine
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        t = self.transform
        if t.b != 0 or t.d != 0:
            raise InputError(f"grid: rotated transforms are not supported, got {tuple(t)[:6]}")
        if t.a <= 0 or t.e >= 0:
            raise InputError(f"grid: expected a north-up grid, got cell size {t.a} x {t.e}")
        if self.shape[0] <= 0 or self.shape[1] <= 0:
            raise InputError(f"grid: expected a non-empty shape, got {self.shape}")

    @classmethod
    def square(cls, cell: float, shape: tuple[int, int], crs: str = "EPSG:4527") -> Grid:
        """A north-up grid of square cells whose bottom-left corner is (0, 0), for examples.

        Examples
        --------
        >>> Grid.square(10, (3, 2)).bounds
        (0.0, 0.0, 20.0, 30.0)
        """
        return cls(CRS.from_user_input(crs), Affine(cell, 0, 0, 0, -cell, cell * shape[0]),
                   shape)

    @property
    def height(self) -> int:
        """Number of rows."""
        return self.shape[0]

    @property
    def width(self) -> int:
        """Number of columns."""
        return self.shape[1]

    @property
    def size(self) -> int:
        """Number of cells."""
        return self.shape[0] * self.shape[1]

    @property
    def res(self) -> tuple[float, float]:
        """Cell size ``(x, y)`` in CRS units, both positive."""
        return self.transform.a, -self.transform.e

    @property
    def cell_area(self) -> float:
        """Area of one cell in square CRS units (m² for projected grids)."""
        return self.transform.a * -self.transform.e

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)``."""
        left, top = self.transform.c, self.transform.f
        return left, top + self.transform.e * self.height, left + self.transform.a * self.width, top

    def rowcol(self, x: float, y: float) -> tuple[int, int]:
        """Row and column of the cell holding point ``(x, y)``.

        Examples
        --------
        >>> from affine import Affine
        >>> g = Grid(CRS.from_epsg(4527), Affine(30, 0, 0, 0, -30, 300), (10, 10))
        >>> g.rowcol(45, 250)
        (1, 1)
        """
        col, row = ~self.transform @ (x, y)
        return math.floor(row), math.floor(col)

    def blocks(self, size: int, halo: int = 0) -> Iterator[Block]:
        """Cut the grid into square blocks of at most ``size`` cells a side, row-major.

        Examples
        --------
        >>> from affine import Affine
        >>> g = Grid(CRS.from_epsg(4527), Affine(30, 0, 0, 0, -30, 0), (5, 3))
        >>> [(b.row, b.col, b.height, b.width) for b in g.blocks(2)]
        [(0, 0, 2, 2), (0, 2, 2, 1), (2, 0, 2, 2), (2, 2, 2, 1), (4, 0, 1, 2), (4, 2, 1, 1)]
        """
        if size <= 0:
            raise ValueError(f"block size must be positive, got {size}")
        for row in range(0, self.height, size):
            for col in range(0, self.width, size):
                yield Block(
                    row, col, min(size, self.height - row), min(size, self.width - col), halo
                )

    def block_count(self, size: int) -> int:
        """Number of blocks :meth:`blocks` yields for ``size``."""
        return math.ceil(self.height / size) * math.ceil(self.width / size)

    def profile(self, **creation: object) -> dict[str, object]:
        """A rasterio write profile for a single-band GeoTIFF on this grid."""
        return {
            "driver": "GTiff",
            "height": self.height,
            "width": self.width,
            "count": 1,
            "crs": self.crs.to_wkt(),
            "transform": self.transform,
            **creation,
        }
