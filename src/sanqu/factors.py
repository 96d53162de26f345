"""Derived factors: slope, local relief, distance to land-use classes.

Per-cell stage. Every function takes numpy arrays of one block *including its
halo* and returns an array of the same shape; the caller crops the core. The
halo each factor needs is given by :func:`halo_cells`.

Cells outside the valid mask are ignored as neighbours: a missing neighbour of
the slope kernel takes the centre cell's value, and relief and distance see only
valid cells.
"""

from __future__ import annotations

import math

import edt
import numpy as np
from scipy import ndimage

from .config import DistanceFactor, ReliefFactor, SlopeFactor, relief_window


def slope_degrees(dem: np.ndarray, valid: np.ndarray, res: tuple[float, float]) -> np.ndarray:
    """Slope in degrees by Horn's (1981) method, as ``gdaldem slope`` computes it.

    Parameters
    ----------
    dem : numpy.ndarray
        Elevations (m).
    valid : numpy.ndarray of bool
        True where ``dem`` has data. A missing neighbour takes the centre's value;
        the outer ring of the array is treated as missing.
    res : tuple of float
        Cell size ``(x, y)`` in metres.

    Returns
    -------
    numpy.ndarray of float32
        Slope in degrees; 0 where ``valid`` is False.

    Examples
    --------
    A plane rising 1 m per 1 m cell eastwards has a slope of 45°:

    >>> z = np.tile(np.arange(4, dtype=np.float32), (4, 1))
    >>> float(slope_degrees(z, np.ones_like(z, bool), (1.0, 1.0))[1, 1])
    45.0
    """
    z = np.where(valid, dem, np.float32(np.nan)).astype(np.float32, copy=False)
    p = np.pad(z, 1, constant_values=np.nan)
    # Horn's kernel as two separable passes: a NaN anywhere in the 3x3 window gives NaN
    v = p[:-2] + 2 * p[1:-1] + p[2:]
    h = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]
    slope = _horn(v[:, 2:] - v[:, :-2], h[2:] - h[:-2], res)
    edge = valid & np.isnan(slope)
    if edge.any():  # cells next to no-data: a missing neighbour takes the centre's value
        r, c = np.nonzero(edge)
        centre = z[r, c]

        def nb(dr: int, dc: int) -> np.ndarray:
            val = p[r + 1 + dr, c + 1 + dc]
            return np.where(np.isnan(val), centre, val)

        a, b, cc = nb(-1, -1), nb(-1, 0), nb(-1, 1)
        d, f = nb(0, -1), nb(0, 1)
        g, hh, i = nb(1, -1), nb(1, 0), nb(1, 1)
        slope[r, c] = _horn((cc + 2 * f + i) - (a + 2 * d + g),
                            (g + 2 * hh + i) - (a + 2 * b + cc), res)
    slope[~valid] = 0
    return slope


def _horn(dx8: np.ndarray, dy8: np.ndarray, res: tuple[float, float]) -> np.ndarray:
    """Slope in degrees from Horn's weighted differences (8 x cell size x gradient)."""
    dx8 *= np.float32(1 / (8 * res[0]))
    dy8 *= np.float32(1 / (8 * res[1]))
    g = np.hypot(dx8, dy8)
    return np.degrees(np.arctan(g, out=g), out=g)


def local_relief(dem: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Local relief: max minus min elevation of the valid cells in a square window.

    Parameters
    ----------
    dem : numpy.ndarray
        Elevations (m).
    valid : numpy.ndarray of bool
        True where ``dem`` has data.
    window : int
        Window side in cells (an even side extends one more cell up and left).

    Returns
    -------
    numpy.ndarray of float32
        Relief in metres; 0 where ``valid`` is False.

    Examples
    --------
    >>> z = np.array([[0, 0, 0], [0, 5, 0], [0, 0, 9]], dtype=np.float32)
    >>> ok = np.ones_like(z, bool)
    >>> local_relief(z, ok, 3)[1, 1].item(), local_relief(z, ok, 1)[1, 1].item()
    (9.0, 0.0)
    """
    z = dem.astype(np.float32, copy=False)
    hi = ndimage.maximum_filter(np.where(valid, z, -np.inf), size=window, mode="constant",
                                cval=-np.inf)
    lo = ndimage.minimum_filter(np.where(valid, z, np.inf), size=window, mode="constant",
                                cval=np.inf)
    return np.where(valid, hi - lo, np.float32(0)).astype(np.float32)


def distance_to(target: np.ndarray, res: tuple[float, float], max_distance: float) -> np.ndarray:
    """Euclidean distance (m) from each cell centre to the nearest target cell, capped.

    Exact for every cell whose distance is at most ``max_distance`` provided the
    array holds all cells within that distance (the block halo); larger distances
    are reported as ``max_distance``. The transform is the ``edt`` package's exact
    Euclidean one (Felzenszwalb-Huttenlocher, float32, about 2.5x scipy's); results
    are rounded to the centimetre so that distances on a break (2 cells = 60 m)
    compare exactly.

    Examples
    --------
    >>> t = np.zeros((1, 5), bool); t[0, 0] = True
    >>> distance_to(t, (30.0, 30.0), 100.0).tolist()
    [[0.0, 30.0, 60.0, 90.0, 100.0]]
    """
    if not target.any():
        return np.full(target.shape, max_distance, dtype=np.float32)
    dist = edt.edt((~target).view(np.uint8), anisotropy=(res[1], res[0]),
                   black_border=False, parallel=1)
    np.minimum(dist, np.float32(max_distance), out=dist)
    return np.round(dist, 2, out=dist)


def halo_cells(spec: SlopeFactor | ReliefFactor | DistanceFactor, res: tuple[float, float]) -> int:
    """Cells of halo a factor needs around a block to be exact in the block's core.

    Examples
    --------
    >>> from sanqu.config import DistanceFactor
    >>> halo_cells(DistanceFactor(kind="distance", classes=["water"], max_distance=100), (30, 30))
    4
    """
    if isinstance(spec, SlopeFactor):
        return 1
    if isinstance(spec, ReliefFactor):
        return relief_window(spec.window, min(res)) // 2
    return math.ceil(spec.max_distance / min(res))


def compute_factor(
    spec: SlopeFactor | ReliefFactor | DistanceFactor,
    layers: dict[str, np.ndarray],
    valid: dict[str, np.ndarray],
    classes: dict[str, np.ndarray],
    res: tuple[float, float],
) -> np.ndarray:
    """Compute one factor on a haloed block.

    Parameters
    ----------
    spec : factor spec
        From the config.
    layers, valid : dict of numpy.ndarray
        Input values and validity masks by input name.
    classes : dict of numpy.ndarray of bool
        Land-use class masks by class name.
    res : tuple of float
        Cell size.
    """
    if isinstance(spec, SlopeFactor):
        return slope_degrees(layers[spec.input], valid[spec.input], res)
    if isinstance(spec, ReliefFactor):
        return local_relief(layers[spec.input], valid[spec.input],
                            relief_window(spec.window, min(res)))
    target = np.zeros(next(iter(classes.values())).shape, dtype=bool)
    for name in spec.classes:
        target |= classes[name]
    return distance_to(target, res, spec.max_distance)
