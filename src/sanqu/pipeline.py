"""The whole run, stage by stage: ``sanqu delineate`` and ``sanqu evaluate`` as functions.

Stages of :func:`delineate`, in order, with the module doing each:

1. ``align``     – :mod:`sanqu.align`     open inputs on one study grid
2. ``read``, ``factors``, ``evaluate`` – :mod:`sanqu.study` per block (bounded memory),
   then the whole-area evaluation steps (contiguity) on the compact grade rasters
3. ``lines``     – :mod:`sanqu.lines`     red line, farmland, growth boundary
4. ``allocate``  – :mod:`sanqu.allocate`  the three spaces
5. ``vectorize`` – :mod:`sanqu.vectorize` polygons per patch
6. ``topology``  – :mod:`sanqu.topology`  the gate every vector output passes
7. ``export``    – :mod:`sanqu.export`, :mod:`sanqu.planning_db`, :mod:`sanqu.review`
   files, area table, manifest

Stages 5-7 run once for the spaces and lines and once per evaluation result
(:func:`deliver_vectors`; :func:`deliver_levels` when the result is cut by units
on the raster), so only one group of polygons is held at a time; on cell edges
they are held as rings (:class:`sanqu.lattice.Rings`), never as GEOS objects.

:func:`evaluate` runs stages 1-2 with the same engine and writes the three results,
every intermediate grade raster, the class-area table and what each step changed.

Outputs are written into a temporary folder beside ``out`` and moved into place
only when every stage succeeded, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numba import njit
from pyproj import CRS

from . import __version__, planning_db, review
from .align import crs_equivalent
from .allocate import RULES, Allocation, allocate
from .config import PLACEHOLDER, SPACES, UGB_ZONES, Config
from .crs import centre_lon, output_crs, reproject
from .errors import OutputError
from .evaluate import LEVEL_LABELS, StepStats
from .export import (
    LEVEL_COLOURS,
    LINE_LAYERS,
    SPACE_LAYERS,
    UGB_ZONE_COLOURS,
    ZONE_COLOURS,
    RasterWriter,
    RingLayer,
    features,
    grade_colours,
    package_versions,
    sha256,
    write_area_table,
    write_gpkg_aliases,
    write_manifest,
    write_raster,
    write_vectors,
)
from .grid import Block, Grid
from .heap import kept_pages, release_heap
from .lattice import Rings
from .lines import LINE_RULES, Lines, draw_lines
from .report import rows as finding_rows
from .report import write_conflicts
from .study import BlockResult, Study, Timer
from .surfaces import RESULT_ATTRS, Surfaces
from .topology import CellGrid, Rules, TopologyError, check, gate
from .vectorize import (
    FARM,
    KEEP_CELLS,
    RED,
    UGB_FIRST,
    frame,
    line_codes,
    polygonize,
    polygonize_by_unit,
    smooth_coverage,
    space_and_line_layers,
    traced_by_unit,
    ugb_frame,
    unit_keys,
)
from .writer import Writer, uses_process

#: ``smoothing.tolerance: auto`` in cell sizes: a single step's triangle is half a cell
#: (tolerance 0.707 cells), so 0.75 removes single steps and little more.
AUTO_TOLERANCE = 0.75

#: Callback told ``(stage, done, total)`` as work advances.
Progress = Callable[[str, int, int], None]


@dataclass(kw_only=True)
class Outcome:
    """What a run wrote and how long it took.

    Attributes
    ----------
    out : Path
        Output folder.
    areas : list of dict
        The rows of the run's area table.
    notes : list of str
        Remarks: alignment (resampling, CRS equivalence), factors and evaluation
        steps skipped for missing optional inputs.
    seconds : dict
        Wall-clock seconds per stage.
    cells : int
        Cells in the study grid.
    """

    out: Path
    areas: list[dict[str, object]]
    notes: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    cells: int = 0


@dataclass(kw_only=True)
class RunResult(Outcome):
    """What ``sanqu delineate`` produced.

    An :class:`Outcome` whose ``areas`` are the rows of ``areas.csv``, with ``report``,
    the figures recorded by the line rules (conflicts, caps, quotas); ``conflicts``,
    the rows of ``conflicts.csv`` (overlaps resolved, cells moved and why, quotas as
    task vs. delineated, cap usage); and ``units``, the rows of ``units.csv`` (areas
    per administrative unit; empty without units).
    """

    report: dict[str, float]
    conflicts: list[dict[str, object]]
    units: list[dict[str, object]]


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


#: Per vector layer: (area in hectares, number of polygons).
LayerStats = dict[str, tuple[float, int]]


def layer_stats(layers: dict[str, gpd.GeoDataFrame]) -> LayerStats:
    """Area (ha) and polygon count of each layer, for :func:`area_rows`."""
    return {k: (float(df["area_ha"].sum()), len(df)) for k, df in layers.items()}


#: The layers of the area tables, in order, and their names.
AREA_LAYERS = {"study_area": "研究区", **SPACE_LAYERS, **LINE_LAYERS}


def layer_cells(s: Surfaces, lines: Lines, alloc: Allocation) -> tuple[np.ndarray, np.ndarray]:
    """Cells of each of :data:`AREA_LAYERS`: in all, and per unit in the study area.

    One pass over the rasters (no boolean raster of a space, no copy of the unit
    raster). The per-unit counts have a column per unit index (0: in no unit),
    one when there are no units.

    Returns
    -------
    total : numpy.ndarray of int64, shape (7,)
    by_unit : numpy.ndarray of int64, shape (7, units + 1)
    """
    n = len(s.unit_codes)
    total = np.zeros(len(AREA_LAYERS), dtype=np.int64)
    by_unit = np.zeros((n + 1, len(AREA_LAYERS)), dtype=np.int64)  # a unit's counts together
    flat = [np.ascontiguousarray(a).ravel() for a in (s.mask, alloc.zones, lines.red_line,
                                                       lines.farmland, lines.ugb)]
    unit = np.ascontiguousarray(s.unit).ravel() if n else np.zeros(0, dtype=np.uint16)
    _count_cells(unit, *flat, np.array(list(SPACES.values()), dtype=np.uint8), total, by_unit)
    return total, by_unit.T


@njit(cache=True, nogil=True)
def _count_cells(unit: np.ndarray, mask: np.ndarray, zones: np.ndarray, red: np.ndarray,
                 farm: np.ndarray, ugb: np.ndarray, spaces: np.ndarray, total: np.ndarray,
                 by_unit: np.ndarray) -> None:
    """:func:`layer_cells` cell by cell (every layer its own sum: no chain of stores)."""
    eco, agri, urban = spaces[0], spaces[1], spaces[2]
    for i in range(mask.size):
        m, z, r, f, g = mask[i], zones[i], red[i], farm[i], ugb[i]
        total[0] += m
        total[1] += z == eco
        total[2] += z == agri
        total[3] += z == urban
        total[4] += r
        total[5] += f
        total[6] += g
        if m:  # the study area: long runs along a row
            u = unit[i] if unit.size else 0
            by_unit[u, 0] += 1
            by_unit[u, 1] += z == eco
            by_unit[u, 2] += z == agri
            by_unit[u, 3] += z == urban
            by_unit[u, 4] += r
            by_unit[u, 5] += f
            by_unit[u, 6] += g


def area_rows(s: Surfaces, lines: Lines, alloc: Allocation, vectors: LayerStats,
              cells: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict[str, object]]:
    """Area per space and line, from raster cells and from the polygons, in hectares.

    ``vectors`` gives each vector layer's area and polygon count
    (:func:`layer_stats`); layers missing from it get empty vector columns.
    ``cells`` is :func:`layer_cells`, if already counted.
    """
    total, _ = cells if cells is not None else layer_cells(s, lines, alloc)
    study_cells = int(total[0])
    rows = []
    for (key, name), count in zip(AREA_LAYERS.items(), total.tolist(), strict=True):
        rows.append({
            "layer": key,
            "name": name,
            "cells": count,
            "area_ha": round(s.hectares(count), 4),
            "vector_area_ha": "",
            "polygons": "",
            "share_pct": round(100.0 * count / study_cells, 3),
        })
    return with_vectors(rows, vectors)


def with_vectors(rows: list[dict[str, object]], vectors: LayerStats) -> list[dict[str, object]]:
    """:func:`area_rows` with the vector columns filled from ``vectors`` (where given)."""
    for row in rows:
        if row["layer"] in vectors:
            area, polygons = vectors[str(row["layer"])]
            row["vector_area_ha"], row["polygons"] = round(area, 4), polygons
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
    return _atomic(_run, cfg, Path(out), overwrite, progress, timer)


def _atomic(run: Callable[..., Any], cfg: Config, out: Path, overwrite: bool,
            progress: Progress | None, timer: Timer | None) -> Any:
    """Run ``run`` into a temporary folder beside ``out``; move it into place on success."""
    new_root = next((p for p in reversed(out.resolve().parents) if not p.exists()), None)
    tmp = _prepare_out(out, overwrite)
    try:
        result = run(cfg, tmp, progress or (lambda *_: None), timer or Timer())
        _commit_out(tmp, out)
    except BaseException:
        shutil.rmtree(new_root or tmp, ignore_errors=True)  # parents made for OUT go too
        raise
    result.out = out
    return result


def _run(cfg: Config, tmp: Path, progress: Progress, timer: Timer) -> RunResult:
    with timer("align"):
        study = Study(cfg)
    compress = cfg.outputs.compress
    with kept_pages():  # the raster stages reuse the pages they free
        with study:
            grid = study.grid
            total = grid.block_count(cfg.grid.block_size)
            surf = study.surfaces(timer=timer, progress=lambda i: progress("evaluate", i, total))
            notes = study.notes
        # the GeoTIFFs are written on a thread of their own, the evaluation results beside
        # the lines (a core is free: the lines and the allocation are one thread's work)
        with ThreadPoolExecutor(1, thread_name_prefix="sanqu-geotiff") as geotiffs:
            levels_written = geotiffs.submit(write_levels, tmp, surf, compress)
            progress("lines", 0, 1)
            with timer("lines"):
                lines = draw_lines(surf, cfg.lines.red_line, cfg.lines.farmland, cfg.lines.ugb)
            progress("allocate", 0, 1)
            with timer("allocate"):
                alloc = allocate(surf, lines, cfg.allocation,
                                 cfg.lines.farmland.cultivated_classes)
            with timer("write"):
                levels_written.result()
            # the spaces' GeoTIFFs beside the tables; done before the vector stages' peak
            rasters_written = geotiffs.submit(write_rasters, tmp, grid, alloc, lines, compress)
            counted = layer_cells(surf, lines, alloc)
            areas = area_rows(surf, lines, alloc, {}, counted)  # polygons' columns once delivered
            units = unit_rows(surf, lines, alloc, counted)
            conflicts = finding_rows(lines.findings + alloc.findings, grid.cell_area / 10_000)
            with timer("export"):
                rasters_written.result()
        held = Held(*_for_vectors(surf, lines, alloc))
        lines = replace(lines, red_line=RELEASED, farmland=RELEASED, ugb=RELEASED,
                        ugb_zone=RELEASED, rule=RELEASED)  # its report stays, for the manifest
        del surf, alloc
    vec = deliver_vectors(cfg, tmp, study, held, progress, timer)
    with timer("export"):
        if cfg.outputs.planning_db.enabled:
            notes += [f"{k}: placeholder value {PLACEHOLDER!r} written; set the official code"
                      for k in planning_db.placeholders(cfg)]
        areas = with_vectors(areas, vec.stats)
        write_area_table(tmp / "areas.csv", areas)
        if cfg.outputs.review:
            review.write(cfg, tmp, vec.crs, areas, vec.planning, grid.crs, vec.outside)
        write_conflicts(tmp / "conflicts.csv", conflicts)
        if units:
            write_area_table(tmp / "units.csv", units)
        write_manifest(tmp / "manifest.json", _manifest(cfg, study, notes, lines, vec))
    return RunResult(out=tmp, areas=areas, report=lines.report, conflicts=conflicts, units=units,
                     notes=notes, seconds=dict(timer.seconds), cells=grid.size)


def gate_and_write(timer: Timer, writer: Writer, gate: Callable[[], None],
                   write: Callable[[], Future[Any]], *, repairs: bool) -> Future[Any]:
    """Pass a group through the gate and hand it to ``writer``, in the order that keeps both busy.

    A gate that only checks (``outputs.topology.on_failure: stop``, and the
    checks that are never repaired) leaves the group as it is, so the group is
    handed over first (:meth:`Writer.queued`: its write starts as soon as the
    writer is done with the previous group, even while the gate runs) and
    checked while it waits or is written; if the check then fails, the run
    stops and its output is removed as for any other error. A gate that may
    repair the group (``repairs``) always runs first: the writer gets the
    repaired group.

    Parameters
    ----------
    timer : Timer
        Receives the gate's time, as ``topology`` (:func:`gating`).
    writer : Writer
        Where the group is written.
    gate : callable
        Checks the group (raising :class:`~sanqu.topology.TopologyError`).
    write : callable
        Submits the group's write to ``writer``; its future.
    repairs : bool
        Whether ``gate`` may change the group.

    Returns
    -------
    concurrent.futures.Future
        The write.
    """
    if repairs:
        with gating(timer):
            gate()
        return write()
    with writer.queued():
        job = write()
        with gating(timer):
            gate()
    return job


@contextmanager
def gating(timer: Timer) -> Iterator[None]:
    """The ``topology`` stage of a vector group, its heap trimmed first.

    After the raster stages' kept pages (:func:`sanqu.heap.kept_pages`) the vector
    stages' blocks come from the heap's holes and stay resident when freed; the
    tracing's leftovers are handed back before the gate reaches its peak, beside
    the writer process's memory.
    """
    release_heap()
    with timer("topology"):
        yield


#: Stands in for a raster no later stage reads (its memory is released).
RELEASED = np.zeros((0, 0), dtype=bool)


def _for_vectors(surf: Surfaces, lines: Lines, alloc: Allocation
                 ) -> tuple[Surfaces, Lines, Allocation]:
    """The run's rasters without those only the lines and allocation read (once written).

    The vector stages, the area tables and the manifest read the study mask, the
    evaluation levels, the units, the spaces and the lines; the land-use classes,
    the line and allocation inputs and the decision-code rasters are released,
    about 8 bytes a cell (800 MB at 10⁸ cells).
    """
    surf = replace(surf, landclass=RELEASED, steep=RELEASED, protected=RELEASED,
                   slope_grade=RELEASED, near_grade=RELEASED, special=RELEASED)
    return surf, replace(lines, rule=RELEASED), replace(alloc, rule=RELEASED)


@dataclass
class Delivered:
    """What the vector stages wrote, once their geometries are gone.

    Attributes
    ----------
    stats : dict
        Per plain layer (and ``study_area``): area in hectares and polygon count.
    crs : pyproj.CRS
        The output CRS.
    tolerance : float
        Smoothing tolerance used, in metres.
    topology : dict
        The gate's reports merged: issues left (none) and what was repaired.
    outside : dict
        Per line, its area (m²) outside its space, as the gate measured it.
    planning : list of str or None
        Planning-database layers written (None when it is off).
    """

    stats: LayerStats
    crs: CRS
    tolerance: float
    topology: dict[str, object]
    outside: dict[str, float]
    planning: list[str] | None


@dataclass
class Held:
    """The rasters the vector stages read, handed to :func:`deliver_vectors`.

    It releases the spaces and lines (``lines``, ``alloc``) once their group is
    written, and each evaluation result of ``surf`` once its own is: the caller
    keeps no other reference to them.
    """

    surf: Surfaces
    lines: Lines | None
    alloc: Allocation | None


def write_plain(cfg: Config, tmp: Path, layers: dict[str, gpd.GeoDataFrame | RingLayer]
                ) -> None:
    """Write the spaces and lines: ``sanqu.gpkg`` (with aliases) and the line shapefiles."""
    write_vectors(tmp, layers, cfg.outputs.gpkg_name, list(LINE_LAYERS),
                  cfg.outputs.shapefile_encoding)
    write_gpkg_aliases(tmp / cfg.outputs.gpkg_name, {k: review.PLAIN_ALIASES for k in layers})


def deliver_vectors(cfg: Config, tmp: Path, study: Study, held: Held, progress: Progress,
                    timer: Timer) -> Delivered:
    """Vectorize, gate and write the polygon outputs, one group of layers at a time.

    First the spaces and lines (``sanqu.gpkg``, the line shapefiles and the
    planning-database line layers), then each evaluation result (its planning
    layer). A group is written beside the run (:class:`sanqu.writer.Writer`: on a
    second thread, or from :data:`~sanqu.writer.PROCESS_CELLS` cells in the writer
    process, which starts while the first group is traced) while the next is
    traced and gated (and, as soon as the writer is free, while the group itself is
    gated: :func:`gate_and_write`), and its polygons are dropped once written, so memory
    holds two groups at most, not every layer of the delivery; so are the
    rasters of ``held`` no later group reads.
    """
    with Writer(timer, process=uses_process(held.surf.grid.size)) as writer:
        done, planning = _deliver_vectors(cfg, tmp, study, held, progress, timer, writer)
    if planning is not None:
        done.planning = [name for job in planning for name in job.result()]
    return done


def _deliver_vectors(cfg: Config, tmp: Path, study: Study, held: Held, progress: Progress,
                     timer: Timer, writer: Writer
                     ) -> tuple[Delivered, list[Future[list[str]]] | None]:
    """:func:`deliver_vectors`, its writes handed to ``writer``; the planning jobs."""
    planning_on = cfg.outputs.planning_db.enabled
    grid = held.surf.grid
    release_heap()  # what the raster stages freed
    progress("vectorize", 0, 1)
    with timer("vectorize"):
        vec = vectorize_lines(cfg, held.surf, held.lines, held.alloc, rings=True)
    progress("topology", 0, 1)
    repairs = cfg.outputs.topology.on_failure == "repair"
    gate_and_write(timer, writer, partial(vec.gate, cfg),
                   lambda: writer.submit(write_plain, cfg, tmp, vec.layers),
                   repairs=repairs)
    progress("export", 0, 1)
    overlay_units: list[Any] = []  # the disjoint unit polygons, made once if needed

    def units_for(on_raster: bool) -> Any:
        if study.units is None or on_raster:
            return study.units  # codes and names only
        if not overlay_units:
            overlay_units.append(planning_db.disjoint_units(study.units, vec.crs, grid.crs,
                                                            grid.res[0]))
        return overlay_units[0]

    done = Delivered({**layer_stats(vec.layers),
                      "study_area": (vec.study_area.area / 10_000, 1)},
                     vec.crs, vec.tolerance, vec.topology, vec.outside, None)
    planning: list[Future[list[str]]] = []
    planning_lines, vec.layers = vec.layers, {}  # the writer holds them until written
    if planning_on:
        on_raster = (units_on_cells(cfg, held.surf, vec) and not vec.topology["repaired"]
                     and cfg.outputs.planning_db.admin_overlay == "split")
        units = units_for(on_raster)
        if on_raster:
            planning_lines = {}  # the lines are cut anew on the raster
            with timer("vectorize"):
                cut = lines_by_unit(held.surf, held.lines, vec.crs)
            planning.append(gate_and_write(
                timer, writer, partial(gate_lines_by_unit, cfg, cut, vec),
                partial(writer.submit, planning_db.write, cfg, tmp, cut, {}, vec.crs, units),
                repairs=False))
            del cut
        else:
            planning.append(writer.submit(planning_db.write, cfg, tmp, planning_lines, {},
                                          vec.crs, units))
    del planning_lines
    held.lines = held.alloc = None
    release_heap()
    by_level = (planning_on and units_on_cells(cfg, held.surf, vec, evaluation=True)
                and cfg.outputs.planning_db.admin_overlay == "split")
    for result in RESULT_ATTRS if planning_on else ():
        if by_level:
            planning.append(deliver_levels(cfg, tmp, held.surf, result, vec, units_for(True),
                                           timer, writer))
            held.surf = replace(held.surf, **{RESULT_ATTRS[result]: RELEASED})
            continue
        with timer("vectorize"):
            levels, level_units = vectorize_levels(cfg, held.surf, result, vec)
            held.surf = replace(held.surf, **{RESULT_ATTRS[result]: RELEASED})
            vec.levels = {result: levels}
            vec.level_units = {result: level_units} if level_units is not None else {}
            del levels  # vec holds them, then the writer alone
        planning.append(gate_and_write(
            timer, writer, partial(vec.gate, cfg),
            partial(_write_levels, writer, cfg, tmp, vec, units_for, result),
            repairs=repairs))
        done.topology = merge_reports(done.topology, vec.topology)
        vec.levels = {}
        vec.level_units = {}
        release_heap()
    return done, planning if planning_on else None


def _write_levels(writer: Writer, cfg: Config, tmp: Path, vec: Vectors,
                  units_for: Callable[[bool], Any], result: str) -> Future[list[str]]:
    """Submit the planning layer of ``result``, whose levels ``vec`` holds as gated.

    The units are chosen after the gate: a repaired result has lost its units
    on the raster (:meth:`Vectors.gate`) and is cut by the unit polygons.
    """
    return writer.submit(planning_db.write, cfg, tmp, {}, vec.levels, vec.crs,
                         units_for(result in vec.level_units), vec.level_units)


def lines_by_unit(s: Surfaces, lines: Lines, crs: CRS) -> dict[str, RingLayer]:
    """The three lines cut by administrative unit on the raster, for the planning database.

    The lines' raster (:func:`sanqu.vectorize.line_codes`) combined with the unit
    raster is traced once (:func:`sanqu.vectorize.traced_by_unit`): one polygon
    per patch of a line (a UGB sub-zone) within one unit, kept as rings.

    Returns
    -------
    dict of RingLayer
        ``red_line``, ``farmland``, ``ugb``: ``unit`` (index 1..n, 0 in no unit) and
        the rings, in unit order; ``ugb`` also ``zone`` and ``zone_name``.
    """
    codes = line_codes(lines.red_line, lines.farmland, lines.ugb_zone)
    rings, line, unit = traced_by_unit(codes, s.unit, len(s.unit_codes), s.grid,
                                       UGB_FIRST + len(UGB_ZONES))
    del codes

    def pieces(pick: np.ndarray, **extra: object) -> RingLayer:
        pick = np.flatnonzero(pick)
        return RingLayer(pd.DataFrame({"unit": unit[pick], **extra}), rings.take(pick), crs)

    ugb = line >= UGB_FIRST
    zone = line[ugb] - (UGB_FIRST - 1)
    return {"red_line": pieces(line == RED), "farmland": pieces(line == FARM),
            "ugb": pieces(ugb, zone=zone, zone_name=[UGB_ZONES[int(z)] for z in zone])}


def gate_lines_by_unit(cfg: Config, pieces: dict[str, gpd.GeoDataFrame | RingLayer],
                       vec: Vectors) -> None:
    """Check the lines cut by unit (:func:`lines_by_unit`): valid and disjoint, cell by cell.

    Raises
    ------
    TopologyError
        When they fail (a bug: they are traced from the rasters the plain layers
        passed the gate with); never repaired.
    """
    geoms = {"red_line": features(pieces["red_line"]), "farmland": features(pieces["farmland"]),
             **ugb_zone_features(pieces["ugb"])}
    report = check(geoms, Rules(disjoint=tuple(geoms)), vec.study_area,
                   cfg.outputs.topology.min_area_m2, vec.cells)
    if not report.ok:
        raise TopologyError("outputs.planning_db.admin_overlay: cutting the lines by units "
                            f"broke the topology: {report.summary()}", report)


def merge_reports(a: dict[str, Any], b: dict[str, Any]) -> dict[str, object]:
    """Two of the gate's reports (:meth:`sanqu.topology.Report.as_dict`) as one.

    Examples
    --------
    >>> merge_reports({"issues": [], "repaired": ["x"], "repaired_counts": {"gap": 1}},
    ...               {"issues": [], "repaired": ["y"], "repaired_counts": {"gap": 1}})
    {'issues': [], 'repaired': ['x', 'y'], 'repaired_counts': {'gap': 2}}
    """
    counts = dict(a["repaired_counts"])
    for kind, n in b["repaired_counts"].items():
        counts[kind] = counts.get(kind, 0) + n
    return {"issues": a["issues"] + b["issues"], "repaired": a["repaired"] + b["repaired"],
            "repaired_counts": counts}


def unit_rows(s: Surfaces, lines: Lines, alloc: Allocation,
              cells: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict[str, object]]:
    """Area per administrative unit of each space and line, with the farmland task.

    One row per unit in code order, then one for cells in no unit (if any) and a
    total; empty when the run has no units. ``cells`` is :func:`layer_cells`, if
    already counted.
    """
    if not s.unit_codes:
        return []
    n = len(s.unit_codes)
    quotas = {f.unit_code: f.reference_cells for f in lines.findings
              if f.section == "quota" and f.unit_code}
    cells = dict(zip(AREA_LAYERS, (cells or layer_cells(s, lines, alloc))[1], strict=True))
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


def write_rasters(out: Path, grid: Grid, alloc: Allocation, lines: Lines, compress: str) -> None:
    """Write the spaces (``zones.tif``), the decision-code rasters and the UGB sub-zones."""
    write_raster(out / "zones.tif", alloc.zones, grid, ZONE_COLOURS, compress)
    write_raster(out / "allocation_rule.tif", alloc.rule, grid, None, compress)
    write_raster(out / "line_rule.tif", lines.rule, grid, None, compress)
    write_raster(out / "ugb_zone.tif", lines.ugb_zone, grid, UGB_ZONE_COLOURS, compress)


def write_levels(out: Path, s: Surfaces, compress: str) -> None:
    """Write the three evaluation results (levels 1..3) as colour-tabled GeoTIFFs."""
    for name, attr in RESULT_ATTRS.items():
        write_raster(out / f"{name}.tif", getattr(s, attr), s.grid, LEVEL_COLOURS[name],
                     compress)


@dataclass(kw_only=True)
class EvaluationRun(Outcome):
    """What ``sanqu evaluate`` produced.

    An :class:`Outcome` whose ``areas`` are the class-area table
    (``evaluation_areas.csv``: cells and hectares per result and level), with ``steps``
    (``evaluation_steps.csv``): per step its status, cells per grade, and for
    corrections the cells they changed.
    """

    steps: list[dict[str, object]]


def evaluate(cfg: Config, out: str | Path, *, overwrite: bool = False,
             progress: Progress | None = None, timer: Timer | None = None) -> EvaluationRun:
    """Run the 双评价 only and write its results, every intermediate grade and its tables.

    Writes into ``out``: ``<result>.tif`` (levels 1..3, as ``delineate`` writes them),
    ``evaluation/<result>/<step>.tif`` for every step that ran (uint8 grades, tiled,
    compressed; per-cell steps written block by block), ``evaluation_areas.csv``,
    ``evaluation_steps.csv`` and ``manifest.json``. The same engine as
    :func:`delineate`; only this function writes the intermediate rasters.

    Parameters
    ----------
    cfg : Config
        A validated configuration.
    out : str or Path
        Output folder; must be empty or absent unless ``overwrite``.
    overwrite : bool
        Replace an existing non-empty ``out``.
    progress : callable, optional
        Receives ``(stage, done, total)``.
    timer : Timer, optional
        Receives seconds per stage.

    Returns
    -------
    EvaluationRun

    Raises
    ------
    SanquError
        On bad inputs or rules; ``out`` is then left untouched.
    """
    return _atomic(_evaluate, cfg, Path(out), overwrite, progress, timer)


def _evaluate(cfg: Config, tmp: Path, progress: Progress, timer: Timer) -> EvaluationRun:
    with timer("align"):
        study = Study(cfg)
    with kept_pages(), study:  # the evaluation reuses the pages it frees
        grid = study.grid
        total = grid.block_count(cfg.grid.block_size)
        stats = {r: ev.stats() for r, ev in study.evaluations.items()}
        writers: dict[tuple[str, str], RasterWriter] = {}

        def writer(result: str, step: str) -> RasterWriter:
            if (result, step) not in writers:
                folder = tmp / "evaluation" / result
                folder.mkdir(parents=True, exist_ok=True)
                scale = stats[result][step].counts.size - 1
                writers[(result, step)] = RasterWriter(folder / f"{step}.tif", grid,
                                                       grade_colours(scale), cfg.outputs.compress)
            return writers[(result, step)]

        def write_block(block: Block, res: BlockResult) -> None:
            with timer("write"):
                for result, steps in res.steps.items():
                    for step, grades in steps.items():
                        writer(result, step).write(grades, block.window)

        def write_area(result: str, step: str, grades: np.ndarray) -> None:
            with timer("write"):
                writer(result, step).write(grades)

        try:
            surf = study.surfaces(timer=timer, on_block=write_block, keep=True, stats=stats,
                                  on_area=write_area,
                                  progress=lambda i: progress("evaluate", i, total))
        finally:
            for w in writers.values():
                w.close()
        notes = study.notes
        progress("export", 0, 1)
        with timer("export"):
            write_levels(tmp, surf, cfg.outputs.compress)
            areas = class_area_rows(surf)
            steps = step_rows(study, stats)
            write_area_table(tmp / "evaluation_areas.csv", areas)
            write_area_table(tmp / "evaluation_steps.csv", steps)
            manifest = _manifest(cfg, study, notes)
            write_manifest(tmp / "manifest.json", manifest)
    return EvaluationRun(out=tmp, areas=areas, steps=steps, notes=notes,
                         seconds=dict(timer.seconds), cells=grid.size)


def class_area_rows(s: Surfaces) -> list[dict[str, object]]:
    """The class-area table: cells, hectares and share of the study area per result and level."""
    study_cells = int(np.count_nonzero(s.mask))
    rows = []
    for name, attr in RESULT_ATTRS.items():
        counts = np.bincount(getattr(s, attr)[s.mask], minlength=4)
        for level, label in enumerate(LEVEL_LABELS[name], start=1):
            cells = int(counts[level])
            rows.append({"result": name, "level": level, "name": label, "cells": cells,
                         "area_ha": round(s.hectares(cells), 4),
                         "share_pct": round(100.0 * cells / study_cells, 3)})
    return rows


def step_rows(study: Study, stats: dict[str, dict[str, StepStats]]) -> list[dict[str, object]]:
    """What each step did: status, cells per grade, cells a correction changed, notes."""
    top = max((len(st.counts) - 1 for by in stats.values() for st in by.values()), default=5)
    rows = []
    for result, ev in study.evaluations.items():
        for p in ev.plan:
            st = stats[result].get(p.name)
            row: dict[str, object] = {
                "result": result, "step": p.name, "op": p.op, "status": p.status,
                "scale": p.scale,
                "cells_changed": "" if st is None or st.changed is None else st.changed,
            }
            for g in range(1, top + 1):
                row[f"grade_{g}"] = int(st.counts[g]) if st is not None and g < len(
                    st.counts) else ""
            row["note"] = p.note
            rows.append(row)
    return rows


@dataclass
class Vectors:
    """The vector layers of a run, in the output CRS.

    Attributes
    ----------
    layers : dict of GeoDataFrame or RingLayer
        The three spaces and the three lines (plain fields); as rings when
        delivered on the cell edges (:func:`vectorize_lines`).
    levels : dict of list of numpy.ndarray
        Per evaluation result and level 1, 2, 3, one MultiPolygon of its patches,
        or one per unit when split on the raster (see ``level_units``); none for an
        absent level, no results when the planning database is off.
    study_area : shapely.Geometry
        The study area on cell edges (the outline every coverage keeps).
    crs : pyproj.CRS
        The output CRS.
    tolerance : float
        Smoothing tolerance used, in metres.
    cells : CellGrid or None
        The grid and study mask, when the polygons are in the grid's CRS (the
        gate then checks polygons on cell edges cell by cell).
    level_units : dict of list of numpy.ndarray
        Per evaluation result split by administrative unit on the raster
        (:func:`vectorize_levels`), the unit index of each feature of ``levels``
        (1..n, 0 in no unit): its levels then hold one MultiPolygon per unit.
    topology : dict
        The gate's report (what was repaired).
    outside : dict
        Per line, its area (m²) outside its space, as the gate measured it.
    """

    layers: dict[str, gpd.GeoDataFrame | RingLayer]
    levels: dict[str, list[np.ndarray]]
    study_area: shapely.Geometry
    crs: CRS
    tolerance: float
    cells: CellGrid | None = None
    level_units: dict[str, list[np.ndarray]] = field(default_factory=dict)
    topology: dict[str, object] = field(default_factory=dict)
    outside: dict[str, float] = field(default_factory=dict)

    def gate(self, cfg: Config) -> None:
        """Pass the layers held through the topology gate (repairing if the config says so).

        The spaces and lines, when held, are checked together (the spaces tile the
        study area, the lines are disjoint and inside their spaces), and each
        evaluation result held tiles the study area.

        Raises
        ------
        TopologyError
            When a layer fails and ``outputs.topology.on_failure`` is ``stop``.
        """
        spec = cfg.outputs.topology
        geoms = {k: features(df) for k, df in self.layers.items() if k != "ugb"}
        zones = [f"ugb:{z}" for z in UGB_ZONES]
        coverages: list[tuple[str, ...]] = []
        lines: tuple[str, ...] = ()
        within: tuple[tuple[str, str], ...] = ()
        if self.layers:
            geoms.update(ugb_zone_features(self.layers["ugb"]))
            coverages.append(tuple(SPACE_LAYERS))
            lines = ("red_line", "farmland", *zones)
            within = (("red_line", "eco_space"), ("farmland", "agri_space"),
                      *[(z, "urban_space") for z in zones])
        for result, parts in self.levels.items():
            geoms.update({f"{result}:{i}": g for i, g in enumerate(parts, start=1)})
            coverages.append(tuple(f"{result}:{i}" for i in (1, 2, 3)))
        rules = Rules(coverages=tuple(coverages), disjoint=lines, within=within)
        fixed, report = gate(geoms, rules, self.study_area, spec.min_area_m2,
                             repair_failures=spec.on_failure == "repair", cells=self.cells)
        self.topology = report.as_dict()
        for result in self.levels:
            self.levels[result] = [fixed[f"{result}:{i}"] for i in (1, 2, 3)]
            if report.repaired:  # repaired polygons are no longer the raster's pieces
                self.level_units.pop(result, None)
        if not self.layers:
            return
        names = {**SPACE_LAYERS, **LINE_LAYERS}
        codes = {**dict(zip(SPACE_LAYERS, SPACES.values(), strict=True)),
                 **dict(zip(LINE_LAYERS, SPACES.values(), strict=True))}
        if report.repaired:
            for key in ("eco_space", "agri_space", "urban_space", "red_line", "farmland"):
                self.layers[key] = frame(fixed[key], self.crs, codes[key], names[key])
            self.layers["ugb"] = ugb_frame([fixed[z] for z in zones], self.crs, codes["ugb"],
                                           names["ugb"], UGB_ZONES)
        self.outside = {line: 0.0 for line in LINE_LAYERS}
        for (inner, _), area in report.outside.items():
            self.outside[inner.split(":")[0]] += area


def ugb_zone_features(ugb: gpd.GeoDataFrame | RingLayer) -> dict[str, np.ndarray | Rings]:
    """The UGB layer's features per sub-zone, keyed ``ugb:<zone>``."""
    zone = ugb["zone"].to_numpy()
    if isinstance(ugb, RingLayer):
        return {f"ugb:{z}": ugb.rings.take(np.flatnonzero(zone == z)) for z in UGB_ZONES}
    return {f"ugb:{z}": ugb.geometry.values[zone == z] for z in UGB_ZONES}


def vectorize_all(cfg: Config, s: Surfaces, lines: Lines, alloc: Allocation) -> Vectors:
    """Polygons of the spaces, lines and (with the planning database) evaluation levels.

    :func:`vectorize_lines`, then :func:`vectorize_levels` for each result: every
    layer at once, for a notebook; a run delivers them one group at a time.
    """
    vec = vectorize_lines(cfg, s, lines, alloc)
    if cfg.outputs.planning_db.enabled:
        for result in RESULT_ATTRS:
            vec.levels[result], units = vectorize_levels(cfg, s, result, vec)
            if units is not None:
                vec.level_units[result] = units
    return vec


def vectorize_lines(cfg: Config, s: Surfaces, lines: Lines, alloc: Allocation, *,
                    rings: bool = False) -> Vectors:
    """Smoothed polygons of the spaces and lines, in the output CRS.

    The spaces and lines come from one coverage (:func:`space_and_line_layers`)
    that keeps the study area's outline on cell edges. The output CRS follows
    ``outputs.crs`` (:func:`sanqu.crs.output_crs`, zone from the study area's
    centroid). No evaluation levels yet (:func:`vectorize_levels`). With
    ``rings``, layers left on the cell edges in the grid's CRS are
    :class:`sanqu.export.RingLayer` (for delivery: no GEOS objects).
    """
    grid = s.grid
    tol_spec = cfg.outputs.smoothing.tolerance
    tol = AUTO_TOLERANCE * grid.res[0] if tol_spec == "auto" else float(tol_spec)
    study_area = _one_feature(polygonize(s.mask, grid).geometry.values.to_numpy())[0]
    c = shapely.centroid(study_area)
    out = output_crs(cfg.outputs.crs, centre_lon(c.x, c.y, grid.crs), grid.crs,
                     form=cfg.outputs.gk_form, zone=cfg.outputs.gk_zone)
    layers = space_and_line_layers(alloc.zones, lines.red_line, lines.farmland, lines.ugb_zone,
                                   grid, tol, {**SPACE_LAYERS, **LINE_LAYERS}, UGB_ZONES,
                                   rings=rings and crs_equivalent(out, grid.crs))
    cells = None
    if crs_equivalent(out, grid.crs):
        for df in layers.values():
            if isinstance(df, RingLayer):
                df.crs = out
            else:
                df.set_crs(out, allow_override=True, inplace=True)
        cells = CellGrid(grid, s.mask)
    else:
        cell = grid.res[0]
        layers = {k: df.set_geometry(reproject(df.geometry.values, grid.crs, out, cell), crs=out)
                  for k, df in layers.items()}
        for df in layers.values():
            df["area_ha"] = shapely.area(df.geometry.values) / 10_000
        study_area = reproject(np.array([study_area], dtype=object), grid.crs, out, cell)[0]
    return Vectors(layers, {}, study_area, out, tol, cells)


def units_on_cells(cfg: Config, s: Surfaces, vec: Vectors, *, evaluation: bool = False) -> bool:
    """Whether the planning database gets its units on the raster (not by GEOS overlay).

    So it does when there are units and the polygons stay on the grid's cell
    edges: in the grid's CRS and not smoothed (the evaluation results, with
    ``evaluation``, unless ``smoothing.evaluations``), and every piece of one
    cell is at least the minimum mapping unit (no piece can be a sliver).
    """
    smoothed = vec.tolerance > 0 and (not evaluation or cfg.outputs.smoothing.evaluations)
    return (cfg.outputs.planning_db.enabled and bool(s.unit_codes) and vec.cells is not None
            and not smoothed and s.grid.cell_area >= cfg.outputs.topology.min_area_m2)


def vectorize_levels(cfg: Config, s: Surfaces, result: str,
                     vec: Vectors) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Polygons of one evaluation result's levels 1, 2, 3, and their units if known.

    Each result is a coverage of its own, smoothed as ``vec``'s layers were and in
    ``vec``'s CRS, each level one MultiPolygon. When the units are given on the
    raster (:func:`units_on_cells`), ``admin_overlay: split`` polygonizes the levels
    combined with the unit raster instead, each level one MultiPolygon per unit
    it reaches (in unit order, cells in no unit last), and ``largest`` gives each
    level the unit holding most of its cells (ties: the earlier unit).

    Returns
    -------
    levels : list of numpy.ndarray
        Per level, its features.
    units : list of numpy.ndarray or None
        Per level, the unit index of each feature (1..n, 0 in no unit); None when
        the units are left to the GEOS overlay.
    """
    grid = s.grid
    grades = np.where(s.mask, getattr(s, RESULT_ATTRS[result]), 0)
    if not units_on_cells(cfg, s, vec, evaluation=True):
        return _levels(cfg, grades, vec, grid), None
    n = len(s.unit_codes)
    if cfg.outputs.planning_db.admin_overlay == "largest":
        counts = _key_counts(unit_keys(grades, s.unit, n, 4), 4 * (n + 2)).reshape(n + 2, 4)
        rank = counts[:, 1:].argmax(axis=0)  # per level, the unit rank with most cells
        levels = _levels(cfg, grades, vec, grid)
        return levels, [np.full(len(g), r if r <= n else 0, dtype=np.int64)
                        for g, r in zip(levels, rank, strict=True)]
    geoms, level, unit = polygonize_by_unit(grades, s.unit, n, grid, 4)
    del grades
    levels, units = [], []
    for lv in (1, 2, 3):
        features, feature_unit = _by_unit(geoms, unit, np.flatnonzero(level == lv))
        levels.append(features)
        units.append(feature_unit)
    return levels, units


def _by_unit(geoms: np.ndarray, unit: np.ndarray, pick: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """The patches ``pick`` (in unit order) collected into one MultiPolygon per unit.

    Returns the MultiPolygons and their units; the patches are dropped from
    ``geoms`` as they are collected (:func:`_collect`).
    """
    u = unit[pick]
    first = np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if len(u) else np.zeros(0, int)
    ends = np.r_[first[1:], len(u)] if len(u) else first  # each unit's patches
    return (np.array([_collect(geoms, pick[a:b]) for a, b in zip(first, ends, strict=True)],
                     dtype=object), u[first])


def deliver_levels(cfg: Config, tmp: Path, s: Surfaces, result: str, vec: Vectors,
                   units: Any, timer: Timer, writer: Writer) -> Future[list[str]]:
    """Write one evaluation result's planning layer (units on the raster).

    The result's levels combined with the unit raster are traced once (one
    MultiPolygon per level and unit it reaches), checked cell by cell — valid,
    and the three levels tiling the study area — and handed to ``writer``
    (:func:`gate_and_write`: queued before the check, written once the writer is
    free). The rings never become GEOS objects (:func:`sanqu.vectorize.traced`):
    the check reads them and the files get WKB made from them, a chunk at a time.

    Returns
    -------
    concurrent.futures.Future
        The write, whose result is the planning layer written.

    Raises
    ------
    TopologyError
        When the levels fail the check (a bug: they are traced from the raster);
        never repaired.
    """
    with timer("vectorize"):
        grades = np.where(s.mask, getattr(s, RESULT_ATTRS[result]), 0)
        rings, level, unit = traced_by_unit(grades, s.unit, len(s.unit_codes), s.grid, 4,
                                            per_patch=False, by_class=True)
        del grades
        ends = np.searchsorted(level, [1, 2, 3, 4]).tolist()  # each level's features
        levels = [rings.between(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True)]
        level_units = [unit[a:b] for a, b in zip(ends[:-1], ends[1:], strict=True)]
        del rings
    out = planning_db.build(cfg, {}, {result: levels}, vec.crs, units, {result: level_units})
    return gate_and_write(timer, writer, partial(_gate_levels, cfg, result, levels, vec),
                          partial(writer.submit, planning_db.write_built, cfg, tmp, out),
                          repairs=False)


def _gate_levels(cfg: Config, result: str, levels: list[Rings], vec: Vectors) -> None:
    """Check one result's levels cut by units (:func:`deliver_levels`): valid, tiling the area."""
    names = tuple(f"{result}:{lv}" for lv in (1, 2, 3))
    report = check(dict(zip(names, levels, strict=True)), Rules(coverages=(names,)),
                   vec.study_area, cfg.outputs.topology.min_area_m2, vec.cells)
    if not report.ok:
        raise TopologyError(f"outputs.planning_db.admin_overlay: the levels of {result} cut "
                            f"by units fail the topology gate: {report.summary()}", report)


def _collect(parts: np.ndarray, idx: np.ndarray) -> shapely.MultiPolygon:
    """``parts[idx]`` as one MultiPolygon; those parts are dropped from ``parts``.

    GEOS copies the parts into the MultiPolygon: dropping them feature by feature
    keeps one copy of a result's polygons, not two.
    """
    out = shapely.multipolygons(parts[idx])
    parts[idx] = None
    return out


def _key_counts(keys: np.ndarray, size: int, rows: int = 1024) -> np.ndarray:
    """``np.bincount`` of an int32 raster, a band of rows at a time (no int64 copy of it)."""
    counts = np.zeros(size, dtype=np.int64)
    for r in range(0, keys.shape[0], rows):
        counts += np.bincount(keys[r:r + rows].ravel(), minlength=size)
    return counts


def _levels(cfg: Config, grades: np.ndarray, vec: Vectors, grid: Grid) -> list[np.ndarray]:
    """Each level of a result's raster as one MultiPolygon, smoothed and in ``vec``'s CRS."""
    df = polygonize(grades, grid)
    geoms, codes = df.geometry.values.to_numpy(), df["code"].to_numpy()
    del df
    if cfg.outputs.smoothing.evaluations:
        geoms = smooth_coverage(geoms, vec.tolerance, grid, KEEP_CELLS * grid.cell_area)
    levels = [_one_feature(geoms, np.flatnonzero(codes == lv)) for lv in (1, 2, 3)]
    if not crs_equivalent(vec.crs, grid.crs):
        levels = [reproject(g, grid.crs, vec.crs, grid.res[0]) for g in levels]
    return levels


def _one_feature(parts: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
    """The patches of one evaluation level as one MultiPolygon (none when there are none).

    ``idx`` picks the patches from ``parts`` (and drops them there: :func:`_collect`);
    default all. Patches of one level touch at most at a corner, so collecting them
    needs no union.
    """
    idx = np.arange(len(parts)) if idx is None else idx
    if len(idx) == 0:
        return np.zeros(0, dtype=object)
    return np.array([_collect(parts, idx)], dtype=object)


def _manifest(cfg: Config, study: Study, notes: list[str], lines: Lines | None = None,
              vec: Delivered | None = None) -> dict[str, object]:
    inputs = {}
    for name, spec in cfg.present_inputs.items():
        inputs[name] = {"path": str(spec.path), "sha256": sha256(spec.path)}
    g = study.grid
    return {
        "sanqu": __version__,
        "config_file": str(cfg.source) if cfg.source else None,
        "config": cfg.model_dump(mode="json", by_alias=True),
        "inputs": inputs,
        "absent_inputs": sorted(set(cfg.inputs) - set(cfg.present_inputs)),
        "grid": {"crs": g.crs.to_string(), "transform": list(g.transform)[:6],
                 "shape": list(g.shape)},
        **({"vectors": {"crs": vec.crs.to_string(), "smoothing_tolerance_m": vec.tolerance,
                        "topology": vec.topology}} if vec is not None else {}),
        "evaluation": {
            name: {"levels": list(LEVEL_LABELS[name]), "ahp_consistency": ev.consistency,
                   "weights": ev.weights, "share_thresholds": ev.thresholds,
                   "steps": {p.name: {"op": p.op, "status": p.status, "scale": p.scale,
                                      "note": p.note} for p in ev.plan}}
            for name, ev in study.evaluations.items()
        },
        "allocation_rules": RULES,
        "line_rules": LINE_RULES,
        "ugb_zones": UGB_ZONES,
        **({"line_report": lines.report} if lines is not None else {}),
        "notes": notes,
        "versions": package_versions(),
    }
