"""Vectorization: one valid polygon per 4-connected patch, areas equal to cell counts."""

import numpy as np
import pytest
import shapely
from _grids import class_rasters, grid, parse, scipy_label_classes
from hypothesis import given, settings
from hypothesis import strategies as st

from sanqu.patches import label
from sanqu.vectorize import line_codes, polygonize, unit_keys


def test_pinched_patch_gives_one_valid_polygon_with_touching_holes():
    arr = np.array([[1, 1, 1, 0, 0],
                    [1, 0, 1, 0, 0],
                    [1, 1, 0, 1, 0],
                    [0, 1, 1, 1, 0],
                    [0, 0, 0, 0, 0]], np.uint8)
    df = polygonize(arr, grid(5, 5))
    assert len(df) == 1
    poly = df.geometry.iloc[0]
    assert poly.is_valid and len(poly.interiors) == 2
    assert df["area_ha"].iloc[0] == 11.0  # eleven 1-ha cells


def test_diagonal_neighbours_are_separate_patches():
    df = polygonize(np.array([[1, 0], [0, 1]], np.uint8), grid(2, 2))
    assert len(df) == 2 and df.geometry.is_valid.all()


def test_names_and_codes():
    df = polygonize(np.array([[1, 2], [2, 3]], np.uint8), grid(2, 2), names={1: "生态", 2: "农业"})
    assert df["code"].tolist() == [1, 2, 2, 3]  # the two diagonal cells of 2 are two patches
    assert df["name"].tolist() == ["生态", "农业", "农业", "3"]
    assert df["id"].tolist() == [1, 2, 3, 4]


@settings(max_examples=300, deadline=None)
@given(class_rasters(14, 3))
def test_random_rasters_give_valid_polygons_matching_patches(arr):
    df = polygonize(arr, grid(*arr.shape))
    assert shapely.is_valid(df.geometry.values).all()
    assert (df.geometry.geom_type == "Polygon").all()
    for cls in (1, 2, 3):
        _, n = label(arr == cls)
        part = df[df["code"] == cls]
        assert len(part) == n
        assert np.isclose(part["area_ha"].sum(), np.count_nonzero(arr == cls))


def test_batches_do_not_change_the_polygons(monkeypatch):
    import sanqu.vectorize as vectorize

    arr = np.random.default_rng(1).integers(0, 4, (40, 40)).astype(np.uint8)
    whole = polygonize(arr, grid(40, 40))
    monkeypatch.setattr(vectorize, "BATCH_VERTICES", 10)
    batched = polygonize(arr, grid(40, 40))
    assert len(whole) == len(batched) > 100
    assert shapely.equals_exact(whole.geometry.values, batched.geometry.values, 0).all()
    assert (whole["code"].values == batched["code"].values).all()


def test_smoothing_keeps_small_pieces_and_their_holes():
    from sanqu.vectorize import smooth_coverage

    # a staircase patch holding a one-cell hole (another piece) in a 6 x 6 area
    arr = np.ones((6, 6), np.uint8)
    arr[np.tril_indices(6, -1)] = 2
    arr[1, 4] = 3
    df = polygonize(arr, grid(6, 6))
    smooth = smooth_coverage(df.geometry.values, 75.0, grid(6, 6), keep_area=4 * 10_000)
    assert shapely.coverage_is_valid(smooth)
    hole = smooth[df["code"].to_numpy() == 3][0]
    assert hole.area == 10_000 and hole.equals(df.geometry.values[df["code"].to_numpy() == 3][0])
    stairs = smooth[df["code"].to_numpy() == 2][0]
    assert len(stairs.exterior.coords) < len(df.geometry.values[df["code"].to_numpy() == 2][0]
                                             .exterior.coords)
    assert shapely.area(smooth).sum() == 36 * 10_000


@settings(max_examples=150, deadline=None)
@given(class_rasters(12, 2))
def test_the_tracer_gives_the_polygons_gdal_gives(arr):
    from rasterio.features import shapes

    g = grid(*arr.shape)
    ours = polygonize(arr, g)
    gdal = [(int(v), shapely.geometry.shape(s))
            for s, v in shapes(arr, mask=arr > 0, connectivity=4, transform=g.transform)]

    def key(code: int, geom: shapely.Geometry) -> tuple:
        c = geom.centroid
        return (code, *geom.bounds, geom.area, round(c.x, 6), round(c.y, 6))

    mine = sorted(zip(ours["code"], ours.geometry.values, strict=True), key=lambda p: key(*p))
    theirs = sorted(gdal, key=lambda p: key(*p))
    assert len(mine) == len(theirs)
    for (c1, a), (c2, b) in zip(mine, theirs, strict=True):
        assert c1 == c2 and a.equals(b)


def test_each_band_traces_the_rings_first_met_in_its_rows():
    from sanqu.trace import _joined, _trace, _walk_bands, trace_into

    # rows 0-1 and 2-3: the frame 1 (shell and hole) and the block 2 start above the
    # seam and reach below it; 3 starts below it; 1's hole and 2's shell meet the seam
    labels = parse("""
        11111
        12211
        12213
        11113
    """).astype(np.int32)
    buf = np.empty(64, np.int32)
    above = _trace(labels, buf.copy(), buf.copy(), 0, 2)
    below = _trace(labels, buf.copy(), buf.copy(), 2, 4)
    assert above[3].tolist() == [1, 1, 2] and below[3].tolist() == [3]
    assert below[0][:below[2]].tolist() == [5, 5, 4, 4, 5]  # 3's corners: (5,2) (5,4) ...
    assert below[1][:below[2]].tolist() == [2, 4, 4, 2, 2]
    one = trace_into(labels, np.int32, trim=True)
    assert one[2].tolist() == [1, 1, 2, 3]
    for bands in (2, 3, 4):
        banded = _joined(_walk_bands(labels, np.int32, bands))
        assert all(a.tolist() == b.tolist() for a, b in zip(one, banded, strict=True))
    # a hole whose top is the seam: the band above walks it (the bottom of the 1 above
    # the 2 comes first in scan order); the band below reaches it from its bottom and
    # drops it when it turns west along the seam
    frame = parse("""
        111
        121
        111
    """).astype(np.int32)
    assert _trace(frame, buf.copy(), buf.copy(), 0, 1)[3].tolist() == [1, 1]
    assert _trace(frame, buf.copy(), buf.copy(), 1, 3)[3].tolist() == [2]


@settings(max_examples=150, deadline=None)
@given(class_rasters(30, 2), st.integers(2, 6))
def test_rings_traced_in_bands_are_those_of_one_band(arr, bands):
    from sanqu.trace import _joined, _walk_bands, label_regions, trace_into

    labels, _ = label_regions(arr)
    one = trace_into(labels, np.uint16, trim=True)
    banded = _joined(_walk_bands(labels, np.uint16, min(bands, arr.shape[0])))
    assert all(a.dtype == b.dtype and a.tolist() == b.tolist()
               for a, b in zip(one, banded, strict=True))


@settings(max_examples=200, deadline=None)
@given(class_rasters(14, 3))
def test_region_labels_are_scipys_patches_in_the_same_order(arr):
    from sanqu.trace import label_regions

    ours, value = label_regions(arr)
    theirs, cls = scipy_label_classes(arr)
    order = np.argsort(value, kind="stable")  # the reference numbers class by class
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    assert (rank[ours] == theirs).all() and (value[order] == cls).all()


def test_polygons_by_unit_split_patches_along_the_unit_raster():
    from sanqu.vectorize import polygonize_by_unit

    rng = np.random.default_rng(3)
    classes = rng.integers(0, 3, (30, 30))
    unit = (np.arange(900, dtype=np.uint16).reshape(30, 30) // 2) % 700  # pairs of cells
    unit[:, :5] = 0  # in no unit
    g = grid(30, 30)
    geoms, cls, units = polygonize_by_unit(classes, unit, 699, g, 3)
    assert shapely.is_valid(geoms).all()
    key = np.where(classes > 0, (np.where(unit == 0, 700, unit).astype(np.int64)) * 3 + classes, 0)
    for k in np.unique(key[key > 0]):  # every (class, unit) region: its cells, its polygons
        u, c = divmod(int(k), 3)
        pick = (cls == c) & (units == (0 if u == 700 else u))
        assert shapely.area(geoms[pick]).sum() == np.count_nonzero(key == k) * g.cell_area
        assert pick.sum() == label(key == k)[1]
    assert (np.diff(np.where(units == 0, 700, units)) >= 0).all()  # unit order, none last


@settings(max_examples=200, deadline=None)
@given(class_rasters(14, 3))
def test_traced_rings_are_the_polygons_as_geos_writes_them(arr):
    from sanqu.vectorize import traced

    g = grid(*arr.shape)
    df = polygonize(arr, g)
    rings, codes = traced(arr, g)
    assert codes.tolist() == df["code"].tolist()
    assert rings.parts().tolist() == [1] * len(df)
    assert (rings.areas() == df["area_ha"].to_numpy() * 10_000).all()
    polygons = [bytes(w) for w in rings.wkb()]
    multi = [shapely.MultiPolygon([p]).wkb for p in df.geometry]
    assert polygons == multi  # byte for byte
    by_class, classes = traced(arr, g, per_patch=False)
    assert classes.tolist() == sorted(set(df["code"]))
    for k, c in enumerate(classes):  # a class's patches, as parts in polygonize's order
        parts = shapely.get_parts(by_class.geometries()[k])
        assert shapely.to_wkb(parts).tolist() == shapely.to_wkb(
            np.asarray(df.geometry.values)[df["code"].to_numpy() == c]).tolist()


def test_traced_by_unit_gives_each_unit_its_level_as_one_feature():
    from sanqu.vectorize import polygonize_by_unit, traced_by_unit

    rng = np.random.default_rng(5)
    here = np.kron(rng.integers(0, 2, (12, 12)), np.ones((2, 2), int)).astype(np.uint8)
    unit = np.kron(rng.integers(0, 4, (4, 4)), np.ones((6, 6), int)).astype(np.uint16)
    g = grid(24, 24)
    rings, classes, units = traced_by_unit(here, unit, 3, g, 2, per_patch=False)
    geoms, _, patch_unit = polygonize_by_unit(here, unit, 3, g, 2)
    assert (classes == 1).all() and len(set(units.tolist())) == len(units)
    assert units.tolist() == list(dict.fromkeys(patch_unit.tolist()))  # unit order, none last
    features = rings.geometries()
    for u, feature in zip(units, features, strict=True):
        parts = geoms[patch_unit == u]
        assert shapely.get_parts(feature).tolist() == parts.tolist()
        assert feature.area == np.count_nonzero(here.astype(bool) & (unit == u)) * g.cell_area


@settings(max_examples=100, deadline=None)
@given(class_rasters(12, 6), class_rasters(12, 5))
def test_unit_keys_and_line_codes_cell_by_cell(classes, units):
    """One numba pass each, against the arithmetic written out; shapes must agree."""
    h, w = min(classes.shape[0], units.shape[0]), min(classes.shape[1], units.shape[1])
    v, u = classes[:h, :w].astype(np.uint8), units[:h, :w].astype(np.uint16)
    n_units, span = int(u.max()), int(v.max()) + 1
    rank = np.where(u == 0, n_units + 1, u).astype(np.int64)
    assert (unit_keys(v, u, n_units, span) == np.where(v == 0, 0, rank * span + v)).all()
    red, farm = v == 1, v == 2
    zone = np.where(v >= 3, v - 2, 0).astype(np.uint8)
    assert (line_codes(red, farm, zone) == v).all()  # red 1, farm 2, sub-zone z: 2 + z
    if classes.shape != units.shape:
        with pytest.raises(ValueError, match="differ in shape"):
            unit_keys(classes, units.astype(np.uint16), n_units, 256)


def test_traced_by_unit_by_class_puts_each_class_together_in_unit_order():
    from sanqu.vectorize import traced_by_unit

    rng = np.random.default_rng(11)
    here = rng.integers(0, 4, (20, 24)).astype(np.uint8)
    unit = rng.integers(0, 3, (20, 24)).astype(np.uint16)
    g = grid(20, 24)
    rings, classes, units = traced_by_unit(here, unit, 2, g, 4, per_patch=False)
    by_rings, by_classes, by_units = traced_by_unit(here, unit, 2, g, 4, per_patch=False,
                                                    by_class=True)
    rank = np.where(by_units == 0, 3, by_units)  # cells in no unit last
    assert (np.diff(by_classes * 4 + rank) > 0).all()  # class, then unit
    ends = np.searchsorted(by_classes, [1, 2, 3, 4]).tolist()
    for c, a, b in zip((1, 2, 3), ends[:-1], ends[1:], strict=True):
        pick = np.flatnonzero(classes == c)  # the unit-first features of class c
        assert by_units[a:b].tolist() == units[pick].tolist()
        mine, theirs = by_rings.between(a, b), rings.take(pick)
        assert [bytes(w) for w in mine.wkb()] == [bytes(w) for w in theirs.wkb()]
        assert np.shares_memory(mine.col, by_rings.col)


def test_trace_regions_is_the_trace_of_the_labels_banded_or_not(monkeypatch):
    from sanqu import trace

    rng = np.random.default_rng(8)
    v = rng.integers(0, 3, (600, 40)).astype(np.uint8)
    labels, value = trace.label_regions(v)
    one = trace.trace_into(labels, np.uint16, trim=True)
    got, got_value = trace.trace_regions(v, np.uint16, trim=True)
    monkeypatch.setattr(trace, "BAND_CELLS", 1000)
    monkeypatch.setattr(trace.os, "cpu_count", lambda: 2)
    assert trace.bands_for(v.shape) == 2
    banded, banded_value = trace.trace_regions(v, np.uint16)
    assert got_value.tolist() == banded_value.tolist() == value.tolist()
    for a, b, c in zip(one, got, banded, strict=True):
        assert a.tolist() == b.tolist() == c.tolist()
