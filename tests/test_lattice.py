"""Polygons on cell edges: cell counts and validity on the cells agree with GEOS."""

import numpy as np
import shapely
from _grids import class_rasters, grid
from hypothesis import given, settings
from hypothesis import strategies as st

from sanqu.lattice import cell_counts, valid_on_cells
from sanqu.vectorize import polygonize

G = grid(8, 8)
X0, Y0 = G.transform.c, G.transform.f
CELL = G.transform.a


def box(c0: int, r0: int, c1: int, r1: int) -> shapely.Polygon:
    """The cells of columns c0..c1-1 and rows r0..r1-1 as a box."""
    return shapely.box(X0 + c0 * CELL, Y0 - r1 * CELL, X0 + c1 * CELL, Y0 - r0 * CELL)


def ring(c0: int, r0: int, c1: int, r1: int) -> list[tuple[float, float]]:
    return list(box(c0, r0, c1, r1).exterior.coords)


boxes = st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(1, 4), st.integers(1, 4)
                  ).map(lambda b: (b[0], b[1], min(8, b[0] + b[2]), min(8, b[1] + b[3])))


@settings(max_examples=400, deadline=None)
@given(boxes, st.lists(boxes, max_size=4))
def test_validity_on_cells_agrees_with_geos(shell, holes):
    polygon = shapely.Polygon(ring(*shell), [ring(*h) for h in holes])
    ok = valid_on_cells(np.array([polygon]), G, shapely.is_simple)
    if ok is not None:  # None: holes outside the shell or overlapping (GEOS then decides)
        assert bool(ok[0]) == polygon.is_valid, shapely.is_valid_reason(polygon)


def test_holes_pinching_the_interior_apart_are_found():
    # a 4 x 4 shell without its top-left and bottom-right cells; two one-cell holes
    # on the diagonal touch each other and the shell's inner corners: two interiors
    def pt(c: int, r: int) -> tuple[float, float]:
        return X0 + c * CELL, Y0 - r * CELL

    shell = [pt(*p) for p in ((1, 0), (4, 0), (4, 3), (3, 3), (3, 4), (0, 4), (0, 1), (1, 1))]
    polygon = shapely.Polygon(shell, [ring(1, 1, 2, 2), ring(2, 2, 3, 3)])
    assert shapely.is_valid_reason(polygon).startswith("Interior is disconnected")
    assert valid_on_cells(np.array([polygon]), G, shapely.is_simple).tolist() == [False]
    fine = shapely.Polygon(shell, [ring(1, 1, 2, 2)])
    assert fine.is_valid
    assert valid_on_cells(np.array([fine]), G, shapely.is_simple).tolist() == [True]


@settings(max_examples=200, deadline=None)
@given(class_rasters(10, 2))
def test_traced_polygons_are_valid_and_counted_on_their_cells(arr):
    g = grid(*arr.shape)
    df = polygonize(arr, g)
    parts = df.geometry.values.to_numpy()
    for code in (1, 2):
        mine = parts[df["code"].to_numpy() == code]
        assert valid_on_cells(mine, g, shapely.is_simple).all()
        assert (cell_counts(mine, g) == (arr == code)).all()
