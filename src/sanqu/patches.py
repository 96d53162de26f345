"""Patch operations on whole-area class rasters: minimum areas, holes, slivers.

Whole-area stage: these functions take the full grid (bool or uint8 arrays, a
byte a cell) because connected patches do not respect block edges. Patches are
4-connected (cells sharing an edge), matching the polygons :mod:`sanqu.trace`
draws, so a raster patch is exactly one output polygon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numba import njit
from scipy import ndimage

from .config import AREA_UNITS
from .rules import take
from .trace import region_sizes

#: 4-connectivity structuring element.
FOUR = ndimage.generate_binary_structure(2, 1)


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the 4-connected patches of a boolean raster (1..n, 0 = background).

    Numbered by each patch's first cell in row-major order, as ``scipy.ndimage.label``.

    Examples
    --------
    >>> lab, n = label(np.array([[1, 0, 1], [1, 1, 0]], bool))
    >>> lab.tolist(), n
    ([[1, 0, 2], [1, 1, 0]], 2)
    """
    labels, value, _ = region_sizes(np.asarray(mask, dtype=bool))
    return labels, value.size - 1


def remove_small_patches(mask: np.ndarray, min_cells: int) -> np.ndarray:
    """Drop the 4-connected patches of ``mask`` smaller than ``min_cells`` cells.

    Examples
    --------
    >>> m = np.array([[1, 1, 0, 1], [1, 0, 0, 0]], bool)
    >>> remove_small_patches(m, 2).astype(int).tolist()
    [[1, 1, 0, 0], [1, 0, 0, 0]]
    """
    if min_cells <= 1 or not mask.any():
        return mask.copy()
    labels, _, sizes = region_sizes(mask)
    keep = sizes >= min_cells
    keep[0] = False
    out = np.zeros(mask.shape, dtype=bool)
    _set_labelled(out, labels, keep)
    return out


def fill_holes(mask: np.ndarray, max_cells: int, allowed: np.ndarray | None = None,
               budget: int | None = None) -> np.ndarray:
    """Fill holes of ``mask`` of at most ``max_cells`` cells.

    A hole is a 4-connected patch of non-mask cells that does not touch the
    raster's edge. It is filled only if every cell of it is ``allowed``. With a
    ``budget``, the smallest holes are filled first and filling stops before the
    total added cells would exceed it.

    Examples
    --------
    >>> m = np.ones((5, 5), bool); m[1, 1] = False; m[3, 2:4] = False
    >>> fill_holes(m, 1).astype(int).tolist()[1::2]
    [[1, 1, 1, 1, 1], [1, 1, 0, 0, 1]]
    """
    if max_cells < 1 or not mask.any():
        return mask.copy()
    labels, _, sizes = region_sizes(~mask)
    n = sizes.size - 1
    if n == 0:
        return mask.copy()
    ok = sizes <= max_cells
    ok[0] = False
    ok[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False
    if allowed is not None:  # a candidate with a cell not allowed is no hole to fill
        _unflag_touching(ok, labels, np.asarray(allowed, dtype=bool))
    if budget is not None:
        ids = np.flatnonzero(ok)
        order = ids[np.lexsort((ids, sizes[ids]))]
        within = np.cumsum(sizes[order]) <= budget
        ok[:] = False
        ok[order[within]] = True
    out = mask.copy()
    _set_labelled(out, labels, ok)
    return out


@njit(cache=True)
def _set_labelled(out: np.ndarray, labels: np.ndarray, table: np.ndarray) -> None:
    """Set ``out`` wherever ``table[labels]`` holds (``out |= table[labels]``, no temporary).

    Every cell is stored to, changed or not (see :func:`~sanqu.lines._mark`).
    """
    height, width = labels.shape
    for r in range(height):
        for c in range(width):
            out[r, c] |= table[labels[r, c]]


@njit(cache=True)
def _unflag_touching(flags: np.ndarray, labels: np.ndarray, allowed: np.ndarray) -> None:
    """Clear the flag of every label with a cell not ``allowed``."""
    height, width = labels.shape
    for r in range(height):
        for c in range(width):
            if not allowed[r, c]:
                flags[labels[r, c]] = False


def sieve_classes(classes: np.ndarray, min_cells: int, locked: np.ndarray | None = None,
                  max_rounds: int = 20) -> np.ndarray:
    """Merge small patches of a class raster into the neighbour with the longest shared border.

    Parameters
    ----------
    classes : numpy.ndarray of uint8
        Class codes 1..254; 0 is outside the study area and never changes.
    min_cells : int
        Patches with fewer cells are merged.
    locked : numpy.ndarray of bool, optional
        Patches holding any locked cell are never merged (e.g. the control lines).
    max_rounds : int
        Merging repeats until nothing changes or this many rounds.

    Returns
    -------
    numpy.ndarray of uint8
        The sieved classes. Ties between neighbours go to the lower class code;
        a small patch with no neighbour class stays.

    Notes
    -----
    Every round decides all moves on the classes as they were at its start: the
    patches of every class are labelled at once and sized while labelled
    (:func:`~sanqu.trace.region_sizes`), then one pass counts the borders of the
    small patches (:func:`_sieve_round`) and one moves their cells. Memory: the
    result, a copy of the classes from the second round on and the int32 label
    raster (6 bytes a cell), plus a few numbers per patch.

    Examples
    --------
    >>> c = np.array([[1, 1, 1], [1, 2, 3], [3, 3, 3]], np.uint8)
    >>> sieve_classes(c, 2).tolist()
    [[1, 1, 1], [1, 1, 3], [3, 3, 3]]
    """
    out = classes.copy()
    if min_cells <= 1:
        return out
    before = np.ascontiguousarray(classes)  # the classes at the start of the round
    no_lock = np.zeros((0, 0), dtype=bool)
    lock = no_lock if locked is None else np.ascontiguousarray(locked, dtype=bool)
    ncls = int(out.max()) + 1
    labels = np.empty(out.shape, dtype=np.int32)
    for round_ in range(max_rounds):
        if round_ == 1:
            before = out.copy()
        elif round_ > 1:
            np.copyto(before, out)
        _, _, cells = region_sizes(before, labels)
        if not _sieve_round(before, labels, cells, min_cells, lock, ncls, out):
            break
    return out


@njit(cache=True)
def _sieve_round(classes: np.ndarray, labels: np.ndarray, cells: np.ndarray, min_cells: int,
                 locked: np.ndarray, ncls: int, out: np.ndarray) -> bool:
    """One round of :func:`sieve_classes`: move the small patches of ``classes`` in ``out``.

    ``labels`` are the 4-connected patches of ``classes`` and ``cells`` their sizes;
    ``locked`` is an empty raster when nothing is locked. A small patch (fewer than
    ``min_cells`` cells) with no locked cell moves to the class of ``classes`` (below
    ``ncls``, not its own nor 0) it shares most cell edges with, the lower code on a
    tie. Returns whether any patch moved.
    """
    height, width = classes.shape
    rank = np.full(cells.size, -1, dtype=np.int64)  # row of each small patch in counts
    k = 0
    for i in range(1, cells.size):
        if cells[i] < min_cells:
            rank[i] = k
            k += 1
    if k == 0:
        return False
    counts = np.zeros((k, ncls), dtype=np.int32)
    stuck = np.zeros(k, dtype=np.bool_)
    has_lock = locked.size > 0
    for r in range(height):
        for c in range(width):
            j = rank[labels[r, c]]
            if j < 0:
                continue
            if has_lock and locked[r, c]:
                stuck[j] = True
            v = classes[r, c]
            if r > 0:
                _count_edge(counts, j, v, classes[r - 1, c])
            if r < height - 1:
                _count_edge(counts, j, v, classes[r + 1, c])
            if c > 0:
                _count_edge(counts, j, v, classes[r, c - 1])
            if c < width - 1:
                _count_edge(counts, j, v, classes[r, c + 1])
    target = np.zeros(cells.size, dtype=classes.dtype)
    moved = False
    for i in range(1, cells.size):
        j = rank[i]
        if j < 0 or stuck[j]:
            continue
        best = 0
        for other in range(ncls):
            if counts[j, other] > best:
                best = counts[j, other]
                target[i] = other
        moved |= best > 0
    if moved:
        for r in range(height):
            for c in range(width):
                t = target[labels[r, c]]
                out[r, c] = t if t > 0 else out[r, c]
    return moved


@njit(cache=True)
def _count_edge(counts: np.ndarray, j: int, own: int, other: int) -> None:
    """Count a cell edge of small patch ``j`` (class ``own``) against class ``other``."""
    if other != own and other > 0:
        counts[j, other] += 1


def _band_rows(width: int, band_cells: int) -> int:
    """Rows in a band of about ``band_cells`` cells of a raster ``width`` wide."""
    return max(1, band_cells // max(width, 1))


def label_sums(labels: np.ndarray, n: int, weights: np.ndarray | None = None,
               band_cells: int = 1 << 22, where: np.ndarray | None = None) -> np.ndarray:
    """Cell counts (or sums of ``weights``) per label 0..n, in bands of rows.

    Equivalent to ``np.bincount(labels.ravel(), weights, minlength=n + 1)`` but the
    int64/float64 copies bincount makes exist one band at a time, so memory stays
    bounded on grids of 10^8 cells. Counts are int64, sums float64. With ``where``
    (boolean, the shape of ``labels``) only those cells count.

    Examples
    --------
    >>> lab = np.array([[1, 1, 0], [2, 0, 0]], np.int32)
    >>> label_sums(lab, 2).tolist(), label_sums(lab, 2, np.full((2, 3), 0.5)).tolist()
    ([3, 2, 1], [1.5, 1.0, 0.5])
    >>> label_sums(lab, 2, where=lab > 1).tolist()
    [0, 0, 1]
    """
    rows = _band_rows(labels.shape[1], band_cells)
    out = np.zeros(n + 1, dtype=np.int64 if weights is None else np.float64)
    for r in range(0, labels.shape[0], rows):
        lab = labels[r:r + rows].ravel()
        w = None if weights is None else weights[r:r + rows].ravel()
        if where is not None:
            cells = where[r:r + rows].ravel()
            lab = lab[cells]
            w = None if w is None else w[cells]
        out += np.bincount(lab, w, minlength=n + 1)[: n + 1]
    return out


def four_neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of each cell's four edge neighbours lie in ``mask`` (0..4, uint8).

    Examples
    --------
    >>> four_neighbours(np.array([[1, 1, 0]], bool)).tolist()
    [[1, 1, 1]]
    """
    n = np.zeros(mask.shape, dtype=np.uint8)
    n[1:] += mask[:-1]
    n[:-1] += mask[1:]
    n[:, 1:] += mask[:, :-1]
    n[:, :-1] += mask[:, 1:]
    return n


def smooth(mask: np.ndarray, steps: int, allowed: np.ndarray | None = None,
           keep: np.ndarray | None = None) -> np.ndarray:
    """Fill notches, then prune whiskers and saw-tooth teeth, ``steps`` cells deep.

    A notch cell is outside ``mask`` with at least three of its four neighbours
    inside; it is filled if ``allowed`` (so notches up to ``steps`` cells deep
    close). A tip cell is inside with at most one neighbour inside; it is
    removed unless in ``keep`` (so whiskers up to ``steps`` cells long and
    one-cell teeth go). Corridors joining two parts have no tip and stay; pruning
    never splits a patch; stair-stepped diagonal edges are left to vector smoothing.

    Examples
    --------
    >>> m = np.zeros((7, 9), bool); m[1:6, 1:6] = True
    >>> m[3, 6:8] = True      # a whisker two cells long
    >>> m[5, 3] = False       # a notch
    >>> out = smooth(m, 2)
    >>> bool(out[5, 3]), bool(out[3, 6:8].any()), int(out.sum())
    (True, False, 25)
    >>> allowed = np.ones_like(m); allowed[5, 3] = False
    >>> bool(smooth(m, 2, allowed=allowed)[5, 3]), int(smooth(m, 1)[3, 6:8].sum())
    (False, 1)
    """
    out = np.array(mask, dtype=bool)  # a copy
    spare = np.empty_like(out)
    none = np.zeros((0, 0), dtype=bool)
    allowed = none if allowed is None else np.ascontiguousarray(allowed, dtype=bool)
    keep = none if keep is None else np.ascontiguousarray(keep, dtype=bool)
    for fill in (True, False):
        for _ in range(steps):
            if not _smooth_step(out, spare, allowed if fill else keep, fill):
                break
            out, spare = spare, out
    return out


@njit(cache=True, nogil=True)
def _smooth_step(src: np.ndarray, dst: np.ndarray, limit: np.ndarray, fill: bool) -> int:
    """One step of :func:`smooth` from ``src`` into ``dst``; how many cells changed.

    With ``fill``, cells outside ``src`` with three or four of their edge
    neighbours inside are added where ``limit`` (allowed) is True; otherwise
    cells inside with at most one neighbour inside are removed unless ``limit``
    (keep) is True. An empty ``limit`` means no limit. Cells beyond the array
    are outside. Branch-free within a row (a byte a cell), so the loop is vectorized.
    """
    height, width = src.shape
    none = np.zeros(width + 2, dtype=np.uint8)
    free = np.full(width, fill, dtype=np.uint8)  # limit when there is none
    here = np.zeros(width + 2, dtype=np.uint8)  # the row, a cell of border each side
    changed = 0
    for r in range(height):
        here[1:width + 1] = src[r].view(np.uint8)
        up = src[r - 1].view(np.uint8) if r > 0 else none[:width]
        down = src[r + 1].view(np.uint8) if r + 1 < height else none[:width]
        lim = limit[r].view(np.uint8) if limit.size else free
        out = dst[r].view(np.uint8)
        for c in range(width):
            h = here[c + 1]
            n = up[c] + down[c] + here[c] + here[c + 2]
            if fill:
                flip = (h ^ 1) & np.uint8(n >= 3) & lim[c]
            else:
                flip = h & np.uint8(n <= 1) & (lim[c] ^ 1)
            changed += flip
            out[c] = h ^ flip
    return changed


def shape_index(mask: np.ndarray) -> tuple[int, float]:
    """Patch count and perimeter / (2·√(π·area)) of a raster region (1 for a disk).

    The perimeter counts cell edges between the region and the rest (or the
    raster's edge); a compact region scores low, a ragged or scattered one high.

    Examples
    --------
    >>> sq = np.zeros((6, 6), bool); sq[1:5, 1:5] = True
    >>> n, si = shape_index(sq); n, round(si, 3)
    (1, 1.128)
    """
    area = int(np.count_nonzero(mask))
    if area == 0:
        return 0, 0.0
    m = np.pad(mask, 1)
    edges = int(np.count_nonzero(m[1:, :] != m[:-1, :]) + np.count_nonzero(m[:, 1:] != m[:, :-1]))
    return label(mask)[1], float(edges / (2.0 * np.sqrt(np.pi * area)))


@dataclass
class PatchMeasure:
    """Patches of a grade raster and one measure per patch.

    Attributes
    ----------
    labels : numpy.ndarray of int32
        Patch id per cell, 1..n; 0 for cells in no patch.
    values : numpy.ndarray of float64
        The measure of patch ``i`` at index ``i`` (index 0 unused).
    cells : numpy.ndarray of int64
        Cells per patch, same indexing.
    """

    labels: np.ndarray
    values: np.ndarray
    cells: np.ndarray


def group_patches(grades: np.ndarray, groups: Sequence[Sequence[int]]) -> tuple[np.ndarray, int]:
    """Label the 4-connected patches of cells whose grades fall in one group.

    A patch never mixes groups; labels run 1..n over all groups, by each patch's
    first cell in row-major order (every group in one labelling pass).

    Examples
    --------
    >>> g = np.array([[1, 2, 3], [5, 5, 4]])
    >>> group_patches(g, [[1, 2], [3, 4]])[0].tolist()
    [[1, 1, 2], [0, 0, 2]]
    """
    labels, value, _ = _grouped(grades, groups)
    return labels, len(value) - 1


def _grouped(grades: np.ndarray, groups: Sequence[Sequence[int]]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sanqu.trace.region_sizes` of the group number of each cell's grade."""
    lut = np.zeros(256, dtype=np.uint8)
    for i, group in enumerate(groups, start=1):
        lut[list(group)] = i
    return region_sizes(take(lut, grades))


def patch_compactness(labels: np.ndarray, n: int, res: tuple[float, float]) -> np.ndarray:
    """Compactness of each patch: its area ÷ the area of its minimum bounding circle.

    The circle encloses the patch's cell corners (the polygon GDAL would draw), so
    a single cell or any square scores 2/π ≈ 0.637 and a long strip tends to 0.
    Only the ends of each row run of a patch can lie on its convex hull, so only
    their corners are passed to shapely's minimum bounding circle.

    Examples
    --------
    A 2 x 1 strip: 2 / (π · 5/4) ≈ 0.509; a 4 x 1 strip: 4 / (π · 17/4) ≈ 0.300:

    >>> lab = np.array([[1, 1, 0, 2, 2, 2, 2]])
    >>> np.round(patch_compactness(lab, 2, (1.0, 1.0)), 4).tolist()
    [0.0, 0.5093, 0.2996]
    """
    out = np.zeros(n + 1, dtype=np.float64)
    if n == 0:
        return out
    rx, ry = res
    inside = labels > 0
    starts = inside.copy()
    starts[:, 1:] &= labels[:, 1:] != labels[:, :-1]
    ends = inside.copy()
    ends[:, :-1] &= labels[:, :-1] != labels[:, 1:]
    r1, c1 = np.nonzero(starts)
    r2, c2 = np.nonzero(ends)
    xs = np.concatenate([c1, c1, c2 + 1, c2 + 1]) * rx
    ys = np.concatenate([r1, r1 + 1, r2, r2 + 1]) * ry
    labs = np.concatenate([labels[r1, c1]] * 2 + [labels[r2, c2]] * 2)
    order = np.argsort(labs, kind="stable")
    points = shapely.points(xs[order], ys[order])
    circles = shapely.multipoints(points, indices=labs[order] - 1)
    radius = shapely.minimum_bounding_radius(circles)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:] * (rx * ry)
    out[1:] = area / (math.pi * radius**2)
    return out


def measure_patches(grades: np.ndarray, groups: Sequence[Sequence[int]], measure: str,
                    res: tuple[float, float], unit: str = "ha") -> PatchMeasure:
    """Label the patches of ``grades`` by ``groups`` and measure each.

    Parameters
    ----------
    grades : numpy.ndarray
        Whole-area grade raster.
    groups : list of list of int
        Grades forming patches together (e.g. ``[[1, 2], [3, 4]]``).
    measure : {"area", "compactness"}
        Patch area in ``unit``, or :func:`patch_compactness`.
    res : tuple of float
        Cell size ``(x, y)`` in metres.
    unit : {"m2", "ha", "mu", "km2"}
        Area unit (亩 is ``mu``).

    Examples
    --------
    >>> g = np.array([[1, 1, 5, 3]])
    >>> m = measure_patches(g, [[1, 2], [3, 4]], "area", (100.0, 100.0), "mu")
    >>> m.labels.tolist(), m.values.round(1).tolist()
    ([[1, 1, 0, 2]], [0.0, 30.0, 15.0])
    """
    labels, value, cells = _grouped(grades, groups)
    n = len(value) - 1
    cells[0] = grades.size - cells[1:].sum()  # the cells in no patch
    if measure == "area":
        values = cells * (res[0] * res[1] / 10_000 / AREA_UNITS[unit])
    else:
        values = patch_compactness(labels, n, res)
    values = values.astype(np.float64)
    values[0] = 0.0
    return PatchMeasure(labels, values, cells)
