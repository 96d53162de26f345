"""Explain one cell: the chain from factor values to the three evaluation levels.

``sanqu explain [CONFIG] --xy X Y`` and :func:`explain` run the same engine as
``sanqu evaluate`` on the block of one cell (with the halo its factors need) and
report, step by step, what each rule saw and gave: factor values → grades →
matrix lookups → corrections → contiguity → level. Cumulative-share thresholds
and contiguity need the whole study area, so a config that uses them is first
evaluated whole (once, without writing anything).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pyproj import CRS, Transformer

from . import rules
from .config import Condition, Config
from .errors import InputError
from .evaluate import LEVEL_LABELS, Evaluation, Planned
from .grid import Block
from .study import Study


@dataclass
class StepTrace:
    """One step of one result at the explained cell.

    Attributes
    ----------
    name, op, status : str
        Step name, operator and status (``run``, ``pass``, ``absent``, ``unused``).
    value : int or None
        The grade (or level) the step gave the cell; None if it did not run.
    text : str
        What the step saw and did, in words.
    """

    name: str
    op: str
    status: str
    value: int | None
    text: str


@dataclass
class Explanation:
    """The evaluation chain of one cell; ``str()`` gives the readable report.

    Attributes
    ----------
    x, y : float
        The point, in the study grid's CRS.
    row, col : int
        Its cell in the study grid.
    crs : str
        The study grid's CRS.
    landuse : tuple of (int, str)
        Land-use code and class of the cell.
    values : dict of float
        Inputs and computed factors at the cell.
    steps : dict of list of StepTrace
        Per result, every step in order.
    levels : dict of int
        Per result, the final level (1..3).
    """

    x: float
    y: float
    row: int
    col: int
    crs: str
    landuse: tuple[int, str]
    values: dict[str, float]
    steps: dict[str, list[StepTrace]] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"cell row {self.row}, col {self.col} (x {self.x:.2f}, y {self.y:.2f}, "
                 f"{self.crs})",
                 f"land use: code {self.landuse[0]} ({self.landuse[1]})",
                 "values: " + ", ".join(f"{k} {_num(v)}" for k, v in self.values.items())]
        for result, traces in self.steps.items():
            level = self.levels[result]
            lines.append("")
            lines.append(f"{result} → level {level} {LEVEL_LABELS[result][level - 1]}")
            width = max(len(t.name) for t in traces)
            for t in traces:
                if t.status in ("absent", "unused"):
                    continue
                lines.append(f"  {t.name:<{width}}  {t.op:<14} {t.text}")
            skipped = [t.name for t in traces if t.status in ("absent", "unused")]
            if skipped:
                lines.append(f"  (not computed: {', '.join(skipped)})")
        return "\n".join(lines)


def _num(v: float) -> str:
    """A value as text: whole numbers without decimals, others to 4 significant digits."""
    if float(v).is_integer() or abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.4g}"


def explain(cfg: Config, x: float, y: float, *, lonlat: bool = False) -> Explanation:
    """Explain the evaluation of the cell holding point ``(x, y)``.

    Parameters
    ----------
    cfg : Config
        A validated configuration.
    x, y : float
        The point in the study grid's CRS, or longitude and latitude (degrees,
        WGS 84 / CGCS2000) when ``lonlat``.
    lonlat : bool
        Read ``x, y`` as longitude, latitude.

    Returns
    -------
    Explanation

    Raises
    ------
    InputError
        If the point lies outside the study grid or outside the study area.
    """
    where = f"--{'lonlat' if lonlat else 'xy'} {x:g} {y:g}"
    with Study(cfg) as study:
        grid = study.grid
        if lonlat:
            to_grid = Transformer.from_crs(CRS.from_epsg(4326), grid.crs, always_xy=True)
            x, y = to_grid.transform(x, y)
        row, col = grid.rowcol(x, y)
        if not (0 <= row < grid.height and 0 <= col < grid.width):
            left, bottom, right, top = grid.bounds
            raise InputError(f"{where}: outside the study grid (x {left:.1f}..{right:.1f}, "
                             f"y {bottom:.1f}..{top:.1f} in {grid.crs.name})")
        study.fit()
        res = study.compute(Block(row, col, 1, 1, study.halo), keep=True)
        if not res.mask[0, 0]:
            raise InputError(f"{where}: outside the study area (cell row {row}, col {col} has "
                             f"no data in {cfg.study_area.valid_inputs})")
        whole: dict[str, dict[str, int]] = {r: {} for r in study.evaluations}
        if any(ev.needs_area for ev in study.evaluations.values()):
            surf = study.surfaces(keep=True, on_area=lambda r, step, g: whole[r].__setitem__(
                step, int(g[row, col])))
            levels = {"eco_importance": surf.eco, "agri_suitability": surf.agri,
                      "urban_suitability": surf.urban}
            final = {r: int(a[row, col]) for r, a in levels.items()}
        else:
            final = {r: int(v[0, 0]) for r, v in res.results.items()}
        values = {k: float(v[0, 0]) for k, v in res.layers.items()}
        code = int(values[cfg.landuse.input])
        cls = study.class_names[int(res.landclass[0, 0]) - 1]
        out = Explanation(x, y, row, col, grid.crs.to_string(), (code, cls), values)
        for r, ev in study.evaluations.items():
            env = dict(values)
            env.update({k: int(v[0, 0]) for k, v in res.steps[r].items()})
            env.update(whole[r])
            out.steps[r] = [_trace(ev, p, env, (row, col), grid.cell_area) for p in ev.plan]
            out.levels[r] = final[r]
    return out


def _trace(ev: Evaluation, p: Planned, env: dict[str, float], cell: tuple[int, int],
           cell_area: float) -> StepTrace:
    if p.status == "pass":
        env[p.name] = env[p.source]
        return StepTrace(p.name, p.op, p.status, int(env[p.name]),
                         f"skipped ({p.why}): {p.source} {int(env[p.name])} passes on")
    if p.status != "run":
        return StepTrace(p.name, p.op, p.status, None, p.note)
    value = int(env[p.name])
    return StepTrace(p.name, p.op, p.status, value,
                     _describe(ev, p, env, value, cell, cell_area))


def _describe(ev: Evaluation, p: Planned, env: dict[str, float], value: int,
              cell: tuple[int, int], cell_area: float) -> str:
    spec = p.spec
    got = {n: env[n] for n in p.reads if n in env}

    def v(name: str) -> str:
        return _num(got[name]) if name in got else "?"

    if p.op in ("reclass", "share"):
        layer = p.reads[0]
        cls = int(p.table.index(np.array([got[layer]]))[0])
        extra = ""
        if p.op == "share":
            extra = f"; thresholds {[_num(t) for t in ev.thresholds[p.name]]} for shares " \
                    f"{spec.shares}"
        return f"{layer} {v(layer)} is {p.table.describe(cls)} → {value}{extra}"
    if p.op == "lookup":
        layer = p.reads[0]
        code = int(got[layer])
        classes = ev.cfg.classes_of(layer) or {}
        name = next((n for n, codes in classes.items() if code in codes), None)
        return f"{layer} code {code}{f' ({name})' if name else ''} → {value}"
    if p.op == "matrix":
        rows, cols = p.reads
        return f"row {rows} {v(rows)} × column {cols} {v(cols)} → {value}"
    if p.op == "weighted_sum":
        w = ev.weights[p.name]
        terms = " + ".join(f"{wt:.3f}×{n} {v(n)}" for n, wt in w.items())
        score = sum(wt * got[n] for n, wt in w.items())
        return f"{terms} = {score:.3f} → {value} (nearest grade, halves to the worse)"
    if p.op in ("worst", "best", "most_severe"):
        shown = ", ".join(f"{n} {v(n)}" for n in p.reads if n in got)
        left = f"; {p.note}" if p.note else ""
        return f"{spec.op.replace('_', ' ')} of {shown} → {value}{left}"
    if p.op == "geometric_mean":
        prod = np.prod([got[n] for n in p.reads]) ** (1 / len(p.reads))
        cls = int(p.table.index(np.array([prod]))[0])
        shown = " · ".join(f"{n} {v(n)}" for n in p.reads)
        return f"({shown})^(1/{len(p.reads)}) = {prod:.3f} is {p.table.describe(cls)} → {value}"
    if p.op == "contiguity":
        base = p.reads[0]
        measured = ev.patches[p.name]
        label = int(measured.labels[cell])
        if label == 0:
            return f"{base} {v(base)} is in no patch group {spec.patches_of}: unchanged {value}"
        m = measured.values[label]
        unit = "" if spec.measure == "compactness" else f" {spec.unit}"
        cls = int(p.table.index(np.array([m]))[0])
        ha = measured.cells[label] * cell_area / 10_000
        return (f"patch of {measured.cells[label]} cells ({ha:.1f} ha), {spec.measure} "
                f"{_num(m)}{unit} is {p.table.describe(cls)} → class {p.table.grades[cls]}; "
                f"{base} {v(base)} × class {p.table.grades[cls]} → {value}")
    if p.op in ("downgrade", "constrain"):
        base = p.reads[0]
        conds = spec.when if isinstance(spec.when, list) else [spec.when]
        tests = " and ".join(f"{c.layer} {v(c.layer)} {_condition(c)}" for c in conds)
        if not _met(p, got):
            return f"when {tests}: not met → {base} {v(base)} unchanged"
        if p.op == "downgrade":
            change = f"to {spec.to}" if spec.to is not None else f"by {spec.by:+d}"
            only = f" (only grades {spec.only_grades})" if spec.only_grades else ""
            return f"when {tests}: met → {base} {v(base)} {change}{only} → {value}"
        return f"when {tests}: met → grade {spec.grade}"
    if p.op == "collapse":
        base = p.reads[0]
        return f"{base} {v(base)} → level {value}"
    return f"→ {value}"  # pragma: no cover - every op is described above


def _met(p: Planned, got: dict[str, float]) -> bool:
    conds = p.spec.when if isinstance(p.spec.when, list) else [p.spec.when]
    ok = True
    for c, codes in zip(conds, p.isin, strict=True):
        ok &= bool(rules.condition(np.array([got[c.layer]]), gt=c.gt, ge=c.ge, lt=c.lt, le=c.le,
                                   isin=codes)[0])
    return ok


def _condition(c: Condition) -> str:
    parts = [f"{sym} {_num(val)}" for sym, val in
             ((">", c.gt), ("≥", c.ge), ("<", c.lt), ("≤", c.le)) if val is not None]
    if c.in_ is not None:
        parts.append(f"in {c.in_}")
    return " and ".join(parts)
