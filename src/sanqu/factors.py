"""Derived factors: slope, local relief, distances, LS, water and soil conservation.

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

from .config import (
    DistanceFactor,
    LsFactor,
    ReliefFactor,
    SlopeFactor,
    SoilConservationFactor,
    WaterConservationFactor,
    relief_window,
)

FactorSpec = (SlopeFactor | ReliefFactor | DistanceFactor | LsFactor | WaterConservationFactor
              | SoilConservationFactor)


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
    p = np.full((dem.shape[0] + 2, dem.shape[1] + 2), np.nan, dtype=np.float32)
    z = p[1:-1, 1:-1]  # the elevations, NaN where missing, inside a NaN border
    np.copyto(z, dem, casting="unsafe", where=valid)
    # Horn's kernel as two separable passes: a NaN anywhere in the 3x3 window gives NaN.
    # (a + 2b) + c, summed in place (float addition commutes exactly)
    v = np.multiply(p[1:-1], np.float32(2))
    v += p[:-2]
    v += p[2:]
    h = np.multiply(p[:, 1:-1], np.float32(2))
    h += p[:, :-2]
    h += p[:, 2:]
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
    g = np.hypot(dx8, dy8, out=dx8)
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
    hi = window_extreme(np.where(valid, z, -np.inf), window, np.maximum, -np.inf)
    lo = window_extreme(np.where(valid, z, np.inf), window, np.minimum, np.inf)
    hi -= lo
    return np.where(valid, hi, np.float32(0)).astype(np.float32, copy=False)


def window_extreme(values: np.ndarray, window: int, op: np.ufunc, fill: float) -> np.ndarray:
    """Maximum or minimum over a square window, as ``scipy.ndimage.maximum_filter``.

    The window of side ``window`` around a cell spans ``window // 2`` cells up and
    left and the rest down and right (scipy's placement); cells beyond the array
    count as ``fill``. Separable, and along each axis by doubling spans: the
    extreme over 2k cells is ``op`` of two over k, and any window is ``op`` of two
    overlapping power-of-two spans, so a side of 12 takes 4 whole-array ``op``
    calls per axis (about 3x faster than scipy's filter); the result is the same
    value for value, as a maximum or minimum involves no rounding.

    Parameters
    ----------
    values : numpy.ndarray
        2-D array, without NaN.
    window : int
        Side of the window in cells (≥ 1).
    op : numpy.ufunc
        ``np.maximum`` or ``np.minimum``.
    fill : float
        Value of the cells beyond the array (``-inf`` for a maximum).

    Examples
    --------
    >>> a = np.array([[1, 5, 2, 0]], dtype=np.float32)
    >>> window_extreme(a, 2, np.maximum, -np.inf).tolist()
    [[1.0, 5.0, 5.0, 2.0]]
    """
    for axis in (0, 1):
        values = _running_extreme(values, window, op, fill, axis)
    return values


def _running_extreme(values: np.ndarray, window: int, op: np.ufunc, fill: float,
                     axis: int) -> np.ndarray:
    """:func:`window_extreme` along one axis."""
    def cut(a: np.ndarray, start: int, stop: int) -> np.ndarray:
        return a[start:stop] if axis == 0 else a[:, start:stop]

    n = values.shape[axis]
    pad = [(0, 0), (0, 0)]
    pad[axis] = (window // 2, window - 1 - window // 2)
    spans = np.pad(values, pad, constant_values=fill)  # spans[i]: extreme of i .. i+span-1
    span = 1
    while 2 * span <= window:
        length = spans.shape[axis]
        spans = op(cut(spans, 0, length - span), cut(spans, span, length))
        span *= 2
    if span == window:
        return np.ascontiguousarray(cut(spans, 0, n))
    return op(cut(spans, 0, n), cut(spans, window - span, window - span + n))


def distance_to(target: np.ndarray, res: tuple[float, float], max_distance: float,
                threads: int = 1) -> np.ndarray:
    """Euclidean distance (m) from each cell centre to the nearest target cell, capped.

    Exact for every cell whose distance is at most ``max_distance`` provided the
    array holds all cells within that distance (the block halo); larger distances
    are reported as ``max_distance``. The transform is the ``edt`` package's exact
    Euclidean one (Felzenszwalb-Huttenlocher, float32, about 2.5x scipy's); results
    are rounded to the centimetre so that distances on a break (2 cells = 60 m)
    compare exactly. ``edt`` holds the GIL while it runs but can use threads of its
    own: ``threads`` of them (see :func:`own_threads`).

    Examples
    --------
    >>> t = np.zeros((1, 5), bool); t[0, 0] = True
    >>> distance_to(t, (30.0, 30.0), 100.0).tolist()
    [[0.0, 30.0, 60.0, 90.0, 100.0]]
    """
    if not target.any():
        return np.full(target.shape, max_distance, dtype=np.float32)
    dist = edt.edt(~target, anisotropy=(res[1], res[0]), black_border=False, parallel=threads)
    np.minimum(dist, np.float32(max_distance), out=dist)
    return np.round(dist, 2, out=dist)


def ls_factor(dem: np.ndarray, valid: np.ndarray, res: tuple[float, float],
              slope_length: float | None = None) -> np.ndarray:
    """USLE slope length and steepness factor LS = L · S, per cell.

    Slope θ is Horn's slope (:func:`slope_degrees`). L = (λ / 22.13)^m with the
    slope length λ (default: the cell size, a per-cell proxy without flow routing)
    and m = 0.2, 0.3, 0.4, 0.5 for θ ≤ 1°, 1-3°, 3-5°, > 5° (Wischmeier & Smith).
    S = 10.8 sin θ + 0.03 for θ < 5°, 16.8 sin θ - 0.5 for 5° ≤ θ < 10° (McCool),
    21.91 sin θ - 0.96 for θ ≥ 10° (Liu et al. 1994, steep slopes in China).

    Returns
    -------
    numpy.ndarray of float32
        LS (dimensionless); 0 where ``valid`` is False.

    Examples
    --------
    Flat land with 22.13 m slopes: L = 1, S = 0.03:

    >>> z = np.zeros((3, 3), np.float32)
    >>> round(float(ls_factor(z, np.ones((3, 3), bool), (30.0, 30.0), 22.13)[1, 1]), 4)
    0.03
    """
    theta = np.radians(slope_degrees(dem, valid, res).astype(np.float64))
    deg = np.degrees(theta)
    m = np.select([deg <= 1, deg <= 3, deg <= 5], [0.2, 0.3, 0.4], 0.5)
    length = slope_length if slope_length is not None else min(res)
    sin = np.sin(theta)
    s = np.select([deg < 5, deg < 10], [10.8 * sin + 0.03, 16.8 * sin - 0.5], 21.91 * sin - 0.96)
    return np.where(valid, (length / 22.13) ** m * s, 0).astype(np.float32)


def water_conservation(precipitation: np.ndarray | float, evapotranspiration: np.ndarray | float,
                       runoff_coefficient: np.ndarray) -> np.ndarray:
    """Water conservation (mm) = P - P · α - ET, negative values set to 0 (§2.4).

    Parameters
    ----------
    precipitation, evapotranspiration : numpy.ndarray or float
        Annual precipitation and actual evapotranspiration, mm.
    runoff_coefficient : numpy.ndarray
        α per cell, from the cell's land-use class.

    Examples
    --------
    Mixed forest (α 0.0229) with 1000 mm rain and 600 mm ET:

    >>> round(float(water_conservation(1000.0, 600.0, np.array([0.0229]))[0]), 1)
    377.1
    """
    p = np.asarray(precipitation, dtype=np.float32)
    wc = p - p * runoff_coefficient.astype(np.float32) - np.asarray(evapotranspiration,
                                                                    dtype=np.float32)
    return np.maximum(wc, np.float32(0)).astype(np.float32)


def soil_conservation(r: np.ndarray | float, k: np.ndarray | float, ls: np.ndarray | float,
                      c: np.ndarray | float) -> np.ndarray:
    """Soil conservation (t/ha/a) = R · K · LS · (1 - C): the erosion vegetation prevents.

    Examples
    --------
    >>> soil_conservation(np.array([4000.0]), 0.03, 2.0, 0.25).tolist()
    [180.0]
    """
    out = (np.asarray(r, dtype=np.float32) * np.asarray(k, dtype=np.float32)
           * np.asarray(ls, dtype=np.float32)
           * (np.float32(1) - np.asarray(c, dtype=np.float32)))
    return np.asarray(out, dtype=np.float32)


def halo_cells(spec: FactorSpec, res: tuple[float, float]) -> int:
    """Cells of halo a factor needs around a block to be exact in the block's core.

    This is the factor's own neighbourhood; a factor that reads other factors also
    needs theirs (:class:`~sanqu.study.Study` adds them up).

    Examples
    --------
    >>> from sanqu.config import DistanceFactor
    >>> halo_cells(DistanceFactor(kind="distance", classes=["water"], max_distance=100), (30, 30))
    4
    """
    if isinstance(spec, SlopeFactor | LsFactor):
        return 1
    if isinstance(spec, ReliefFactor):
        return relief_window(spec.window, min(res)) // 2
    if isinstance(spec, DistanceFactor):
        return math.ceil(spec.max_distance / min(res))
    return 0


def own_threads(spec: FactorSpec) -> bool:
    """Whether a factor runs on threads of its own, holding the GIL meanwhile.

    Such a factor (a distance: ``edt`` keeps the GIL) should be given the worker
    threads and run alone, not beside others on a thread pool, where it would
    stall them; every other factor is numpy and scipy work that releases the GIL.
    """
    return isinstance(spec, DistanceFactor)


def compute_factor(
    spec: FactorSpec,
    layers: dict[str, np.ndarray],
    valid: dict[str, np.ndarray],
    classes: dict[str, np.ndarray],
    res: tuple[float, float],
    threads: int = 1,
) -> np.ndarray:
    """Compute one factor on a haloed block.

    Parameters
    ----------
    spec : factor spec
        From the config.
    layers : dict of numpy.ndarray
        Input values and the factors computed so far, by name.
    valid : dict of numpy.ndarray
        Validity masks by input name.
    classes : dict of numpy.ndarray of bool
        Land-use class masks by class name.
    res : tuple of float
        Cell size.
    threads : int
        Threads a factor with :func:`own_threads` may use.
    """
    if isinstance(spec, SlopeFactor):
        return slope_degrees(layers[spec.input], valid[spec.input], res)
    if isinstance(spec, ReliefFactor):
        return local_relief(layers[spec.input], valid[spec.input],
                            relief_window(spec.window, min(res)))
    if isinstance(spec, LsFactor):
        return ls_factor(layers[spec.input], valid[spec.input], res, spec.slope_length)
    shape = next(iter(classes.values())).shape

    def get(ref: str | float) -> np.ndarray | float:
        return layers[ref] if isinstance(ref, str) else float(ref)

    if isinstance(spec, WaterConservationFactor):
        alpha = np.zeros(shape, dtype=np.float32)
        for name, coefficient in spec.runoff_coefficients.items():
            alpha[classes[name]] = coefficient
        out = water_conservation(get(spec.precipitation), get(spec.evapotranspiration), alpha)
    elif isinstance(spec, SoilConservationFactor):
        out = soil_conservation(get(spec.r), get(spec.k), get(spec.ls), get(spec.c))
    else:
        target = np.zeros(shape, dtype=bool)
        for name in spec.classes:
            target |= classes[name]
        return distance_to(target, res, spec.max_distance, threads)
    return np.broadcast_to(out, shape).astype(np.float32)
