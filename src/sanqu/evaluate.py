"""双评价: run the configured evaluation steps into the three results.

Per-cell stage. :class:`Evaluation` compiles one result's steps once (AHP
weights and their consistency ratio, land-use class names turned into codes)
and then runs them on any block of layers. The results are three-level rasters:
1 = 极重要 / 适宜, 2 = 重要 / 一般适宜, 3 = 一般 / 不适宜, 0 = outside the study area.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import rules
from .config import (
    CollapseStep,
    CombineStep,
    Condition,
    Config,
    ConstrainStep,
    DowngradeStep,
    EvaluationSpec,
    LookupStep,
    MatrixStep,
    ReclassStep,
    WeightedSumStep,
)
from .errors import ConfigError

#: Labels of the three levels of each result, best first.
LEVEL_LABELS = {
    "eco_importance": ("极重要", "重要", "一般"),
    "agri_suitability": ("适宜", "一般适宜", "不适宜"),
    "urban_suitability": ("适宜", "一般适宜", "不适宜"),
}


@dataclass
class Evaluation:
    """One evaluation result's steps, compiled and ready to run on blocks.

    Parameters
    ----------
    name : str
        Result name (``agri_suitability``...), used in error messages.
    spec : EvaluationSpec
        The configured steps.
    landuse_input : str
        Name of the land-use input, whose class names tables may use.
    class_codes : dict
        Land-use class name → list of codes.
    """

    name: str
    spec: EvaluationSpec
    landuse_input: str
    class_codes: dict[str, list[int]]
    weights: dict[str, dict[str, float]] = field(init=False, default_factory=dict)
    consistency: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for sname, step in self.spec.steps.items():
            if isinstance(step, WeightedSumStep):
                self.weights[sname] = self._weights(sname, step)

    @property
    def key(self) -> str:
        """Config key of this evaluation."""
        return f"evaluation.{self.name}"

    def _weights(self, sname: str, step: WeightedSumStep) -> dict[str, float]:
        if step.weights is not None:
            return dict(step.weights)
        w, cr = rules.ahp_weights(step.ahp)
        self.consistency[sname] = cr
        if cr >= 0.10 and not step.accept_inconsistent:
            raise ConfigError(
                f"{self.key}.steps.{sname}.ahp: consistency ratio {cr:.3f} must be below 0.10 "
                "(set accept_inconsistent: true to use it anyway)"
            )
        return dict(zip(step.layers, (float(x) for x in w), strict=True))

    def _codes(self, items: list[int | str]) -> list[int]:
        out: list[int] = []
        for item in items:
            out.extend(self.class_codes[item] if isinstance(item, str) else [item])
        return out

    def _when(self, cond: Condition, layers: dict[str, np.ndarray]) -> np.ndarray:
        isin = self._codes(cond.in_) if cond.in_ is not None else None
        return rules.condition(layers[cond.layer], gt=cond.gt, ge=cond.ge, lt=cond.lt,
                               le=cond.le, isin=isin)

    def run(self, layers: dict[str, np.ndarray], mask: np.ndarray,
            keep: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the steps on one block.

        Parameters
        ----------
        layers : dict of numpy.ndarray
            Inputs and factors by name, all of one shape.
        mask : numpy.ndarray of bool
            Study area; cells outside get 0.
        keep : bool
            Return every intermediate step's grades too.

        Returns
        -------
        result : numpy.ndarray of uint8
            Levels 1..3, 0 outside the mask.
        steps : dict of numpy.ndarray
            The intermediate grades by step name (empty unless ``keep``).
        """
        env = dict(layers)
        scale = self.spec.scale
        previous: np.ndarray | None = None
        kept: dict[str, np.ndarray] = {}
        for sname, step in self.spec.steps.items():
            key = f"{self.key}.steps.{sname}"
            if isinstance(step, ReclassStep):
                out = rules.reclass(env[step.layer], step.breaks, step.grades, step.closed)
            elif isinstance(step, LookupStep):
                table: dict[int, int] = {}
                for k, v in step.table.items():
                    for code in self._codes([k]):
                        table[code] = v
                out = rules.lookup(env[step.layer], table, mask, key=f"{key}.table")
            elif isinstance(step, MatrixStep):
                out = rules.matrix(env[step.rows], env[step.cols], step.table)
            elif isinstance(step, WeightedSumStep):
                w = self.weights[sname]
                score = rules.weighted_sum([env[n] for n in w], list(w.values()))
                out = rules.to_grade(score, scale)
            elif isinstance(step, CombineStep):
                fn = rules.worst if step.op == "worst" else rules.best
                out = fn([env[n] for n in step.layers])
            elif isinstance(step, DowngradeStep):
                base = previous if step.input is None else env[step.input]
                out = rules.downgrade(base, self._when(step.when, env), by=step.by, to=step.to,
                                      only_grades=step.only_grades, scale=scale)
            elif isinstance(step, ConstrainStep):
                base = previous if step.input is None else env[step.input]
                out = rules.downgrade(base, self._when(step.when, env), to=step.grade,
                                      scale=scale)
            elif isinstance(step, CollapseStep):
                base = previous if step.input is None else env[step.input]
                out = rules.collapse(base, step.levels)
            else:  # pragma: no cover - the config union is exhaustive
                raise TypeError(step)
            out = np.where(mask, out, 0).astype(np.uint8)
            env[sname] = out
            previous = out
            if keep:
                kept[sname] = out
        assert previous is not None
        return previous, kept


def build_evaluations(cfg: Config) -> dict[str, Evaluation]:
    """Compile the three evaluations of a config (AHP weights checked here)."""
    return {
        name: Evaluation(name, spec, cfg.landuse.input, cfg.landuse.classes)
        for name, spec in cfg.evaluation.items()
    }
