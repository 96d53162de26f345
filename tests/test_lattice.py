"""Polygons on cell edges: cell counts and validity on the cells agree with GEOS."""

import numpy as np
import pytest
import shapely
from _grids import class_rasters, grid
from hypothesis import given, settings
from hypothesis import strategies as st

from sanqu import lattice
from sanqu.grid import Grid
from sanqu.lattice import cell_counts, cover
from sanqu.trace import label_regions
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
    ok = cover(np.array([polygon]), G).valid
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
    assert cover(np.array([polygon]), G).valid.tolist() == [False]
    fine = shapely.Polygon(shell, [ring(1, 1, 2, 2)])
    assert fine.is_valid
    assert cover(np.array([fine]), G).valid.tolist() == [True]


@settings(max_examples=200, deadline=None)
@given(class_rasters(10, 2))
def test_traced_polygons_are_valid_and_counted_on_their_cells(arr):
    g = grid(*arr.shape)
    df = polygonize(arr, g)
    parts = df.geometry.values.to_numpy()
    for code in (1, 2):
        mine = parts[df["code"].to_numpy() == code]
        assert cover(mine, g).valid.all()
        assert (cell_counts(mine, g) == (arr == code)).all()


def pt(c: int, r: int) -> tuple[float, float]:
    return X0 + c * CELL, Y0 - r * CELL


def test_a_ring_touching_itself_is_invalid_and_two_rings_touching_are_not():
    # a 3 x 3 frame cut open at its top-right corner cell: the C's ends touch there
    # at one corner; drawn as one ring through that corner twice it is invalid (an
    # inverted hole), as a shell and a hole touching at that corner it is valid
    c = [(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (2, 2), (2, 1), (3, 1), (3, 3), (0, 3)]
    one_ring = shapely.Polygon([pt(*p) for p in c])
    assert shapely.is_valid_reason(one_ring).startswith("Ring Self-intersection")
    assert cover(np.array([one_ring]), G).valid.tolist() == [False]
    shell = [(0, 0), (2, 0), (2, 1), (3, 1), (3, 3), (0, 3)]
    two_rings = shapely.Polygon([pt(*p) for p in shell], [[pt(*p) for p in
                                                           ((1, 1), (2, 1), (2, 2), (1, 2))]])
    assert two_rings.is_valid
    assert cover(np.array([two_rings]), G).valid.tolist() == [True]
    assert (cell_counts(np.array([one_ring]), G) == cell_counts(np.array([two_rings]), G)).all()


def lattice_ring(points: list[tuple[int, int]]) -> list[tuple[float, float]]:
    """A closed ring through ``points``, each step along the row, then the column."""
    out = []
    for (c0, r0), (c1, _) in zip(points, points[1:] + points[:1], strict=True):
        out += [pt(c0, r0), pt(c1, r0)]
    return out + out[:1]


corners = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=2, max_size=6)


@settings(max_examples=600, deadline=None)
@given(corners, st.lists(corners, max_size=2))
def test_validity_of_any_lattice_polygon_agrees_with_geos(shell, holes):
    rings = [lattice_ring(shell), *[lattice_ring(h) for h in holes]]
    if any(len(set(r)) < 3 for r in rings):
        return  # not a ring
    polygon = shapely.Polygon(rings[0], rings[1:])
    found = cover(np.array([polygon]), G)
    if found.valid is not None:  # None: cells covered twice or negatively (GEOS decides)
        assert bool(found.valid[0]) == polygon.is_valid, shapely.is_valid_reason(polygon)


def test_parts_of_one_feature_sharing_an_edge_are_invalid():
    a, b = box(0, 0, 2, 2), box(2, 0, 4, 2)  # side by side
    c = box(4, 2, 5, 3)  # touches b at a corner only
    assert not shapely.MultiPolygon([a, b]).is_valid
    assert shapely.MultiPolygon([b, c]).is_valid
    assert cover(np.array([a, b, c]), G).valid.tolist() == [True, True, True]
    assert cover(np.array([shapely.MultiPolygon([a, b]), c]), G).valid.tolist() == [False, True]
    assert cover(np.array([a, shapely.MultiPolygon([b, c])]), G).valid.tolist() == [True, True]


@settings(max_examples=50, deadline=None)
@given(class_rasters(10, 3))
def test_features_read_in_batches_are_painted_as_in_one(arr):
    if not arr.any():
        return
    g = grid(*arr.shape)
    df = polygonize(arr, g)
    code = df["code"].to_numpy()
    parts = df.geometry.values.to_numpy()
    features = np.array([shapely.multipolygons(parts[code == c]) for c in (1, 2, 3)
                         if (code == c).any()] + list(parts[code == 1]), dtype=object)
    whole = cover(features[:1 + (code == 2).any() + (code == 3).any()], g)
    assert whole.valid.all()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lattice, "BATCH_VERTICES", 7)
        batched = cover(features[:len(whole.valid)], g)
        assert (batched.paint == whole.paint).all() and batched.valid.all()
        both = cover(features, g)  # the patches of class 1 twice: overlapping
        assert (both.valid is None) == (arr == 1).any()
        if both.valid is None:
            assert (both.count == (arr == 1) * 1 + (arr > 0)).all()


@settings(max_examples=200, deadline=None)
@given(class_rasters(12, 3))
def test_patches_are_counted_as_labelled(arr):
    labels, value = label_regions(arr)
    expected = np.bincount(value[1:], minlength=4)
    expected[0] = 0
    assert lattice._patches(arr.astype(np.int32), 3).tolist() == expected.tolist()


def test_grids_wider_than_two_byte_corners_are_counted():
    wide = Grid.square(1, (2, 70_000))  # corner columns beyond 65 535: four-byte corners
    found = cover(np.array([shapely.box(69_990, 0, 70_000, 1), shapely.box(0, 1, 3, 2)]), wide)
    assert found.valid.tolist() == [True, True]
    assert found.paint[0, :3].tolist() == [2, 2, 2] and found.paint[1, 69_990:].sum() == 10
    assert (found.paint > 0).sum() == 13


def test_rings_concatenated_cover_as_their_polygons_do():
    from sanqu.lattice import Rings, rings_of

    g = Grid.square(10, (4, 4))
    a = np.array([shapely.box(0, 0, 20, 20), shapely.MultiPolygon([shapely.box(20, 20, 30, 30),
                                                                   shapely.box(30, 30, 40, 40)])])
    b = np.array([shapely.box(0, 20, 20, 40).difference(shapely.box(10, 30, 20, 40))])
    joined = Rings.concat([rings_of(a, g), rings_of(b, g)], g)
    assert len(joined) == 3 and joined.parts().tolist() == [1, 2, 1]
    assert joined.cells().tolist() == [4, 2, 3]
    both = np.concatenate([a, b])
    assert (cover(joined, g).paint == cover(both, g).paint).all()
    assert shapely.equals(joined.geometries(), both).all()
    assert len(Rings.concat([], g)) == 0 and len(Rings.concat([], g).wkb()) == 0


@pytest.mark.parametrize("features", [2**15 - 1, 2**15])  # two-byte paint, four-byte paint
def test_the_paint_numbers_every_cell_exactly_in_two_or_four_bytes(features):
    side = 182  # 33 124 cells: one-cell patches numbered past 2^15 in four bytes
    labels = np.arange(1, side * side + 1, dtype=np.int32).reshape(side, side)
    labels[labels > features] = features  # the last feature takes the rest: one patch
    g = Grid.square(1, (side, side))
    traced = polygonize(labels, g)
    found = cover(traced.geometry.to_numpy(), g)
    assert found.paint.dtype == (np.int16 if features < 2**15 else np.int32)
    assert found.valid.all() and len(found.valid) == features
    assert (found.paint == labels).all()  # polygonize keeps row-major order per code


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), group=st.integers(0, 255), inner=st.integers(0, 7),
       outer=st.integers(0, 7))
def test_plane_flags_and_any_without_agree_with_numpy(seed, group, inner, outer):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 6, 2))
    # few values, so that clean planes come up too
    plane = rng.choice(np.array([0, 1, 2, 4, 5, 128], np.uint8), shape)
    other = rng.choice(np.array([0, 1, 255], np.uint8), shape)
    mask = rng.random(shape) < 0.8
    count = np.zeros(shape, int)
    for b in range(8):
        if group >> b & 1:
            count += plane >> b & 1
    assert lattice.plane_flags(plane, mask, group) == (
        bool((count > 1).any()), bool((mask & (count == 0)).any()),
        bool((~mask & (count > 0)).any()))
    expected = bool(((plane >> inner & 1) > (other >> outer & 1)).any())
    assert lattice.any_without(plane, np.uint8(1 << inner), other,
                               np.uint8(1 << outer)) is expected


def test_wkb_as_views_is_the_bytes_of_the_copies():
    polys = np.array([box(0, 0, 2, 2), shapely.MultiPolygon([box(3, 3, 4, 4), box(5, 5, 7, 6)]),
                      box(0, 4, 2, 7).difference(box(1, 5, 2, 6))], dtype=object)
    rings = lattice.rings_of(polys, G)
    copies, views = rings.wkb(), rings.wkb(views=True)
    assert all(isinstance(w, bytes) for w in copies)
    assert all(isinstance(w, memoryview) for w in views)
    assert [bytes(w) for w in views] == list(copies)
    assert shapely.equals(shapely.from_wkb(copies), polys).all()


def test_a_repeated_closing_vertex_on_a_pinch_of_others_is_one_pass():
    # `one` (pinched itself at corner (1, 2)) has a ring that repeats its closing corner
    # (2, 1), where the two cells of `b` meet on a diagonal: a pinch of b's, passed once
    ring = [pt(2, 1), pt(2, 2), pt(1, 2), pt(1, 1), pt(2, 1), pt(2, 1)]
    one = shapely.MultiPolygon([shapely.Polygon(ring), box(0, 2, 1, 3)])
    b = shapely.MultiPolygon([box(1, 0, 2, 1), box(2, 1, 3, 2)])
    assert one.is_valid and b.is_valid
    found = cover(np.array([one, box(2, 0, 3, 1), b]), G)
    assert found.valid is not None and found.valid.tolist() == [True, True, True]


def test_an_empty_ring_layer_is_one_empty_chunk():
    import pandas as pd

    from sanqu.export import Encoded, RingLayer

    rings = lattice.rings_of(np.array([box(0, 0, 1, 1)], dtype=object), G).take(np.zeros(0, int))
    layer = RingLayer(pd.DataFrame({"id": np.zeros(0, np.int64)}), rings, G.crs)
    chunks = list(Encoded.chunks(layer, ["id"]))
    assert len(chunks) == 1 and len(chunks[0].wkb) == 0
