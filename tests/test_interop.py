"""Every exported layer opened by other software: GDAL's ogrinfo, QGIS, pyogrio and fiona.

ogrinfo and QGIS (``qgis_process.bin`` headless) skip locally when missing and must
run in CI (``SANQU_REQUIRE_TOOLS=1``). Each layer is checked for its CRS (EPSG code),
feature count, field names and Chinese values; QGIS's validity check must find no
invalid geometry; the three Python/GDAL readers must agree on every attribute and on
the areas (within 0.01 %).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import fiona
import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
import shapely.geometry

import sanqu
from sanqu import export, load_config
from sanqu.config import default_config_path

pytestmark = pytest.mark.slow

PLAIN = ("eco_space", "agri_space", "urban_space", "red_line", "farmland", "ugb")
PLANNING = ("STBHHX", "YJJBNT", "CZKFBJ", "STBHZYXPJJG", "NYSCSYXPJJG", "CZJSSYXPJJG")
CHINESE = {"name": None, "XZQMC": None, "GHFQMC": None, "PJDJ": None}  # fields with Chinese text


def layer_sources(out: Path) -> list[tuple[str, Path, str | None]]:
    """(label, file, layer) of every vector layer of a run."""
    found: list[tuple[str, Path, str | None]] = []
    found += [(f"sanqu.gpkg:{n}", out / "sanqu.gpkg", n) for n in PLAIN]
    found += [(f"{n}.shp", out / f"{n}.shp", None) for n in PLAIN[3:]]
    found += [(f"planning_db.gpkg:{n}", out / "planning_db.gpkg", n) for n in PLANNING]
    found += [(f"planning_db/{n}.shp", out / "planning_db" / f"{n}.shp", None) for n in PLANNING]
    return found


SOURCES = [s[0] for s in layer_sources(Path("."))]


@pytest.fixture(scope="module")
def out(demo_run: sanqu.RunResult) -> Path:
    return Path(demo_run.out)


def source(out: Path, label: str) -> tuple[Path, str | None]:
    return next((p, lyr) for lab, p, lyr in layer_sources(out) if lab == label)


def read_pyogrio(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    return gpd.read_file(path, layer=layer, engine="pyogrio")


def read_fiona(path: Path, layer: str | None) -> tuple[list[dict], np.ndarray, str]:
    with fiona.open(path, layer=layer) as src:
        rows = [dict(f.properties) for f in src]
        src_crs = src.crs.to_string()
    with fiona.open(path, layer=layer) as src:
        geoms = np.array([shapely.geometry.shape(f.geometry) for f in src], dtype=object)
    return rows, geoms, src_crs


def ogrinfo(require_tool: Callable[..., str], *args: str | Path) -> str:
    exe = require_tool("ogrinfo")
    proc = subprocess.run([exe, *map(str, args)], capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return proc.stdout.decode("utf-8")


def qgis(require_tool: Callable[..., str], *args: str | Path) -> dict:
    """Run ``qgis_process.bin --json`` headless; its parsed JSON answer."""
    exe = require_tool("qgis_process.bin", "qgis")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([exe, "--json", *map(str, args)], capture_output=True, timeout=300,
                          check=False, env=env)
    assert proc.returncode == 0, proc.stdout.decode("utf-8", "replace")[-2000:]
    return json.loads(proc.stdout.decode("utf-8"))


def qgis_source(path: Path, layer: str | None) -> str:
    return f"{path}|layername={layer}" if layer else str(path)


def expected_epsg(out: Path) -> int:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return int(manifest["vectors"]["crs"].removeprefix("EPSG:"))


# ---------------------------------------------------------------- GDAL's GeoPackage validator

#: GDAL's validator of the GeoPackage specification (Debian's python3-gdal).
VALIDATOR = "osgeo_utils.samples.validate_gpkg"


@pytest.fixture(scope="module")
def native_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo delineated with every GeoPackage chunk appended natively (:mod:`sanqu.gpkg`)."""
    out = tmp_path_factory.mktemp("native") / "out"
    appended: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export, "NATIVE_GPKG_BYTES", 0)
        mp.setattr(export, "append_gpkg",
                   lambda *a, append=export.append_gpkg: append(*a) or appended.append(a[1]))
        sanqu.delineate(load_config(default_config_path()), out)
    assert sorted(appended) == sorted([*PLAIN, *PLANNING])  # each layer natively, none by GDAL
    return out


@pytest.mark.parametrize("name", ["sanqu.gpkg", "planning_db.gpkg"])
@pytest.mark.parametrize("writer", ["demo", "native"])
def test_geopackages_pass_gdals_validator(out, native_out, name, writer):
    python = "/usr/bin/python3"
    found = subprocess.run([python, "-c", f"import {VALIDATOR}"], capture_output=True,
                           check=False) if Path(python).exists() else None
    if found is None or found.returncode:
        reason = f"GDAL's GeoPackage validator ({VALIDATOR}) not found (install python3-gdal)"
        if os.environ.get("SANQU_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{reason}; SANQU_REQUIRE_TOOLS=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    path = (out if writer == "demo" else native_out) / name
    proc = subprocess.run([python, "-m", VALIDATOR, str(path)], capture_output=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-2000:]


@pytest.mark.parametrize("name", ["sanqu.gpkg", "planning_db.gpkg"])
def test_natively_appended_geopackages_hold_gdals_rows(out, native_out, name, require_tool):
    """Rows (fid, geometry blob, fields) and R-tree entries as GDAL wrote them; ogrinfo reads."""
    assert (pyogrio.list_layers(native_out / name)[:, 0].tolist()
            == pyogrio.list_layers(out / name)[:, 0].tolist())
    gdal, native = sqlite3.connect(out / name), sqlite3.connect(native_out / name)
    layers = [r[0] for r in gdal.execute("SELECT table_name FROM gpkg_geometry_columns")]
    assert layers
    for layer in layers:
        # by name: a layer filled natively has its geometry column last (sanqu.gpkg)
        columns = ", ".join(f'"{r[1]}"' for r in gdal.execute(f'PRAGMA table_info("{layer}")'))
        for query in (f'SELECT {columns} FROM "{layer}" ORDER BY fid',
                      f'SELECT * FROM "rtree_{layer}_geom" ORDER BY id'):
            assert native.execute(query).fetchall() == gdal.execute(query).fetchall(), query
        summary = ogrinfo(require_tool, "-ro", "-so", native_out / name, layer)
        count, = gdal.execute(f'SELECT count(*) FROM "{layer}"').fetchone()
        assert f"Feature Count: {count}" in summary, layer
    gdal.close()
    native.close()


# ---------------------------------------------------------------- GDAL's ogrinfo


@pytest.mark.parametrize("label", SOURCES)
def test_ogrinfo_reads_crs_count_fields_and_chinese_values(out, label, require_tool):
    path, layer = source(out, label)
    df = read_pyogrio(path, layer)
    summary = ogrinfo(require_tool, "-ro", "-so", path, layer or path.stem)
    wkt = summary.split("Layer SRS WKT:\n")[1].split("\nData axis")[0]
    assert wkt.rstrip().endswith(f'ID["EPSG",{expected_epsg(out)}]]'), wkt[-200:]
    assert int(re.search(r"^Feature Count: (\d+)$", summary, re.M).group(1)) == len(df)
    fields = re.findall(r"^(\w+): (?:String|Real|Integer64|Integer) ", summary, re.M)
    assert fields == [c for c in df.columns if c != "geometry"]
    text = ogrinfo(require_tool, "-ro", "-al", "-geom=NO", path, layer or path.stem)
    for name in (c for c in df.columns if c in CHINESE):
        values = re.findall(rf"^\s+{name} \(String\) = (.*)$", text, re.M)
        assert values == df[name].tolist(), name
        assert any(re.search(r"[\u4e00-\u9fff]", v) for v in values), name


# ---------------------------------------------------------------- QGIS


@pytest.mark.parametrize("label", SOURCES)
def test_qgis_validity_check_finds_no_error(out, label, require_tool, tmp_path):
    path, layer = source(out, label)
    df = read_pyogrio(path, layer)
    valid = tmp_path / "valid.gpkg"
    res = qgis(require_tool, "run", "qgis:checkvalidity", "--",
               f"INPUT_LAYER={qgis_source(path, layer)}", "METHOD=2", f"VALID_OUTPUT={valid}",
               "INVALID_OUTPUT=TEMPORARY_OUTPUT", "ERROR_OUTPUT=TEMPORARY_OUTPUT")["results"]
    assert (res["VALID_COUNT"], res["INVALID_COUNT"], res["ERROR_COUNT"]) == (len(df), 0, 0)
    # what QGIS read, written back by QGIS: CRS, fields and the Chinese values
    seen = read_pyogrio(valid, None)
    assert seen.crs.to_epsg() == expected_epsg(out)
    fields = [c for c in df.columns if c != "geometry"]
    assert [c for c in seen.columns if c in fields] == fields
    for name in (c for c in fields if c in CHINESE):
        assert seen[name].tolist() == df[name].tolist(), name


def test_qgis_opens_the_review_project(out, require_tool, tmp_path):
    qgs = out / "review" / "sanqu.qgs"
    names = re.findall(r'<layer-tree-layer id="[^"]+" name="([^"]+)"', qgs.read_text("utf-8"))
    assert len(names) == 16
    info = tmp_path / "info.gpkg"
    qgis(require_tool, "run", "native:exportlayersinformation", f"--PROJECT_PATH={qgs}", "--",
         *[f"LAYERS={n}" for n in names], f"OUTPUT={info}")
    df = read_pyogrio(info, None)
    assert df["name"].tolist() == names
    assert set(df["crs"]) == {f"EPSG:{expected_epsg(out)}"}
    for src in df["source"]:
        assert Path(src.split("|")[0]).resolve().is_file(), src


QGIS_PROBE = r"""
import json, sys
from qgis.core import QgsApplication, QgsProject, QgsVectorLayer
app = QgsApplication([], False)
app.initQgis()
project = QgsProject.instance()
report = {"read": project.read(sys.argv[1]), "crs": project.crs().authid(), "layers": {}}
for lyr in project.mapLayers().values():
    entry = {"valid": lyr.isValid()}
    if isinstance(lyr, QgsVectorLayer):
        r = lyr.renderer()
        entry.update(renderer=r.type(), labels=lyr.labelsEnabled(),
                     aliases={f.name(): f.alias() for f in lyr.fields() if f.alias()},
                     colour=r.symbol().color().name() if r.type() == "singleSymbol" else None)
    report["layers"][lyr.name()] = entry
direct = QgsVectorLayer(sys.argv[2] + "|layername=eco_space", "direct", "ogr")
report["direct"] = {"colour": direct.renderer().symbol().color().name(),
                    "aliases": {f.name(): f.alias() for f in direct.fields() if f.alias()}}
print(json.dumps(report, ensure_ascii=False))
"""


def test_qgis_shows_styles_labels_and_chinese_aliases(out, require_tool):
    require_tool("qgis_process.bin", "qgis")
    python = "/usr/bin/python3"
    has_qgis = subprocess.run([python, "-c", "import qgis.core"], capture_output=True,
                              check=False).returncode == 0
    if not has_qgis:
        pytest.skip("PyQGIS (Debian's python3-qgis) is not importable")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([python, "-c", QGIS_PROBE, out / "review" / "sanqu.qgs",
                           out / "sanqu.gpkg"], capture_output=True, timeout=300, env=env,
                          check=True)
    report = json.loads(proc.stdout.decode("utf-8").strip().splitlines()[-1])
    assert report["read"] and report["crs"] == f"EPSG:{expected_epsg(out)}"
    layers = report["layers"]
    assert len(layers) == 16 and all(v["valid"] for v in layers.values())
    assert layers["生态空间"]["colour"] == "#38a800" and layers["生态空间"]["labels"]
    assert layers["CZKFBJ 城镇开发边界"]["aliases"]["GHFQMC"] == "规划分区名称"
    assert layers["NYSCSYXPJJG 农业生产适宜性评价结果"]["renderer"] == "categorizedSymbol"
    # opened directly from the GeoPackage, the layer takes its default style from layer_styles
    assert report["direct"] == {"colour": "#38a800", "aliases": {
        "id": "编号", "code": "代码", "name": "名称", "area_ha": "面积（公顷）"}}


# ---------------------------------------------------------------- round trip, three readers


@pytest.mark.parametrize("label", SOURCES)
def test_three_readers_agree_on_attributes_and_areas(out, label, require_tool):
    path, layer = source(out, label)
    df = read_pyogrio(path, layer)
    rows, geoms, crs = read_fiona(path, layer)
    assert crs == f"EPSG:{expected_epsg(out)}"
    fields = [c for c in df.columns if c != "geometry"]
    assert [list(r) for r in rows[:1]] == [fields]
    assert rows == df[fields].to_dict("records")
    areas = shapely.area(df.geometry.values)
    np.testing.assert_allclose(shapely.area(geoms), areas, rtol=1e-12)
    area_field, factor = ("MJ", 1e-4) if "MJ" in fields else ("area_ha", 1e-4)
    np.testing.assert_allclose(df[area_field], areas * factor, rtol=1e-4, atol=1e-4)
    text = ogrinfo(require_tool, "-ro", "-al", "-geom=NO", path, layer or path.stem)
    printed = [float(v) for v in re.findall(rf"^\s+{area_field} \(Real\) = (.*)$", text, re.M)]
    np.testing.assert_allclose(printed, df[area_field], rtol=1e-12)


# ---------------------------------------------------------------- GBK shapefiles


@pytest.fixture(scope="module")
def gbk_out(tmp_path_factory: pytest.TempPathFactory, write_config) -> Path:
    folder = tmp_path_factory.mktemp("gbk")
    cfg = write_config(folder / "gbk.yaml",
                       lambda d: d["outputs"].update(shapefile_encoding="GBK"))
    return Path(sanqu.delineate(load_config(cfg), folder / "out").out)


@pytest.mark.parametrize(("shp", "field"), [("red_line.shp", "name"),
                                             ("planning_db/CZKFBJ.shp", "GHFQMC"),
                                             ("planning_db/NYSCSYXPJJG.shp", "PJDJ")])
def test_gbk_shapefiles_round_trip_in_every_reader(gbk_out, shp, field, require_tool, tmp_path):
    path = gbk_out / shp
    assert path.with_suffix(".cpg").read_text(encoding="ascii") == "GBK"
    dbf = path.with_suffix(".dbf").read_bytes()
    df = read_pyogrio(path, None)
    values = df[field].tolist()
    assert values[0].encode("gbk") in dbf and values[0].encode("utf-8") not in dbf
    rows, _, _ = read_fiona(path, None)
    assert [r[field] for r in rows] == values
    text = ogrinfo(require_tool, "-ro", "-al", "-geom=NO", path)
    assert re.findall(rf"^\s+{field} \(String\) = (.*)$", text, re.M) == values
    res = qgis(require_tool, "run", "qgis:listuniquevalues", "--", f"INPUT={path}",
               f"FIELDS={field}", "OUTPUT=TEMPORARY_OUTPUT")["results"]
    assert sorted(res["UNIQUE_VALUES"].split(";")) == sorted(set(values))
