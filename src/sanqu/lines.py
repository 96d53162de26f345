"""The three control lines (三线): red line, permanent farmland, urban development boundary.

Whole-area stage on the compact rasters of :class:`~sanqu.surfaces.Surfaces`.
The lines are drawn in the order of national policy (methodology.md §3-§4):
the red line first, then farmland outside it, then the growth boundary outside
both, so they are disjoint by construction; :func:`check_disjoint` verifies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import FarmlandSpec, RedLineSpec, UgbSpec
from .errors import QuotaError
from .patches import fill_holes, remove_small_patches
from .surfaces import Surfaces


@dataclass
class Lines:
    """The three lines as boolean rasters, plus what happened while drawing them."""

    red_line: np.ndarray
    farmland: np.ndarray
    ugb: np.ndarray
    report: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, np.ndarray]:
        """The three rasters by line name."""
        return {"red_line": self.red_line, "farmland": self.farmland, "ugb": self.ugb}


def red_line(s: Surfaces, spec: RedLineSpec, cultivated_classes: list[str],
             report: dict[str, float]) -> np.ndarray:
    """Ecological protection red line: protected areas ∪ eco-importance levels, cleaned.

    Conflicting cells (land-use classes in ``exclude_classes``, and land of
    ``cultivated_classes`` when ``cultivated_conflict`` is ``cut``) are counted in
    ``report`` and cut out.
    Patches below ``min_area_ha`` are dropped and holes up to
    ``fill_holes_below_ha`` filled with non-conflicting cells.
    """
    core = s.mask & (np.isin(s.eco, spec.from_levels) | s.protected)
    conflict = s.is_class(spec.exclude_classes) if spec.exclude_classes else np.zeros_like(core)
    report["red_line_conflict_excluded_ha"] = s.hectares(np.count_nonzero(core & conflict))
    cut = conflict
    if spec.cultivated_conflict == "cut":
        cultivated = s.is_class(cultivated_classes)
        report["red_line_conflict_cultivated_ha"] = s.hectares(
            np.count_nonzero(core & cultivated & ~conflict))
        cut = conflict | cultivated
    line = core & ~cut
    line = remove_small_patches(line, s.cells(spec.min_area_ha))
    return fill_holes(line, s.cells(spec.fill_holes_below_ha), allowed=s.mask & ~cut)


def farmland(s: Surfaces, spec: FarmlandSpec, red: np.ndarray,
             report: dict[str, float]) -> np.ndarray:
    """Permanent basic farmland: suitable, not steep, cultivated land outside the red line.

    Raises
    ------
    QuotaError
        If ``quota_ha`` is set and the eligible land falls short of it.
    """
    land = (s.is_class(spec.cultivated_classes) & ~s.steep & ~red
            & np.isin(s.agri, spec.suitability_levels))
    report["farmland_excluded_steep_ha"] = s.hectares(
        np.count_nonzero(s.is_class(spec.cultivated_classes) & s.steep))
    land = remove_small_patches(land, s.cells(spec.min_area_ha))
    area = s.hectares(np.count_nonzero(land))
    if spec.quota_ha is not None:
        report["farmland_quota_ha"] = spec.quota_ha
        if area + 1e-9 < spec.quota_ha:
            raise QuotaError(
                f"lines.farmland.quota_ha: quota {spec.quota_ha:.2f} ha cannot be met; only "
                f"{area:.2f} ha of cultivated land qualifies "
                f"(shortfall {spec.quota_ha - area:.2f} ha)"
            )
    return land


def grow_region(seed: np.ndarray, phases: list[np.ndarray], cap_cells: int) -> np.ndarray:
    """Grow ``seed`` ring by ring into allowed cells until it holds ``cap_cells`` cells.

    Each phase allows more cells (e.g. urban-suitable first, then also fairly
    suitable); a phase grows until no allowed neighbour is left, then the next
    starts. Cells join in order of their ring (4-neighbour steps from the region),
    and within the last ring in row-major order, so the result is compact,
    contiguous with the seed, and deterministic.

    Examples
    --------
    >>> seed = np.zeros((1, 6), bool); seed[0, 0] = True
    >>> grow_region(seed, [np.ones((1, 6), bool)], 3).astype(int).tolist()
    [[1, 1, 1, 0, 0, 0]]
    """
    region = seed.copy()
    flat = region.ravel()
    width = region.shape[1]
    count = int(np.count_nonzero(flat))
    for allowed in phases:
        ok = allowed.ravel()
        frontier = np.flatnonzero(flat)  # a new phase may open cells next to any region cell
        while count < cap_cells and frontier.size:
            ring = _neighbours(frontier, width, flat.size)
            ring = np.unique(ring[ok[ring] & ~flat[ring]])  # sorted: row-major order
            if count + ring.size > cap_cells:
                ring = ring[: cap_cells - count]
            flat[ring] = True
            count += ring.size
            frontier = ring
    return region


def _neighbours(cells: np.ndarray, width: int, size: int) -> np.ndarray:
    """Flat indices of the 4-neighbours of flat ``cells`` in a raster ``width`` wide."""
    col = cells % width
    return np.concatenate([
        cells[cells >= width] - width,
        cells[cells < size - width] + width,
        cells[col > 0] - 1,
        cells[col < width - 1] + 1,
    ])


def ugb(s: Surfaces, spec: UgbSpec, red: np.ndarray, farm: np.ndarray,
        report: dict[str, float]) -> np.ndarray:
    """Urban development boundary grown from existing built-up land, within its cap.

    The cap is ``expansion_factor`` × existing built-up area and/or ``cap_ha`` (the
    smaller wins). Growth goes into cells outside the red line and farmland whose
    urban suitability is in ``grow_levels`` (best level first). Built-up patches
    below ``min_area_ha`` (villages) are not seeds; small gaps are filled within the cap.

    Raises
    ------
    QuotaError
        If the cap is smaller than the existing built-up land.
    """
    seed = remove_small_patches(s.is_class(spec.seed_classes) & ~red & ~farm,
                                s.cells(spec.min_area_ha))
    seed_cells = int(np.count_nonzero(seed))
    caps = []
    if spec.expansion_factor is not None:
        caps.append(int(np.floor(seed_cells * spec.expansion_factor)))
    if spec.cap_ha is not None:
        caps.append(int(np.floor(spec.cap_ha * 10_000 / s.grid.cell_area)))
    cap = min(caps)
    report["ugb_seed_ha"] = s.hectares(seed_cells)
    report["ugb_cap_ha"] = s.hectares(cap)
    if cap < seed_cells:
        what = (f"cap_ha {spec.cap_ha:.2f} ha" if spec.cap_ha is not None
                and cap == caps[-1] else f"the cap of {s.hectares(cap):.2f} ha")
        raise QuotaError(
            f"lines.ugb.cap_ha: {what} is below the existing built-up land of "
            f"{s.hectares(seed_cells):.2f} ha"
        )
    free = s.mask & ~red & ~farm
    phases = [free & np.isin(s.urban, spec.grow_levels[: i + 1])
              for i in range(len(spec.grow_levels))]
    region = grow_region(seed, phases, cap)
    used = int(np.count_nonzero(region))
    region = fill_holes(region, s.cells(spec.fill_holes_below_ha), allowed=free,
                        budget=cap - used)
    report["ugb_ha"] = s.hectares(np.count_nonzero(region))
    report["ugb_cap_used_pct"] = float(100.0 * np.count_nonzero(region) / cap) if cap else 0.0
    return region


def draw_lines(s: Surfaces, red_spec: RedLineSpec, farm_spec: FarmlandSpec,
               ugb_spec: UgbSpec) -> Lines:
    """Draw the three lines in policy order; they are disjoint by construction."""
    report: dict[str, float] = {}
    red = red_line(s, red_spec, farm_spec.cultivated_classes, report)
    farm = farmland(s, farm_spec, red, report)
    boundary = ugb(s, ugb_spec, red, farm, report)
    lines = Lines(red, farm, boundary, report)
    check_disjoint(lines)
    return lines


def check_disjoint(lines: Lines) -> None:
    """Assert that no cell lies in two lines (a bug if it fails, not a user error)."""
    total = (lines.red_line.astype(np.uint8) + lines.farmland.astype(np.uint8)
             + lines.ugb.astype(np.uint8))
    if (total > 1).any():
        raise AssertionError(f"{int(np.count_nonzero(total > 1))} cells lie in two lines")
