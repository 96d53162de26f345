"""Topology gate: the checks every vector layer passes before it is written.

The gate runs on the geometries as they will be delivered (after smoothing and
reprojection). It knows layers only as arrays of polygons and a few
:class:`Rules` saying how they relate:

- every polygon is valid (OGC) and not empty: no ring touching itself at a
  corner, no bow-tie;
- no two polygons of one layer overlap;
- the layers of a *coverage* tile the study area: no overlap between them, no
  gap, nothing outside it;
- *disjoint* layers (the three lines) never overlap one another;
- a layer lies *within* another (each line inside its space);
- no polygon is smaller than the minimum mapping unit (a sliver).

:func:`gate` raises :class:`TopologyError` with the report when a check fails,
or, when asked, repairs (:func:`repair`) and checks again. Overlaps go to the
layer listed first (the policy order: ecological before agricultural before
urban, red line before farmland before the UGB); gaps and slivers of a coverage
join the neighbour sharing the longest border (methodology.md §4.4); slivers
of other layers are dropped; a layer leaking out of its container is clipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy import ndimage

from .check import overlap_pairs
from .errors import SanquError
from .grid import Grid
from .lattice import Cover, Rings, any_without, cover, or_bits, plane_flags, rings_of

#: Areas below this (m²) are floating-point noise, not overlaps or gaps.
EPS_M2 = 0.01


class TopologyError(SanquError, ValueError):
    """The vector outputs fail the topology gate; ``report`` lists every problem."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report

    def __reduce__(self) -> tuple[type, tuple[str, Report]]:
        """Pickled with its report (raised in the writer process, re-raised in the run)."""
        return type(self), (str(self), self.report)


@dataclass(frozen=True)
class Issue:
    """One topology problem.

    Attributes
    ----------
    kind : str
        ``invalid``, ``empty``, ``overlap``, ``gap``, ``outside`` or ``sliver``.
    layer : str
        The layer (or ``a/b`` for a problem between two layers).
    detail : str
        What is wrong, in words (feature numbers are 1-based positions).
    area_m2 : float
        Area concerned (0 for invalid or empty polygons).
    x, y : float
        A point on the problem, in the layer's CRS.
    """

    kind: str
    layer: str
    detail: str
    area_m2: float
    x: float
    y: float

    def __str__(self) -> str:
        return (f"{self.kind} in {self.layer}: {self.detail} "
                f"({self.area_m2:.2f} m² near {self.x:.1f}, {self.y:.1f})")


@dataclass
class Report:
    """Issues found by :func:`check`; ``repaired`` holds those :func:`repair` fixed.

    ``outside`` gives, per ``within`` rule ``(inner, outer)`` checked, the area of
    ``inner`` outside ``outer`` (0 when it lies inside).
    """

    issues: list[Issue] = field(default_factory=list)
    repaired: list[Issue] = field(default_factory=list)
    outside: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no issue is left."""
        return not self.issues

    def counts(self, issues: list[Issue] | None = None) -> dict[str, int]:
        """Number of issues per kind."""
        out: dict[str, int] = {}
        for i in self.issues if issues is None else issues:
            out[i.kind] = out.get(i.kind, 0) + 1
        return out

    def summary(self) -> str:
        """One line: counts per kind and the first issue."""
        if self.ok:
            return "no issue"
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items()))
        return f"{counts}; first: {self.issues[0]}"

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data for the manifest."""
        return {"issues": [str(i) for i in self.issues],
                "repaired": [str(i) for i in self.repaired],
                "repaired_counts": self.counts(self.repaired)}


@dataclass(frozen=True)
class Rules:
    """How layers relate.

    Attributes
    ----------
    coverages : tuple of tuple of str
        Groups of layers that together tile the study area, in priority order.
    disjoint : tuple of str
        Layers that must not overlap one another, in priority order.
    within : tuple of (str, str)
        ``(inner, outer)``: every polygon of ``inner`` lies inside ``outer``.
    """

    coverages: tuple[tuple[str, ...], ...] = ()
    disjoint: tuple[str, ...] = ()
    within: tuple[tuple[str, str], ...] = ()


Layers = dict[str, "np.ndarray | Rings"]


def _polygons(layer: np.ndarray | Rings) -> np.ndarray:
    """A layer as GEOS polygons (rings made into them: where the overlays need them)."""
    return layer.geometries() if isinstance(layer, Rings) else layer


@dataclass(frozen=True)
class CellGrid:
    """The grid the layers were traced on, with the study area as its cells.

    Given to :func:`check`, it lets layers whose polygons all lie on the cell
    edges be related cell by cell (:func:`sanqu.lattice.cover`): the same
    findings as overlaying the polygons, in time linear in the area.

    Attributes
    ----------
    grid : Grid
        The raster grid, in the layers' CRS.
    mask : numpy.ndarray of bool
        The study area.
    """

    grid: Grid
    mask: np.ndarray


def point_at(geom: shapely.Geometry) -> tuple[float, float]:
    """A point on ``geom`` (its surface for a polygon) as ``(x, y)``; the origin if empty."""
    p = shapely.point_on_surface(geom) if not geom.is_empty else shapely.Point(0, 0)
    return float(p.x), float(p.y)


def _issue(kind: str, layer: str, detail: str, geom: shapely.Geometry) -> Issue:
    area = float(shapely.area(geom)) if geom.geom_type in ("Polygon", "MultiPolygon",
                                                           "GeometryCollection") else 0.0
    return Issue(kind, layer, detail, area, *point_at(geom))


def polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of any geometry (a valid Polygon/MultiPolygon or empty)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def union(geoms: np.ndarray) -> shapely.Geometry:
    """Union of polygons; fast when they form a clean coverage.

    ``coverage_union_all`` only drops shared edges (milliseconds where
    ``union_all`` nodes everything); its result is kept when it is valid and its
    area is the sum of the parts, else the full overlay is computed.

    Examples
    --------
    >>> float(union(np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])).area)
    2.0
    >>> float(union(np.array([shapely.box(0, 0, 2, 1), shapely.box(1, 0, 3, 1)])).area)
    3.0
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return shapely.Polygon()
    try:
        merged = shapely.coverage_union_all(geoms)  # overlapping input comes out invalid
        if merged.is_valid and abs(merged.area - shapely.area(geoms).sum()) <= max(
                EPS_M2, 1e-12 * merged.area):
            return merged
    except shapely.errors.GEOSException:
        pass
    return shapely.union_all(geoms)


#: Threads checking validity (GEOS releases the GIL); vertices below which one is enough.
THREADS, THREAD_MIN_VERTICES = min(2, os.cpu_count() or 1), 200_000


def valid(geoms: np.ndarray, predicate: Callable[[np.ndarray], np.ndarray] = shapely.is_valid
          ) -> np.ndarray:
    """``shapely.is_valid`` (or another predicate) on :data:`THREADS` threads.

    The work is split by vertices; GEOS releases the GIL.

    Examples
    --------
    >>> bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    >>> valid(np.array([shapely.box(0, 0, 1, 1), bowtie]))
    array([ True, False])
    """
    size = shapely.get_num_coordinates(geoms)
    if THREADS < 2 or size.sum() < THREAD_MIN_VERTICES:
        return predicate(geoms)
    order = np.argsort(-size, kind="stable")
    share = [order[k::THREADS] for k in range(THREADS)]  # dealt out, largest first
    out = np.empty(len(geoms), dtype=bool)
    with ThreadPoolExecutor(THREADS) as pool:
        for idx, result in zip(share, pool.map(lambda i: predicate(geoms[i]), share),
                               strict=True):
            out[idx] = result
    return out


def _invalid(geoms: np.ndarray) -> np.ndarray:
    """Features with an invalid part, by GEOS (part by part: a huge MultiPolygon is slow)."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    bad = np.zeros(len(geoms), dtype=bool)
    bad[owner[~valid(parts)]] = True
    return bad


def _reason(geom: shapely.Geometry) -> str:
    """Why a feature is invalid: its first invalid part's reason (GEOS), or its parts touching."""
    for reason in shapely.is_valid_reason(shapely.get_parts(geom)):
        if reason != "Valid Geometry":
            return reason
    return "two of its parts share an edge"


def _valid(geoms: np.ndarray) -> np.ndarray:
    """Valid copies (make_valid, polygonal parts) so one bad polygon cannot stop the checks."""
    out = np.array(geoms, dtype=object)
    bad = ~shapely.is_valid(out) if len(out) else np.zeros(0, dtype=bool)
    out[bad] = [polygonal(shapely.make_valid(g)) for g in out[bad]]
    return out


def _pieces(geom: shapely.Geometry) -> np.ndarray:
    parts = shapely.get_parts(polygonal(geom))
    return parts[shapely.area(parts) > EPS_M2] if len(parts) else parts


def _overlap_pairs(a: np.ndarray, b: np.ndarray | None = None
                   ) -> list[tuple[int, int, shapely.Geometry]]:
    """Pairs ``(i, j)`` sharing more than :data:`EPS_M2` of area, with the shared part."""
    other = a if b is None else b
    return [(i, j, shapely.intersection(a[i], other[j]))
            for i, j, _ in overlap_pairs(a, b, tolerance=EPS_M2)]


def check(layers: Layers, rules: Rules, study_area: shapely.Geometry,
          min_area: float, cells: CellGrid | None = None) -> Report:
    """Every problem of the layers, in a stable order.

    Parameters
    ----------
    layers : dict of numpy.ndarray or Rings
        Polygons per layer name, or their rings on ``cells``' grid (traced, so
        no feature is empty; made into GEOS polygons only to describe a problem,
        or without ``cells``).
    rules : Rules
        Coverages, disjoint layers and containments to check.
    study_area : shapely.Geometry
        The area the coverages must tile.
    min_area : float
        Minimum mapping unit in square CRS units; smaller polygons are slivers.
    cells : CellGrid, optional
        The grid the layers were traced on: coverages, disjoint layers and
        containments whose polygons all lie on its cell edges are checked cell by
        cell against ``cells.mask`` (which must be ``study_area``'s cells), the
        others by overlay.

    Returns
    -------
    Report

    Examples
    --------
    >>> a, b = shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)
    >>> rules = Rules(coverages=(("a", "b"),))
    >>> check({"a": np.array([a]), "b": np.array([b])}, rules, shapely.box(0, 0, 20, 10), 1).ok
    True
    >>> bowtie = shapely.Polygon([(10, 0), (20, 10), (20, 0), (10, 10)])
    >>> report = check({"a": np.array([a]), "b": np.array([bowtie])}, rules,
    ...                shapely.box(0, 0, 20, 10), 1)
    >>> report.counts()
    {'invalid': 1, 'gap': 2}
    """
    issues: list[Issue] = []
    kept: Layers = {}
    for name, geoms in layers.items():
        if isinstance(geoms, Rings) and cells is not None:
            kept[name] = geoms
            continue
        geoms = np.asarray(_polygons(geoms), dtype=object)
        empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        for k in np.flatnonzero(empty):
            issues.append(Issue("empty", name, f"feature {k + 1} has no geometry", 0.0, 0.0, 0.0))
        kept[name] = geoms[~empty]
    on_cells = _OnCells(cells) if cells is not None else None
    ok = on_cells.paint(kept, rules) if on_cells is not None else {}
    fixed: Layers = {}
    for name, geoms in kept.items():
        if isinstance(geoms, Rings):
            if name in ok and ok[name].all() and (geoms.areas() >= min_area).all():
                fixed[name] = geoms
                if name not in on_cells.bit:
                    on_cells.add(name, cover(geoms, cells.grid))
                continue
            geoms = geoms.geometries()  # a problem to describe: as GEOS polygons
        bad = ~ok[name] if name in ok else _invalid(geoms)
        for k in np.flatnonzero(bad):
            issues.append(_issue("invalid", name, f"feature {k + 1}: {_reason(geoms[k])}",
                                 geoms[k]))
        fixed[name] = geoms.copy()
        fixed[name][bad] = [polygonal(shapely.make_valid(g)) for g in geoms[bad]]
        if on_cells is not None and name not in on_cells.bit:  # painted alone, as repaired
            on_cells.add(name, cover(fixed[name], cells.grid))
        for k, area in enumerate(shapely.area(fixed[name]), start=1):
            if area < min_area:
                issues.append(_issue("sliver", name, f"feature {k} is below the minimum mapping "
                                     f"unit of {min_area:g} m²", fixed[name][k - 1]))
    del kept
    shapely.prepare(study_area)
    tol = max(EPS_M2, 1e-9 * study_area.area)
    for group in rules.coverages:
        found = on_cells.coverage(group) if on_cells is not None else None
        if found is not None:
            issues += found
            continue
        parts = np.concatenate([_polygons(fixed[n]) for n in group])
        area = float(shapely.area(parts).sum())
        inside = bool(shapely.covered_by(parts, study_area).all()) if len(parts) else True
        if inside and abs(area - study_area.area) <= tol:
            continue  # inside the study area and adding up to it: no gap, no overlap
        covered = union(parts)
        if area - covered.area > tol:
            issues += _overlaps_in(group, fixed)
        label = "/".join(group)
        for g in _pieces(shapely.difference(study_area, covered)):
            issues.append(_issue("gap", label, "part of the study area is in none of the layers",
                                 g))
        for g in _pieces(shapely.difference(covered, study_area)):
            issues.append(_issue("outside", label, "polygons reach outside the study area", g))
    in_coverage = {n for g in rules.coverages for n in g}
    for name in fixed:
        if name not in in_coverage and name not in rules.disjoint:
            found = on_cells.overlaps(name) if on_cells is not None else None
            issues += _overlaps_in((name,), fixed) if found is None else found
    found = on_cells.disjoint(rules.disjoint) if on_cells is not None else None
    if found is not None:
        issues += found
    elif rules.disjoint:
        lines = np.concatenate([_polygons(fixed[n]) for n in rules.disjoint])
        if len(lines) and shapely.area(lines).sum() - union(lines).area > tol:
            issues += _overlaps_in(rules.disjoint, fixed)
    outside = {}
    for inner, outer in rules.within:
        found = on_cells.within(inner, outer) if on_cells is not None else None
        if found is not None:
            outside[(inner, outer)] = sum(i.area_m2 for i in found)
            issues += found
            continue
        container = union(_polygons(fixed[outer]))
        shapely.prepare(container)
        inside = _polygons(fixed[inner])
        loose = inside[~shapely.covered_by(inside, container)]
        out = shapely.difference(union(loose), container) if len(loose) else shapely.Polygon()
        outside[(inner, outer)] = float(out.area)
        for g in _pieces(out):
            issues.append(_issue("outside", inner, f"lies outside {outer}", g))
    return Report(issues, outside=outside)


class _OnCells:
    """The cell-by-cell checks of :func:`check`.

    Which layers cover each cell is kept as bits (a byte per cell for each eight
    layers); a layer off the cell edges has none, and the checks involving it
    answer None (the caller overlays polygons instead).
    """

    def __init__(self, cells: CellGrid) -> None:
        self.cells = cells
        self.planes: list[np.ndarray] = []
        self.bit: dict[str, tuple[int, int]] = {}  # layer -> (plane, bit)
        self.overlap: dict[str, list[Issue]] = {}  # layer -> overlaps of its own polygons

    def _next_bit(self, name: str) -> np.uint8:
        k = len(self.bit)
        if k % 8 == 0:
            self.planes.append(np.zeros(self.cells.mask.shape, dtype=np.uint8))
        self.bit[name] = (k // 8, k % 8)
        self.overlap[name] = []
        return np.uint8(1 << (k % 8))

    def paint(self, layers: Layers, rules: Rules) -> dict[str, np.ndarray]:
        """Paint the layers of each group of ``rules`` together; validity of their features.

        One :func:`sanqu.lattice.cover` per coverage or disjoint group (then per
        other layer) checks every feature of its layers at once. A group whose
        features are all valid and cover each cell at most once gets its layers'
        bits from the paint; otherwise its layers are left to be painted one by
        one (after repair, by :meth:`add`).

        Returns
        -------
        dict of numpy.ndarray
            Per layer checked on the cells, the validity of each feature; a layer
            off the cell edges, or in a group with overlaps, is absent.
        """
        ok: dict[str, np.ndarray] = {}
        done: set[str] = set()
        for group in (*rules.coverages, rules.disjoint, *((n,) for n in layers)):
            group = tuple(n for n in group if n in layers and n not in done)
            if group:
                done.update(group)
                ok.update(self._paint_group(group, layers))  # its rasters freed on return
        return ok

    def _paint_group(self, group: tuple[str, ...], layers: Layers) -> dict[str, np.ndarray]:
        """:meth:`paint` for one group: its layers' validity, and their bits if all is well."""
        grid = self.cells.grid
        if any(isinstance(layers[n], Rings) for n in group):
            read = [rings_of(layers[n], grid) for n in group]
            rings = None if any(r is None for r in read) else Rings.concat(read, grid)
            del read
        else:  # GEOS polygons, read in one go
            rings = rings_of(np.concatenate([layers[n] for n in group]), grid)
        found = None if rings is None else cover(rings, grid)
        del rings
        if found is None or found.valid is None:
            return {}  # off the cell edges, or overlapping: GEOS, then one by one
        ends = np.cumsum([0] + [len(layers[n]) for n in group])
        ok = {n: found.valid[a:b] for n, a, b in zip(group, ends[:-1], ends[1:], strict=True)}
        if found.paint is None or not found.valid.all():
            return ok
        bits = {n: self._next_bit(n) for n in group}
        for k, plane in enumerate(self.planes):
            lut = np.zeros(ends[-1] + 1, dtype=np.uint8)  # paint -> this plane's bits
            for n, a, b in zip(group, ends[:-1], ends[1:], strict=True):
                if self.bit[n][0] == k:
                    lut[a + 1:b + 1] = bits[n]
            if lut.any():
                or_bits(plane, found.paint, lut)
        return ok

    def add(self, name: str, found: Cover | None) -> None:
        """Record the cells a layer covers (nothing when it is off the cell edges)."""
        if found is None:
            return
        bit = self._next_bit(name)
        count = found.count if found.paint is None else found.paint > 0
        self.planes[self.bit[name][0]][count > 0] |= bit
        self.overlap[name] = self._issues("overlap", name, "cells covered by two of its "
                                          "polygons", count > 1)

    def overlaps(self, name: str) -> list[Issue] | None:
        """Overlaps between the polygons of one layer (reported once)."""
        return self.overlap.pop(name, []) if name in self.bit else None

    def _here(self, name: str) -> np.ndarray:
        plane, bit = self.bit[name]
        return (self.planes[plane] >> bit) & 1

    def _count(self, group: tuple[str, ...]) -> tuple[np.ndarray, list[Issue]] | None:
        """Layers covering each cell, and the overlaps inside each layer."""
        if not all(n in self.bit for n in group):
            return None
        layers_here = np.zeros(self.cells.mask.shape, dtype=np.uint8)
        issues: list[Issue] = []
        for name in group:
            layers_here += self._here(name)
            issues += self.overlaps(name)
        return layers_here, issues

    def _flags(self, group: tuple[str, ...]) -> tuple[bool, bool, bool] | None:
        """:func:`sanqu.lattice.plane_flags` of a group whose bits share one plane, else None."""
        planes = {self.bit[n][0] for n in group}
        if len(planes) != 1:
            return None
        bits = sum(1 << self.bit[n][1] for n in group)
        return plane_flags(self.planes[planes.pop()], self.cells.mask, bits)

    def _clean(self, group: tuple[str, ...], coverage: bool) -> list[Issue] | None:
        """The overlaps inside the group's layers when, cell by cell, nothing else is wrong.

        None when a cell is covered twice (or, for a ``coverage``, the study area
        has a gap or a layer reaches outside it): the caller then finds where.
        """
        flags = self._flags(group) if all(n in self.bit for n in group) else None
        if flags is None or flags[0] or (coverage and (flags[1] or flags[2])):
            return None
        return [i for name in group for i in self.overlaps(name)]

    def coverage(self, group: tuple[str, ...]) -> list[Issue] | None:
        """Overlaps, gaps and parts outside the study area of a coverage."""
        clean = self._clean(group, coverage=True)
        if clean is not None:
            return clean
        counted = self._count(group)
        if counted is None:
            return None
        layers_here, issues = counted
        label = "/".join(group)
        mask = self.cells.mask
        issues += self._issues("overlap", label, "cells in two of the layers", layers_here > 1)
        issues += self._issues("gap", label, "part of the study area is in none of the layers",
                               mask & (layers_here == 0))
        issues += self._issues("outside", label, "polygons reach outside the study area",
                               ~mask & (layers_here > 0))
        return issues

    def disjoint(self, group: tuple[str, ...]) -> list[Issue] | None:
        """Overlaps between (and inside) layers that must not overlap."""
        clean = self._clean(group, coverage=False) if group else None
        if clean is not None:
            return clean
        counted = self._count(group) if group else None
        if counted is None:
            return None
        layers_here, issues = counted
        return issues + self._issues("overlap", "/".join(group), "cells in two of the layers",
                                     layers_here > 1)

    def within(self, inner: str, outer: str) -> list[Issue] | None:
        """Parts of ``inner`` outside ``outer``."""
        if inner not in self.bit or outer not in self.bit:
            return None
        (a, i), (b, o) = self.bit[inner], self.bit[outer]
        if not any_without(self.planes[a], np.uint8(1 << i), self.planes[b], np.uint8(1 << o)):
            return []
        return self._issues("outside", inner, f"lies outside {outer}",
                            self._here(inner) > self._here(outer))

    def _issues(self, kind: str, layer: str, detail: str, bad: np.ndarray) -> list[Issue]:
        """One issue per 4-connected patch of ``bad`` cells."""
        if not bad.any():
            return []
        labels, n = ndimage.label(bad)
        flat = np.flatnonzero(labels)
        patch, first, size = np.unique(labels.reshape(-1)[flat], return_index=True,
                                       return_counts=True)
        rows, cols = np.divmod(flat[first], bad.shape[1])
        x, y = self.cells.grid.transform @ (cols + 0.5, rows + 0.5)
        cell = self.cells.grid.cell_area
        return [Issue(kind, layer, f"{detail} ({k} cells)", float(k * cell), float(px), float(py))
                for k, px, py in zip(size, x, y, strict=True)]


def _overlaps_in(group: tuple[str, ...], fixed: Layers) -> list[Issue]:
    """Overlaps inside each layer of ``group`` and between its layers."""
    found = []
    for x, a in enumerate(group):
        for i, j, g in _overlap_pairs(_polygons(fixed[a])):
            found.append(_issue("overlap", a, f"features {i + 1} and {j + 1} overlap", g))
        for b in group[x + 1:]:
            for i, j, g in _overlap_pairs(_polygons(fixed[a]), _polygons(fixed[b])):
                found.append(_issue("overlap", f"{a}/{b}",
                                    f"{a} feature {i + 1} overlaps {b} feature {j + 1}", g))
    return found


def _merge_into_neighbour(piece: shapely.Geometry, pool: list[list[shapely.Geometry]]) -> bool:
    """Union ``piece`` into the polygon of ``pool`` sharing the longest border with it."""
    best, best_len = None, 0.0
    edge = piece.boundary
    for li, geoms in enumerate(pool):
        for gi, g in enumerate(geoms):
            if not g.is_empty and shapely.intersects(edge, g):
                length = shapely.length(shapely.intersection(edge, g.boundary))
                if length > best_len:
                    best, best_len = (li, gi), length
    if best is None:
        return False
    li, gi = best
    pool[li][gi] = polygonal(shapely.union(pool[li][gi], piece))
    return True


def _explode(geoms: list[shapely.Geometry]) -> list[shapely.Geometry]:
    return [p for g in geoms for p in _pieces(g)]


def _subtract(geoms: list[shapely.Geometry], mask: shapely.Geometry) -> list[shapely.Geometry]:
    if mask.is_empty:
        return geoms
    return [polygonal(shapely.difference(g, mask)) if shapely.intersects(g, mask) else g
            for g in geoms]


def repair(layers: Layers, rules: Rules, study_area: shapely.Geometry,
           min_area: float) -> Layers:
    """Fix what :func:`check` finds, following the priorities of :class:`Rules`.

    Coverages first: invalid polygons are made valid, overlaps go to the earlier
    polygon (earlier layer, then earlier feature), anything outside the study area
    is cut off, gaps and slivers join the neighbour with the longest shared border.
    Then the other layers: clipped to their container, overlaps removed from the
    later layer, slivers dropped. Polygons come out as single parts.

    Examples
    --------
    >>> a, b = shapely.box(0, 0, 10, 10), shapely.box(8, 0, 20, 10)  # overlapping by 20
    >>> rules = Rules(coverages=(("a", "b"),))
    >>> out = repair({"a": np.array([a]), "b": np.array([b])}, rules, shapely.box(0, 0, 20, 10), 1)
    >>> [float(g.area) for g in out["a"]], [float(g.area) for g in out["b"]]
    ([100.0], [100.0])
    """
    work: dict[str, list[shapely.Geometry]] = {
        n: [g for g in _valid(np.asarray(v, dtype=object)) if g is not None and not g.is_empty]
        for n, v in layers.items()}
    in_cov = [n for group in rules.coverages for n in group]
    order = [*in_cov, *[n for n in rules.disjoint if n not in in_cov],
             *[n for n in work if n not in in_cov and n not in rules.disjoint]]
    # overlaps inside each layer: the later feature loses
    for name in order:
        kept: list[shapely.Geometry] = []
        for g in work[name]:
            near = [k for k in kept if shapely.intersects(k, g)]
            kept.append(polygonal(shapely.difference(g, shapely.union_all(near))) if near else g)
        work[name] = _explode(kept)
    for group in rules.coverages:
        taken = shapely.Polygon()
        for name in group:
            clipped = [polygonal(shapely.intersection(g, study_area)) for g in work[name]]
            work[name] = _explode(_subtract(clipped, taken))
            taken = shapely.union_all([taken, *work[name]])
        pool = [work[n] for n in group]
        for gap in _pieces(shapely.difference(study_area, taken)):
            _merge_into_neighbour(gap, pool)
        for li, name in enumerate(group):
            small = [g for g in pool[li] if g.area < min_area]
            pool[li] = [g for g in pool[li] if g.area >= min_area]
            for g in small:
                if not _merge_into_neighbour(g, pool):
                    pool[li].append(g)  # an island below the unit: nothing to merge into
            work[name] = _explode(pool[li])
    for inner, outer in rules.within:
        container = shapely.union_all(work[outer])
        work[inner] = _explode([polygonal(shapely.intersection(g, container))
                                for g in work[inner]])
    taken = shapely.Polygon()
    for name in rules.disjoint:
        work[name] = _explode(_subtract(work[name], taken))
        taken = shapely.union_all([taken, *work[name]])
    for name in order:
        if name not in in_cov:
            work[name] = [g for g in work[name] if g.area >= min_area]
    return {n: np.array(work[n], dtype=object) for n in layers}


def _names(rules: Rules) -> list[str]:
    names = [n for g in rules.coverages for n in g] + list(rules.disjoint)
    names += [n for pair in rules.within for n in pair]
    return list(dict.fromkeys(names))


def _affected(rules: Rules, touched: set[str]) -> Rules:
    """The part of ``rules`` that involves the ``touched`` layers (whole groups of them)."""
    coverages = [g for g in rules.coverages if touched & set(g)]
    lines = set(rules.disjoint) | {n for pair in rules.within for n in pair}
    if touched & lines or any(set(g) & lines for g in coverages):
        covered = {n for g in coverages for n in g}
        coverages += [g for g in rules.coverages if set(g) & lines and not set(g) <= covered]
        return Rules(tuple(coverages), rules.disjoint, rules.within)
    return Rules(tuple(coverages))


def gate(layers: Layers, rules: Rules, study_area: shapely.Geometry, min_area: float, *,
         repair_failures: bool = False, label: str = "outputs",
         cells: CellGrid | None = None) -> tuple[Layers, Report]:
    """Check the layers; stop on problems, or repair them and check again.

    Parameters
    ----------
    layers, rules, study_area, min_area, cells
        As for :func:`check`.
    repair_failures : bool
        Repair instead of stopping (``outputs.topology.on_failure: repair``).
    label : str
        What is being checked, for the message.

    Returns
    -------
    layers : dict of numpy.ndarray
        The input layers, or the repaired ones.
    report : Report
        Empty ``issues``; ``repaired`` lists what was fixed.

    Raises
    ------
    TopologyError
        When problems are found and not repaired, or remain after repair.
    """
    report = check(layers, rules, study_area, min_area, cells)
    if report.ok:
        return layers, report
    if not repair_failures:
        raise TopologyError(
            f"outputs.topology: {label} fail the topology gate: {report.summary()} "
            "(set outputs.topology.on_failure: repair to fix them)", report)
    touched = {part for i in report.issues for part in i.layer.split("/")}
    sub = _affected(rules, touched)
    fixed = {**layers, **repair({k: _polygons(layers[k]) for k in _names(sub)}, sub, study_area,
                                min_area)}
    after = check(fixed, rules, study_area, min_area, cells)
    if not after.ok:
        raise TopologyError(
            f"outputs.topology: {label} still fail the topology gate after repair: "
            f"{after.summary()}", after)
    return fixed, Report([], report.issues, after.outside)
