"""Hand-worked tests of patch operations: minimum areas, holes, sieving."""

import numpy as np
import pytest
from _grids import class_rasters, parse, scipy_label_classes
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sanqu.patches import fill_holes, remove_small_patches, sieve_classes


def test_remove_small_patches_uses_four_connectivity():
    m = parse("""
        1100
        1001
        0010
    """).astype(bool)
    # the two diagonal cells at (1,3) and (2,2) are separate 1-cell patches
    assert remove_small_patches(m, 2).astype(int).tolist() == [
        [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


def test_fill_holes_respects_size_allowed_and_edges():
    m = parse("""
        11111
        10111
        11001
        11111
        01111
    """).astype(bool)
    filled = fill_holes(m, 2)
    assert filled[1, 1] and filled[2, 2] and filled[2, 3]
    assert not filled[4, 0]  # touches the edge: not a hole
    allowed = np.ones_like(m)
    allowed[2, 3] = False
    partly = fill_holes(m, 2, allowed=allowed)
    assert partly[1, 1] and not partly[2, 2] and not partly[2, 3]


def test_fill_holes_budget_fills_smallest_first():
    m = parse("""
        1111111
        1011001
        1111111
    """).astype(bool)
    out = fill_holes(m, 5, budget=1)
    assert out[1, 1] and not out[1, 4] and not out[1, 5]
    out = fill_holes(m, 5, budget=3)
    assert out.all()


def test_sieve_merges_into_longest_border():
    c = parse("""
        1 1 1 1
        1 2 3 3
        1 1 3 3
    """)
    # the lone 2 borders class 1 on three edges and class 3 on one
    out = sieve_classes(c, 2)
    assert out[1, 1] == 1
    assert (out[c != 2] == c[c != 2]).all()


def test_sieve_keeps_locked_patches_and_outside():
    c = parse("""
        1 1 1
        1 2 1
        0 0 0
    """)
    locked = np.zeros(c.shape, bool)
    locked[1, 1] = True
    assert sieve_classes(c, 5, locked=locked)[1, 1] == 2
    out = sieve_classes(c, 2)
    assert out[1, 1] == 1 and (out[2] == 0).all()


def test_sieve_chains_small_patches():
    # a 2-cell patch of 3 next to a 1-cell patch of 2, both small, inside class 1
    c = parse("""
        1 1 1 1 1
        1 2 3 3 1
        1 1 1 1 1
    """)
    out = sieve_classes(c, 3)
    assert (out == 1).all()


def _sieve_reference(classes, min_cells, locked=None, max_rounds=20):
    """The straightforward sieve: all classes labelled at once, every edge counted."""

    out = classes.copy()
    if min_cells <= 1:
        return out
    ncls = int(out.max()) + 1
    for _ in range(max_rounds):
        labels, label_class = scipy_label_classes(out)
        n = label_class.size - 1
        small = np.bincount(labels.ravel(), minlength=n + 1) < min_cells
        small[0] = False
        if locked is not None:
            small[np.unique(labels[locked])] = False
        if not small.any():
            break
        counts = np.zeros((n + 1, ncls), dtype=np.int64)
        for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
            for own, other in ((a, b), (b, a)):
                edge = small[own] & (other > 0) & (own != other)
                np.add.at(counts, (own[edge], label_class[other[edge]]), 1)
        move = small & (counts.max(axis=1) > 0)
        if not move.any():
            break
        cells = move[labels]
        out[cells] = np.argmax(counts, axis=1).astype(out.dtype)[labels[cells]]
    return out


@settings(max_examples=300, deadline=None)
@given(class_rasters(12, 3), st.integers(1, 6), st.integers(0, 2))
def test_sieve_matches_the_straightforward_version(c, min_cells, lock_seed):
    # one labelling of all classes, small patches' borders counted in one pass: the same result
    locked = (np.random.default_rng(lock_seed).random(c.shape) < 0.1) if lock_seed else None
    want = _sieve_reference(c, min_cells, locked)
    assert (sieve_classes(c, min_cells, locked) == want).all()


@pytest.mark.parametrize("seed", range(6))
def test_sieve_matches_the_straightforward_version_on_larger_rasters(seed):
    # many rounds of chained merges on a noisy raster of five classes
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 6, (70, 90)).astype(np.uint8)
    c[rng.random(c.shape) < 0.5] = c[0, 0]
    locked = rng.random(c.shape) < 0.02 if seed % 2 else None
    for min_cells in (2, 5, 30):
        want = _sieve_reference(c, min_cells, locked)
        assert (sieve_classes(c, min_cells, locked) == want).all()


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))),
       hnp.arrays(bool, (12, 12)), st.integers(1, 6), st.one_of(st.none(), st.integers(0, 8)))
def test_fill_holes_matches_the_straightforward_version(m, allowed, max_cells, budget):
    from scipy import ndimage

    allowed = allowed[: m.shape[0], : m.shape[1]]
    labels, n = ndimage.label(~m)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    ok = sizes <= max_cells
    ok[0] = False
    ok[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False
    ok[np.unique(labels[~allowed])] = False
    if budget is not None:
        ids = np.flatnonzero(ok)
        order = ids[np.lexsort((ids, sizes[ids]))]
        ok[:] = False
        ok[order[np.cumsum(sizes[order]) <= budget]] = True
    want = m | ok[labels] if m.any() else m
    assert (fill_holes(m, max_cells, allowed=allowed, budget=budget) == want).all()


def test_region_sizes_joins_provisional_labels_and_counts_cells():
    from sanqu.trace import region_sizes

    # a U of 1s opening upwards: its arms start as two labels, joined on its bottom row;
    # the 2s inside the U and those right and below are separate regions of one value,
    # the latter met first at the top right, then again (a new label) on the last row
    v = parse("""
        12102
        12102
        11102
        22222
    """)
    garbage = np.full(v.shape, 99, dtype=np.int32)
    labels, value, cells = region_sizes(v, garbage)
    assert labels is garbage
    assert labels.tolist() == [[1, 2, 1, 0, 3], [1, 2, 1, 0, 3], [1, 1, 1, 0, 3],
                               [3, 3, 3, 3, 3]]
    assert value.tolist() == [0, 1, 2, 2] and cells.tolist() == [0, 7, 2, 8]


@pytest.mark.parametrize("seed", range(4))
def test_region_sizes_match_scipy_on_larger_rasters(seed):
    from scipy import ndimage

    from sanqu.trace import region_sizes

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 4, (20, 30)).astype(np.uint8)
    v = np.kron(coarse, np.ones((9, 7), np.uint8))  # blocks, then noise on top
    v[rng.random(v.shape) < 0.15] = rng.integers(0, 4)
    labels, value, cells = region_sizes(v)
    theirs, cls = scipy_label_classes(v)
    order = np.argsort(value, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    assert (rank[labels] == theirs).all() and (value[order] == cls).all()
    assert cells[1:].tolist() == np.bincount(labels.ravel())[1:].tolist() and cells[0] == 0
    mask = v == 2
    assert (region_sizes(mask)[0] == ndimage.label(mask)[0]).all()


def test_bands_join_a_region_across_every_seam():
    from sanqu.trace import _label_bands

    # a comb of 1s whose teeth hang down through three bands (rows 0-1, 2-3, 4-5), joined
    # only on the last row; between the teeth, 2s that a seam cuts but no band joins
    v = parse("""
        12121
        12121
        12121
        12121
        12121
        11111
    """)
    labels = np.full(v.shape, 99, dtype=np.int32)
    value, cells = _label_bands(v, labels, 3)
    assert labels.tolist() == [[1, 2, 1, 3, 1]] * 5 + [[1] * 5]
    assert value.tolist() == [0, 1, 2, 2] and cells.tolist() == [0, 20, 5, 5]


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int16, st.tuples(st.integers(1, 40), st.integers(1, 40)),
                  elements=st.integers(0, 2)),
       st.integers(2, 6))
def test_bands_label_as_one_band(v, bands):
    from sanqu.trace import _label, _label_bands

    bands = min(bands, v.shape[0])
    one, banded = np.empty(v.shape, np.int32), np.full(v.shape, -1, np.int32)
    value, cells = _label(v, one)
    value_b, cells_b = _label_bands(v, banded, bands)
    assert (banded == one).all()
    assert value_b.tolist() == value.tolist() and cells_b.tolist() == cells.tolist()


def test_region_sizes_labels_large_rasters_in_bands(monkeypatch):
    from sanqu import trace

    rng = np.random.default_rng(5)
    v = rng.integers(0, 3, (700, 300)).astype(np.uint8)
    assert trace.bands_for(v.shape, 2) == 1  # under BAND_CELLS
    one = trace.region_sizes(v)
    monkeypatch.setattr(trace, "BAND_CELLS", 1000)
    monkeypatch.setattr(trace.os, "cpu_count", lambda: 2)
    assert trace.bands_for(v.shape) == 2
    banded = trace.region_sizes(v)
    assert all((a == b).all() for a, b in zip(one, banded, strict=True))
