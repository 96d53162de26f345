"""Allocation of every study cell to one of the three spaces (三区).

Whole-area stage. Rules apply in order and the first that matches places the
cell (methodology.md §3): the three lines first (each into its own space), then
the lock-ins in the configured order (protected areas, existing built-up land,
极重要 ecology, cultivated land, ecological land-use classes), then comparative
advantage for the rest. The rule's code is recorded per cell so every cell's
space can be explained. Small patches of a space are then merged into the
neighbouring space with the longest shared border, except patches holding a
control line, so each line stays inside its own space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .config import SPACES, AllocationSpec
from .lines import Lines
from .patches import remove_small_patches, sieve_classes
from .report import Finding
from .surfaces import Surfaces, one_of

ECO, AGRI, URBAN = SPACES["ecological"], SPACES["agricultural"], SPACES["urban"]

#: Allocation rules by code (``allocation_rule.tif``); codes stay fixed whatever the order.
RULES: dict[int, str] = {
    1: "red line → ecological",
    2: "permanent farmland → agricultural",
    3: "urban development boundary → urban",
    4: "protected area → ecological",
    5: "ecological protection 极重要 → ecological",
    6: "cultivated land of allocation.cultivated_levels → agricultural",
    7: "ecological land-use class (water, wetland…) → ecological",
    8: "comparative advantage (best of the three evaluations)",
    9: "merged into a neighbour: patch below the minimum area",
    10: "existing built-up land (allocation.built_up_classes) → urban",
}

#: Rule code of each lock-in name of ``allocation.order``.
LOCK_IN_CODES = {"protected": 4, "built_up": 10, "eco_important": 5, "cultivated": 6,
                 "ecological_classes": 7}


@dataclass
class Allocation:
    """The three spaces and the rule that placed each cell.

    Attributes
    ----------
    zones : numpy.ndarray of uint8
        1 ecological, 2 agricultural, 3 urban, 0 outside the study area.
    rule : numpy.ndarray of uint8
        Code of :data:`RULES` that placed the cell; 0 outside.
    findings : list of Finding
        Cells moved by sieving, per pair of spaces (for the conflict report).
    """

    zones: np.ndarray
    rule: np.ndarray
    findings: list[Finding] = field(default_factory=list)


def comparative_advantage(eco: np.ndarray, agri: np.ndarray, urban: np.ndarray,
                          tie_order: list[str]) -> np.ndarray:
    """Space whose evaluation level is best (lowest); ties follow ``tie_order``.

    Examples
    --------
    >>> one = lambda *v: np.array(v, np.uint8)
    >>> comparative_advantage(one(2, 1, 3), one(2, 2, 1), one(1, 1, 1),
    ...                       ["ecological", "agricultural", "urban"]).tolist()
    [3, 1, 2]
    """
    spaces = [SPACES[name] for name in tie_order]
    levels = {ECO: eco, AGRI: agri, URBAN: urban}
    best = np.full(eco.shape, 255, dtype=np.uint8)
    out = np.zeros(eco.shape, dtype=np.uint8)
    for space in spaces:
        _take_better(out.reshape(-1), best.reshape(-1), np.ravel(levels[space]), space)
    return out


@njit(cache=True)
def _take_better(out: np.ndarray, best: np.ndarray, levels: np.ndarray, space: int) -> None:
    """Give ``space`` to the cells whose level (1 best; 0 none) beats ``best``, in one pass.

    All three arrays are flat views of rasters of one shape. Every cell is stored
    to, changed or not (see :func:`~sanqu.lines._mark`).
    """
    for i in range(out.size):
        lv = levels[i]
        better = 0 < lv < best[i]
        out[i] = space if better else out[i]
        best[i] = lv if better else best[i]


def allocate(s: Surfaces, lines: Lines, spec: AllocationSpec,
             cultivated_classes: list[str]) -> Allocation:
    """Allocate the study area to the three spaces.

    Parameters
    ----------
    s : Surfaces
        Evaluation levels, land-use classes and flags.
    lines : Lines
        The three control lines, each placed in its own space first.
    spec : AllocationSpec
        Order of the lock-ins, their classes, minimum patch area and tie order.
    cultivated_classes : list of str
        Land-use classes counted as cultivated land.
    """
    zones = np.zeros(s.grid.shape, dtype=np.uint8)
    rule = np.zeros(s.grid.shape, dtype=np.uint8)
    free = s.mask.copy()
    no_spaces = np.zeros((0, 0), dtype=np.uint8)

    def place(code: int, cells: np.ndarray, space: np.ndarray | int) -> None:
        one = np.isscalar(space)
        _place(zones, rule, free, np.asarray(cells, dtype=bool), code, int(space) if one else 0,
               no_spaces if one else space)

    place(1, lines.red_line, ECO)
    place(2, lines.farmland, AGRI)
    place(3, lines.ugb, URBAN)
    lock_ins: dict[str, tuple[Callable[[], np.ndarray], int]] = {
        "protected": (lambda: s.protected, ECO),
        "built_up": (lambda: remove_small_patches(
            s.is_class(spec.built_up_classes), s.cells_at_least(spec.built_up_min_ha)), URBAN),
        "eco_important": (lambda: s.eco == 1, ECO),
        "cultivated": (lambda: s.is_class(cultivated_classes)
                       & one_of(s.agri, spec.cultivated_levels), AGRI),
        "ecological_classes": (lambda: s.is_class(spec.ecological_classes), ECO),
    }
    for name in spec.order:
        cells, space = lock_ins[name]
        place(LOCK_IN_CODES[name], cells(), space)
    place(8, free, comparative_advantage(s.eco, s.agri, s.urban, spec.tie_order))
    locked = lines.red_line | lines.farmland | lines.ugb
    sieved = sieve_classes(zones, s.cells_at_least(spec.min_patch_ha), locked=locked)
    moved = sieved != zones
    rule[moved] = 9
    return Allocation(sieved, rule, _sieve_findings(zones, sieved, moved, spec.min_patch_ha))


@njit(cache=True)
def _place(zones: np.ndarray, rule: np.ndarray, free: np.ndarray, cells: np.ndarray, code: int,
           space: int, spaces: np.ndarray) -> None:
    """Place the ``free`` ``cells`` in ``space`` by rule ``code``, in one pass.

    With ``space`` 0 each cell goes to its space in the raster ``spaces`` (read only
    then). The zones and rule are written and the cells are no longer free. Every
    cell is stored to, changed or not (see :func:`~sanqu.lines._mark`).
    """
    height, width = zones.shape
    for r in range(height):
        for c in range(width):
            hit = cells[r, c] and free[r, c]
            to = space if space else spaces[r, c]
            zones[r, c] = to if hit else zones[r, c]
            rule[r, c] = code if hit else rule[r, c]
            free[r, c] &= not hit


def _sieve_findings(before: np.ndarray, after: np.ndarray, moved: np.ndarray,
                    min_ha: float) -> list[Finding]:
    """One row per (from, to) pair of spaces that sieving moved cells between."""
    names = {code: name for name, code in SPACES.items()}
    pairs = np.bincount(before[moved].astype(np.int64) * 4 + after[moved], minlength=16)
    return [Finding("moved", f"space.{names[a]}→{names[b]}", int(pairs[a * 4 + b]),
                    f"patches below {min_ha:g} ha merged into the neighbour with the "
                    "longest shared border")
            for a in (1, 2, 3) for b in (1, 2, 3) if pairs[a * 4 + b]]
