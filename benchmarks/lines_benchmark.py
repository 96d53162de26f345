"""Time the whole-area stages (lines, allocation) on a large synthetic study area.

    .venv/bin/python benchmarks/lines_benchmark.py --size 10000   # 10^8 cells

The surfaces are made of smoothed random fields (deterministic seed), so patches,
towns and corridors of many sizes occur; three administrative units split the
area into bands with per-unit farmland quotas. Prints seconds per step, the peak
resident memory of each stage above the memory held when it starts (the kernel's
high-water mark ``VmHWM``, reset at each stage: Linux only) and of the process.
"""

from __future__ import annotations

import argparse
import re
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from affine import Affine
from pyproj import CRS
from scipy import ndimage

from sanqu.allocate import allocate
from sanqu.config import AllocationSpec, FarmlandSpec, RedLineSpec, UgbSpec
from sanqu.grid import Grid
from sanqu.lines import draw_lines
from sanqu.surfaces import Surfaces

CLASSES = ("cultivated", "urban_built_up", "forest", "water")
T = TypeVar("T")


def _status(key: str) -> int:
    """A memory figure of this process from ``/proc/self/status`` in bytes (0 if unknown)."""
    try:
        found = re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        return 0
    return int(found.group(1)) * 1024 if found else 0


def staged(run: Callable[[], T]) -> tuple[T, float, float]:
    """``run()``, its seconds and its peak RSS in MB above the RSS when it started."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    except OSError:
        pass
    start = _status("VmRSS")
    t0 = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - t0
    return out, seconds, (_status("VmHWM") - start) / 2**20


def field(shape: tuple[int, int], scale: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in 0..1 (zoomed coarse noise), float32."""
    coarse = rng.random((shape[0] // scale + 2, shape[1] // scale + 2), dtype=np.float32)
    out = ndimage.zoom(coarse, scale, order=1, prefilter=False)[: shape[0], : shape[1]]
    return out


def surfaces(n: int, cell: float) -> Surfaces:
    rng = np.random.default_rng(42)
    shape = (n, n)
    grid = Grid(CRS.from_epsg(4527), Affine(cell, 0, 39_500_000, 0, -cell, 3_500_000), shape)
    codes = ("U1", "U2", "U3")
    s = Surfaces.empty(grid, CLASSES, codes, ("north", "middle", "south"))
    s.mask[:] = True
    a = field(shape, 40, rng)
    s.landclass[:] = 1
    s.landclass[a > 0.8] = 3
    s.landclass[a < 0.06] = 4
    b = field(shape, 25, rng)
    s.landclass[(b > 0.88) & (s.landclass == 1)] = 2
    del b
    s.eco[:] = np.where(s.landclass == 3, 1, np.where(a > 0.7, 2, 3))
    s.agri[:] = np.where(a < 0.5, 1, np.where(a < 0.7, 2, 3))
    s.urban[:] = np.where(a < 0.4, 1, np.where(a < 0.6, 2, 3))
    del a
    s.steep[:] = field(shape, 15, rng) > 0.97
    s.slope_grade[:] = 1 + (field(shape, 20, rng) * 4.99).astype(np.uint8)
    s.near_grade[:] = 1
    s.unit[:] = 1 + (np.arange(n) * 3 // n)[:, None].astype(np.uint16)
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=4000, help="cells per side (default 4000)")
    p.add_argument("--cell", type=float, default=30.0, help="cell size in m (default 30)")
    p.add_argument("--selection", default="meet_quota", choices=["meet_quota", "all_eligible"])
    args = p.parse_args()
    t0 = time.perf_counter()
    s = surfaces(args.size, args.cell)
    t1 = time.perf_counter()
    cultivated_ha = s.hectares(int(np.count_nonzero(s.landclass == 1)))
    quotas = {c: round(0.15 * cultivated_ha, 2) for c in s.unit_codes}
    red = RedLineSpec(exclude_classes=["urban_built_up"], smooth_m=2 * args.cell, min_area_ha=2,
                      fill_holes_below_ha=1)
    farm = FarmlandSpec(cultivated_classes=["cultivated"], quota_ha=0.5 * cultivated_ha,
                        unit_quotas=quotas, selection=args.selection)
    ugb = UgbSpec(seed_classes=["urban_built_up"], expansion_factor=1.3, min_area_ha=5,
                  flexible_share=0.1)
    lines, t_lines, m_lines = staged(lambda: draw_lines(s, red, farm, ugb))
    alloc, t_alloc, m_alloc = staged(
        lambda: allocate(s, lines, AllocationSpec(ecological_classes=["water"]), ["cultivated"]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cells = args.size * args.size
    print(f"{cells:,} cells ({args.size} x {args.size}), selection {args.selection}")
    print(f"build surfaces {t1 - t0:6.2f} s")
    for name, sec, mb in (("lines", t_lines, m_lines), ("allocate", t_alloc, m_alloc)):
        print(f"{name:14s} {sec:6.2f} s   ({sec / cells * 1e6:.3f} s per 10^6 cells); peak "
              f"{mb:6.0f} MB above its start ({mb * 2**20 / cells:.1f} bytes per cell)")
    print(f"peak RSS       {peak:6.0f} MB ({peak * 2**20 / cells:.1f} bytes per cell)")
    print({k: round(v, 1) for k, v in lines.report.items()})
    print("zones", np.bincount(alloc.zones.ravel(), minlength=4).tolist())


if __name__ == "__main__":
    main()
