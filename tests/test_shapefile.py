"""The native shapefile writer: the bytes GDAL writes, for any polygons and attributes."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.raw
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sanqu import export, shapefile
from sanqu.export import FIXED_DATE, Encoded, vector_env, write_schema_layer
from sanqu.planning_db import Field
from sanqu.shapefile import NotNative

EXTS = ("shp", "shx", "dbf")
CRS = "EPSG:4527"
NAMES = ["生态保护红线", "永久基本农田", "城镇开发边界（集中建设区）", "", "a", "河南·济源"]


# ---------------------------------------------------------------- helpers


def ring_wkb(points: list[tuple[float, float]]) -> bytes:
    return struct.pack("<I", len(points)) + b"".join(struct.pack("<dd", *p) for p in points)


def polygon_wkb(rings: list[list[tuple[float, float]]]) -> bytes:
    return struct.pack("<BII", 1, 3, len(rings)) + b"".join(ring_wkb(r) for r in rings)


def feature_wkb(polygons: list[list[list[tuple[float, float]]]], multi: bool) -> bytes:
    """WKB of a MultiPolygon, or of a Polygon (the first) — shapely makes no empty rings."""
    if not multi:
        return polygon_wkb(polygons[0] if polygons else [])
    return struct.pack("<BII", 1, 6, len(polygons)) + b"".join(polygon_wkb(p) for p in polygons)


def objects(items: list[object]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def layer(wkb: list[bytes | None], ids: list[int], areas: list[float], names: list[str | None]
          ) -> Encoded:
    """An :class:`Encoded` chunk: ``id`` int64, ``area_ha`` float64, ``name`` text (None: null)."""
    mask = np.array([v is None for v in names], dtype=bool)
    return Encoded(wkb=objects(wkb), fields=["id", "area_ha", "name"],
                   values=[np.array(ids, dtype=np.int64), np.array(areas, dtype=np.float64),
                           objects(names)],
                   masks=[None, None, mask], crs=CRS)


def split(enc: Encoded, cuts: list[int]) -> Iterator[Encoded]:
    bounds = [0, *cuts, len(enc.wkb)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        yield Encoded(wkb=enc.wkb[a:b], fields=enc.fields, values=[v[a:b] for v in enc.values],
                      masks=[None if m is None else m[a:b] for m in enc.masks], crs=enc.crs)


def gdal_create(path: Path, enc: Encoded, encoding: str) -> None:
    enc.empty().write(path, geometry_type="MultiPolygon", driver="ESRI Shapefile",
                      encoding=encoding, layer_options={"DBF_DATE_LAST_UPDATE": FIXED_DATE})


def gdal_append(path: Path, enc: Encoded, encoding: str) -> None:
    enc.write(path, append=True, driver="ESRI Shapefile", encoding=encoding)


def files(path: Path) -> dict[str, bytes]:
    return {ext: path.with_suffix(f".{ext}").read_bytes() for ext in EXTS}


def undated(data: dict[str, bytes]) -> dict[str, bytes]:
    """The files without the DBF header's date (bytes 1 to 3)."""
    return {**data, "dbf": data["dbf"][:1] + data["dbf"][4:]}


@contextmanager
def fresh(folder: Path, name: str) -> Iterator[Path]:
    path = folder / f"{name}.shp"
    for ext in (*EXTS, "cpg", "prj"):
        path.with_suffix(f".{ext}").unlink(missing_ok=True)
    yield path


def gdal_and_native(folder: Path, chunks: list[Encoded], encoding: str
                    ) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The same chunks appended by GDAL and natively to a layer GDAL created."""
    with vector_env():
        with fresh(folder, "gdal") as path:
            gdal_create(path, chunks[0], encoding)
            for chunk in chunks:
                gdal_append(path, chunk, encoding)
            gdal = files(path)
        date = shapefile.gdal_date()
        with fresh(folder, "native") as path:
            gdal_create(path, chunks[0], encoding)
            for chunk in chunks:
                shapefile.append(path, chunk.wkb, chunk.fields, chunk.values, chunk.masks,
                                 date=date)
            native = files(path)
    return gdal, native


# ---------------------------------------------------------------- strategies


coordinates = st.one_of(
    st.floats(-1e3, 1e3, allow_subnormal=False),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-5, -1e-5]),
    st.integers(-3, 3).map(float),
    st.floats(3.9e7, 4.0e7),  # Gauss-Krüger eastings with the zone number
    st.floats(-1e-300, 1e-300),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def rings(draw: st.DrawFn) -> list[tuple[float, float]]:
    """Any ring GDAL takes: open or closed, repeated points, 0 to 12 points."""
    pts = draw(st.lists(st.tuples(coordinates, coordinates), max_size=12))
    if len(pts) >= 2 and draw(st.booleans()):
        pts[-1] = pts[0]
    if pts and draw(st.booleans()):
        i = draw(st.integers(0, len(pts) - 1))
        pts.insert(i, pts[i])
    return pts


@st.composite
def valid_features(draw: st.DrawFn) -> bytes:
    """A valid MultiPolygon: lattice squares with holes, parts touching at an edge or corner."""
    scale = draw(st.sampled_from([30.0, 1e-6, 0.1]))
    x0 = draw(st.sampled_from([0.0, 39_542_003.477, -500.0]))
    y0 = draw(st.sampled_from([0.0, 3_544_562.256]))
    cells = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1,
                          max_size=8, unique=True))
    geom = shapely.union_all([shapely.box(x0 + c * 3 * scale, y0 + r * 3 * scale,
                                          x0 + (c + 1) * 3 * scale, y0 + (r + 1) * 3 * scale)
                              for c, r in cells])
    holes = [shapely.box(x0 + (c * 3 + 1) * scale, y0 + (r * 3 + 1) * scale,
                         x0 + (c * 3 + 2) * scale, y0 + (r * 3 + 2) * scale)
             for c, r in cells if draw(st.booleans())]
    geom = shapely.difference(geom, shapely.union_all(holes)) if holes else geom
    if draw(st.booleans()):
        geom = shapely.orient_polygons(geom, exterior_cw=draw(st.booleans()))
    geom = shapely.MultiPolygon(shapely.get_parts(geom).tolist())
    return shapely.to_wkb(geom)


@st.composite
def any_features(draw: st.DrawFn) -> bytes:
    polygons = draw(st.lists(st.lists(rings(), max_size=3), max_size=3))
    return feature_wkb(polygons, multi=draw(st.booleans()) or not polygons)


texts = st.one_of(st.sampled_from(NAMES), st.none(),
                  st.text(st.characters(codec="gbk", exclude_characters="\x00€"), max_size=20))
reals = st.one_of(st.floats(-1e8, 1e8), st.sampled_from([np.nan, -0.0, 0.0, 0.09, 22.68,
                                                         123456789.0, 1e15, 1e-20]))


@st.composite
def layers(draw: st.DrawFn) -> tuple[list[Encoded], str]:
    """A layer as chunks (1 to 3), its encoding."""
    n = draw(st.integers(1, 12))
    wkb = draw(st.lists(st.one_of(valid_features(), any_features()), min_size=n, max_size=n))
    ids = draw(st.lists(st.integers(-(10**16), 10**17), min_size=n, max_size=n))
    areas = draw(st.lists(reals, min_size=n, max_size=n))
    names = draw(st.lists(texts, min_size=n, max_size=n))
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=2))) if n > 1 else []
    return list(split(layer(wkb, ids, areas, names), cuts)), draw(st.sampled_from(["UTF-8", "GBK"]))


# ---------------------------------------------------------------- byte identity


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(layers())
def test_appended_features_are_the_bytes_gdal_writes(tmp_path_factory: pytest.TempPathFactory,
                                                     drawn: tuple[list[Encoded], str]) -> None:
    chunks, encoding = drawn
    gdal, native = gdal_and_native(tmp_path_factory.mktemp("shp"), chunks, encoding)
    for ext in EXTS:
        assert native[ext] == gdal[ext], ext


def test_polygons_holes_and_touching_parts(tmp_path: Path) -> None:
    square = shapely.box(0, 0, 30, 30)
    holed = shapely.Polygon(square.exterior.coords, [shapely.box(10, 10, 20, 20).exterior.coords])
    touching = shapely.MultiPolygon([shapely.box(30, 0, 60, 30), shapely.box(60, 30, 90, 60)])
    cw = shapely.orient_polygons(holed, exterior_cw=True)
    geoms = [square, holed, touching, cw, shapely.MultiPolygon([holed, shapely.box(40, 0, 50, 9)])]
    enc = layer(list(shapely.to_wkb(np.array(geoms))), [1, 2, 3, 4, 5],
                [0.09, 0.08, 0.18, 0.08, 0.17], ["生态保护红线", None, "", "a", "城镇开发边界"])
    for encoding in ("UTF-8", "GBK"):
        gdal, native = gdal_and_native(tmp_path, [enc], encoding)
        assert native == gdal


def test_a_feature_larger_than_the_buffers_is_written_in_pieces(tmp_path: Path,
                                                                monkeypatch) -> None:
    rng = np.random.default_rng(5)
    parts = [shapely.Polygon(rng.uniform(0, 1000, (40, 2)).round(2).tolist() + [[0.0, 0.0]])
             for _ in range(30)]
    big = shapely.to_wkb(shapely.MultiPolygon(parts))
    small = [shapely.to_wkb(shapely.box(i, 0, i + 1, 1)) for i in range(40)]
    enc = layer([*small[:20], big, *small[20:]], list(range(41)), [1.0] * 41, ["x"] * 41)
    monkeypatch.setattr(shapefile, "OUT_BYTES", 100)  # records cut across many writes
    monkeypatch.setattr(shapefile, "GROUP_BYTES", 300)  # small features joined a few at a time
    monkeypatch.setattr(shapefile, "DBF_BYTES", 700)
    gdal, native = gdal_and_native(tmp_path, list(split(enc, [7, 30])), "UTF-8")
    assert native == gdal


def test_null_and_empty_geometries(tmp_path: Path) -> None:
    empty_ring = feature_wkb([[[], [(0, 0), (1, 0), (1, 1), (0, 0)]]], multi=True)  # dropped
    hole_empty = feature_wkb([[[(0, 0), (0, 3), (3, 3), (3, 0), (0, 0)], []]], multi=False)
    wkb = [feature_wkb([], multi=True), feature_wkb([], multi=False), empty_ring, hole_empty,
           shapely.to_wkb(shapely.box(-1, -1, 0, 0)), None]  # None: no geometry
    enc = layer(wkb, [1, 2, 3, 4, 5, 6], [1.0] * 6, ["a"] * 6)
    for chunks in ([enc], list(split(enc, [1, 2])), list(split(enc, [5]))):
        gdal, native = gdal_and_native(tmp_path, chunks, "UTF-8")
        assert native == gdal


#: A figure eight: a small clockwise loop under a large anticlockwise one. The
#: cross product at its lowest vertex (0, 0) says clockwise, its area anticlockwise.
EIGHT = [(0, 2), (1, 1), (0, 0), (-1, 1), (0, 2), (5, 6), (0, 10), (-5, 6), (0, 2)]
DEGENERATE = {
    "eight": EIGHT,
    "neighbour within 1e-5": EIGHT[:2] + [(4e-6, 4e-6)] + EIGHT[2:],  # area decides
    "neighbour beyond 1e-5": EIGHT[:2] + [(2e-5, 2e-5)] + EIGHT[2:],  # the cross product
    "lowest vertex twice": EIGHT[:5] + [(2, 1), (0, 0), (-2, 1)] + EIGHT[4:],  # area decides
    "twice, then lower": EIGHT[:5] + [(2, 1), (0, 0), (-2, 1), (0, 2), (1, -1), (-1, -0.5)]
    + EIGHT[4:],
    "lowest first": EIGHT[2:] + EIGHT[1:3],
    "lowest last but one": EIGHT[3:] + EIGHT[1:3] + [EIGHT[3]],
    "flat": [(0, 0), (1, 0), (2, 0), (0, 0)],
    "tiny": [(0, 0), (1e-6, 0), (1e-6, 1e-6), (0, 0)],
    "three": [(0, 0), (1, 1), (0, 1)],
    "two": [(0, 0), (1, 1)],
    "one": [(3, 3)],
}


@pytest.mark.parametrize("ring", DEGENERATE.values(), ids=DEGENERATE.keys())
def test_degenerate_rings_are_oriented_as_gdal_orients_them(tmp_path: Path, ring) -> None:
    shell = [(-20, -20), (20, -20), (20, 20), (-20, 20), (-20, -20)]
    wkb = [feature_wkb([[ring]], multi=False), feature_wkb([[ring[::-1]]], multi=True),
           feature_wkb([[shell, ring], [shell[::-1], ring[::-1]]], multi=True)]
    enc = layer(wkb, [1, 2, 3], [1.0] * 3, ["a"] * 3)
    gdal, native = gdal_and_native(tmp_path, [enc], "UTF-8")
    assert native == gdal


def test_the_sign_of_zero_bounds_follows_the_written_order(tmp_path: Path) -> None:
    # shapelib keeps the last of equal minima in the order it writes: this shell is
    # reversed, so its box's xmin is the +0.0 of its first vertex, not the -0.0 of its last
    shell = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (-0.0, 1.0), (-0.0, 0.0)]
    hole = [(0.25, 0.25), (0.25, -0.0), (0.75, 0.0), (0.75, 0.75), (0.25, 0.25)]
    wkb = [feature_wkb([[shell, hole]], multi=True), feature_wkb([[shell[::-1]]], multi=False),
           feature_wkb([[[(-0.0, -0.0), (0.0, 1.0), (1.0, 0.0), (-0.0, -0.0)]]], multi=True)]
    enc = layer(wkb, [1, 2, 3], [1.0] * 3, ["a"] * 3)
    for chunks in ([enc], list(split(enc, [1])), list(split(enc, [2]))):
        gdal, native = gdal_and_native(tmp_path, chunks, "UTF-8")
        assert native == gdal


def test_attribute_formats(tmp_path: Path) -> None:
    # integers, reals cut to the field and their nulls; text cut at NUL, empty, null
    ids = [0, -1, 10**17 - 1, -(10**16) + 1, 42]
    areas = [np.nan, -0.0, 123456789.0, 1e-20, -99999999.123456789]
    names = ["a\x00b", "", None, "城镇开发边界", "x" * 80]
    enc = layer([shapely.to_wkb(shapely.box(0, 0, 1, 1))] * 5, ids, areas, names)
    gdal, native = gdal_and_native(tmp_path, [enc], "GBK")
    assert native == gdal
    values = [np.array([1, 2], dtype=np.int32), np.array([0.5, np.nan], dtype=np.float32),
              np.array([True, False])]
    other = Encoded(wkb=enc.wkb[:2], fields=["i32", "f32", "flag"], values=values,
                    masks=[None, np.array([True, False]), None], crs=CRS)
    gdal, native = gdal_and_native(tmp_path, [other], "UTF-8")
    assert native == gdal


# ---------------------------------------------------------------- what GDAL writes otherwise


@pytest.mark.parametrize(("edit", "warns"), [
    (lambda ids, areas, names: names.__setitem__(1, "x" * 81), False),  # GDAL widens the field
    (lambda ids, areas, names: ids.__setitem__(1, 10**18), False),  # 19 digits: widened too
    (lambda ids, areas, names: areas.__setitem__(1, 1e30), True),  # cut: GDAL warns
    (lambda ids, areas, names: names.__setitem__(1, "€"), False),  # not in Python's GBK
])
def test_what_the_writer_does_not_reproduce_is_left_to_gdal(tmp_path: Path, edit, warns
                                                           ) -> None:
    ids, areas, names = [1, 2, 3], [1.0, 2.0, 3.0], ["a", "b", "c"]
    edit(ids, areas, names)
    enc = layer([shapely.to_wkb(shapely.box(0, 0, 1, 1))] * 3, ids, areas, names)
    with vector_env(), fresh(tmp_path, "x") as path:
        gdal_create(path, enc, "GBK")
        before = files(path)
        with pytest.raises(NotNative):
            shapefile.append(path, enc.wkb, enc.fields, enc.values, enc.masks)
        assert files(path) == before  # nothing written
        with pytest.warns(RuntimeWarning) if warns else nullcontext():
            enc.write_shapefile(path, "GBK")
        written = files(path)
    with vector_env(), fresh(tmp_path, "y") as path, \
            (pytest.warns(RuntimeWarning) if warns else nullcontext()):
        gdal_create(path, enc, "GBK")
        gdal_append(path, enc, "GBK")
        assert undated(written) == undated(files(path))
    assert written["dbf"][1:4] == shapefile.date_bytes(pd.Timestamp(FIXED_DATE).date())


def test_a_value_gdal_would_widen_after_a_first_block_undoes_the_writes(tmp_path: Path,
                                                                        monkeypatch) -> None:
    monkeypatch.setattr(shapefile, "DBF_BYTES", 1)  # a block per feature
    names = ["a"] * 5 + ["x" * 90]
    enc = layer([shapely.to_wkb(shapely.box(0, 0, 1, 1))] * 6, list(range(6)), [1.0] * 6, names)
    with vector_env(), fresh(tmp_path, "x") as path:
        gdal_create(path, enc, "UTF-8")
        gdal_append(path, next(split(enc, [2])), "UTF-8")
        before = files(path)
        with pytest.raises(NotNative, match="wider than the field"):
            shapefile.append(path, enc.wkb, enc.fields, enc.values, enc.masks)
        assert files(path) == before


@pytest.mark.parametrize("wkb", [
    struct.pack(">BII", 0, 3, 0),  # big-endian
    struct.pack("<BII", 1, 1003, 0),  # ISO 3D polygon
    struct.pack("<BI", 1, 1) + struct.pack("<dd", 1, 2),  # a point
    polygon_wkb([[(0, 0), (np.inf, 0), (1, 1), (0, 0)]]),  # GDAL refuses it
    polygon_wkb([[(0, 0), (np.nan, 0), (1, 1), (0, 0)]]),
    polygon_wkb([[(0, 0), (1, 0)]])[:-3],  # cut short
])
def test_geometries_gdal_refuses_or_writes_otherwise_are_not_native(tmp_path: Path, wkb) -> None:
    enc = layer([shapely.to_wkb(shapely.box(0, 0, 1, 1)), wkb], [1, 2], [1.0, 2.0], ["a", "b"])
    with fresh(tmp_path, "x") as path:
        gdal_create(path, enc, "UTF-8")
        before = files(path)
        with pytest.raises(NotNative):
            shapefile.append(path, enc.wkb, enc.fields, enc.values, enc.masks)
        assert files(path) == before


def test_gdal_settings_that_change_the_writer_leave_it_to_gdal(tmp_path: Path,
                                                               monkeypatch) -> None:
    enc = layer([shapely.to_wkb(shapely.box(0, 0, 1, 1))], [1], [1.0], ["a"])
    with fresh(tmp_path, "x") as path:
        gdal_create(path, enc, "UTF-8")
        monkeypatch.setenv("SHAPE_REWIND_ON_WRITE", "YES")
        with pytest.raises(NotNative, match="SHAPE_REWIND_ON_WRITE"):
            shapefile.append(path, enc.wkb, enc.fields, enc.values, enc.masks)


# ---------------------------------------------------------------- through sanqu.export


def old_write_vectors(out: Path, layers: dict[str, gpd.GeoDataFrame], shapefiles: list[str],
                      encoding: str) -> None:
    """The shapefiles as :func:`sanqu.export.write_vectors` wrote them with GDAL alone."""
    with vector_env():
        for name, df in layers.items():
            if name not in shapefiles:
                continue
            for k, enc in enumerate(Encoded.chunks(df)):
                more = {"append": True} if k else {}
                enc.write(out / f"{name}.shp", driver="ESRI Shapefile", encoding=encoding,
                          layer_options={"DBF_DATE_LAST_UPDATE": FIXED_DATE}, **more)


def demo_layers() -> dict[str, gpd.GeoDataFrame]:
    rng = np.random.default_rng(3)
    out = {}
    for name, count in (("red_line", 40), ("farmland", 1), ("empty", 0)):
        boxes = [shapely.box(x, y, x + 30 * w, y + 30 * h) for x, y, w, h in
                 zip(39_540_000 + 30 * rng.integers(0, 300, count),
                     3_540_000 + 30 * rng.integers(0, 300, count),
                     rng.integers(1, 9, count), rng.integers(1, 9, count), strict=True)]
        geoms = [shapely.MultiPolygon(shapely.get_parts(g).tolist()) for g in
                 shapely.get_parts(shapely.union_all(boxes))] if boxes else []
        out[name] = gpd.GeoDataFrame(
            {"id": np.arange(1, len(geoms) + 1, dtype=np.int64),
             "code": np.ones(len(geoms), dtype=np.int64),
             "name": pd.Series(["生态保护红线"] * len(geoms), dtype="str"),
             "area_ha": np.round(shapely.area(np.array(geoms, dtype=object)) / 1e4, 4)
             if geoms else np.zeros(0)},
            geometry=gpd.GeoSeries(np.array(geoms, dtype=object), crs=CRS))
    return out


@pytest.mark.parametrize("vertices", [4_000_000, 300])
@pytest.mark.parametrize("encoding", ["UTF-8", "GBK"])
def test_write_vectors_writes_the_shapefiles_gdal_wrote(tmp_path: Path, monkeypatch,
                                                        vertices: int, encoding: str) -> None:
    monkeypatch.setattr(export, "WRITE_VERTICES", vertices)  # 300: several chunks, appended
    layers = demo_layers()
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old_write_vectors(tmp_path / "old", layers, list(layers), encoding)
    export.write_vectors(tmp_path / "new", layers, "x.gpkg", list(layers), encoding)
    for name in layers:
        old, new = files(tmp_path / "old" / f"{name}.shp"), files(tmp_path / "new" / f"{name}.shp")
        for ext in ("cpg", "prj"):
            assert (tmp_path / "old" / f"{name}.{ext}").read_bytes() == \
                (tmp_path / "new" / f"{name}.{ext}").read_bytes()
        # appended chunks: GDAL stamped today into the DBF header, the writer FIXED_DATE
        assert undated(new) == undated(old), name
        assert new["dbf"][1:4] == bytes([100, 1, 1])
        if len(list(Encoded.chunks(layers[name]))) == 1:
            assert new == old


@pytest.mark.parametrize("encoding", ["UTF-8", "GBK"])
def test_schema_layers_are_the_shapefiles_gdal_wrote(tmp_path: Path, monkeypatch,
                                                     encoding: str) -> None:
    monkeypatch.setattr(export, "WRITE_VERTICES", 200)
    df = demo_layers()["red_line"].rename(columns={"name": "XZQMC", "area_ha": "MJ"})
    df["BSM"] = pd.Series([f"3401220100000{i:05d}" for i in range(len(df))], dtype="str")
    df["BZ"] = pd.Series([""] * len(df), dtype="str")
    fields = [Field("BSM", "str", 18), Field("XZQMC", "str", 100), Field("MJ", "float", 18, 4),
              Field("BZ", "str", 255), Field("id", "int", 10)]
    with vector_env():
        write_schema_layer(tmp_path / "x.gpkg", "x", df, fields, shapefile=tmp_path / "new.shp",
                           encoding=encoding)
        # as before: fiona creates the layer, GDAL appends the features
        export._create_schema_layer(tmp_path / "old.shp", "x", df, fields, encoding)
        for chunk in Encoded.chunks(df, [f.name for f in fields]):
            chunk.write(tmp_path / "old.shp", append=True, encoding=encoding)
    new, old = files(tmp_path / "new.shp"), files(tmp_path / "old.shp")
    assert undated(new) == undated(old)
    assert new["dbf"][1:4] == bytes([100, 1, 1])


# ---------------------------------------------------------------- read back


def test_read_back_by_pyogrio_and_ogrinfo(tmp_path: Path, require_tool: Callable[[str], str]
                                          ) -> None:
    layers = demo_layers()
    export.write_vectors(tmp_path, layers, "x.gpkg", ["red_line"], "GBK")
    back = pyogrio.read_dataframe(tmp_path / "red_line.shp")
    df = layers["red_line"]
    assert back["name"].tolist() == df["name"].tolist()
    assert back["id"].tolist() == df["id"].tolist()
    np.testing.assert_array_equal(back["area_ha"], df["area_ha"])
    assert shapely.equals(back.geometry.values, df.geometry.values).all()
    exe = require_tool("ogrinfo")
    text = subprocess.run([exe, "-ro", "-al", "-so", str(tmp_path / "red_line.shp")],
                          capture_output=True, check=True, timeout=60).stdout.decode()
    assert f"Feature Count: {len(df)}" in text
    assert "Geometry: Polygon" in text
    xmin, ymin, xmax, ymax = df.total_bounds
    assert f"Extent: ({xmin:.6f}, {ymin:.6f}) - ({xmax:.6f}, {ymax:.6f})" in text
