"""Evaluation operators: pure functions over grade arrays.

Grades run from 1 (best) to ``scale`` (worst, 5 by default); 0 marks cells with
no grade (outside the study area). Every function here is per-cell and knows
nothing of files or configs, so it can run on any block.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from numba import njit

from .errors import ConfigError

#: Saaty's random consistency index RI for n = 1..15.
RANDOM_INDEX = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49, 1.51, 1.48, 1.56, 1.57,
                1.59)


def take(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``table[idx]`` for a 1-D table, without numpy's check of every index where it can.

    When ``idx`` is a C-contiguous raster of one- or two-byte unsigned values, the
    table is padded to cover every value of that type (after one check that no
    index is beyond it, raising ``IndexError`` as numpy would), so the gather is
    one numba loop: about 5 x faster than numpy's fancy indexing at 10⁸ cells.
    Anything else is numpy's ``table[idx]``.

    Examples
    --------
    >>> take(np.array([0, 7, 9], np.uint8), np.array([[2, 0], [1, 1]], np.uint8)).tolist()
    [[9, 0], [7, 7]]
    """
    if not (idx.dtype.kind == "u" and idx.dtype.itemsize <= 2 and idx.flags.c_contiguous
            and table.ndim == 1):
        return table[idx]
    size = 1 << (8 * idx.dtype.itemsize)
    if table.size < size:
        if idx.size and idx.max() >= table.size:
            raise IndexError(f"index {idx.max()} is out of bounds for a table of {table.size}")
        table = np.concatenate([table, np.zeros(size - table.size, dtype=table.dtype)])
    out = np.empty(idx.shape, dtype=table.dtype)
    _take(table, idx.reshape(-1), out.reshape(-1))
    return out


@njit(cache=True, nogil=True)
def _take(table: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
    for i in range(idx.size):
        out[i] = table[idx[i]]


@dataclass(frozen=True)
class BreakTable:
    """A compiled break table: class edges, one grade per class, and which side holds each edge.

    Class ``i`` spans from ``breaks[i - 1]`` to ``breaks[i]`` (the first class starts at
    -inf, the last ends at +inf). ``right_closed[i]`` says whether a value exactly on
    ``breaks[i]`` belongs to the class below it (True) or above it (False), so tables
    with edges closed on different sides (``> 3.66``, ``2.33-3.66``, ``< 2.33``) are exact.

    Examples
    --------
    Erosion sensitivity (methodology.md §2.4): ``< 2.33`` → 3, ``2.33-3.66`` → 2, ``> 3.66`` → 1:

    >>> t = BreakTable((2.33, 3.66), (3, 2, 1), (False, True))
    >>> t.classify(np.array([2.3, 2.33, 3.66, 3.67])).tolist()
    [3, 2, 2, 1]
    >>> [t.describe(i) for i in range(3)]
    ['< 2.33', '≥ 2.33 and ≤ 3.66', '> 3.66']
    """

    breaks: tuple[float, ...]
    grades: tuple[int, ...]
    right_closed: tuple[bool, ...]

    def index(self, values: np.ndarray) -> np.ndarray:
        """Class index (0-based) of each value: the number of edges it lies above.

        NaN lies above every edge (it sorts last, as in ``np.searchsorted``).
        """
        count = np.zeros(np.shape(values), dtype=np.intp)
        for below in self._below(np.asarray(values)):
            count += below
        return len(self.breaks) - count

    def classify(self, values: np.ndarray) -> np.ndarray:
        """Grade of each value (uint8).

        One comparison and one add per edge, no index array: the grade starts as
        the top class's and each edge a value lies below adds the step from the
        class above the edge to the class below it (modulo 256, exactly).
        """
        values = np.asarray(values)
        grades = [int(g) % 256 for g in self.grades]
        out = np.full(values.shape, grades[-1], dtype=np.uint8)
        for i, below in enumerate(self._below(values)):
            step = (grades[i] - grades[i + 1]) % 256
            if step == 1:
                out += below
            elif step == 255:
                out -= below
            elif step:
                out += below * np.uint8(step)
        return out

    def _below(self, values: np.ndarray) -> Iterator[np.ndarray]:
        """Per edge in turn, the values below it (on the edge: below if right-closed)."""
        for edge, right_closed in zip(self.breaks, self.right_closed, strict=True):
            yield self._below_edge(values, edge, right_closed)

    @staticmethod
    def _below_edge(values: np.ndarray, edge: float, right_closed: bool) -> np.ndarray:
        """``values <= edge`` (right-closed) or ``values < edge``, as exact real numbers.

        float32 values are compared with the float32 neighbour of ``edge`` on the
        side that keeps the result exact (the largest float32 ≤ ``edge`` for ``<=``,
        the smallest ≥ ``edge`` for ``<``), so no float64 copy is made; other values
        are compared in float64, like ``np.searchsorted`` with float64 edges.
        """
        if values.dtype == np.float32:
            e = _float32_toward(edge, -math.inf if right_closed else math.inf)
            return values <= e if right_closed else values < e
        e64 = np.float64(edge)
        return values <= e64 if right_closed else values < e64
    def describe(self, i: int) -> str:
        """Class ``i`` as text, e.g. ``> 2 and ≤ 6``."""
        parts = []
        if i > 0:
            parts.append(f"{'>' if self.right_closed[i - 1] else '≥'} {_num(self.breaks[i - 1])}")
        if i < len(self.breaks):
            parts.append(f"{'≤' if self.right_closed[i] else '<'} {_num(self.breaks[i])}")
        return " and ".join(parts) or "any value"


def _num(x: float) -> str:
    return f"{x:g}"


def _float32_toward(x: float, direction: float) -> np.float32:
    """The float32 nearest ``x`` on the side of ``direction`` (``x`` itself if exact).

    Examples
    --------
    >>> float(_float32_toward(0.1, -math.inf)) < 0.1 < float(_float32_toward(0.1, math.inf))
    True
    >>> float(_float32_toward(2.0, math.inf))
    2.0
    """
    with np.errstate(over="ignore"):
        f = np.float32(x)
    if (float(f) > x and direction < x) or (float(f) < x and direction > x):
        f = np.nextafter(f, np.float32(direction))
    return f


def reclass(values: np.ndarray, breaks: Sequence[float], grades: Sequence[int] | None = None,
            closed: str = "right") -> np.ndarray:
    """Grade continuous values by a break table.

    Parameters
    ----------
    values : numpy.ndarray
        The values to grade.
    breaks : sequence of float
        Strictly increasing class edges ``b1 < b2 < ... < bn``.
    grades : sequence of int, optional
        One grade per class in ascending value order; default ``1..n+1``.
    closed : {"right", "left"}
        ``right``: classes (-inf, b1], (b1, b2], ...; ``left``: (-inf, b1), [b1, b2), ...

    Returns
    -------
    numpy.ndarray of uint8

    Examples
    --------
    The farmland slope classes ≤2, 2-6, 6-15, 15-25, >25 degrees, values on the breaks:

    >>> reclass(np.array([0, 2, 2.01, 6, 15, 25, 25.5]), [2, 6, 15, 25]).tolist()
    [1, 1, 2, 2, 3, 4, 5]
    >>> reclass(np.array([100, 1200]), [200, 400, 800, 1200], [5, 4, 3, 2, 1], "left").tolist()
    [5, 1]
    """
    table = tuple(grades) if grades is not None else tuple(range(1, len(breaks) + 2))
    return BreakTable(tuple(breaks), table, (closed == "right",) * len(breaks)).classify(values)


def lookup(codes: np.ndarray, table: Mapping[int, int], where: np.ndarray | None = None,
           *, key: str = "table", default: int | None = None) -> np.ndarray:
    """Grade a categorical layer by a code → grade table.

    Parameters
    ----------
    codes : numpy.ndarray
        The codes.
    table : mapping
        Code → grade.
    where : numpy.ndarray of bool, optional
        Cells that must be graded (the study area); others get 0.
    key : str
        Config key named by the error.
    default : int, optional
        Grade of codes the table lacks; without it such a code is an error.

    Raises
    ------
    ConfigError
        If a cell (inside ``where``) holds a code the table lacks and there is no default.

    Examples
    --------
    >>> lookup(np.array([[1, 33], [6, 1]]), {1: 2, 33: 1, 6: 5}).tolist()
    [[2, 1], [5, 2]]
    >>> lookup(np.array([1, 7]), {1: 2}, default=5).tolist()
    [2, 5]
    """
    codes = np.asarray(codes)
    if codes.dtype.kind == "u" and codes.dtype.itemsize <= 2:  # small unsigned codes: a LUT
        size = 1 << (8 * codes.dtype.itemsize)
        lut = np.full(size, 0 if default is None else default, dtype=np.uint8)
        known = np.zeros(size, dtype=bool)
        for k, v in table.items():
            if 0 <= k < size:
                lut[k], known[k] = v, True
        graded = take(lut, codes)  # one pass; ``known`` is read only where a grade is 0
        if default is None and not graded.all():
            missing = (graded == 0) & ~known[codes]
            if where is not None:
                missing &= where
            if missing.any():
                _missing_codes(codes[missing], key)
        return graded
    keys = np.array(sorted(table), dtype=np.int64)
    vals = np.array([table[k] for k in sorted(table)], dtype=np.uint8)
    idx = np.searchsorted(keys, codes).clip(0, len(keys) - 1)
    found = keys[idx] == codes
    graded = vals[idx]
    if default is not None:
        return np.where(found, graded, np.uint8(default)).astype(np.uint8)
    check = found if where is None else (found | ~where)
    if not check.all():
        _missing_codes(codes[~check], key)
    return np.where(found, graded, np.uint8(0))


def _missing_codes(codes: np.ndarray, key: str) -> NoReturn:
    """Raise the error of :func:`lookup` for codes its table lacks."""
    bad = np.unique(codes)
    raise ConfigError(f"{key}: code {int(bad[0])} occurs in the data but is not in the table "
                      f"(missing: {bad.tolist()[:10]})")


def matrix(rows: np.ndarray, cols: np.ndarray, table: Sequence[Sequence[int]]) -> np.ndarray:
    """Decision matrix: ``table[row_grade - 1][col_grade - 1]``; 0 where either input is 0.

    Any ``n x m`` table: rows are indexed by grades 1..n of ``rows``, columns by
    grades 1..m of ``cols`` (e.g. five grades against three sensitivity levels).

    Examples
    --------
    >>> m = [[1, 2], [2, 2]]
    >>> matrix(np.array([1, 1, 2, 0]), np.array([1, 2, 1, 1]), m).tolist()
    [1, 2, 2, 0]
    >>> matrix(np.array([1, 3]), np.array([2, 1]), [[1, 2], [2, 3], [3, 3]]).tolist()
    [2, 3]
    """
    t = np.zeros((len(table) + 1, len(table[0]) + 1), dtype=np.uint8)
    t[1:, 1:] = np.asarray(table, dtype=np.uint8)
    return _gather(t, rows, cols)


def correct(grades: np.ndarray, classes: np.ndarray, table: Sequence[Sequence[int]]) -> np.ndarray:
    """A correction keyed by class: ``table[grade - 1][class - 1]``, the grade where class is 0.

    As ``np.where(classes > 0, matrix(grades, classes, table), grades)``, in one gather.

    Examples
    --------
    >>> correct(np.array([1, 2, 2, 0]), np.array([1, 2, 0, 1]), [[1, 2], [2, 3]]).tolist()
    [1, 3, 2, 0]
    """
    return _gather(_correction_table(table), grades, classes)


def _correction_table(table: Sequence[Sequence[int]]) -> np.ndarray:
    """``table`` with a row and a column of zeros before it, column 0 keeping the grade."""
    t = np.zeros((len(table) + 1, len(table[0]) + 1), dtype=np.uint8)
    t[1:, 1:] = np.asarray(table, dtype=np.uint8)
    t[:, 0] = np.arange(len(table) + 1)
    return t


def correct_by_label(grades: np.ndarray, labels: np.ndarray, label_class: np.ndarray,
                     table: Sequence[Sequence[int]]) -> np.ndarray:
    """:func:`correct` keyed by the class of each cell's label: ``label_class[labels]``.

    One pass, without the class raster, when ``grades`` is a C-contiguous byte
    raster and ``labels`` a C-contiguous int32 raster of the same shape (e.g. a
    contiguity step's patches, classed by their measure); else numpy's gathers.

    Examples
    --------
    >>> correct_by_label(np.array([1, 2, 2, 0], np.uint8), np.array([1, 2, 0, 1], np.int32),
    ...                  np.array([0, 2, 1], np.uint8), [[1, 2], [2, 3]]).tolist()
    [2, 2, 2, 0]
    """
    t = _correction_table(table)
    if not (grades.dtype == np.uint8 and labels.dtype == np.int32 and grades.shape == labels.shape
            and grades.flags.c_contiguous and labels.flags.c_contiguous and label_class.ndim == 1
            and grades.size and labels.min() >= 0 and labels.max() < label_class.size
            and grades.max() < t.shape[0] and label_class.min() >= 0
            and label_class.max() < t.shape[1]):
        return correct(grades, label_class[labels], table)
    out = np.empty_like(grades)
    _correct_by_label(t, grades.reshape(-1), labels.reshape(-1),
                      label_class.astype(np.int64), out.reshape(-1))
    return out


@njit(cache=True, nogil=True)
def _correct_by_label(t: np.ndarray, grades: np.ndarray, labels: np.ndarray,
                      label_class: np.ndarray, out: np.ndarray) -> None:
    for i in range(grades.size):
        out[i] = t[grades[i], label_class[labels[i]]]


def _gather(t: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``t[rows, cols]``; one gather from the flat table when one byte indexes it."""
    n, m = t.shape
    if (rows.dtype == cols.dtype == np.uint8 and t.size <= 256 and rows.size
            and rows.max() < n and cols.max() < m):
        flat = rows * np.uint8(m)
        flat += cols
        table = np.zeros(256, dtype=t.dtype)  # every byte: no index to check again
        table[:t.size] = t.ravel()
        return take(table, flat)
    return t[rows, cols]


def actions_matrix(actions: Sequence[tuple[str, int]], scale: int) -> list[list[int]]:
    """A ``scale x k`` decision matrix from one action per class: ``("to", g)`` or ``("by", n)``.

    Row ``g`` (the current grade) and column ``c`` (the class) hold the grade the
    action of class ``c`` makes of ``g``, clamped to 1..scale. Corrections keyed by a
    class (e.g. a contiguity class) thus run as an ordinary :func:`matrix` lookup.

    Examples
    --------
    >>> actions_matrix([("to", 1), ("by", -1), ("by", 0), ("by", 1), ("to", 5)], 5)[1]
    [1, 1, 2, 3, 5]
    """
    out = []
    for g in range(1, scale + 1):
        out.append([v if kind == "to" else min(max(g + v, 1), scale) for kind, v in actions])
    return out


def weighted_sum(layers: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of grade layers as float32 (no rounding).

    Examples
    --------
    >>> weighted_sum([np.array([1.0, 5.0]), np.array([3.0, 5.0])], [0.5, 0.5]).tolist()
    [2.0, 5.0]
    """
    out = np.zeros(layers[0].shape, dtype=np.float32)
    for layer, w in zip(layers, weights, strict=True):
        out += np.float32(w) * layer.astype(np.float32, copy=False)
    return out


def to_grade(score: np.ndarray, scale: int) -> np.ndarray:
    """Round a continuous score to the nearest grade; exact halves go to the worse grade.

    Examples
    --------
    >>> to_grade(np.array([1.0, 1.49, 1.5, 2.5, 7.0]), 5).tolist()
    [1, 1, 2, 3, 5]
    """
    return np.clip(np.floor(score + np.float32(0.5)), 1, scale).astype(np.uint8)


def ahp_weights(pairwise: Sequence[Sequence[float]]) -> tuple[np.ndarray, float]:
    """Weights and consistency ratio from an AHP pairwise comparison matrix.

    Weights are the normalised principal eigenvector; CR = CI / RI with
    CI = (λmax - n) / (n - 1) and Saaty's random index RI.

    Returns
    -------
    weights : numpy.ndarray
        Summing to 1.
    cr : float
        Consistency ratio (0 for n ≤ 2).

    Raises
    ------
    ConfigError
        If the matrix is not square, not positive, or not reciprocal.

    Examples
    --------
    A perfectly consistent matrix (weights 4:2:1) has CR 0:

    >>> w, cr = ahp_weights([[1, 2, 4], [1/2, 1, 2], [1/4, 1/2, 1]])
    >>> np.round(w, 4).tolist(), round(cr, 6)
    ([0.5714, 0.2857, 0.1429], 0.0)
    """
    a = np.asarray(pairwise, dtype=np.float64)
    n = a.shape[0]
    if a.ndim != 2 or a.shape != (n, n):
        raise ConfigError(f"ahp: expected a square matrix, got shape {a.shape}")
    if (a <= 0).any():
        raise ConfigError("ahp: expected positive judgements")
    if not np.allclose(a * a.T, 1.0, rtol=1e-3):
        raise ConfigError("ahp: expected a reciprocal matrix (a[j][i] = 1 / a[i][j])")
    vals, vecs = np.linalg.eig(a)
    k = int(np.argmax(vals.real))
    w = np.abs(vecs[:, k].real)
    w /= w.sum()
    if n <= 2:
        return w, 0.0
    ci = (vals[k].real - n) / (n - 1)
    ri = RANDOM_INDEX[n - 1] if n <= len(RANDOM_INDEX) else RANDOM_INDEX[-1]
    return w, max(ci / ri, 0.0)


def worst(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Limiting factor (短板法): the worst (highest) grade of the layers wins.

    Examples
    --------
    >>> worst([np.array([1, 4]), np.array([3, 2])]).tolist()
    [3, 4]
    """
    return np.maximum.reduce([np.asarray(x) for x in layers]).astype(np.uint8)


def best(layers: Sequence[np.ndarray]) -> np.ndarray:
    """The best (lowest non-zero) grade of the layers.

    Examples
    --------
    >>> best([np.array([1, 4]), np.array([3, 2])]).tolist()
    [1, 2]
    """
    return np.minimum.reduce([np.asarray(x) for x in layers]).astype(np.uint8)


def most_severe(layers: Sequence[np.ndarray]) -> np.ndarray:
    """The most severe of several sensitivity levels (1 = 极敏感 … 3 = 一般).

    Sensitivities are coded like every grade, 1 being the most severe (and the most
    important to protect), so the most severe level is the smallest non-zero one.

    Examples
    --------
    >>> erosion, desertification = np.array([3, 2, 1]), np.array([2, 3, 3])
    >>> most_severe([erosion, desertification]).tolist()
    [2, 2, 1]
    """
    return best(layers)


def geometric_mean(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Geometric mean of grade layers, e.g. soil erosion sensitivity (R·K·LS·C)^(1/4).

    Returns float32; 0 where any layer is 0.

    Examples
    --------
    >>> ss = geometric_mean([np.array([5, 1]), np.array([5, 3]), np.array([5, 3]),
    ...                      np.array([1, 3])])
    >>> np.round(ss.astype(float), 3).tolist()
    [3.344, 2.28]
    """
    out = np.ones(layers[0].shape, dtype=np.float32)
    for layer in layers:
        out *= layer.astype(np.float32, copy=False)
    return np.power(out, np.float32(1 / len(layers)), out=out)


def share_thresholds(values: np.ndarray, shares: Sequence[float]) -> list[float]:
    """Value thresholds that split a service map by cumulative share of its total.

    Cells are ranked by value, highest first. Threshold ``i`` is the value of the
    cell whose value makes the running total first reach ``shares[i]`` of the total
    of all positive values; the cells at or above it hold that share (the crossing
    cell and every cell of equal value included). Cells with values ≤ 0 never count.

    Parameters
    ----------
    values : numpy.ndarray
        Service values of every cell of the study area (any shape).
    shares : sequence of float
        Increasing fractions in (0, 1], e.g. ``[0.5, 0.8]``.

    Returns
    -------
    list of float
        One threshold per share, non-increasing; ``inf`` if the total is 0.

    Examples
    --------
    Values 4, 3, 2, 1 (total 10): 4 + 3 first reach 50 %, 4 + 3 + 2 reach 80 %:

    >>> share_thresholds(np.array([1.0, 4.0, 2.0, 3.0]), [0.5, 0.8])
    [3.0, 2.0]
    """
    v = np.sort(values[values > 0].astype(np.float64, copy=False))[::-1]
    if v.size == 0:
        return [math.inf] * len(shares)
    running = np.cumsum(v)
    total = running[-1]
    out = []
    for share in shares:
        k = int(np.searchsorted(running, share * total * (1 - 1e-12), side="left"))
        out.append(float(v[min(k, v.size - 1)]))
    return out


def share_table(thresholds: Sequence[float], grades: Sequence[int]) -> BreakTable:
    """The break table of :func:`share_thresholds`: values ≥ threshold ``i`` get ``grades[i]``.

    Examples
    --------
    >>> share_table([3.0, 2.0], [1, 2, 3]).classify(np.array([4.0, 3.0, 2.5, 2.0, 0.0])).tolist()
    [1, 1, 2, 2, 3]
    """
    return BreakTable(tuple(reversed(thresholds)), tuple(reversed(grades)),
                      (False,) * len(thresholds))


def downgrade(grades: np.ndarray, when: np.ndarray, *, by: int | None = None,
              to: int | None = None, only_grades: Sequence[int] | None = None,
              scale: int = 5) -> np.ndarray:
    """Worsen grades by ``by`` steps (negative improves) or set them ``to`` a grade.

    Applies where ``when`` is True and the grade is non-zero (and listed in
    ``only_grades`` if given); results are clamped to 1..scale. Apply it again to
    its own result to chain corrections: two downgrades of 1 drop a cell by 2.

    Examples
    --------
    >>> g = np.array([1, 3, 5, 2, 0])
    >>> downgrade(g, np.array([1, 1, 1, 0, 1], bool), by=1).tolist()
    [2, 4, 5, 2, 0]
    >>> downgrade(g, np.ones(5, bool), by=-1, only_grades=[2, 3, 4]).tolist()
    [1, 2, 5, 1, 0]
    """
    hit = when & (grades > 0)
    if only_grades is not None:
        hit &= one_of(grades, list(only_grades))
    if not hit.any():
        return grades
    if to is not None:
        new = np.full_like(grades, to)
    else:
        new = np.clip(grades.astype(np.int16) + int(by or 0), 1, scale).astype(grades.dtype)
    return np.where(hit, new, grades)


def collapse(grades: np.ndarray, levels: Sequence[Sequence[int]]) -> np.ndarray:
    """Collapse grades into levels; ``levels[i]`` lists the grades of level ``i + 1``.

    Examples
    --------
    >>> collapse(np.array([0, 1, 2, 3, 4, 5]), [[1, 2], [3, 4], [5]]).tolist()
    [0, 1, 1, 2, 2, 3]
    """
    table = np.zeros(max(max(lv) for lv in levels) + 1, dtype=np.uint8)
    for i, level in enumerate(levels, start=1):
        table[list(level)] = i
    return take(table, np.asarray(grades))


def condition(layer: np.ndarray, *, gt: float | None = None, ge: float | None = None,
              lt: float | None = None, le: float | None = None,
              isin: Sequence[int] | None = None) -> np.ndarray:
    """Cells of ``layer`` meeting every given comparison (and membership).

    Examples
    --------
    >>> condition(np.array([50, 100, 150, 200]), ge=100, lt=200).tolist()
    [False, True, True, False]
    """
    out = np.ones(layer.shape, dtype=bool)
    if gt is not None:
        out &= layer > gt
    if ge is not None:
        out &= layer >= ge
    if lt is not None:
        out &= layer < lt
    if le is not None:
        out &= layer <= le
    if isin is not None:
        out &= one_of(layer, list(isin))
    return out


def one_of(values: np.ndarray, codes: Sequence[int]) -> np.ndarray:
    """``np.isin`` without sorting: a lookup table for one- and two-byte unsigned codes.

    A run of consecutive codes in an integer raster takes two comparisons; other
    dtypes fall back to ``np.isin``.

    Examples
    --------
    >>> v = np.array([0, 1, 2, 3], np.uint8)
    >>> one_of(v, [1, 3]).tolist(), one_of(v, [2, 1]).tolist(), one_of(v, [3, 300]).tolist()
    ([False, True, False, True], [False, True, True, False], [False, False, False, True])
    """
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        return np.isin(values, list(codes))
    info = np.iinfo(values.dtype)
    codes = sorted({int(c) for c in codes if info.min <= c <= info.max})
    if not codes:
        return np.zeros(values.shape, dtype=bool)
    if codes[-1] - codes[0] == len(codes) - 1:  # a run of codes: two comparisons are faster
        if len(codes) == 1:
            return values == codes[0]
        return (values >= codes[0]) & (values <= codes[-1])
    if values.dtype.itemsize > 2 or info.min < 0:
        return np.isin(values, codes)
    table = np.zeros(info.max + 1, dtype=bool)
    table[codes] = True
    return take(table, values)
