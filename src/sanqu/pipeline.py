"""The whole run, stage by stage: ``sanqu delineate`` as a Python function.

Stages, in order, with the module doing each:

1. ``align``     – :mod:`sanqu.align`     open inputs on one study grid
2. ``read``, ``factors``, ``evaluate`` – :mod:`sanqu.study` per block (bounded memory)
3. ``lines``     – :mod:`sanqu.lines`     red line, farmland, growth boundary
4. ``allocate``  – :mod:`sanqu.allocate`  the three spaces
5. ``vectorize`` – :mod:`sanqu.vectorize` polygons per patch
6. ``export``    – :mod:`sanqu.export`    files, area table, manifest

Outputs are written into a temporary folder beside ``out`` and moved into place
only when every stage succeeded, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from . import __version__, planning_db, review
from .align import crs_equivalent
from .allocate import RULES, Allocation, allocate
from .config import PLACEHOLDER, SPACES, UGB_ZONES, Config
from .crs import centre_lon, output_crs, reproject
from .errors import OutputError
from .evaluate import LEVEL_LABELS
from .export import (
    LEVEL_COLOURS,
    LINE_LAYERS,
    SPACE_LAYERS,
    UGB_ZONE_COLOURS,
    ZONE_COLOURS,
    RasterWriter,
    package_versions,
    sha256,
    write_area_table,
    write_gpkg_aliases,
    write_manifest,
    write_raster,
    write_vectors,
)
from .grid import Block
from .lines import LINE_RULES, Lines, draw_lines
from .report import rows as finding_rows
from .report import write_conflicts
from .study import BlockResult, Study, Timer
from .surfaces import Surfaces
from .topology import Rules, gate
from .vectorize import frame, polygonize, smooth_coverage, space_and_line_layers, ugb_frame

#: ``smoothing.tolerance: auto`` in cell sizes: a single step's triangle is half a cell
#: (tolerance 0.707 cells), so 0.75 removes single steps and little more.
AUTO_TOLERANCE = 0.75

#: Callback told ``(stage, done, total)`` as work advances.
Progress = Callable[[str, int, int], None]


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    out : Path
        Output folder.
    areas : list of dict
        The rows of ``areas.csv``.
    report : dict
        Figures recorded by the line rules (conflicts, caps, quotas).
    conflicts : list of dict
        The rows of ``conflicts.csv``: overlaps resolved, cells moved and why,
        quotas (task vs. delineated), cap usage.
    units : list of dict
        The rows of ``units.csv`` (areas per administrative unit); empty without units.
    notes : list of str
        Remarks on the inputs (resampling, CRS equivalence).
    seconds : dict
        Wall-clock seconds per stage.
    cells : int
        Cells in the study grid.
    """

    out: Path
    areas: list[dict[str, object]]
    report: dict[str, float]
    conflicts: list[dict[str, object]]
    units: list[dict[str, object]]
    notes: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    cells: int = 0


def _prepare_out(out: Path, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise OutputError(f"-o {out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"-o {out}: folder is not empty (use --overwrite to replace it)")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        raise OutputError(f"-o {out}: cannot create the output folder ({exc.strerror})") from None
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; OUT should follow the umask like mkdir
    return tmp


def _commit_out(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def area_rows(s: Surfaces, lines: Lines, alloc: Allocation,
              vectors: dict[str, gpd.GeoDataFrame]) -> list[dict[str, object]]:
    """Area per space and line, from raster cells and from the polygons, in hectares."""
    study_cells = int(np.count_nonzero(s.mask))
    rasters = {
        "study_area": s.mask,
        **{k: alloc.zones == code for k, code in zip(SPACE_LAYERS, SPACES.values(), strict=True)},
        **lines.as_dict(),
    }
    names = {"study_area": "研究区", **SPACE_LAYERS, **LINE_LAYERS}
    rows = []
    for key, arr in rasters.items():
        cells = int(np.count_nonzero(arr))
        vec = vectors.get(key)
        rows.append({
            "layer": key,
            "name": names[key],
            "cells": cells,
            "area_ha": round(s.hectares(cells), 4),
            "vector_area_ha": round(float(vec["area_ha"].sum()), 4) if vec is not None else "",
            "polygons": len(vec) if vec is not None else "",
            "share_pct": round(100.0 * cells / study_cells, 3),
        })
    return rows


def delineate(cfg: Config, out: str | Path, *, overwrite: bool = False,
              progress: Progress | None = None, timer: Timer | None = None) -> RunResult:
    """Run the whole pipeline and write every output into ``out``.

    Parameters
    ----------
    cfg : Config
        A validated configuration (see :func:`sanqu.config.load_config`).
    out : str or Path
        Output folder; must be empty or absent unless ``overwrite``.
    overwrite : bool
        Replace an existing non-empty ``out``.
    progress : callable, optional
        Receives ``(stage, done, total)``.
    timer : Timer, optional
        Receives seconds per stage (a fresh one is used when not given).

    Returns
    -------
    RunResult

    Raises
    ------
    SanquError
        On bad inputs or impossible rules; ``out`` is then left untouched.
    """
    out = Path(out)
    new_root = next((p for p in reversed(out.resolve().parents) if not p.exists()), None)
    tmp = _prepare_out(out, overwrite)
    try:
        result = _run(cfg, tmp, progress or (lambda *_: None), timer or Timer())
        _commit_out(tmp, out)
    except BaseException:
        shutil.rmtree(new_root or tmp, ignore_errors=True)  # parents made for OUT go too
        raise
    result.out = out
    return result


def _run(cfg: Config, tmp: Path, progress: Progress, timer: Timer) -> RunResult:
    with timer("align"):
        study = Study(cfg)
    with study:
        grid = study.grid
        total = grid.block_count(cfg.grid.block_size)
        writers = {name: RasterWriter(tmp / f"{name}.tif", grid, LEVEL_COLOURS[name],
                                      cfg.outputs.compress) for name in LEVEL_COLOURS}

        def write_block(block: Block, res: BlockResult) -> None:
            with timer("write"):
                for name, w in writers.items():
                    w.write(res.results[name], block.window)

        try:
            surf = study.surfaces(timer=timer, on_block=write_block,
                                  progress=lambda i: progress("evaluate", i, total))
        finally:
            for w in writers.values():
                w.close()
        notes = study.notes
    progress("lines", 0, 1)
    with timer("lines"):
        lines = draw_lines(surf, cfg.lines.red_line, cfg.lines.farmland, cfg.lines.ugb)
    progress("allocate", 0, 1)
    with timer("allocate"):
        alloc = allocate(surf, lines, cfg.allocation, cfg.lines.farmland.cultivated_classes)
    progress("vectorize", 0, 1)
    with timer("vectorize"):
        vec = vectorize_all(cfg, surf, lines, alloc)
    progress("topology", 0, 1)
    with timer("topology"):
        vec.gate(cfg)
    progress("export", 0, 1)
    with timer("export"):
        write_raster(tmp / "zones.tif", alloc.zones, grid, ZONE_COLOURS, cfg.outputs.compress)
        write_raster(tmp / "allocation_rule.tif", alloc.rule, grid, None, cfg.outputs.compress)
        write_raster(tmp / "line_rule.tif", lines.rule, grid, None, cfg.outputs.compress)
        write_raster(tmp / "ugb_zone.tif", lines.ugb_zone, grid, UGB_ZONE_COLOURS,
                     cfg.outputs.compress)
        write_vectors(tmp, vec.layers, cfg.outputs.gpkg_name, list(LINE_LAYERS),
                      cfg.outputs.shapefile_encoding)
        write_gpkg_aliases(tmp / cfg.outputs.gpkg_name,
                           {k: review.PLAIN_ALIASES for k in vec.layers})
        planning = None
        if cfg.outputs.planning_db.enabled:
            units = (planning_db.disjoint_units(study.units, vec.crs, grid.crs, grid.res[0])
                     if study.units is not None else None)
            planning = planning_db.write(cfg, tmp, vec.layers, vec.levels, vec.crs,
                                         vec.study_area, units)
            notes += [f"{k}: placeholder value {PLACEHOLDER!r} written; set the official code"
                      for k in planning_db.placeholders(cfg)]
        areas = area_rows(surf, lines, alloc, {**vec.layers, "study_area": vec.study_frame()})
        write_area_table(tmp / "areas.csv", areas)
        if cfg.outputs.review:
            review.write(cfg, tmp, vec.layers, vec.crs, vec.study_area, areas, planning,
                         grid.crs)
        conflicts = finding_rows(lines.findings + alloc.findings, grid.cell_area / 10_000)
        write_conflicts(tmp / "conflicts.csv", conflicts)
        units = unit_rows(surf, lines, alloc)
        if units:
            write_area_table(tmp / "units.csv", units)
        write_manifest(tmp / "manifest.json", _manifest(cfg, study, lines, notes, vec))
    return RunResult(tmp, areas, lines.report, conflicts, units, notes, dict(timer.seconds),
                     grid.size)


def unit_rows(s: Surfaces, lines: Lines, alloc: Allocation) -> list[dict[str, object]]:
    """Area per administrative unit of each space and line, with the farmland task.

    One row per unit in code order, then one for cells in no unit (if any) and a
    total; empty when the run has no units.
    """
    if not s.unit_codes:
        return []
    n = len(s.unit_codes)
    quotas = {f.unit_code: f.reference_cells for f in lines.findings
              if f.section == "quota" and f.unit_code}
    layers = {"study_area": s.mask,
              **{k: alloc.zones == c for k, c in zip(SPACE_LAYERS, SPACES.values(), strict=True)},
              **lines.as_dict()}
    cells = {k: np.bincount(s.unit[v & s.mask], minlength=n + 1) for k, v in layers.items()}
    out = []
    for u in [*range(1, n + 1), 0, None]:
        if u == 0 and not cells["study_area"][0]:
            continue
        code, name = (("", "合计") if u is None else ("", "(outside every unit)") if u == 0
                      else (s.unit_codes[u - 1], s.unit_names[u - 1]))
        row: dict[str, object] = {"unit_code": code, "unit_name": name}
        for k, c in cells.items():
            row[f"{k}_ha"] = round(s.hectares(c.sum() if u is None else c[u]), 4)
        task = (sum(v or 0 for v in quotas.values()) if u is None
                else quotas.get(code) if u else None)
        row["farmland_task_ha"] = "" if task is None else round(s.hectares(task), 4)
        out.append(row)
    return out


@dataclass
class Vectors:
    """The vector layers of a run, in the output CRS.

    Attributes
    ----------
    layers : dict of GeoDataFrame
        The three spaces and the three lines (plain fields).
    levels : dict of list of numpy.ndarray
        Per evaluation result and level 1, 2, 3, one MultiPolygon of its patches
        (none for an absent level; no results when the planning database is off).
    study_area : shapely.Geometry
        The study area on cell edges (the outline every coverage keeps).
    crs : pyproj.CRS
        The output CRS.
    tolerance : float
        Smoothing tolerance used, in metres.
    topology : dict
        The gate's report (what was repaired).
    """

    layers: dict[str, gpd.GeoDataFrame]
    levels: dict[str, list[np.ndarray]]
    study_area: shapely.Geometry
    crs: CRS
    tolerance: float
    topology: dict[str, object] = field(default_factory=dict)

    def study_frame(self) -> gpd.GeoDataFrame:
        """The study area as a one-feature layer."""
        return frame(np.array([self.study_area], dtype=object), self.crs, 0, "研究区")

    def gate(self, cfg: Config) -> None:
        """Pass every layer through the topology gate (repairing if the config says so).

        Raises
        ------
        TopologyError
            When a layer fails and ``outputs.topology.on_failure`` is ``stop``.
        """
        spec = cfg.outputs.topology
        geoms = {k: df.geometry.values for k, df in self.layers.items() if k != "ugb"}
        ugb = self.layers["ugb"]
        zones = [f"ugb:{z}" for z in UGB_ZONES]
        geoms.update({f"ugb:{z}": ugb.geometry.values[ugb["zone"].to_numpy() == z]
                      for z in UGB_ZONES})
        for result, parts in self.levels.items():
            geoms.update({f"{result}:{i}": g for i, g in enumerate(parts, start=1)})
        lines = ("red_line", "farmland", *zones)
        rules = Rules(
            coverages=(tuple(SPACE_LAYERS),
                       *[tuple(f"{r}:{i}" for i in (1, 2, 3)) for r in self.levels]),
            disjoint=lines,
            within=(("red_line", "eco_space"), ("farmland", "agri_space"),
                    *[(z, "urban_space") for z in zones]),
        )
        fixed, report = gate(geoms, rules, self.study_area, spec.min_area_m2,
                             repair_failures=spec.on_failure == "repair")
        names = {**SPACE_LAYERS, **LINE_LAYERS}
        codes = {**dict(zip(SPACE_LAYERS, SPACES.values(), strict=True)),
                 **dict(zip(LINE_LAYERS, SPACES.values(), strict=True))}
        for key in ("eco_space", "agri_space", "urban_space", "red_line", "farmland"):
            self.layers[key] = frame(fixed[key], self.crs, codes[key], names[key])
        self.layers["ugb"] = ugb_frame([fixed[z] for z in zones], self.crs, codes["ugb"],
                                       names["ugb"], UGB_ZONES)
        for result in self.levels:
            self.levels[result] = [fixed[f"{result}:{i}"] for i in (1, 2, 3)]
        self.topology = report.as_dict()


def vectorize_all(cfg: Config, s: Surfaces, lines: Lines, alloc: Allocation) -> Vectors:
    """Smoothed polygons of the spaces, lines and evaluation levels, in the output CRS.

    The spaces and lines come from one coverage (:func:`space_and_line_layers`);
    each evaluation result is a coverage of its own. All keep the study area's
    outline on cell edges. The output CRS follows ``outputs.crs``
    (:func:`sanqu.crs.output_crs`, zone from the study area's centroid).
    """
    grid = s.grid
    tol_spec = cfg.outputs.smoothing.tolerance
    tol = AUTO_TOLERANCE * grid.res[0] if tol_spec == "auto" else float(tol_spec)
    layers = space_and_line_layers(alloc.zones, lines.red_line, lines.farmland, lines.ugb_zone,
                                   grid, tol, {**SPACE_LAYERS, **LINE_LAYERS}, UGB_ZONES)
    study_area = shapely.union_all(polygonize(s.mask, grid).geometry.values)
    levels: dict[str, list[np.ndarray]] = {}
    if cfg.outputs.planning_db.enabled:
        for result, arr in (("eco_importance", s.eco), ("agri_suitability", s.agri),
                            ("urban_suitability", s.urban)):
            df = polygonize(np.where(s.mask, arr, 0), grid)
            geoms = df.geometry.values.to_numpy()
            if cfg.outputs.smoothing.evaluations:
                geoms = smooth_coverage(geoms, tol, grid)
            codes = df["code"].to_numpy()
            levels[result] = [_one_feature(geoms[codes == lv]) for lv in (1, 2, 3)]
    c = shapely.centroid(study_area)
    out = output_crs(cfg.outputs.crs, centre_lon(c.x, c.y, grid.crs), grid.crs,
                     form=cfg.outputs.gk_form, zone=cfg.outputs.gk_zone)
    if crs_equivalent(out, grid.crs):
        for df in layers.values():
            df.set_crs(out, allow_override=True, inplace=True)
    else:
        cell = grid.res[0]
        layers = {k: df.set_geometry(reproject(df.geometry.values, grid.crs, out, cell), crs=out)
                  for k, df in layers.items()}
        levels = {k: [reproject(g, grid.crs, out, cell) for g in v] for k, v in levels.items()}
        study_area = reproject(np.array([study_area], dtype=object), grid.crs, out, cell)[0]
    return Vectors(layers, levels, study_area, out, tol)


def _one_feature(parts: np.ndarray) -> np.ndarray:
    """The patches of one evaluation level as one MultiPolygon (none when there are none).

    Patches of one level touch at most at a corner, so collecting them needs no union.
    """
    if len(parts) == 0:
        return np.zeros(0, dtype=object)
    return np.array([shapely.multipolygons(parts)], dtype=object)


def _manifest(cfg: Config, study: Study, lines: Lines, notes: list[str],
              vec: Vectors) -> dict[str, object]:
    inputs = {}
    for name, spec in cfg.inputs.items():
        inputs[name] = {"path": str(spec.path), "sha256": sha256(spec.path)}
    g = study.grid
    return {
        "sanqu": __version__,
        "config_file": str(cfg.source) if cfg.source else None,
        "config": cfg.model_dump(mode="json", by_alias=True),
        "inputs": inputs,
        "grid": {"crs": g.crs.to_string(), "transform": list(g.transform)[:6],
                 "shape": list(g.shape)},
        "vectors": {"crs": vec.crs.to_string(), "smoothing_tolerance_m": vec.tolerance,
                    "topology": vec.topology},
        "evaluation": {
            name: {"levels": list(LEVEL_LABELS[name]), "ahp_consistency": ev.consistency,
                   "weights": ev.weights}
            for name, ev in study.evaluations.items()
        },
        "allocation_rules": RULES,
        "line_rules": LINE_RULES,
        "ugb_zones": UGB_ZONES,
        "line_report": lines.report,
        "notes": notes,
        "versions": package_versions(),
    }
