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

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from . import presets, rules
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
    """A raster input: its file, how it is resampled and an optional nodata override.

    ``optional: true`` lets the path be left out: the input is then *absent*, and
    the factors and evaluation steps that need it are skipped with a note (a
    skipped correction leaves the grade unchanged). ``scale: n`` declares that the
    input holds grades 1..n (a hazard or environment grade made elsewhere), so
    matrices and combinations can use it like a step.
    """

    path: Path | None = None
    kind: Literal["continuous", "categorical"] = "continuous"
    nodata: float | None = None
    band: Annotated[int, Field(ge=1)] = 1
    optional: bool = False
    scale: Annotated[int, Field(ge=2, le=9)] | None = None

    @model_validator(mode="after")
    def _path_unless_optional(self) -> InputSpec:
        if self.path is None and not self.optional:
            raise ValueError("path: required key is missing (or set optional: true)")
        return self


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


class CategorySpec(_Model):
    """Codes of a categorical input grouped into named classes (e.g. soil texture)."""

    classes: dict[str, list[int]] = Field(min_length=1)

    @model_validator(mode="after")
    def _codes_unique(self) -> CategorySpec:
        seen: dict[int, str] = {}
        for name, codes in self.classes.items():
            for code in codes:
                if code in seen:
                    raise ValueError(
                        f"classes.{name}: code {code} is already in class {seen[code]!r}; "
                        "expected each code in one class"
                    )
                seen[code] = name
        return self

    def code_to_class(self) -> dict[int, str]:
        """Map each code to its class name."""
        return {code: name for name, codes in self.classes.items() for code in codes}


class LandUseSpec(CategorySpec):
    """Land-use input and the grouping of its codes into classes used by the rules."""

    input: str


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


#: A layer named by an input or an earlier factor, or a constant number.
LayerOrValue = str | float


class LsFactor(_Model):
    """USLE slope length and steepness factor LS from an elevation input.

    ``slope_length`` is the slope length λ in metres (default: the cell size), a
    per-cell proxy; see :func:`sanqu.factors.ls_factor` for the formulas.
    """

    kind: Literal["ls"]
    input: str
    slope_length: Annotated[float, Field(gt=0)] | None = None


class WaterConservationFactor(_Model):
    """Water conservation (mm) = precipitation - runoff - evapotranspiration (§2.4).

    Runoff is precipitation times a runoff coefficient per land-use class; a
    coefficient may be a number or the name of an entry of ``tables.runoff_coefficients``
    (the guideline's ecosystem types, e.g. ``mixed_forest``). Negative values are set to 0.
    """

    kind: Literal["water_conservation"]
    precipitation: LayerOrValue
    evapotranspiration: LayerOrValue
    runoff_coefficients: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}


class SoilConservationFactor(_Model):
    """Soil conservation (t/ha/a) = R * K * LS * (1 - C): erosion the cover prevents (§2.4).

    Each of ``r`` (rainfall erosivity), ``k`` (soil erodibility), ``ls`` (slope
    length and steepness) and ``c`` (USLE cover-management factor, 0..1) is a layer
    name or a constant.
    """

    kind: Literal["soil_conservation"]
    r: LayerOrValue
    k: LayerOrValue
    ls: LayerOrValue
    c: LayerOrValue


Factor = Annotated[
    SlopeFactor
    | ReliefFactor
    | DistanceFactor
    | LsFactor
    | WaterConservationFactor
    | SoilConservationFactor,
    Field(discriminator="kind"),
]


def factor_refs(spec: Any) -> list[str]:
    """Names of the inputs and factors a factor reads (constants left out).

    Examples
    --------
    >>> factor_refs(SoilConservationFactor(kind="soil_conservation", r="R", k=0.3, ls="ls",
    ...                                    c="C"))
    ['R', 'ls', 'C']
    """
    if isinstance(spec, SlopeFactor | ReliefFactor | LsFactor):
        return [spec.input]
    if isinstance(spec, WaterConservationFactor):
        refs = [spec.precipitation, spec.evapotranspiration]
    elif isinstance(spec, SoilConservationFactor):
        refs = [spec.r, spec.k, spec.ls, spec.c]
    else:
        refs = []
    return [r for r in refs if isinstance(r, str)]


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


class Interval(_Model):
    """One class of an interval table: lower edge, upper edge and grade.

    The lower edge is ``gt`` or ``ge``, the upper ``lt`` or ``le``; a missing edge
    is -inf / +inf.
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    grade: int

    @model_validator(mode="after")
    def _edges(self) -> Interval:
        if self.gt is not None and self.ge is not None:
            raise ValueError("expected at most one lower edge (gt or ge)")
        if self.lt is not None and self.le is not None:
            raise ValueError("expected at most one upper edge (lt or le)")
        lo, hi = self.lower, self.upper
        if lo and hi and (lo[0] > hi[0] or (lo[0] == hi[0] and not (lo[1] and hi[1]))):
            raise ValueError(f"interval {self.text()} holds no value")
        return self

    @property
    def lower(self) -> tuple[float, bool] | None:
        """``(value, closed)`` of the lower edge, or None for -inf."""
        if self.ge is not None:
            return self.ge, True
        return None if self.gt is None else (self.gt, False)

    @property
    def upper(self) -> tuple[float, bool] | None:
        """``(value, closed)`` of the upper edge, or None for +inf."""
        if self.le is not None:
            return self.le, True
        return None if self.lt is None else (self.lt, False)

    def text(self) -> str:
        """The interval in the config's words, e.g. ``gt 2, le 6``."""
        parts = [f"{k} {v:g}" for k, v in (("gt", self.gt), ("ge", self.ge), ("lt", self.lt),
                                           ("le", self.le)) if v is not None]
        return "{" + ", ".join(parts or ["any value"]) + "}"


def _interval_table(intervals: list[Interval]) -> rules.BreakTable:
    """Sort intervals, reject gaps and overlaps, and compile them into a break table."""
    def start(iv: Interval) -> tuple[float, int]:
        lo = iv.lower
        return (-math.inf, 0) if lo is None else (lo[0], 0 if lo[1] else 1)

    order = sorted(range(len(intervals)), key=lambda i: start(intervals[i]))
    first = intervals[order[0]]
    if first.lower is not None:
        raise ValueError(f"gap: no interval holds values below {first.text()} "
                         "(expected one interval without a lower edge)")
    breaks, closed = [], []
    for i, j in zip(order, order[1:], strict=False):
        a, b = intervals[i], intervals[j]
        hi, lo = a.upper, b.lower
        where = f"intervals [{i}] {a.text()} and [{j}] {b.text()}"
        if hi is None or lo is None or hi[0] > lo[0] or (hi[0] == lo[0] and hi[1] and lo[1]):
            raise ValueError(f"overlap: {where} share values")
        if hi[0] < lo[0] or not (hi[1] or lo[1]):
            raise ValueError(f"gap: no interval holds the values between {where}")
        breaks.append(hi[0])
        closed.append(hi[1])
    last = intervals[order[-1]]
    if last.upper is not None:
        raise ValueError(f"gap: no interval holds values above {last.text()} "
                         "(expected one interval without an upper edge)")
    return rules.BreakTable(tuple(breaks), tuple(intervals[i].grade for i in order),
                            tuple(closed))


class BreakTableSpec(_Model):
    """A break table in one of two forms.

    Compact: ``breaks`` (strictly increasing), ``grades`` (one per class, default
    1..n+1) and ``closed``: ``right`` gives (-inf, b1], (b1, b2], ..., (bn, inf);
    ``left`` gives (-inf, b1), [b1, b2), ..., [bn, inf).

    Intervals: ``intervals``, a list of ``{gt|ge: lower, lt|le: upper, grade: g}``
    in any order, for tables whose edges are closed on different sides. Together
    they must hold every value exactly once: a gap or an overlap is an error.
    """

    breaks: list[float] | None = None
    grades: list[int] | None = None
    closed: Literal["right", "left"] = "right"
    intervals: list[Interval] | None = None

    @model_validator(mode="after")
    def _check(self) -> BreakTableSpec:
        if (self.breaks is None) == (self.intervals is None):
            raise ValueError("expected exactly one of breaks or intervals")
        if self.intervals is not None:
            if self.grades is not None:
                raise ValueError("grades: not allowed with intervals (each interval has a grade)")
            if not self.intervals:
                raise ValueError("intervals: expected at least one interval")
            try:
                _interval_table(self.intervals)
            except ValueError as exc:
                raise ValueError(f"intervals: {exc}") from None
            return self
        if not self.breaks:
            raise ValueError("breaks: expected at least one break")
        if any(a >= b for a, b in zip(self.breaks, self.breaks[1:], strict=False)):
            raise ValueError(f"breaks: expected strictly increasing values, got {self.breaks}")
        if self.grades is not None and len(self.grades) != len(self.breaks) + 1:
            raise ValueError(
                f"grades: expected {len(self.breaks) + 1} grades for {len(self.breaks)} breaks, "
                f"got {len(self.grades)}"
            )
        return self

    def break_table(self) -> rules.BreakTable:
        """The compiled table."""
        if self.intervals is not None:
            return _interval_table(self.intervals)
        grades = self.grades or list(range(1, len(self.breaks) + 2))
        return rules.BreakTable(tuple(self.breaks), tuple(grades),
                                (self.closed == "right",) * len(self.breaks))


class _Step(_Model):
    """Keys every step has.

    ``required: true`` turns a skip (missing optional input) into an error.
    """

    required: bool = False


class ReclassStep(_Step, BreakTableSpec):
    """Grade a continuous layer by a break table (compact ``breaks`` or ``intervals``)."""

    op: Literal["reclass"]
    layer: str
    scale: Annotated[int, Field(ge=2, le=9)] | None = None


class LookupStep(_Step):
    """Grade a categorical layer by a table of code (or class name) → grade.

    Class names are those of ``landuse.classes`` for the land-use input, or of
    ``categories.<input>.classes``. ``default`` grades codes the table does not list.
    """

    op: Literal["lookup"]
    layer: str
    table: dict[int | str, int] = Field(min_length=1)
    default: int | None = None
    scale: Annotated[int, Field(ge=2, le=9)] | None = None


class MatrixStep(_Step):
    """Look a grade up in an n x m decision matrix.

    Rows are indexed by the grades 1..n of ``rows``, columns by the grades 1..m of
    ``cols``; the table must be exactly that size.
    """

    op: Literal["matrix"]
    rows: str
    cols: str
    table: list[list[int]] = Field(min_length=1)
    scale: Annotated[int, Field(ge=2, le=9)] | None = None

    @field_validator("table")
    @classmethod
    def _rectangular(cls, table: list[list[int]]) -> list[list[int]]:
        widths = {len(r) for r in table}
        if len(widths) != 1:
            raise ValueError(f"expected rows of equal length, got lengths {sorted(widths)}")
        return table


class WeightedSumStep(_Step):
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

    def names(self) -> list[str]:
        """The layers summed, in order."""
        return list(self.weights) if self.weights is not None else list(self.layers or [])


def _fraction(value: Any) -> Any:
    if isinstance(value, str) and "/" in value:
        num, _, den = value.partition("/")
        try:
            return float(num) / float(den)
        except (ValueError, ZeroDivisionError):
            return value
    return value


class CombineStep(_Step):
    """Several grade layers into one: ``worst``, ``best`` or ``most_severe``.

    ``worst`` is the limiting factor rule (短板法: the worst grade wins); ``most_severe``
    merges sensitivities (the most severe level, 1 = 极敏感, wins).

    Layers that are absent (missing optional inputs) are left out, with a note.
    """

    op: Literal["worst", "best", "most_severe"]
    layers: list[str] = Field(min_length=1)


class GeometricMeanStep(_Step, BreakTableSpec):
    """Geometric mean of grade layers, graded by a break table.

    E.g. soil erosion sensitivity SS = (R·K·LS·C)^(1/4) (§2.4).
    """

    op: Literal["geometric_mean"]
    layers: list[str] = Field(min_length=2)
    scale: Annotated[int, Field(ge=2, le=9)] | None = None


class ShareStep(_Step):
    """Grade a service layer by cumulative share of its total over the study area.

    The highest-valued cells holding ``shares[0]`` of the total get ``grades[0]``,
    the next up to ``shares[1]`` get ``grades[1]``, and so on; the rest get the last
    grade. A whole-area statistic: sanqu computes the thresholds in a first pass.
    """

    op: Literal["share"]
    layer: str
    shares: list[Annotated[float, Field(gt=0, le=1)]] = Field(min_length=1)
    grades: list[int] | None = None
    scale: Annotated[int, Field(ge=2, le=9)] | None = None

    @model_validator(mode="after")
    def _check(self) -> ShareStep:
        if any(a >= b for a, b in zip(self.shares, self.shares[1:], strict=False)):
            raise ValueError(f"shares: expected strictly increasing shares, got {self.shares}")
        if self.grades is not None and len(self.grades) != len(self.shares) + 1:
            raise ValueError(f"grades: expected {len(self.shares) + 1} grades for "
                             f"{len(self.shares)} shares, got {len(self.grades)}")
        return self

    def table_grades(self) -> list[int]:
        """Grades from the highest-valued class down."""
        return self.grades or list(range(1, len(self.shares) + 2))


Conditions = Condition | list[Condition]


class DowngradeStep(_Step):
    """Where ``when`` holds, worsen ``input`` by ``by`` grades (negative improves) or set it.

    Grades stay within the input's scale. ``only_grades`` restricts the change to
    cells whose current grade is listed. ``when`` is one condition or a list that
    must all hold. Steps chain: each applies to the previous result.
    """

    op: Literal["downgrade"]
    input: str | None = None
    when: Conditions
    by: int | None = None
    to: int | None = None
    only_grades: list[int] | None = None

    @model_validator(mode="after")
    def _by_or_to(self) -> DowngradeStep:
        if (self.by is None) == (self.to is None):
            raise ValueError("expected exactly one of by or to")
        return self


class ConstrainStep(_Step):
    """Hard constraint: where ``when`` holds, the grade is ``grade`` whatever else holds."""

    op: Literal["constrain"]
    input: str | None = None
    when: Conditions
    grade: int = 5


class Action(_Model):
    """What a class does to a grade: set it ``to`` a grade, or change it ``by`` steps."""

    to: int | None = None
    by: int | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        if (self.to is None) == (self.by is None):
            raise ValueError("expected exactly one of to or by")
        return self


class ContiguityStep(_Step):
    """Contiguity post-processing (§2.7): grade by the patch each cell lies in.

    A whole-area step (patches cross blocks): it runs after every block is
    evaluated, on the compact grade raster, and only the collapse may follow it.

    Patches are the 4-connected cells whose grades fall in one group of
    ``patches_of``; cells in no group keep their grade. Each patch is measured
    (``compactness``: area ÷ area of its minimum bounding circle; ``area`` in
    ``unit``), the measure is graded into contiguity classes 1 (高) … k (低) by
    ``classes``, and then either ``actions`` (one per class: ``{to: g}`` or
    ``{by: n}``) or a ``table`` (rows: the input's grades, columns: the classes)
    gives the new grade.
    """

    op: Literal["contiguity"]
    input: str | None = None
    patches_of: list[list[int]] = [[1, 2], [3, 4]]
    measure: Literal["compactness", "area"]
    unit: Literal["m2", "ha", "mu", "km2"] = "ha"
    classes: BreakTableSpec
    actions: list[Action] | None = None
    table: list[list[int]] | None = None

    @model_validator(mode="after")
    def _actions_or_table(self) -> ContiguityStep:
        if (self.actions is None) == (self.table is None):
            raise ValueError("expected exactly one of actions or table")
        flat = [g for group in self.patches_of for g in group]
        if len(flat) != len(set(flat)):
            raise ValueError(f"patches_of: expected each grade in one group, got {self.patches_of}")
        return self


class CollapseStep(_Step):
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
    | GeometricMeanStep
    | ShareStep
    | DowngradeStep
    | ConstrainStep
    | ContiguityStep
    | CollapseStep,
    Field(discriminator="op"),
]


class EvaluationSpec(_Model):
    """Ordered named steps; the last step's result is the evaluation result."""

    scale: Annotated[int, Field(ge=2, le=9)] = 5
    steps: dict[str, Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _ends_in_collapse(self) -> EvaluationSpec:
        steps = list(self.steps.values())
        if not isinstance(steps[-1], CollapseStep):
            raise ValueError("steps: expected the last step to be a collapse to three levels")
        if len(steps[-1].levels) != 3:
            raise ValueError(
                f"steps: expected the collapse to give 3 levels, got {len(steps[-1].levels)}")
        for name, step in list(self.steps.items())[:-2]:
            if isinstance(step, ContiguityStep):
                raise ValueError(f"steps.{name}: a contiguity step works on the whole area, so "
                                 "only the final collapse may follow it")
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
    XZQDM / XZQMC come from the top-level ``units`` (``admin_overlay``: ``split``
    cuts polygons at unit borders; ``largest`` keeps each polygon whole in the unit
    holding most of it), else from ``study_area.admin_code`` / ``admin_name``; on
    the unit raster when polygons stay on cell edges, else by GEOS overlay (see
    :mod:`sanqu.planning_db`).
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
    extends: str | None = None
    grid: GridSpec
    study_area: StudyAreaSpec
    inputs: dict[str, InputSpec] = Field(min_length=1)
    landuse: LandUseSpec
    categories: dict[str, CategorySpec] = {}
    tables: dict[str, Any] = {}
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

    @property
    def present_inputs(self) -> dict[str, InputSpec]:
        """The inputs that have a file (optional inputs without a path left out)."""
        return {k: v for k, v in self.inputs.items() if v.path is not None}

    def absent_layers(self) -> dict[str, str]:
        """Inputs and factors that cannot be computed, each with the reason.

        An optional input without a path is absent; so is every factor that reads
        an absent layer. The evaluation skips the steps that need them.
        """
        out = {k: f"inputs.{k} is optional and has no path"
               for k, v in self.inputs.items() if v.path is None}
        for fname, spec in self.factors.items():
            missing = [r for r in factor_refs(spec) if r in out]
            if missing:
                out[fname] = out[missing[0]]
        return out

    def classes_of(self, layer: str) -> dict[str, list[int]] | None:
        """Class name → codes of a categorical layer (land use or ``categories``), else None."""
        if layer == self.landuse.input:
            return self.landuse.classes
        spec = self.categories.get(layer)
        return spec.classes if spec is not None else None


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


def _origin(message: str, user: dict[str, Any], origins: dict[str, str],
            preset: str | None) -> str:
    """Where a key named by an error came from, when not from the user's own file."""
    key = message.split(": ", 1)[0]
    for k, table in origins.items():
        if key == k or key.startswith(k + "."):
            return f" (from {table})"
    if preset and not presets.has_key(user, key):
        return f" (set by preset {preset!r})"
    return ""


def config_from_dict(data: Any, source: Path | None = None) -> Config:
    """Validate a parsed YAML document into a :class:`Config`.

    ``extends`` is resolved here (see :mod:`sanqu.presets`): the document is merged
    over its preset and named tables are spelled out before validation. Error
    messages name keys as the user's file spells them, and say when the faulty
    value came from the preset or from a named table.

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
    base = source.parent if source else Path.cwd()
    preset = data.get("extends") if isinstance(data.get("extends"), str) else None
    try:
        merged, origins = presets.resolve_tables(presets.expand(data, base))
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    try:
        cfg = Config.model_validate({**merged, "source": source})
    except ValidationError as exc:
        msg = _describe(exc.errors()[0])
        raise ConfigError(f"{label}: {msg}{_origin(msg, data, origins, preset)}") from None
    try:
        cfg = _resolve_paths(cfg, base)
        _cross_check(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}{_origin(str(exc), data, origins, preset)}") from None
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or holds an invalid value.
    """
    path = Path(path)
    return config_from_dict(presets.read_yaml(path), path.resolve())


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

    inputs = {k: v.model_copy(update={"path": fix(v.path) if v.path else None})
              for k, v in cfg.inputs.items()}
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
    def present(key: str, name: str) -> None:
        if name not in cfg.inputs:
            raise ConfigError(f"{key}: {name!r} is not a key of inputs")
        if cfg.inputs[name].path is None:
            raise ConfigError(f"{key}: {name!r} is an optional input without a path; "
                              "expected an input with a file")

    present("grid.reference", cfg.grid.reference)
    for name in cfg.study_area.valid_inputs:
        present("study_area.valid_inputs", name)
    present("landuse.input", cfg.landuse.input)
    if cfg.inputs[cfg.landuse.input].kind != "categorical":
        raise ConfigError(f"inputs.{cfg.landuse.input}.kind: land use must be 'categorical'")
    for name in cfg.categories:
        if name not in cfg.inputs or cfg.inputs[name].kind != "categorical":
            raise ConfigError(f"categories.{name}: expected the name of a categorical input")
        if name == cfg.landuse.input:
            raise ConfigError(f"categories.{name}: the land-use input's classes are in "
                              "landuse.classes")
    classes = set(cfg.landuse.classes)

    def known_classes(key: str, names: list[str]) -> None:
        for n in names:
            if n not in classes:
                raise ConfigError(
                    f"{key}: unknown land-use class {n!r}; expected one of {sorted(classes)}"
                )

    absent = cfg.absent_layers()
    seen: set[str] = set()
    for fname, f in cfg.factors.items():
        key = f"factors.{fname}"
        if fname in cfg.inputs:
            raise ConfigError(f"{key}: name is already used by an input")
        if isinstance(f, SlopeFactor | ReliefFactor | LsFactor):
            if f.input not in cfg.inputs:
                raise ConfigError(f"{key}.input: {f.input!r} is not a key of inputs")
            if cfg.inputs[f.input].kind != "continuous":
                raise ConfigError(f"{key}.input: {f.input!r} must be continuous")
        elif isinstance(f, DistanceFactor):
            known_classes(f"{key}.classes", f.classes)
        else:
            for field, ref in f.model_dump(exclude={"kind", "runoff_coefficients"}).items():
                if isinstance(ref, str) and ref not in cfg.inputs and ref not in seen:
                    raise ConfigError(f"{key}.{field}: {ref!r} is not an input or an earlier "
                                      "factor")
        if isinstance(f, WaterConservationFactor):
            known_classes(f"{key}.runoff_coefficients", list(f.runoff_coefficients))
            lacking = [c for c in cfg.landuse.classes if c not in f.runoff_coefficients]
            if lacking and fname not in absent:  # checked only when the factor can run
                raise ConfigError(f"{key}.runoff_coefficients: no coefficient for land-use "
                                  f"classes {lacking}; expected one per class")
        seen.add(fname)
    from .evaluate import build_evaluations  # step chains, scales, AHP: checked on load

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
    if lines.farmland.slope_factor in absent:
        raise ConfigError(f"lines.farmland.slope_factor: {absent[lines.farmland.slope_factor]}")
    for key, levels in (
        ("lines.red_line.from_levels", lines.red_line.from_levels),
        ("lines.farmland.suitability_levels", lines.farmland.suitability_levels),
        ("lines.ugb.grow_levels", lines.ugb.grow_levels),
        ("allocation.cultivated_levels", cfg.allocation.cultivated_levels),
    ):
        bad = [v for v in levels if v not in (1, 2, 3)]
        if bad:
            raise ConfigError(f"{key}: expected levels among 1, 2, 3, got {bad}")


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
