"""``sanqu check``: planted defects are each found and reported; sanqu's own output is clean."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner, Result

import sanqu
from sanqu.check import check_layers, split_layer
from sanqu.cli import main
from sanqu.errors import InputError

CRS = "EPSG:4527"


pytestmark = pytest.mark.usefixtures("fresh_logger")


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, ["check", *map(str, args)])


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(x0, y0, x1, y1)


def write(path: Path, geoms: list[shapely.Geometry], layer: str | None = None) -> None:
    df = gpd.GeoDataFrame({"name": [f"f{i}" for i in range(len(geoms))]}, geometry=geoms,
                          crs=CRS)
    pyogrio.write_dataframe(df, path, layer=layer)


@pytest.fixture
def planted(tmp_path: Path) -> dict[str, str]:
    """Three line layers and a study area with one defect of each kind planted.

    - red_line.shp: fid 0 a 100 m square; fid 1 a bow-tie (self-intersecting ring)
    - farmland.shp: fid 0 overlaps red_line fid 0 by 50 x 50 m; fid 1 a 5 x 5 m sliver
    - lines.gpkg:ugb: fid 1 clean; fid 2 sticks out of the study area (30 000 m2 outside)
    """
    bowtie = shapely.Polygon([(300, 0), (400, 100), (400, 0), (300, 100)])
    write(tmp_path / "red_line.shp", [box(0, 0, 100, 100), bowtie])
    write(tmp_path / "farmland.shp", [box(50, 50, 150, 150), box(600, 600, 605, 605)])
    gpkg = tmp_path / "lines.gpkg"
    write(gpkg, [box(200, 200, 300, 300), box(900, 900, 1100, 1100)], layer="ugb")
    write(gpkg, [box(0, 0, 10, 10)], layer="other")
    write(tmp_path / "study.gpkg", [box(-10, -10, 1000, 1000)])
    return {"red": str(tmp_path / "red_line.shp"), "farm": str(tmp_path / "farmland.shp"),
            "ugb": f"{gpkg}:ugb", "study": str(tmp_path / "study.gpkg")}


def test_every_planted_defect_is_found(planted: dict[str, str]) -> None:
    report = check_layers([planted["red"], planted["farm"], planted["ugb"]],
                          study_area=planted["study"])
    found = {(d.check, d.layer, d.fid, d.other): d for d in report.defects}
    assert set(found) == {
        ("invalid", "red_line", 1, ""),
        ("overlap", "red_line", 0, "farmland:0"),
        ("sliver", "farmland", 1, ""),
        ("outside", "ugb", 2, ""),
    }
    assert "Self-intersection" in found["invalid", "red_line", 1, ""].detail
    assert found["overlap", "red_line", 0, "farmland:0"].area_m2 == pytest.approx(2500)
    assert found["sliver", "farmland", 1, ""].area_m2 == pytest.approx(25)
    assert found["outside", "ugb", 2, ""].area_m2 == pytest.approx(30_000)
    assert report.features == {"red_line": 2, "farmland": 2, "ugb": 2}
    assert report.summary() == ("4 defects in 3 layers (6 features): 1 invalid, 1 overlap, "
                                "1 sliver, 1 outside")


def test_cli_reports_each_defect_and_exits_1(planted: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "defects.csv"
    result = invoke(planted["red"], planted["farm"], planted["ugb"], "--study-area",
                    planted["study"], "--csv", out)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["check", "layer", "fid", "other", "area_m2", "detail"]
    assert [row.split()[0] for row in lines[1:5]] == ["invalid", "overlap", "sliver", "outside"]
    assert lines[-1].startswith("sanqu check: 4 defects in 3 layers")
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["check"], r["layer"], r["fid"]) for r in rows] == [
        ("invalid", "red_line", "1"), ("overlap", "red_line", "0"), ("sliver", "farmland", "1"),
        ("outside", "ugb", "2")]


def test_overlap_within_one_layer_and_sliver_threshold(tmp_path: Path) -> None:
    path = tmp_path / "a.shp"
    write(path, [box(0, 0, 20, 20), box(10, 0, 30, 20)])
    report = check_layers([str(path)], min_area_m2=500)
    assert [(d.check, d.fid, d.other) for d in report.defects] == [
        ("overlap", 0, "a:1"), ("sliver", 0, ""), ("sliver", 1, "")]
    assert check_layers([str(path)], min_area_m2=0).counts() == {"overlap": 1}


def test_clean_layers_exit_0(tmp_path: Path) -> None:
    write(tmp_path / "a.shp", [box(0, 0, 100, 100)])
    write(tmp_path / "b.shp", [box(100, 0, 200, 100)])  # touching is not overlapping
    result = invoke(tmp_path / "a.shp", tmp_path / "b.shp", "--min-area", "0.5 ha")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "sanqu check: no defects in 2 layers (2 features)"
    quiet = invoke(tmp_path / "a.shp", "-q")
    assert quiet.exit_code == 0 and quiet.stdout == ""


def test_user_errors_are_one_line(tmp_path: Path, planted: dict[str, str]) -> None:
    result = invoke(tmp_path / "missing.shp")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("sanqu: error: ") and "missing.shp" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    gpkg = planted["ugb"].rpartition(":")[0]
    several = invoke(gpkg)
    assert several.exit_code == 1 and "name one as lines.gpkg:LAYER" in several.stderr
    bad = invoke(planted["red"], "--min-area", "big")
    assert bad.exit_code == 2 and "--min-area" in bad.stderr
    with pytest.raises(InputError, match="named 'red_line'"):
        check_layers([planted["red"], planted["red"]])


def test_split_layer_prefers_an_existing_path(tmp_path: Path) -> None:
    odd = tmp_path / "a:b.shp"
    write(odd, [box(0, 0, 10, 10)])
    assert split_layer(str(odd)) == (odd, None)
    assert split_layer(f"{tmp_path}/x.gpkg:roads") == (tmp_path / "x.gpkg", "roads")


@pytest.mark.slow
def test_sanqu_output_passes_its_own_check(demo_run: sanqu.RunResult, tmp_path: Path) -> None:
    out = Path(demo_run.out)
    spaces = [gpd.read_file(out / "sanqu.gpkg", layer=n) for n in
              ("eco_space", "agri_space", "urban_space")]
    study = shapely.union_all([g for df in spaces for g in df.geometry])
    write(tmp_path / "study.gpkg", [study])
    result = invoke(*(out / f"{n}.shp" for n in ("red_line", "farmland", "ugb")),
                    "--study-area", tmp_path / "study.gpkg")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("sanqu check: no defects in 3 layers")
    # the spaces tile the study area without overlaps; the only patch below the 1 ha
    # minimum is a one-cell island of the study area itself (no neighbour to merge into).
    # Smoothing cuts a few half-cell triangles (450 m² each) off patches at the minimum,
    # so polygons are checked against 0.9 ha (the raster patches hold at least 1 ha).
    layers = [f"{out / 'sanqu.gpkg'}:{n}" for n in ("eco_space", "agri_space", "urban_space")]
    report = check_layers(layers, min_area_m2=9_000, study_area=str(tmp_path / "study.gpkg"))
    assert [(d.check, d.area_m2) for d in report.defects] == [("sliver", 900.0)]
    (defect,) = report.defects
    space = spaces[("eco_space", "agri_space", "urban_space").index(defect.layer)]
    (island,) = [space.geometry[space["id"] == defect.fid].iloc[0]]
    shared = [g.intersection(island).length for df in spaces for g in df.geometry if g != island]
    assert max(shared) == 0.0  # it touches other patches at corners at most
