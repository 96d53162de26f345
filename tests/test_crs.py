"""CRS of the deliverables: GK zones, equivalent definitions, old datums, GCJ-02, Jiyuan."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import CRS

from sanqu.align import crs_equivalent, identify_crs, read_vector
from sanqu.crs import (
    datum_note,
    gcj02_to_wgs84,
    gk_epsg,
    gk_zone,
    output_crs,
    parse_crs,
    wgs84_to_gcj02,
)
from sanqu.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parents[1]
JIYUAN = ROOT / "data" / "jiyuan"
GCJ = JIYUAN / "jiyuan_and_neighbors_gcj02.geojson"
WGS = JIYUAN / "jiyuan_and_neighbors_wgs84.geojson"
OFFICIAL_KM2 = 1931.0


# ---------------------------------------------------------------- Gauss-Krüger zones


@pytest.mark.parametrize(("zone", "form", "epsg", "cm", "false_easting"), [
    (25, "zone", 4513, 75, 25_500_000), (39, "zone", 4527, 117, 39_500_000),
    (45, "zone", 4533, 135, 45_500_000), (25, "cm", 4534, 75, 500_000),
    (38, "cm", 4547, 114, 500_000), (45, "cm", 4554, 135, 500_000),
])
def test_gk_epsg_matches_the_registry(zone, form, epsg, cm, false_easting):
    assert gk_epsg(zone, form) == epsg
    crs = CRS.from_epsg(epsg)
    assert crs.geodetic_crs.to_epsg() == 4490  # CGCS2000
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    assert params["Longitude of natural origin"] == cm
    assert params["False easting"] == false_easting
    assert params["Scale factor at natural origin"] == 1


@pytest.mark.parametrize(("lon", "zone"), [(73.5, 25), (112.4999, 37), (112.5, 38),
                                           (117.46, 39), (134.9, 45)])
def test_zone_of_a_longitude(lon, zone):
    assert gk_zone(lon) == zone


def test_output_crs_auto_study_and_explicit():
    study = CRS.from_epsg(4547)
    assert output_crs("auto", 117.4, study).to_epsg() == 4527
    assert output_crs("auto", 117.4, study, form="cm").to_epsg() == 4548
    assert output_crs("auto", 112.41, study, zone=38, form="cm").to_epsg() == 4547
    assert output_crs("study", 117.4, study) == study
    assert output_crs("EPSG:4546", 117.4, study).to_epsg() == 4546


def test_output_crs_outside_china_is_a_config_error():
    with pytest.raises(ConfigError, match=r"outputs\.crs: auto: .*2\.000°E.*zone 1, outside"):
        output_crs("auto", 2.0, CRS.from_epsg(4527))


@pytest.mark.parametrize(("text", "message"), [
    ("EPSG:4326", "geographic"), ("EPSG:999999", "expected a CRS"), ("EPSG:2249", "units"),
])
def test_parse_crs_wants_projected_metres(text, message):
    with pytest.raises(ValueError, match=message):
        parse_crs(text)


# ---------------------------------------------------------------- equivalent definitions


def _variants(epsg: int) -> dict[str, CRS]:
    crs = CRS.from_epsg(epsg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        proj4 = crs.to_proj4()
    return {
        "esri_prj": CRS.from_wkt(crs.to_wkt("WKT1_ESRI")),
        "gdal_wkt1": CRS.from_wkt(crs.to_wkt("WKT1_GDAL")),
        "proj4": CRS.from_proj4(proj4),
        "proj4_null_towgs84": CRS.from_proj4(proj4 + " +towgs84=0,0,0,0,0,0,0"),
        "renamed_datum": CRS.from_wkt(crs.to_wkt().replace("China 2000", "EGM2008_geoid")),
    }


@pytest.mark.parametrize("epsg", [4527, 4547, 4525, 4546])
@pytest.mark.parametrize("form", ["esri_prj", "gdal_wkt1", "proj4", "proj4_null_towgs84",
                                  "renamed_datum"])
def test_equivalent_definitions_are_recognised_and_identified(epsg, form):
    crs = _variants(epsg)[form]
    assert crs_equivalent(crs, CRS.from_epsg(epsg))
    assert identify_crs(crs).to_epsg() == epsg


@pytest.mark.parametrize(("epsg", "datum"), [(2415, "Beijing 1954"), (2437, "Beijing 1954"),
                                              (2363, "Xian 1980"), (2383, "Xian 1980")])
def test_old_datums_are_not_cgcs2000_and_get_a_note(epsg, datum):
    crs = CRS.from_epsg(epsg)
    target = CRS.from_epsg(4527 if "zone" in crs.name else 4547)
    assert not crs_equivalent(crs, target)
    assert identify_crs(crs).to_epsg() == epsg
    assert datum_note(crs, target).startswith(f"datum {datum} → China 2000: ")
    assert datum_note(CRS.from_epsg(4326), target) == ""


def test_identify_keeps_an_unknown_crs():
    odd = CRS.from_proj4("+proj=tmerc +lon_0=116 +x_0=500000 +ellps=GRS80 +units=m")
    assert identify_crs(odd).to_epsg() is None


# ---------------------------------------------------------------- GCJ-02

china = st.tuples(st.floats(73.0, 135.0), st.floats(18.0, 53.0))


@settings(max_examples=200, deadline=None)
@given(china)
def test_gcj02_inverse_undoes_the_forward_formula(lonlat):
    w = np.array([lonlat])
    g = wgs84_to_gcj02(w)
    back = gcj02_to_wgs84(g)
    assert np.abs(back - w).max() < 1e-8  # ~1 mm
    shift = np.abs(g - w).max()
    assert 1e-4 < shift < 1e-2  # tens to hundreds of metres, never zero in China


def test_gcj02_leaves_points_outside_china_alone():
    pts = np.array([[2.35, 48.85], [-74.0, 40.7], [151.2, -33.9]])
    np.testing.assert_array_equal(wgs84_to_gcj02(pts), pts)
    np.testing.assert_array_equal(gcj02_to_wgs84(pts), pts)


def test_gcj02_conversion_reproduces_the_published_wgs84_boundaries():
    ours = read_vector(GCJ, "b", CRS.from_epsg(4326), datum_shift="gcj02")
    theirs = gpd.read_file(WGS)
    assert len(ours) == len(theirs) == 8
    for a, b in zip(ours.geometry.values, theirs.geometry.values, strict=True):
        assert shapely.hausdorff_distance(a, b) < 1e-9


def test_read_vector_gcj02_wants_lon_lat(tmp_path):
    projected = gpd.read_file(WGS).to_crs(4547)
    path = tmp_path / "projected.gpkg"
    projected.to_file(path)
    with pytest.raises(InputError, match=r"b\.datum_shift: gcj02 expects longitude/latitude"):
        read_vector(path, "b", CRS.from_epsg(4547), datum_shift="gcj02")


# ---------------------------------------------------------------- Jiyuan


@pytest.fixture(scope="module")
def jiyuan() -> dict[str, gpd.GeoDataFrame]:
    raw = gpd.read_file(GCJ)
    fixed = read_vector(GCJ, "b", CRS.from_epsg(4326), datum_shift="gcj02")
    return {"gcj": raw[raw["is_jiyuan"]], "wgs": fixed[fixed["is_jiyuan"]]}


def test_jiyuan_centre_chooses_zone_37(jiyuan):
    centroid = jiyuan["wgs"].to_crs(4547).centroid.to_crs(4490).iloc[0]
    assert 112.35 < centroid.x < 112.45  # west of the 112°30'E zone boundary
    assert output_crs("auto", centroid.x, CRS.from_epsg(4547)).to_epsg() == 4525
    assert output_crs("auto", centroid.x, CRS.from_epsg(4547), form="cm").to_epsg() == 4546
    west, east = jiyuan["wgs"].total_bounds[[0, 2]]
    assert gk_zone(west) == 37 and gk_zone(east) == 38  # it straddles the boundary


@pytest.mark.parametrize("epsg", [4525, 4546, 4526, 4547])
def test_jiyuan_area_within_two_percent_of_official(jiyuan, epsg):
    km2 = jiyuan["wgs"].to_crs(epsg).area.sum() / 1e6
    assert km2 == pytest.approx(1898.2, abs=0.5)
    assert abs(km2 - OFFICIAL_KM2) / OFFICIAL_KM2 < 0.02


def test_jiyuan_conversion_moves_it_about_575_m(jiyuan):
    a = jiyuan["gcj"].set_crs(4326, allow_override=True).to_crs(4525).centroid.iloc[0]
    b = jiyuan["wgs"].to_crs(4525).centroid.iloc[0]
    assert -600 < b.x - a.x < -540 and 50 < b.y - a.y < 110
    assert 540 < a.distance(b) < 620


def test_jiyuan_and_neighbours_do_not_overlap(jiyuan):
    everything = read_vector(GCJ, "b", CRS.from_epsg(4525), datum_shift="gcj02")
    j = everything[everything["is_jiyuan"]].geometry.iloc[0]
    others = everything[~everything["is_jiyuan"]].geometry
    assert sum(j.intersection(o).area for o in others) < 1.0  # m²
    meta = json.loads(GCJ.read_text(encoding="utf-8"))
    assert {f["properties"]["adcode"] for f in meta["features"]} >= {419001, 410882, 140522}
