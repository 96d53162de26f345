"""The topology gate: planted defects are caught (and repaired when asked); the sample passes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

import sanqu
import sanqu.pipeline
from sanqu import load_config
from sanqu.align import grid_of
from sanqu.export import RingLayer
from sanqu.lattice import Rings
from sanqu.topology import CellGrid, Report, Rules, TopologyError, check, gate, repair

SPACES = ("eco_space", "agri_space", "urban_space")
LINES = ("red_line", "farmland", "ugb")
RULES = Rules(coverages=(SPACES,), disjoint=LINES, within=tuple(zip(LINES, SPACES, strict=True)))
MMU = 200.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample(demo_run: sanqu.RunResult) -> tuple[dict[str, np.ndarray], shapely.Geometry]:
    gpkg = Path(demo_run.out) / "sanqu.gpkg"
    layers = {n: gpd.read_file(gpkg, layer=n).geometry.values.to_numpy()
              for n in SPACES + LINES}
    study = shapely.union_all(np.concatenate([layers[n] for n in SPACES]))
    return layers, study


def planted(sample, layer: str, change: Callable[[np.ndarray], np.ndarray]
            ) -> dict[str, np.ndarray]:
    layers = {k: v.copy() for k, v in sample[0].items()}
    layers[layer] = change(layers[layer])
    return layers


def biggest(geoms: np.ndarray) -> int:
    return int(np.argmax(shapely.area(geoms)))


def test_bundled_sample_passes(sample, demo_run: sanqu.RunResult):
    report = check(sample[0], RULES, sample[1], MMU)
    assert report.ok, report.summary()
    manifest = json.loads((Path(demo_run.out) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["vectors"]["topology"] == {"issues": [], "repaired": [],
                                               "repaired_counts": {}}


def _overlap(geoms: np.ndarray) -> np.ndarray:
    """A copy of a farmland polygon pushed 50 m into its neighbours."""
    g = geoms[biggest(geoms)]
    return np.append(geoms, shapely.affinity.translate(g.buffer(-40), 50, 0))


def _gap(geoms: np.ndarray) -> np.ndarray:
    """An agricultural polygon loses a 100 m square from its interior."""
    i = biggest(geoms)
    p = shapely.point_on_surface(geoms[i])
    out = geoms.copy()
    out[i] = geoms[i].difference(shapely.box(p.x - 50, p.y - 50, p.x + 50, p.y + 50))
    return out


def _sliver(geoms: np.ndarray) -> np.ndarray:
    """An ecological polygon split off a 5 m strip of its own (area < 200 m²)."""
    i = biggest(geoms)
    p = shapely.point_on_surface(geoms[i])
    strip = geoms[i].intersection(shapely.box(p.x - 2.5, p.y - 15, p.x + 2.5, p.y + 15))
    assert 0 < strip.area < MMU
    out = geoms.copy()
    out[i] = geoms[i].difference(strip)
    return np.append(out, strip)


def _bowtie(geoms: np.ndarray) -> np.ndarray:
    """A red-line polygon replaced by a self-crossing ring over the same corners."""
    i = biggest(geoms)
    minx, miny, maxx, maxy = geoms[i].buffer(-1).envelope.bounds
    w = min(maxx - minx, maxy - miny) / 4
    bow = shapely.Polygon([(minx, miny), (minx + w, miny + w), (minx + w, miny), (minx, miny + w)])
    out = geoms.copy()
    out[i] = geoms[i].difference(shapely.box(minx, miny, minx + w, miny + w)).union(
        shapely.box(minx, miny, minx + w, miny + w)).difference(bow.buffer(0))
    return np.append(out, bow)


@pytest.mark.parametrize(("layer", "defect", "kinds"), [
    ("farmland", _overlap, {"overlap"}),
    ("agri_space", _gap, {"gap"}),
    ("eco_space", _sliver, {"sliver"}),
    ("red_line", _bowtie, {"invalid"}),
])
def test_planted_defect_is_caught(sample, layer, defect, kinds):
    layers = planted(sample, layer, defect)
    report = check(layers, RULES, sample[1], MMU)
    assert kinds <= set(report.counts()), report.summary()
    first = next(i for i in report.issues if i.kind in kinds)
    assert layer in first.layer
    with pytest.raises(TopologyError) as info:
        gate(layers, RULES, sample[1], MMU)
    message = str(info.value)
    assert "\n" not in message and "on_failure: repair" in message
    assert isinstance(info.value.report, Report)


@pytest.mark.parametrize(("layer", "defect"), [("farmland", _overlap), ("agri_space", _gap),
                                                ("eco_space", _sliver), ("red_line", _bowtie)])
def test_planted_defect_is_repaired_when_asked(sample, layer, defect):
    layers = planted(sample, layer, defect)
    fixed, report = gate(layers, RULES, sample[1], MMU, repair_failures=True)
    assert report.ok and report.repaired
    assert check(fixed, RULES, sample[1], MMU).ok
    total = sum(shapely.area(fixed[n]).sum() for n in SPACES)
    assert total == pytest.approx(sample[1].area, rel=1e-9)


def test_overlap_between_lines_goes_to_the_earlier_line(sample):
    layers = {k: v.copy() for k, v in sample[0].items()}
    red = layers["red_line"][biggest(layers["red_line"])]
    layers["farmland"] = np.append(layers["farmland"], red)  # farmland claims red-line land
    report = check(layers, RULES, sample[1], MMU)
    assert {"overlap", "outside"} <= set(report.counts())  # and farmland leaves its space
    fixed = repair(layers, RULES, sample[1], MMU)
    assert shapely.union_all(fixed["red_line"]).area == pytest.approx(
        shapely.union_all(sample[0]["red_line"]).area)
    assert check(fixed, RULES, sample[1], MMU).ok


def test_gate_in_the_pipeline_stops_or_repairs(tmp_path, monkeypatch, write_config):
    real = sanqu.pipeline.space_and_line_layers

    def with_bowtie(*args, **kwargs):
        layers = real(*args, **{**kwargs, "rings": False})  # a bowtie among GEOS polygons
        df = layers["red_line"]
        bad = gpd.GeoDataFrame(df.iloc[:1].copy(), crs=df.crs)
        x, y = df.geometry.iloc[0].exterior.coords[0]
        bad["geometry"] = [shapely.Polygon([(x, y), (x + 60, y + 60), (x + 60, y), (x, y + 60)])]
        layers["red_line"] = gpd.GeoDataFrame(
            np.concatenate([df.values, bad.values]), columns=df.columns, crs=df.crs)
        return layers

    monkeypatch.setattr(sanqu.pipeline, "space_and_line_layers", with_bowtie)
    counts, red = stops_then_repairs(tmp_path, write_config, ".*invalid")
    assert counts.get("invalid") == 1


def stops_then_repairs(tmp_path, write_config, found: str) -> tuple[dict, np.ndarray]:
    """Run the demo: it stops (``found`` in the message, no output), then repairs.

    Returns the repaired counts of the manifest and the red line read back (valid).
    """
    out = tmp_path / "out"
    with pytest.raises(TopologyError, match=r"^outputs\.topology: outputs fail the topology "
                                            r"gate: " + found):
        sanqu.delineate(load_config(write_config(tmp_path / "stop.yaml")), out)
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    cfg = write_config(tmp_path / "repair.yaml",
                       lambda d: d["outputs"].update(topology={"on_failure": "repair"}))
    sanqu.delineate(load_config(cfg), out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    red = gpd.read_file(out / "sanqu.gpkg", layer="red_line").geometry.values
    assert shapely.is_valid(red).all()
    return manifest["vectors"]["topology"]["repaired_counts"], red


def test_gate_stops_or_repairs_rings_delivered_twice(tmp_path, monkeypatch, write_config):
    real = sanqu.pipeline.space_and_line_layers

    def with_twice(*args, **kwargs):
        layers = real(*args, **kwargs)
        red = layers["red_line"]
        assert isinstance(red, RingLayer)  # delivered as rings
        twice = Rings.concat([red.rings, red.rings.take([0])], red.rings.grid)
        layers["red_line"] = RingLayer(pd.concat([red.table, red.table.iloc[:1]],
                                                 ignore_index=True), twice, red.crs)
        return layers

    monkeypatch.setattr(sanqu.pipeline, "space_and_line_layers", with_twice)
    counts, red = stops_then_repairs(tmp_path, write_config, "1 overlap")
    assert counts == {"overlap": 1}
    assert shapely.area(red).sum() == pytest.approx(shapely.union_all(red).area)  # no overlap


# ------------------------------------------------- the same checks, cell by cell

@pytest.fixture(scope="module")
def cells(demo_run: sanqu.RunResult) -> CellGrid:
    zones = Path(demo_run.out) / "zones.tif"
    with rasterio.open(zones) as ds:
        mask = ds.read(1) > 0
    return CellGrid(grid_of(zones, "zones"), mask)


def cell_box(cells: CellGrid, geom: shapely.Geometry, dx: int = 0) -> shapely.Geometry:
    """The cell under a point of ``geom`` (shifted ``dx`` cells east), as a box."""
    t = cells.grid.transform
    p = shapely.point_on_surface(geom)
    col, row = ~t @ (p.x, p.y)
    x0, y0 = t @ (int(col) + dx, int(row))
    return shapely.box(x0, y0 + t.e, x0 + t.a, y0)


def _cell_overlap(layers, cells):
    eco = layers["eco_space"]
    layers["agri_space"] = np.append(layers["agri_space"], cell_box(cells, eco[biggest(eco)]))


def _cell_gap(layers, cells):
    agri = layers["agri_space"]
    i = biggest(agri)
    agri[i] = agri[i].difference(cell_box(cells, agri[i]))


def _line_outside(layers, cells):
    eco = layers["eco_space"]
    layers["farmland"] = np.append(layers["farmland"], cell_box(cells, eco[biggest(eco)]))


def _lines_overlap(layers, cells):
    red = layers["red_line"]
    layers["farmland"] = np.append(layers["farmland"], red[biggest(red)])


def _areas(report: Report) -> dict[str, float]:
    out: dict[str, float] = {}
    for i in report.issues:
        out[i.kind] = out.get(i.kind, 0.0) + i.area_m2
    return out


def test_cell_by_cell_agrees_with_overlay_on_the_sample(sample, cells):
    report = check(sample[0], RULES, sample[1], MMU, cells)
    assert report.ok, report.summary()
    assert report.outside == {pair: 0.0 for pair in RULES.within}


@pytest.mark.parametrize(("defect", "kinds"), [
    (_cell_overlap, {"overlap"}), (_cell_gap, {"gap"}), (_line_outside, {"outside"}),
    (_lines_overlap, {"overlap", "outside"}),
])
def test_planted_cell_defects_are_found_cell_by_cell_as_by_overlay(sample, cells, defect, kinds):
    layers = {k: v.copy() for k, v in sample[0].items()}
    defect(layers, cells)
    by_cells = check(layers, RULES, sample[1], MMU, cells)
    by_overlay = check(layers, RULES, sample[1], MMU)
    assert set(by_cells.counts()) == set(by_overlay.counts()) >= kinds
    for kind, area in _areas(by_overlay).items():
        assert _areas(by_cells)[kind] == pytest.approx(area, rel=1e-9)
    assert by_cells.outside == pytest.approx(by_overlay.outside)


def test_polygons_off_the_cell_edges_are_checked_by_overlay(sample, cells):
    layers = {k: v.copy() for k, v in sample[0].items()}
    layers["farmland"] = _overlap(layers["farmland"])  # a buffered copy: curved corners
    report = check(layers, RULES, sample[1], MMU, cells)
    assert "overlap" in report.counts()
    assert any("features" in i.detail for i in report.issues)  # the overlay's wording


def test_parts_of_one_feature_sharing_an_edge_are_found_cell_by_cell(sample, cells):
    layers = {k: v.copy() for k, v in sample[0].items()}
    agri = layers["agri_space"]
    i = biggest(agri)
    piece = next(b for dx in range(-2, 3) if agri[i].contains(b := cell_box(cells, agri[i], dx)))
    parts = [*shapely.get_parts(agri[i].difference(piece)), piece]
    agri[i] = shapely.MultiPolygon(parts)  # the same cells, one cut off as a part of its own
    assert not agri[i].is_valid
    report = check(layers, RULES, sample[1], MMU, cells)
    assert report.counts()["invalid"] == 1
    first = report.issues[0]  # the other issues come from GEOS's repaired copy (make_valid)
    assert (first.kind, first.layer, first.detail) == (
        "invalid", "agri_space", f"feature {i + 1}: two of its parts share an edge")
    assert check(sample[0], RULES, sample[1], MMU, cells).ok


def without_a_part(rings: Rings) -> Rings:
    """``rings`` less the first part (shell and holes) of the first feature with two parts."""
    feature = int(np.flatnonzero(rings.parts() > 1)[0])
    first = int(np.flatnonzero(rings.polygon == feature)[0])
    end = first + 1 + int(np.argmax(rings.shell[first + 1:]))  # the next part's shell
    keep = np.ones(len(rings.shell), bool)
    keep[first:end] = False
    size = np.diff(rings.offsets)[keep]
    corners = np.repeat(keep, np.diff(rings.offsets))
    return Rings.of(rings.col[corners], rings.row[corners], np.r_[0, np.cumsum(size)],
                    rings.polygon[keep], rings.shell[keep], rings.features, rings.grid)


def test_levels_cut_by_units_missing_a_patch_stop_the_run(tmp_path, monkeypatch, write_config):
    """Checked while their write is queued or running: no output (a queued write that has not
    started is cancelled: tests/test_writer.py)."""
    real = sanqu.pipeline.traced_by_unit

    def without_first(*args, **kwargs):
        rings, classes, units = real(*args, **kwargs)
        if kwargs.get("per_patch", True):
            return rings, classes, units  # the lines cut by unit: left as they are
        return without_a_part(rings), classes, units  # a patch of the level lost on the way

    monkeypatch.setattr(sanqu.pipeline, "traced_by_unit", without_first)
    out = tmp_path / "out"
    with pytest.raises(TopologyError, match=r"^outputs\.planning_db\.admin_overlay: the levels "
                                            r"of eco_importance cut by units fail the topology "
                                            r"gate: 1 gap"):
        sanqu.delineate(load_config(write_config(tmp_path / "stop.yaml")), out)
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
