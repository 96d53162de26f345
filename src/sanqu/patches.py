"""Patch operations on whole-area class rasters: minimum areas, holes, slivers.

Whole-area stage: these functions take the full grid (bool or uint8 arrays, a
byte a cell) because connected patches do not respect block edges. Patches are
4-connected (cells sharing an edge), matching the polygons GDAL's polygonizer
draws, so a raster patch is exactly one output polygon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import ndimage

#: 4-connectivity structuring element.
FOUR = ndimage.generate_binary_structure(2, 1)


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the 4-connected patches of a boolean raster (1..n, 0 = background)."""
    return ndimage.label(mask, structure=FOUR)


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
    labels, n = label(mask)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    keep = sizes >= min_cells
    keep[0] = False
    return keep[labels]


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
    labels, n = label(~mask)
    if n == 0:
        return mask.copy()
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    ok = sizes <= max_cells
    ok[0] = False
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    ok[edge] = False
    if allowed is not None:
        blocked = np.unique(labels[~allowed & (labels > 0)])
        ok[blocked] = False
    if budget is not None:
        ids = np.flatnonzero(ok)
        order = ids[np.lexsort((ids, sizes[ids]))]
        within = np.cumsum(sizes[order]) <= budget
        ok[:] = False
        ok[order[within]] = True
    return mask | ok[labels]


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

    Examples
    --------
    >>> c = np.array([[1, 1, 1], [1, 2, 3], [3, 3, 3]], np.uint8)
    >>> sieve_classes(c, 2).tolist()
    [[1, 1, 1], [1, 1, 3], [3, 3, 3]]
    """
    out = classes.copy()
    if min_cells <= 1:
        return out
    ncls = int(out.max()) + 1
    for _ in range(max_rounds):
        labels = np.zeros(out.shape, dtype=np.int32)
        offset = 0
        for cls in np.unique(out[out > 0]):
            lab, n = label(out == cls)
            labels[lab > 0] = lab[lab > 0] + offset
            offset += n
        sizes = np.bincount(labels.ravel(), minlength=offset + 1)
        small = sizes < min_cells
        small[0] = False
        if locked is not None:
            small[np.unique(labels[locked & (labels > 0)])] = False
        if not small.any():
            break
        counts = np.zeros((offset + 1) * ncls, dtype=np.int64)
        for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
            ca = out[:, :-1] if a.shape[1] != labels.shape[1] else out[:-1, :]
            cb = out[:, 1:] if a.shape[1] != labels.shape[1] else out[1:, :]
            for lab, cls_other in ((a, cb), (b, ca)):
                sel = small[lab] & (cls_other > 0) & (a != b)
                counts += np.bincount(lab[sel].astype(np.int64) * ncls + cls_other[sel],
                                      minlength=counts.size)
        counts = counts.reshape(offset + 1, ncls)
        target = np.argmax(counts, axis=1).astype(np.uint8)
        move = small & (counts.max(axis=1) > 0)
        if not move.any():
            break
        cells = move[labels]
        out[cells] = target[labels[cells]]
    return out


#: Square metres per area unit of the contiguity rules (1 亩 = 1/15 ha).
AREA_UNITS = {"m2": 1.0, "ha": 10_000.0, "mu": 10_000.0 / 15, "km2": 1_000_000.0}


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

    Each group is labelled on its own, so a patch never mixes groups; labels run
    1..n over all groups.

    Examples
    --------
    >>> g = np.array([[1, 2, 3], [5, 5, 4]])
    >>> group_patches(g, [[1, 2], [3, 4]])[0].tolist()
    [[1, 1, 2], [0, 0, 2]]
    """
    out = np.zeros(grades.shape, dtype=np.int32)
    n = 0
    for group in groups:
        lut = np.zeros(256, dtype=bool)
        lut[list(group)] = True
        lab, k = label(lut[grades])
        np.add(out, lab + n, out=out, where=lab > 0)
        n += k
    return out, n


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
    labels, n = group_patches(grades, groups)
    cells = np.bincount(labels.ravel(), minlength=n + 1)
    if measure == "area":
        values = cells * (res[0] * res[1] / AREA_UNITS[unit])
    else:
        values = patch_compactness(labels, n, res)
    values = values.astype(np.float64)
    values[0] = 0.0
    return PatchMeasure(labels, values, cells)
