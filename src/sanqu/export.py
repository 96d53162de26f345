"""Export: GeoTIFFs, GeoPackage, shapefiles, the area table and the run manifest.

I/O at the edge of the pipeline. Rasters are tiled, compressed GeoTIFFs with a
colour table and nodata 0; they carry no timestamps, so the same inputs give
byte-identical files. Vector layers get ``id``, ``code``, ``name`` (Chinese) and
``area_ha``; shapefiles are written with an explicit encoding and a ``.cpg``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.raw
import rasterio
import shapely
from rasterio.windows import Window

from .batches import batch_bounds
from .errors import ConfigError
from .gpkg import append as append_gpkg
from .grid import Grid
from .heap import release_heap
from .lattice import Rings
from .shapefile import NotNative, stamp_date, wkb_bytes
from .shapefile import append as append_shapefile

if TYPE_CHECKING:
    from pyproj import CRS

    from .planning_db import Field

#: Colour tables (value → RGBA) of the raster outputs.
ZONE_COLOURS = {1: (56, 168, 0, 255), 2: (255, 211, 127, 255), 3: (230, 76, 0, 255)}
UGB_ZONE_COLOURS = {1: (230, 76, 0, 255), 2: (255, 170, 0, 255), 3: (115, 178, 255, 255)}
LEVEL_COLOURS = {
    "eco_importance": {1: (0, 100, 0, 255), 2: (120, 190, 80, 255), 3: (225, 240, 200, 255)},
    "agri_suitability": {1: (168, 112, 0, 255), 2: (230, 200, 100, 255), 3: (240, 240, 220, 255)},
    "urban_suitability": {1: (190, 30, 30, 255), 2: (245, 150, 120, 255), 3: (245, 235, 230, 255)},
}


def grade_colours(scale: int) -> dict[int, tuple[int, int, int, int]]:
    """A green (grade 1) to red (worst grade) colour table for intermediate grade rasters.

    Examples
    --------
    >>> grade_colours(3)
    {1: (26, 150, 65, 255), 2: (255, 255, 191, 255), 3: (215, 25, 28, 255)}
    """
    stops = ((26, 150, 65), (255, 255, 191), (215, 25, 28))
    out = {}
    for g in range(1, scale + 1):
        t = (g - 1) / max(scale - 1, 1) * 2
        i = min(int(t), 1)
        f = t - i
        rgb = tuple(round(a + (b - a) * f) for a, b in zip(stops[i], stops[i + 1], strict=True))
        out[g] = (*rgb, 255)
    return out


#: Date stamped into vector files, so that the same inputs give identical bytes.
FIXED_DATE = "2000-01-01"

#: :data:`FIXED_DATE` as a GeoPackage timestamp (``gpkg_contents.last_change``: ISO 8601
#: with milliseconds and Z, GeoPackage requirement 15).
FIXED_TIMESTAMP = FIXED_DATE + "T00:00:00.000Z"

#: Output vector layers: key → (Chinese name, code written to the ``code`` field).
SPACE_LAYERS = {"eco_space": "生态空间", "agri_space": "农业空间", "urban_space": "城镇空间"}
LINE_LAYERS = {"red_line": "生态保护红线", "farmland": "永久基本农田", "ugb": "城镇开发边界"}


#: zlib level of DEFLATE GeoTIFFs: on class rasters level 1 compresses 4.5 times faster
#: than GDAL's default 6, for files 1.4 times larger (36 M cells of zones: 0.16 s and
#: 4.0 MB against 0.72 s and 2.8 MB); every reader of DEFLATE reads any level.
DEFLATE_LEVEL = 1


class RasterWriter:
    """A single-band uint8 GeoTIFF written window by window.

    GDAL compresses the tiles on every core (``NUM_THREADS=ALL_CPUS``) and writes
    them in the same order as on one, so the file's bytes do not change. DEFLATE
    uses :data:`DEFLATE_LEVEL`.

    Parameters
    ----------
    path : Path
        Output file.
    grid : Grid
        Grid of the raster.
    colours : dict, optional
        Colour table value → RGBA.
    compress : str
        GDAL compression method.
    """

    def __init__(self, path: Path, grid: Grid, colours: dict[int, tuple[int, ...]] | None = None,
                 compress: str = "DEFLATE") -> None:
        level = {"zlevel": DEFLATE_LEVEL} if compress.upper() == "DEFLATE" else {}
        profile = grid.profile(dtype="uint8", nodata=0, compress=compress, tiled=True,
                               blockxsize=256, blockysize=256, num_threads="ALL_CPUS", **level)
        self._ds = rasterio.open(path, "w", **profile)
        if colours:
            self._ds.write_colormap(1, {0: (0, 0, 0, 0), **colours})

    def write(self, data: np.ndarray, window: Window | None = None) -> None:
        """Write a window (the whole raster when ``window`` is None)."""
        self._ds.write(data.astype(np.uint8, copy=False), 1, window=window)

    def close(self) -> None:
        """Finish the file."""
        self._ds.close()


def write_raster(path: Path, data: np.ndarray, grid: Grid,
                 colours: dict[int, tuple[int, ...]] | None = None,
                 compress: str = "DEFLATE") -> None:
    """Write a whole uint8 raster as a tiled, compressed GeoTIFF."""
    w = RasterWriter(path, grid, colours, compress)
    try:
        w.write(data)
    finally:
        w.close()


def write_vectors(out: Path, layers: dict[str, gpd.GeoDataFrame], gpkg_name: str,
                  shapefiles: list[str], encoding: str) -> None:
    """Write every layer to one GeoPackage and the named ones also as shapefiles.

    Shapefiles get field names of at most 10 characters (``id``, ``code``, ``name``,
    ``area_ha``), polygons promoted to multipart, and a ``.cpg`` naming ``encoding``;
    their features are written natively (:meth:`Encoded.write_shapefile`).
    The GeoPackage is version 1.2 (read by GDAL 3.x and QGIS 3.x without warnings).
    Timestamps inside both formats are :data:`FIXED_DATE`, so files are reproducible.
    A layer's geometries are encoded once (:class:`Encoded`) for both its files.
    """
    gpkg = out / gpkg_name
    with vector_env():
        for name, df in layers.items():
            first = True  # not enumerate: its reused tuple would hold the last chunk
            for layer in Encoded.chunks(df):
                layer.write_gpkg(gpkg, name, create=first, dataset_options={"VERSION": "1.2"})
                if name in shapefiles:
                    layer.write_shapefile(out / f"{name}.shp", encoding, create=first)
                first = False
                del layer  # before the next chunk is encoded: one chunk's WKB held, not two


@dataclass
class RingLayer:
    """A layer whose features are rings on a grid (:class:`sanqu.lattice.Rings`), not GEOS.

    Written like a GeoDataFrame (:func:`write_schema_layer`): the WKB comes
    straight from the rings, a chunk at a time.

    Attributes
    ----------
    table : pandas.DataFrame
        The fields, one row per feature.
    rings : Rings
        The features.
    crs : pyproj.CRS
        Their CRS (the grid's).
    """

    table: pd.DataFrame
    rings: Rings
    crs: CRS

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, name: str) -> pd.Series:
        return self.table[name]

    def __contains__(self, name: str) -> bool:
        return name in self.table


def features(layer: gpd.GeoDataFrame | RingLayer) -> np.ndarray | Rings:
    """A layer's features: its rings, or its GEOS polygons."""
    return layer.rings if isinstance(layer, RingLayer) else layer.geometry.values


#: Vertices encoded to WKB at a time when a layer is written (:meth:`Encoded.chunks`).
WRITE_VERTICES = 4_000_000


@dataclass(frozen=True)
class Encoded:
    """A polygon layer encoded for OGR once: WKB geometries and one array per field.

    :func:`pyogrio.write_dataframe` converts the geometries to WKB on every call;
    a layer written to a GeoPackage and again to a shapefile is converted once
    here and both files are written from the same arrays, with the same field
    types, CRS and geometry type as ``write_dataframe`` would give.

    Attributes
    ----------
    wkb : ndarray of bytes
        Geometries (Polygon or MultiPolygon, 2D) as WKB: ``bytes``, a lone
        ``bytearray``, or memoryviews of one buffer (:meth:`sanqu.lattice.Rings.wkb`
        with ``views``; OGR is given copies of them).
    fields : list of str
        Field names, in order.
    values : list of ndarray
        One array per field: numpy-backed columns as they are, text as objects.
    masks : list of ndarray or None
        Per field, where it is null (None for numpy-backed columns).
    crs : str or None
        ``EPSG:code`` when the CRS has one, else its WKT1 (GDAL).
    """

    wkb: np.ndarray
    fields: list[str]
    values: list[np.ndarray]
    masks: list[np.ndarray | None]
    crs: str | None

    @classmethod
    def of(cls, df: gpd.GeoDataFrame | pd.DataFrame, fields: list[str] | None = None,
           wkb: np.ndarray | None = None, crs: CRS | None = None) -> Encoded:
        """Encode ``df``'s geometries and its ``fields`` (default: every other column).

        Given ``wkb`` (and ``crs``), those are the geometries and ``df`` holds only fields.
        """
        if fields is None:
            fields = [c for c in df.columns if wkb is not None or c != df.geometry.name]
        values: list[np.ndarray] = []
        masks: list[np.ndarray | None] = []
        for name in fields:
            col = df[name]
            if isinstance(col.dtype, np.dtype):  # numpy-backed: as it is, no mask
                values.append(col.to_numpy())
                masks.append(None)
            else:  # pandas' string type: objects, and where they are missing
                values.append(np.asarray(col.array, dtype=object))
                masks.append(col.isna().to_numpy())
        if wkb is None:
            wkb, crs = shapely.to_wkb(df.geometry.array), df.crs
        epsg = crs.to_epsg() if crs else None
        return cls(wkb=wkb, fields=fields, values=values,
                   masks=masks,
                   crs=f"EPSG:{epsg}" if epsg else crs.to_wkt("WKT1_GDAL") if crs else None)

    @classmethod
    def chunks(cls, df: gpd.GeoDataFrame | RingLayer, fields: list[str] | None = None, *,
               release: bool = False) -> Iterator[Encoded]:
        """``df`` encoded :data:`WRITE_VERTICES` vertices at a time (at least one chunk).

        A layer written chunk by chunk holds one chunk's WKB (and OGR's copies of
        it), not the whole layer's. With ``release`` each chunk's geometries are
        set to None in ``df`` once encoded, so GEOS frees them (when nothing else
        holds them) before the chunk is written; before a chunk larger than
        :data:`WRITE_VERTICES` (one big feature) the heap is trimmed
        (:func:`release_heap`), so OGR's copies of it take the memory freed.
        A :class:`RingLayer`'s WKB is made from its rings, a chunk at a time (features of
        a chunk bound for the native writers as views of one buffer, not copies).
        """
        if isinstance(df, RingLayer):
            ends = np.cumsum(df.rings.vertices())
        else:
            ends = np.cumsum(shapely.get_num_coordinates(df.geometry.array))
        bounds = batch_bounds(ends, WRITE_VERTICES) if len(df) else np.zeros(2, dtype=int)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            vertices = ends[b - 1] - (ends[a - 1] if a else 0) if b > a else 0
            if isinstance(df, RingLayer):  # views when the chunk goes to the native writers
                views = b - a > 1 and 16 * vertices >= NATIVE_GPKG_BYTES * (b - a)
                yield cls.of(df.table.iloc[a:b], fields, df.rings.wkb(a, b, views=views), df.crs)
                continue
            encoded = cls.of(df.iloc[a:b], fields)
            if release:
                df.geometry.array[a:b] = None
                if vertices > WRITE_VERTICES:
                    release_heap()
            yield encoded
            del encoded  # before the next chunk is encoded

    def write(self, path: Path, *, layer: str | None = None, geometry_type: str | None = None,
              **options: Any) -> None:
        """Write the features to ``path`` (a new layer, or appended with ``append=True``).

        Polygons are promoted to MultiPolygons; an empty layer's geometry type is
        left unknown, as :func:`pyogrio.write_dataframe` leaves it, unless
        ``geometry_type`` says otherwise. ``options`` go to :func:`pyogrio.raw.write`
        (``driver``, ``encoding``, ``append``, ``dataset_options``, ``layer_options``).
        """
        if geometry_type is None:
            geometry_type = "MultiPolygon" if len(self.wkb) else "Unknown"
        wkb = self.wkb  # OGR reads bytes (and a lone bytearray), not views of a buffer
        if any(isinstance(w, memoryview) for w in wkb):
            wkb = np.array([bytes(w) for w in wkb], dtype=object)
        pyogrio.raw.write(path, wkb, self.values, self.fields, field_mask=self.masks,
                          layer=layer, crs=self.crs, promote_to_multi=True,
                          geometry_type=geometry_type, **options)

    def write_gpkg(self, path: Path, layer: str, *, create: bool = False,
                   **options: Any) -> None:
        """Write the features to ``layer`` of the GeoPackage ``path``, the rows :meth:`write` would.

        With ``create`` the layer is made (``options``: GDAL's ``dataset_options``),
        else appended to. Features of :data:`NATIVE_GPKG_BYTES` of WKB or more on
        average (an evaluation level: a few MultiPolygons of millions of
        vertices) are appended natively (:func:`sanqu.gpkg.append`) to a layer
        GDAL makes: faster, and with one copy of a feature fewer in memory.
        Smaller ones are written by GDAL, whose bulk-loaded R-tree is faster
        than SQLite's inserts; so is anything the native writer refuses
        (:class:`sanqu.shapefile.NotNative`).
        """
        gdal = {"layer": layer, "driver": "GPKG"}
        n = len(self.wkb)
        if n == 0 or wkb_bytes(self.wkb) < NATIVE_GPKG_BYTES * n:
            self.write(path, **gdal, **(options if create else {"append": True}))
            return
        if create:
            self.empty().write(path, geometry_type="MultiPolygon", **gdal, **options)
        try:
            append_gpkg(path, layer, self.wkb, self.fields, self.values, self.masks)
        except NotNative:
            self.write(path, append=True, **gdal)

    def empty(self) -> Encoded:
        """The same layer without features (its fields typed as these)."""
        return Encoded(wkb=self.wkb[:0], fields=self.fields, values=[v[:0] for v in self.values],
                       masks=[None if m is None else m[:0] for m in self.masks], crs=self.crs)

    def write_shapefile(self, path: Path, encoding: str, *, create: bool = False) -> None:
        """Write the features to the shapefile ``path``, the same bytes as :meth:`write`.

        With ``create`` GDAL makes the layer (``.prj``, ``.cpg`` naming ``encoding``,
        the fields typed from the arrays, header dates :data:`FIXED_DATE`), as
        :meth:`write` would but with no feature; else ``path`` is a shapefile GDAL
        made (possibly through fiona), holding features or not. The features are
        then appended by :func:`sanqu.shapefile.append`, several times faster than
        by GDAL and with the bytes GDAL writes, or by GDAL where that writer would
        differ (:class:`sanqu.shapefile.NotNative`, e.g. a text value wider than
        its field, which GDAL widens). Either way the DBF header's date is
        :data:`FIXED_DATE`: GDAL stamps the day it appends, whatever
        ``OGR_CURRENT_DATE`` says.
        """
        options: dict[str, Any] = {"driver": "ESRI Shapefile", "encoding": encoding}
        stamp = {"layer_options": {"DBF_DATE_LAST_UPDATE": FIXED_DATE}}
        if create and not len(self.wkb):
            self.write(path, **options, **stamp)  # an empty layer of unknown geometry type
            return
        if create:
            self.empty().write(path, geometry_type="MultiPolygon", **options, **stamp)
        date = dt.date.fromisoformat(FIXED_DATE)
        try:
            append_shapefile(path, self.wkb, self.fields, self.values, self.masks, date=date)
        except NotNative:
            self.write(path, append=True, **options)
            stamp_date(path, date)


#: Mean WKB bytes a feature from which a chunk goes to the GeoPackage natively.
NATIVE_GPKG_BYTES = 1 << 16

#: Bytes of a GeoPackage's SQLite page (SQLite's default: 4096); see :func:`vector_env`.
GPKG_PAGE_SIZE = 16384

#: GDAL settings while vector files are written (see :func:`vector_env`).
VECTOR_ENV = {"OGR_CURRENT_DATE": FIXED_TIMESTAMP, "OGR_SQLITE_SYNCHRONOUS": "OFF",
              "OGR_SQLITE_PRAGMA": f"page_size={GPKG_PAGE_SIZE},journal_mode=OFF"}


@contextmanager
def vector_env() -> Iterator[None]:
    """GDAL settings for writing vector files, for both pyogrio and fiona.

    GDAL's "current date" is pinned to :data:`FIXED_TIMESTAMP` (GeoPackage
    timestamps, DBF headers). SQLite neither waits for GeoPackage pages to reach the disk
    (``OGR_SQLITE_SYNCHRONOUS=OFF``) nor keeps a rollback journal
    (``journal_mode=OFF``: 1.6 times faster on a layer of 57 M vertices): the
    bytes written are the same, the run writes into a temporary folder moved into
    place at the end (a failed run leaves nothing to roll back), and no other
    output (GeoTIFF, shapefile, table) is synced to the disk either.

    A GeoPackage GDAL creates gets SQLite pages of :data:`GPKG_PAGE_SIZE` bytes
    (the ``page_size`` pragma, which SQLite applies before the first table):
    SQLite's work goes by the page, so writing the planning database at 10⁸
    cells (2.6 GB, evaluation levels of 300 MB a feature) took about 0.8 of the
    time of 4096-byte pages, and a small file grows a little (every table and
    index takes at least one page).
    """
    import fiona

    pyogrio.set_gdal_config_options(VECTOR_ENV)
    try:
        with fiona.Env(**VECTOR_ENV):
            yield
    finally:
        pyogrio.set_gdal_config_options(dict.fromkeys(VECTOR_ENV))


def write_schema_layer(gpkg: Path, layer: str, df: gpd.GeoDataFrame | RingLayer,
                       fields: list[Field], *,
                       shapefile: Path | None = None, encoding: str = "UTF-8",
                       release: bool = False) -> None:
    """Write one MultiPolygon layer with exactly the given fields, widths and decimals.

    The GeoPackage ``gpkg`` (version 1.2) gains the layer; given a ``shapefile``
    path, the layer is also written there, its DBF in ``encoding``, declared in a
    ``.cpg``. Field widths reach the files (``TEXT(18)``, DBF ``C(18)``,
    ``N(18,4)``): fiona creates the layer with them (pyogrio cannot), pyogrio
    appends the features (as WKB, much faster than fiona's GeoJSON-like records),
    encoded once for both files (:class:`Encoded`); a shapefile's features are
    written natively (:meth:`Encoded.write_shapefile`). Text fields of a
    shapefile hold ``width`` *bytes* in ``encoding``; longer values are an error
    here rather than a silent truncation by GDAL.

    Parameters
    ----------
    gpkg : Path
        The ``.gpkg`` file.
    layer : str
        Layer name in the GeoPackage — a shapefile's layer is its file name.
    df : GeoDataFrame or RingLayer
        Columns named as ``fields``; geometries Polygon or MultiPolygon.
    fields : list of Field
        The schema, in order.
    shapefile : Path, optional
        A ``.shp`` file to write the layer to as well.
    encoding : {"UTF-8", "GBK"}
        DBF encoding of the shapefile.
    release : bool
        Drop ``df``'s geometries as they are written (:meth:`Encoded.chunks`).
    """
    if shapefile is not None:
        _check_text_widths(df, layer, fields, encoding)
    _create_schema_layer(gpkg, layer, df, fields)
    if shapefile is not None:
        _create_schema_layer(shapefile, layer, df, fields, encoding)
    for features in Encoded.chunks(df, [f.name for f in fields], release=release):
        features.write_gpkg(gpkg, layer)
        if shapefile is not None:
            features.write_shapefile(shapefile, encoding)
        del features  # before the next chunk is encoded: one chunk's WKB held, not two


def _check_text_widths(df: gpd.GeoDataFrame | RingLayer, layer: str, fields: list[Field],
                       encoding: str) -> None:
    """Raise ConfigError if a text value takes more bytes in ``encoding`` than its field holds."""
    for f in fields:
        if f.kind == "str":
            longest = max((len(str(v).encode(encoding)) for v in df[f.name].unique()), default=0)
            if longest > f.width:
                raise ConfigError(f"outputs.shapefile_encoding: a value of {layer}.{f.name} "
                                  f"takes {longest} bytes in {encoding}, more than the field "
                                  f"width {f.width}; expected shorter text or another encoding")


def _create_schema_layer(path: Path, layer: str, df: gpd.GeoDataFrame | RingLayer,
                         fields: list[Field], encoding: str | None = None) -> None:
    """Create an empty MultiPolygon layer with ``fields`` in a GeoPackage or a ``.shp`` file.

    A shapefile (``encoding`` given) gets its DBF in ``encoding``; a GeoPackage
    gains ``layer`` (version 1.2).
    """
    import fiona

    shp = encoding is not None
    # a DBF text field holds at most 254 bytes (the specification's BZ text(255) cannot fit)
    props = {f.name: f.schema.replace(":255", ":254") if shp else f.schema for f in fields}
    schema = {"geometry": "MultiPolygon", "properties": props}
    options = ({"encoding": encoding, "DBF_DATE_LAST_UPDATE": FIXED_DATE} if shp
               else {"layer": layer, "VERSION": "1.2"})
    crs = f"EPSG:{df.crs.to_epsg()}" if df.crs.to_epsg() else df.crs.to_wkt()
    with fiona.open(path, "w", driver="ESRI Shapefile" if shp else "GPKG", schema=schema,
                    crs=crs, **options):
        pass  # fiona declares the fields; pyogrio appends the features (WKB, fast)


def connect_unsynced(gpkg: Path) -> sqlite3.Connection:
    """An SQLite connection to a GeoPackage being written that does not sync to the disk.

    Its first commit would otherwise flush every page GDAL left unsynced
    (:func:`vector_env`): about a second a gigabyte.
    """
    con = sqlite3.connect(gpkg)
    con.execute("PRAGMA synchronous = OFF")
    return con


def write_gpkg_aliases(gpkg: Path, aliases: dict[str, dict[str, str]]) -> None:
    """Record field aliases in a GeoPackage's ``gpkg_data_columns`` (schema extension).

    The alias goes to the ``name`` and ``title`` columns, where GDAL ≥ 3.7 reads a
    field's alternative name and ArcGIS Pro its alias; QGIS 3.22 (GDAL 3.6) shows
    them through the styles written by :mod:`sanqu.review`.

    Parameters
    ----------
    gpkg : Path
        An existing GeoPackage.
    aliases : dict
        Layer → field → alias.
    """
    ext = "http://www.geopackage.org/spec120/#extension_schema"
    con = connect_unsynced(gpkg)
    try:
        con.executescript("""
            CREATE TABLE IF NOT EXISTS gpkg_data_columns (
              table_name TEXT NOT NULL, column_name TEXT NOT NULL, name TEXT, title TEXT,
              description TEXT, mime_type TEXT, constraint_name TEXT,
              CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name));
            CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (
              constraint_name TEXT NOT NULL, constraint_type TEXT NOT NULL, value TEXT,
              min NUMERIC, min_is_inclusive BOOLEAN, max NUMERIC, max_is_inclusive BOOLEAN,
              description TEXT,
              CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value));
        """)
        for table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
            con.execute("DELETE FROM gpkg_extensions WHERE table_name = ?", (table,))
            con.execute("INSERT INTO gpkg_extensions VALUES (?, NULL, 'gpkg_schema', ?, "
                        "'read-write')", (table, ext))
        for layer, fields in aliases.items():
            for column, alias in fields.items():
                con.execute("INSERT OR REPLACE INTO gpkg_data_columns VALUES "
                            "(?, ?, ?, ?, NULL, NULL, NULL)", (layer, column, alias, alias))
        con.commit()
    finally:
        con.close()


def write_area_table(path: Path, rows: list[dict[str, object]]) -> None:
    """Write the area table as UTF-8 CSV (with BOM so spreadsheet tools read the Chinese)."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of sanqu and the libraries whose behaviour shapes the results."""
    names = ["sanqu", "numpy", "scipy", "rasterio", "pyproj", "shapely", "geopandas", "pyogrio",
             "fiona", "pydantic", "click", "pyyaml"]
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    out["gdal"] = rasterio.__gdal_version__
    return out


def write_manifest(path: Path, manifest: dict[str, object]) -> None:
    """Write the run manifest as pretty JSON, keys in a stable order."""
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")
