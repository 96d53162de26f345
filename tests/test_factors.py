"""Hand-worked tests of the factors (slope, relief, distance) and block invariance."""

import math

import numpy as np
import pytest
from scipy import ndimage

from sanqu.config import load_config
from sanqu.factors import distance_to, local_relief, slope_degrees, window_extreme
from sanqu.study import Study

ONES = np.ones((5, 5), bool)


def test_slope_of_a_plane():
    # z = 3x - 4y on 10 m cells: gradient (0.3, 0.4) per metre -> tan(slope) = 0.5
    rows, cols = np.mgrid[0:5, 0:5]
    z = (3 * cols * 10 + 4 * rows * 10).astype(np.float32) / 10
    s = slope_degrees(z, ONES, (10.0, 10.0))
    assert s[2, 2] == pytest.approx(math.degrees(math.atan(0.5)), abs=1e-4)


def test_slope_horn_weights_by_hand():
    # a single raised cell east of the centre: Horn weights it 2 in dz/dx
    z = np.zeros((3, 3), np.float32)
    z[1, 2] = 8.0
    s = slope_degrees(z, np.ones((3, 3), bool), (1.0, 1.0))
    # dz/dx = (c + 2f + i - a - 2d - g) / 8 = 16 / 8 = 2; dz/dy = 0
    assert s[1, 1] == pytest.approx(math.degrees(math.atan(2.0)), abs=1e-4)


def test_slope_missing_neighbour_takes_centre_value():
    z = np.tile(np.arange(3, dtype=np.float32), (3, 1))
    valid = np.ones((3, 3), bool)
    valid[:, 2] = False  # the east column is nodata
    s = slope_degrees(z, valid, (1.0, 1.0))
    # east neighbours become the centre (1): dz/dx = (4*1 - 4*0) / 8 = 0.5
    assert s[1, 1] == pytest.approx(math.degrees(math.atan(0.5)), abs=1e-4)
    assert s[1, 2] == 0.0


def test_relief_ignores_nodata_and_uses_window():
    z = np.arange(25, dtype=np.float32).reshape(5, 5)
    valid = ONES.copy()
    valid[4, 4] = False
    r3 = local_relief(z, valid, 3)
    assert r3[2, 2] == 18 - 6  # rows 1-3, cols 1-3 hold 6..18
    assert r3[3, 3] == 23 - 12  # 24 is nodata: max 23, min 12
    r5 = local_relief(z, valid, 5)
    assert r5[2, 2] == 23


def test_distance_capped_and_diagonal():
    t = np.zeros((3, 4), bool)
    t[0, 0] = True
    d = distance_to(t, (30.0, 30.0), 80.0)
    assert d[0, 1] == 30.0
    assert d[1, 1] == pytest.approx(30 * math.sqrt(2), abs=0.005)  # rounded to the cm
    assert d[2, 3] == 80.0  # sqrt(4 + 9) * 30 = 108 -> capped


def test_distance_with_no_target_is_cap():
    assert (distance_to(np.zeros((2, 2), bool), (30, 30), 500.0) == 500).all()


@pytest.fixture(scope="module")
def dianbu():
    from sanqu import default_config_path

    return load_config(default_config_path())


def test_results_do_not_depend_on_block_size(dianbu):
    small = dianbu.model_copy(update={"grid": dianbu.grid.model_copy(update={"block_size": 64})})
    with Study(dianbu) as whole_study, Study(small) as block_study:
        whole = whole_study.compute(whole_study.whole())
        for block in block_study.blocks():
            part = block_study.compute(block)
            sl = block.slices
            np.testing.assert_array_equal(part.mask, whole.mask[sl])
            for name in ("slope", "relief", "dist_water", "dist_built"):
                np.testing.assert_allclose(part.layers[name], whole.layers[name][sl], atol=1e-4,
                                           err_msg=f"{name} at block {block}")
            for name, res in part.results.items():
                np.testing.assert_array_equal(res, whole.results[name][sl], err_msg=name)


def test_study_mask_is_dem_and_landuse(dianbu):
    with Study(dianbu) as study:
        res = study.compute(study.whole())
    # 48 150 DEM cells, 98 of which have no land use (data/dianbu/SOURCE.md)
    assert int(res.mask.sum()) == 48150 - 98


def test_slope_matches_gdaldem_horn(tmp_path, require_tool, dianbu):
    import subprocess

    import rasterio

    gdaldem = require_tool("gdaldem")
    dem = dianbu.inputs["dem"].path
    out = tmp_path / "slope.tif"
    subprocess.run([gdaldem, "slope", "-alg", "Horn", "-q", str(dem), str(out)], check=True)
    with rasterio.open(out) as ds:
        ref = ds.read(1, masked=True)
    with Study(dianbu) as study:
        ours = study.compute(study.whole()).layers["slope"]
    # gdaldem leaves the outer ring and every cell next to no-data empty: compare the rest
    inside = ~np.ma.getmaskarray(ref)
    assert inside.sum() > 40_000
    diff = np.abs(ours[inside] - ref.data[inside])
    assert diff.max() < 1e-4, f"max difference {diff.max():.2e} degrees"


def test_ls_factor_of_a_plane_by_hand():
    from sanqu.factors import ls_factor

    # 10 % slope on 30 m cells: θ = atan(0.1) = 5.71°, so m = 0.5 and S = 16.8 sin θ - 0.5
    rows, cols = np.mgrid[0:5, 0:5]
    z = (cols * 3.0).astype(np.float32)
    theta = math.atan(0.1)
    expected = (30 / 22.13) ** 0.5 * (16.8 * math.sin(theta) - 0.5)
    assert ls_factor(z, ONES, (30.0, 30.0))[2, 2] == pytest.approx(expected, rel=1e-5)
    # 30 % slope (16.7°): the steep-slope formula of Liu et al.
    z = (cols * 9.0).astype(np.float32)
    theta = math.atan(0.3)
    expected = (60 / 22.13) ** 0.5 * (21.91 * math.sin(theta) - 0.96)
    assert ls_factor(z, ONES, (30.0, 30.0), 60)[2, 2] == pytest.approx(expected, rel=1e-5)


def test_soil_and_water_conservation_by_hand():
    from sanqu.factors import soil_conservation, water_conservation

    r = np.array([1000.0, 2000.0])
    assert soil_conservation(r, 0.02, np.array([1.5, 0.5]), 0.2).tolist() == pytest.approx(
        [1000 * 0.02 * 1.5 * 0.8, 2000 * 0.02 * 0.5 * 0.8])
    # P 800, ET 900: more evapotranspiration than rain conserves nothing
    wc = water_conservation(np.array([1200.0, 800.0]), 900.0, np.array([0.0937, 0.0]))
    assert wc.tolist() == pytest.approx([1200 - 0.0937 * 1200 - 900, 0.0])


@pytest.mark.parametrize("window", [1, 2, 3, 9, 12, 15, 40])
def test_window_extreme_equals_scipys_filters(window):
    rng = np.random.default_rng(window)
    z = (rng.random((37, 50)) * 100).astype(np.float32)
    z[rng.random(z.shape) < 0.2] = -np.inf
    hi = ndimage.maximum_filter(z, size=window, mode="constant", cval=-np.inf)
    assert np.array_equal(window_extreme(z, window, np.maximum, -np.inf), hi)
    z = np.where(np.isinf(z), np.inf, z)
    lo = ndimage.minimum_filter(z, size=window, mode="constant", cval=np.inf)
    assert np.array_equal(window_extreme(z, window, np.minimum, np.inf), lo)
