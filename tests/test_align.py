"""Grid alignment: CRS equivalence, window reads past the edge, resampling, input errors."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import CRS

from sanqu import default_config_path, load_config
from sanqu.align import AlignedRaster, crs_equivalent, grid_of
from sanqu.errors import InputError, InputNotFoundError
from sanqu.grid import Grid
from sanqu.study import Study

DATA = default_config_path().parent.parent / "data" / "dianbu"
GK39 = CRS.from_epsg(4527)


def write(path, data, transform, crs="EPSG:4527", nodata=None):
    profile = {"driver": "GTiff", "height": data.shape[0], "width": data.shape[1], "count": 1,
               "dtype": data.dtype, "transform": transform, "nodata": nodata}
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    return path


def test_bundled_landuse_crs_is_equivalent_but_not_equal():
    with rasterio.open(DATA / "landuse_30m.tif") as ds:
        crs = CRS.from_user_input(ds.crs.to_wkt())
    assert crs.to_epsg() is None and not crs.equals(GK39)
    assert crs_equivalent(crs, GK39)
    assert not crs_equivalent(crs, CRS.from_epsg(4547))  # CM 114°E, no zone prefix
    assert not crs_equivalent(GK39, CRS.from_epsg(2385))  # Xian80 GK zone 39: other ellipsoid


def test_landuse_is_read_on_the_dem_grid_without_resampling():
    grid = grid_of(DATA / "dem_30m.tif", "inputs.dem")
    assert grid.crs == GK39 and grid.shape == (319, 241)
    lu = AlignedRaster("inputs.landuse", DATA / "landuse_30m.tif", grid, categorical=True)
    try:
        assert lu.aligned and lu.offset == (0, 0)
        assert "equivalent" in lu.note
        with rasterio.open(DATA / "landuse_30m.tif") as ds:
            raw = ds.read(1)
        values, valid = lu.read(grid.blocks(500).__next__().window)
        np.testing.assert_array_equal(values, raw[:319, :241])
        assert (valid == (raw[:319, :241] != 255)).all()
    finally:
        lu.close()


def test_read_past_the_edge_is_nodata(tmp_path):
    t = Affine(30, 0, 0, 0, -30, 300)
    path = write(tmp_path / "a.tif", np.arange(4, dtype=np.uint8).reshape(2, 2) + 1, t, nodata=0)
    grid = Grid(GK39, t, (2, 2))
    r = AlignedRaster("inputs.a", path, grid, categorical=True)
    values, valid = r.read(rasterio.windows.Window(-1, -1, 4, 4))
    r.close()
    assert values[1:3, 1:3].tolist() == [[1, 2], [3, 4]]
    assert valid.sum() == 4 and not valid[0].any() and not valid[:, 3].any()


def test_offset_grid_is_read_by_whole_cells(tmp_path):
    # the file starts one cell east and two cells south of the study grid
    grid = Grid(GK39, Affine(30, 0, 0, 0, -30, 300), (5, 5))
    path = write(tmp_path / "b.tif", np.full((2, 2), 7, np.uint8), Affine(30, 0, 30, 0, -30, 240))
    r = AlignedRaster("inputs.b", path, grid, categorical=True)
    values, valid = r.read(rasterio.windows.Window(0, 0, 5, 5))
    r.close()
    assert r.aligned and r.offset == (-2, -1)
    assert np.argwhere(valid).tolist() == [[2, 1], [2, 2], [3, 1], [3, 2]]


def test_misaligned_grid_is_resampled_or_refused(tmp_path):
    grid = Grid(GK39, Affine(30, 0, 0, 0, -30, 300), (4, 4))
    # 60 m cells, half a study cell off: needs the warper
    data = np.array([[1, 2], [3, 4]], np.uint8)
    path = write(tmp_path / "c.tif", data, Affine(60, 0, -15, 0, -60, 300), nodata=0)
    r = AlignedRaster("inputs.c", path, grid, categorical=True)
    values, valid = r.read(rasterio.windows.Window(0, 0, 4, 4))
    r.close()
    assert not r.aligned and "nearest" in r.note
    assert set(np.unique(values[valid])) <= {1, 2, 3, 4}
    assert values[0, 0] == 1 and values[3, 2] == 4
    assert not valid[:, 3].any()  # x = 105 m is the file's east edge
    with pytest.raises(InputError, match=r"inputs\.c: c\.tif is not on the study grid"):
        AlignedRaster("inputs.c", path, grid, categorical=True, misaligned="error")


def test_input_errors(tmp_path):
    grid = Grid(GK39, Affine(30, 0, 0, 0, -30, 300), (4, 4))
    with pytest.raises(InputNotFoundError, match=r"inputs\.x: file not found: .*nothing\.tif"):
        AlignedRaster("inputs.x", tmp_path / "nothing.tif", grid)
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(InputError, match=r"inputs\.x: not a raster GDAL can read"):
        AlignedRaster("inputs.x", junk, grid)
    nocrs = write(tmp_path / "nocrs.tif", np.ones((2, 2), np.uint8), Affine(30, 0, 0, 0, -30, 300),
                  crs=None)
    with pytest.raises(InputError, match=r"inputs\.x: nocrs\.tif has no CRS"):
        AlignedRaster("inputs.x", nocrs, grid)
    ok = write(tmp_path / "ok.tif", np.ones((2, 2), np.uint8), Affine(30, 0, 0, 0, -30, 300))
    with pytest.raises(InputError, match=r"inputs\.x\.nodata: -9999(\.0)? cannot occur in ok\.tif"):
        AlignedRaster("inputs.x", ok, grid, nodata=-9999)


def test_other_crs_input_is_reprojected(tmp_path):
    # the DEM warped to CGCS2000 GK CM 117°E without zone prefix (EPSG:4548) must come back
    from rasterio.warp import reproject

    cfg = load_config(default_config_path())
    with rasterio.open(DATA / "dem_30m.tif") as src:
        dem = src.read(1)
        dst_t = src.transform @ Affine.translation(0, 0)
        dst_t = Affine(30, 0, src.transform.c - 39_000_000, 0, -30, src.transform.f)
        out = np.full(dem.shape, -9999, np.float32)
        reproject(dem, out, src_transform=src.transform, src_crs=src.crs, dst_transform=dst_t,
                  dst_crs="EPSG:4548", src_nodata=-9999, dst_nodata=-9999)
    moved = write(tmp_path / "dem4548.tif", out, dst_t, crs="EPSG:4548", nodata=-9999)
    inputs = dict(cfg.inputs)
    inputs["dem2"] = inputs["dem"].model_copy(update={"path": moved})
    cfg2 = cfg.model_copy(update={"inputs": inputs})
    with Study(cfg2) as study:
        r = study.rasters["dem2"]
        assert not r.aligned
        a, va = study.rasters["dem"].read(study.whole().window)
        b, vb = r.read(study.whole().window)
    both = va & vb
    assert both.sum() > 0.99 * va.sum()
    np.testing.assert_allclose(a[both], b[both], atol=0.05)
