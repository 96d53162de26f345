"""Review a set of line layers: overlaps, invalid geometries, slivers, parts outside the area.

``sanqu check LINES...`` runs :func:`check_layers` on polygon layers drawn by
sanqu or anywhere else (a bureau's shapefiles, say). Each layer is a path, or
``file.gpkg:layer`` for one layer of a multi-layer file. Checks:

- ``invalid``: a geometry that is not valid (self-intersection, bow-tie, bad ring);
- ``overlap``: two polygons, of two layers or of one layer, sharing area;
- ``sliver``: a polygon part smaller than the minimum area;
- ``outside``: area lying outside the study-area boundary (when one is given);
- ``empty`` / ``not_polygon``: a feature with no geometry, or one that is no polygon.

Areas are in square metres of the first layer's CRS; layers in another CRS are
reprojected to it, and a geographic CRS is replaced by the UTM zone of the data.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from pyproj import CRS

from .errors import InputError, InputNotFoundError

#: The checks, in report order, with what a defect of each means.
CHECKS = {
    "empty": "feature without geometry",
    "not_polygon": "geometry is not a polygon",
    "invalid": "invalid geometry",
    "overlap": "polygons share area",
    "sliver": "polygon part below the minimum area",
    "outside": "area outside the study area",
}

#: Columns of the CSV report.
COLUMNS = ("check", "layer", "fid", "other", "area_m2", "detail")


@dataclass(frozen=True)
class Defect:
    """One thing wrong with one feature.

    Attributes
    ----------
    check : str
        Key of :data:`CHECKS`.
    layer : str
        Layer name as reported.
    fid : int
        Feature id in the file (as GDAL numbers it: shapefiles from 0, GeoPackages from 1).
    other : str
        For an overlap, the other feature as ``layer:fid``; else "".
    area_m2 : float
        Area concerned (overlap, sliver part, part outside); 0 when not an area.
    detail : str
        Explanation (e.g. GEOS's reason for invalidity).
    """

    check: str
    layer: str
    fid: int
    other: str = ""
    area_m2: float = 0.0
    detail: str = ""


@dataclass
class CheckReport:
    """Outcome of :func:`check_layers`: features per layer, defects, notes."""

    features: dict[str, int]
    defects: list[Defect] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no defect was found."""
        return not self.defects

    def counts(self) -> dict[str, int]:
        """Defects per check, in :data:`CHECKS` order."""
        c = Counter(d.check for d in self.defects)
        return {k: c[k] for k in CHECKS if c[k]}

    def summary(self) -> str:
        """One line: how many defects of which kind, in how many layers and features."""
        where = (f"{len(self.features)} layer{'s' * (len(self.features) != 1)} "
                 f"({sum(self.features.values())} features)")
        if self.ok:
            return f"no defects in {where}"
        kinds = ", ".join(f"{n} {k}" for k, n in self.counts().items())
        return f"{len(self.defects)} defect{'s' * (len(self.defects) != 1)} in {where}: {kinds}"

    def table(self) -> str:
        """The defects as aligned text, one per line, under a header."""
        rows = [COLUMNS] + [(d.check, d.layer, str(d.fid), d.other, f"{d.area_m2:.2f}", d.detail)
                            for d in self.defects]
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
        right = {2, 4}  # fid and area_m2
        return "\n".join("  ".join(v.rjust(w) if i in right else v.ljust(w)
                                   for i, (v, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                         for r in rows)

    def write_csv(self, path: Path) -> None:
        """Write the defects as UTF-8 CSV."""
        with Path(path).open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            for d in self.defects:
                w.writerow([d.check, d.layer, d.fid, d.other, round(d.area_m2, 4), d.detail])


def split_layer(spec: str) -> tuple[Path, str | None]:
    """``path`` or ``path:layer`` → (path, layer); a path that exists as given wins.

    Examples
    --------
    >>> split_layer("lines.gpkg:red_line")
    (PosixPath('lines.gpkg'), 'red_line')
    >>> split_layer("red_line.shp")
    (PosixPath('red_line.shp'), None)
    """
    path = Path(spec)
    if path.exists() or ":" not in spec:
        return path, None
    head, _, layer = spec.rpartition(":")
    return Path(head), layer or None


def read_layer(spec: str) -> tuple[str, gpd.GeoDataFrame]:
    """Read one layer given as ``path`` or ``path:layer``; returns (name, features by FID).

    Raises
    ------
    InputError
        If the file is missing or unreadable, or holds several layers and none was named.
    """
    path, layer = split_layer(spec)
    if not path.exists():
        raise InputNotFoundError(f"{spec}: file not found")
    try:
        if layer is None:
            layers = [name for name, _ in pyogrio.list_layers(path)]
            if len(layers) > 1:
                raise InputError(f"{spec}: holds {len(layers)} layers {layers}; name one as "
                                 f"{path.name}:LAYER")
        df = gpd.read_file(path, layer=layer, engine="pyogrio", fid_as_index=True)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(f"{spec}: cannot read: {exc}") from None
    return (layer or path.stem), df


def overlap_pairs(a: np.ndarray, b: np.ndarray | None = None,
                  tolerance: float = 0.0) -> list[tuple[int, int, float]]:
    """Pairs of polygons that share more than ``tolerance`` of area.

    With one array, pairs within it (``i < j``); with two, pairs across them.
    Geometries should be valid (see :func:`shapely.make_valid`).

    Examples
    --------
    >>> sq = lambda x: shapely.box(x, 0, x + 2, 2)
    >>> overlap_pairs(np.array([sq(0), sq(1), sq(2)]))
    [(0, 1, 2.0), (1, 2, 2.0)]
    """
    other = a if b is None else b
    if len(a) == 0 or len(other) == 0:
        return []
    tree = shapely.STRtree(other)
    i, j = tree.query(a, predicate="intersects")
    if b is None:
        keep = i < j
        i, j = i[keep], j[keep]
    if i.size == 0:
        return []
    area = shapely.area(shapely.intersection(a[i], other[j]))
    hit = area > tolerance
    return [(int(x), int(y), float(z)) for x, y, z in zip(i[hit], j[hit], area[hit], strict=True)]


def _common_crs(frames: list[gpd.GeoDataFrame], notes: list[str]) -> CRS | None:
    crs = next((df.crs for df in frames if df.crs is not None), None)
    if crs is None:
        notes.append("no layer has a CRS: coordinates are taken as metres")
        return None
    if crs.is_geographic:
        crs = frames[0].set_crs(crs, allow_override=True).estimate_utm_crs()
        notes.append(f"geographic coordinates: areas measured in {crs.name}")
    return crs


def check_layers(specs: list[str], *, min_area_m2: float = 200.0, study_area: str | None = None,
                 tolerance_m2: float = 0.01) -> CheckReport:
    """Check polygon layers for overlaps, invalid geometries, slivers and parts outside.

    Parameters
    ----------
    specs : list of str
        Layers as ``path`` or ``path:layer``.
    min_area_m2 : float
        Polygon parts below this area are slivers.
    study_area : str, optional
        Boundary layer (``path`` or ``path:layer``); area outside it is a defect.
    tolerance_m2 : float
        Overlaps and parts outside up to this area are ignored (rounding noise).

    Returns
    -------
    CheckReport

    Raises
    ------
    InputError
        If a layer cannot be read, or a name is given twice.
    """
    named = [read_layer(s) for s in specs]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"LINES: two layers are named {dup!r}; give each layer once")
    boundary = read_layer(study_area)[1] if study_area else None
    notes: list[str] = []
    frames = [df for _, df in named] + ([boundary] if boundary is not None else [])
    crs = _common_crs(frames, notes)
    report = CheckReport({n: len(df) for n, df in named}, notes=notes)
    geoms: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, df in named:
        if crs is not None and df.crs is None:
            notes.append(f"{name}: no CRS; taken to be in {crs.name}")
        elif crs is not None and not df.crs.equals(crs):
            notes.append(f"{name}: reprojected from {df.crs.name} to {crs.name}")
            df = df.to_crs(crs)
        fids = df.index.to_numpy()
        geoms[name] = (fids, _check_features(name, fids, df.geometry.values, report))
    names = list(geoms)
    for x, name in enumerate(names):
        fids, g = geoms[name]
        for i, j, area in overlap_pairs(g, tolerance=tolerance_m2):
            report.defects.append(Defect("overlap", name, int(fids[i]), f"{name}:{fids[j]}",
                                         area, "within the layer"))
        for other in names[x + 1:]:
            ofids, og = geoms[other]
            for i, j, area in overlap_pairs(g, og, tolerance_m2):
                report.defects.append(Defect("overlap", name, int(fids[i]),
                                             f"{other}:{ofids[j]}", area, "between layers"))
    for name in names:
        fids, g = geoms[name]
        _check_slivers(name, fids, g, min_area_m2, report)
    if boundary is not None:
        if crs is not None and boundary.crs is not None and not boundary.crs.equals(crs):
            boundary = boundary.to_crs(crs)
        area = shapely.union_all(shapely.make_valid(boundary.geometry.values))
        for name in names:
            fids, g = geoms[name]
            out = shapely.area(shapely.difference(g, area)) if len(g) else np.zeros(0)
            for k in np.flatnonzero(out > tolerance_m2):
                report.defects.append(Defect("outside", name, int(fids[k]), "", float(out[k]),
                                             f"outside {study_area}"))
    order = {k: i for i, k in enumerate(CHECKS)}
    report.defects.sort(key=lambda d: (order[d.check], names.index(d.layer), d.fid))
    return report


def _check_features(name: str, fids: np.ndarray, g: np.ndarray,
                    report: CheckReport) -> np.ndarray:
    """Report empty, non-polygon and invalid features; return valid polygons to test further."""
    out = np.empty(len(g), dtype=object)
    for k, (fid, geom) in enumerate(zip(fids, g, strict=True)):
        if geom is None or geom.is_empty:
            report.defects.append(Defect("empty", name, int(fid)))
            geom = shapely.Polygon()
        elif geom.geom_type not in ("Polygon", "MultiPolygon"):
            report.defects.append(Defect("not_polygon", name, int(fid), detail=geom.geom_type))
            geom = shapely.Polygon()
        elif not geom.is_valid:
            report.defects.append(Defect("invalid", name, int(fid),
                                         detail=shapely.is_valid_reason(geom)))
            fixed = shapely.make_valid(geom)
            geom = shapely.union_all([p for p in shapely.get_parts(fixed)
                                      if p.geom_type in ("Polygon", "MultiPolygon")])
        out[k] = geom
    return out


def _check_slivers(name: str, fids: np.ndarray, g: np.ndarray, min_area_m2: float,
                   report: CheckReport) -> None:
    """Report polygon parts below ``min_area_m2``."""
    if not len(g):
        return
    parts, idx = shapely.get_parts(g, return_index=True)
    area = shapely.area(parts)
    for k in np.flatnonzero((area < min_area_m2) & ~shapely.is_empty(parts)):
        report.defects.append(Defect("sliver", name, int(fids[idx[k]]), "", float(area[k]),
                                     f"part below {min_area_m2:g} m2"))
