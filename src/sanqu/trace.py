"""Boundary tracing: the rings of every 4-connected patch of a label raster, in one pass.

The polygonizer of :mod:`sanqu.vectorize`. Each patch's boundary runs along cell
edges and is walked with the patch on the right-hand side (in row/column
order), turning only where the boundary turns, so a ring holds its corners and
nothing else. One scan over the cells starts a walk at every horizontal boundary
edge not walked yet (every ring is first met at one); a bit per top and bottom
cell side records the edges walked, so every ring is walked once and the work is
proportional to the cells plus the boundary. A large raster is traced in bands of
rows, one thread each: a band walks the rings first met in its rows (a walk that
reaches a cell side above the band is dropped: the bands above have it), and the
rings are joined band after band, in the order of one scan.

At a vertex the walk looks at the two cells ahead of it: it turns left if the
ahead-left cell is in the patch, goes straight if only the ahead-right cell is,
and turns right otherwise. Where two cells of a patch meet only at a corner (a
*pinch*) this turns away from the cell across the corner, so each ring is the
border between the patch and one region around it: every ring is simple, the
outer one is the shell, the others are holes that may touch the shell or each
other at single corners. That is a valid OGC polygon, the same as GDAL's
polygonizer gives (tests/test_vectorize.py checks both with GEOS on random
rasters), here without building a GeoJSON mapping per polygon: tracing 10⁸
cells takes seconds instead of minutes.

The patches to trace come from :func:`label_regions`: 4-connected regions of
equal value in an integer raster of any number of values (a class combined
with an administrative unit, say), labelled by union-find in two passes. A large
raster is cut into bands of rows, one thread each (the kernels release the GIL):
each band is labelled alone, the sets are joined across the seams, then each
band is relabelled; the labels are the same as in one band.

The kernels are compiled by numba on first use (cached on disk afterwards, the cache
dropped whenever a source of the package is newer: :mod:`sanqu.jitcache`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

#: Rasters of this many cells or more are labelled in bands, one thread each.
BAND_CELLS = 1 << 22

#: Fewest rows in a band.
BAND_ROWS = 256


@njit(cache=True, nogil=True)
def _root(parent: np.ndarray, a: int) -> int:
    while parent[a] != a:
        parent[a] = parent[parent[a]]  # path halving
        a = parent[a]
    return a


@njit(cache=True, nogil=True)
def _label_row(values: np.ndarray, above: np.ndarray, has_above: bool, labels: np.ndarray,
               labels_above: np.ndarray, parent: np.ndarray, first: np.ndarray, n: int
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """The first labelling pass over one row: provisional labels into ``labels``.

    A cell takes the label of its left or upper neighbour of equal value (the row
    ``above`` and its ``labels_above``, when ``has_above``), joining their sets
    where both are; else a new label ``n + 1``, whose value goes to ``first``. A
    set's root is its lowest label, the one of its first cell. Returns
    ``parent`` and ``first`` (grown if need be) and the labels used.
    """
    for c in range(values.size):
        v = values[c]
        if v == 0:
            labels[c] = 0
        elif c > 0 and values[c - 1] == v:
            left = labels[c - 1]
            # the upper neighbour joins, unless joined already through the upper-left
            if has_above and above[c] == v and above[c - 1] != v:
                a, b = _root(parent, labels_above[c]), _root(parent, left)
                if a != b:
                    parent[max(a, b)] = min(a, b)
                labels[c] = min(a, b)
            else:
                labels[c] = left
        elif has_above and above[c] == v:
            labels[c] = labels_above[c]
        else:
            n += 1
            if n == parent.size:
                parent = _grow(parent)
                first = _grow(first)
            parent[n] = n
            first[n] = v
            labels[c] = n
    return parent, first, n


@njit(cache=True, nogil=True)
def _first_pass(values: np.ndarray, labels: np.ndarray, r0: int, r1: int
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """Provisional labels 1..n of rows ``r0:r1``, as if no row came before ``r0``.

    Returns the union-find ``parent`` (a set's root is its lowest label, the one
    of its first cell), the value of each label and ``n``.
    """
    parent = np.empty(1024, dtype=np.int32)
    first = np.empty(1024, dtype=values.dtype)  # the value of each provisional label
    parent[0] = 0
    n = 0
    for r in range(r0, r1):
        up = r - 1 if r > r0 else r0
        parent, first, n = _label_row(values[r], values[up], r > r0, labels[r], labels[up],
                                      parent, first, n)
    return parent, first, n


@njit(cache=True, nogil=True)
def _join_bands(values: np.ndarray, labels: np.ndarray, starts: np.ndarray,
                offsets: np.ndarray, parent: np.ndarray) -> None:
    """Join the sets of equal cells across each band's first row and the row above it.

    ``parent`` holds every band's provisional labels, band ``k``'s shifted by
    ``offsets[k]``; a joined set's root stays its lowest label.
    """
    width = values.shape[1]
    for k in range(1, starts.size):
        r = starts[k]
        for c in range(width):
            v = values[r, c]
            if v != 0 and values[r - 1, c] == v:
                a = _root(parent, offsets[k - 1] + labels[r - 1, c])
                b = _root(parent, offsets[k] + labels[r, c])
                if a != b:
                    parent[max(a, b)] = min(a, b)


@njit(cache=True, nogil=True)
def _number(parent: np.ndarray, first: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Final labels 1..m in order of the roots, so of each region's first cell (row-major).

    ``parent`` becomes each provisional label's final label (a label's parent is
    lower, so it is final by the time the label is reached); returns the value of
    each final label and ``m``.
    """
    value = np.zeros(n + 1, dtype=np.int64)
    m = 0
    for i in range(1, n + 1):
        if parent[i] == i:
            m += 1
            parent[i] = m
            value[m] = first[i]
        else:
            parent[i] = parent[parent[i]]
    return value[:m + 1], m


@njit(cache=True, nogil=True)
def _second_pass(labels: np.ndarray, final: np.ndarray, offset: int, m: int, r0: int, r1: int
                 ) -> np.ndarray:
    """Final labels of rows ``r0:r1`` (``final[offset + provisional]``), and cells per label."""
    cells = np.zeros(m + 1, dtype=np.int64)
    width = labels.shape[1]
    for r in range(r0, r1):
        raw, lab, run = 0, 0, 0
        for c in range(width):
            if labels[r, c] != raw:
                cells[lab] += run
                raw, run = labels[r, c], 0
                lab = final[offset + raw] if raw else 0
            labels[r, c] = lab
            run += 1
        cells[lab] += run
    cells[0] = 0
    return cells


@njit(cache=True, nogil=True)
def _label(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label one raster in one band (one thread)."""
    parent, first, n = _first_pass(values, labels, 0, values.shape[0])
    value, m = _number(parent, first, n)
    return value, _second_pass(labels, parent, 0, m, 0, values.shape[0])


def _label_bands(values: np.ndarray, labels: np.ndarray, bands: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_label` with the rows cut into ``bands`` bands, each pass on one thread per band.

    Each band is labelled on its own; the bands' sets are then joined across their
    seams and numbered in one short serial step, and each band relabelled. A set's
    root is its lowest label whichever band it starts in (the bands' labels are
    numbered in band order), so the labels are those of one band.
    """
    starts = np.linspace(0, values.shape[0], bands + 1).astype(np.int64)
    spans = list(zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True))
    with ThreadPoolExecutor(bands) as pool:
        passes = list(pool.map(lambda s: _first_pass(values, labels, *s), spans))
        counts = np.array([n for _, _, n in passes], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        parent = np.zeros(int(counts.sum()) + 1, dtype=np.int32)
        first = np.zeros(parent.size, dtype=values.dtype)
        for (p, f, n), off in zip(passes, offsets.tolist(), strict=True):
            parent[off + 1:off + n + 1] = p[1:n + 1] + off
            first[off + 1:off + n + 1] = f[1:n + 1]
        del passes
        _join_bands(values, labels, starts[:-1], offsets, parent)
        value, m = _number(parent, first, parent.size - 1)
        cells = sum(pool.map(lambda k: _second_pass(labels, parent, int(offsets[k]), m,
                                                    *spans[k]), range(bands)))
    return value, cells


def label_regions(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the 4-connected regions of equal value of an integer raster.

    One union-find pass and one relabelling pass, whatever the number of values:
    time and memory (int32 labels and a few numbers per provisional label) grow
    with the cells only.

    Parameters
    ----------
    values : numpy.ndarray of int
        Any integer or bool raster; 0 is not labelled.

    Returns
    -------
    labels : numpy.ndarray of int32
        1..n, numbered by each region's first cell in row-major order; 0 where
        ``values`` is 0. Within one value this is the order of
        ``scipy.ndimage.label``.
    label_value : numpy.ndarray of int64
        The value of each label (``label_value[0]`` is 0).

    See Also
    --------
    region_sizes : the same, with the cells of each region.

    Examples
    --------
    >>> lab, val = label_regions(np.array([[700, 2, 700], [0, 2, 2], [700, 700, 2]]))
    >>> lab.tolist(), val.tolist()
    ([[1, 2, 3], [0, 2, 2], [4, 4, 2]], [0, 700, 2, 700, 700])
    """
    labels, value, _ = region_sizes(values)
    return labels, value


def region_sizes(values: np.ndarray, out: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`label_regions` and the cell count of each region, counted while labelling.

    Parameters
    ----------
    values : numpy.ndarray of int
        Any integer or bool raster; 0 is not labelled.
    out : numpy.ndarray of int32, optional
        C-contiguous raster of ``values``' shape to write the labels into (its
        content is ignored), e.g. to reuse one raster for many labellings.

    Returns
    -------
    labels : numpy.ndarray of int32
        As :func:`label_regions` (``out`` if given).
    label_value : numpy.ndarray of int64
        The value of each label (``label_value[0]`` is 0).
    cells : numpy.ndarray of int64
        Cells per label (``cells[0]`` is 0: background cells are not counted).

    Examples
    --------
    >>> lab, val, cells = region_sizes(np.array([[1, 1, 0], [0, 1, 1]], bool))
    >>> lab.tolist(), val.tolist(), cells.tolist()
    ([[1, 1, 0], [0, 1, 1]], [0, 1], [0, 4])
    """
    if values.dtype == np.bool_:
        values = values.view(np.uint8)
    if out is None:
        out = np.empty(values.shape, dtype=np.int32)
    values = np.ascontiguousarray(values)
    bands = bands_for(values.shape)
    if bands > 1:
        value, cells = _label_bands(values, out, bands)
    else:
        value, cells = _label(values, out)
    return out, value, cells


def bands_for(shape: tuple[int, ...], threads: int | None = None) -> int:
    """Bands to label a raster of ``shape`` in: one per thread for large rasters, else 1.

    Examples
    --------
    >>> bands_for((100, 100), 2), bands_for((4096, 4096), 2), bands_for((300, 100_000), 4)
    (1, 2, 1)
    """
    threads = threads or os.cpu_count() or 1
    if shape[0] * shape[1] < BAND_CELLS:
        return 1
    return max(1, min(threads, shape[0] // BAND_ROWS))


@njit(cache=True, nogil=True)
def _grow(a: np.ndarray) -> np.ndarray:
    out = np.empty(2 * a.size, dtype=a.dtype)
    out[:a.size] = a
    return out


@njit(cache=True, nogil=True)
def _trace(labels: np.ndarray, out_col: np.ndarray, out_row: np.ndarray, r0: int, r1: int
           ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]:
    """:func:`trace_rings`' kernel, for the rings first met in rows ``r0:r1``.

    Directions ``d``: 0 east, 1 south, 2 west, 3 north. Walks start only at
    horizontal sides (tops and bottoms of cells, bits 1 and 4 of ``walked``):
    every ring's first side in scan order is horizontal (a ring's top line is
    reached first from the cell above or below it), so vertical sides are never
    looked up or marked. Each straight run is one tight loop; the cells ahead are
    looked up left first (a pinch turns left, away from the cell across the corner).

    A ring with a side of a cell above row ``r0`` is first met by the scan of the
    rows above: its walk stops where it reaches such a side (an eastward run
    on a row line above ``r0``, a westward one on ``r0`` or above) and the ring
    is dropped. ``walked`` covers the rows scanned, ``r0:r1``: the sides a kept
    ring has below them are walked but not marked (no scan here reads them).
    """
    height, width = labels.shape
    walked = np.zeros((r1 - r0, width), dtype=np.uint8)  # bit 1: top walked, bit 4: bottom
    ring_label = np.empty(64, dtype=np.int32)
    ring_end = np.empty(64, dtype=np.int64)
    n = 0
    rings = 0
    for r in range(r0, r1):
        for c in range(width):
            patch = labels[r, c]
            if patch == 0:
                continue
            for side in (0, 2):
                if walked[r - r0, c] & (1 << side):
                    continue
                if side == 0:
                    if r > 0 and labels[r - 1, c] == patch:
                        continue
                    col, row, d0 = c, r, 0
                else:
                    if r + 1 < height and labels[r + 1, c] == patch:
                        continue
                    col, row, d0 = c + 1, r + 1, 2
                col0, row0 = col, row
                d = d0
                first = n
                dropped = False
                while True:
                    if d == 0:  # east along row line `row`, patch below
                        if row < r0:
                            dropped = True  # a ring of the rows above
                            break
                        mark = row < r1
                        while True:
                            if mark:
                                walked[row - r0, col] |= 1
                            col += 1
                            if col == col0 and row == row0 and d0 == 0:
                                break
                            if row > 0 and col < width and labels[row - 1, col] == patch:
                                nd = 3
                                break
                            if col >= width or labels[row, col] != patch:
                                nd = 1
                                break
                    elif d == 1:  # south along column line `col`, patch west
                        while True:
                            row += 1
                            if row < height and col < width and labels[row, col] == patch:
                                nd = 0
                                break
                            if row >= height or labels[row, col - 1] != patch:
                                nd = 2
                                break
                    elif d == 2:  # west along row line `row`, patch above
                        if row <= r0:
                            dropped = True  # a ring of the rows above
                            break
                        mark = row <= r1
                        while True:
                            if mark:
                                walked[row - 1 - r0, col - 1] |= 4
                            col -= 1
                            if col == col0 and row == row0 and d0 == 2:
                                break
                            if row < height and col > 0 and labels[row, col - 1] == patch:
                                nd = 1
                                break
                            if col == 0 or labels[row - 1, col - 1] != patch:
                                nd = 3
                                break
                    else:  # north along column line `col`, patch east
                        while True:
                            row -= 1
                            if row > 0 and col > 0 and labels[row - 1, col - 1] == patch:
                                nd = 2
                                break
                            if row == 0 or labels[row - 1, col] != patch:
                                nd = 0
                                break
                    if col == col0 and row == row0 and d == d0:
                        break  # back at the start, straight on: no vertex
                    if n + 2 > out_col.size:
                        out_col = _grow(out_col)
                        out_row = _grow(out_row)
                    out_col[n] = col
                    out_row[n] = row
                    n += 1
                    d = nd
                    if col == col0 and row == row0 and d == d0:
                        break
                if dropped:
                    n = first
                    continue
                out_col[n] = out_col[first]
                out_row[n] = out_row[first]
                n += 1
                if rings == ring_label.size:
                    ring_label = _grow(ring_label)
                    ring_end = _grow(ring_end)
                ring_label[rings] = patch
                ring_end[rings] = n
                rings += 1
    return (out_col, out_row, n, ring_label[:rings].copy(),
            ring_end[:rings].copy())


def trace_rings(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Corners of every ring of every patch of a label raster.

    Parameters
    ----------
    labels : numpy.ndarray of int32
        Patch labels (4-connected patches, 0 where nothing is traced), e.g. from
        :func:`label_regions`.

    Returns
    -------
    col, row : numpy.ndarray of int32
        Corner coordinates in cell units (column and row of the lattice of cell
        corners), ring after ring, each ring closed (first corner repeated).
    ring_label : numpy.ndarray of int32
        The patch of each ring.
    ring_end : numpy.ndarray of int64
        One past the last corner of each ring in ``col``/``row``.

    Rings come in scan order: a patch's shell is its first ring (its first cell in
    row-major order is on the shell's top edge); its holes follow later, possibly
    after other patches' rings.

    Examples
    --------
    >>> col, row, lab, end = trace_rings(np.array([[1, 1], [0, 1]], np.int32))
    >>> list(zip(col.tolist(), row.tolist())), lab.tolist(), end.tolist()
    ([(2, 0), (2, 2), (1, 2), (1, 1), (0, 1), (0, 0), (2, 0)], [1], [7])
    """
    return trace_into(labels, np.int32, trim=True)


def trace_into(labels: np.ndarray, dtype: type, *, trim: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`trace_rings` with the corners as ``dtype`` (``uint16`` fits grids under 2¹⁶).

    Without ``trim`` the corners may come in the tracer's growable buffers, longer
    than the last ring's end (``ring_end[-1]``), saving a copy of them (a raster
    traced in bands, :func:`bands_for`, has its corners joined and trimmed: :func:`_joined`).
    """
    return _rings(_walk_bands(np.ascontiguousarray(labels, dtype=np.int32), dtype), trim)


def trace_regions(values: np.ndarray, dtype: type, *, trim: bool = False
                  ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """:func:`trace_into` of :func:`label_regions`' labels, and the value of each label.

    The label raster (4 bytes a cell) is dropped before the corners of a raster
    traced in bands are joined, so it is never held beside both the bands'
    corners and their joined copy.
    """
    parts, value = trace_bands(values, dtype)
    return _rings(parts, trim), value


def trace_bands(values: np.ndarray, dtype: type) -> tuple[list[tuple], np.ndarray]:
    """:func:`trace_regions` with each band's rings as the tracer left them, not joined.

    Returns
    -------
    parts : list of tuple
        Per band of rows (:func:`bands_for`; one for a small raster), in order:
        the corners ``col`` and ``row`` in the tracer's growable buffers (the
        first ``n`` are its rings'), ``n``, each ring's label and the end of
        each ring in the band's buffers. Joined band after band (:func:`_joined`,
        :func:`sanqu.lattice.gather_parts`), the rings are those of one band.
    value : numpy.ndarray
        The value of each label.
    """
    labels, value = label_regions(values)
    return _walk_bands(labels, dtype), value


def _walk_bands(labels: np.ndarray, dtype: type, bands: int | None = None) -> list[tuple]:
    """Each band's :func:`_trace`: the rows cut into ``bands`` bands, one thread each.

    ``bands`` defaults to :func:`bands_for`'s. Each band walks the rings first met
    in its rows; joined band after band (:func:`_joined`), the rings and their
    order are those of one band.
    """
    bands = bands or bands_for(labels.shape)
    starts = np.linspace(0, labels.shape[0], bands + 1).astype(np.int64).tolist()

    def walk(k: int) -> tuple:
        return _trace(labels, np.empty(1024, dtype=dtype), np.empty(1024, dtype=dtype),
                      starts[k], starts[k + 1])

    if bands == 1:
        return [walk(0)]
    with ThreadPoolExecutor(bands) as pool:
        return list(pool.map(walk, range(bands)))


def _rings(parts: list[tuple], trim: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rings of :func:`_walk_bands`' parts: joined (:func:`_joined`), or one band's as is.

    A lone band keeps its corners in the tracer's buffers unless ``trim``.
    """
    if len(parts) == 1 and not trim:
        col, row, _, ring_label, ring_end = parts[0]
        return col, row, ring_label, ring_end
    return _joined(parts)


def _joined(parts: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The bands' rings one band after another, corners trimmed (:func:`_walk_bands`)."""
    ns = [p[2] for p in parts]
    col = np.concatenate([p[0][:n] for p, n in zip(parts, ns, strict=True)])
    row = np.concatenate([p[1][:n] for p, n in zip(parts, ns, strict=True)])
    shift = np.cumsum([0, *ns[:-1]]).tolist()
    ring_end = np.concatenate([p[4] + d for p, d in zip(parts, shift, strict=True)])
    return col, row, np.concatenate([p[3] for p in parts]), ring_end
