"""The line rules on the bundled Dianbu sample: the invariants the issue asks for, measured.

The surfaces are computed once; each test draws the lines (a few milliseconds) with the
sample config or a variant of it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sanqu import Study, default_config_path, load_config
from sanqu.config import Config
from sanqu.errors import QuotaError
from sanqu.lines import Lines, draw_lines
from sanqu.patches import label, shape_index
from sanqu.surfaces import Surfaces, one_of


@pytest.fixture(scope="module")
def cfg() -> Config:
    return load_config(default_config_path())


@pytest.fixture(scope="module")
def sample(cfg: Config) -> tuple[Surfaces, np.ndarray]:
    """The sample's surfaces and its slope in degrees (whole grid in one block)."""
    with Study(cfg) as study:
        s = study.surfaces()
        slope = study.compute(study.whole()).layers["slope"]
    return s, slope


def draw(s: Surfaces, cfg: Config, **farm: object) -> Lines:
    spec = cfg.lines.farmland.model_copy(update=farm)
    return draw_lines(s, cfg.lines.red_line, spec, cfg.lines.ugb)


def patch_areas(s: Surfaces, mask: np.ndarray) -> np.ndarray:
    lab, _ = label(mask)
    return np.bincount(lab.ravel())[1:] * s.grid.cell_area / 10_000


@pytest.mark.parametrize("selection", ["all_eligible", "meet_quota"])
def test_sample_lines_keep_every_rule(sample: tuple[Surfaces, np.ndarray], cfg: Config,
                                      selection: str) -> None:
    s, slope = sample
    lines = draw(s, cfg, selection=selection)
    arrays = lines.as_dict()
    for a, b in itertools.combinations(arrays, 2):
        assert not (arrays[a] & arrays[b]).any(), (a, b)
    # farmland: every floor met, per synthetic unit and in total; slope at most 25 degrees
    farm = lines.farmland
    for i, code in enumerate(s.unit_codes, start=1):
        got = s.hectares(np.count_nonzero(farm & (s.unit == i)))
        assert got >= cfg.lines.farmland.unit_quotas[code]
    assert s.hectares(np.count_nonzero(farm)) >= cfg.lines.farmland.quota_ha
    assert slope[farm].max() <= 25.0
    # growth boundary: at most its cap, at least the existing built-up land it holds
    ugb = lines.ugb
    seeds = np.isin(lines.rule, [31])
    assert np.count_nonzero(ugb) <= round(lines.report["ugb_cap_ha"] * 10_000
                                          / s.grid.cell_area)
    assert seeds[ugb].sum() == seeds.sum() > 0
    # no patch below its minimum, per line
    for name, minimum in (("red_line", cfg.lines.red_line.min_area_ha),
                          ("farmland", cfg.lines.farmland.min_area_ha),
                          ("ugb", cfg.lines.ugb.min_area_ha)):
        assert patch_areas(s, arrays[name]).min() >= minimum, name
    for zone in (1, 2, 3):
        if (lines.ugb_zone == zone).any():
            assert patch_areas(s, lines.ugb_zone == zone).min() >= cfg.lines.ugb.min_area_ha


def test_meet_quota_takes_just_the_floors(sample: tuple[Surfaces, np.ndarray],
                                         cfg: Config) -> None:
    s, _ = sample
    lines = draw(s, cfg, selection="meet_quota")
    quota = {f.unit_code: f for f in lines.findings if f.section == "quota"}
    cell_ha = s.grid.cell_area / 10_000
    for code, task in cfg.lines.farmland.unit_quotas.items():
        # the floor plus less than one cell (areas are whole cells)
        assert task <= quota[code].cells * cell_ha < task + cell_ha
    assert quota[""].cells * cell_ha == pytest.approx(2000.07)


def test_max_slope_binds_on_the_sample(sample: tuple[Surfaces, np.ndarray], cfg: Config) -> None:
    """With a 1° limit (the sample is flat) farmland keeps only land of slope <= 1°."""
    s, slope = sample
    flat = s.__class__(**{**s.__dict__, "steep": s.mask & (slope > 1.0)})
    lines = draw(flat, cfg, quota_ha=None, unit_quotas=None, max_slope=1.0)
    assert lines.farmland.any() and slope[lines.farmland].max() <= 1.0
    left_out = s.is_class(["cultivated"]) & (slope > 1.0) & ~lines.red_line & ~lines.ugb
    assert (lines.rule[left_out] == 23).all()  # "steeper than max_slope"
    with pytest.raises(QuotaError, match=r"lines\.farmland\.unit_quotas: quota cannot be met"):
        draw(flat, cfg, max_slope=1.0)


def naive_selection(s: Surfaces, lines: Lines, cells: int) -> np.ndarray:
    """The same number of cells as the UGB: its seeds, then the most urban-suitable free
    cells in row-major order, with no regard to adjacency."""
    seeds = lines.rule == 31
    free = s.mask & ~lines.red_line & ~lines.farmland & ~seeds & one_of(s.urban, [1, 2])
    order = np.lexsort((np.arange(free.size), s.urban.ravel()))
    order = order[free.ravel()[order]][: cells - int(seeds.sum())]
    out = seeds.copy()
    out.ravel()[order] = True
    return out


def test_grown_boundary_is_more_compact_than_a_naive_selection(
        sample: tuple[Surfaces, np.ndarray], cfg: Config) -> None:
    s, _ = sample
    lines = draw(s, cfg)
    grown = lines.ugb & (lines.ugb_zone != 3)  # special use is given, not grown
    naive = naive_selection(s, lines, int(grown.sum()))
    assert naive.sum() == grown.sum()
    (n_grown, si_grown), (n_naive, si_naive) = shape_index(grown), shape_index(naive)
    assert n_grown < n_naive and si_grown < si_naive


def test_region_growing_is_deterministic(sample: tuple[Surfaces, np.ndarray],
                                         cfg: Config) -> None:
    s, _ = sample
    a, b = draw(s, cfg, selection="meet_quota"), draw(s, cfg, selection="meet_quota")
    assert (a.rule == b.rule).all() and (a.ugb_zone == b.ugb_zone).all()
