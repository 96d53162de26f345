"""Hand-worked tests of patch operations: minimum areas, holes, sieving."""

import numpy as np
from _grids import parse

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
