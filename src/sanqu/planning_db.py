"""The planning-database profile: layers, fields and identifiers of methodology.md §5.

Layers and fields follow the city-level planning database specification as far
as it is known (methodology.md §5): ``STBHHX`` (red line), ``YJJBNT`` (permanent
farmland), ``CZKFBJ`` (UGB, with its sub-zones) and the three evaluation results
``STBHZYXPJJG``, ``NYSCSYXPJJG``, ``CZJSSYXPJJG``. Values not known from the
specification (element codes YSDM, sub-zone codes GHFQDM) come from the config,
where they default to the visible placeholder :data:`sanqu.config.PLACEHOLDER`.

XZQDM / XZQMC come from the administrative units of the run (top-level
``units``), else from ``study_area.admin_code`` / ``admin_name``
(``admin_overlay``: ``split`` cuts polygons at unit borders; ``largest`` keeps each
polygon whole, in the unit holding most of it). Where units overlap, the later
code wins, as on the unit raster. Two ways:

* On the raster, when the polygons lie on the grid's cell edges (no smoothing,
  output CRS equivalent to the grid's): the pipeline polygonizes each layer's
  raster combined with the unit raster, so each patch of equal class and unit is
  one polygon and arrives here with its unit index (:func:`build`'s ``unit``
  column and ``level_units``). The cut lines are cell edges following the unit
  raster, the same assignment (by cell centre) as ``units.csv`` and the farmland
  quotas, so the areas per unit equal ``units.csv`` exactly; they depart from the
  unit polygons' true borders by up to half a cell. Cost: one labelling and
  tracing pass per layer group, linear in the cells.
* By GEOS overlay (:func:`overlay`) of the delivered polygons with the unit
  polygons, for smoothed or reprojected output (and for polygons the topology
  gate repaired): the cut lines are the units' true borders.
GHFQDM / GHFQMC come from the UGB's sub-zones (``zone``, ``zone_name``): the name
is the sub-zone's, the code ``outputs.planning_db.subzone_codes`` (placeholders).

BSM identifiers are 18 characters, unique across the delivery and stable:
``prefix`` (default the first 6 digits of the study area's admin code) + the
layer's number (2 digits) + a running number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from .align import crs_equivalent
from .config import PLACEHOLDER, PLANNING_LAYERS, Config
from .crs import reproject
from .evaluate import LEVEL_LABELS
from .export import (
    LINE_LAYERS,
    RingLayer,
    features,
    vector_env,
    write_gpkg_aliases,
    write_schema_layer,
)
from .lattice import Rings, concat_features, feature_areas
from .topology import EPS_M2, Issue, Report, TopologyError, point_at, polygonal
from .units import Units


@dataclass(frozen=True)
class Field:
    """One attribute field of a delivered layer.

    Attributes
    ----------
    name : str
        At most 10 ASCII characters (the shapefile limit).
    kind : {"str", "float", "int"}
        Field type.
    width, precision : int
        Text length, or digits and decimals of a number.
    alias : str
        Chinese alias, written to the GeoPackage and the QGIS styles.
    """

    name: str
    kind: str
    width: int
    precision: int = 0
    alias: str = ""

    @property
    def schema(self) -> str:
        """The field as an OGR schema string (``str:18``, ``float:18.4``)."""
        if self.kind == "float":
            return f"float:{self.width}.{self.precision}"
        return f"{self.kind}:{self.width}"


#: Area units: factor from m², Chinese label, default decimals (1 m² or better).
AREA_UNITS = {"ha": (1e-4, "公顷", 4), "m2": (1.0, "平方米", 2), "km2": (1e-6, "平方千米", 6),
              "mu": (0.0015, "亩", 4)}

#: Layer → (Chinese name, source: the plain layer or the evaluation result).
LAYER_SOURCES = {
    "STBHHX": ("生态保护红线", "red_line"),
    "YJJBNT": ("永久基本农田", "farmland"),
    "CZKFBJ": ("城镇开发边界", "ugb"),
    "STBHZYXPJJG": ("生态保护重要性评价结果", "eco_importance"),
    "NYSCSYXPJJG": ("农业生产适宜性评价结果", "agri_suitability"),
    "CZJSSYXPJJG": ("城镇建设适宜性评价结果", "urban_suitability"),
}


def fields_of(layer: str, cfg: Config) -> list[Field]:
    """The fields of a planning-database layer, in order.

    Examples
    --------
    >>> from sanqu import default_config_path, load_config
    >>> [f.name for f in fields_of("CZKFBJ", load_config(default_config_path()))]
    ['BSM', 'YSDM', 'XZQDM', 'XZQMC', 'GHFQDM', 'GHFQMC', 'MJ', 'BZ']
    """
    spec = cfg.outputs.planning_db
    _, unit_name, default_decimals = AREA_UNITS[spec.area_unit]
    decimals = spec.area_decimals if spec.area_decimals is not None else default_decimals
    head = [Field("BSM", "str", 18, alias="标识码"), Field("YSDM", "str", 10, alias="要素代码"),
            Field("XZQDM", "str", 12, alias="行政区代码"),
            Field("XZQMC", "str", 100, alias="行政区名称")]
    tail = [Field("MJ", "float", 18, decimals, alias=f"面积（{unit_name}）"),
            Field("BZ", "str", 255, alias="备注")]
    if layer == "CZKFBJ":
        middle = [Field("GHFQDM", "str", 3, alias="规划分区代码"),
                  Field("GHFQMC", "str", 50, alias="规划分区名称")]
    elif layer in ("STBHHX", "YJJBNT"):
        middle = []
    else:
        alias = "重要性等级" if layer == "STBHZYXPJJG" else "适宜性等级"
        middle = [Field(spec.level_field, "str", 20, alias=alias)]  # 一般适宜: 12 bytes in UTF-8
    return head + middle + tail


def placeholders(cfg: Config) -> list[str]:
    """Config keys whose value is still the placeholder, for the run's notes."""
    spec = cfg.outputs.planning_db
    keys = [f"outputs.planning_db.ysdm.{k}" for k, v in spec.ysdm if v == PLACEHOLDER]
    keys += [f"outputs.planning_db.subzone_codes.{k}" for k, v in spec.subzone_codes
             if v == PLACEHOLDER]
    if cfg.units is None and cfg.study_area.admin_code is None:
        keys.append("study_area.admin_code")
    return keys


def disjoint_units(units: Units, crs: CRS, grid_crs: CRS, cell: float) -> Units:
    """The run's units in the output CRS, overlaps given to the later code.

    Examples
    --------
    >>> u = Units(("1", "2"), ("甲", "乙"), (shapely.box(0, 0, 6, 9), shapely.box(5, 0, 9, 9)))
    >>> [float(g.area) for g in disjoint_units(u, CRS(4527), CRS(4527), 30).geometries]
    [45.0, 36.0]
    """
    geoms = np.asarray(units.geometries, dtype=object)
    if not crs_equivalent(crs, grid_crs):
        geoms = reproject(geoms, grid_crs, crs, cell)
    later = shapely.Polygon()
    out = []
    for g in geoms[::-1]:
        out.append(polygonal(shapely.difference(g, later)))
        later = shapely.union(later, g)
    return Units(units.codes, units.names, tuple(out[::-1]))


def overlay(geoms: np.ndarray, units: Units | None, fallback: tuple[str, str], how: str,
            min_area: float) -> tuple[list[shapely.Geometry], list[str], list[str], list[int]]:
    """Give each polygon the unit(s) it lies in.

    Works part by part (a feature may be a MultiPolygon of many patches): a part
    inside one unit or outside all of them is assigned whole, and only parts that
    cross a unit border are cut, so the cost follows the borders, not the area.

    Parameters
    ----------
    geoms : numpy.ndarray of Polygon or MultiPolygon
        The features.
    units : Units or None
        Disjoint units (:func:`disjoint_units`); None gives every feature ``fallback``.
    fallback : (str, str)
        Code and name for parts outside every unit.
    how : {"split", "largest"}
        Cut features at unit borders (one feature per unit a feature reaches, its
        parts there collected), or keep them whole in the unit they overlap most.
    min_area : float
        Pieces of a cut part below this area stay with the part's largest piece.

    Returns
    -------
    geoms, codes, names : lists
        One entry per delivered feature, in input order, then unit code order
        (outside every unit last).
    source : list of int
        Index of the input feature each delivered feature comes from.

    Examples
    --------
    >>> units = Units(("410001", "410002"), ("甲", "乙"),
    ...               (shapely.box(0, 0, 5, 9), shapely.box(5, 0, 9, 9)))
    >>> g, codes, names, src = overlay(np.array([shapely.box(1, 1, 8, 2)]), units,
    ...                                ("419001", "济源市"), "split", 1.0)
    >>> [float(x.area) for x in g], codes, src
    ([4.0, 3.0], ['410001', '410002'], [0, 0])
    >>> overlay(np.array([shapely.box(1, 1, 8, 2)]), units, ("0", "-"), "largest", 1.0)[1]
    ['410001']
    """
    geoms = np.asarray(geoms, dtype=object)
    if units is None:
        return list(geoms), [fallback[0]] * len(geoms), [fallback[1]] * len(geoms), \
            list(range(len(geoms)))
    outside = len(units.codes)  # the "unit" of parts in no unit, sorted last
    codes, names = (*units.codes, fallback[0]), (*units.names, fallback[1])
    parts, owner = shapely.get_parts(geoms, return_index=True)
    pieces, piece_unit, piece_owner = _cut(parts, owner, np.asarray(units.geometries, dtype=object),
                                           outside, min_area)
    if how == "largest":
        area = np.zeros((len(geoms), outside + 1))
        np.add.at(area, (piece_owner, piece_unit), shapely.area(pieces))
        best = area.argmax(axis=1)
        return (list(geoms), [codes[u] for u in best], [names[u] for u in best],
                list(range(len(geoms))))
    order = np.lexsort((piece_unit, piece_owner))
    pieces, piece_unit, piece_owner = pieces[order], piece_unit[order], piece_owner[order]
    key = piece_owner * (outside + 1) + piece_unit
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    groups = np.split(pieces, first[1:])
    out_g = [g[0] if len(g) == 1 else shapely.multipolygons(g) for g in groups]
    units_of = piece_unit[first]
    return (out_g, [codes[u] for u in units_of], [names[u] for u in units_of],
            piece_owner[first].tolist())


def _cut(parts: np.ndarray, owner: np.ndarray, unit_geoms: np.ndarray, outside: int,
         min_area: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polygons of ``parts`` cut at unit borders: the pieces, their unit and their owner.

    Parts inside one unit (a prepared ``covers``) or touching none stay whole; a cut
    part's pieces below ``min_area`` join its largest piece.
    """
    shapely.prepare(unit_geoms)
    part, unit = shapely.STRtree(unit_geoms).query(parts, predicate="intersects")
    order = np.lexsort((unit, part))
    part, unit = part[order], unit[order]
    whole_unit = np.full(len(parts), outside)
    inside = shapely.covers(unit_geoms[unit], parts[part])
    whole_unit[part[inside]] = unit[inside]
    crossing = np.ones(len(parts), dtype=bool)
    crossing[part[inside]] = False
    crossing[np.setdiff1d(np.arange(len(parts)), part)] = False
    out_g, out_u, out_o = [parts[~crossing]], [whole_unit[~crossing]], [owner[~crossing]]
    starts = np.searchsorted(part, np.arange(len(parts) + 1))
    for k in np.flatnonzero(crossing):
        hits = unit[starts[k]:starts[k + 1]]
        cut = [*shapely.intersection(parts[k], unit_geoms[hits]),
               shapely.difference(parts[k], shapely.union_all(unit_geoms[hits]))]
        cut = [polygonal(c) for c in cut]
        where = [*hits, outside]
        area = np.array([c.area for c in cut])
        big = int(area.argmax())
        small = [c for c, a in zip(cut, area, strict=True) if 0 < a < min_area]
        if small:
            cut[big] = polygonal(shapely.union_all([cut[big], *small]))
        keep = [i for i, a in enumerate(area) if i == big or a >= min_area]
        _check_cut(parts[k], [cut[i] for i in keep])
        for i in keep:
            got = shapely.get_parts(cut[i])
            out_g.append(got)
            out_u.append(np.full(len(got), where[i]))
            out_o.append(np.full(len(got), owner[k]))
    return np.concatenate(out_g), np.concatenate(out_u), np.concatenate(out_o)


def _check_cut(part: shapely.Geometry, pieces: list[shapely.Geometry]) -> None:
    """Stop unless the pieces of a cut part are valid and add up to the part.

    The pieces lie inside the part and in disjoint units, so valid pieces whose
    areas sum to the part's tile it: the cut added no overlap, gap or outside.
    """
    bad = [p for p in pieces if not p.is_valid]
    lost = part.area - sum(p.area for p in pieces)
    if not bad and abs(lost) <= max(EPS_M2, 1e-9 * part.area):
        return
    issue = (Issue("invalid", "admin_overlay", shapely.is_valid_reason(bad[0]), 0.0,
                   *point_at(bad[0])) if bad else
             Issue("gap" if lost > 0 else "overlap", "admin_overlay",
                   "the pieces of a polygon cut by units do not add up to it", abs(lost),
                   *point_at(part)))
    raise TopologyError(f"outputs.planning_db.admin_overlay: cutting by units broke the "
                        f"topology: {issue}", Report([issue]))


def unit_fields(unit: np.ndarray, units: Units | None,
                fallback: tuple[str, str]) -> tuple[list[str], list[str]]:
    """XZQDM and XZQMC of features given their unit index (1..n; 0: in no unit).

    Examples
    --------
    >>> u = Units(("1", "2"), ("甲", "乙"), ())
    >>> unit_fields(np.array([2, 0]), u, ("0", "外"))
    (['2', '0'], ['乙', '外'])
    """
    codes = (fallback[0], *units.codes) if units is not None else (fallback[0],)
    names = (fallback[1], *units.names) if units is not None else (fallback[1],)
    return [codes[u] for u in unit], [names[u] for u in unit]


def build(cfg: Config, lines: dict[str, gpd.GeoDataFrame],
          levels: dict[str, list[np.ndarray | Rings]], crs: CRS, units: Units | None,
          level_units: dict[str, list[np.ndarray]] | None = None
          ) -> dict[str, gpd.GeoDataFrame | RingLayer]:
    """The six planning-database layers with their fields filled.

    Features that come with their unit (split on the raster) are delivered as
    they are; the others are given theirs by :func:`overlay`.

    Parameters
    ----------
    cfg : Config
        The run configuration (``outputs.planning_db``, ``study_area``).
    lines : dict of GeoDataFrame
        The ``red_line``, ``farmland`` and ``ugb`` layers (checked, in ``crs``):
        the plain layers, or their pieces by unit with a ``unit`` column (unit
        index 1..n, 0 in no unit). ``ugb`` has ``zone`` and ``zone_name``.
    levels : dict of list of numpy.ndarray or Rings
        Per evaluation result, the polygons of levels 1, 2, 3 (checked, in ``crs``),
        or their rings (traced on a grid in ``crs``).
    crs : pyproj.CRS
        The output CRS.
    units : Units or None
        The administrative units: disjoint and in ``crs`` (:func:`disjoint_units`)
        when some features need :func:`overlay`, else only their codes and names
        are read.
    level_units : dict of list of numpy.ndarray, optional
        Per evaluation result whose features come with their unit, the unit index
        of each feature of ``levels``.

    Returns
    -------
    dict of GeoDataFrame or RingLayer
        By layer name (:data:`sanqu.config.PLANNING_LAYERS`), MultiPolygons: the
        layers whose source is among ``lines`` and ``levels`` (a run delivers the
        lines first, then one evaluation result at a time); a layer of rings
        given with their units stays rings (:class:`sanqu.export.RingLayer`).
    """
    spec = cfg.outputs.planning_db
    sa = cfg.study_area
    fallback = (sa.admin_code or PLACEHOLDER, sa.admin_name or sa.name)
    how = spec.admin_overlay
    min_area = cfg.outputs.topology.min_area_m2
    factor, _, decimals = AREA_UNITS[spec.area_unit]
    if spec.area_decimals is not None:
        decimals = spec.area_decimals
    prefix = spec.bsm_prefix if spec.bsm_prefix is not None else (sa.admin_code or "")[:6]
    out: dict[str, gpd.GeoDataFrame] = {}
    for number, layer in enumerate(PLANNING_LAYERS, start=1):
        source = LAYER_SOURCES[layer][1]
        extra: dict[str, list[str]] = {}
        unit = None
        if source in lines:
            geoms = features(lines[source])
            if "unit" in lines[source]:
                unit = lines[source]["unit"].to_numpy()
            if layer == "CZKFBJ":
                extra = subzone_fields(cfg, lines[source])
        elif source not in levels:
            continue
        else:
            labels = LEVEL_LABELS[source]
            geoms = concat_features(levels[source])
            extra = {spec.level_field: [labels[i] for i, g in enumerate(levels[source])
                                        for _ in range(len(g))]}
            if level_units and source in level_units:
                unit = np.concatenate(level_units[source]).astype(np.int64)
        if unit is None:
            if isinstance(geoms, Rings):
                geoms = geoms.geometries()
            g, codes, names, src = overlay(np.asarray(geoms, dtype=object), units, fallback,
                                           how, min_area)
        else:
            g, src = geoms if isinstance(geoms, Rings) else list(geoms), range(len(geoms))
            codes, names = unit_fields(unit, units, fallback)
        width = 18 - len(prefix) - 2
        data: dict[str, object] = {
            "BSM": [f"{prefix}{number:02d}{i:0{width}d}" for i in range(1, len(g) + 1)],
            "YSDM": [getattr(spec.ysdm, layer)] * len(g),
            "XZQDM": codes,
            "XZQMC": names,
            **{k: [v[s] for s in src] for k, v in extra.items()},
            "MJ": np.round(feature_areas(g) * factor, decimals),
            "BZ": [""] * len(g),
        }
        if isinstance(g, Rings):
            out[layer] = RingLayer(pd.DataFrame(data), g, crs)
            continue
        # Polygons become MultiPolygons as they are written (promote_to_multi), not copied here
        out[layer] = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(np.asarray(g, dtype=object),
                                                                   crs=crs))
    return out


#: UGB sub-zone number → the key of its code in ``outputs.planning_db.subzone_codes``.
SUBZONE_KEYS = {1: "concentrated", 2: "flexible", 3: "special_use"}


def subzone_fields(cfg: Config, ugb: gpd.GeoDataFrame) -> dict[str, list[str]]:
    """GHFQDM (configured code) and GHFQMC (name) of each UGB polygon, from its sub-zone."""
    codes = cfg.outputs.planning_db.subzone_codes
    zones = [int(z) for z in ugb["zone"]]
    return {"GHFQDM": [getattr(codes, SUBZONE_KEYS[z]) for z in zones],
            "GHFQMC": [str(n) for n in ugb["zone_name"]]}


def write(cfg: Config, tmp: Path, layers: dict[str, gpd.GeoDataFrame],
          levels: dict[str, list[np.ndarray]], crs: CRS, units: Units | None,
          level_units: dict[str, list[np.ndarray]] | None = None) -> list[str]:
    """Write planning-database layers to one GeoPackage and, if asked, shapefiles.

    The layers are built by :func:`build` from the checked line ``layers`` and
    evaluation ``levels`` given (either may be empty: layers are added to the
    GeoPackage); every polygon cut by ``units`` is checked (:func:`overlay`).
    Returns the names of the layers written.

    Raises
    ------
    TopologyError
        If cutting the layers by administrative units broke their topology.
    """
    lines = {k: layers[k] for k in LINE_LAYERS if k in layers}
    return write_built(cfg, tmp, build(cfg, lines, levels, crs, units, level_units))


def write_built(cfg: Config, tmp: Path, out: dict[str, gpd.GeoDataFrame | RingLayer]
                ) -> list[str]:
    """Write layers made by :func:`build` (see :func:`write`)."""
    spec = cfg.outputs.planning_db
    gpkg = tmp / spec.gpkg_name
    folder = tmp / Path(spec.gpkg_name).stem
    with vector_env():
        if spec.shapefiles and out:
            folder.mkdir(exist_ok=True)
        for name, df in out.items():
            write_schema_layer(gpkg, name, df, fields_of(name, cfg),
                               shapefile=folder / f"{name}.shp" if spec.shapefiles else None,
                               encoding=cfg.outputs.shapefile_encoding)
    write_gpkg_aliases(gpkg, {n: {f.name: f.alias for f in fields_of(n, cfg)} for n in out})
    return list(out)
