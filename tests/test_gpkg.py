"""The native GeoPackage appender: the rows, R-tree, counts and extent GDAL writes."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sanqu import export, gpkg
from sanqu.export import Encoded, vector_env
from sanqu.shapefile import NotNative

CRS = "EPSG:4527"
NAMES = ["生态保护红线", "永久基本农田", "", "a", None]

#: What GDAL and the native writer must agree on, table by table.
QUERIES = {
    "rows": "SELECT fid, geom, id, area, name, flag FROM t ORDER BY fid",  # by name: see below
    "schema": "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('t') "
              "ORDER BY name",
    "rtree": "SELECT * FROM rtree_t_geom ORDER BY id",
    "contents": "SELECT * FROM gpkg_contents",
    "count": "SELECT * FROM gpkg_ogr_contents",
    "triggers": "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name",
    "columns": "SELECT * FROM gpkg_geometry_columns",
    "extensions": "SELECT * FROM gpkg_extensions",
}


def objects(items: list[object]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def layer(geoms: list[shapely.Geometry], seed: int) -> Encoded:
    """Features with an int64, a float64 (some NaN), a text (some null) and a bool field."""
    rng = np.random.default_rng(seed)
    n = len(geoms)
    real = rng.normal(size=n) * 1e6
    real[rng.random(n) < 0.2] = np.nan
    names = [NAMES[i] for i in rng.integers(0, len(NAMES), n)]
    return Encoded(wkb=shapely.to_wkb(objects(geoms)), fields=["id", "area", "name", "flag"],
                   values=[rng.integers(-2**40, 2**40, n), real, objects(names),
                           rng.random(n) < 0.5],
                   masks=[None, None, np.array([v is None for v in names]), None], crs=CRS)


def chunks(enc: Encoded, cuts: list[int]) -> list[Encoded]:
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(enc.wkb))), len(enc.wkb)]
    return [Encoded(wkb=enc.wkb[a:b], fields=enc.fields, values=[v[a:b] for v in enc.values],
                    masks=[None if m is None else m[a:b] for m in enc.masks], crs=enc.crs)
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def by_gdal(path: Path, parts: list[Encoded]) -> None:
    with vector_env():
        for k, part in enumerate(parts):
            part.write(path, layer="t", driver="GPKG", dataset_options={"VERSION": "1.2"},
                       **({"append": True} if k else {}))


def natively(path: Path, parts: list[Encoded]) -> None:
    with vector_env():
        parts[0].empty().write(path, layer="t", driver="GPKG", geometry_type="MultiPolygon",
                               dataset_options={"VERSION": "1.2"})
    for part in parts:
        gpkg.append(path, "t", part.wkb, part.fields, part.values, part.masks)
    con = sqlite3.connect(path)
    try:  # the layer it filled has its geometry last (GDAL's: second), the rest in order
        names = [r[0] for r in con.execute("SELECT name FROM pragma_table_info('t')")]
        assert names == ["fid", "id", "area", "name", "flag", "geom"]
    finally:
        con.close()


def tables(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(path)
    try:
        return {k: con.execute(q).fetchall() for k, q in QUERIES.items()}
    finally:
        con.close()


def assert_same(a: Path, b: Path) -> None:
    """The same rows, R-tree, counts, triggers; the extent within GDAL's 16 digits."""
    ta, tb = tables(a), tables(b)
    for key in QUERIES:
        if key != "contents":
            assert ta[key] == tb[key], key
    (ca,), (cb,) = ta["contents"], tb["contents"]
    assert ca[:5] + ca[9:] == cb[:5] + cb[9:]  # name, type, identifier, description, date, srs
    np.testing.assert_allclose(cb[5:9], ca[5:9], rtol=1e-15, atol=0)


def polygons(draw: st.DrawFn) -> shapely.Geometry:
    x, y = draw(st.floats(1, 5e5)), draw(st.floats(1, 5e5))
    w, h = draw(st.floats(1, 1e4)), draw(st.floats(1, 1e4))
    outer = shapely.box(x, y, x + w, y + h)
    if draw(st.booleans()):
        outer = outer.difference(shapely.box(x + w / 4, y + h / 4, x + w / 2, y + h / 2))
    if draw(st.booleans()):
        far = shapely.box(x + 2 * w, y, x + 3 * w, y + h)
        return shapely.MultiPolygon([outer, far])
    return outer  # a Polygon: promoted to a one-part MultiPolygon


@st.composite
def layers(draw: st.DrawFn) -> tuple[list[shapely.Geometry], int, list[int]]:
    n = draw(st.integers(1, 25))
    geoms = [polygons(draw) for _ in range(n)]
    return geoms, draw(st.integers(0, 2**16)), draw(st.lists(st.integers(1, n), max_size=3))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=layers(), piece=st.sampled_from([7, 1 << 24]))
def test_native_rows_rtree_counts_and_extent_are_gdals(case, piece, tmp_path_factory,
                                                       monkeypatch):
    geoms, seed, cuts = case
    monkeypatch.setattr(gpkg, "PIECE_BYTES", piece)  # 7: every blob streamed in pieces
    folder = tmp_path_factory.mktemp("gpkg")
    parts = chunks(layer(geoms, seed), cuts)
    by_gdal(folder / "gdal.gpkg", parts)
    natively(folder / "native.gpkg", parts)
    assert_same(folder / "gdal.gpkg", folder / "native.gpkg")


def test_a_hand_worked_blob(tmp_path):
    square = shapely.box(10, 20, 30, 50)
    enc = layer([square], 0)
    natively(tmp_path / "n.gpkg", [enc])
    con = sqlite3.connect(tmp_path / "n.gpkg")
    blob, = con.execute("SELECT geom FROM t").fetchone()
    srs, = con.execute("SELECT srs_id FROM gpkg_contents").fetchone()
    con.close()
    head = struct.pack("<2sBBi4d", b"GP", 0, 3, srs, 10, 30, 20, 50)  # minx maxx miny maxy
    assert blob == head + gpkg.MULTI_ONE + shapely.to_wkb(square)


def big_endian(geom: shapely.Geometry) -> bytes:
    return shapely.to_wkb(geom, byte_order=0)


@pytest.mark.parametrize("bad", [
    "none", "big-endian", "3d", "empty", "zero bound", "date field", "line"])
def test_what_it_cannot_write_as_gdal_would_is_refused_before_a_row(bad, tmp_path):
    enc = layer([shapely.box(1, 1, 2, 2), shapely.box(3, 3, 4, 4)], 1)
    wkb = list(enc.wkb)
    values = list(enc.values)
    if bad == "none":
        wkb[1] = None
    elif bad == "big-endian":
        wkb[1] = big_endian(shapely.box(3, 3, 4, 4))
    elif bad == "3d":
        wkb[1] = shapely.to_wkb(shapely.Polygon([(3, 3, 1), (4, 3, 1), (4, 4, 1), (3, 3, 1)]))
    elif bad == "empty":
        wkb[1] = shapely.to_wkb(shapely.MultiPolygon())
    elif bad == "zero bound":
        wkb[1] = shapely.to_wkb(shapely.box(0, 3, 4, 4))
    elif bad == "date field":
        values[0] = np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")
    else:
        wkb[1] = shapely.to_wkb(shapely.LineString([(3, 3), (4, 4)]))
    natively(tmp_path / "n.gpkg", [chunks(enc, [1])[0]])  # one row, GDAL's
    before = tables(tmp_path / "n.gpkg")
    with pytest.raises(NotNative):
        gpkg.append(tmp_path / "n.gpkg", "t", objects(wkb), enc.fields, values, enc.masks)
    assert tables(tmp_path / "n.gpkg") == before


def test_write_gpkg_goes_native_for_large_features_and_falls_back_to_gdal(tmp_path, monkeypatch):
    enc = layer([shapely.box(1, 1, 2, 2), shapely.box(3, 3, 4, 4)], 2)
    by_gdal(tmp_path / "gdal.gpkg", [enc])
    used = []
    monkeypatch.setattr(export, "append_gpkg", lambda *a: used.append(a) or gpkg.append(*a))
    with vector_env():
        enc.write_gpkg(tmp_path / "small.gpkg", "t", create=True,
                       dataset_options={"VERSION": "1.2"})
    assert not used  # features under NATIVE_GPKG_BYTES: GDAL's bulk R-tree
    monkeypatch.setattr(export, "NATIVE_GPKG_BYTES", 0)
    with vector_env():
        enc.write_gpkg(tmp_path / "large.gpkg", "t", create=True,
                       dataset_options={"VERSION": "1.2"})
    assert len(used) == 1
    assert_same(tmp_path / "gdal.gpkg", tmp_path / "large.gpkg")
    dated = Encoded(wkb=enc.wkb, fields=["day"], crs=CRS, masks=[None],
                    values=[np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")])
    with vector_env():
        dated.write_gpkg(tmp_path / "dated.gpkg", "t", create=True)  # refused, then GDAL
    con = sqlite3.connect(tmp_path / "dated.gpkg")
    assert con.execute("SELECT day FROM t ORDER BY fid").fetchall() == [("2020-01-01",),
                                                                         ("2021-01-01",)]
    con.close()


def test_views_of_one_buffer_are_written_as_their_bytes(tmp_path):
    """WKB as memoryviews (:meth:`sanqu.lattice.Rings.wkb` with ``views``), by either writer."""
    enc = layer([shapely.box(1, 1, 2, 2), shapely.box(3, 3, 4, 4).union(shapely.box(5, 3, 6, 4)),
                 shapely.box(7, 7, 9, 9)], 5)
    whole = memoryview(b"".join(enc.wkb))
    ends = np.cumsum([len(w) for w in enc.wkb])
    views = Encoded(wkb=objects([whole[e - len(w):e] for w, e in zip(enc.wkb, ends,
                                                                       strict=True)]),
                    fields=enc.fields, values=enc.values, masks=enc.masks, crs=enc.crs)
    by_gdal(tmp_path / "bytes.gpkg", [enc])
    by_gdal(tmp_path / "views.gpkg", [views])  # OGR is given copies
    natively(tmp_path / "native.gpkg", [views])
    assert_same(tmp_path / "bytes.gpkg", tmp_path / "views.gpkg")
    assert_same(tmp_path / "bytes.gpkg", tmp_path / "native.gpkg")


def test_values_a_column_would_store_otherwise_than_gdal_are_refused(tmp_path):
    enc = layer([shapely.box(1, 1, 2, 2)], 3)
    natively(tmp_path / "n.gpkg", [enc])
    before = tables(tmp_path / "n.gpkg")
    cases = {"id": np.array([3.7]),  # a real in an integer column: GDAL cuts it to 3
             "name": np.array([7.0]),  # a number in a text column: GDAL prints it its way
             "flag": np.array([2])}  # 2 in a boolean column
    for name, value in cases.items():
        values = [value if f == name else v for f, v in zip(enc.fields, enc.values, strict=True)]
        with pytest.raises(NotNative, match=f"field {name}"):
            gpkg.append(tmp_path / "n.gpkg", "t", enc.wkb, enc.fields, values, enc.masks)
    assert tables(tmp_path / "n.gpkg") == before


def test_fids_follow_the_largest_the_table_ever_had(tmp_path):
    enc = layer([shapely.box(1, 1, 2, 2), shapely.box(3, 3, 4, 4), shapely.box(5, 5, 6, 6)], 4)
    first, rest = chunks(enc, [2])
    for name, write in (("gdal", by_gdal), ("native", natively)):
        write(tmp_path / f"{name}.gpkg", [first])
        con = sqlite3.connect(tmp_path / f"{name}.gpkg")
        con.execute("DELETE FROM t WHERE fid = 2")  # through GDAL's delete triggers
        con.commit()
        con.close()
    with vector_env():
        rest.write(tmp_path / "gdal.gpkg", layer="t", driver="GPKG", append=True)
    gpkg.append(tmp_path / "native.gpkg", "t", rest.wkb, rest.fields, rest.values, rest.masks)
    assert tables(tmp_path / "native.gpkg")["rows"][-1][0] == 3  # not 2: AUTOINCREMENT
    assert_same(tmp_path / "gdal.gpkg", tmp_path / "native.gpkg")


def test_rows_sqlite_refuses_are_undone_and_left_to_gdal(tmp_path):
    enc = layer([shapely.box(1, 1, 2, 2), shapely.box(3, 3, 4, 4)], 5)
    natively(tmp_path / "n.gpkg", chunks(enc, [1])[:1])
    con = sqlite3.connect(tmp_path / "n.gpkg")
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON t WHEN NEW.id < 0 "
                "BEGIN SELECT RAISE(ABORT, 'no negative ids'); END")
    con.commit()
    con.close()
    before = tables(tmp_path / "n.gpkg")
    values = [np.array([5, -5]), *enc.values[1:]]
    with pytest.raises(NotNative, match="no negative ids"):
        gpkg.append(tmp_path / "n.gpkg", "t", enc.wkb, enc.fields, values, enc.masks)
    after = tables(tmp_path / "n.gpkg")
    assert after == before  # rows, R-tree and its trigger, count and extent as they were


def test_geopackages_get_larger_pages_and_fiona_layers_too(tmp_path):
    """GDAL creates a GeoPackage with GPKG_PAGE_SIZE pages, through pyogrio and fiona alike."""
    import geopandas as gpd

    from sanqu.export import write_schema_layer
    from sanqu.planning_db import Field

    by_gdal(tmp_path / "a.gpkg", [layer([shapely.box(0, 0, 1, 1)], 0)])
    df = gpd.GeoDataFrame({"BSM": ["1"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=CRS)
    with vector_env():  # as the planning database is written
        write_schema_layer(tmp_path / "b.gpkg", "t", df, [Field("BSM", "str", 18)])
    for name in ("a.gpkg", "b.gpkg"):
        con = sqlite3.connect(tmp_path / name)
        try:
            assert con.execute("PRAGMA page_size").fetchone()[0] == export.GPKG_PAGE_SIZE != 4096
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            con.close()


def test_a_layer_with_rows_keeps_gdals_column_order(tmp_path):
    enc = layer([shapely.box(1, 1, 2, 2), shapely.box(3, 1, 4, 2)], 1)
    first, second = chunks(enc, [1])
    by_gdal(tmp_path / "a.gpkg", [first])
    gpkg.append(tmp_path / "a.gpkg", "t", second.wkb, second.fields, second.values,
                second.masks)
    con = sqlite3.connect(tmp_path / "a.gpkg")
    try:
        names = [r[0] for r in con.execute("SELECT name FROM pragma_table_info('t')")]
    finally:
        con.close()
    assert names == ["fid", "geom", "id", "area", "name", "flag"]
    by_gdal(tmp_path / "gdal.gpkg", [first, second])
    assert_same(tmp_path / "gdal.gpkg", tmp_path / "a.gpkg")
