"""Small hand-built study grids for the whole-area stage tests."""

import numpy as np
from affine import Affine
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pyproj import CRS

from sanqu.grid import Grid
from sanqu.surfaces import Surfaces

#: Land-use classes of the hand-built grids, by letter.
CLASSES = ("cultivated", "urban_built_up", "forest", "water")
LETTERS = {"c": 1, "u": 2, "f": 3, "w": 4, ".": 0}


def grid(rows: int, cols: int, cell: float = 100.0) -> Grid:
    """A grid of 100 m cells (1 ha each; or ``cell`` metres) in CGCS2000 GK zone 39."""
    return Grid(CRS.from_epsg(4527), Affine(cell, 0, 39_500_000, 0, -cell, 3_500_000),
                (rows, cols))


def class_rasters(max_side: int, classes: int) -> st.SearchStrategy[np.ndarray]:
    """Hypothesis strategy: small uint8 rasters of classes 0..``classes``."""
    return hnp.arrays(np.uint8, st.tuples(st.integers(1, max_side), st.integers(1, max_side)),
                      elements=st.integers(0, classes))


def scipy_label_classes(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference labels: each class's 4-connected patches by ``scipy.ndimage.label``.

    Numbered class by class in ascending code; also the class of each label.
    """
    from scipy import ndimage

    labels = np.zeros(classes.shape, dtype=np.int32)
    label_class = [np.zeros(1, dtype=np.int64)]
    for cls in np.unique(classes[classes > 0]):
        lab, n = ndimage.label(classes == cls)
        labels[lab > 0] = lab[lab > 0] + sum(len(c) for c in label_class) - 1
        label_class.append(np.full(n, cls, dtype=np.int64))
    return labels, np.concatenate(label_class)


def parse(text: str) -> np.ndarray:
    """Rows of characters (or digits) into an array."""
    rows = [r.split() if " " in r.strip() else list(r.strip()) for r in text.strip().splitlines()]
    return np.array([[LETTERS[c] if c in LETTERS else int(c) for c in row] for row in rows],
                    dtype=np.uint8)


def surfaces(landuse: str, eco: str | None = None, agri: str | None = None,
             urban: str | None = None, steep: str | None = None, *, cell: float = 100.0,
             units: str | None = None, unit_codes: tuple[str, ...] = (),
             protected: str | None = None, special: str | None = None,
             slope: str | None = None) -> Surfaces:
    """Surfaces from character maps; '.' is outside the study area, levels default to 3.

    ``units`` holds unit indices (digits, 0 = none) into ``unit_codes`` (named
    ``name-<code>``); ``protected``, ``special`` and ``steep`` are 0/1 maps;
    ``slope`` holds slope classes (default 1).
    """
    lc = parse(landuse)
    s = Surfaces.empty(grid(*lc.shape, cell=cell), CLASSES, unit_codes,
                       tuple(f"name-{c}" for c in unit_codes))
    s.mask[:] = lc > 0
    s.landclass[:] = lc
    for name, text in (("eco", eco), ("agri", agri), ("urban", urban)):
        arr = getattr(s, name)
        arr[:] = np.where(s.mask, parse(text) if text else 3, 0)
    for name, text in (("steep", steep), ("protected", protected), ("special", special)):
        if text:
            getattr(s, name)[:] = (parse(text) == 1) & s.mask
    s.slope_grade[:] = np.where(s.mask, parse(slope) if slope else 1, 0)
    s.near_grade[:] = s.mask
    if units:
        s.unit[:] = np.where(s.mask, parse(units), 0)
    return s


def scaled(text: str, k: int) -> str:
    """A character map with every cell split into k x k cells (the same areas at 1/k the size)."""
    rows = [r.strip() for r in text.strip().splitlines()]
    return "\n".join("".join(ch * k for ch in row) for row in rows for _ in range(k))
