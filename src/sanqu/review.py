"""The review package: QGIS styles, a QGIS project of every layer, the area balance.

A reviewer opens ``review/sanqu.qgs`` and sees every delivered layer with the
usual colours (green ecological space, yellow farmland, red/orange urban land,
the UGB as a dashed purple boundary) and Chinese labels and field aliases. The
same styles travel with the data: a ``.qml`` beside each shapefile (QGIS loads it
with the file) and the ``layer_styles`` table QGIS reads from a GeoPackage.

The QML and project XML are written from templates, not by QGIS, so the output
is byte-identical from run to run; the tests open them in QGIS 3.22.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from pyproj import CRS

from .config import Config
from .evaluate import LEVEL_LABELS
from .export import (
    FIXED_TIMESTAMP,
    LEVEL_COLOURS,
    LINE_LAYERS,
    SPACE_LAYERS,
    ZONE_COLOURS,
    connect_unsynced,
    write_area_table,
)
from .planning_db import LAYER_SOURCES, fields_of

#: QGIS version the templates follow (older and newer 3.x read them).
QGIS_VERSION = "3.22.16-Białowieża"
FONT = "Noto Sans CJK SC"


#: Chinese aliases of the plain fields.
PLAIN_ALIASES = {"id": "编号", "code": "代码", "name": "名称", "area_ha": "面积（公顷）"}



def _rgba(c: tuple[int, ...], alpha: int | None = None) -> str:
    r, g, b, a = (*c[:3], c[3] if len(c) > 3 else 255)
    return f"{r},{g},{b},{a if alpha is None else alpha}"


@dataclass(frozen=True)
class Style:
    """How a layer is drawn and labelled.

    Attributes
    ----------
    fill : str or None
        Fill colour ``r,g,b,a``; None for no fill.
    outline : str
        Outline colour.
    width : float
        Outline width in mm.
    dashed : bool
        Dashed outline.
    label : str
        Field name, or expression when ``expression``.
    expression : bool
        ``label`` is a QGIS expression.
    categories : tuple of (str, str)
        For a categorised layer: ``(value, fill colour)`` on field ``attr``.
    attr : str
        The categorised field.
    """

    fill: str | None
    outline: str
    width: float = 0.26
    dashed: bool = False
    label: str = "name"
    expression: bool = False
    categories: tuple[tuple[str, str], ...] = ()
    attr: str = ""


_LINE_STYLES = {
    "red_line": Style(_rgba((0, 150, 60), 170), "230,0,0,255", 0.5),
    "farmland": Style(_rgba((250, 230, 60), 200), "168,112,0,255", 0.3),
    "ugb": Style(None, "160,0,160,255", 0.8, dashed=True),
}

#: Styles of the plain layers.
PLAIN_STYLES = {
    "eco_space": Style(_rgba(ZONE_COLOURS[1]), "60,60,60,255"),
    "agri_space": Style(_rgba(ZONE_COLOURS[2]), "60,60,60,255"),
    "urban_space": Style(_rgba(ZONE_COLOURS[3]), "60,60,60,255"),
    **_LINE_STYLES,
}


def planning_styles(level_field: str, labels: dict[str, tuple[str, ...]]) -> dict[str, Style]:
    """Styles of the planning-database layers (evaluation results categorised by level)."""
    def levels(result: str) -> Style:
        cats = tuple((name, _rgba(LEVEL_COLOURS[result][i + 1]))
                     for i, name in enumerate(labels[result]))
        return Style(None, "80,80,80,255", 0.1, label=level_field, categories=cats,
                     attr=level_field)

    return {
        "STBHHX": Style(*[getattr(_LINE_STYLES["red_line"], k) for k in ("fill", "outline",
                        "width")], label="'生态保护红线'", expression=True),
        "YJJBNT": Style(*[getattr(_LINE_STYLES["farmland"], k) for k in ("fill", "outline",
                        "width")], label="'永久基本农田'", expression=True),
        "CZKFBJ": Style(None, "160,0,160,255", 0.8, dashed=True, label="GHFQMC"),
        "STBHZYXPJJG": levels("eco_importance"),
        "NYSCSYXPJJG": levels("agri_suitability"),
        "CZJSSYXPJJG": levels("urban_suitability"),
    }


def _symbol(name: str, style: Style, fill: str | None) -> str:
    props = {
        "color": fill or "255,255,255,0", "style": "solid" if fill else "no",
        "outline_color": style.outline, "outline_style": "dash" if style.dashed else "solid",
        "outline_width": f"{style.width:g}", "outline_width_unit": "MM", "joinstyle": "bevel",
    }
    options = "".join(f'<Option type="QString" name="{k}" value="{v}"/>' for k, v in props.items())
    old = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" locked="0" pass="0">'
            f'<Option type="Map">{options}</Option>{old}</layer></symbol>')


def _renderer(style: Style) -> str:
    if style.categories:
        cats = "".join(f'<category render="true" symbol="{i}" value={quoteattr(v)} '
                       f'label={quoteattr(v)}/>' for i, (v, _) in enumerate(style.categories))
        syms = "".join(_symbol(str(i), style, c) for i, (_, c) in enumerate(style.categories))
        return (f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(style.attr)} '
                f'symbollevels="0" enableorderby="0" forceraster="0">'
                f'<categories>{cats}</categories><symbols>{syms}</symbols></renderer-v2>')
    return ('<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" '
            f'forceraster="0"><symbols>{_symbol("0", style, style.fill)}</symbols></renderer-v2>')


def _labeling(style: Style) -> str:
    return ('<labeling type="simple"><settings calloutType="simple">'
            f'<text-style fieldName={quoteattr(style.label)} '
            f'isExpression="{int(style.expression)}" fontFamily="{FONT}" fontSize="9" '
            'fontSizeUnit="Point" textColor="0,0,0,255" textOpacity="1">'
            '<text-buffer bufferDraw="1" bufferSize="0.8" bufferSizeUnits="MM" '
            'bufferColor="255,255,255,255" bufferOpacity="1"/></text-style>'
            '<placement placement="1" centroidInside="1" centroidWhole="0" '
            'fitInPolygonOnly="0" priority="5" dist="0"/>'
            '<rendering drawLabels="1" obstacle="1" labelPerPart="0" minFeatureSize="5" '
            'limitNumLabels="0" maxNumLabels="2000"/></settings></labeling>')


def _aliases(aliases: dict[str, str]) -> str:
    return "<aliases>" + "".join(
        f'<alias field={quoteattr(f)} index="{i}" name={quoteattr(a)}/>'
        for i, (f, a) in enumerate(aliases.items())) + "</aliases>"


def _body(style: Style, aliases: dict[str, str]) -> str:
    return (f"{_renderer(style)}{_labeling(style)}{_aliases(aliases)}"
            "<layerGeometryType>2</layerGeometryType>")


def qml(style: Style, aliases: dict[str, str]) -> str:
    """A QGIS layer style (``.qml``) for a polygon layer.

    Examples
    --------
    >>> text = qml(PLAIN_STYLES["eco_space"], {"name": "名称"})
    >>> '<Option type="QString" name="color" value="56,168,0,255"/>' in text
    True
    >>> '<alias field="name" index="0" name="名称"/>' in text
    True
    """
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="{QGIS_VERSION}" styleCategories="AllStyleCategories" '
            f'labelsEnabled="1">{_body(style, aliases)}</qgis>\n')


def write_gpkg_styles(gpkg: Path, styles: dict[str, str]) -> None:
    """Store each layer's QML as its default style in the GeoPackage's ``layer_styles``.

    This is the table QGIS itself writes ("Save as default" in a GeoPackage) and
    reads when a layer is opened. The table is registered in ``gpkg_contents`` as
    attributes, as QGIS does, so GDAL lists it as a (non-spatial) layer.
    """
    con = connect_unsynced(gpkg)
    try:
        con.executescript("""
            CREATE TABLE IF NOT EXISTS layer_styles (
              id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256),
              f_table_schema TEXT(256), f_table_name TEXT(256), f_geometry_column TEXT(256),
              styleName TEXT(30), styleQML TEXT, styleSLD TEXT, useAsDefault BOOLEAN,
              description TEXT, owner TEXT(30), ui TEXT(30), update_time DATETIME);
        """)
        con.execute("DELETE FROM gpkg_contents WHERE table_name = 'layer_styles'")
        con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, last_change) "
                    "VALUES ('layer_styles', 'attributes', 'layer_styles', ?)",
                    (FIXED_TIMESTAMP,))
        for layer, text in styles.items():
            con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                        "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, "
                        "description, owner, ui, update_time) VALUES "
                        "('', '', ?, 'geom', ?, ?, '', 1, 'sanqu', '', '', ?)",
                        (layer, layer, text, FIXED_TIMESTAMP))
        con.commit()
    finally:
        con.close()


@dataclass(frozen=True)
class ProjectLayer:
    """One layer of the QGIS project.

    Attributes
    ----------
    source : str
        Data source relative to the project file (``../sanqu.gpkg|layername=ugb``).
    name : str
        Name shown in the layer tree (Chinese).
    group : str
        Layer-tree group.
    style : Style or None
        Vector style; None for a raster (drawn with its colour table).
    aliases : dict
        Field aliases.
    crs : pyproj.CRS, optional
        The layer's CRS when it is not the project's (rasters stay on the study grid).
    """

    source: str
    name: str
    group: str
    style: Style | None = None
    aliases: dict[str, str] | None = None
    crs: CRS | None = None


def _srs(crs: CRS) -> str:
    code = crs.to_epsg()
    auth = f"<authid>EPSG:{code}</authid>" if code else ""
    return f"<spatialrefsys><wkt>{escape(crs.to_wkt())}</wkt>{auth}</spatialrefsys>"


def project(layers: list[ProjectLayer], crs: CRS, title: str) -> str:
    """A QGIS project (``.qgs``) opening ``layers`` with their styles, paths relative.

    Examples
    --------
    >>> text = project([ProjectLayer("../zones.tif", "三区", "栅格")], CRS.from_epsg(4527), "t")
    >>> "<authid>EPSG:4527</authid>" in text and "<datasource>../zones.tif</datasource>" in text
    True
    """
    ids = [f"layer_{i:02d}" for i in range(len(layers))]
    groups: dict[str, list[int]] = {}
    for i, lyr in enumerate(layers):
        groups.setdefault(lyr.group, []).append(i)
    tree = "".join(
        f'<layer-tree-group name={quoteattr(g)} checked="Qt::Checked" expanded="1">'
        + "".join(f'<layer-tree-layer id="{ids[i]}" name={quoteattr(layers[i].name)} '
                  f'source={quoteattr(layers[i].source)} '
                  f'providerKey="{"ogr" if layers[i].style else "gdal"}" checked="Qt::Checked" '
                  'expanded="0"/>' for i in members)
        + "</layer-tree-group>" for g, members in groups.items())
    maps = []
    for i, lyr in enumerate(layers):
        common = (f"<id>{ids[i]}</id><datasource>{escape(lyr.source)}</datasource>"
                  f"<layername>{escape(lyr.name)}</layername><srs>{_srs(lyr.crs or crs)}</srs>")
        if lyr.style is None:
            maps.append(f'<maplayer type="raster">{common}<provider>gdal</provider></maplayer>')
        else:
            maps.append(f'<maplayer type="vector" geometry="Polygon" wkbType="MultiPolygon" '
                        f'labelsEnabled="1">{common}<provider encoding="UTF-8">ogr</provider>'
                        f'{_body(lyr.style, lyr.aliases or {})}</maplayer>')
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            f'<qgis version="{QGIS_VERSION}" projectname={quoteattr(title)}>'
            f"<title>{escape(title)}</title><projectCrs>{_srs(crs)}</projectCrs>"
            f'<layer-tree-group>{tree}</layer-tree-group>'
            f"<projectlayers>{''.join(maps)}</projectlayers>"
            '<properties><Paths><Absolute type="bool">false</Absolute></Paths>'
            '<SpatialRefSys><ProjectionsEnabled type="int">1</ProjectionsEnabled></SpatialRefSys>'
            '</properties>'
            "</qgis>\n")


def area_balance(raster_ha: dict[str, float], vector_ha: dict[str, float],
                 outside_ha: dict[str, float], names: dict[str, str],
                 within: dict[str, str]) -> list[dict[str, object]]:
    """Rows of ``review/area_balance.csv``, saying whether the pieces add up.

    Parameters
    ----------
    raster_ha, vector_ha : dict
        Area per layer from the raster cells and from the delivered polygons;
        ``study_area`` included.
    outside_ha : dict
        Per line, the area of its polygons outside its space's polygons (as the
        topology gate measured it).
    names : dict
        Chinese name per layer.
    within : dict
        Line → space.

    Returns
    -------
    list of dict
        Per layer: raster and vector areas and their difference; a ``spaces_total``
        row compared with the study area; per line the area outside its space.
        ``check`` is ``ok`` or what is wrong.

    Examples
    --------
    >>> rows = area_balance({"study_area": 10, "a": 6, "b": 4, "l": 2},
    ...                     {"study_area": 10, "a": 6.1, "b": 3.9, "l": 2}, {"l": 0},
    ...                     {"study_area": "研究区", "a": "甲", "b": "乙", "l": "线"}, {"l": "a"})
    >>> [(r["layer"], r["check"]) for r in rows]
    [('study_area', 'ok'), ('a', 'ok'), ('b', 'ok'), ('spaces_total', 'ok'), ('l', 'ok')]
    """
    spaces = [k for k in raster_ha if k != "study_area" and k not in within]
    tol = 1e-4  # ha: 1 m²

    def row(key: str, name: str, r: float, v: float, **extra: object) -> dict[str, object]:
        return {"layer": key, "name": name, "raster_ha": round(r, 4), "vector_ha": round(v, 4),
                "difference_ha": round(v - r, 4),
                "difference_pct": round(100 * (v - r) / r, 4) if r else 0.0,
                "outside_space_ha": extra.get("outside", ""), "check": extra.get("check", "ok")}

    rows = [row("study_area", names["study_area"], raster_ha["study_area"],
                vector_ha["study_area"])]
    rows += [row(k, names[k], raster_ha[k], vector_ha[k]) for k in spaces]
    total_r = sum(raster_ha[k] for k in spaces)
    total_v = sum(vector_ha[k] for k in spaces)
    bad = (abs(total_r - raster_ha["study_area"]) > tol
           or abs(total_v - vector_ha["study_area"]) > tol)
    rows.append(row("spaces_total", "三区合计", total_r, total_v,
                    check="spaces do not add up to the study area" if bad else "ok"))
    for line, space in within.items():
        outside = round(outside_ha[line], 4)
        rows.append(row(line, names[line], raster_ha[line], vector_ha[line], outside=outside,
                        check=f"{outside} ha outside {space}" if outside > tol else "ok"))
    return rows


def write(cfg: Config, tmp: Path, crs: CRS, areas: list[dict[str, object]],
          planning: list[str] | None, raster_crs: CRS, outside: dict[str, float]) -> None:
    """Write the review package: styles everywhere, ``review/sanqu.qgs``, the area balance.

    Parameters
    ----------
    cfg : Config
        The run configuration.
    tmp : Path
        The output folder, holding the GeoPackages already.
    crs : pyproj.CRS
        CRS of the vector outputs (the project's CRS).
    areas : list of dict
        The rows of ``areas.csv`` (raster and vector area per layer).
    planning : list of str or None
        The planning-database layers written (None when it is off).
    raster_crs : pyproj.CRS
        CRS of the GeoTIFFs.
    outside : dict
        Per line, its area (m²) outside its space, as the topology gate measured it
        (:attr:`sanqu.topology.Report.outside`).
    """
    folder = tmp / "review"
    (folder / "styles").mkdir(parents=True)
    entries: list[ProjectLayer] = []
    names = {**SPACE_LAYERS, **LINE_LAYERS}
    plain = {k: qml(PLAIN_STYLES[k], PLAIN_ALIASES) for k in names}
    gpkg = cfg.outputs.gpkg_name
    for key, text in plain.items():
        (folder / "styles" / f"{key}.qml").write_text(text, encoding="utf-8")
        entries.append(ProjectLayer(f"../{gpkg}|layername={key}", names[key], "三区三线",
                                    PLAIN_STYLES[key], PLAIN_ALIASES))
    for key in LINE_LAYERS:
        (tmp / f"{key}.qml").write_text(plain[key], encoding="utf-8")
    write_gpkg_styles(tmp / gpkg, plain)
    if planning is not None:
        spec = cfg.outputs.planning_db
        styles = planning_styles(spec.level_field, LEVEL_LABELS)
        texts = {}
        for name in planning:
            aliases = {f.name: f.alias for f in fields_of(name, cfg)}
            texts[name] = qml(styles[name], aliases)
            (folder / "styles" / f"{name}.qml").write_text(texts[name], encoding="utf-8")
            if spec.shapefiles:
                stem = Path(spec.gpkg_name).stem
                (tmp / stem / f"{name}.qml").write_text(texts[name], encoding="utf-8")
            entries.append(ProjectLayer(f"../{spec.gpkg_name}|layername={name}",
                                        f"{name} {LAYER_SOURCES[name][0]}",
                                        "规划数据库", styles[name], aliases))
        write_gpkg_styles(tmp / spec.gpkg_name, texts)
    for tif, label in (("zones.tif", "三区"), ("eco_importance.tif", "生态保护重要性"),
                       ("agri_suitability.tif", "农业生产适宜性"),
                       ("urban_suitability.tif", "城镇建设适宜性")):
        entries.append(ProjectLayer(f"../{tif}", label, "栅格", crs=raster_crs))
    (folder / "sanqu.qgs").write_text(project(entries, crs, cfg.name), encoding="utf-8")
    raster = {str(r["layer"]): float(r["area_ha"]) for r in areas}
    vector = {str(r["layer"]): float(r["vector_area_ha"]) for r in areas}
    outside_ha = {line: area / 10_000 for line, area in outside.items()}
    rows = area_balance(raster, vector, outside_ha, {"study_area": "研究区", **names},
                        dict(zip(LINE_LAYERS, SPACE_LAYERS, strict=True)))
    write_area_table(folder / "area_balance.csv", rows)
