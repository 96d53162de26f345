"""Run configuration: load one YAML file into frozen, validated objects.

A config names the inputs, the derived factors, the evaluation rules, the
allocation and line rules, the areas/quotas and the outputs. It is validated
once on load; every error names the key, the value and what was expected::

    configs/x.yaml: evaluation.agri_suitability.steps.base.table: expected 5 rows, got 4

Paths in the file are relative to the file's own folder.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

#: Names of the three evaluation results, in the order ecology, agriculture, urban.
RESULTS = ("eco_importance", "agri_suitability", "urban_suitability")

#: Names of the three spaces (zones) with their raster codes.
SPACES = {"ecological": 1, "agricultural": 2, "urban": 3}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Area units accepted in config values, as hectares per unit (1 ha = 15 亩).
AREA_UNITS = {"ha": 1.0, "m2": 1e-4, "m²": 1e-4, "km2": 100.0, "km²": 100.0, "mu": 1 / 15,
              "亩": 1 / 15}


def area_ha(value: Any) -> Any:
    """An area in hectares: a number is hectares, a string carries its unit.

    Examples
    --------
    >>> [round(area_ha(v), 4) for v in (2, "3", "200 m2", "1.5 ha", "30 亩", "0.01 km2")]
    [2, 3.0, 0.02, 1.5, 2.0, 1.0]
    """
    if not isinstance(value, str):
        return value
    m = re.fullmatch(r"\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(\S*)\s*", value)
    if m is None or m.group(2) not in ("", *AREA_UNITS):
        raise ValueError(
            f"expected an area: a number of hectares or a number with a unit "
            f"({', '.join(AREA_UNITS)}), e.g. '200 m2'; got {value!r}")
    return float(m.group(1)) * AREA_UNITS[m.group(2) or "ha"]


#: A non-negative area in hectares; config values may also say ``"200 m2"``, ``"30 mu"``.
AreaHa = Annotated[float, BeforeValidator(area_ha), Field(ge=0)]


# ---------------------------------------------------------------- inputs and grid


class InputSpec(_Model):
    """A raster input: its file, how it is resampled and an optional nodata override."""

    path: Path
    kind: Literal["continuous", "categorical"] = "continuous"
    nodata: float | None = None
    band: Annotated[int, Field(ge=1)] = 1


class VectorInputSpec(_Model):
    """A polygon input (protected areas, study boundary) burnt onto the grid.

    ``datum_shift: gcj02`` says the coordinates are GCJ-02 longitude/latitude (Amap,
    DataV and other Chinese web maps, usually labelled EPSG:4326); they are
    converted to WGS84 before reprojection (:func:`sanqu.crs.gcj02_to_wgs84`).
    """

    path: Path
    layer: str | None = None
    datum_shift: Literal["none", "gcj02"] = "none"


class GridSpec(_Model):
    """Which input defines the study grid, and how other grids are aligned onto it.

    ``threads`` caps the worker threads of the per-cell stages (default: one per core);
    results do not depend on it, nor on ``block_size``.
    """

    reference: str
    block_size: Annotated[int, Field(ge=64, le=16384)] = 2048
    misaligned: Literal["resample", "error"] = "resample"
    threads: Annotated[int, Field(ge=1, le=64)] | None = None


class StudyAreaSpec(_Model):
    """Where the study area is: cells valid in every listed input, optionally clipped.

    ``admin_code`` and ``admin_name`` (default: ``name``) fill XZQDM / XZQMC of the
    planning database where no administrative-unit layer says otherwise.
    """

    name: str = "study area"
    valid_inputs: list[str] = Field(min_length=1)
    boundary: VectorInputSpec | None = None
    admin_code: Annotated[str, Field(pattern=r"^[0-9]{1,12}$")] | None = None
    admin_name: Annotated[str, Field(max_length=100)] | None = None


class LandUseSpec(_Model):
    """Land-use input and the grouping of its codes into classes used by the rules."""

    input: str
    classes: dict[str, list[int]] = Field(min_length=1)

    @model_validator(mode="after")
    def _codes_unique(self) -> LandUseSpec:
        seen: dict[int, str] = {}
        for name, codes in self.classes.items():
            for code in codes:
                if code in seen:
                    raise ValueError(
                        f"classes.{name}: code {code} is already in class {seen[code]!r}; "
                        "expected each land-use code in one class"
                    )
                seen[code] = name
        return self

    def code_to_class(self) -> dict[int, str]:
        """Map each land-use code to its class name."""
        return {code: name for name, codes in self.classes.items() for code in codes}


# ---------------------------------------------------------------- factors


class SlopeFactor(_Model):
    """Slope in degrees by Horn's method, from an elevation input."""

    kind: Literal["slope"]
    input: str


class ReliefFactor(_Model):
    """Local relief (max - min elevation) in a square window of cells.

    ``window: auto`` follows methodology.md §2.1: cell < 30 m → 15, 30-50 m → 12,
    50-100 m → 9, ≥ 100 m → 3.
    """

    kind: Literal["relief"]
    input: str
    window: Literal["auto"] | Annotated[int, Field(ge=1, le=101)] = "auto"


class DistanceFactor(_Model):
    """Euclidean distance (m) to the nearest cell of some land-use classes, capped."""

    kind: Literal["distance"]
    classes: list[str] = Field(min_length=1)
    max_distance: Annotated[float, Field(gt=0)]


Factor = Annotated[SlopeFactor | ReliefFactor | DistanceFactor, Field(discriminator="kind")]


# ---------------------------------------------------------------- evaluation


class Condition(_Model):
    """A cell test on one layer: comparisons (combined by AND) or set membership.

    ``in`` takes codes of the layer, or land-use class names when the layer is the
    land-use input.
    """

    layer: str
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    in_: list[int | str] | None = Field(default=None, alias="in")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _has_test(self) -> Condition:
        if all(v is None for v in (self.gt, self.ge, self.lt, self.le, self.in_)):
            raise ValueError("expected at least one of gt, ge, lt, le, in")
        return self


class ReclassStep(_Model):
    """Grade a continuous layer by a break table.

    With ``closed: right`` the classes are (-inf, b1], (b1, b2], ..., (bn, inf);
    with ``closed: left`` they are (-inf, b1), [b1, b2), ..., [bn, inf).
    ``grades`` gives one grade per class in ascending value order.
    """

    op: Literal["reclass"]
    layer: str
    breaks: list[float] = Field(min_length=1)
    grades: list[int] | None = None
    closed: Literal["right", "left"] = "right"

    @model_validator(mode="after")
    def _check(self) -> ReclassStep:
        if any(a >= b for a, b in zip(self.breaks, self.breaks[1:], strict=False)):
            raise ValueError(f"breaks: expected strictly increasing values, got {self.breaks}")
        if self.grades is not None and len(self.grades) != len(self.breaks) + 1:
            raise ValueError(
                f"grades: expected {len(self.breaks) + 1} grades for {len(self.breaks)} breaks, "
                f"got {len(self.grades)}"
            )
        return self


class LookupStep(_Model):
    """Grade a categorical layer by a table of code (or land-use class) → grade."""

    op: Literal["lookup"]
    layer: str
    table: dict[int | str, int] = Field(min_length=1)


class MatrixStep(_Model):
    """Look a grade up in a decision matrix, rows and columns indexed by grades 1..n."""

    op: Literal["matrix"]
    rows: str
    cols: str
    table: list[list[int]] = Field(min_length=1)

    @field_validator("table")
    @classmethod
    def _rectangular(cls, table: list[list[int]]) -> list[list[int]]:
        widths = {len(r) for r in table}
        if len(widths) != 1:
            raise ValueError(f"expected rows of equal length, got lengths {sorted(widths)}")
        return table


class WeightedSumStep(_Model):
    """Weighted sum of grade layers, rounded to the nearest grade (halves go to the worse).

    Give ``weights`` (summing to 1) or an ``ahp`` pairwise matrix over ``layers``.
    """

    op: Literal["weighted_sum"]
    weights: dict[str, float] | None = None
    layers: list[str] | None = None
    ahp: list[list[float]] | None = None
    accept_inconsistent: bool = False

    @field_validator("ahp", mode="before")
    @classmethod
    def _fractions(cls, ahp: Any) -> Any:
        """Accept Saaty judgements written as fractions, e.g. ``1/3``."""
        if not isinstance(ahp, list):
            return ahp
        return [[_fraction(v) for v in row] if isinstance(row, list) else row for row in ahp]

    @model_validator(mode="after")
    def _weights_or_ahp(self) -> WeightedSumStep:
        if (self.weights is None) == (self.ahp is None):
            raise ValueError("expected exactly one of weights or ahp")
        if self.weights is not None:
            total = sum(self.weights.values())
            if any(w < 0 for w in self.weights.values()):
                raise ValueError(f"weights: expected non-negative weights, got {self.weights}")
            if not math.isclose(total, 1.0, abs_tol=1e-6):
                raise ValueError(f"weights: must sum to 1, got {round(total, 6)}")
        else:
            n = len(self.layers or [])
            if n < 2 or len(self.ahp) != n or any(len(row) != n for row in self.ahp):
                raise ValueError(f"ahp: expected a {n} x {n} matrix, one row per name in layers")
        return self


def _fraction(value: Any) -> Any:
    if isinstance(value, str) and "/" in value:
        num, _, den = value.partition("/")
        try:
            return float(num) / float(den)
        except (ValueError, ZeroDivisionError):
            return value
    return value


class CombineStep(_Model):
    """Limiting factor (``worst``: the worst grade wins) or ``best`` of several layers."""

    op: Literal["worst", "best"]
    layers: list[str] = Field(min_length=1)


class DowngradeStep(_Model):
    """Where ``when`` holds, worsen ``input`` by ``by`` grades (negative improves) or set it.

    Grades stay within 1..``scale``. ``only_grades`` restricts the change to cells
    whose current grade is listed. Steps chain: each applies to the previous result.
    """

    op: Literal["downgrade"]
    input: str | None = None
    when: Condition
    by: int | None = None
    to: int | None = None
    only_grades: list[int] | None = None

    @model_validator(mode="after")
    def _by_or_to(self) -> DowngradeStep:
        if (self.by is None) == (self.to is None):
            raise ValueError("expected exactly one of by or to")
        return self


class ConstrainStep(_Model):
    """Hard constraint: where ``when`` holds, the grade is ``grade`` whatever else holds."""

    op: Literal["constrain"]
    input: str | None = None
    when: Condition
    grade: int = 5


class CollapseStep(_Model):
    """Collapse a five-grade layer to levels: ``levels[i]`` lists the grades of level i+1."""

    op: Literal["collapse"]
    input: str | None = None
    levels: list[list[int]] = Field(default=[[1, 2], [3, 4], [5]])


Step = Annotated[
    ReclassStep
    | LookupStep
    | MatrixStep
    | WeightedSumStep
    | CombineStep
    | DowngradeStep
    | ConstrainStep
    | CollapseStep,
    Field(discriminator="op"),
]


class EvaluationSpec(_Model):
    """Ordered named steps; the last step's result is the evaluation result."""

    scale: Annotated[int, Field(ge=2, le=9)] = 5
    steps: dict[str, Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _ends_in_collapse(self) -> EvaluationSpec:
        last = list(self.steps.values())[-1]
        if not isinstance(last, CollapseStep):
            raise ValueError("steps: expected the last step to be a collapse to three levels")
        if len(last.levels) != 3:
            raise ValueError(
                f"steps: expected the collapse to give 3 levels, got {len(last.levels)}")
        return self


# ---------------------------------------------------------------- allocation and lines


class RedLineSpec(_Model):
    """Ecological protection red line: 极重要 land (and protected areas), cleaned.

    ``cultivated_conflict`` and ``exclude_classes`` resolve conflicts with existing
    land use (methodology.md §4.1): excluded classes are always cut out; cultivated
    land is cut out (``cut``) or kept inside (``keep``). ``smooth_m`` fills notches
    up to that deep and prunes whiskers and teeth up to that long (锯齿, 龙须), in
    metres, so independent of the cell size (0: no smoothing).
    """

    from_levels: list[int] = [1]
    protected_areas: VectorInputSpec | None = None
    exclude_classes: list[str] = []
    cultivated_conflict: Literal["keep", "cut"] = "cut"
    smooth_m: Annotated[float, Field(ge=0)] = 0.0
    min_area_ha: AreaHa = 1.0
    fill_holes_below_ha: AreaHa = 1.0


#: Criteria of the farmland quality score (methodology.md §4.2: quality first).
QUALITY_CRITERIA = ("suitability", "slope", "patch_size", "near_built")


class FarmQualitySpec(_Model):
    """How eligible cultivated land is ranked: a weighted score of four graded criteria.

    Each criterion grades a cell 1 (best) … n; grades are scaled to 0 … 1 and
    weighted. ``suitability`` is the agricultural suitability level, ``slope`` the
    slope class by ``slope_breaks`` (degrees; the default is the 耕地坡度分级 of the
    land survey, ≤2, 2-6, 6-15, 15-25, >25), ``patch_size`` the area of the
    contiguous piece of eligible land by ``patch_breaks_ha`` (larger is better; the
    default 150/400/600/900 亩 are the plains classes of methodology.md §2.7), and
    ``near_built`` the distance factor ``near_factor`` by ``near_breaks`` (m; nearer
    is better: land most at risk of being built on is protected first).
    """

    weights: dict[Literal["suitability", "slope", "patch_size", "near_built"], float] = {
        "suitability": 0.4, "slope": 0.3, "patch_size": 0.3, "near_built": 0.0}
    slope_breaks: list[float] = [2, 6, 15, 25]
    patch_breaks_ha: list[AreaHa] = [10, 80 / 3, 40, 60]
    near_factor: str | None = None
    near_breaks: list[float] = [300, 600, 1200, 2400]

    @model_validator(mode="after")
    def _check(self) -> FarmQualitySpec:
        if any(w < 0 for w in self.weights.values()):
            raise ValueError(f"weights: expected non-negative weights, got {self.weights}")
        total = sum(self.weights.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"weights: must sum to 1, got {round(total, 6)}")
        for key in ("slope_breaks", "patch_breaks_ha", "near_breaks"):
            b = getattr(self, key)
            if not b or any(x >= y for x, y in zip(b, b[1:], strict=False)):
                raise ValueError(f"{key}: expected strictly increasing values, got {b}")
        if self.weights.get("near_built", 0) > 0 and self.near_factor is None:
            raise ValueError("near_factor: a near_built weight needs a distance factor here")
        return self


def _codes_as_text(value: Any) -> Any:
    """Unit codes may be written as YAML numbers; they are text (e.g. XZQDM)."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value


class FarmlandSpec(_Model):
    """Permanent basic farmland: cultivated land, flat enough, suitable, outside the red line.

    Quotas are floors: ``quota_ha`` for the whole study area and ``unit_quotas`` per
    administrative unit (unit code → ha, or a CSV file with columns ``code`` and
    ``quota_ha``; needs the top-level ``units`` layer). ``selection: all_eligible``
    protects all eligible land and checks the floors; ``meet_quota`` protects the
    best-ranked land (``quality``) just until every floor is met.
    """

    cultivated_classes: list[str] = Field(min_length=1)
    slope_factor: str = "slope"
    max_slope: Annotated[float, Field(gt=0, le=90)] = 25.0
    suitability_levels: list[int] = [1, 2]
    min_area_ha: AreaHa = 1.0
    quota_ha: AreaHa | None = None
    unit_quotas: Annotated[dict[str, AreaHa] | Path | None, BeforeValidator(_codes_as_text)] = None
    selection: Literal["all_eligible", "meet_quota"] = "all_eligible"
    quality: FarmQualitySpec = FarmQualitySpec()

    @model_validator(mode="after")
    def _quota_for_selection(self) -> FarmlandSpec:
        if self.selection == "meet_quota" and self.quota_ha is None and not self.unit_quotas:
            raise ValueError("selection: meet_quota needs quota_ha or unit_quotas")
        return self


#: Sub-zones (规划分区) of the urban development boundary, by raster code.
UGB_ZONES = {1: "城镇集中建设区", 2: "城镇弹性发展区", 3: "特别用途区"}


class UgbSpec(_Model):
    """Urban development boundary: built-up seed grown into suitable land up to a cap.

    ``flexible_share`` of the cap is the 弹性发展区, the last land grown (at the
    margin); the rest is the 集中建设区. ``special_use`` polygons (parks, green
    belts…) become the 特别用途区 where they lie outside the red line and farmland;
    they count against the cap.
    """

    seed_classes: list[str] = Field(min_length=1)
    grow_levels: list[int] = [1, 2]
    expansion_factor: Annotated[float, Field(ge=1)] | None = 1.3
    cap_ha: Annotated[AreaHa, Field(gt=0)] | None = None
    min_area_ha: AreaHa = 5.0
    fill_holes_below_ha: AreaHa = 1.0
    flexible_share: Annotated[float, Field(ge=0, lt=1)] = 0.0
    special_use: VectorInputSpec | None = None

    @model_validator(mode="after")
    def _cap(self) -> UgbSpec:
        if self.expansion_factor is None and self.cap_ha is None:
            raise ValueError("expected expansion_factor or cap_ha (or both; the smaller wins)")
        return self


class LinesSpec(_Model):
    """The three control lines."""

    red_line: RedLineSpec
    farmland: FarmlandSpec
    ugb: UgbSpec


#: Lock-in rules of the allocation, applied after the three lines in the configured order.
LOCK_INS = ("protected", "built_up", "eco_important", "cultivated", "ecological_classes")


class AllocationSpec(_Model):
    """Rules for the three spaces outside the lines (methodology.md §3).

    After the three lines, the lock-ins in ``order`` place cells (a name left out
    is not applied): ``protected`` areas → ecological; ``built_up`` land of
    ``built_up_classes`` in patches of at least ``built_up_min_ha`` → urban;
    ``eco_important`` (极重要) → ecological; ``cultivated`` land of
    ``cultivated_levels`` → agricultural; ``ecological_classes`` → ecological.
    Every other cell goes by comparative advantage, ties in ``tie_order``.
    """

    ecological_classes: list[str] = []
    built_up_classes: list[str] = []
    built_up_min_ha: AreaHa = 0.0
    cultivated_levels: list[int] = [1, 2]
    order: list[Literal["protected", "built_up", "eco_important", "cultivated",
                        "ecological_classes"]] = list(LOCK_INS)
    min_patch_ha: AreaHa = 1.0
    tie_order: list[Literal["ecological", "agricultural", "urban"]] = [
        "ecological",
        "agricultural",
        "urban",
    ]

    @field_validator("tie_order")
    @classmethod
    def _all_three(cls, order: list[str]) -> list[str]:
        if sorted(order) != sorted(SPACES):
            raise ValueError(f"expected each of {sorted(SPACES)} once, got {order}")
        return order

    @field_validator("order")
    @classmethod
    def _once(cls, order: list[str]) -> list[str]:
        if len(set(order)) != len(order):
            raise ValueError(f"expected each rule at most once, got {order}")
        return order


class UnitsSpec(_Model):
    """Administrative units (e.g. townships): polygons with a code and a name field.

    Besides per-unit quotas they fill XZQDM / XZQMC of the planning database.
    ``datum_shift: gcj02`` as for :class:`VectorInputSpec`.
    """

    path: Path
    layer: str | None = None
    code_field: str = "XZQDM"
    name_field: str = "XZQMC"
    datum_shift: Literal["none", "gcj02"] = "none"


#: Placeholder written where an official code is not known (the element codes of the
#: planning database specification were not available): visible, and reported.
PLACEHOLDER = "TBD"

#: Layers of the planning-database profile (methodology.md §5).
PLANNING_LAYERS = ("STBHHX", "YJJBNT", "CZKFBJ", "STBHZYXPJJG", "NYSCSYXPJJG", "CZJSSYXPJJG")


class SmoothingSpec(_Model):
    """Boundary smoothing of the vector outputs (shared edges simplified once).

    ``tolerance`` is the Visvalingam-Whyatt tolerance in metres, roughly the
    square root of the largest triangle area removed; ``auto`` is 0.75 cell sizes,
    just above the half-cell triangle of a single step, which turns single-cell
    steps into diagonals; 0 keeps the cell edges. The evaluation results are
    cell-by-cell grades and stay on cell edges unless ``evaluations`` is true
    (smoothing their many small patches costs minutes at a few million cells).
    """

    tolerance: Literal["auto"] | Annotated[float, Field(ge=0)] = "auto"
    evaluations: bool = False


class TopologySpec(_Model):
    """The topology gate every vector layer passes before export (:mod:`sanqu.topology`)."""

    min_area_m2: Annotated[float, Field(ge=0)] = 200.0
    on_failure: Literal["stop", "repair"] = "stop"


class ElementCodes(_Model):
    """YSDM (element code, text(10)) per planning-database layer: PLACEHOLDERS by default.

    The official values are in the MNR planning database specification, which was
    not available; set them from the specification before delivery.
    """

    STBHHX: Annotated[str, Field(max_length=10)] = PLACEHOLDER
    YJJBNT: Annotated[str, Field(max_length=10)] = PLACEHOLDER
    CZKFBJ: Annotated[str, Field(max_length=10)] = PLACEHOLDER
    STBHZYXPJJG: Annotated[str, Field(max_length=10)] = PLACEHOLDER
    NYSCSYXPJJG: Annotated[str, Field(max_length=10)] = PLACEHOLDER
    CZJSSYXPJJG: Annotated[str, Field(max_length=10)] = PLACEHOLDER


class SubzoneCodes(_Model):
    """GHFQDM (text(3)) of the UGB sub-zones (规划分区): PLACEHOLDERS by default.

    The official codes were not available; set them from the specification.
    GHFQMC is the sub-zone's name (城镇集中建设区, 城镇弹性发展区, 特别用途区).
    """

    concentrated: Annotated[str, Field(max_length=3)] = PLACEHOLDER
    flexible: Annotated[str, Field(max_length=3)] = PLACEHOLDER
    special_use: Annotated[str, Field(max_length=3)] = PLACEHOLDER


class PlanningDbSpec(_Model):
    """The planning-database profile (methodology.md §5).

    STBHHX, YJJBNT, CZKFBJ and the three evaluation results, with the field
    structure of the specification; ``area_unit`` sets MJ's unit (default 公顷).
    XZQDM / XZQMC come from the top-level ``units`` by overlay (``admin_overlay``:
    ``split`` cuts polygons at unit borders, pieces below the minimum mapping unit
    staying with the largest piece; ``largest`` keeps each polygon whole in the
    unit it overlaps most), else from ``study_area.admin_code`` / ``admin_name``.
    """

    enabled: bool = True
    gpkg_name: str = "planning_db.gpkg"
    shapefiles: bool = True
    area_unit: Literal["ha", "m2", "km2", "mu"] = "ha"
    area_decimals: Annotated[int, Field(ge=0, le=8)] | None = None
    bsm_prefix: Annotated[str, Field(pattern=r"^[0-9A-Za-z]{0,10}$")] | None = None
    ysdm: ElementCodes = ElementCodes()
    level_field: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,9}$")] = "PJDJ"
    admin_overlay: Literal["split", "largest"] = "split"
    subzone_codes: SubzoneCodes = SubzoneCodes()


class OutputSpec(_Model):
    """What to write and how.

    ``crs``: ``auto`` writes vectors in CGCS2000 3-degree Gauss-Krüger, the zone of
    the study area's centre (or ``gk_zone``), in the ``gk_form`` ``zone``
    (EPSG:4513-4533, zone-prefixed eastings) or ``cm`` (EPSG:4534-4554); ``study``
    keeps the study grid's CRS; or give a projected CRS (``EPSG:4547``). Rasters
    stay on the study grid.
    """

    gpkg_name: str = "sanqu.gpkg"
    shapefile_encoding: Literal["UTF-8", "GBK"] = "UTF-8"
    compress: Literal["DEFLATE", "LZW", "ZSTD"] = "DEFLATE"
    crs: str = "auto"
    gk_form: Literal["zone", "cm"] = "zone"
    gk_zone: Annotated[int, Field(ge=25, le=45)] | None = None
    smoothing: SmoothingSpec = SmoothingSpec()
    topology: TopologySpec = TopologySpec()
    planning_db: PlanningDbSpec = PlanningDbSpec()
    review: bool = True

    @field_validator("crs")
    @classmethod
    def _crs(cls, value: str) -> str:
        if value in ("auto", "study"):
            return value
        from .crs import parse_crs

        try:
            parse_crs(value)
        except ValueError as exc:
            raise ValueError(f"expected 'auto', 'study' or a projected CRS: {exc}") from None
        return value

    @model_validator(mode="after")
    def _zone_needs_auto(self) -> OutputSpec:
        if self.gk_zone is not None and self.crs != "auto":
            raise ValueError(f"gk_zone: applies only to crs: auto, got crs {self.crs!r}")
        return self


class Config(_Model):
    """A whole sanqu run, validated. Build it with :func:`load_config`."""

    name: str
    grid: GridSpec
    study_area: StudyAreaSpec
    inputs: dict[str, InputSpec] = Field(min_length=1)
    landuse: LandUseSpec
    factors: dict[str, Factor] = {}
    evaluation: dict[str, EvaluationSpec]
    allocation: AllocationSpec = AllocationSpec()
    lines: LinesSpec
    units: UnitsSpec | None = None
    outputs: OutputSpec = OutputSpec()
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("evaluation")
    @classmethod
    def _three_results(cls, ev: dict[str, EvaluationSpec]) -> dict[str, EvaluationSpec]:
        if sorted(ev) != sorted(RESULTS):
            raise ValueError(f"expected exactly the keys {list(RESULTS)}, got {list(ev)}")
        return ev


# ---------------------------------------------------------------- loading and cross-checks


def _loc(loc: tuple[Any, ...]) -> str:
    """Dotted key of an error location, without pydantic's union-tag elements."""
    parts = []
    for i, p in enumerate(loc):
        if str(p).startswith(("function-", "tagged-")):
            continue
        if i >= 2 and loc[i - 2] in ("steps", "factors"):
            continue  # the discriminator (op / kind) pydantic inserts after the entry name
        parts.append(str(p))
    return ".".join(parts)


def _describe(err: dict[str, Any]) -> str:
    msg = err["msg"].removeprefix("Value error, ")
    where = _loc(err["loc"])
    value = err.get("input")
    if err["type"] == "missing":
        return f"{where}: required key is missing"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    if err["type"] == "union_tag_invalid":
        return f"{where}: {msg}"
    shown = value if not isinstance(value, dict) else "{...}"
    if err["type"].startswith("value_error"):
        field = re.match(r"([A-Za-z_][\w.]*): ", msg)
        if field:  # a model validator naming one of its own fields: make it part of the key
            return f"{where}.{field.group(1)}: {msg[field.end():]}"
        return f"{where}: {msg}"
    return f"{where}: {msg}, got {shown!r}"


def config_from_dict(data: Any, source: Path | None = None) -> Config:
    """Validate a parsed YAML document into a :class:`Config`.

    Parameters
    ----------
    data : dict
        The parsed document.
    source : Path, optional
        The file it came from; relative paths are resolved against its folder.

    Raises
    ------
    ConfigError
        On the first invalid key, naming the key, the value and what was expected.
    """
    label = str(source) if source else "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping of keys at the top level")
    try:
        cfg = Config.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise ConfigError(f"{label}: {_describe(exc.errors()[0])}") from None
    base = source.parent if source else Path.cwd()
    try:
        cfg = _resolve_paths(cfg, base)
        _cross_check(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or holds an invalid value.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    return config_from_dict(data, path.resolve())


def _resolve_paths(cfg: Config, base: Path) -> Config:
    """Resolve relative paths against ``base``; read a per-unit quota table into a dict."""
    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    def at(model: BaseModel, keys: tuple[str, ...], change: Any) -> BaseModel:
        child = getattr(model, keys[0])
        if child is None:
            return model
        new = change(child) if len(keys) == 1 else at(child, keys[1:], change)
        return model.model_copy(update={keys[0]: new})

    inputs = {k: v.model_copy(update={"path": fix(v.path)}) for k, v in cfg.inputs.items()}
    cfg = cfg.model_copy(update={"inputs": inputs})
    for keys in (("study_area", "boundary"), ("lines", "red_line", "protected_areas"),
                 ("lines", "ugb", "special_use"), ("units",)):
        cfg = at(cfg, keys, lambda spec: spec.model_copy(update={"path": fix(spec.path)}))
    if isinstance(cfg.lines.farmland.unit_quotas, Path):
        cfg = at(cfg, ("lines", "farmland", "unit_quotas"),
                 lambda p: read_quota_table(fix(p), "lines.farmland.unit_quotas"))
    return cfg  # type: ignore[return-value]


def read_quota_table(path: Path, key: str) -> dict[str, float]:
    """Per-unit quotas from a CSV file with columns ``code`` and ``quota_ha``.

    Raises
    ------
    ConfigError
        If the file is missing, lacks a column, repeats a code or holds a bad area.
    """
    import csv

    if not path.is_file():
        raise ConfigError(f"{key}: quota table not found: {path}")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"code", "quota_ha"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{key}: {path.name}: expected columns code and quota_ha, "
                              f"missing {sorted(missing)}")
        quotas: dict[str, float] = {}
        for row in reader:
            where = f"{key}: {path.name} line {reader.line_num}"
            code = (row["code"] or "").strip()
            if code in quotas:
                raise ConfigError(f"{where}: code {code!r} is listed twice")
            try:
                ha = float(area_ha(row["quota_ha"].strip()))
            except (ValueError, AttributeError):
                raise ConfigError(f"{where}: quota_ha: expected an area, got "
                                  f"{row['quota_ha']!r}") from None
            if not code or ha < 0 or not math.isfinite(ha):
                raise ConfigError(f"{where}: expected a code and a non-negative quota_ha")
            quotas[code] = ha
    return quotas


def relief_window(window: str | int, cell_size: float) -> int:
    """Relief window in cells; ``auto`` scales with cell size (methodology.md §2.1).

    Examples
    --------
    >>> [relief_window("auto", c) for c in (10, 30, 49.9, 50, 100)]
    [15, 12, 12, 9, 3]
    """
    if window != "auto":
        return int(window)
    if cell_size < 30:
        return 15
    if cell_size < 50:
        return 12
    if cell_size < 100:
        return 9
    return 3


def _cross_check(cfg: Config) -> None:
    """Check references between sections: names exist, classes are known, grades fit."""
    if cfg.grid.reference not in cfg.inputs:
        raise ConfigError(f"grid.reference: {cfg.grid.reference!r} is not a key of inputs")
    for name in cfg.study_area.valid_inputs:
        if name not in cfg.inputs:
            raise ConfigError(f"study_area.valid_inputs: {name!r} is not a key of inputs")
    if cfg.landuse.input not in cfg.inputs:
        raise ConfigError(f"landuse.input: {cfg.landuse.input!r} is not a key of inputs")
    if cfg.inputs[cfg.landuse.input].kind != "categorical":
        raise ConfigError(f"inputs.{cfg.landuse.input}.kind: land use must be 'categorical'")
    classes = set(cfg.landuse.classes)

    def known_classes(key: str, names: list[str]) -> None:
        for n in names:
            if n not in classes:
                raise ConfigError(
                    f"{key}: unknown land-use class {n!r}; expected one of {sorted(classes)}"
                )

    for fname, f in cfg.factors.items():
        if fname in cfg.inputs:
            raise ConfigError(f"factors.{fname}: name is already used by an input")
        if isinstance(f, SlopeFactor | ReliefFactor):
            if f.input not in cfg.inputs:
                raise ConfigError(f"factors.{fname}.input: {f.input!r} is not a key of inputs")
            if cfg.inputs[f.input].kind != "continuous":
                raise ConfigError(f"factors.{fname}.input: {f.input!r} must be continuous")
        else:
            known_classes(f"factors.{fname}.classes", f.classes)
    layers = set(cfg.inputs) | set(cfg.factors)
    for rname, ev in cfg.evaluation.items():
        _check_steps(f"evaluation.{rname}", ev, layers, cfg)
    from .evaluate import build_evaluations  # AHP weights and consistency, checked on load

    build_evaluations(cfg)
    lines = cfg.lines
    known_classes("lines.red_line.exclude_classes", lines.red_line.exclude_classes)
    known_classes("lines.farmland.cultivated_classes", lines.farmland.cultivated_classes)
    known_classes("lines.ugb.seed_classes", lines.ugb.seed_classes)
    known_classes("allocation.ecological_classes", cfg.allocation.ecological_classes)
    known_classes("allocation.built_up_classes", cfg.allocation.built_up_classes)
    near = lines.farmland.quality.near_factor
    if near is not None and not isinstance(cfg.factors.get(near), DistanceFactor):
        raise ConfigError(
            f"lines.farmland.quality.near_factor: {near!r} is not a distance factor")
    if lines.farmland.unit_quotas and cfg.units is None:
        raise ConfigError("lines.farmland.unit_quotas: per-unit quotas need the administrative "
                          "units layer (top-level key units)")
    if lines.farmland.slope_factor not in cfg.factors or not isinstance(
        cfg.factors[lines.farmland.slope_factor], SlopeFactor
    ):
        raise ConfigError(
            f"lines.farmland.slope_factor: {lines.farmland.slope_factor!r} is not a slope factor"
        )
    for key, levels in (
        ("lines.red_line.from_levels", lines.red_line.from_levels),
        ("lines.farmland.suitability_levels", lines.farmland.suitability_levels),
        ("lines.ugb.grow_levels", lines.ugb.grow_levels),
        ("allocation.cultivated_levels", cfg.allocation.cultivated_levels),
    ):
        bad = [v for v in levels if v not in (1, 2, 3)]
        if bad:
            raise ConfigError(f"{key}: expected levels among 1, 2, 3, got {bad}")


def _check_steps(key: str, ev: EvaluationSpec, layers: set[str], cfg: Config) -> None:
    known = set(layers)
    previous: str | None = None
    scale = ev.scale

    def need(k: str, name: str | None) -> None:
        if name is None:
            if previous is None:
                raise ConfigError(f"{k}: the first step has no previous result to use")
            return
        if name not in known:
            raise ConfigError(f"{k}: {name!r} is not an input, factor or earlier step")

    def grade_ok(k: str, values: list[int]) -> None:
        bad = [v for v in values if not 1 <= v <= scale]
        if bad:
            raise ConfigError(f"{k}: expected grades 1..{scale}, got {bad}")

    for sname, step in ev.steps.items():
        k = f"{key}.steps.{sname}"
        if sname in layers:
            raise ConfigError(f"{k}: step name is already used by an input or factor")
        if isinstance(step, ReclassStep):
            need(f"{k}.layer", step.layer)
            grades = step.grades or list(range(1, len(step.breaks) + 2))
            grade_ok(f"{k}.grades", grades)
        elif isinstance(step, LookupStep):
            need(f"{k}.layer", step.layer)
            grade_ok(f"{k}.table", list(step.table.values()))
            names = [n for n in step.table if isinstance(n, str)]
            if names and step.layer != cfg.landuse.input:
                raise ConfigError(f"{k}.table: class names are allowed only for the land-use layer")
            unknown = [n for n in names if n not in cfg.landuse.classes]
            if unknown:
                raise ConfigError(f"{k}.table: unknown land-use class {unknown[0]!r}")
        elif isinstance(step, MatrixStep):
            need(f"{k}.rows", step.rows)
            need(f"{k}.cols", step.cols)
            if len(step.table) != scale or len(step.table[0]) != scale:
                raise ConfigError(
                    f"{k}.table: expected a {scale} x {scale} matrix, "
                    f"got {len(step.table)} x {len(step.table[0])}"
                )
            grade_ok(f"{k}.table", [v for row in step.table for v in row])
        elif isinstance(step, WeightedSumStep):
            for n in step.weights or step.layers or []:
                need(f"{k}.weights", n)
        elif isinstance(step, CombineStep):
            for n in step.layers:
                need(f"{k}.layers", n)
        elif isinstance(step, DowngradeStep | ConstrainStep):
            need(f"{k}.input", step.input)
            need(f"{k}.when.layer", step.when.layer)
            if isinstance(step, DowngradeStep):
                if step.to is not None:
                    grade_ok(f"{k}.to", [step.to])
                grade_ok(f"{k}.only_grades", step.only_grades or [])
            else:
                grade_ok(f"{k}.grade", [step.grade])
        elif isinstance(step, CollapseStep):
            need(f"{k}.input", step.input)
            flat = sorted(v for level in step.levels for v in level)
            if flat != list(range(1, scale + 1)):
                raise ConfigError(
                    f"{k}.levels: expected each grade 1..{scale} in exactly one level, "
                    f"got {step.levels}"
                )
        known.add(sname)
        previous = sname


def default_config_path() -> Path:
    """The bundled default config, ``configs/dianbu.yaml`` of the source checkout.

    Raises
    ------
    ConfigError
        If sanqu was installed without its checkout (no bundled sample beside it).
    """
    path = Path(__file__).resolve().parents[2] / "configs" / "dianbu.yaml"
    if not path.is_file():
        raise ConfigError(
            "CONFIG: none given and the bundled configs/dianbu.yaml was not found beside the "
            "sanqu sources (install from a clone with `pip install -e .`, or pass a CONFIG path)"
        )
    return path
