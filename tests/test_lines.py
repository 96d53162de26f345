"""The three lines and the allocation on hand-built grids (1 ha cells), plus properties."""

import numpy as np
import pytest
from _grids import CLASSES, grid, scaled, surfaces
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sanqu.allocate import allocate, comparative_advantage
from sanqu.config import AllocationSpec, FarmlandSpec, FarmQualitySpec, RedLineSpec, UgbSpec
from sanqu.errors import ConfigError, QuotaError
from sanqu.lines import IN_LINE, draw_lines, grow_blobs, grow_region, quality_score
from sanqu.patches import label, smooth
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
    cell = draw(st.sampled_from([50.0, 100.0, 100.0]))
    coarse = draw(hnp.arrays(np.uint8, ((rows + 1) // 2, (cols + 1) // 2),
                             elements=st.sampled_from([0, 1, 1, 1, 2, 2, 3, 4])))
    lc = np.kron(coarse, np.ones((2, 2), np.uint8))[:rows, :cols]  # patches of 2 x 2 cells
    lc[draw(hnp.arrays(bool, shape, elements=st.sampled_from([False] * 6 + [True])))] = 3
    lc[rows // 2, cols // 2] = 2  # at least one built-up cell
    n_units = draw(st.integers(0, 2))
    codes = ("A", "B")[:n_units]
    s = Surfaces.empty(grid(rows, cols, cell), CLASSES, codes, codes)
    s.mask[:] = lc > 0
    s.landclass[:] = lc
    for name in ("eco", "agri", "urban"):
        lv = draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from([1, 1, 2, 3])))
        getattr(s, name)[:] = np.where(s.mask, lv, 0)
    sparse = st.sampled_from([False] * 4 + [True])
    for name in ("steep", "protected", "special"):
        if draw(st.booleans()):
            getattr(s, name)[:] = draw(hnp.arrays(bool, shape, elements=sparse)) & s.mask
    s.slope_grade[:] = np.where(s.mask, draw(hnp.arrays(np.uint8, shape,
                                                        elements=st.integers(1, 5))), 0)
    s.near_grade[:] = s.mask
    if n_units:  # bands of columns; a band may be left out of every unit
        split = draw(st.integers(0, cols))
        band = np.where(np.arange(cols) < split, 1, n_units)
        band[draw(st.integers(0, cols - 1))] *= draw(st.sampled_from([0, 1, 1, 1]))
        s.unit[:] = np.where(s.mask, band[None, :], 0)
    ha = st.sampled_from([0, 0.5, 1, 1.2, 2, 3.5])
    red = RedLineSpec(exclude_classes=["urban_built_up"], min_area_ha=draw(ha),
                      fill_holes_below_ha=draw(ha), smooth_m=draw(st.sampled_from([0, 100, 200])),
                      cultivated_conflict=draw(st.sampled_from(["keep", "cut"])))
    quota_ha = draw(st.none() | st.integers(0, 12))
    unit_quotas = {c: draw(st.integers(0, 6)) for c in codes if draw(st.booleans())} or None
    selection = "all_eligible"
    if quota_ha is not None or unit_quotas:  # meet_quota needs a floor
        selection = draw(st.sampled_from(["all_eligible", "meet_quota"]))
    farm = FarmlandSpec(cultivated_classes=["cultivated"], min_area_ha=draw(ha),
                        quota_ha=quota_ha, unit_quotas=unit_quotas, selection=selection)
    ugb = UgbSpec(seed_classes=["urban_built_up"], min_area_ha=draw(ha),
                  expansion_factor=draw(st.floats(1.0, 3.0)),
                  cap_ha=draw(st.none() | st.integers(1, 40)),
                  fill_holes_below_ha=draw(ha), flexible_share=draw(st.sampled_from([0, 0.2, 0.5])))
    return s, red, farm, ugb


def _patch_sizes(mask):
    lab, n = label(mask)
    return np.bincount(lab.ravel())[1:]


def _min_ok(s, mask, min_ha):
    """Every 4-connected patch of ``mask`` holds at least ``min_ha`` (in area, not cells)."""
    return all(s.hectares(n) >= min_ha - 1e-9 for n in _patch_sizes(mask))


@settings(max_examples=200, deadline=None)
@given(random_study())
def test_lines_invariants_hold_or_clear_error(study):
    s, red, farm, ugb = study
    try:
        lines = draw_lines(s, red, farm, ugb)
    except QuotaError as exc:
        assert str(exc).startswith(("lines.farmland.quota_ha", "lines.farmland.unit_quotas: ",
                                    "lines.ugb.cap_ha", "lines.ugb.special_use"))
        assert "\n" not in str(exc)
        return
    r, f, u = lines.red_line, lines.farmland, lines.ugb
    # the three lines never overlap and stay in the study area
    assert not (r & f).any() and not (r & u).any() and not (f & u).any()
    assert not ((r | f | u) & ~s.mask).any()
    # farmland: cultivated, never steep, every floor met
    assert not (f & s.steep).any()
    assert (s.is_class(["cultivated"])[f]).all()
    if farm.quota_ha is not None:
        assert s.hectares(f.sum()) >= farm.quota_ha
    for i, code in enumerate(s.unit_codes, start=1):
        if farm.unit_quotas and code in farm.unit_quotas:
            assert s.hectares(np.count_nonzero(f & (s.unit == i))) >= farm.unit_quotas[code]
    # growth boundary: within its cap, holding the existing built-up land it grew from
    assert u.sum() <= round(lines.report["ugb_cap_ha"] * 10_000 / s.grid.cell_area)
    assert lines.report["ugb_seed_ha"] <= lines.report["ugb_ha"] + 1e-9
    assert ((lines.ugb_zone > 0) == u).all()
    # no patch below its minimum, per line and per UGB sub-zone
    assert _min_ok(s, r, red.min_area_ha) and _min_ok(s, f, farm.min_area_ha)
    assert _min_ok(s, u, ugb.min_area_ha)
    for z in (1, 2, 3):
        assert _min_ok(s, lines.ugb_zone == z, ugb.min_area_ha)
    # every cell in a line says why, with a code of that line
    for arr, codes in ((r, (11, 12, 13, 14, 15)), (f, (21, 22)), (u, (31, 32, 33, 34, 35))):
        assert np.isin(lines.rule[arr], codes).all()
    assert not np.isin(lines.rule[~(r | f | u)], IN_LINE).any()
    # deterministic
    again = draw_lines(s, red, farm, ugb)
    assert (again.rule == lines.rule).all() and (again.ugb_zone == lines.ugb_zone).all()
    alloc = allocate(s, lines, AllocationSpec(min_patch_ha=2), ["cultivated"])
    assert ((alloc.zones > 0) == s.mask).all()
    assert (alloc.zones[r] == 1).all() and (alloc.zones[f] == 2).all()
    assert (alloc.zones[u] == 3).all()


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 10), st.integers(1, 10))),
       hnp.arrays(bool, (10, 10)), hnp.arrays(bool, (10, 10)), st.integers(0, 3))
def test_smoothing_stays_within_allowed_keeps_protected_and_never_splits(mask, allowed, keep, k):
    window = (slice(0, mask.shape[0]), slice(0, mask.shape[1]))
    allowed, keep = allowed[window], keep[window]
    out = smooth(mask, k, allowed=allowed, keep=keep)
    assert not (out & ~(mask | allowed)).any()
    assert not (mask & keep & ~out).any()
    if not allowed.any():  # pruning alone never splits a patch: no more patches than before
        assert label(out)[1] <= label(mask)[1]


# ------------------------------------------------------------------ red line: smoothing

SMOOTH_LANDUSE = """
    fffffffff
    ffffcffff
    fffffffff
    fffffffff
    fffffffff
    fffffffff
    fffffffff
"""
SMOOTH_ECO = """
    333333333
    311111333
    311111113
    311111333
    311111333
    313111333
    333333333
"""


def _red_only(s, red):
    farm = FarmlandSpec(cultivated_classes=["cultivated"], suitability_levels=[1])
    ugb = UgbSpec(seed_classes=["urban_built_up"], min_area_ha=1)
    return draw_lines(s, red, farm, ugb)


def test_red_line_smoothing_fills_notches_and_prunes_whiskers():
    s = surfaces(SMOOTH_LANDUSE, eco=SMOOTH_ECO)
    # 200 m at 100 m cells: notches two cells deep filled, whiskers two cells long pruned
    red = RED.model_copy(update={"smooth_m": 200})
    lines = _red_only(s, red)
    # the forest notch (5,2) is filled; the cultivated notch (1,4) is cut and stays out, so
    # its neighbour (1,5) is a one-cell tooth and goes; the two-cell whisker (2,6..7) goes
    assert ints(lines.red_line) == [
        [0] * 9,
        [0, 1, 1, 1, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 0, 0, 0],
        [0] * 9]
    # (1, 4) was cut from the red line as cultivated land, then left out of farmland as
    # unsuitable: the later rule's reason is the one recorded
    assert lines.rule[5, 2] == 13 and lines.rule[1, 4] == 25
    assert {f.item: f.cells for f in lines.findings}["red_line&cultivated"] == 1
    assert [lines.rule[1, 5], lines.rule[2, 6], lines.rule[2, 7]] == [18, 18, 18]
    assert lines.report["red_line_smoothing_removed_ha"] == 3.0
    assert lines.report["red_line_smoothing_added_ha"] == 1.0
    # one step (100 m) prunes only the whisker's tip
    one = _red_only(s, RED.model_copy(update={"smooth_m": 100}))
    assert ints(one.red_line[2, 5:8]) == [1, 1, 0]


def test_red_line_smoothing_never_removes_protected_land():
    protected = "\n".join(["000000000", "000000000", "000000010"] + ["000000000"] * 4)
    s = surfaces(SMOOTH_LANDUSE, eco=SMOOTH_ECO, protected=protected)
    lines = _red_only(s, RED.model_copy(update={"smooth_m": 200}))
    assert ints(lines.red_line[2, 5:8]) == [1, 1, 1]  # the protected tip holds the whisker
    assert lines.rule[2, 7] == 11


def test_red_line_conflicts_are_reported():
    s = surfaces(LANDUSE, eco=ECO, agri=AGRI)
    lines = draw_lines(s, RED, FARM, UGB)
    rows = {f.item: f for f in lines.findings if f.section == "overlap"}
    assert rows["red_line&cultivated"].cells == 1
    assert rows["red_line&cultivated"].note == "cut from the red line"
    assert rows["red_line&excluded_classes"].cells == 0
    kept = draw_lines(s, RED.model_copy(update={"cultivated_conflict": "keep"}), FARM, UGB)
    assert kept.rule[2, 0] == 15
    assert {f.item: f for f in kept.findings}["farmland&red_line"].cells == 1


# ------------------------------------------------------------------ farmland: quotas

QUOTA_LANDUSE = """
    cccfcccfcccc
    cccfcccfcccc
    cccfcccfcccc
    ffffffffcccc
"""
QUOTA_AGRI = """
    111322231111
    111322231111
    111322231111
    333333331111
"""
QUOTA_UNITS = """
    111111112222
    111111112222
    111111112222
    111111112222
"""
BY_SUITABILITY = FarmQualitySpec(weights={"suitability": 1.0})


def _quota_study():
    return surfaces(QUOTA_LANDUSE, agri=QUOTA_AGRI, units=QUOTA_UNITS, unit_codes=("U1", "U2"))


def _farm(**kw):
    base = {"cultivated_classes": ["cultivated"], "min_area_ha": 2, "quality": BY_SUITABILITY,
            "selection": "meet_quota"}
    return FarmlandSpec(**{**base, **kw})


def test_farmland_meets_unit_and_total_floors_with_the_best_land():
    s = _quota_study()
    farm = _farm(quota_ha=20, unit_quotas={"U1": 10, "U2": 5})
    lines = draw_lines(s, RED, farm, UGB)
    # U1 (10 ha): the 适宜 piece A (9 ha) whole, then 1 ha more from the 一般适宜 piece B,
    # raised to the 2 ha minimum and grown from B's first cell. U2 (5 ha): 5 cells of C
    # grown ring by ring from its first cell. Total 20 ha: C, the best-ranked piece with
    # room (score 0, larger than A), grows 4 more cells along the same rings.
    assert ints(lines.farmland) == [
        [1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0],
        [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0],
        [0] * 12]
    quota = {f.unit_code: f for f in lines.findings if f.section == "quota"}
    assert (quota["U1"].cells, quota["U1"].reference_cells) == (11, 10)
    assert (quota["U2"].cells, quota["U2"].reference_cells) == (9, 5)
    assert (quota[""].cells, quota[""].reference_cells) == (20, 20)
    assert "surplus 4.00 ha" in quota["U2"].note
    assert (lines.rule[lines.farmland] == 21).all()
    assert lines.rule[2, 6] == 27  # eligible, ranked beyond the floors


def test_farmland_all_eligible_keeps_everything_and_reports_surpluses():
    s = _quota_study()
    lines = draw_lines(s, RED, _farm(selection="all_eligible", unit_quotas={"U1": 10}), UGB)
    assert int(lines.farmland.sum()) == 34 and (lines.rule[lines.farmland] == 22).all()
    quota = {f.unit_code: f for f in lines.findings if f.section == "quota"}
    assert quota["U1"].cells == 18 and "surplus 8.00 ha" in quota["U1"].note
    assert quota[""].reference_cells == 10  # no total floor: the sum of the unit floors


def test_impossible_unit_quota_names_unit_and_shortfall():
    s = _quota_study()
    with pytest.raises(QuotaError, match=r"^lines\.farmland\.unit_quotas: quota cannot be met "
                       r"in 1 unit: U2 name-U2 needs 17\.00 ha, only 16\.00 ha qualifies "
                       r"\(shortfall 1\.00 ha\)$"):
        draw_lines(s, RED, _farm(unit_quotas={"U1": 5, "U2": 17}), UGB)


def test_unknown_unit_code_in_quotas():
    with pytest.raises(ConfigError, match=r"lines\.farmland\.unit_quotas\.U9: no administrative"):
        draw_lines(_quota_study(), RED, _farm(unit_quotas={"U9": 1}), UGB)


def test_farmland_pieces_end_at_unit_borders():
    # one 2 x 4 field across two units: two pieces of 4 ha; with a 5 ha minimum both go
    s = surfaces("cccc\ncccc", agri="1111\n1111", units="1122\n1122", unit_codes=("A", "B"))
    for min_ha, expected in ((5, False), (4, True)):
        farm = _farm(selection="all_eligible", min_area_ha=min_ha)
        assert (draw_lines(s, RED, farm, UGB).farmland == expected).all()


def test_quality_score_ranks_flatter_larger_better_land_first():
    s = surfaces("cc.cc", agri="11.12", slope="15.11")
    pieces = np.array([[1, 1, 0, 2, 2]], np.int32)
    spec = FarmQualitySpec(weights={"suitability": 0.5, "slope": 0.25, "patch_size": 0.25},
                           patch_breaks_ha=[1.5, 3, 4, 5])
    q = quality_score(s, spec, pieces, np.array([1, 2, 2], np.int64))
    # pieces of 2 ha: size grade 4 of 5 (18.75 → 19); slope class 5 adds 25 to (0, 1),
    # 一般适宜 (level 2) adds 25 to (0, 4)
    assert q[0, [0, 1, 3, 4]].tolist() == [19, 44, 19, 44]


# ------------------------------------------------------------------ areas, cell size

def test_minimum_areas_hold_in_area_terms_whatever_the_cell_size():
    # strips of 10, 11 and 12 cells of 30 m: 0.90, 0.99 and 1.08 ha; the same areas at 10 m
    text = "c" * 10 + "f" + "c" * 11 + "f" + "c" * 12
    farm = _farm(selection="all_eligible", min_area_ha=1.0)
    kept = {}
    for cell, k in ((30.0, 1), (10.0, 3)):
        s = surfaces(scaled(text, k), agri=scaled(text.replace("c", "1").replace("f", "3"), k),
                     cell=cell)
        f = draw_lines(s, RED, farm, UGB).farmland
        kept[cell] = sorted(round(s.hectares(n), 4) for n in _patch_sizes(f))
    assert kept[30.0] == kept[10.0] == [1.08]
    # the same in m2 (config values may carry a unit)
    assert FarmlandSpec(cultivated_classes=["c"], min_area_ha="10000 m2").min_area_ha == 1.0


# ------------------------------------------------------------------ growth boundary

UGB_LANDUSE = """
    ffffffffff
    uuffffffff
    uuffffffff
    uuffffffff
    ffffffffff
"""


def test_ugb_subzones_concentrated_flexible_and_special_use():
    s = surfaces(UGB_LANDUSE, urban=("1" * 10 + "\n") * 5,
                 special="0000000011\n0000000011\n" + ("0" * 10 + "\n") * 3)
    ugb = UgbSpec(seed_classes=["urban_built_up"], grow_levels=[1], expansion_factor=3.0,
                  min_area_ha=2, fill_holes_below_ha=0, flexible_share=0.25)
    lines = draw_lines(s, RED, FARM, ugb)
    # cap 3 x 6 = 18: special use 4, flexible floor(0.25 x 18) = 4, so the concentrated
    # zone is the 6 seed cells plus the first 4 of the first ring (row-major); then one
    # flexible blob of 4 grows from the first free cell touching it, (0, 2)
    assert ints(lines.ugb_zone) == [
        [1, 1, 2, 2, 2, 0, 0, 0, 3, 3],
        [1, 1, 1, 2, 0, 0, 0, 0, 3, 3],
        [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        [0] * 10]
    assert lines.report["ugb_ha"] == lines.report["ugb_cap_ha"] == 18
    assert (lines.report["ugb_concentrated_ha"], lines.report["ugb_flexible_ha"],
            lines.report["ugb_special_ha"]) == (10, 4, 4)
    assert lines.rule[1, 0] == 31 and lines.rule[0, 0] == 32 and lines.rule[0, 3] == 33
    assert lines.rule[0, 8] == 35


def test_ugb_special_use_in_farmland_is_cut_and_counts_in_the_cap():
    landuse = UGB_LANDUSE.replace("uuffffffff\n", "uufffffffc\n", 1)
    s = surfaces(landuse, agri=landuse.replace("c", "1").replace("u", "3").replace("f", "3"),
                 urban=("1" * 10 + "\n") * 5,
                 special="0000000011\n0000000011\n" + ("0" * 10 + "\n") * 3)
    farm = FarmlandSpec(cultivated_classes=["cultivated"], min_area_ha=1)
    ugb = UgbSpec(seed_classes=["urban_built_up"], grow_levels=[1], expansion_factor=3.0,
                  min_area_ha=2, fill_holes_below_ha=0)
    lines = draw_lines(s, RED, farm, ugb)
    assert lines.farmland[1, 9] and not lines.ugb[1, 9] and lines.rule[1, 9] == 22
    assert {f.item: f.cells for f in lines.findings}["ugb_special&lines"] == 1
    assert lines.report["ugb_special_ha"] == 3 and lines.report["ugb_ha"] == 18
    tight = ugb.model_copy(update={"expansion_factor": 1.4})  # cap 8 < 6 seed + 3 special
    with pytest.raises(QuotaError, match=r"^lines\.ugb\.special_use: special-use land of "
                       r"3\.00 ha and existing built-up land of 6\.00 ha exceed the cap"):
        draw_lines(s, RED, farm, tight)


def test_grow_region_is_a_prefix_of_one_fixed_order():
    rng = np.random.default_rng(7)
    allowed = rng.random((30, 30)) < 0.7
    seed = np.zeros((30, 30), bool)
    seed[15, 15] = True
    allowed |= seed
    sizes = [int(grow_region(seed, [allowed], cap).sum()) for cap in (50, 120, 300)]
    small, big = grow_region(seed, [allowed], 120), grow_region(seed, [allowed], 300)
    assert sizes == [50, 120, 300] and not (small & ~big).any()
    assert (grow_region(seed, [allowed], 300) == big).all()  # deterministic


def test_grow_blobs_are_contiguous_compact_and_large_enough():
    town = np.zeros((12, 12), bool)
    town[4:8, 4:8] = True
    free = np.ones_like(town)
    free[0:3, 9:12] = False
    free[9, :] = False  # a one-row pocket below: (10..11, :) is open
    blobs = grow_blobs(town, [free & ~town], 30, 6)
    assert not (blobs & town).any() and int(blobs.sum()) == 30
    lab, n = label(blobs | town)
    assert n == 1  # every blob touches the town
    assert (_patch_sizes(blobs) >= 6).all()


# ------------------------------------------------------------------ allocation order

def test_allocation_lock_in_order_decides_built_up_in_important_land():
    s = surfaces("ffuu\nffuu", eco="3311\n3311", urban="3333\n3333")
    lines = draw_lines(s, RED, FARM, UGB.model_copy(update={"min_area_ha": 9}))
    assert not lines.ugb.any()  # a 4 ha built-up patch is no seed at 9 ha
    built = AllocationSpec(built_up_classes=["urban_built_up"], min_patch_ha=1)
    first = allocate(s, lines, built, ["cultivated"])
    assert (first.zones[:, 2:] == 3).all() and (first.rule[:, 2:] == 10).all()
    eco_first = built.model_copy(update={"order": ["eco_important", "built_up"]})
    second = allocate(s, lines, eco_first, ["cultivated"])
    assert (second.zones[:, 2:] == 1).all() and (second.rule[:, 2:] == 5).all()
    none = built.model_copy(update={"order": []})
    assert (allocate(s, lines, none, ["cultivated"]).rule[:, 2:] == 8).all()


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 10), st.integers(1, 10))),
       hnp.arrays(bool, (10, 10)), st.integers(1, 30))
def test_edge_cells_are_the_open_neighbours_of_the_region(region, ok, band_cells):
    from sanqu.lines import _edge_cells

    ok = ok[: region.shape[0], : region.shape[1]]
    near = _neighbours(np.flatnonzero(region), region.shape[1], region.size)
    want = np.unique(near[ok.ravel()[near] & ~region.ravel()[near]])
    assert _edge_cells(region, ok, band_cells).tolist() == want.tolist()


def _neighbours(cells, width, size):
    """Flat indices of the 4-neighbours of flat ``cells`` in a raster ``width`` wide."""
    col = cells % width
    return np.concatenate([cells[cells >= width] - width, cells[cells < size - width] + width,
                           cells[col > 0] - 1, cells[col < width - 1] + 1])


def _grow_reference(flat, width, oks, start, cells):
    """The rings of :func:`sanqu.lines._grow` as whole-array steps (its former numpy form)."""
    members = [start]
    added = 0
    for ok in oks:
        frontier = np.concatenate(members)
        while added < cells and frontier.size:
            near = _neighbours(frontier, width, flat.size)
            ring = np.unique(near[ok[near] & ~flat[near]])
            if added + ring.size > cells:
                ring = ring[: cells - added]
            flat[ring] = True
            added += ring.size
            members.append(ring)
            frontier = ring
    return np.concatenate(members)


def test_grow_kernel_on_hand_worked_rings():
    from sanqu.lines import _grow

    # 1 x 7 strip, seed in the middle: ring 1 is {2, 4}, ring 2 {1, 5}; a cap of 3 cuts ring 2
    region = np.zeros(7, bool)
    region[3] = True
    grown = _grow(region, 7, [np.ones(7, bool)], np.array([3]), 3)
    assert grown[0] == 3 and sorted(grown[1:3]) == [2, 4] and grown[3] == 1
    assert region.astype(int).tolist() == [0, 1, 1, 1, 1, 0, 0]
    # 3 x 3, the second phase opens the corner only: the ring of phase 1 stops at the wall
    region = np.zeros(9, bool)
    region[0] = True
    first = np.array([1, 1, 0, 1, 1, 0, 0, 0, 0], bool)
    grown = _grow(region, 3, [first, first | (np.arange(9) == 8)], np.array([0]), 10)
    assert sorted(grown.tolist()) == [0, 1, 3, 4]
    region[:] = False
    region[0] = True
    everything = np.ones(9, bool)
    grown = _grow(region, 3, [first, everything], np.array([0]), 10)
    assert grown.tolist()[:1] == [0] and region.all() and grown.size == 9


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))),
       st.integers(0, 3), st.integers(0, 60))
def test_grow_region_matches_the_whole_array_rings(seed, phase_seed, cap):
    rng = np.random.default_rng(phase_seed)
    levels = rng.integers(1, 4, seed.shape)
    phases = [levels <= k for k in (1, 2, 3)][: 1 + phase_seed % 3]
    want = seed.copy()
    start = np.flatnonzero(want)
    _grow_reference(want.ravel(), seed.shape[1], [p.ravel() for p in phases], start,
                    cap - start.size)
    assert (grow_region(seed, phases, cap) == want).all()


@pytest.mark.parametrize("seed", range(5))
def test_grow_blobs_match_the_whole_array_rings(seed, monkeypatch):
    import sanqu.lines

    rng = np.random.default_rng(seed)
    town = np.zeros((60, 80), bool)
    for r, c in rng.integers(5, 55, (6, 2)):
        town[r:r + rng.integers(2, 8), c:c + rng.integers(2, 8)] = True
    levels = rng.integers(1, 4, town.shape)
    phases = [(levels <= k) & ~town for k in (1, 2)]
    for cells, min_cells in ((200, 6), (900, 25), (50, 1)):
        got = grow_blobs(town, phases, cells, min_cells)
        with monkeypatch.context() as m:
            m.setattr(sanqu.lines, "_grow", _grow_reference)
            want = grow_blobs(town, phases, cells, min_cells)
        assert (got == want).all() and got.any()


def _unit_pieces_reference(land, unit, n_units):
    """Pieces unit by unit with scipy's labelling (the former form of unit_pieces)."""
    from scipy import ndimage

    labels = np.zeros(land.shape, dtype=np.int32)
    owner = [0]
    for u in range(n_units + 1):
        lab, n = ndimage.label(land & (unit == u))
        np.add(lab, len(owner) - 1, out=labels, where=lab > 0)
        owner.extend([u] * n)
    return labels, np.asarray(owner), np.bincount(labels.ravel(), minlength=len(owner))


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))),
       st.integers(0, 4), st.integers(0, 9))
def test_unit_pieces_match_scipy_unit_by_unit(land, n_units, seed):
    from sanqu.lines import unit_pieces

    unit = np.random.default_rng(seed).integers(0, n_units + 1, land.shape).astype(np.uint16)
    unit[:, : seed % 3] = 0
    got = unit_pieces(land, unit, n_units)
    want = _unit_pieces_reference(land, unit, n_units)
    for a, b in zip(got, want, strict=True):
        assert a.tolist() == b.tolist()


def test_mark_puts_cells_in_a_line_and_never_overwrites_them_with_a_reason_out():
    from sanqu.lines import _mark

    rule = np.zeros((2, 3), np.uint8)
    in_line = np.zeros((2, 3), bool)
    first = np.array([[1, 1, 0], [0, 0, 0]], bool)
    out = np.array([[0, 1, 1], [0, 0, 1]], bool)
    assert _mark(rule, in_line, first, 21, True) == 2
    assert _mark(rule, in_line, out, 27, False) == 3  # every cell given counts
    assert ints(rule) == [[21, 21, 27], [0, 0, 27]] and ints(in_line) == [[1, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize("seed", range(4))
def test_placing_and_comparative_advantage_match_whole_array_steps(seed):
    from sanqu.allocate import _place

    rng = np.random.default_rng(seed)
    shape = (37, 53)
    eco, agri, urban = (rng.integers(0, 4, shape).astype(np.uint8) for _ in range(3))
    order = ["urban", "ecological", "agricultural"] if seed % 2 else ["ecological",
                                                                      "agricultural", "urban"]
    want = np.zeros(shape, np.uint8)  # the former whole-array steps
    best = np.full(shape, 255, np.uint8)
    levels = {"ecological": (1, eco), "agricultural": (2, agri), "urban": (3, urban)}
    for space, lv in (levels[name] for name in order):
        better = (lv > 0) & (lv < best)
        want[better] = space
        best[better] = lv[better]
    advantage = comparative_advantage(eco, agri, urban, order)
    assert (advantage == want).all()
    free = rng.random(shape) < 0.9
    zones, rule, left = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8), free.copy()
    want_zones, want_rule, want_left = zones.copy(), rule.copy(), free.copy()
    steps = [(rng.random(shape) < 0.3, 1, 2), (rng.random(shape) < 0.5, 4, 3)]
    for cells, code, space in steps + [(want_left, 8, advantage)]:
        hit = cells & want_left
        want_zones[hit] = space if np.isscalar(space) else space[hit]
        want_rule[hit] = code
        want_left[hit] = False
    for cells, code, space in steps + [(left, 8, advantage)]:
        one = np.isscalar(space)
        _place(zones, rule, left, cells, code, space if one else 0,
               np.zeros((0, 0), np.uint8) if one else space)
    assert (zones == want_zones).all() and (rule == want_rule).all() and (left == want_left).all()
