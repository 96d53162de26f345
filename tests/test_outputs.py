"""The files of a demo run: geometry, areas, determinism, and read-back by GDAL's own tools."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import re
import subprocess
import weakref
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS

import sanqu
from sanqu import default_config_path, export, load_config
from sanqu.export import Encoded, vector_env
from sanqu.planning_db import Field

SPACES = ("eco_space", "agri_space", "urban_space")
LINES = ("red_line", "farmland", "ugb")
LAYERS = SPACES + LINES
SPACE_NAMES = {"eco_space": "生态空间", "agri_space": "农业空间", "urban_space": "城镇空间"}
LINE_NAMES = {"red_line": "生态保护红线", "farmland": "永久基本农田", "ugb": "城镇开发边界"}
SPACE_CODES = {"eco_space": 1, "agri_space": 2, "urban_space": 3}
ZONE_COLOURS = {1: (56, 168, 0, 255), 2: (255, 211, 127, 255), 3: (230, 76, 0, 255)}
FIELDS = ["id", "code", "name", "area_ha"]
#: The growth boundary's polygons also name their sub-zone (规划分区).
UGB_FIELDS = [*FIELDS, "zone", "zone_name"]


def fields(layer: str) -> list[str]:
    return UGB_FIELDS if layer == "ugb" else FIELDS

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def out(demo_run: sanqu.RunResult) -> Path:
    return Path(demo_run.out)


@pytest.fixture(scope="module")
def layers(out: Path) -> dict[str, gpd.GeoDataFrame]:
    return {
        name: gpd.read_file(out / "sanqu.gpkg", layer=name, engine="pyogrio") for name in LAYERS
    }


@pytest.fixture(scope="module")
def areas(out: Path) -> dict[str, dict[str, str]]:
    with (out / "areas.csv").open(encoding="utf-8-sig", newline="") as fh:
        return {row["layer"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def cell_area(out: Path) -> float:
    with rasterio.open(out / "zones.tif") as ds:
        return abs(ds.transform.a * ds.transform.e)


def run_tool(require_tool: Callable[[str], str], name: str, *args: str | Path) -> str:
    exe = require_tool(name)
    proc = subprocess.run([exe, *map(str, args)], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return proc.stdout.decode("utf-8")


def union(df: gpd.GeoDataFrame) -> shapely.Geometry:
    return shapely.union_all(df.geometry.values)


# ---------------------------------------------------------------- vectors


def test_gpkg_has_the_six_layers(out: Path) -> None:
    names = [name for name, _ in pyogrio.list_layers(out / "sanqu.gpkg")]
    assert sorted(names) == sorted([*LAYERS, "layer_styles"])  # + the QGIS styles table


@pytest.mark.parametrize("name", LAYERS)
def test_every_polygon_is_valid(layers: dict[str, gpd.GeoDataFrame], name: str) -> None:
    df = layers[name]
    assert len(df) > 0
    geoms = df.geometry.values
    invalid = ~shapely.is_valid(geoms)
    assert not invalid.any(), [shapely.is_valid_reason(g) for g in geoms[invalid]][:5]
    assert set(df.geom_type) <= {"Polygon", "MultiPolygon"}
    assert not shapely.is_empty(geoms).any()


@pytest.mark.parametrize("name", LAYERS)
def test_layer_fields(layers: dict[str, gpd.GeoDataFrame], name: str) -> None:
    df = layers[name]
    assert [c for c in df.columns if c != "geometry"] == fields(name)
    assert df["id"].tolist() == list(range(1, len(df) + 1))
    expected_name = {**SPACE_NAMES, **LINE_NAMES}[name]
    assert set(df["name"]) == {expected_name}
    if name in SPACE_CODES:
        assert set(df["code"]) == {SPACE_CODES[name]}
    np.testing.assert_allclose(df["area_ha"], df.geometry.area / 10_000, rtol=1e-9)


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(LINES, 2)))
def test_lines_do_not_overlap(layers: dict[str, gpd.GeoDataFrame], a: str, b: str) -> None:
    assert shapely.intersection(union(layers[a]), union(layers[b])).area == 0.0


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(SPACES, 2)))
def test_spaces_do_not_overlap(layers: dict[str, gpd.GeoDataFrame], a: str, b: str) -> None:
    assert shapely.intersection(union(layers[a]), union(layers[b])).area == 0.0


@pytest.mark.parametrize(("line", "space"), list(zip(LINES, SPACES, strict=True)))
def test_each_line_lies_in_its_space(
    layers: dict[str, gpd.GeoDataFrame], line: str, space: str
) -> None:
    outside = shapely.difference(union(layers[line]), union(layers[space]))
    assert outside.area == 0.0


def test_spaces_cover_the_study_area(
    layers: dict[str, gpd.GeoDataFrame], areas: dict[str, dict[str, str]]
) -> None:
    study = float(areas["study_area"]["area_ha"])
    total = sum(layers[s].geometry.area.sum() for s in SPACES) / 10_000
    assert total == pytest.approx(study, rel=1e-3)
    assert sum(float(areas[s]["area_ha"]) for s in SPACES) == pytest.approx(study, rel=1e-3)


@pytest.mark.parametrize("name", LAYERS)
def test_raster_and_vector_areas_agree(
    layers: dict[str, gpd.GeoDataFrame], areas: dict[str, dict[str, str]], name: str
) -> None:
    row = areas[name]
    raster_ha = float(row["area_ha"])
    vector_ha = layers[name].geometry.area.sum() / 10_000
    # the sample keeps cell edges (smoothing.tolerance: 0): the issue asks for 0.5 %
    assert vector_ha == pytest.approx(raster_ha, rel=5e-3)
    assert float(row["vector_area_ha"]) == pytest.approx(vector_ha, rel=1e-6, abs=1e-3)
    assert int(row["polygons"]) == len(layers[name])


def test_result_areas_match_areas_csv(
    demo_run: sanqu.RunResult, areas: dict[str, dict[str, str]]
) -> None:
    assert [row["layer"] for row in demo_run.areas] == list(areas)
    for row in demo_run.areas:
        assert float(areas[str(row["layer"])]["area_ha"]) == pytest.approx(row["area_ha"])


# ---------------------------------------------------------------- rasters


def test_zones_values_and_cell_counts(
    out: Path, areas: dict[str, dict[str, str]], cell_area: float
) -> None:
    with rasterio.open(out / "zones.tif") as ds:
        zones = ds.read(1)
        assert ds.dtypes[0] == "uint8" and ds.nodata == 0
    assert set(np.unique(zones).tolist()) <= {0, 1, 2, 3}
    counts = np.bincount(zones.ravel(), minlength=4)
    for name, code in SPACE_CODES.items():
        assert int(counts[code]) == int(areas[name]["cells"])
        assert counts[code] * cell_area / 10_000 == pytest.approx(
            float(areas[name]["area_ha"]), abs=1e-3
        )
    assert int(counts[1:].sum()) == int(areas["study_area"]["cells"])


def test_evaluation_rasters_hold_three_levels(out: Path) -> None:
    with rasterio.open(out / "zones.tif") as ds:
        inside = ds.read(1) > 0
    for name in ("eco_importance", "agri_suitability", "urban_suitability"):
        with rasterio.open(out / f"{name}.tif") as ds:
            levels = ds.read(1)
        assert set(np.unique(levels[inside]).tolist()) <= {1, 2, 3}, name
        assert not levels[~inside].any(), name


def test_two_runs_give_byte_identical_geotiffs(
    out: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    again = tmp_path_factory.mktemp("again") / "out"
    sanqu.delineate(load_config(default_config_path()), again)
    tifs = sorted(p.name for p in out.glob("*.tif"))
    assert tifs == sorted(p.name for p in again.glob("*.tif"))
    assert len(tifs) == 7
    for name in tifs:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    # the vector files, tables, styles, project and manifest are reproducible too
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(again)) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_block_size_does_not_change_the_rasters(
    out: Path, tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    cfg = write_config(
        tmp_path / "small_blocks.yaml", lambda d: d["grid"].__setitem__("block_size", 64)
    )
    small = tmp_path / "out"
    sanqu.delineate(load_config(cfg), small)
    for tif in sorted(out.glob("*.tif")):
        assert tif.read_bytes() == (small / tif.name).read_bytes(), tif.name


def test_out_folder_permissions_follow_umask(out: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask


# ---------------------------------------------------------------- shapefiles and manifest


@pytest.mark.parametrize("name", LINES)
def test_shapefile_cpg_is_utf8(out: Path, name: str) -> None:
    assert (out / f"{name}.cpg").read_text(encoding="ascii").strip().upper() in {"UTF-8", "UTF8"}
    for ext in ("shp", "shx", "dbf", "prj"):
        assert (out / f"{name}.{ext}").is_file()


@pytest.mark.parametrize("name", LINES)
def test_shapefile_matches_gpkg(out: Path, layers: dict[str, gpd.GeoDataFrame], name: str) -> None:
    shp = gpd.read_file(out / f"{name}.shp", engine="pyogrio")
    assert [c for c in shp.columns if c != "geometry"] == fields(name)
    assert set(shp["name"]) == {LINE_NAMES[name]}
    assert len(shp) == len(layers[name])
    assert shp.geometry.area.sum() == pytest.approx(layers[name].geometry.area.sum(), rel=1e-9)


@pytest.mark.parametrize("rows", [3, 0])
def test_encoded_layer_writes_what_write_dataframe_writes(tmp_path: Path, rows: int) -> None:
    square = shapely.box(0, 0, 30, 30)
    geoms = [square, shapely.MultiPolygon([shapely.box(60, 0, 90, 30), square]), square][:rows]
    df = gpd.GeoDataFrame(
        {"id": np.arange(1, rows + 1, dtype=np.int64), "area_ha": np.full(rows, 0.09),
         "name": pd.Series(["生态空间", None, "b"][:rows], dtype="str")},
        geometry=gpd.GeoSeries(geoms, crs="EPSG:4527"))
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    with vector_env():
        for name, options in (("x.gpkg", {"layer": "x", "driver": "GPKG"}),
                              ("x.shp", {"driver": "ESRI Shapefile", "encoding": "GBK"})):
            pyogrio.write_dataframe(df, tmp_path / "a" / name, promote_to_multi=True, **options)
            Encoded.of(df).write(tmp_path / "b" / name, **options)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_layers_written_in_chunks_read_back_whole(tmp_path: Path, layers, monkeypatch) -> None:
    # the demo's layers again, a few vertices at a time: the same features, in order
    monkeypatch.setattr(export, "WRITE_VERTICES", 50)
    assert len(list(Encoded.chunks(layers["eco_space"]))) > 3
    export.write_vectors(tmp_path, layers, "chunked.gpkg", ["red_line"], "UTF-8")
    written = {"eco_space": [tmp_path / "chunked.gpkg"],
               "red_line": [tmp_path / "chunked.gpkg", tmp_path / "red_line.shp"]}
    for name, paths in written.items():
        for path in paths:
            again = gpd.read_file(path, layer=name if path.suffix == ".gpkg" else None)
            pd.testing.assert_frame_equal(again.drop(columns="geometry"),
                                          layers[name].drop(columns="geometry"), check_dtype=False)
            assert shapely.equals(again.geometry.values, layers[name].geometry.values).all()


def test_a_layer_written_with_release_drops_its_geometries(tmp_path: Path, layers,
                                                           monkeypatch) -> None:
    monkeypatch.setattr(export, "WRITE_VERTICES", 50)
    df = layers["red_line"].copy()
    expected = df.geometry.values.copy()
    fields = [Field("id", "int", 10), Field("code", "int", 4), Field("area_ha", "float", 18, 4)]
    export.write_schema_layer(tmp_path / "x.gpkg", "red", df, fields, release=True)
    assert df.geometry.isna().all()  # dropped as written
    again = gpd.read_file(tmp_path / "x.gpkg", layer="red")
    assert shapely.equals(again.geometry.values, expected).all()


def test_a_chunk_is_let_go_before_the_next_is_encoded(tmp_path: Path, layers,
                                                      monkeypatch) -> None:
    # an evaluation level's chunk is hundreds of MB of WKB: the writers hold one, not two
    monkeypatch.setattr(export, "WRITE_VERTICES", 50)
    encode = Encoded.of.__func__
    last: list[weakref.ref] = []
    held: list[bool] = []

    def watched(cls: type, *args: object, **kwargs: object) -> Encoded:
        held.extend(ref() is not None for ref in last)  # the chunk before, still held?
        chunk = encode(cls, *args, **kwargs)
        last[:] = [weakref.ref(chunk)]
        return chunk

    monkeypatch.setattr(Encoded, "of", classmethod(watched))
    export.write_vectors(tmp_path, {"eco_space": layers["eco_space"]}, "x.gpkg", ["eco_space"],
                         "UTF-8")
    fields = [Field("id", "int", 10), Field("code", "int", 4), Field("area_ha", "float", 18, 4)]
    last.clear()
    export.write_schema_layer(tmp_path / "y.gpkg", "eco", layers["eco_space"], fields,
                              shapefile=tmp_path / "y.shp")
    assert len(held) > 6 and not any(held)


def test_manifest_records_inputs_and_versions(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    cfg = load_config(default_config_path())
    assert set(manifest["inputs"]) == set(cfg.present_inputs) == {"dem", "landuse"}
    assert set(manifest["absent_inputs"]) == set(cfg.inputs) - {"dem", "landuse"}
    for key, spec in cfg.present_inputs.items():
        entry = manifest["inputs"][key]
        assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
        assert entry["sha256"] == hashlib.sha256(spec.path.read_bytes()).hexdigest()
        assert Path(entry["path"]) == spec.path
    versions = manifest["versions"]
    assert versions["sanqu"] == sanqu.__version__
    for pkg in (
        "numpy",
        "scipy",
        "rasterio",
        "pyproj",
        "shapely",
        "geopandas",
        "pyogrio",
        "pydantic",
        "click",
        "pyyaml",
        "gdal",
    ):
        assert re.match(r"\d+\.\d+", versions.get(pkg, "")), (pkg, versions.get(pkg))
    assert manifest["sanqu"] == sanqu.__version__


# ---------------------------------------------------------------- GDAL command-line read-back


@pytest.fixture(scope="module")
def zones_info(out: Path, require_tool: Callable[[str], str]) -> dict:
    return json.loads(run_tool(require_tool, "gdalinfo", "-json", out / "zones.tif"))


def test_gdalinfo_crs_is_cgcs2000_gk_zone_39(zones_info: dict) -> None:
    wkt = zones_info["coordinateSystem"]["wkt"]
    assert "CGCS2000 / 3-degree Gauss-Kruger zone 39" in wkt
    crs = CRS.from_wkt(wkt)
    assert crs.is_projected
    assert crs.ellipsoid.name == "CGCS2000"
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    assert params["Longitude of natural origin"] == 117
    assert params["False easting"] == 39_500_000
    assert params["Scale factor at natural origin"] == 1
    assert crs.to_epsg(min_confidence=20) == 4527


def test_gdalinfo_crs_carries_epsg_4527_id(zones_info: dict) -> None:
    wkt = zones_info["coordinateSystem"]["wkt"]
    assert re.search(r'ID\["EPSG",4527\]\]\s*$', wkt), wkt[-200:]


def test_vector_crs_is_epsg_4527(out: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    for df in layers.values():
        assert df.crs.to_epsg() == 4527
    for name in LINES:
        assert gpd.read_file(out / f"{name}.shp", engine="pyogrio").crs.to_epsg() == 4527


def test_gdalinfo_colour_table_nodata_compression(zones_info: dict) -> None:
    (band,) = zones_info["bands"]
    assert band["type"] == "Byte"
    assert band["noDataValue"] == 0
    assert band["colorInterpretation"] == "Palette"
    entries = band["colorTable"]["entries"]
    for value, rgba in ZONE_COLOURS.items():
        assert tuple(entries[value]) == rgba
    assert entries[0][3] == 0
    assert zones_info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"] == "DEFLATE"


def test_gdalinfo_block_is_256_tiles(zones_info: dict) -> None:
    assert zones_info["bands"][0]["block"] == [256, 256]


def parse_ogrinfo_summary(text: str) -> dict[str, dict[str, object]]:
    """Layers of ``ogrinfo -al -so`` output: feature count and field names."""
    found: dict[str, dict[str, object]] = {}
    current: dict[str, object] | None = None
    for line in text.splitlines():
        if line.startswith("Layer name: "):
            current = {"count": None, "fields": []}
            found[line.removeprefix("Layer name: ").strip()] = current
        elif current is not None and line.startswith("Feature Count: "):
            current["count"] = int(line.removeprefix("Feature Count: "))
        elif current is not None and (m := re.match(r"^(\w+): (\w+) \(", line)):
            current["fields"].append(m.group(1))  # type: ignore[union-attr]
    return found


def test_ogrinfo_lists_gpkg_layers(
    out: Path, layers: dict[str, gpd.GeoDataFrame], require_tool: Callable[[str], str]
) -> None:
    text = run_tool(require_tool, "ogrinfo", "-ro", "-al", "-so", out / "sanqu.gpkg")
    summary = parse_ogrinfo_summary(text)
    summary.pop("layer_styles")  # the QGIS styles table, registered as attributes
    assert sorted(summary) == sorted(LAYERS)
    for name, info in summary.items():
        assert info["count"] == len(layers[name]), name
        assert info["fields"] == fields(name), name


@pytest.mark.parametrize("name", LINES)
def test_ogrinfo_reads_chinese_names_from_shapefile(
    out: Path, name: str, require_tool: Callable[[str], str]
) -> None:
    text = run_tool(require_tool, "ogrinfo", "-ro", "-al", "-geom=NO", out / f"{name}.shp")
    values = re.findall(r"^\s+name \(String\) = (.*)$", text, flags=re.MULTILINE)
    count = int(re.search(r"^Feature Count: (\d+)$", text, flags=re.MULTILINE).group(1))
    assert count > 0
    assert values == [LINE_NAMES[name]] * count


def test_without_smoothing_polygons_keep_the_cell_areas(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    cfg = write_config(tmp_path / "cells.yaml",
                       lambda d: d["outputs"].update(smoothing={"tolerance": 0}))
    result = sanqu.delineate(load_config(cfg), tmp_path / "out")
    for row in result.areas:
        assert float(row["vector_area_ha"]) == pytest.approx(float(row["area_ha"]), abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3), st.integers(1, 12), st.integers(1, 12))
def test_layer_cells_count_as_numpy_does(seed, n_units, height, width):
    """The area tables' counts (one pass) against a count of each layer with numpy."""
    from types import SimpleNamespace

    from sanqu.pipeline import AREA_LAYERS, layer_cells

    rng = np.random.default_rng(seed)
    mask = rng.random((height, width)) < 0.8
    unit = rng.integers(0, n_units + 1, (height, width)).astype(np.uint16)
    zones = (rng.integers(0, 4, (height, width)) * mask).astype(np.uint8)
    red, farm, ugb = (rng.random((height, width)) < 0.3 for _ in range(3))
    s = SimpleNamespace(unit_codes=tuple(f"u{k}" for k in range(n_units)), unit=unit, mask=mask)
    lines = SimpleNamespace(red_line=red, farmland=farm, ugb=ugb)
    total, by_unit = layer_cells(s, lines, SimpleNamespace(zones=zones))
    layers = [mask, zones == 1, zones == 2, zones == 3, red, farm, ugb]
    assert len(layers) == len(AREA_LAYERS)
    assert total.tolist() == [int(np.count_nonzero(a)) for a in layers]
    where = unit if n_units else np.zeros_like(unit)
    for k, a in enumerate(layers):
        assert by_unit[k].tolist() == np.bincount(where[a & mask], minlength=n_units + 1).tolist()
