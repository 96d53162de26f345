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

from .config import AREA_UNITS

#: 4-connectivity structuring element.
FOUR = ndimage.generate_binary_structure(2, 1)


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the 4-connected patches of a boolean raster (1..n, 0 = background)."""
    return ndimage.label(mask, structure=FOUR)


def label_classes(classes: np.ndarray,
                  codes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Label the 4-connected patches of every class of a class raster at once.

    ``codes``, if given, are all the non-zero codes the raster may hold, in
    ascending order (saves counting the classes present on the whole raster).

    Returns
    -------
    labels : numpy.ndarray of int32
        Unique label per patch (1..n, class by class in ascending code); 0 where
        the class is 0.
    label_class : numpy.ndarray of int64
        Class of each label (``label_class[0]`` is 0).

    Examples
    --------
    >>> lab, cls = label_classes(np.array([[1, 2, 1], [0, 2, 2]], np.uint8))
    >>> lab.tolist(), cls.tolist()
    ([[1, 3, 2], [0, 3, 3]], [0, 1, 1, 2])
    """
    labels = None
    label_class = [np.zeros(1, dtype=np.int64)]
    offset = 0
    if codes is None:
        codes = np.flatnonzero(label_sums(classes, 255)[1:]) + 1
    for cls in codes:
        here = classes == cls
        if not here.any():
            continue
        lab, n = label(here)
        if labels is None:  # the first class's labels are the raster to fill
            labels = lab
        else:  # classes are disjoint: write the others into the first's zeros
            np.add(lab, offset, out=labels, where=lab > 0)
        label_class.append(np.full(n, cls, dtype=np.int64))
        offset += n
    if labels is None:
        labels = np.zeros(classes.shape, dtype=np.int32)
    return labels, np.concatenate(label_class)


def labels_touching(labels: np.ndarray, cells: np.ndarray, n: int) -> np.ndarray:
    """Boolean per label (0..n): whether the patch holds any of ``cells``.

    Examples
    --------
    >>> labels_touching(np.array([0, 1, 1, 2]), np.array([1, 0, 0, 1], bool), 2).tolist()
    [True, False, True]
    """
    return np.bincount(labels[cells].ravel(), minlength=n + 1) > 0


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
    sizes = label_sums(labels, n)
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
    sizes = label_sums(labels, n)
    ok = sizes <= max_cells
    ok[0] = False
    ok[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False
    if allowed is not None:  # only the candidates' cells matter (a far smaller selection)
        ok &= ~labels_touching(labels, ~allowed & ok[labels], n)
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
        labels, label_class = label_classes(out)
        n = label_class.size - 1
        small = label_sums(labels, n) < min_cells
        small[0] = False
        in_small = small[labels]
        if locked is not None:  # only cells of small patches can make a patch locked here
            small &= ~labels_touching(labels, locked & in_small, n)
            in_small = small[labels]
        if not small.any():
            break
        counts = np.zeros((n + 1) * ncls, dtype=np.int64)
        inside = labels > 0
        pairs = ((np.s_[:, :-1], np.s_[:, 1:]), (np.s_[:-1, :], np.s_[1:, :]))
        for first, second in pairs:  # each edge between two patches, seen from both sides
            a, b = labels[first], labels[second]
            differ = a != b
            for lab, other, own_small, other_inside in ((a, b, in_small[first], inside[second]),
                                                        (b, a, in_small[second], inside[first])):
                idx = np.flatnonzero(own_small & other_inside & differ)
                own, nb = lab.flat[idx], other.flat[idx]
                counts += np.bincount(own.astype(np.int64) * ncls + label_class[nb],
                                      minlength=counts.size)
        counts = counts.reshape(n + 1, ncls)
        target = np.argmax(counts, axis=1).astype(np.uint8)
        move = small & (counts.max(axis=1) > 0)
        if not move.any():
            break
        cells = move[labels]
        out[cells] = target[labels[cells]]
    return out


def label_sums(labels: np.ndarray, n: int, weights: np.ndarray | None = None,
               band_cells: int = 1 << 22) -> np.ndarray:
    """Cell counts (or sums of ``weights``) per label 0..n, in bands of rows.

    Equivalent to ``np.bincount(labels.ravel(), weights, minlength=n + 1)`` but the
    int64/float64 copies bincount makes exist one band at a time, so memory stays
    bounded on grids of 10^8 cells. Counts are int64, sums float64.

    Examples
    --------
    >>> lab = np.array([[1, 1, 0], [2, 0, 0]], np.int32)
    >>> label_sums(lab, 2).tolist(), label_sums(lab, 2, np.full((2, 3), 0.5)).tolist()
    ([3, 2, 1], [1.5, 1.0, 0.5])
    """
    rows = max(1, band_cells // max(labels.shape[1], 1))
    out = np.zeros(n + 1, dtype=np.int64 if weights is None else np.float64)
    for r in range(0, labels.shape[0], rows):
        lab = labels[r:r + rows].ravel()
        w = None if weights is None else weights[r:r + rows].ravel()
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
    out = mask.copy()
    for _ in range(steps):
        add = ~out & (four_neighbours(out) >= 3)
        if allowed is not None:
            add &= allowed
        if not add.any():
            break
        out |= add
    for _ in range(steps):
        tip = out & (four_neighbours(out) <= 1)
        if keep is not None:
            tip &= ~keep
        if not tip.any():
            break
        out &= ~tip
    return out


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

    Each group is labelled on its own (:func:`label_classes`), so a patch never mixes
    groups; labels run 1..n over all groups.

    Examples
    --------
    >>> g = np.array([[1, 2, 3], [5, 5, 4]])
    >>> group_patches(g, [[1, 2], [3, 4]])[0].tolist()
    [[1, 1, 2], [0, 0, 2]]
    """
    lut = np.zeros(256, dtype=np.uint8)
    for i, group in enumerate(groups, start=1):
        lut[list(group)] = i
    labels, label_group = label_classes(lut[grades], range(1, len(groups) + 1))
    return labels, len(label_group) - 1


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
    cells = label_sums(labels, n)
    if measure == "area":
        values = cells * (res[0] * res[1] / 10_000 / AREA_UNITS[unit])
    else:
        values = patch_compactness(labels, n, res)
    values = values.astype(np.float64)
    values[0] = 0.0
    return PatchMeasure(labels, values, cells)
