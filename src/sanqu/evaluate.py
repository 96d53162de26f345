"""双评价: compile the configured steps of each result and run them block by block.

Per-cell stage, plus a whole-area tail. :class:`Evaluation` compiles one result's
steps once, when the config is loaded:

- every reference is checked (an input, a factor or an earlier step), and every
  step gets the *scale* of the grades it produces (a collapse gives its levels, a
  matrix its own scale...), so a decision matrix must be exactly (grades of its
  row layer) x (grades of its column layer);
- steps that need an absent layer (an optional input without a path, or a factor
  or step built on one) are *skipped*, with a note: a skipped correction
  (downgrade, constraint) and a matrix whose column layer is missing hand their
  input grade on unchanged; a combination (worst, best, most severe) leaves the
  missing layers out; any other step becomes absent in turn. ``required: true``
  on a step makes a skip an error, and so does a result that cannot be computed;
- AHP weights and their consistency ratio are computed (CR ≥ 0.10 is an error
  unless ``accept_inconsistent``).

:meth:`Evaluation.run` then runs the per-cell steps on any block; the whole-area
steps (contiguity) and the collapse after them run in :meth:`Evaluation.finish`
on the compact grade raster of the whole study area. Cumulative-share grading
needs thresholds from the whole area, given by :meth:`Evaluation.fit` after a
first pass. The results are three-level rasters: 1 = 极重要 / 适宜,
2 = 重要 / 一般适宜, 3 = 一般 / 不适宜, 0 = outside the study area.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import patches, rules
from .config import (
    CollapseStep,
    CombineStep,
    Condition,
    Config,
    ConstrainStep,
    ContiguityStep,
    DowngradeStep,
    EvaluationSpec,
    GeometricMeanStep,
    LookupStep,
    MatrixStep,
    ReclassStep,
    ShareStep,
    WeightedSumStep,
)
from .errors import ConfigError

#: Labels of the three levels of each result, best first.
LEVEL_LABELS = {
    "eco_importance": ("极重要", "重要", "一般"),
    "agri_suitability": ("适宜", "一般适宜", "不适宜"),
    "urban_suitability": ("适宜", "一般适宜", "不适宜"),
}

#: Ops that correct an input grade: their statistics count the cells they changed.
CORRECTIONS = ("downgrade", "constrain", "contiguity")

#: Ops that grade raw values (non-zero even outside the study area): their output is masked.
GRADERS = ("reclass", "lookup", "share", "weighted_sum", "geometric_mean")

Runner = Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]


@dataclass
class Layer:
    """What the compiler knows of a layer before any data is read.

    Attributes
    ----------
    scale : int or None
        Grades 1..scale, or None for a layer of values (elevation, slope...).
    absent : str or None
        Why the layer cannot be computed (the first missing input), or None.
    origin : str or None
        For a step, the step at which the absence started.
    """

    scale: int | None
    absent: str | None = None
    origin: str | None = None


@dataclass
class Planned:
    """One compiled step.

    Attributes
    ----------
    name, key : str
        Step name and its config key ``evaluation.<result>.steps.<name>``.
    spec : Step
        The configured step.
    scale : int
        Grades the step produces (1..scale).
    status : {"run", "pass", "absent", "unused"}
        ``pass``: skipped, its input handed on unchanged (``source``); ``absent``: it
        cannot run; ``unused``: it could run, but only skipped steps read it.
    source : str or None
        For ``pass``, the layer handed on.
    note : str
        Why the step is skipped, or which layers a combination left out.
    reads : list of str
        Layers the step reads, in order (its input first for corrections).
    area : bool
        A whole-area step (runs in :meth:`Evaluation.finish`).
    """

    name: str
    key: str
    spec: Any
    scale: int
    status: str = "run"
    source: str | None = None
    note: str = ""
    why: str = ""
    reads: list[str] = field(default_factory=list)
    area: bool = False
    run: Runner | None = None
    table: rules.BreakTable | None = None
    codes: dict[int, int] | None = None
    matrix: list[list[int]] | None = None
    isin: list[list[int] | None] = field(default_factory=list)

    @property
    def op(self) -> str:
        """The step's operator."""
        return self.spec.op

    @property
    def base(self) -> str | None:
        """The layer a correction step corrects (None for other steps)."""
        return self.reads[0] if self.op in CORRECTIONS + ("collapse",) else None


@dataclass
class StepStats:
    """Cells per grade of one step's output, and cells a correction changed.

    Attributes
    ----------
    counts : numpy.ndarray of int64
        ``counts[g]`` cells of grade ``g`` inside the study area.
    changed : int or None
        Cells whose grade the step changed (corrections only).
    """

    counts: np.ndarray
    changed: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, out: np.ndarray, base: np.ndarray | None) -> None:
        """Add one block's output (and the grades it corrected); from any thread.

        Every step's grades are 0 outside the study area, so no mask is needed:
        ``counts[0]`` counts the cells outside and is not reported. The sums are
        integers, so blocks may add in any order.
        """
        counts = np.bincount(out.ravel(), minlength=self.counts.size)[: self.counts.size]
        changed = int(np.count_nonzero(out != base)) if base is not None else None
        with self._lock:
            self.counts += counts
            if changed is not None:
                self.changed = (self.changed or 0) + changed


class Evaluation:
    """One evaluation result's steps, compiled and ready to run on blocks.

    Parameters
    ----------
    name : str
        Result name (``agri_suitability``...), used in error messages.
    cfg : Config
        The whole config: layers, their scales, classes and absence.

    Raises
    ------
    ConfigError
        On a bad reference, a grade outside its scale, a matrix of the wrong size,
        an inconsistent AHP matrix, a required step that cannot run, or a result
        that cannot be computed from the inputs given.
    """

    def __init__(self, name: str, cfg: Config) -> None:
        self.name = name
        self.spec: EvaluationSpec = cfg.evaluation[name]
        self.cfg = cfg
        self.weights: dict[str, dict[str, float]] = {}
        self.consistency: dict[str, float] = {}
        self.thresholds: dict[str, list[float]] = {}
        self.plan: list[Planned] = []
        self.patches: dict[str, patches.PatchMeasure] = {}
        absent = cfg.absent_layers()
        self.layers: dict[str, Layer] = {}
        for k, spec in cfg.inputs.items():
            self.layers[k] = Layer(spec.scale, absent.get(k))
        for k in cfg.factors:
            self.layers[k] = Layer(None, absent.get(k))
        self._compile()

    @property
    def key(self) -> str:
        """Config key of this evaluation."""
        return f"evaluation.{self.name}"

    # ------------------------------------------------------------ compiling

    def _compile(self) -> None:
        previous: str | None = None
        for sname, spec in self.spec.steps.items():
            key = f"{self.key}.steps.{sname}"
            if sname in self.layers:
                raise ConfigError(f"{key}: step name is already used by an input or factor")
            p = Planned(sname, key, spec, self.spec.scale, area=isinstance(spec, ContiguityStep))
            compile_op = getattr(self, f"_c_{type(spec).__name__}")
            compile_op(p, previous)
            if p.status != "run" and spec.required:
                raise ConfigError(f"{key}: required, but {p.note}")
            self.layers[sname] = Layer(p.scale)
            if p.status == "absent":
                self.layers[sname] = Layer(p.scale, p.why, self._origin(p))
            self.plan.append(p)
            previous = sname
        self._prune()
        last = self.plan[-1]
        if last.status == "absent":
            origin = self.layers[last.name].origin
            raise ConfigError(
                f"{self.key}.steps.{origin}: the result depends on this step, which cannot run: "
                f"{self.layers[last.name].absent} (give the input a path, or override the step)")

    def _prune(self) -> None:
        """Mark steps that would run but whose result only skipped steps read."""
        needed = {self.plan[-1].name}
        for p in reversed(self.plan):
            if p.name not in needed:
                if p.status == "run":
                    p.status, p.note = "unused", "not run: only skipped steps read it"
                continue
            if p.status == "pass":
                needed.add(p.source)
            elif p.status == "run":
                needed.update(n for n in p.reads if not self.layers[n].absent)

    def needed_layers(self) -> set[str]:
        """Inputs and factors the running steps read."""
        out: set[str] = set()
        for p in self.plan:
            if p.status == "run":
                out.update(n for n in p.reads if not self.layers[n].absent)
        return out - {p.name for p in self.plan}

    def _origin(self, p: Planned) -> str:
        for name in p.reads:
            if self.layers[name].absent:
                return self.layers[name].origin or p.name
        return p.name

    def _ref(self, p: Planned, field: str, name: str | None, previous: str | None) -> str:
        if name is None:
            if previous is None:
                raise ConfigError(f"{p.key}.{field}: the first step has no previous result to use")
            name = previous
        if name not in self.layers:
            raise ConfigError(f"{p.key}.{field}: {name!r} is not an input, factor or earlier step")
        p.reads.append(name)
        return name

    def _grades(self, p: Planned, field: str, name: str | None, previous: str | None) -> int:
        """Reference a grade layer; returns its scale."""
        name = self._ref(p, field, name, previous)
        scale = self.layers[name].scale
        if scale is None:
            raise ConfigError(f"{p.key}.{field}: {name!r} holds values, not grades; expected an "
                              "earlier step or an input with a scale")
        return scale

    def _scale(self, p: Planned, spec_scale: int | None) -> None:
        p.scale = spec_scale or self.spec.scale

    def _in_scale(self, p: Planned, field: str, values: list[int]) -> None:
        scale = p.scale
        bad = [v for v in values if not 1 <= v <= scale]
        if bad:
            raise ConfigError(f"{p.key}.{field}: expected grades 1..{scale}, got {bad}")

    def _missing(self, p: Planned, names: list[str]) -> list[str]:
        return [n for n in names if self.layers[n].absent]

    def _skip(self, p: Planned, missing: str, source: str | None = None) -> bool:
        """Mark ``p`` skipped because ``missing`` is absent; pass ``source`` on if given."""
        p.why = self.layers[missing].absent or ""
        p.note = f"needs {missing!r} ({p.why})"
        if source is not None and not self.layers[source].absent:
            p.status, p.source = "pass", source
            p.note += f"; {source!r} passes on unchanged"
        else:
            p.status = "absent"
        return True

    def _absent_if_missing(self, p: Planned) -> bool:
        missing = self._missing(p, p.reads)
        return bool(missing) and self._skip(p, missing[0])

    def _codes(self, p: Planned, field: str, layer: str,
               items: list[int | str] | None) -> list[int] | None:
        """Codes of a list of codes and class names of a categorical layer."""
        if items is None:
            return None
        classes = self.cfg.classes_of(layer)
        names = [i for i in items if isinstance(i, str)]
        if names and classes is None:
            raise ConfigError(f"{p.key}.{field}: class names are allowed only for the land-use "
                              "layer or an input with categories")
        out: list[int] = []
        for item in items:
            if isinstance(item, str):
                if item not in classes:
                    raise ConfigError(f"{p.key}.{field}: unknown {self._kind(layer)} class "
                                      f"{item!r}; expected one of {sorted(classes)}")
                out.extend(classes[item])
            else:
                out.append(item)
        return out

    def _kind(self, layer: str) -> str:
        return "land-use" if layer == self.cfg.landuse.input else f"{layer!r}"

    def _c_ReclassStep(self, p: Planned, previous: str | None) -> None:
        spec: ReclassStep = p.spec
        layer = self._ref(p, "layer", spec.layer, previous)
        self._scale(p, spec.scale)
        p.table = spec.break_table()
        self._in_scale(p, "intervals" if spec.intervals else "grades", list(p.table.grades))
        if not self._absent_if_missing(p):
            table = p.table
            p.run = lambda env, mask: table.classify(env[layer])

    def _c_LookupStep(self, p: Planned, previous: str | None) -> None:
        spec: LookupStep = p.spec
        layer = self._ref(p, "layer", spec.layer, previous)
        self._scale(p, spec.scale)
        self._in_scale(p, "table", list(spec.table.values()))
        if spec.default is not None:
            self._in_scale(p, "default", [spec.default])
        classes = self.cfg.classes_of(layer)
        table: dict[int, int] = {}
        for item, grade in spec.table.items():
            for code in self._codes(p, "table", layer, [item]) or []:
                table[code] = grade
        if classes is not None:
            known = {c for codes in classes.values() for c in codes}
            unknown = [c for c in table if c not in known]
            if unknown:
                raise ConfigError(
                    f"{p.key}.table: {self._kind(layer)} code {unknown[0]} is in no class of "
                    f"{'landuse.classes' if layer == self.cfg.landuse.input else 'categories.'}"
                    f"{'' if layer == self.cfg.landuse.input else layer + '.classes'}; "
                    f"expected one of {sorted(known)}")
            lacking = [n for n, codes in classes.items() if any(c not in table for c in codes)]
            if lacking and spec.default is None:
                raise ConfigError(f"{p.key}.table: no grade for {self._kind(layer)} class "
                                  f"{lacking[0]!r}; expected a grade for every class (or default)")
        p.codes = table
        if not self._absent_if_missing(p):
            key, default = f"{p.key}.table", spec.default
            p.run = lambda env, mask: rules.lookup(env[layer], table, mask, key=key,
                                                   default=default)

    def _c_MatrixStep(self, p: Planned, previous: str | None) -> None:
        spec: MatrixStep = p.spec
        n = self._grades(p, "rows", spec.rows, previous)
        m = self._grades(p, "cols", spec.cols, previous)
        self._scale(p, spec.scale)
        got = (len(spec.table), len(spec.table[0]))
        if got != (n, m):
            raise ConfigError(
                f"{p.key}.table: expected a {n} x {m} matrix (rows: grades 1..{n} of "
                f"{spec.rows!r}, columns: grades 1..{m} of {spec.cols!r}), got {got[0]} x {got[1]}")
        self._in_scale(p, "table", [v for row in spec.table for v in row])
        p.matrix = spec.table
        rows, cols = p.reads
        if self.layers[rows].absent:
            self._skip(p, rows)
        elif self.layers[cols].absent:
            self._skip(p, cols, source=rows)
        else:
            table = spec.table
            p.run = lambda env, mask: rules.matrix(env[rows], env[cols], table)

    def _c_WeightedSumStep(self, p: Planned, previous: str | None) -> None:
        spec: WeightedSumStep = p.spec
        names = spec.names()
        scales = {n: self._grades(p, "weights" if spec.weights else "layers", n, previous)
                  for n in names}
        if len(set(scales.values())) > 1:
            raise ConfigError(f"{p.key}.layers: expected grade layers of one scale, got "
                              + ", ".join(f"{n} 1..{s}" for n, s in scales.items()))
        p.scale = next(iter(scales.values()))
        if spec.weights is not None:
            weights = dict(spec.weights)
        else:
            w, cr = rules.ahp_weights(spec.ahp)
            self.consistency[p.name] = cr
            if cr >= 0.10 and not spec.accept_inconsistent:
                raise ConfigError(
                    f"{p.key}.ahp: consistency ratio {cr:.3f} must be below 0.10 "
                    "(set accept_inconsistent: true to use it anyway)"
                )
            weights = dict(zip(names, (float(x) for x in w), strict=True))
        self.weights[p.name] = weights
        if not self._absent_if_missing(p):
            scale = p.scale
            p.run = lambda env, mask: rules.to_grade(
                rules.weighted_sum([env[k] for k in weights], list(weights.values())), scale)

    def _c_CombineStep(self, p: Planned, previous: str | None) -> None:
        spec: CombineStep = p.spec
        scales = {n: self._grades(p, "layers", n, previous) for n in spec.layers}
        if len(set(scales.values())) > 1:
            raise ConfigError(f"{p.key}.layers: expected grade layers of one scale, got "
                              + ", ".join(f"{n} 1..{s}" for n, s in scales.items()))
        p.scale = next(iter(scales.values()))
        missing = self._missing(p, p.reads)
        present = [n for n in p.reads if n not in missing]
        if not present:
            self._skip(p, missing[0])
            return
        if missing:
            p.note = "left out (absent): " + "; ".join(
                f"{n!r}: {self.layers[n].absent}" for n in missing)
        fn = {"worst": rules.worst, "best": rules.best, "most_severe": rules.most_severe}[spec.op]
        p.run = lambda env, mask: fn([env[n] for n in present])

    def _c_GeometricMeanStep(self, p: Planned, previous: str | None) -> None:
        spec: GeometricMeanStep = p.spec
        for n in spec.layers:
            self._grades(p, "layers", n, previous)
        self._scale(p, spec.scale)
        p.table = spec.break_table()
        self._in_scale(p, "intervals" if spec.intervals else "grades", list(p.table.grades))
        if not self._absent_if_missing(p):
            table, names = p.table, list(p.reads)
            p.run = lambda env, mask: table.classify(rules.geometric_mean([env[n] for n in names]))

    def _c_ShareStep(self, p: Planned, previous: str | None) -> None:
        spec: ShareStep = p.spec
        layer = self._ref(p, "layer", spec.layer, previous)
        if layer not in self.cfg.inputs and layer not in self.cfg.factors:
            raise ConfigError(f"{p.key}.layer: {layer!r} is a step; expected an input or a "
                              "factor holding service values")
        self._scale(p, spec.scale)
        self._in_scale(p, "grades", spec.table_grades())
        if not self._absent_if_missing(p):
            p.run = self._share_runner(p)

    def _share_runner(self, p: Planned) -> Runner:
        layer = p.reads[0]

        def run(env: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
            if p.table is None:  # pragma: no cover - Study.fit runs first
                raise RuntimeError(f"{p.key}: share thresholds not fitted (call Study.fit)")
            return p.table.classify(env[layer])

        return run

    def _conditions(self, p: Planned, spec: DowngradeStep | ConstrainStep,
                    previous: str | None) -> tuple[str, list[tuple[str, Condition]]]:
        base = spec.input
        scale = self._grades(p, "input", base, previous)
        p.scale = scale
        conds = spec.when if isinstance(spec.when, list) else [spec.when]
        named = []
        for i, cond in enumerate(conds):
            field = "when" if not isinstance(spec.when, list) else f"when.{i}"
            layer = self._ref(p, f"{field}.layer", cond.layer, previous)
            p.isin.append(self._codes(p, f"{field}.in", layer, cond.in_))
            named.append((layer, cond))
        return p.reads[0], named

    def _correction(self, p: Planned, base: str, conds: list[tuple[str, Condition]],
                    **change: Any) -> None:
        if self.layers[base].absent:
            self._skip(p, base)
            return
        missing = self._missing(p, [layer for layer, _ in conds])
        if missing:
            self._skip(p, missing[0], source=base)
            return
        isin, scale = p.isin, p.scale

        def run(env: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
            hit = np.ones(mask.shape, dtype=bool)
            for (layer, c), codes in zip(conds, isin, strict=True):
                hit &= rules.condition(env[layer], gt=c.gt, ge=c.ge, lt=c.lt, le=c.le, isin=codes)
            return rules.downgrade(env[base], hit, scale=scale, **change)

        p.run = run

    def _c_DowngradeStep(self, p: Planned, previous: str | None) -> None:
        spec: DowngradeStep = p.spec
        base, conds = self._conditions(p, spec, previous)
        if spec.to is not None:
            self._in_scale(p, "to", [spec.to])
        self._in_scale(p, "only_grades", spec.only_grades or [])
        self._correction(p, base, conds, by=spec.by, to=spec.to, only_grades=spec.only_grades)

    def _c_ConstrainStep(self, p: Planned, previous: str | None) -> None:
        spec: ConstrainStep = p.spec
        base, conds = self._conditions(p, spec, previous)
        self._in_scale(p, "grade", [spec.grade])
        self._correction(p, base, conds, to=spec.grade)

    def _c_ContiguityStep(self, p: Planned, previous: str | None) -> None:
        spec: ContiguityStep = p.spec
        p.scale = self._grades(p, "input", spec.input, previous)
        self._in_scale(p, "patches_of", [g for group in spec.patches_of for g in group])
        p.table = spec.classes.break_table()
        k = max(p.table.grades)
        if min(p.table.grades) < 1:
            raise ConfigError(f"{p.key}.classes: expected contiguity classes 1..n")
        if spec.actions is not None:
            if len(spec.actions) != k:
                raise ConfigError(f"{p.key}.actions: expected {k} actions, one per contiguity "
                                  f"class 1..{k}, got {len(spec.actions)}")
            self._in_scale(p, "actions", [a.to for a in spec.actions if a.to is not None])
            p.matrix = rules.actions_matrix(
                [("to", a.to) if a.to is not None else ("by", a.by) for a in spec.actions],
                p.scale)
        else:
            got = (len(spec.table), len(spec.table[0]))
            if got != (p.scale, k) or len({len(r) for r in spec.table}) != 1:
                raise ConfigError(f"{p.key}.table: expected a {p.scale} x {k} matrix (rows: "
                                  f"grades 1..{p.scale}, columns: contiguity classes 1..{k}), "
                                  f"got {got[0]} x {got[1]}")
            self._in_scale(p, "table", [v for row in spec.table for v in row])
            p.matrix = spec.table
        self._absent_if_missing(p)

    def _c_CollapseStep(self, p: Planned, previous: str | None) -> None:
        spec: CollapseStep = p.spec
        scale = self._grades(p, "input", spec.input, previous)
        flat = sorted(v for level in spec.levels for v in level)
        if flat != list(range(1, scale + 1)):
            raise ConfigError(
                f"{p.key}.levels: expected each grade 1..{scale} in exactly one level, "
                f"got {spec.levels}"
            )
        p.scale = len(spec.levels)
        if not self._absent_if_missing(p):
            base, levels = p.reads[0], spec.levels
            p.run = lambda env, mask: rules.collapse(env[base], levels)

    # ------------------------------------------------------------ running

    @property
    def block_plan(self) -> list[Planned]:
        """Steps run per block: all up to the first whole-area step."""
        out = []
        for p in self.plan:
            if p.area:
                break
            out.append(p)
        return out

    @property
    def area_plan(self) -> list[Planned]:
        """Steps run on the whole area after every block: a contiguity step and the collapse."""
        return self.plan[len(self.block_plan):]

    @property
    def handover(self) -> str:
        """The layer the per-block steps hand to the whole-area steps (or the result)."""
        area = self.area_plan
        return area[0].reads[0] if area else self.plan[-1].name

    @property
    def share_layers(self) -> dict[str, str]:
        """Share steps that will run, with the layer each grades (needs :meth:`fit`)."""
        return {p.name: p.reads[0] for p in self.plan
                if isinstance(p.spec, ShareStep) and p.status == "run"}

    def fit(self, values: dict[str, np.ndarray]) -> None:
        """Set the cumulative-share thresholds from the whole area's values.

        Parameters
        ----------
        values : dict of numpy.ndarray
            Per share step, the values of its layer in every study cell.
        """
        for p in self.plan:
            if p.name in values:
                spec: ShareStep = p.spec
                t = rules.share_thresholds(values[p.name], spec.shares)
                self.thresholds[p.name] = t
                p.table = rules.share_table(t, spec.table_grades())

    def notes(self) -> list[str]:
        """One line per skipped step or left-out layer."""
        out = []
        for p in self.plan:
            if p.status == "pass":
                out.append(f"{p.key}: skipped, {p.note}")
            elif p.status == "absent":
                out.append(f"{p.key}: not computed, {p.note}")
            elif p.status == "unused":
                out.append(f"{p.key}: {p.note}")
            elif p.note:
                out.append(f"{p.key}: {p.note}")
        return out

    def stats(self) -> dict[str, StepStats]:
        """Empty statistics, one per step that runs."""
        return {p.name: StepStats(np.zeros(p.scale + 1, dtype=np.int64))
                for p in self.plan if p.status == "run"}

    def run(self, layers: dict[str, np.ndarray], mask: np.ndarray, keep: bool = False,
            stats: dict[str, StepStats] | None = None
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the per-cell steps on one block.

        Parameters
        ----------
        layers : dict of numpy.ndarray
            Inputs and factors by name, all of one shape.
        mask : numpy.ndarray of bool
            Study area; cells outside get 0.
        keep : bool
            Return every intermediate step's grades too.
        stats : dict of StepStats, optional
            Accumulates grade counts and changed cells per step (see :meth:`stats`).

        Returns
        -------
        result : numpy.ndarray of uint8
            Levels 1..3 (or, when the result has a whole-area step, the grades it
            needs; :meth:`finish` completes them). 0 outside the mask.
        steps : dict of numpy.ndarray
            The intermediate grades by step name (empty unless ``keep``).
        """
        env = dict(layers)
        kept: dict[str, np.ndarray] = {}
        for p in self.block_plan:
            self._step(p, env, mask, kept if keep else None, stats)
        return env[self.handover], kept

    def _step(self, p: Planned, env: dict[str, np.ndarray], mask: np.ndarray,
              kept: dict[str, np.ndarray] | None, stats: dict[str, StepStats] | None) -> None:
        if p.status == "pass":
            env[p.name] = env[p.source]
        if p.status != "run":
            return
        out = p.run(env, mask)
        if p.op in GRADERS:  # the others keep the 0 of their (masked) inputs outside the area
            out = out * mask  # as np.where(mask, out, 0), several times faster
        out = out.astype(np.uint8, copy=False)
        env[p.name] = out
        if kept is not None:
            kept[p.name] = out
        if stats is not None:
            stats[p.name].add(out, env[p.base] if p.op in CORRECTIONS else None)

    def finish(self, grades: np.ndarray, mask: np.ndarray, res: tuple[float, float],
               keep: bool = False, stats: dict[str, StepStats] | None = None
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the whole-area steps (contiguity, then the collapse) on the whole grid.

        Whole-area stage: ``grades`` is the compact grade raster :meth:`run` handed
        over, for the whole study grid. With ``keep``, the patches measured (int32
        labels, 4 bytes a cell) are also kept in :attr:`patches` by step name, for
        explanations; otherwise they are freed with the step.

        Returns
        -------
        levels : numpy.ndarray of uint8
            Levels 1..3, 0 outside the mask.
        steps : dict of numpy.ndarray
            The whole-area steps' grades (empty unless ``keep``).
        """
        env = {self.handover: grades}
        kept: dict[str, np.ndarray] = {}
        self.patches = {}
        for p in self.area_plan:
            if isinstance(p.spec, ContiguityStep):
                p.run = self._contiguity_runner(p, res, keep)
            self._step(p, env, mask, kept if keep else None, stats)
        return env[self.plan[-1].name], kept

    def _contiguity_runner(self, p: Planned, res: tuple[float, float], keep: bool) -> Runner:
        spec: ContiguityStep = p.spec
        base, table, matrix = p.reads[0], p.table, p.matrix

        def run(env: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
            grades = env[base]
            measured = patches.measure_patches(grades, spec.patches_of, spec.measure, res,
                                               spec.unit)
            if keep:
                self.patches[p.name] = measured
            cls = table.classify(measured.values)
            cls[0] = 0
            return rules.correct_by_label(grades, measured.labels, cls, matrix)

        return run

    @property
    def needs_area(self) -> bool:
        """Whether the result has whole-area steps (so :meth:`finish` must run)."""
        return bool(self.area_plan)


def build_evaluations(cfg: Config) -> dict[str, Evaluation]:
    """Compile the three evaluations of a config (references, scales and AHP checked here)."""
    return {name: Evaluation(name, cfg) for name in cfg.evaluation}
