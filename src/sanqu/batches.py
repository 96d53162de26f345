"""Batches: cut a sequence of items into runs of bounded total size.

Polygons are built, read back and written a batch at a time so that the copies
each step makes (coordinates, GEOS parts, WKB) hold one batch, not a layer.
"""

from __future__ import annotations

import numpy as np


def batch_bounds(ends: np.ndarray, limit: int) -> np.ndarray:
    """Indices cutting items into batches of about ``limit`` in size.

    Parameters
    ----------
    ends : numpy.ndarray of int
        Cumulative sizes: item ``i`` ends at ``ends[i]`` (``numpy.cumsum`` of the sizes).
    limit : int
        Size after which a batch ends, at the end of the item reaching it (an
        item larger than ``limit`` is a batch of its own).

    Returns
    -------
    numpy.ndarray of int
        ``0``, the cuts, and the number of items: batch ``k`` is items
        ``bounds[k]:bounds[k + 1]``. Just ``[0]`` when there are no items.

    Examples
    --------
    >>> batch_bounds(np.cumsum([3, 3, 3, 9, 1]), 5).tolist()
    [0, 2, 4, 5]
    >>> batch_bounds(np.zeros(0, int), 5).tolist()
    [0]
    """
    if len(ends) == 0:
        return np.zeros(1, dtype=np.int64)
    steps = np.arange(limit, ends[-1], limit)
    return np.unique(np.r_[0, np.searchsorted(ends, steps) + 1, len(ends)])
