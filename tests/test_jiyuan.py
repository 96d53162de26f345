"""Jiyuan end to end: a GCJ-02 boundary, a study grid in another zone, output in the right zone.

The rasters are synthetic (no DEM or land use of Jiyuan is bundled) but the boundary is
the real one: Amap's GCJ-02 outline of 济源市, converted with ``datum_shift: gcj02``,
burnt onto a 200 m grid in CGCS2000 GK CM 114°E (EPSG:4547, the zone east of the
centre), delivered in the zone of the centre (zone 37: EPSG:4525, or EPSG:4546 in the
central-meridian form), with XZQDM/XZQMC from the real neighbouring counties.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine

import sanqu
from sanqu import load_config

ROOT = Path(__file__).resolve().parents[1]
GCJ = ROOT / "data" / "jiyuan" / "jiyuan_and_neighbors_gcj02.geojson"
WGS = ROOT / "data" / "jiyuan" / "jiyuan_and_neighbors_wgs84.geojson"
CELL = 200.0

pytestmark = pytest.mark.slow


def synthetic_rasters(folder: Path) -> tuple[Path, Path]:
    """DEM and land use on a 200 m EPSG:4547 grid around Jiyuan (mountains north, city east)."""
    ji = gpd.read_file(WGS)
    ji = ji[ji["is_jiyuan"]].to_crs(4547)
    minx, miny, maxx, maxy = ji.total_bounds + np.array([-4000, -4000, 4000, 4000])
    width, height = int((maxx - minx) // CELL) + 1, int((maxy - miny) // CELL) + 1
    transform = Affine(CELL, 0, float(np.floor(minx)), 0, -CELL, float(np.ceil(maxy)))
    rows, cols = np.mgrid[0:height, 0:width]
    north = 1 - rows / height
    dem = (150 + 1500 * north ** 2 + 60 * np.sin(cols / 9) * np.cos(rows / 7)).astype("float32")
    landuse = np.full((height, width), 1, dtype="uint8")  # cropland
    landuse[north > 0.55] = 6  # forest in the Taihang foothills
    landuse[(north > 0.4) & (north <= 0.55)] = 15  # grass
    city = (np.abs(rows - height * 0.55) < 12) & (np.abs(cols - width * 0.62) < 15)
    landuse[city] = 104
    landuse[np.abs(rows - (height * 0.8 - cols * 0.2)) < 1.5] = 18  # a river
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1,
               "crs": "EPSG:4547", "transform": transform}
    paths = folder / "dem.tif", folder / "landuse.tif"
    with rasterio.open(paths[0], "w", dtype="float32", nodata=-9999, **profile) as ds:
        ds.write(dem, 1)
    with rasterio.open(paths[1], "w", dtype="uint8", nodata=255, **profile) as ds:
        ds.write(landuse, 1)
    return paths


def jiyuan_gcj02(folder: Path) -> Path:
    """Jiyuan alone, coordinates untouched (still GCJ-02, labelled EPSG:4326)."""
    raw = json.loads(GCJ.read_text(encoding="utf-8"))
    raw["features"] = [f for f in raw["features"] if f["properties"]["is_jiyuan"]]
    path = folder / "jiyuan_gcj02.geojson"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


def run(folder: Path, write_config, **outputs: object) -> Path:
    dem, landuse = synthetic_rasters(folder)
    boundary = jiyuan_gcj02(folder)

    def edit(d):
        d["name"] = "济源市 (synthetic rasters, real boundary)"
        d["inputs"]["dem"]["path"] = str(dem)
        d["inputs"]["landuse"]["path"] = str(landuse)
        d["study_area"].update(name="济源市", admin_code="419001000000",
                               boundary={"path": str(boundary), "datum_shift": "gcj02"})
        d["lines"]["farmland"]["quota_ha"] = None
        d["lines"]["farmland"].pop("unit_quotas", None)
        d["lines"]["farmland"]["selection"] = "all_eligible"
        d["lines"]["ugb"].pop("special_use", None)
        d["lines"]["red_line"].pop("protected_areas", None)
        d["lines"]["red_line"]["min_area_ha"] = 20.0
        d["units"] = {"path": str(GCJ), "datum_shift": "gcj02", "code_field": "adcode",
                      "name_field": "name"}
        d["outputs"].update(outputs)
        d["outputs"]["planning_db"] = {"admin_overlay": "largest"}
    cfg = write_config(folder / "jiyuan.yaml", edit)
    return Path(sanqu.delineate(load_config(cfg), folder / "out").out)


@pytest.fixture(scope="module")
def jiyuan_out(tmp_path_factory, write_config) -> Path:
    return run(tmp_path_factory.mktemp("jiyuan"), write_config)


def test_vectors_are_in_the_zone_of_the_centre_rasters_stay_on_the_grid(jiyuan_out):
    manifest = json.loads((jiyuan_out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["vectors"]["crs"] == "EPSG:4525"
    assert manifest["grid"]["crs"] == "EPSG:4547"
    for layer in ("eco_space", "ugb"):
        assert gpd.read_file(jiyuan_out / "sanqu.gpkg", layer=layer).crs.to_epsg() == 4525
    assert gpd.read_file(jiyuan_out / "planning_db" / "CZKFBJ.shp").crs.to_epsg() == 4525
    with rasterio.open(jiyuan_out / "zones.tif") as ds:
        assert ds.crs.to_epsg() == 4547


def test_study_area_within_two_percent_of_the_official_figure(jiyuan_out):
    spaces = [gpd.read_file(jiyuan_out / "sanqu.gpkg", layer=n)
              for n in ("eco_space", "agri_space", "urban_space")]
    km2 = sum(s.geometry.area.sum() for s in spaces) / 1e6
    assert abs(km2 - 1931) / 1931 < 0.02, km2
    assert km2 == pytest.approx(1898.2, rel=0.005)  # the converted outline, on 200 m cells


def test_area_balance_reconciles_across_zones(jiyuan_out):
    with (jiyuan_out / "review" / "area_balance.csv").open(encoding="utf-8-sig") as fh:
        rows = {r["layer"]: r for r in csv.DictReader(fh)}
    assert all(r["check"] == "ok" for r in rows.values()), rows
    # cells are counted in zone 38's CM form, polygons measured in zone 37: the two
    # Gauss-Krüger scale factors differ by a few parts in 10 000 over Jiyuan
    assert abs(float(rows["study_area"]["difference_pct"])) < 0.1


def test_admin_codes_come_from_the_real_counties(jiyuan_out):
    for layer in ("STBHHX", "YJJBNT", "CZKFBJ", "NYSCSYXPJJG"):
        df = gpd.read_file(jiyuan_out / "planning_db.gpkg", layer=layer)
        assert len(df) > 0, layer
        assert set(df["XZQDM"]) == {"419001"} and set(df["XZQMC"]) == {"济源市"}, layer
        assert all(b.startswith("419001") for b in df["BSM"])


def test_central_meridian_form_and_a_fixed_zone(tmp_path, write_config):
    out = run(tmp_path, write_config, gk_form="cm", gk_zone=38)
    df = gpd.read_file(out / "sanqu.gpkg", layer="agri_space")
    assert df.crs.to_epsg() == 4547
    assert (df.total_bounds[[0, 2]] < 1_000_000).all()  # eastings without a zone prefix


def test_gdal_and_qgis_identify_zone_37(jiyuan_out, require_tool, tmp_path):
    import os
    import re
    import subprocess

    for path, layer in ((jiyuan_out / "planning_db" / "CZKFBJ.shp", "CZKFBJ"),
                        (jiyuan_out / "planning_db.gpkg", "STBHHX")):
        proc = subprocess.run([require_tool("ogrinfo"), "-ro", "-so", str(path), layer],
                              capture_output=True, check=True)
        wkt = proc.stdout.decode().split("Layer SRS WKT:\n")[1].split("\nData axis")[0]
        assert wkt.rstrip().endswith('ID["EPSG",4525]]'), wkt[-120:]
    qgs = jiyuan_out / "review" / "sanqu.qgs"
    info = tmp_path / "info.gpkg"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    names = re.findall(r'<layer-tree-layer id="[^"]+" name="([^"]+)"', qgs.read_text("utf-8"))
    subprocess.run([require_tool("qgis_process.bin", "qgis"), "run",
                    "native:exportlayersinformation", f"--PROJECT_PATH={qgs}", "--",
                    *[f"LAYERS={n}" for n in names], f"OUTPUT={info}"],
                   capture_output=True, check=True, env=env, timeout=300)
    crs = gpd.read_file(info)["crs"].tolist()
    assert crs.count("EPSG:4525") == 12 and crs.count("EPSG:4547") == 4  # vectors, rasters
