"""The three control lines (三线): red line, permanent farmland, urban development boundary.

Whole-area stage on the compact rasters of :class:`~sanqu.surfaces.Surfaces`.
The lines are drawn in the order of national policy (methodology.md §3-§4):
the red line first, then farmland outside it, then the growth boundary outside
both, so they are disjoint by construction; :func:`check_disjoint` verifies it.

Every cell the line rules looked at gets a decision code (:data:`LINE_RULES`):
why it is in a line, or why a candidate was left out. Conflicts resolved,
cells moved, quotas met and the cap used are recorded as
:class:`~sanqu.report.Finding` rows for the conflict report.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from numba import njit
from scipy import ndimage

from .config import UGB_ZONES, FarmlandSpec, FarmQualitySpec, RedLineSpec, UgbSpec
from .errors import QuotaError
from .patches import (
    fill_holes,
    four_neighbours,
    label_sums,
    remove_small_patches,
    sieve_classes,
    smooth,
)
from .report import Finding
from .surfaces import Surfaces, one_of
from .trace import region_sizes
from .units import quota_index

#: Per-cell decisions of the line rules (``line_rule.tif``): in a line, or left out and why.
LINE_RULES: dict[int, str] = {
    11: "red line: protected area",
    12: "red line: ecological protection 极重要",
    13: "red line: added by smoothing (notch filled)",
    14: "red line: hole filled",
    15: "red line: cultivated land kept in the red line (cultivated_conflict: keep)",
    16: "not red line: cultivated land cut out (cultivated_conflict: cut)",
    17: "not red line: land-use class cut out (exclude_classes)",
    18: "not red line: removed by smoothing (whisker or saw-tooth)",
    19: "not red line: patch below the minimum area",
    21: "farmland: selected by quality rank to meet the quotas",
    22: "farmland: eligible cultivated land (selection: all_eligible)",
    23: "not farmland: cultivated land steeper than max_slope",
    24: "not farmland: cultivated land inside the red line",
    25: "not farmland: cultivated land of too low agricultural suitability",
    26: "not farmland: eligible piece below the minimum area",
    27: "not farmland: eligible, but ranked beyond the quotas (selection: meet_quota)",
    31: "UGB 城镇集中建设区: existing urban built-up land (seed)",
    32: "UGB 城镇集中建设区: growth",
    33: "UGB 城镇弹性发展区: growth at the margin (flexible_share)",
    34: "UGB 城镇集中建设区: gap filled",
    35: "UGB 特别用途区: special-use input",
    36: "not UGB: built-up patch below the minimum area (no seed)",
    37: "not UGB: built-up land inside the red line or farmland",
    38: "not UGB: special-use land inside the red line or farmland",
    39: "not UGB: special-use patch below the minimum area",
}

#: Codes of :data:`LINE_RULES` that put a cell into a line (the others leave it out).
IN_LINE = (11, 12, 13, 14, 15, 21, 22, 31, 32, 33, 34, 35)


@dataclass
class Lines:
    """The three lines as rasters, plus what happened while drawing them.

    Attributes
    ----------
    red_line, farmland, ugb : numpy.ndarray of bool
        The three lines; pairwise disjoint.
    ugb_zone : numpy.ndarray of uint8
        Sub-zones of the growth boundary (:data:`~sanqu.config.UGB_ZONES`), 0 outside it.
    rule : numpy.ndarray of uint8
        Decision code of :data:`LINE_RULES` per cell; 0 where no line rule applied.
    report : dict
        Figures in hectares (conflicts, caps, quotas) by name.
    findings : list of Finding
        Rows of the conflict report.
    """

    red_line: np.ndarray
    farmland: np.ndarray
    ugb: np.ndarray
    ugb_zone: np.ndarray
    rule: np.ndarray
    report: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, np.ndarray]:
        """The three rasters by line name."""
        return {"red_line": self.red_line, "farmland": self.farmland, "ugb": self.ugb}


class _Log:
    """Collects decisions, figures and findings while the lines are drawn."""

    def __init__(self, s: Surfaces) -> None:
        self.s = s
        self.rule = np.zeros(s.grid.shape, dtype=np.uint8)
        self.report: dict[str, float] = {}
        self.findings: list[Finding] = []
        self.in_line = np.zeros(s.grid.shape, dtype=bool)

    def mark(self, code: int, cells: np.ndarray) -> int:
        """Record decision ``code`` for ``cells``; returns how many cells were given.

        A reason to leave a cell out never overwrites a decision that put it in a line.
        """
        return _mark(self.rule, self.in_line, np.asarray(cells, dtype=bool), code,
                     code in IN_LINE)

    def ha(self, key: str, cells: int) -> None:
        """Record a figure in hectares."""
        self.report[key] = self.s.hectares(cells)

    def add(self, section: str, item: str, cells: int, note: str, **kw: object) -> None:
        """Record a conflict-report row (rows with no cells are kept: they say "none")."""
        self.findings.append(Finding(section, item, int(cells), note, **kw))  # type: ignore[arg-type]


@njit(cache=True)
def _mark(rule: np.ndarray, in_line: np.ndarray, cells: np.ndarray, code: int,
          puts_in: bool) -> int:
    """Write ``code`` into ``rule`` at ``cells`` (in one pass); returns how many cells.

    A code that ``puts_in`` a line also flags the cells ``in_line``; any other code
    leaves the cells flagged so alone. Every cell is stored to, changed or not: a
    conditional store becomes a masked vector store, very slow on pages never
    touched yet (``np.zeros``).
    """
    count = 0
    height, width = cells.shape
    for r in range(height):
        for c in range(width):
            hit = cells[r, c]
            count += hit
            if puts_in:
                in_line[r, c] |= hit
            else:
                hit &= not in_line[r, c]
            rule[r, c] = code if hit else rule[r, c]
    return count


# ---------------------------------------------------------------- red line


def red_line(s: Surfaces, spec: RedLineSpec, cultivated_classes: list[str],
             log: _Log) -> np.ndarray:
    """Ecological protection red line: protected areas ∪ eco-importance levels, cleaned.

    Conflicts with existing land use are counted and resolved as configured:
    ``exclude_classes`` are cut out; cultivated land is cut out or kept
    (``cultivated_conflict``). Then the edges are smoothed (``smooth_m``,
    :func:`~sanqu.patches.smooth`: notches filled with cells the line may hold,
    whiskers and teeth pruned but never protected areas), patches below ``min_area_ha``
    are dropped and holes up to ``fill_holes_below_ha`` filled with cells the line
    may hold.
    """
    protected = s.protected & s.mask
    core = s.mask & one_of(s.eco, spec.from_levels)
    core |= protected
    excluded = (s.is_class(spec.exclude_classes) if spec.exclude_classes
                else np.zeros_like(core))
    cultivated = s.is_class(cultivated_classes) & ~excluded
    cut = (excluded | cultivated) if spec.cultivated_conflict == "cut" else excluded
    n_excl = log.mark(17, core & excluded)
    del excluded
    cultivated &= core  # cultivated land in the core: a conflict
    n_cult = int(np.count_nonzero(cultivated))
    if spec.cultivated_conflict == "cut":
        log.mark(16, cultivated)
    log.ha("red_line_conflict_excluded_ha", n_excl)
    log.ha("red_line_conflict_cultivated_ha", n_cult)
    log.add("overlap", "red_line&excluded_classes", n_excl,
            f"{'/'.join(spec.exclude_classes) or 'none'}: cut from the red line")
    log.add("overlap", "red_line&cultivated", n_cult,
            "cut from the red line" if spec.cultivated_conflict == "cut"
            else "kept in the red line; not farmland")
    allowed = s.mask & ~cut
    line = core
    line &= ~cut
    del core, cut
    steps = int(round(spec.smooth_m / s.grid.res[0]))
    smoothed = smooth(line, steps, allowed=allowed, keep=protected)
    del protected
    n_off = log.mark(18, line & ~smoothed)
    # cells added are allowed and not in the line, so outside the core (never cut)
    added = smoothed & ~line
    del line
    n_added = int(np.count_nonzero(added))
    log.ha("red_line_smoothing_removed_ha", n_off)
    log.ha("red_line_smoothing_added_ha", n_added)
    log.add("moved", "red_line.smoothing_removed", n_off,
            f"whiskers and teeth up to {spec.smooth_m:g} m long pruned" if steps
            else "no smoothing (smooth_m below half a cell)")
    log.add("moved", "red_line.smoothing_added", n_added,
            f"notches up to {spec.smooth_m:g} m deep filled" if steps
            else "no smoothing (smooth_m below half a cell)")
    kept = remove_small_patches(smoothed, s.cells_at_least(spec.min_area_ha))
    n_small = log.mark(19, smoothed & ~kept)
    del smoothed
    log.ha("red_line_small_patches_ha", n_small)
    log.add("moved", "red_line.small_patches", n_small,
            f"patches below {spec.min_area_ha:g} ha dropped from the red line")
    line = fill_holes(kept, s.cells_at_most(spec.fill_holes_below_ha), allowed=allowed)
    del allowed
    # the eco-importance and protected-area cells are made again: fewer rasters held
    log.mark(12, line & s.mask & one_of(s.eco, spec.from_levels))
    log.mark(11, line & s.protected & s.mask)
    log.mark(13, line & added)
    n_holes = log.mark(14, line & ~kept)
    log.mark(15, line & cultivated)
    log.ha("red_line_holes_filled_ha", n_holes)
    log.add("moved", "red_line.holes_filled", n_holes,
            f"holes up to {spec.fill_holes_below_ha:g} ha filled")
    return line


# ---------------------------------------------------------------- farmland


def farmland(s: Surfaces, spec: FarmlandSpec, red: np.ndarray, log: _Log) -> np.ndarray:
    """Permanent basic farmland: ranked, quota-checked cultivated land outside the red line.

    Eligible land is cultivated, not steeper than ``max_slope``, outside the red
    line and of the listed suitability levels. It is cut into pieces at
    administrative unit borders (each mapped patch belongs to one unit) and pieces
    below ``min_area_ha`` are dropped. With ``selection: all_eligible`` every piece
    is farmland; with ``meet_quota`` pieces are taken in order of quality
    (:func:`quality_score`; ties: larger first, then row-major) until each unit's
    floor and then the total floor is met, the last piece grown from its best cell
    (:func:`grow_region`) just far enough, so every selection is contiguous and
    at least ``min_area_ha``.

    Raises
    ------
    QuotaError
        If the eligible land of a unit or of the study area falls short of its quota.
    ConfigError
        If a per-unit quota names a code that is not among the units.
    """
    eligible = s.is_class(spec.cultivated_classes)  # narrowed step by step
    n_steep = log.mark(23, eligible & s.steep)
    eligible &= ~s.steep
    n_red = log.mark(24, eligible & red)
    eligible &= ~red
    suitable = one_of(s.agri, spec.suitability_levels)
    log.mark(25, eligible & ~suitable)
    eligible &= suitable
    del suitable
    log.ha("farmland_excluded_steep_ha", n_steep)
    log.add("overlap", "farmland&red_line", n_red,
            "flat cultivated land inside the red line: not farmland")
    pieces, piece_unit, sizes = unit_pieces(eligible, s.unit, len(s.unit_codes))
    min_cells = s.cells_at_least(spec.min_area_ha)
    big = sizes >= max(min_cells, 1)
    big[0] = False
    n_small = log.mark(26, eligible & ~big[pieces])
    del eligible  # the pieces' cells (every eligible cell is in a piece)
    log.add("moved", "farmland.small_pieces", n_small,
            f"eligible pieces below {spec.min_area_ha:g} ha left out of farmland")
    quotas = _unit_quotas(s, spec)
    total_need = s.cells_at_least(spec.quota_ha) if spec.quota_ha is not None else 0
    avail = np.bincount(piece_unit, weights=sizes * big, minlength=len(s.unit_codes) + 1)
    _check_quotas(s, spec, quotas, avail, total_need)
    if spec.selection == "all_eligible":
        land = big[pieces]
        log.mark(22, land)
    else:
        q = quality_score(s, spec.quality, pieces, sizes)
        score = label_sums(pieces, len(sizes) - 1, weights=q) / np.maximum(sizes, 1)
        ids = np.arange(len(sizes))
        ranked = ids[np.lexsort((ids, -sizes, score))]
        ranked = ranked[big[ranked]]
        take = np.zeros(len(sizes), dtype=np.int64)
        for u, need in quotas.items():
            _fill(take, ranked[piece_unit[ranked] == u], sizes, need, min_cells)
        _fill(take, ranked, sizes, total_need, min_cells)
        land = _taken(pieces, take, sizes, q)
        log.mark(27, big[pieces] & ~land)
        log.mark(21, land)
    _quota_findings(s, spec, log, land, avail)
    return land


def unit_pieces(land: np.ndarray, unit: np.ndarray,
                n_units: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label the 4-connected pieces of ``land`` within each administrative unit.

    A piece never crosses a unit border. The land is labelled once, keyed by unit
    (:func:`~sanqu.trace.region_sizes`), and the pieces renumbered unit by unit.

    Returns
    -------
    labels : numpy.ndarray of int32
        Piece ids 1..n, 0 off ``land``: the pieces of no unit (index 0) first, then
        unit by unit, within a unit in order of each piece's first cell (row-major).
    piece_unit : numpy.ndarray of int64
        Unit index of each piece id (index 0 is the background).
    sizes : numpy.ndarray of int64
        Cells of each piece id (index 0: the cells off ``land``).

    Examples
    --------
    >>> land = np.array([[1, 1, 1, 1], [0, 0, 0, 1]], bool)
    >>> lab, pu, sizes = unit_pieces(land, np.array([[2, 1, 1, 2]] * 2, np.uint16), 2)
    >>> lab.tolist(), pu.tolist(), sizes.tolist()
    ([[2, 1, 1, 3], [0, 0, 0, 3]], [0, 1, 2, 2], [3, 2, 1, 2])
    """
    if n_units:
        key = unit + 1  # unit index + 1 on the land, 0 off it (unit's dtype)
        key *= land
    else:
        key = land
    labels, value, cells = region_sizes(key)
    del key
    order = np.argsort(value[1:], kind="stable") + 1  # unit by unit, scan order within one
    renumber = np.zeros(value.size, dtype=np.int32)
    renumber[order] = np.arange(1, value.size, dtype=np.int32)
    step = max(1, (1 << 22) // max(land.shape[1], 1))
    for r in range(0, land.shape[0], step):
        labels[r:r + step] = renumber[labels[r:r + step]]
    piece_unit = np.concatenate([[0], value[order] - 1]) if n_units else np.zeros_like(value)
    sizes = np.concatenate([[land.size - int(cells.sum())], cells[order]])
    return labels, piece_unit, sizes


def quality_score(s: Surfaces, spec: FarmQualitySpec, pieces: np.ndarray,
                  sizes: np.ndarray) -> np.ndarray:
    """Farmland quality per cell, 0 (best) … 100 (worst), uint8.

    The weighted sum of four criteria, each scaled from its best grade (0) to its
    worst (1): agricultural suitability level, slope class, the area of the cell's
    piece (larger is better) and nearness to built-up land (nearer is better).

    Examples
    --------
    >>> from affine import Affine
    >>> from sanqu.grid import Grid
    >>> s = Surfaces.empty(Grid("EPSG:4527", Affine(100, 0, 0, 0, -100, 0), (1, 2)), ())
    >>> s.agri[:] = [[1, 2]]; s.slope_grade[:] = [[1, 5]]; s.near_grade[:] = 1
    >>> w = FarmQualitySpec(weights={"suitability": 0.5, "slope": 0.5})
    >>> quality_score(s, w, np.array([[1, 1]]), np.array([0, 2])).tolist()
    [[0, 75]]
    """
    w = spec.weights

    def part(name: str, grades: int) -> np.ndarray:
        steps = np.arange(grades + 1, dtype=np.float64)  # index = grade; grade 0 unused
        return np.rint(100 * w.get(name, 0.0) * np.clip(steps - 1, 0, None)
                       / max(grades - 1, 1)).astype(np.uint8)

    patch_ha = sizes * s.grid.cell_area / 10_000
    nb = len(spec.patch_breaks_ha)
    patch_grade = (nb + 1 - np.searchsorted(spec.patch_breaks_ha, patch_ha, side="right"))
    q = part("suitability", 3)[s.agri]
    q += part("slope", len(spec.slope_breaks) + 1)[s.slope_grade]
    q += part("near_built", len(spec.near_breaks) + 1)[s.near_grade]
    q += part("patch_size", nb + 1)[patch_grade][pieces]
    return q


def _fill(take: np.ndarray, ranked: np.ndarray, sizes: np.ndarray, need: int,
          min_cells: int) -> None:
    """Take cells of the ``ranked`` pieces, best first, until ``need`` cells are taken."""
    missing = need - int(take[ranked].sum())
    if missing <= 0 or ranked.size == 0:
        return
    room = sizes[ranked] - take[ranked]
    cum = np.cumsum(room)
    k = int(np.searchsorted(cum, missing))  # first piece whose room completes the need
    take[ranked[:k]] = sizes[ranked[:k]]
    if k < ranked.size:
        p = ranked[k]
        rest = missing - (int(cum[k - 1]) if k else 0)
        take[p] = min(int(sizes[p]), max(int(take[p]) + rest, min_cells))


def _taken(pieces: np.ndarray, take: np.ndarray, sizes: np.ndarray,
           q: np.ndarray) -> np.ndarray:
    """Cells of the pieces as taken: whole pieces, and the partly taken ones grown."""
    whole = take >= sizes
    whole[0] = False
    land = whole[pieces]
    partial = np.flatnonzero((take > 0) & (take < sizes))
    if partial.size:
        boxes = ndimage.find_objects(pieces)
        for p in partial:
            box = boxes[p - 1]
            here = pieces[box] == p
            land[box] |= _grow_piece(here, q[box], int(take[p]))
    return land


def _grow_piece(here: np.ndarray, q: np.ndarray, cells: int) -> np.ndarray:
    """``cells`` cells of one piece, grown ring by ring from its best cell, better land first."""
    qq = np.where(here, q, 255)
    seed = np.zeros(here.shape, dtype=bool)
    seed.flat[int(np.argmin(qq))] = True  # the first best cell in row-major order
    # qq is 255 off the piece; the phases are made one at a time as the growth reaches them
    phases = itertools.chain((qq <= t for t in (20, 40, 60, 80, 100)), [here])
    return grow_region(seed, phases, cells)


def _unit_quotas(s: Surfaces, spec: FarmlandSpec) -> dict[int, int]:
    """Per-unit floors as unit index → cells (in unit-code order)."""
    given = spec.unit_quotas if isinstance(spec.unit_quotas, dict) else {}
    return {u: s.cells_at_least(ha) for u, ha in quota_index(s.unit_codes, given).items()}


def _check_quotas(s: Surfaces, spec: FarmlandSpec, quotas: dict[int, int], avail: np.ndarray,
                  total_need: int) -> None:
    """Raise a one-line QuotaError naming every unit (then the total) that falls short."""
    short = [(u, need, int(avail[u])) for u, need in quotas.items() if avail[u] < need]
    if short:
        parts = [f"{s.unit_codes[u - 1]} {s.unit_names[u - 1]} needs {s.hectares(need):.2f} ha, "
                 f"only {s.hectares(have):.2f} ha qualifies (shortfall "
                 f"{s.hectares(need - have):.2f} ha)" for u, need, have in short]
        raise QuotaError(f"lines.farmland.unit_quotas: quota cannot be met in {len(short)} "
                         f"unit{'s' * (len(short) > 1)}: " + "; ".join(parts))
    have = int(avail.sum())
    if spec.quota_ha is not None and have < total_need:
        raise QuotaError(
            f"lines.farmland.quota_ha: quota {spec.quota_ha:.2f} ha cannot be met; only "
            f"{s.hectares(have):.2f} ha of cultivated land qualifies "
            f"(shortfall {spec.quota_ha - s.hectares(have):.2f} ha)"
        )


def _quota_findings(s: Surfaces, spec: FarmlandSpec, log: _Log, land: np.ndarray,
                    avail: np.ndarray) -> None:
    """Quota rows: task vs. delineated per unit with a floor, then the whole study area."""
    per_cell = 10_000 / s.grid.cell_area
    got = label_sums(s.unit, len(s.unit_codes), where=land)
    given = spec.unit_quotas if isinstance(spec.unit_quotas, dict) else {}
    for u, task_ha in quota_index(s.unit_codes, given).items():
        log.add("quota", "farmland", int(got[u]),
                f"floor met; surplus {s.hectares(int(got[u])) - task_ha:.2f} ha; eligible "
                f"{s.hectares(int(avail[u])):.2f} ha", reference_cells=task_ha * per_cell,
                unit_code=s.unit_codes[u - 1], unit_name=s.unit_names[u - 1])
    total = int(np.count_nonzero(land))
    log.ha("farmland_ha", total)
    task = spec.quota_ha if spec.quota_ha is not None else (sum(given.values()) or None)
    if spec.quota_ha is not None:
        log.report["farmland_quota_ha"] = spec.quota_ha
    note = "no quota" if task is None else f"floor met; surplus {s.hectares(total) - task:.2f} ha"
    if spec.quota_ha is None and task is not None:
        note += " over the sum of the unit floors"
    log.add("quota", "farmland", total, f"{note}; eligible {s.hectares(int(avail.sum())):.2f} "
            f"ha; selection {spec.selection}",
            reference_cells=None if task is None else task * per_cell)


# ---------------------------------------------------------------- growth boundary


def grow_region(seed: np.ndarray, phases: Iterable[np.ndarray], cap_cells: int) -> np.ndarray:
    """Grow ``seed`` ring by ring into allowed cells until it holds ``cap_cells`` cells.

    Each phase allows more cells (e.g. urban-suitable first, then also fairly
    suitable); a phase grows until no allowed neighbour is left, then the next
    starts. Cells join in order of their ring (4-neighbour steps from the region),
    and within the last ring in row-major order, so the result is compact,
    contiguous with the seed, and deterministic. The cells join in one fixed
    order whatever the cap, so a smaller cap gives a subset of a larger one.
    ``phases`` may be an iterator: each phase is then made only when it starts.

    Examples
    --------
    >>> seed = np.zeros((1, 6), bool); seed[0, 0] = True
    >>> grow_region(seed, [np.ones((1, 6), bool)], 3).astype(int).tolist()
    [[1, 1, 1, 0, 0, 0]]
    """
    region = seed.copy()
    flat = region.ravel()
    start = np.flatnonzero(flat)
    _grow(flat, region.shape[1], (p.ravel() for p in phases), start, cap_cells - start.size)
    return region


def grow_blobs(region: np.ndarray, phases: list[np.ndarray], cells: int,
               min_cells: int) -> np.ndarray:
    """Compact blobs grown out of ``region``'s edge, best land first, ``cells`` in all.

    Candidate starts are the allowed cells touching ``region``, taken in order
    of the first phase that allows them, then row-major. From each start a blob
    grows ring by ring (:func:`grow_region`'s rule) until the cells are used up
    or it is enclosed; a blob that cannot reach ``min_cells`` is given up, and no
    blob starts with fewer than ``min_cells`` cells left. So every blob is
    contiguous, compact, touches ``region`` and holds at least ``min_cells``.

    Returns
    -------
    numpy.ndarray of bool
        The blob cells (never in ``region``).

    Examples
    --------
    >>> town = np.zeros((3, 8), bool); town[:, :2] = True
    >>> free = np.ones((3, 8), bool); free[0, 2] = free[2, 2] = False
    >>> grow_blobs(town, [free], 4, 3).astype(int).tolist()
    [[0, 0, 0, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]
    """
    out = region.copy()
    flat = out.ravel()
    width = out.shape[1]
    oks = [p.ravel() for p in phases]
    edge = _edge_cells(out, phases[-1])
    rank = np.zeros(edge.size, dtype=np.int64)
    for k in range(len(oks) - 1, -1, -1):
        rank[oks[k][edge]] = k
    tried = np.zeros(flat.size, dtype=bool)
    left = cells
    for c in edge[np.lexsort((edge, rank))]:
        if left < max(min_cells, 1):
            break
        if flat[c] or tried[c]:
            continue
        flat[c] = True
        blob = _grow(flat, width, oks, np.array([c]), left - 1)
        if blob.size < min_cells:  # an enclosed pocket: give it up, never try it again
            flat[blob] = False
            tried[blob] = True
            continue
        left -= blob.size
    del tried
    out &= ~region
    return out


def _edge_cells(region: np.ndarray, ok: np.ndarray, band_cells: int = 1 << 22) -> np.ndarray:
    """Flat indices (ascending) of the ``ok`` cells outside ``region`` with a 4-neighbour in it.

    Worked out band by band of rows, so the temporaries stay a band's size.

    Examples
    --------
    >>> region = np.zeros((3, 3), bool); region[1, 1] = True
    >>> _edge_cells(region, np.ones((3, 3), bool)).tolist()
    [1, 3, 5, 7]
    """
    rows, width = region.shape
    step = max(1, band_cells // max(width, 1))
    found = []
    for r in range(0, rows, step):
        top, end = max(r - 1, 0), min(r + step, rows)
        near = four_neighbours(region[top:end + 1])[r - top:r - top + end - r] > 0
        near &= ok[r:end]
        near &= ~region[r:end]
        found.append(np.flatnonzero(near) + r * width)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _grow(flat: np.ndarray, width: int, oks: Iterable[np.ndarray], start: np.ndarray,
          cells: int) -> np.ndarray:
    """Grow the region ``flat`` from ``start`` by up to ``cells`` cells, phase by phase.

    ``flat`` is the region's raster, flattened (a view: it is grown in place), ``oks``
    the phases' allowed cells, flattened alike; each phase grows ring by ring from
    every member so far (:func:`_grow_rings`). A phase is taken from ``oks`` only
    while cells are left to grow.

    Returns
    -------
    numpy.ndarray of int64
        Flat indices of the region's members: ``start``, then the cells grown, ring
        by ring.
    """
    members = np.empty(max(2 * start.size, 64), dtype=np.int64)
    members[:start.size] = start
    n = start.size
    for ok in oks:
        if n - start.size >= cells:
            break
        members, n = _grow_rings(flat, width, ok, members, n, start.size, cells)
    return members[:n]


@njit(cache=True)
def _grow_rings(flat: np.ndarray, width: int, ok: np.ndarray, members: np.ndarray, n: int,
                seeds: int, cells: int) -> tuple[np.ndarray, int]:
    """One phase of :func:`_grow`: rings of ``ok`` cells around ``members[:n]``.

    Each ring is every ``ok`` 4-neighbour of the last ring (at first, of every
    member) not in ``flat`` yet. The ring that would take the region past
    ``cells`` grown cells (members after the first ``seeds``) keeps only its
    first cells in row-major order. Returns the members (a larger array when
    they outgrow ``members``) and their count.
    """
    size = flat.size
    lo, hi = 0, n  # the frontier: members[lo:hi]
    while n - seeds < cells and hi > lo:
        for i in range(lo, hi):
            c = members[i]
            col = c % width
            for near in (c - width if c >= width else -1, c + width if c < size - width else -1,
                         c - 1 if col > 0 else -1, c + 1 if col < width - 1 else -1):
                if near >= 0 and ok[near] and not flat[near]:
                    flat[near] = True
                    if n == members.size:
                        bigger = np.empty(2 * n, dtype=members.dtype)
                        bigger[:n] = members
                        members = bigger
                    members[n] = near
                    n += 1
        room = cells - (hi - seeds)  # cells the region may still grow before this ring
        if n - hi > room:  # only the last ring is cut: in row-major order
            members[hi:n].sort()
            for j in range(hi + room, n):
                flat[members[j]] = False
            n = hi + room
        lo, hi = hi, n
    return members, n


def ugb(s: Surfaces, spec: UgbSpec, red: np.ndarray, farm: np.ndarray,
        log: _Log) -> np.ndarray:
    """Urban development boundary grown from existing built-up land, within its cap.

    The cap is ``expansion_factor`` × existing built-up area and/or ``cap_ha`` (the
    smaller wins). Built-up patches outside the red line and farmland of at least
    ``min_area_ha`` are the seeds (smaller ones are villages). Special-use land
    (``special_use``) outside the red line and farmland is the 特别用途区 and counts
    against the cap. The seeds grow (:func:`grow_region`) into cells outside the
    red line and farmland whose urban suitability is in ``grow_levels`` (best level
    first): the 集中建设区 up to the cap less ``flexible_share`` of it; then the
    弹性发展区 at its margin, as compact blobs of at least ``min_area_ha``
    (:func:`grow_blobs`), up to the cap. Small gaps are filled within the cap.

    Returns
    -------
    numpy.ndarray of uint8
        Sub-zone codes (:data:`~sanqu.config.UGB_ZONES`), 0 outside the boundary.

    Raises
    ------
    QuotaError
        If the cap is smaller than the existing built-up land plus special-use land.
    """
    built = s.is_class(spec.seed_classes)
    n_blocked = log.mark(37, built & (red | farm))
    log.add("overlap", "ugb_seed&lines", n_blocked,
            "built-up land inside the red line or farmland: no seed of the UGB")
    free = s.mask & ~red & ~farm
    min_cells = s.cells_at_least(spec.min_area_ha)
    built &= free
    seed = remove_small_patches(built, min_cells)
    built &= ~seed
    n_village = log.mark(36, built)
    del built
    log.add("moved", "ugb.small_built_up", n_village,
            f"built-up patches below {spec.min_area_ha:g} ha are no seeds (villages)")
    seed_cells = int(np.count_nonzero(seed))
    caps = []
    if spec.expansion_factor is not None:
        caps.append(int(np.floor(seed_cells * spec.expansion_factor + 1e-9)))
    if spec.cap_ha is not None:
        caps.append(s.cells_at_most(spec.cap_ha))
    cap = min(caps)
    log.ha("ugb_seed_ha", seed_cells)
    log.ha("ugb_cap_ha", cap)
    if cap < seed_cells:
        what = (f"cap_ha {spec.cap_ha:.2f} ha" if spec.cap_ha is not None
                and cap == caps[-1] else f"the cap of {s.hectares(cap):.2f} ha")
        raise QuotaError(
            f"lines.ugb.cap_ha: {what} is below the existing built-up land of "
            f"{s.hectares(seed_cells):.2f} ha"
        )
    n_special_cut = log.mark(38, s.special & s.mask & (red | farm))
    log.add("overlap", "ugb_special&lines", n_special_cut,
            "special-use land inside the red line or farmland: cut from the 特别用途区")
    special = s.special & free & ~seed
    special_cells = int(np.count_nonzero(special))
    if seed_cells + special_cells > cap:
        raise QuotaError(
            f"lines.ugb.special_use: special-use land of {s.hectares(special_cells):.2f} ha and "
            f"existing built-up land of {s.hectares(seed_cells):.2f} ha exceed the cap of "
            f"{s.hectares(cap):.2f} ha")
    budget = cap - special_cells
    concentrated_cap = max(seed_cells, budget - int(np.floor(spec.flexible_share * cap + 1e-9)))
    free &= ~special  # the land to grow into
    phases = [free & one_of(s.urban, spec.grow_levels[: i + 1])
              for i in range(len(spec.grow_levels))]
    del free  # made again for filling gaps: fewer rasters held while growing
    concentrated = grow_region(seed, phases, concentrated_cap)
    flexible = grow_blobs(concentrated, phases, budget - int(np.count_nonzero(concentrated)),
                          min_cells)
    del phases
    zone = np.zeros(s.grid.shape, dtype=np.uint8)  # sub-zones of the boundary as grown
    zone[concentrated] = 1
    del concentrated
    zone[flexible] = 2
    del flexible
    zone[special] = 3
    del special
    used = int(np.count_nonzero(zone))
    grow = zone != 3
    grow &= s.mask
    grow &= ~red
    grow &= ~farm
    whole = fill_holes(zone > 0, s.cells_at_most(spec.fill_holes_below_ha),
                       allowed=grow, budget=cap - used)
    del grow
    gaps = whole & (zone == 0)
    kept = remove_small_patches(whole, min_cells)  # only special-use patches can be this small
    n_small_special = log.mark(39, whole & ~kept)
    del whole
    zone[gaps] = 1
    zone *= kept
    gaps &= kept
    total = int(np.count_nonzero(kept))
    del kept
    if zone.max() > 1:  # a sub-zone sliver joins the sub-zone with the longest shared border
        sieved = sieve_classes(zone, min_cells)
        n_sliver = int(np.count_nonzero(sieved != zone))
        zone = sieved
    else:
        n_sliver = 0
    log.mark(32, zone == 1)
    log.mark(31, seed)
    log.mark(34, gaps & (zone == 1))
    log.mark(33, zone == 2)
    log.mark(35, zone == 3)
    log.add("moved", "ugb.subzone_slivers", n_sliver,
            f"sub-zone patches below {spec.min_area_ha:g} ha merged into the neighbouring "
            "sub-zone with the longest shared border")
    for code, key in ((1, "concentrated"), (2, "flexible"), (3, "special")):
        log.ha(f"ugb_{key}_ha", int(np.count_nonzero(zone == code)))
    n_gaps = int(np.count_nonzero(gaps))
    log.ha("ugb_gaps_filled_ha", n_gaps)
    log.ha("ugb_ha", total)
    log.report["ugb_cap_used_pct"] = float(100.0 * total / cap) if cap else 0.0
    log.add("moved", "ugb.gaps_filled", n_gaps,
            f"gaps up to {spec.fill_holes_below_ha:g} ha filled within the cap")
    log.add("moved", "ugb.small_special_use", n_small_special,
            f"special-use patches below {spec.min_area_ha:g} ha dropped")
    shares = ", ".join(f"{UGB_ZONES[c]} {log.report[f'ugb_{k}_ha']:.2f} ha" for c, k in
                       ((1, "concentrated"), (2, "flexible"), (3, "special")))
    why = ("" if total == cap else
           f"; the rest is less than a {spec.min_area_ha:g} ha patch" if cap - total < min_cells
           else "; growth ran out of land of grow_levels next to the boundary outside the red "
           "line and farmland")
    log.add("cap", "ugb", total, f"{log.report['ugb_cap_used_pct']:.1f} % of the cap; "
            f"existing built-up {s.hectares(seed_cells):.2f} ha; {shares}{why}",
            reference_cells=cap)
    return zone


# ---------------------------------------------------------------- all three


def draw_lines(s: Surfaces, red_spec: RedLineSpec, farm_spec: FarmlandSpec,
               ugb_spec: UgbSpec) -> Lines:
    """Draw the three lines in policy order; they are disjoint by construction."""
    log = _Log(s)
    red = red_line(s, red_spec, farm_spec.cultivated_classes, log)
    farm = farmland(s, farm_spec, red, log)
    zone = ugb(s, ugb_spec, red, farm, log)
    lines = Lines(red, farm, zone > 0, zone, log.rule, log.report, log.findings)
    check_disjoint(lines)
    return lines


def check_disjoint(lines: Lines) -> None:
    """Assert that no cell lies in two lines (a bug if it fails, not a user error)."""
    step = max(1, (1 << 22) // max(lines.red_line.shape[1], 1))
    twice = 0
    for r in range(0, lines.red_line.shape[0], step):
        red, farm, ugb = (a[r:r + step] for a in (lines.red_line, lines.farmland, lines.ugb))
        twice += int(np.count_nonzero((red & farm) | ((red | farm) & ugb)))
    if twice:
        raise AssertionError(f"{twice} cells lie in two lines")
