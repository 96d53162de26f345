"""The three lines and the allocation on hand-built grids (1 ha cells), plus properties."""

import numpy as np
import pytest
from _grids import CLASSES, surfaces
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sanqu.allocate import allocate, comparative_advantage
from sanqu.config import AllocationSpec, FarmlandSpec, RedLineSpec, UgbSpec
from sanqu.errors import QuotaError
from sanqu.lines import draw_lines, grow_region
from sanqu.patches import label
from sanqu.surfaces import Surfaces

LANDUSE = """
    fffccc
    ffwccc
    cccuuc
    cccuuc
    cccccc
"""
ECO = """
    111333
    111333
    133333
    333333
    333333
"""
AGRI = """
    333111
    333111
    111333
    111333
    111333
"""

RED = RedLineSpec(exclude_classes=["urban_built_up"], min_area_ha=1, fill_holes_below_ha=0)
FARM = FarmlandSpec(cultivated_classes=["cultivated"], min_area_ha=1)
UGB = UgbSpec(seed_classes=["urban_built_up"], expansion_factor=1.5, min_area_ha=1,
              fill_holes_below_ha=0)


def ints(a):
    return a.astype(int).tolist()


def test_red_line_cuts_cultivated_conflict():
    s = surfaces(LANDUSE, eco=ECO, agri=AGRI, urban="1" * 6 + "\n" + ("1" * 6 + "\n") * 4)
    lines = draw_lines(s, RED, FARM, UGB)
    assert ints(lines.red_line[:3, :3]) == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]
    assert lines.report["red_line_conflict_cultivated_ha"] == 1.0
    # farmland is the suitable cultivated land outside the red line
    assert ints(lines.farmland) == [
        [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0]]
    # UGB: 4 seed cells, cap 1.5 x 4 = 6; the first ring offers (2,5), (3,5), (4,3), (4,4):
    # the first two in row-major order join
    assert ints(lines.ugb) == [
        [0] * 6, [0] * 6, [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [0] * 6]
    assert lines.report["ugb_cap_ha"] == 6.0


def test_red_line_keeps_cultivated_when_configured():
    s = surfaces(LANDUSE, eco=ECO, agri=AGRI)
    red = RED.model_copy(update={"cultivated_conflict": "keep"})
    lines = draw_lines(s, red, FARM, UGB)
    assert lines.red_line[2, 0]
    assert not lines.farmland[2, 0]


def test_farmland_excludes_steep_and_small_patches():
    steep = """
        000000
        000000
        000000
        000000
        001000
    """
    s = surfaces(LANDUSE, eco=ECO, agri=AGRI, steep=steep)
    farm = FARM.model_copy(update={"min_area_ha": 7})
    lines = draw_lines(s, RED, farm, UGB)
    # the 6-cell north-east block is below 7 ha; the west block loses the steep cell
    assert not lines.farmland[:2].any()
    assert int(lines.farmland.sum()) == 8 and not lines.farmland[4, 2]
    assert lines.report["farmland_excluded_steep_ha"] == 1.0


def test_impossible_quota_names_key_and_shortfall():
    s = surfaces(LANDUSE, eco=ECO, agri=AGRI)
    farm = FARM.model_copy(update={"quota_ha": 20})
    with pytest.raises(QuotaError, match=r"lines\.farmland\.quota_ha: .*shortfall 5\.00 ha"):
        draw_lines(s, RED, farm, UGB)


def test_ugb_cap_below_built_up_is_an_error():
    s = surfaces(LANDUSE, eco=ECO, agri=AGRI)
    ugb = UGB.model_copy(update={"expansion_factor": None, "cap_ha": 3})
    with pytest.raises(QuotaError, match=r"lines\.ugb\.cap_ha"):
        draw_lines(s, RED, FARM, ugb)


def test_ugb_absolute_cap_wins_when_smaller():
    s = surfaces(LANDUSE, eco=ECO, agri=AGRI, urban=("1" * 6 + "\n") * 5)
    ugb = UGB.model_copy(update={"cap_ha": 5})
    lines = draw_lines(s, RED, FARM, ugb)
    assert int(lines.ugb.sum()) == 5


def test_grow_region_prefers_first_phase_and_rings():
    seed = np.zeros((1, 7), bool)
    seed[0, 3] = True
    good = np.array([[0, 0, 1, 0, 1, 1, 0]], bool)
    fair = np.ones((1, 7), bool)
    out = grow_region(seed, [good, good | fair], 5)
    # phase 1 takes (0,2), (0,4), then (0,5); phase 2 takes ring order: (0,1) before (0,6)
    assert ints(out) == [[0, 1, 1, 1, 1, 1, 0]]


def test_comparative_advantage_ties():
    eco = np.array([2, 2, 3, 1], np.uint8)
    agri = np.array([2, 1, 2, 2], np.uint8)
    urban = np.array([2, 2, 2, 3], np.uint8)
    order = ["ecological", "agricultural", "urban"]
    assert comparative_advantage(eco, agri, urban, order).tolist() == [1, 2, 2, 1]
    order = ["urban", "agricultural", "ecological"]
    assert comparative_advantage(eco, agri, urban, order).tolist() == [3, 2, 3, 1]


def test_allocation_records_rules_and_keeps_lines_in_their_space():
    s = surfaces(LANDUSE, eco=ECO, agri=AGRI, urban=("1" * 6 + "\n") * 5)
    lines = draw_lines(s, RED, FARM, UGB)
    alloc = allocate(s, lines, AllocationSpec(ecological_classes=["water"], min_patch_ha=1),
                     ["cultivated"])
    assert (alloc.zones[lines.red_line] == 1).all() and (alloc.rule[lines.red_line] == 1).all()
    assert (alloc.zones[lines.farmland] == 2).all()
    assert (alloc.zones[lines.ugb] == 3).all()
    # (2,0) is cultivated and eco 极重要: cut from the red line, it becomes farmland
    assert alloc.zones[2, 0] == 2 and alloc.rule[2, 0] == 2
    # (4,3), (4,4) are cultivated but agri 不适宜, urban 适宜 -> comparative advantage: urban
    assert alloc.rule[4, 3] == 8 and alloc.zones[4, 3] == 3


def test_allocation_places_important_land_outside_the_red_line_in_eco_space():
    s = surfaces(LANDUSE, eco=ECO, agri=AGRI)
    # a 7 ha minimum drops the 6 ha red-line patch: its cells fall to rule 5 (极重要)
    lines = draw_lines(s, RED.model_copy(update={"min_area_ha": 7}), FARM, UGB)
    assert not lines.red_line.any()
    alloc = allocate(s, lines, AllocationSpec(min_patch_ha=1), ["cultivated"])
    assert (alloc.rule[:2, :3] == 5).all() and (alloc.zones[:2, :3] == 1).all()


# ------------------------------------------------------------------ properties

@st.composite
def random_study(draw):
    rows, cols = draw(st.integers(3, 12)), draw(st.integers(3, 12))
    shape = (rows, cols)
    lc = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, len(CLASSES))))
    lc[rows // 2, cols // 2] = 2  # at least one built-up cell
    s = Surfaces.empty(_grid(shape), CLASSES)
    s.mask[:] = lc > 0
    s.landclass[:] = lc
    for name in ("eco", "agri", "urban"):
        lv = draw(hnp.arrays(np.uint8, shape, elements=st.integers(1, 3)))
        getattr(s, name)[:] = np.where(s.mask, lv, 0)
    s.steep[:] = draw(hnp.arrays(bool, shape)) & s.mask
    red = RedLineSpec(exclude_classes=["urban_built_up"], min_area_ha=draw(st.integers(0, 4)),
                      fill_holes_below_ha=draw(st.integers(0, 3)),
                      cultivated_conflict=draw(st.sampled_from(["keep", "cut"])))
    farm = FarmlandSpec(cultivated_classes=["cultivated"], min_area_ha=draw(st.integers(0, 4)),
                        quota_ha=draw(st.none() | st.integers(0, 30)))
    ugb = UgbSpec(seed_classes=["urban_built_up"], min_area_ha=draw(st.integers(0, 3)),
                  expansion_factor=draw(st.floats(1.0, 3.0)),
                  cap_ha=draw(st.none() | st.integers(1, 40)),
                  fill_holes_below_ha=draw(st.integers(0, 3)))
    return s, red, farm, ugb


def _grid(shape):
    from _grids import grid

    return grid(*shape)


def _patch_sizes(mask):
    lab, n = label(mask)
    return np.bincount(lab.ravel())[1:]


@settings(max_examples=150, deadline=None)
@given(random_study())
def test_lines_invariants_hold_or_clear_error(study):
    s, red, farm, ugb = study
    try:
        lines = draw_lines(s, red, farm, ugb)
    except QuotaError as exc:
        assert str(exc).startswith(("lines.farmland.quota_ha", "lines.ugb.cap_ha"))
        return
    r, f, u = lines.red_line, lines.farmland, lines.ugb
    assert not (r & f).any() and not (r & u).any() and not (f & u).any()
    assert not ((r | f | u) & ~s.mask).any()
    assert not (f & s.steep).any()
    assert (s.is_class(["cultivated"])[f]).all()
    if farm.quota_ha is not None:
        assert f.sum() >= farm.quota_ha
    assert u.sum() <= lines.report["ugb_cap_ha"] + 1e-9
    assert (_patch_sizes(f) >= farm.min_area_ha).all()
    alloc = allocate(s, lines, AllocationSpec(min_patch_ha=2), ["cultivated"])
    assert ((alloc.zones > 0) == s.mask).all()
    assert (alloc.zones[r] == 1).all() and (alloc.zones[f] == 2).all()
    assert (alloc.zones[u] == 3).all()
