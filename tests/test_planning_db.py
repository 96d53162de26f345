"""The planning-database profile: layers, field structure, identifiers, units and overlays."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import fiona
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import sample_dict

import sanqu
from sanqu import load_config
from sanqu.config import PLACEHOLDER, config_from_dict
from sanqu.errors import ConfigError
from sanqu.export import write_schema_layer
from sanqu.planning_db import Field, disjoint_units, overlay
from sanqu.units import Units

pytestmark = pytest.mark.slow

LINES = {"STBHHX": "red_line", "YJJBNT": "farmland", "CZKFBJ": "ugb"}
RESULTS = {"STBHZYXPJJG": ("极重要", "重要", "一般"), "NYSCSYXPJJG": ("适宜", "一般适宜", "不适宜"),
           "CZJSSYXPJJG": ("适宜", "一般适宜", "不适宜")}
#: The sample's synthetic units (data/dianbu/synthetic): code → name.
SAMPLE_UNITS = {"SYN01": "北部单元(合成)", "SYN02": "中部单元(合成)", "SYN03": "南部单元(合成)"}
HEAD = {"BSM": "str:18", "YSDM": "str:10", "XZQDM": "str:12", "XZQMC": "str:100"}
TAIL = {"MJ": "float:18.4", "BZ": "str:254"}  # a DBF text field holds at most 254 bytes


@pytest.fixture(scope="module")
def out(demo_run: sanqu.RunResult) -> Path:
    return Path(demo_run.out)


def read(out: Path, layer: str) -> gpd.GeoDataFrame:
    return gpd.read_file(out / "planning_db.gpkg", layer=layer, engine="pyogrio")


def expected_schema(layer: str) -> dict[str, str]:
    if layer == "CZKFBJ":
        middle = {"GHFQDM": "str:3", "GHFQMC": "str:50"}
    elif layer in LINES:
        middle = {}
    else:
        middle = {"PJDJ": "str:20"}
    return {**HEAD, **middle, **TAIL}


@pytest.mark.parametrize("layer", [*LINES, *RESULTS])
def test_shapefile_field_structure_and_widths(out, layer):
    with fiona.open(out / "planning_db" / f"{layer}.shp") as src:
        schema = dict(src.schema["properties"])
        assert src.schema["geometry"] in ("Polygon", "MultiPolygon")
    assert schema == expected_schema(layer)
    assert all(len(name) <= 10 and name.isascii() for name in schema)


@pytest.mark.parametrize("layer", [*LINES, *RESULTS])
def test_gpkg_fields_widths_and_multipolygons(out, layer):
    with fiona.open(out / "planning_db.gpkg", layer=layer) as src:
        schema = dict(src.schema["properties"])
        assert src.schema["geometry"] == "MultiPolygon"
    expected = {k: v.replace("float:18.4", "float").replace("str:254", "str:255")
                for k, v in expected_schema(layer).items()}
    assert schema == expected


def test_bsm_unique_18_characters_with_layer_number(out):
    seen = []
    for number, layer in enumerate([*LINES, *RESULTS], start=1):
        bsm = read(out, layer)["BSM"].tolist()
        assert all(len(b) == 18 and b.isdigit() for b in bsm)
        assert {b[:2] for b in bsm} == {f"{number:02d}"}  # no admin code: no prefix
        assert [int(b[2:]) for b in bsm] == list(range(1, len(bsm) + 1))
        seen += bsm
    assert len(seen) == len(set(seen))


def test_placeholders_are_written_and_reported(out):
    for layer in [*LINES, *RESULTS]:
        assert set(read(out, layer)["YSDM"]) == {PLACEHOLDER}
    assert set(read(out, "CZKFBJ")["GHFQDM"]) == {PLACEHOLDER}
    notes = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["notes"]
    assert "outputs.planning_db.ysdm.STBHHX: placeholder value 'TBD' written; set the " \
           "official code" in notes
    assert "outputs.planning_db.subzone_codes.special_use: placeholder value 'TBD' written; " \
           "set the official code" in notes


def test_admin_fields_come_from_the_sample_units(out):
    for layer in [*LINES, *RESULTS]:
        df = read(out, layer)
        assert set(df["XZQDM"]) <= SAMPLE_UNITS.keys() and len(set(df["XZQDM"])) > 1
        assert all(SAMPLE_UNITS[c] == n for c, n in zip(df["XZQDM"], df["XZQMC"], strict=True))


def test_without_units_the_study_area_fills_the_admin_fields(tmp_path, write_config):
    def edit(d):
        d.pop("units")
        d["lines"]["farmland"].pop("unit_quotas", None)
    out = Path(sanqu.delineate(load_config(write_config(tmp_path / "c.yaml", edit)),
                               tmp_path / "out").out)
    df = read(out, "STBHHX")
    assert set(df["XZQDM"]) == {PLACEHOLDER} and set(df["XZQMC"]) == {"店埠河流域"}
    notes = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["notes"]
    assert any(n.startswith("study_area.admin_code: placeholder") for n in notes)


@pytest.mark.parametrize("layer", list(LINES))
def test_lines_match_the_plain_layers(out, layer):
    df = read(out, layer)
    plain = gpd.read_file(out / "sanqu.gpkg", layer=LINES[layer])
    assert len(df) >= len(plain)  # polygons crossing a unit border are split
    np.testing.assert_allclose(df["MJ"], np.round(df.geometry.area / 10_000, 4), atol=1e-9)
    assert df["MJ"].sum() == pytest.approx(plain["area_ha"].sum(), abs=1e-3)


@pytest.mark.parametrize("layer", list(RESULTS))
def test_evaluation_results_cover_the_study_area(out, layer):
    df = read(out, layer)
    assert set(df["PJDJ"]) <= set(RESULTS[layer])
    study = gpd.read_file(out / "sanqu.gpkg", layer="eco_space").area.sum() + sum(
        gpd.read_file(out / "sanqu.gpkg", layer=n).area.sum() for n in ("agri_space",
                                                                        "urban_space"))
    assert df.geometry.area.sum() == pytest.approx(study, rel=1e-9)
    assert shapely.union_all(df.geometry.values).area == pytest.approx(study, rel=1e-9)


def test_chinese_aliases_in_gpkg_data_columns(out):
    con = sqlite3.connect(out / "planning_db.gpkg")
    try:
        rows = dict(((t, c), n) for t, c, n in con.execute(
            "SELECT table_name, column_name, name FROM gpkg_data_columns"))
        ext = con.execute("SELECT extension_name FROM gpkg_extensions "
                          "WHERE table_name = 'gpkg_data_columns'").fetchall()
    finally:
        con.close()
    assert ext == [("gpkg_schema",)]
    assert rows[("CZKFBJ", "GHFQMC")] == "规划分区名称"
    assert rows[("STBHHX", "MJ")] == "面积（公顷）"
    assert rows[("STBHZYXPJJG", "PJDJ")] == "重要性等级"


# ---------------------------------------------------------------- admin units and sub-zones


def halves(out: Path, folder: Path) -> Path:
    """Two administrative units, west and east halves of the study area, in WGS84."""
    spaces = [gpd.read_file(out / "sanqu.gpkg", layer=n) for n in ("eco_space", "agri_space",
                                                                   "urban_space")]
    minx, miny, maxx, maxy = np.array([s.total_bounds for s in spaces]).T
    minx, miny, maxx, maxy = minx.min(), miny.min(), maxx.max(), maxy.max()
    mid = (minx + maxx) / 2
    units = gpd.GeoDataFrame(
        {"code": ["340122001000", "340122002000"], "mc": ["店埠镇", "撮镇镇"]},
        geometry=[shapely.box(minx - 10, miny - 10, mid, maxy + 10),
                  shapely.box(mid, miny - 10, maxx + 10, maxy + 10)], crs=4527).to_crs(4326)
    path = folder / "towns.geojson"
    units.to_file(path, driver="GeoJSON")
    return path


@pytest.fixture(scope="module")
def split_run(out, tmp_path_factory, write_config) -> Path:
    folder = tmp_path_factory.mktemp("admin")
    towns = halves(out, folder)

    def edit(d):
        d["study_area"].update(admin_code="340122", admin_name="肥东县")
        d["units"] = {"path": str(towns), "code_field": "code", "name_field": "mc"}
        d["lines"]["farmland"].pop("unit_quotas", None)  # quotas name the sample's own units
        d["outputs"]["planning_db"] = {"ysdm": {"STBHHX": "1234567890"}, "area_unit": "mu",
                                       "subzone_codes": {"concentrated": "010"}}
    return Path(sanqu.delineate(load_config(write_config(folder / "c.yaml", edit)),
                                folder / "out").out)


@pytest.mark.parametrize("layer", [*LINES, *RESULTS])
def test_split_by_units_keeps_area_and_assigns_each_piece(out, split_run, layer):
    df = read(split_run, layer)
    assert set(df["XZQDM"]) == {"340122001000", "340122002000"}
    assert set(df["XZQMC"]) == {"店埠镇", "撮镇镇"}
    towns = gpd.read_file(split_run.parent / "towns.geojson").to_crs(df.crs)
    mid = towns.geometry.iloc[0].bounds[2]
    cx = df.geometry.centroid.x
    assert ((cx < mid) == (df["XZQDM"] == "340122001000")).all()
    if layer in LINES:
        base = gpd.read_file(split_run / "sanqu.gpkg", layer=LINES[layer])
    else:
        base = pd.concat([gpd.read_file(split_run / "sanqu.gpkg", layer=n)
                          for n in ("eco_space", "agri_space", "urban_space")])
    assert df.geometry.area.sum() == pytest.approx(base.geometry.area.sum(), rel=1e-9)
    assert len(df) >= len(base) if layer in LINES else len(df) > 0
    np.testing.assert_allclose(df["MJ"], np.round(df.geometry.area * 0.0015, 4), atol=1e-9)
    assert all(b.startswith("340122") for b in df["BSM"])


def test_config_values_reach_the_fields(split_run):
    assert set(read(split_run, "STBHHX")["YSDM"]) == {"1234567890"}
    con = sqlite3.connect(split_run / "planning_db.gpkg")
    try:
        (alias,) = con.execute("SELECT name FROM gpkg_data_columns WHERE table_name = 'YJJBNT' "
                               "AND column_name = 'MJ'").fetchone()
    finally:
        con.close()
    assert alias == "面积（亩）"


def test_overlay_largest_keeps_polygons_whole():
    units = Units(("1", "2"), ("甲", "乙"), (shapely.box(0, 0, 5, 9), shapely.box(5, 0, 9, 9)))
    geoms = np.array([shapely.box(1, 1, 8, 2), shapely.box(6, 3, 8, 4), shapely.box(20, 0, 21, 1)])
    g, codes, names, src = overlay(geoms, units, ("0", "外"), "largest", 0.5)
    assert [x.equals(y) for x, y in zip(g, geoms, strict=True)] == [True] * 3
    assert codes == ["1", "2", "0"] and names == ["甲", "乙", "外"] and src == [0, 1, 2]


def test_overlay_split_keeps_small_pieces_with_the_largest():
    units = Units(("1", "2"), ("甲", "乙"), (shapely.box(0, 0, 5, 9), shapely.box(5, 0, 9, 9)))
    g, codes, _, src = overlay(np.array([shapely.box(1, 1, 5.2, 2)]), units, ("0", "外"),
                               "split", 0.5)
    assert codes == ["1"] and src == [0] and g[0].area == pytest.approx(4.2)


def test_subzone_name_and_configured_code(split_run, out):
    df = read(split_run, "CZKFBJ")
    ugb = gpd.read_file(split_run / "sanqu.gpkg", layer="ugb")
    assert set(df["GHFQMC"]) == set(ugb["zone_name"]) >= {"城镇集中建设区"}
    for name, code in (("城镇集中建设区", "010"), ("特别用途区", PLACEHOLDER)):
        assert set(df.loc[df["GHFQMC"] == name, "GHFQDM"]) <= {code}
    assert set(read(out, "CZKFBJ")["GHFQDM"]) == {PLACEHOLDER}


def test_overlapping_units_go_to_the_later_code():
    from pyproj import CRS

    u = Units(("1", "2"), ("甲", "乙"), (shapely.box(0, 0, 6, 9), shapely.box(5, 0, 9, 9)))
    d = disjoint_units(u, CRS.from_epsg(4527), CRS.from_epsg(4527), 30.0)
    assert [float(g.area) for g in d.geometries] == [45.0, 36.0]


# ---------------------------------------------------------------- config errors


@pytest.mark.parametrize(("edit", "pattern"), [
    (lambda o: o.update(crs="EPSG:4326"),
     r"outputs\.crs: expected 'auto', 'study' or a projected CRS: .*geographic"),
    (lambda o: o.update(crs="study", gk_zone=38), r"outputs\.gk_zone: applies only to crs: auto"),
    (lambda o: o.update(gk_zone=50), r"outputs\.gk_zone: .*less than or equal to 45"),
    (lambda o: o.update(planning_db={"ysdm": {"STBHHX": "12345678901"}}),
     r"outputs\.planning_db\.ysdm\.STBHHX: .*at most 10 characters"),
    (lambda o: o.update(planning_db={"bsm_prefix": "34-01"}),
     r"outputs\.planning_db\.bsm_prefix: .*pattern"),
    (lambda o: o.update(planning_db={"area_unit": "acre"}),
     r"outputs\.planning_db\.area_unit: .*'ha', 'm2', 'km2' or 'mu'"),
    (lambda o: o.update(smoothing={"tolerance": -1}), r"outputs\.smoothing\.tolerance"),
    (lambda o: o.update(topology={"on_failure": "ignore"}),
     r"outputs\.topology\.on_failure: .*'stop' or 'repair'"),
])
def test_bad_output_settings_are_one_line_errors(edit, pattern):
    data = sample_dict()
    edit(data["outputs"])
    with pytest.raises(ConfigError, match=pattern) as info:
        config_from_dict(data)
    assert "\n" not in str(info.value)


def test_shapefile_text_longer_than_its_field_in_the_encoding_is_an_error(tmp_path):
    df = gpd.GeoDataFrame({"BSM": pd.Series(["a", "生态空间", "a"], dtype="str")},
                          geometry=gpd.GeoSeries([shapely.box(0, 0, 1, 1)] * 3, crs="EPSG:4527"))
    fields = [Field("BSM", "str", 8)]
    write_schema_layer(tmp_path / "x.gpkg", "x", df, fields)  # a GeoPackage holds characters
    write_schema_layer(tmp_path / "y.gpkg", "y", df, fields, shapefile=tmp_path / "y.shp",
                       encoding="GBK")  # 8 bytes in GBK
    with pytest.raises(ConfigError, match=r"x\.BSM takes 12 bytes in UTF-8, more than .* 8"):
        write_schema_layer(tmp_path / "z.gpkg", "x", df, fields, shapefile=tmp_path / "z.shp")


def test_overlay_cuts_only_the_parts_that_cross_a_border():
    units = Units(("1", "2"), ("甲", "乙"), (shapely.box(0, 0, 5, 9), shapely.box(5, 0, 9, 9)))
    inside, crossing = shapely.box(1, 1, 2, 2), shapely.box(4, 3, 7, 4)
    out = shapely.box(20, 0, 21, 1)
    level = shapely.MultiPolygon([inside, crossing, out])
    g, codes, _, src = overlay(np.array([level]), units, ("0", "外"), "split", 0.5)
    assert codes == ["1", "2", "0"] and src == [0, 0, 0]
    assert [float(x.area) for x in g] == [2.0, 2.0, 1.0]  # 1 + 1 in unit 1, 2 in unit 2
    assert g[0].equals(shapely.union_all([inside, shapely.box(4, 3, 5, 4)]))
    assert all(x.is_valid for x in g)


def test_a_cut_that_loses_area_stops_the_run():
    from sanqu.planning_db import _check_cut
    from sanqu.topology import TopologyError

    part = shapely.box(0, 0, 10, 10)
    _check_cut(part, [shapely.box(0, 0, 5, 10), shapely.box(5, 0, 10, 10)])
    with pytest.raises(TopologyError, match=r"^outputs\.planning_db\.admin_overlay: .*gap"):
        _check_cut(part, [shapely.box(0, 0, 5, 10), shapely.box(6, 0, 10, 10)])
    bowtie = shapely.Polygon([(5, 0), (10, 10), (10, 0), (5, 10)])
    with pytest.raises(TopologyError, match="invalid"):
        _check_cut(part, [shapely.box(0, 0, 5, 10), bowtie])


# ---------------------------------------------------------------- areas per unit


UNIT_COLUMNS = {"STBHHX": "red_line_ha", "YJJBNT": "farmland_ha", "CZKFBJ": "ugb_ha",
                **{layer: "study_area_ha" for layer in RESULTS}}


@pytest.mark.parametrize("run", ["out", "split_run"])
@pytest.mark.parametrize("layer", [*LINES, *RESULTS])
def test_areas_per_unit_equal_units_csv(request, run, layer):
    """Cut on the raster, each unit's planning areas are its cells in units.csv, exactly."""
    folder = request.getfixturevalue(run)
    table = pd.read_csv(folder / "units.csv", dtype={"unit_code": str}, keep_default_na=False)
    table = table[table["unit_name"] != "合计"]
    df = read(folder, layer)
    factor = 0.0015 if run == "split_run" else 1e-4  # the split run writes MJ in mu
    known = set(table["unit_code"]) - {""}
    code = df["XZQDM"].where(df["XZQDM"].isin(known), "")  # the fallback: in no unit
    area_ha = df.geometry.area.groupby(code).sum() / 10_000
    mj_ha = (df["MJ"] / factor * 1e-4).groupby(code).sum()
    for unit_code, expected in zip(table["unit_code"], table[UNIT_COLUMNS[layer]], strict=True):
        assert round(area_ha.get(unit_code, 0.0), 4) == expected, unit_code
        assert mj_ha.get(unit_code, 0.0) == pytest.approx(expected, abs=1e-4 * len(df) + 1e-9)


def test_largest_gives_each_grade_the_unit_with_most_of_its_cells(out, tmp_path, write_config):
    import rasterio

    towns = halves(out, tmp_path)

    def edit(d):
        d["units"] = {"path": str(towns), "code_field": "code", "name_field": "mc"}
        d["lines"]["farmland"].pop("unit_quotas", None)
        d["outputs"]["planning_db"] = {"admin_overlay": "largest"}
    run = Path(sanqu.delineate(load_config(write_config(tmp_path / "c.yaml", edit)),
                               tmp_path / "out").out)
    mid = gpd.read_file(towns).to_crs(4527).geometry.iloc[0].bounds[2]
    with rasterio.open(run / "eco_importance.tif") as ds:
        grades = ds.read(1)
        x = ds.xy(0, np.arange(ds.width))[0]
    west = np.broadcast_to(np.asarray(x) < mid, grades.shape)
    df = read(run, "STBHZYXPJJG")
    assert len(df) == len(set(df["PJDJ"])) == len(np.unique(grades[grades > 0]))
    for level, row in enumerate(RESULTS["STBHZYXPJJG"], start=1):
        cells = grades == level
        most = "340122001000" if (cells & west).sum() >= (cells & ~west).sum() else "340122002000"
        assert df.loc[df["PJDJ"] == row, "XZQDM"].tolist() == [most]
    lines = read(run, "STBHHX")  # lines stay whole (GEOS overlay)
    assert len(lines) == len(gpd.read_file(run / "sanqu.gpkg", layer="red_line"))
