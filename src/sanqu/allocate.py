"""Allocation of every study cell to one of the three spaces (三区).

Whole-area stage. Rules apply in order and the first that matches places the
cell (methodology.md §3); the rule's code is recorded per cell so every cell's
space can be explained. Small patches of a space are then merged into the
neighbouring space with the longest shared border, except patches holding a
control line, so each line stays inside its own space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SPACES, AllocationSpec
from .lines import Lines
from .patches import sieve_classes
from .surfaces import Surfaces

ECO, AGRI, URBAN = SPACES["ecological"], SPACES["agricultural"], SPACES["urban"]

#: Allocation rules in order: code → (description, space or None for "by comparison").
RULES: dict[int, str] = {
    1: "red line → ecological",
    2: "permanent farmland → agricultural",
    3: "urban development boundary → urban",
    4: "protected area → ecological",
    5: "ecological protection 极重要 → ecological",
    6: "cultivated land, agriculture 适宜/一般适宜 → agricultural",
    7: "ecological land-use class (water, wetland…) → ecological",
    8: "comparative advantage (best of the three evaluations)",
    9: "merged into a neighbour: patch below the minimum area",
}


@dataclass
class Allocation:
    """The three spaces and the rule that placed each cell.

    Attributes
    ----------
    zones : numpy.ndarray of uint8
        1 ecological, 2 agricultural, 3 urban, 0 outside the study area.
    rule : numpy.ndarray of uint8
        Code of :data:`RULES` that placed the cell; 0 outside.
    """

    zones: np.ndarray
    rule: np.ndarray


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
        lv = levels[space]
        better = (lv > 0) & (lv < best)
        out[better] = space
        best[better] = lv[better]
    return out


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
        Ecological land-use classes, minimum patch area and tie order.
    cultivated_classes : list of str
        Land-use classes counted as cultivated land.
    """
    zones = np.zeros(s.grid.shape, dtype=np.uint8)
    rule = np.zeros(s.grid.shape, dtype=np.uint8)
    free = s.mask.copy()

    def place(code: int, cells: np.ndarray, space: np.ndarray | int) -> None:
        hit = cells & free
        zones[hit] = space if np.isscalar(space) else space[hit]
        rule[hit] = code
        free[hit] = False

    place(1, lines.red_line, ECO)
    place(2, lines.farmland, AGRI)
    place(3, lines.ugb, URBAN)
    place(4, s.protected, ECO)
    place(5, s.eco == 1, ECO)
    place(6, s.is_class(cultivated_classes) & np.isin(s.agri, [1, 2]), AGRI)
    if spec.ecological_classes:
        place(7, s.is_class(spec.ecological_classes), ECO)
    place(8, free, comparative_advantage(s.eco, s.agri, s.urban, spec.tie_order))
    locked = lines.red_line | lines.farmland | lines.ugb
    sieved = sieve_classes(zones, s.cells(spec.min_patch_ha), locked=locked)
    rule[sieved != zones] = 9
    return Allocation(sieved, rule)
