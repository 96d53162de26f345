"""Rebuild dianbu_synthetic.gpkg: SYNTHETIC demo layers for the Dianbu sample (see SOURCE.md).

Run from the repository root: ``.venv/bin/python data/dianbu/synthetic/make_layers.py``.
The layers are drawn on the DEM's grid (30 m cells, EPSG:4527) with straight cuts on
cell edges; they are not real administrative units, protected areas or plans.
"""

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
import shapely
from rasterio.features import shapes

HERE = Path(__file__).resolve().parent
DEM = HERE.parent / "dem_30m.tif"
LANDUSE = HERE.parent / "landuse_30m.tif"


def main() -> None:
    with rasterio.open(DEM) as dem:
        valid = dem.read_masks(1) > 0
        t, crs = dem.transform, dem.crs
    with rasterio.open(LANDUSE) as lu:  # same origin and cell size; larger extent
        valid &= lu.read_masks(1)[: valid.shape[0], : valid.shape[1]] > 0
    outline = shapely.union_all([shapely.geometry.shape(g) for g, v in
                                 shapes(valid.astype(np.uint8), mask=valid, transform=t)])

    def box(r0: int, r1: int, c0: int, c1: int) -> shapely.Polygon:
        """Cells rows r0..r1-1, cols c0..c1-1 as one rectangle on cell edges."""
        x0, y0 = t * (c0, r0)
        x1, y1 = t * (c1, r1)
        return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def clip(cells: shapely.Polygon) -> shapely.Geometry:
        """The watershed within ``cells``, polygons only (cuts may leave lines)."""
        parts = shapely.get_parts(outline & cells)
        return shapely.union_all([p for p in parts if p.geom_type == "Polygon"])

    rows, cols = valid.shape
    bands = [(0, 97), (97, 172), (172, rows)]  # terciles of the study area's cells by row
    units = gpd.GeoDataFrame(
        {"XZQDM": ["SYN01", "SYN02", "SYN03"],
         "XZQMC": ["北部单元(合成)", "中部单元(合成)", "南部单元(合成)"]},
        geometry=[clip(box(r0, r1, 0, cols)) for r0, r1 in bands], crs=crs)
    protected = gpd.GeoDataFrame({"name": ["合成保护地 (synthetic)"]},
                                 geometry=[clip(box(190, 225, 30, 90))], crs=crs)
    special = gpd.GeoDataFrame({"name": ["合成特别用途区 (synthetic park)"]},
                               geometry=[clip(box(246, 257, 92, 106))], crs=crs)
    out = HERE / "dianbu_synthetic.gpkg"
    out.unlink(missing_ok=True)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00Z"})
    for name, df in (("units", units), ("protected_areas", protected), ("special_use", special)):
        pyogrio.write_dataframe(df, out, layer=name, driver="GPKG", promote_to_multi=True,
                                dataset_options={"VERSION": "1.2"})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
