"""Grid alignment: open every input and read any window of it on the study grid.

The first stage of the pipeline. An :class:`AlignedRaster` wraps one input file
and answers ``read(window)`` with the values *on the study grid*: when the file's
grid already matches (equivalent CRS, same cell size, origin on a cell corner) the
window is read directly, which is exact and fast; otherwise GDAL's warper
resamples it (nearest for categorical inputs, bilinear for continuous ones).

Equivalent CRS that do not compare equal (the bundled land use carries CGCS2000
GK zone 39 under a datum named "EGM2008_geoid", which pyproj does not match to
EPSG:4527) are recognised by comparing their projection parameters.

Mask convention: ``True`` means *inside the study area / has data*.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from .crs import ZONES, datum_note, gcj02_to_wgs84, gk_epsg
from .errors import InputError, InputNotFoundError
from .grid import Block, Grid

_IGNORED_PROJ_KEYS = {"type", "no_defs", "wktext"}


def _proj_params(crs: CRS) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        params = crs.to_dict()
    if not any(params.get("towgs84", [1])):  # an explicit null shift is no shift
        params.pop("towgs84")
    return {k: v for k, v in params.items() if k not in _IGNORED_PROJ_KEYS}


def crs_equivalent(a: CRS, b: CRS) -> bool:
    """Whether two CRS describe the same coordinates, whatever their names.

    Parameters
    ----------
    a, b : pyproj.CRS
        The definitions to compare.

    Returns
    -------
    bool
        True when pyproj finds them equal, or when both have the same projection
        method, parameters and ellipsoid (names and authority codes ignored).

    Examples
    --------
    >>> gk39 = CRS.from_epsg(4527)
    >>> renamed = CRS.from_wkt(gk39.to_wkt().replace("China_2000", "EGM2008_geoid"))
    >>> crs_equivalent(gk39, renamed), crs_equivalent(gk39, CRS.from_epsg(4547))
    (True, False)
    >>> proj4 = "+proj=tmerc +lon_0=117 +x_0=39500000 +ellps=GRS80 +towgs84=0,0,0 +units=m"
    >>> crs_equivalent(gk39, CRS.from_proj4(proj4)), crs_equivalent(gk39, CRS.from_epsg(2415))
    (True, False)
    """
    if a == b or a.equals(b, ignore_axis_order=True):
        return True
    pa, pb = _proj_params(a), _proj_params(b)
    if pa.keys() != pb.keys():
        return False
    for k, va in pa.items():
        vb = pb[k]
        if isinstance(va, float | int) and isinstance(vb, float | int):
            if not math.isclose(va, vb, rel_tol=1e-12, abs_tol=1e-9):
                return False
        elif va != vb:
            return False
    return True


def identify_crs(crs: CRS) -> CRS:
    """The EPSG definition of ``crs`` when one is equivalent to it, else ``crs`` itself.

    GeoTIFFs written by older tools carry WKT1 that pyproj matches to EPSG only at
    low confidence; the match is accepted only if :func:`crs_equivalent` agrees.
    A bare GRS80 transverse Mercator with the parameters of a Chinese 3-degree
    Gauss-Krüger zone (a PROJ string from an old tool) is taken as the CGCS2000
    zone it matches: PROJ's own match would be an Australian GRS80 grid. The
    3-degree code wins over an identical 6-degree one (CM 111°E: EPSG:4546, not 4508).

    Examples
    --------
    >>> wkt = CRS.from_epsg(4527).to_wkt("WKT1_GDAL").replace("China_2000", "EGM2008_geoid")
    >>> identify_crs(CRS.from_wkt(wkt)).to_epsg()
    4527
    >>> identify_crs(CRS.from_proj4("+proj=tmerc +lon_0=114 +x_0=500000 +ellps=GRS80")).to_epsg()
    4547
    """
    # the 3-degree GK zone first: CGCS2000 6-degree zones with central meridians 75, 81 …
    # 135°E (EPSG:4502-4512) have the very same parameters as 3-degree CM forms
    candidates = [_gk_candidate(crs), crs.to_epsg(min_confidence=20)]
    for code in candidates:
        if code is not None:
            candidate = CRS.from_epsg(code)
            if crs_equivalent(candidate, crs):
                return candidate
    return crs


def _gk_candidate(crs: CRS) -> int | None:
    """EPSG code of the CGCS2000 3-degree GK zone whose parameters ``crs`` has, if any."""
    p = _proj_params(crs)
    lon0, x0 = p.get("lon_0"), p.get("x_0")
    if p.get("proj") != "tmerc" or not isinstance(lon0, int | float) or lon0 % 3:
        return None
    zone = int(lon0 // 3)
    if not ZONES[0] <= zone <= ZONES[1]:
        return None
    if x0 == 500_000:
        return gk_epsg(zone, "cm")
    if x0 == zone * 1_000_000 + 500_000:
        return gk_epsg(zone, "zone")
    return None


def _open(path: Path, key: str) -> rasterio.DatasetReader:
    if not path.exists():
        raise InputNotFoundError(f"{key}: file not found: {path}")
    try:
        return rasterio.open(path)
    except rasterio.RasterioIOError:
        raise InputError(f"{key}: not a raster GDAL can read: {path}") from None


def grid_of(path: Path, key: str) -> Grid:
    """The grid of a raster file, as the study grid when this input is the reference.

    Raises
    ------
    InputError
        If the file is missing, unreadable, has no CRS or is not north-up.
    """
    with _open(path, key) as src:
        if src.crs is None:
            raise InputError(f"{key}: {path.name} has no CRS; expected a georeferenced raster")
        crs = identify_crs(CRS.from_user_input(src.crs.to_wkt()))
        try:
            return Grid(crs, src.transform, (src.height, src.width))
        except InputError as exc:
            raise InputError(f"{key}: {path.name}: {str(exc).removeprefix('grid: ')}") from None


@dataclass
class AlignedRaster:
    """One raster input, readable window by window on the study grid.

    Parameters
    ----------
    key : str
        Config key of the input (``inputs.dem``), used in error messages.
    path : Path
        The file.
    grid : Grid
        The study grid.
    categorical : bool
        Categorical inputs are resampled by nearest neighbour, others bilinearly.
    nodata : float, optional
        Overrides the file's nodata value.
    band : int
        Band to read (1-based).
    misaligned : {"resample", "error"}
        What to do when the file's grid differs from the study grid.
    """

    key: str
    path: Path
    grid: Grid
    categorical: bool = False
    nodata: float | None = None
    band: int = 1
    misaligned: str = "resample"
    aligned: bool = field(init=False)
    offset: tuple[int, int] = field(init=False, default=(0, 0))
    src_shape: tuple[int, int] = field(init=False)
    dtype: np.dtype = field(init=False)
    note: str = field(init=False, default="")
    _src: rasterio.DatasetReader | None = field(init=False, default=None, repr=False)
    _vrt: WarpedVRT | None = field(init=False, default=None, repr=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        src = _open(self.path, self.key)
        self._src = src
        name = self.path.name
        if src.crs is None:
            raise InputError(f"{self.key}: {name} has no CRS; expected a georeferenced raster")
        if self.band > src.count:
            raise InputError(f"{self.key}.band: {name} has {src.count} band(s), got {self.band}")
        self.dtype = np.dtype(src.dtypes[self.band - 1])
        if self.nodata is None:
            self.nodata = src.nodatavals[self.band - 1]
        if self.nodata is None and self.dtype.kind == "f":
            self.nodata = float("nan")
        if self.nodata is not None and not (
            math.isnan(self.nodata) or _fits(self.nodata, self.dtype)
        ):
            raise InputError(
                f"{self.key}.nodata: {self.nodata} cannot occur in {name}'s {self.dtype} cells"
            )
        crs = CRS.from_user_input(src.crs.to_wkt())
        self.src_shape = (src.height, src.width)
        self.aligned, self.offset = _aligned(crs, src.transform, self.grid)
        if not self.aligned:
            if self.misaligned == "error":
                raise InputError(
                    f"{self.key}: {name} is not on the study grid (CRS {crs.name}, cell "
                    f"{src.transform.a:g} m); expected CRS {self.grid.crs.name}, "
                    f"cell {self.grid.res[0]:g} m (set grid.misaligned: resample)"
                )
            g = self.grid
            method = Resampling.nearest if self.categorical else Resampling.bilinear
            self._vrt = WarpedVRT(
                src,
                crs=g.crs.to_wkt(),
                transform=g.transform,
                width=g.width,
                height=g.height,
                resampling=method,
                src_nodata=None if self.nodata is None else self.nodata,
                nodata=None if self.nodata is None else self.nodata,
            )
            shift = datum_note(crs, self.grid.crs)
            self.note = f"resampled ({method.name}) onto the study grid" + (
                f"; {shift}" if shift else "")
        elif crs_equivalent(crs, self.grid.crs) and crs != self.grid.crs:
            self.note = "CRS equivalent to the study grid's (definitions differ only in names)"

    def close(self) -> None:
        """Release the file handles."""
        if self._vrt is not None:
            self._vrt.close()
        if self._src is not None:
            self._src.close()

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read a window of the study grid; cells outside the file are no-data.

        Safe from any thread: the file is read by one at a time.

        Parameters
        ----------
        window : rasterio.windows.Window
            In study-grid cells; may extend past the grid (halo reads).

        Returns
        -------
        values : numpy.ndarray
            The cell values in the file's dtype (float inputs as float32).
        valid : numpy.ndarray of bool
            True where the cell has data.
        """
        h, w = int(window.height), int(window.width)
        r0, c0 = int(window.row_off), int(window.col_off)
        dtype = np.float32 if self.dtype.kind == "f" else self.dtype
        fill = 0 if self.nodata is None or math.isnan(self.nodata) else self.nodata
        out = np.full((h, w), fill, dtype=dtype)
        valid = np.zeros((h, w), dtype=bool)
        if self.aligned:
            dr, dc = self.offset
            rows, cols = self.src_shape
        else:
            dr, dc = 0, 0
            rows, cols = self.grid.shape
        sr0, sc0 = max(r0 + dr, 0), max(c0 + dc, 0)
        sr1, sc1 = min(r0 + dr + h, rows), min(c0 + dc + w, cols)
        if sr1 <= sr0 or sc1 <= sc0:
            return out, valid
        ds = self._src if self.aligned else self._vrt
        with self._lock:  # a GDAL dataset is read by one thread at a time
            part = ds.read(self.band, window=Window(sc0, sr0, sc1 - sc0, sr1 - sr0))
        dest = (slice(sr0 - r0 - dr, sr1 - r0 - dr), slice(sc0 - c0 - dc, sc1 - c0 - dc))
        out[dest] = part
        ok = np.ones(part.shape, dtype=bool)
        if self.nodata is not None:
            ok = ~np.isnan(part) if math.isnan(self.nodata) else part != self.nodata
        if part.dtype.kind == "f":
            ok &= np.isfinite(part)
        valid[dest] = ok
        return out, valid


def _fits(value: float, dtype: np.dtype) -> bool:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return float(value).is_integer() and info.min <= value <= info.max
    return True


def _aligned(crs: CRS, transform, grid: Grid) -> tuple[bool, tuple[int, int]]:
    """Whether a file's grid is the study grid shifted by whole cells, and by how many."""
    if not crs_equivalent(crs, grid.crs):
        return False, (0, 0)
    g = grid.transform
    if transform.b or transform.d:
        return False, (0, 0)
    same_res = math.isclose(transform.a, g.a, rel_tol=1e-9) and math.isclose(
        transform.e, g.e, rel_tol=1e-9)
    if not same_res:
        return False, (0, 0)
    dc = (g.c - transform.c) / g.a
    dr = (g.f - transform.f) / g.e
    if abs(dc - round(dc)) > 1e-6 or abs(dr - round(dr)) > 1e-6:
        return False, (0, 0)
    return True, (round(dr), round(dc))


def read_vector(path: Path, key: str, crs: CRS, *, layer: str | None = None,
                datum_shift: str = "none") -> gpd.GeoDataFrame:
    """Read a polygon file into ``crs``: GCJ-02 undone, geometries made valid.

    Parameters
    ----------
    path : Path
        Any vector file GDAL reads.
    key : str
        Config key of the input, for error messages.
    crs : pyproj.CRS
        CRS to return the polygons in.
    layer : str, optional
        Layer of a multi-layer file.
    datum_shift : {"none", "gcj02"}
        ``gcj02``: the coordinates are GCJ-02 longitude/latitude (Chinese web maps,
        whatever CRS the file claims); they are converted to WGS84 first.

    Raises
    ------
    InputError
        If the file is missing, unreadable, has no CRS, holds no polygons, or is
        said to be GCJ-02 but is not in longitude/latitude.
    """
    import pyogrio

    if not path.exists():
        raise InputNotFoundError(f"{key}: file not found: {path}")
    try:
        df = gpd.read_file(path, layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(f"{key}: cannot read {path.name}: {exc}") from None
    if df.crs is None:
        raise InputError(f"{key}: {path.name} has no CRS; expected a georeferenced layer")
    kinds = set(df.geom_type.dropna())
    if not kinds or not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"{key}: {path.name} expected polygons, got {sorted(kinds) or 'nothing'}")
    if datum_shift == "gcj02":
        if not df.crs.is_geographic:
            raise InputError(f"{key}.datum_shift: gcj02 expects longitude/latitude coordinates, "
                             f"got {path.name} in {df.crs.name!r}")
        lonlat = df.geometry.to_crs(4326) if not df.crs.equals(CRS.from_epsg(4326)) else df.geometry
        df = df.set_geometry(gpd.GeoSeries(shapely.transform(lonlat.values, gcj02_to_wgs84),
                                           index=df.index, crs=4326))
    df = df.set_geometry(df.geometry.make_valid())
    return df.to_crs(crs)


def read_polygons(path: Path, key: str, grid: Grid, layer: str | None = None, *,
                  datum_shift: str = "none") -> gpd.GeoDataFrame:
    """Read a polygon layer in the grid's CRS (:func:`read_vector`)."""
    return read_vector(path, key, grid.crs, layer=layer, datum_shift=datum_shift)


def burn(geoms: Iterable[shapely.Geometry], values: Iterable[int], grid: Grid,
         block: Block | None = None, dtype: str = "uint8") -> np.ndarray:
    """Rasterize polygons with a value each onto the grid (or one block's read window).

    Cells are burnt when their centre lies inside a polygon; later polygons win
    where polygons overlap; 0 elsewhere.
    """
    transform, shape = grid.transform, grid.shape
    if block is not None:
        w = block.read_window
        transform = transform @ Affine.translation(w.col_off, w.row_off)
        shape = (int(w.height), int(w.width))
    pairs = [(g, int(v)) for g, v in zip(geoms, values, strict=True)
             if g is not None and not g.is_empty]
    if not pairs:
        return np.zeros(shape, dtype=dtype)
    return rasterize(pairs, out_shape=shape, transform=transform, fill=0, dtype=dtype)
