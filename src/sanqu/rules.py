"""Evaluation operators: pure functions over grade arrays.

Grades run from 1 (best) to ``scale`` (worst, 5 by default); 0 marks cells with
no grade (outside the study area). Every function here is per-cell and knows
nothing of files or configs, so it can run on any block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .errors import ConfigError

#: Saaty's random consistency index RI for n = 1..15.
RANDOM_INDEX = (0.0, 0.0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41, 1.45, 1.49, 1.51, 1.48, 1.56, 1.57,
                1.59)


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
    table = np.asarray(grades if grades is not None else range(1, len(breaks) + 2), np.uint8)
    side = "left" if closed == "right" else "right"
    idx = np.searchsorted(np.asarray(breaks, dtype=np.float64), values, side=side)
    return table[idx]


def lookup(codes: np.ndarray, table: Mapping[int, int], where: np.ndarray | None = None,
           *, key: str = "table") -> np.ndarray:
    """Grade a categorical layer by a code → grade table.

    Raises
    ------
    ConfigError
        If a cell (inside ``where``) holds a code the table lacks.

    Examples
    --------
    >>> lookup(np.array([[1, 33], [6, 1]]), {1: 2, 33: 1, 6: 5}).tolist()
    [[2, 1], [5, 2]]
    """
    codes = np.asarray(codes)
    keys = np.array(sorted(table), dtype=np.int64)
    vals = np.array([table[k] for k in sorted(table)], dtype=np.uint8)
    idx = np.searchsorted(keys, codes).clip(0, len(keys) - 1)
    found = keys[idx] == codes
    check = found if where is None else (found | ~where)
    if not check.all():
        bad = np.unique(codes[~check])
        raise ConfigError(f"{key}: code {int(bad[0])} occurs in the data but is not in the table "
                          f"(missing: {bad.tolist()[:10]})")
    return np.where(found, vals[idx], 0).astype(np.uint8)


def matrix(rows: np.ndarray, cols: np.ndarray, table: Sequence[Sequence[int]]) -> np.ndarray:
    """Decision matrix: ``table[row_grade - 1][col_grade - 1]``; 0 where either input is 0.

    Examples
    --------
    >>> m = [[1, 2], [2, 2]]
    >>> matrix(np.array([1, 1, 2, 0]), np.array([1, 2, 1, 1]), m).tolist()
    [1, 2, 2, 0]
    """
    t = np.zeros((len(table) + 1, len(table[0]) + 1), dtype=np.uint8)
    t[1:, 1:] = np.asarray(table, dtype=np.uint8)
    return t[rows, cols]


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
        hit &= np.isin(grades, list(only_grades))
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
    return table[grades]


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
        out &= np.isin(layer, list(isin))
    return out
