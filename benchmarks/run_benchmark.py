"""Benchmark sanqu on large study areas built by mirroring the bundled Dianbu sample.

What it measures
----------------
For each size N (default 2000, 5000, 10000) the bundled 30 m DEM and land use
(``data/dianbu``) are mirror-tiled into an N x N grid (alternate tiles flipped
horizontally / vertically, so edges meet continuously). The sample's nodata
cells are first filled from the nearest valid cell, so the mirrored study area
is valid everywhere. Inputs are written strip by strip as tiled, DEFLATE
GeoTIFFs (EPSG:4527, 30 m) into a work folder, with a config derived from
``configs/dianbu.yaml`` (absolute input paths, no farmland quota).

Each size then runs ``sanqu.pipeline.delineate`` in a fresh subprocess, so its
memory figures are not polluted by earlier runs. A ``sanqu.study.Timer`` hook
attributes memory to the stage being run (align, read, factors, evaluate,
write, lines, allocate, vectorize, export; ``other`` is time outside any
stage). Per stage the report gives:

* seconds (wall clock, summed over blocks for the per-block stages; where two
  blocks are in flight at once, the loop's elapsed time shared among read,
  factors and evaluate in proportion to their seconds summed over threads:
  ``Timer.overlapping``),
* million grid cells per second (N*N / seconds),
* peak RSS in MB while that stage ran (on any thread: while blocks overlap, a
  sample counts for every stage running).

Peak RSS per stage is the larger of a background thread sampling RSS (``/proc``,
every ~20 ms; every 0.5 s where the kernel keeps the high-water mark, which no
sample can exceed) and the kernel's exact high-water mark (``VmHWM``), which is
read and reset (``/proc/<pid>/clear_refs``) at every stage entry and exit, so
short allocations the sampler misses are still counted. Both count the run's process
and its writer process (:mod:`sanqu.writer`, large areas), less the library pages
the writer shares with the run: the samples add the two, so do the high-water
marks (an upper bound: the two may peak apart).
Totals: seconds, whole pipeline million cells/s, overall peak RSS, peak MB per million cells, RSS of
the interpreter before the run (imports only), and the cells in the study mask.

A run exceeding ``--timeout`` seconds or ``--max-rss-mb`` is killed and
reported with the stage it was in.

Results are printed as markdown and written to ``benchmarks/results/``
(JSON + markdown, git-ignored).

Usage::

    .venv/bin/python benchmarks/run_benchmark.py                 # 2000, 5000, 10000
    .venv/bin/python benchmarks/run_benchmark.py --sizes 3000 7000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import psutil

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DEM = ROOT / "data" / "dianbu" / "dem_30m.tif"
SAMPLE_LANDUSE = ROOT / "data" / "dianbu" / "landuse_30m.tif"
BASE_CONFIG = ROOT / "configs" / "dianbu.yaml"
RESULTS_DIR = Path(__file__).resolve().parent / "results"

STAGES = ("align", "read", "factors", "evaluate", "write", "lines", "allocate", "vectorize",
          "export")
PER_CELL_STAGES = ("read", "factors", "evaluate")
STRIP_ROWS = 1024
DEM_NODATA = -9999.0
LANDUSE_NODATA = 255

# Targets at 1e8 cells (see benchmarks/README.md).
TARGET_PER_CELL_MCPS = 10.0
TARGET_PIPELINE_MCPS = 2.0
TARGET_PEAK_MB = 4096.0
#: A stage shorter than this (a wait for a thread that is done) gets no rate.
MIN_RATED_SECONDS = 0.01

MB = 1024 * 1024


# --------------------------------------------------------------------------- input generation


def load_sample() -> tuple[np.ndarray, np.ndarray, dict]:
    """The bundled DEM and land use on the DEM's grid, nodata filled from the nearest valid cell.

    Returns ``(dem, landuse, profile)`` where ``profile`` holds the DEM's CRS and transform.
    """
    import rasterio
    from scipy import ndimage

    with rasterio.open(SAMPLE_DEM) as src:
        dem = src.read(1)
        dem_valid = src.read_masks(1) > 0
        if src.nodata is not None:
            dem_valid &= dem != src.nodata
        profile = {"crs": src.crs, "transform": src.transform, "res": src.res}
        h, w = src.shape
    with rasterio.open(SAMPLE_LANDUSE) as src:
        t, tol = profile["transform"], 1e-3 * profile["res"][0]
        if max(abs(src.transform[2] - t[2]), abs(src.transform[5] - t[5])) > tol or not all(
                abs(a - b) < tol for a, b in zip(src.res, profile["res"], strict=True)):
            raise SystemExit("sample land use does not share the DEM's origin and cell size")
        lu = src.read(1)[:h, :w]
        lu_valid = lu != (src.nodata if src.nodata is not None else LANDUSE_NODATA)

    def fill(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
        idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
        return a[tuple(idx)]

    return fill(dem, dem_valid).astype(np.float32), fill(lu, lu_valid).astype(np.uint8), profile


def mirror_index(start: int, stop: int, period: int) -> np.ndarray:
    """Sample indices for global positions ``start:stop`` under mirror tiling."""
    pos = np.arange(start, stop)
    tile, k = np.divmod(pos, period)
    return np.where(tile % 2 == 0, k, period - 1 - k)


def generate_inputs(size: int, workdir: Path, regenerate: bool = False) -> dict[str, Path]:
    """Write the mirrored ``size`` x ``size`` DEM and land use; reuse them when present."""
    import rasterio
    from rasterio.transform import Affine

    paths = {"dem": workdir / f"dem_{size}.tif", "landuse": workdir / f"landuse_{size}.tif"}
    if not regenerate and all(_is_complete(p, size) for p in paths.values()):
        print(f"[{size}] reusing inputs in {workdir}", flush=True)
        return paths
    dem, lu, prof = load_sample()
    sh, sw = dem.shape
    t = prof["transform"]
    transform = Affine(t.a, t.b, t.c, t.d, t.e, t.f)
    common = {"driver": "GTiff", "height": size, "width": size, "count": 1, "crs": prof["crs"],
              "transform": transform, "tiled": True, "blockxsize": 512, "blockysize": 512,
              "compress": "DEFLATE", "BIGTIFF": "IF_SAFER", "NUM_THREADS": "ALL_CPUS"}
    cols = mirror_index(0, size, sw)
    t0 = time.perf_counter()
    tmp = {k: p.with_suffix(".partial.tif") for k, p in paths.items()}
    with (
        rasterio.open(tmp["dem"], "w", dtype="float32", nodata=DEM_NODATA, predictor=3,
                      **common) as d_out,
        rasterio.open(tmp["landuse"], "w", dtype="uint8", nodata=LANDUSE_NODATA, predictor=2,
                      **common) as l_out,
    ):
        for r0 in range(0, size, STRIP_ROWS):
            r1 = min(size, r0 + STRIP_ROWS)
            rows = mirror_index(r0, r1, sh)
            win = rasterio.windows.Window(0, r0, size, r1 - r0)
            d_out.write(dem[np.ix_(rows, cols)], 1, window=win)
            l_out.write(lu[np.ix_(rows, cols)], 1, window=win)
    for k, p in tmp.items():
        os.replace(p, paths[k])
    print(f"[{size}] generated inputs in {time.perf_counter() - t0:.1f} s "
          f"({sum(p.stat().st_size for p in paths.values()) / MB:.0f} MB on disk)", flush=True)
    return paths


def _is_complete(path: Path, size: int) -> bool:
    if not path.is_file():
        return False
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.shape == (size, size)
    except rasterio.errors.RasterioIOError:
        return False


def write_config(size: int, paths: dict[str, Path], workdir: Path,
                 block_size: int | None, output_crs: str = "study") -> Path:
    """``configs/dianbu.yaml`` pointed at the generated inputs, with no farmland quota."""
    import yaml

    data = yaml.safe_load(BASE_CONFIG.read_text(encoding="utf-8"))
    for name, spec in data["inputs"].items():
        if name not in paths:
            raise SystemExit(f"{BASE_CONFIG}: input {name!r} has no generated counterpart")
        spec["path"] = str(paths[name].resolve())
    here = BASE_CONFIG.parent  # the sample's other paths (units, quotas, polygons) stay valid
    for node, key in ((data.get("units"), "path"), (data["lines"]["farmland"], "unit_quotas"),
                      (data["lines"]["red_line"].get("protected_areas"), "path"),
                      (data["lines"]["ugb"].get("special_use"), "path")):
        if isinstance(node, dict) and isinstance(node.get(key), str):
            node[key] = str((here / node[key]).resolve())
    data["lines"]["farmland"]["quota_ha"] = None
    # the mirrored grid reaches 300 km east at 10000 x 10000, past the 3-degree zone of the
    # sample: `crs: auto` would then reproject every polygon into the next zone (cut to cell
    # length first). Keep the grid's CRS so sizes compare; `--output-crs auto` measures that.
    data["outputs"]["crs"] = output_crs
    data["name"] = f"benchmark {size} x {size} (mirrored Dianbu sample)"
    if block_size is not None:
        data["grid"]["block_size"] = block_size
    path = workdir / f"sanqu_{size}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- child: one run


def _proc_status(pid: int | str = "self") -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of a process (default this one) in bytes.

    For another process (the run's writer process) its file-backed pages
    (``RssFile``: the libraries it maps, the same files the run maps) are left
    out of both, so pages the two share are counted once, in the run.
    """
    text = Path(f"/proc/{pid}/status").read_text()

    def kb(key: str) -> int:
        return int(re.search(rf"{key}:\s+(\d+)", text).group(1)) * 1024

    shared = 0 if pid == "self" else kb("RssFile")
    return kb("VmRSS") - shared, kb("VmHWM") - shared


def _reset_hwm(pid: int | str = "self") -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _children(proc: psutil.Process | None = None) -> list[int]:
    """A process's descendants (the run's writer process), by pid; default this one's.

    Read from ``/proc/PID/task/TID/children`` (Linux), a few small files: psutil
    reads every process's ``stat`` to find them, 1.5 ms a call here, which the
    sampling thread paid 50 times a second beside the run it measures.
    """
    pid = proc.pid if proc is not None else os.getpid()
    if not any(Path(f"/proc/{pid}/task").glob("*/children")):  # not on this system: psutil
        import psutil

        return [c.pid for c in (proc or psutil.Process()).children(recursive=True)]
    found: list[int] = []
    todo = [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue  # the thread has just ended
            found += kids
            todo += kids
    return found


def _tree_rss(proc: psutil.Process) -> int:
    """RSS of ``proc`` plus its descendants' own pages (:func:`_proc_status`)."""
    rss = proc.memory_info().rss
    for pid in _children(proc):
        try:
            rss += _proc_status(pid)[0]
        except (OSError, AttributeError):
            pass  # it has just exited
    return rss


class StageMemory:
    """Peak RSS per stage: a sampling thread plus the kernel high-water mark at transitions.

    A sample (1.3 ms at 10⁸ cells, mostly finding the writer process) never
    exceeds the high-water marks summed at the next transition, so where the
    kernel keeps them the thread samples every ``slow_interval`` only, not to
    take CPU from the run it measures (3 CPU-seconds a 10⁸-cell run at 20 ms).
    """

    def __init__(self, interval: float = 0.02, log: Path | None = None, *,
                 slow_interval: float = 0.5) -> None:
        import psutil

        self._proc = psutil.Process()
        self._stacks: dict[int, list[str]] = {}  # per thread: blocks run on several at once
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._log = log.open("a", buffering=1) if log else None
        self._t0 = time.perf_counter()
        self.peak: dict[str, int] = {}
        self.samples = 0
        self.hwm_ok = _reset_hwm()
        self._interval = slow_interval if self.hwm_ok else interval
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def current(self) -> set[str]:
        """The stages running now, on any thread (``other`` when none)."""
        return {stack[-1] for stack in self._stacks.values() if stack} or {"other"}

    def _credit(self, stages: set[str], rss: int) -> None:
        for stage in stages:
            if rss > self.peak.get(stage, 0):
                self.peak[stage] = rss

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            rss = _tree_rss(self._proc)
            with self._lock:
                self._credit(self.current, rss)
                self.samples += 1

    def _transition(self) -> None:
        # the high-water marks of the processes are summed: an upper bound, as they may
        # have peaked at different moments
        rss, hwm = 0, 0
        for pid in ["self", *_children()]:
            try:
                r, h = _proc_status(pid)
            except (OSError, AttributeError):
                continue  # it has just exited
            rss, hwm = rss + r, hwm + h
            if self.hwm_ok:
                _reset_hwm(pid)
        self._credit(self.current, max(rss, hwm if self.hwm_ok else rss))

    def on_stage(self, stage: str | None) -> None:
        with self._lock:
            self._transition()
            stack = self._stacks.setdefault(threading.get_ident(), [])
            if stage is None:
                if stack:
                    stack.pop()
            else:
                if self._log and (not stack or stack[-1] != stage):
                    rss = _tree_rss(self._proc)
                    self._log.write(f"{time.perf_counter() - self._t0:.2f} {stage} "
                                    f"{rss / MB:.0f}\n")
                stack.append(stage)

    def __enter__(self) -> StageMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._transition()
        if self._log:
            self._log.close()


def child(config: Path, out: Path, result_json: Path, log: Path) -> None:
    """Run the pipeline once and write its timings and memory figures to ``result_json``."""
    from sanqu.config import load_config
    from sanqu.pipeline import delineate
    from sanqu.study import Timer

    revision = source_revision()  # the code this process imported
    cfg = load_config(config)
    baseline_rss = _proc_status()[0]
    load_before = os.getloadavg()[0]
    cpu0 = os.times()
    with StageMemory(log=log) as mem:
        timer = Timer(on_stage=mem.on_stage)
        t0 = time.perf_counter()
        result = delineate(cfg, out, overwrite=True, timer=timer)
        total = time.perf_counter() - t0
    cpu1 = os.times()
    import psutil

    writer_cpu = sum(sum(c.cpu_times()[:2]) for c in psutil.Process().children(recursive=True))
    study_cells = next(int(r["cells"]) for r in result.areas if r["layer"] == "study_area")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    payload = {
        "cells": int(result.cells),
        "study_cells": study_cells,
        "block_size": cfg.grid.block_size,
        "total_seconds": total,
        "seconds": {k: float(v) for k, v in timer.seconds.items()},
        "peak_rss": mem.peak,
        "baseline_rss": baseline_rss,
        "ru_maxrss": maxrss,
        "samples": mem.samples,
        "revision": revision,
        "cpu_seconds": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system) + writer_cpu,
        "load_avg_1min": [load_before, os.getloadavg()[0]],
        "hwm_exact": mem.hwm_ok,
        "areas": result.areas,
    }
    result_json.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


# --------------------------------------------------------------------------- parent: supervise


def run_size(size: int, workdir: Path, args: argparse.Namespace) -> dict:
    """Generate inputs for ``size``, run the pipeline in a subprocess and return its figures."""
    import psutil

    paths = generate_inputs(size, workdir, args.regenerate)
    config = write_config(size, paths, workdir, args.block_size, args.output_crs)
    out = workdir / f"out_{size}"
    result_json = workdir / f"result_{size}.json"
    log = workdir / f"stages_{size}.log"
    for p in (result_json, log):
        p.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(config), str(out),
           str(result_json), str(log)]
    print(f"[{size}] running {size} x {size} = {size * size / 1e6:.0f} M cells ...", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    ps = psutil.Process(proc.pid)
    max_rss = 0
    killed = None
    while proc.poll() is None:
        try:
            rss = _tree_rss(ps)  # with the run's writer process, its own pages
        except psutil.NoSuchProcess:
            break  # the run has exited
        max_rss = max(max_rss, rss)
        elapsed = time.perf_counter() - t0
        if elapsed > args.timeout:
            killed = f"timeout after {elapsed:.0f} s"
        elif rss > args.max_rss_mb * MB:
            killed = f"RSS {rss / MB:.0f} MB above --max-rss-mb {args.max_rss_mb}"
        if killed:
            for sub in ps.children(recursive=True):
                try:
                    sub.kill()
                except psutil.NoSuchProcess:
                    pass
            proc.kill()
            proc.wait()
            break
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    stage_log = log.read_text().splitlines() if log.is_file() else []
    if killed or proc.returncode != 0 or not result_json.is_file():
        last = stage_log[-1].split() if stage_log else ["?", "?", "?"]
        return {"size": size, "cells": size * size, "status": "failed",
                "reason": killed or f"exit code {proc.returncode}",
                "wall_seconds": wall, "max_rss_mb_seen": max_rss / MB,
                "last_stage": last[1], "last_stage_entered_at_s": last[0],
                "stage_log_tail": stage_log[-20:]}
    raw = json.loads(result_json.read_text(encoding="utf-8"))
    if not args.keep_outputs:
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    return summarise(size, raw, wall)


def summarise(size: int, raw: dict, wall: float) -> dict:
    """Per-stage and total figures from one child's raw payload."""
    cells = raw["cells"]
    mcells = cells / 1e6
    stages = {}
    for name in (*STAGES, *(k for k in raw["seconds"] if k not in STAGES), "other"):
        secs = raw["seconds"].get(name)
        peak = raw["peak_rss"].get(name)
        if secs is None and peak is None:
            continue
        stages[name] = {
            "seconds": secs,
            "mcells_per_s": (mcells / secs) if secs and secs >= MIN_RATED_SECONDS else None,
            "peak_rss_mb": peak / MB if peak is not None else None,
        }
    peak_mb = max(max(raw["peak_rss"].values()), raw["ru_maxrss"]) / MB
    total = raw["total_seconds"]
    return {
        "size": size,
        "status": "ok",
        "cells": cells,
        "study_cells": raw["study_cells"],
        "block_size": raw["block_size"],
        "stages": stages,
        "total_seconds": total,
        "subprocess_wall_seconds": wall,
        "pipeline_mcells_per_s": mcells / total,
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": raw["baseline_rss"] / MB,
        "peak_mb_per_mcell": peak_mb / mcells,
        "incremental_peak_mb_per_mcell": (peak_mb - raw["baseline_rss"] / MB) / mcells,
        "rss_samples": raw["samples"],
        "hwm_exact": raw["hwm_exact"],
        "revision": raw["revision"],
        "cpu_seconds": raw["cpu_seconds"],
        "load_avg_1min": raw["load_avg_1min"],
    }


# --------------------------------------------------------------------------- reporting


def _f(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def size_table(r: dict) -> str:
    """Markdown table of one size's figures."""
    n = r["size"]
    if r["status"] != "ok":
        lines = [f"### {n} x {n} ({r['cells'] / 1e6:.0f} M cells): FAILED — {r['reason']}", "",
                 f"Last stage entered: `{r['last_stage']}` at {r['last_stage_entered_at_s']} s; "
                 f"max RSS seen {r['max_rss_mb_seen']:.0f} MB; wall {r['wall_seconds']:.0f} s.",
                 "", "Stage log (seconds since start, stage, RSS MB at entry), last lines:", "",
                 "```", *r["stage_log_tail"], "```", ""]
        return "\n".join(lines)
    lines = [
        f"### {n} x {n} = {r['cells'] / 1e6:.1f} M cells "
        f"(study mask {r['study_cells'] / 1e6:.2f} M, block {r['block_size']}, "
        f"sanqu {r['revision']})",
        "",
        "| stage | seconds | M cells/s | peak RSS MB |",
        "|---|---:|---:|---:|",
    ]
    for name, s in r["stages"].items():
        lines.append(f"| {name} | {_f(s['seconds'], '.2f')} | {_f(s['mcells_per_s'], '.1f')} | "
                     f"{_f(s['peak_rss_mb'], '.0f')} |")
    lines += [
        f"| **total** | **{r['total_seconds']:.2f}** | **{r['pipeline_mcells_per_s']:.2f}** | "
        f"**{r['peak_rss_mb']:.0f}** |",
        "",
        f"Peak {r['peak_rss_mb']:.0f} MB = {r['peak_mb_per_mcell']:.1f} MB per M cells "
        f"(baseline after imports {r['baseline_rss_mb']:.0f} MB; "
        f"{r['incremental_peak_mb_per_mcell']:.1f} MB per M cells above it). "
        f"CPU {r['cpu_seconds']:.0f} s over {r['total_seconds']:.0f} s wall; 1-min load "
        f"average {r['load_avg_1min'][0]:.1f} before, {r['load_avg_1min'][1]:.1f} after "
        f"(above {os.cpu_count()} means other processes competed for the CPUs).",
        "",
    ]
    return "\n".join(lines)


def summary_table(results: list[dict]) -> str:
    """Markdown summary across sizes, with the targets checked at the largest size."""
    lines = [
        "| size | M cells | study M cells | total s | pipeline M cells/s | "
        + " | ".join(f"{s} M cells/s" for s in PER_CELL_STAGES)
        + " | slowest stage | peak MB | MB / M cells |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(PER_CELL_STAGES) + "---|---:|---:|",
    ]
    for r in results:
        if r["status"] != "ok":
            lines.append(f"| {r['size']} | {r['cells'] / 1e6:.1f} | – | >{r['wall_seconds']:.0f} "
                         f"| failed: {r['reason']} (in `{r['last_stage']}`) |" + " |" * 6)
            continue
        timed = {k: v for k, v in r["stages"].items() if v["seconds"]}
        slow = max(timed, key=lambda k: timed[k]["seconds"])
        share = 100 * timed[slow]["seconds"] / r["total_seconds"]
        lines.append(
            f"| {r['size']} | {r['cells'] / 1e6:.1f} | {r['study_cells'] / 1e6:.2f} | "
            f"{r['total_seconds']:.1f} | {r['pipeline_mcells_per_s']:.2f} | "
            + " | ".join(_f(r["stages"].get(s, {}).get("mcells_per_s"), ".1f")
                         for s in PER_CELL_STAGES)
            + f" | {slow} ({share:.0f} %) | {r['peak_rss_mb']:.0f} | "
            f"{r['peak_mb_per_mcell']:.1f} |")
    ok = [r for r in results if r["status"] == "ok"]
    if len(ok) >= 2:
        a, b = ok[0], ok[-1]
        inc_a = max(1e-9, a["peak_rss_mb"] - a["baseline_rss_mb"])
        inc_b = b["peak_rss_mb"] - b["baseline_rss_mb"]
        lines += ["", f"Memory scaling {a['size']} → {b['size']}: cells "
                  f"x{b['cells'] / a['cells']:.1f}, peak RSS "
                  f"x{b['peak_rss_mb'] / a['peak_rss_mb']:.1f} (above baseline "
                  f"x{inc_b / inc_a:.1f})."]
    big = max(results, key=lambda r: r["cells"])
    lines += ["", f"Targets at the largest size ({big['size']} x {big['size']}):", ""]
    if big["status"] != "ok":
        lines.append(f"- run failed: {big['reason']} — no target met")
    else:
        for s in PER_CELL_STAGES:
            v = big["stages"].get(s, {}).get("mcells_per_s") or 0.0
            lines.append(f"- {s} ≥ {TARGET_PER_CELL_MCPS:g} M cells/s: {v:.1f} — "
                         f"{'met' if v >= TARGET_PER_CELL_MCPS else 'NOT met'}")
        v = big["pipeline_mcells_per_s"]
        lines.append(f"- whole pipeline ≥ {TARGET_PIPELINE_MCPS:g} M cells/s: {v:.2f} — "
                     f"{'met' if v >= TARGET_PIPELINE_MCPS else 'NOT met'}")
        v = big["peak_rss_mb"]
        lines.append(f"- peak memory < {TARGET_PEAK_MB:.0f} MB: {v:.0f} — "
                     f"{'met' if v < TARGET_PEAK_MB else 'NOT met'}")
    return "\n".join(lines)


def source_revision() -> str:
    """Commit of the checkout, with ``+dirty`` when ``src/`` has uncommitted changes."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True,
                                  check=False).stdout.strip()
        except OSError:
            return ""

    rev = git("rev-parse", "--short", "HEAD")
    return rev + ("+dirty" if rev and git("status", "--porcelain", "--", "src") else "")


def machine_info() -> dict:
    """Where the benchmark ran."""
    import psutil

    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1)}


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Mirror the bundled Dianbu sample into N x N grids and time sanqu's "
                    "pipeline per stage (seconds, M cells/s, peak RSS), each size in a fresh "
                    "subprocess. Results go to benchmarks/results/ (JSON + markdown).")
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 10000], metavar="N",
                   help="grid side lengths in cells (default: 2000 5000 10000)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="folder for generated inputs, configs and outputs "
                        "(default: <tmp>/sanqu-bench; inputs are reused between runs)")
    p.add_argument("--regenerate", action="store_true", help="rewrite inputs even if present")
    p.add_argument("--block-size", type=int, default=None,
                   help="override grid.block_size of configs/dianbu.yaml")
    p.add_argument("--output-crs", default="study",
                   help="outputs.crs of the runs (default study: the grid's CRS; 'auto' "
                        "reprojects the largest sizes into the next Gauss-Krüger zone)")
    p.add_argument("--timeout", type=float, default=1500.0,
                   help="kill a run after this many seconds (default: 1500)")
    p.add_argument("--max-rss-mb", type=float, default=16000.0,
                   help="kill a run whose RSS exceeds this (default: 16000)")
    p.add_argument("--keep-outputs", action="store_true",
                   help="keep the pipeline outputs in the work folder")
    p.add_argument("--results", type=Path, default=RESULTS_DIR,
                   help="folder for the JSON and markdown results (default: benchmarks/results)")
    p.add_argument("--child", nargs=4, metavar=("CONFIG", "OUT", "JSON", "LOG"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(*(Path(a) for a in args.child))
        return 0
    workdir = (args.workdir or Path(tempfile.gettempdir()) / "sanqu-bench").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes:
        r = run_size(size, workdir, args)
        results.append(r)
        print(size_table(r), flush=True)
    summary = summary_table(results)
    print("## Summary\n\n" + summary, flush=True)

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    args.results.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    doc = {"date": stamp, "machine": info, "sizes": args.sizes, "results": results}
    (args.results / f"benchmark-{stamp}.json").write_text(
        json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    md = [f"# sanqu benchmark {stamp}", "",
          f"Python {info['python']}, {info['cpus']} CPUs, "
          f"{info['ram_gb']} GB RAM, {info['platform']}.", "",
          *(size_table(r) for r in results), "## Summary", "", summary, ""]
    (args.results / f"benchmark-{stamp}.md").write_text("\n".join(md), encoding="utf-8")
    print(f"\nresults: {args.results / f'benchmark-{stamp}.json'} (+ .md)")
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
