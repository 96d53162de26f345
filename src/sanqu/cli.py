"""Command line: ``sanqu delineate``, ``evaluate``, ``explain`` and ``check``.

A thin layer: it parses options, calls :func:`sanqu.pipeline.delineate`,
:func:`sanqu.pipeline.evaluate`, :func:`sanqu.explain.explain` or
:func:`sanqu.check.check_layers` and prints. A user error (any
:class:`~sanqu.errors.SanquError`) becomes one line on stderr and exit code 1,
without a traceback; anything else is a bug and keeps it. ``sanqu check`` also
exits 1 when it finds a defect, after printing the report.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from . import __version__
from .check import check_layers
from .config import Config, area_ha, default_config_path, load_config
from .errors import SanquError
from .explain import explain
from .pipeline import EvaluationRun, RunResult, delineate, evaluate
from .report import summary as conflict_summary

log = logging.getLogger("sanqu")

verbosity = [
    click.option("-v", "--verbose", count=True, help="More output (repeat for debug)."),
    click.option("-q", "--quiet", count=True, help="Less output: no progress, no summary."),
]


def _options(fn):  # type: ignore[no-untyped-def]
    for opt in reversed(verbosity):
        fn = opt(fn)
    return fn


def _setup_logging(verbose: int, quiet: int) -> int:
    level = max(0, 1 + verbose - quiet)  # 0 quiet, 1 normal, 2 verbose, 3 debug
    for old in list(log.handlers):  # each invocation logs to the stderr it was given
        log.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.propagate = False
    log.setLevel({0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(level, logging.DEBUG))
    return level


class _Bar:
    """Progress display on stderr: one bar per stage while blocks advance."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.stage = ""
        self.bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            if total > 1:
                self.bar = click.progressbar(length=total, label=f"{stage:<10}", file=sys.stderr)
                self.bar.__enter__()
            else:
                click.echo(f"{stage} …", err=True)
        if self.bar is not None:
            self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def summary(result: RunResult) -> str:
    """The area table as aligned text."""
    lines = [f"{'layer':<12} {'name':<12} {'area (ha)':>12} {'share %':>8} {'polygons':>9}"]
    for row in result.areas:
        lines.append(
            f"{row['layer']:<12} {row['name']:<{12 - _wide(str(row['name']))}} "
            f"{row['area_ha']:>12,.2f} {row['share_pct']:>8.2f} {row['polygons']!s:>9}"
        )
    return "\n".join(lines)


def _wide(text: str) -> int:
    """Extra terminal columns taken by wide (CJK) characters."""
    return sum(1 for ch in text if ord(ch) > 0x2E80)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="sanqu")
def main() -> None:
    """Delineate the three zones and three lines (三区三线) from raster evaluations."""


config_argument = click.argument("config", required=False,
                                 type=click.Path(dir_okay=False, path_type=Path))
output_options = [
    click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
                 help="Output folder (created; must be empty unless --overwrite)."),
    click.option("--overwrite", is_flag=True, help="Replace the output folder if it holds files."),
]


def _outputs(fn):  # type: ignore[no-untyped-def]
    for opt in reversed(output_options):
        fn = opt(fn)
    return fn


@contextmanager
def _user_errors(bar: _Bar | None = None) -> Iterator[None]:
    """Turn a :class:`SanquError` into one line on stderr and exit code 1."""
    try:
        yield
    except SanquError as exc:
        if bar is not None:
            bar.close()
        click.echo(f"sanqu: error: {exc}", err=True)
        for issue in getattr(getattr(exc, "report", None), "issues", []):
            log.info("topology: %s", issue)  # the gate's whole report, with -v
        sys.exit(1)


def _config(config: Path | None) -> Config:
    cfg = load_config(config if config is not None else default_config_path())
    log.info("config: %s", cfg.source)
    return cfg


def _run(run: Callable[..., Any], config: Path | None, out: Path, overwrite: bool, verbose: int,
         quiet: int) -> tuple[Config, Any, int]:
    """Load the config and run ``run`` into ``out`` with a progress bar; log the notes."""
    level = _setup_logging(verbose, quiet)
    bar = _Bar(enabled=level >= 1 and sys.stderr.isatty())
    with _user_errors(bar):
        cfg = _config(config)
        result = run(cfg, out, overwrite=overwrite, progress=bar)
    bar.close()
    for note in result.notes:
        log.info("note: %s", note)
    skipped = sum(1 for n in result.notes if n.startswith(("evaluation.", "factors.")))
    if skipped and level == 1:
        log.warning("note: %d evaluation steps and factors skipped or not computed (optional "
                    "inputs without a path); -v lists them, manifest.json records them", skipped)
    if level >= 2:
        total = sum(result.seconds.values())
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items())
        click.echo(f"time: {total:.2f}s ({stages})", err=True)
    return cfg, result, level


@main.command("delineate")
@config_argument
@_outputs
@_options
def delineate_cmd(config: Path | None, out: Path, overwrite: bool, verbose: int,
                  quiet: int) -> None:
    """Run the whole pipeline on CONFIG (default: the bundled Dianbu sample)."""
    cfg, result, level = _run(delineate, config, out, overwrite, verbose, quiet)
    for key, value in result.report.items():
        log.info("%s: %.2f", key, value)
    if level >= 1:
        click.echo(f"{cfg.name}: outputs in {result.out}/")
        click.echo(summary(result))
        for line in conflict_summary(result.conflicts):
            click.echo(line)


@main.command("evaluate")
@config_argument
@_outputs
@_options
def evaluate_cmd(config: Path | None, out: Path, overwrite: bool, verbose: int,
                 quiet: int) -> None:
    """Run the 双评价 on CONFIG: the three results, every intermediate grade, class areas."""
    cfg, result, level = _run(evaluate, config, out, overwrite, verbose, quiet)
    if level >= 1:
        click.echo(f"{cfg.name}: evaluation in {result.out}/")
        click.echo(evaluation_summary(result))


@main.command("explain")
@config_argument
@click.option("--xy", nargs=2, type=float, metavar="X Y",
              help="The point, in the study grid's CRS.")
@click.option("--lonlat", nargs=2, type=float, metavar="LON LAT",
              help="The point as longitude and latitude (degrees).")
@_options
def explain_cmd(config: Path | None, xy: tuple[float, float] | None,
                lonlat: tuple[float, float] | None, verbose: int, quiet: int) -> None:
    """Print the evaluation chain of one cell: values → grades → lookups → corrections → level."""
    _setup_logging(verbose, quiet)
    if (xy is None) == (lonlat is None):
        raise click.UsageError("give the point with exactly one of --xy X Y or --lonlat LON LAT")
    with _user_errors():
        cfg = _config(config)
        x, y = xy or lonlat
        result = explain(cfg, x, y, lonlat=lonlat is not None)
    click.echo(str(result))


def evaluation_summary(result: EvaluationRun) -> str:
    """The class-area table and what each correction changed, as aligned text."""
    lines = [f"{'result':<18} {'level':>5} {'name':<8} {'area (ha)':>12} {'share %':>8}"]
    for row in result.areas:
        lines.append(f"{row['result']:<18} {row['level']:>5} "
                     f"{row['name']:<{8 - _wide(str(row['name']))}} "
                     f"{row['area_ha']:>12,.2f} {row['share_pct']:>8.2f}")
    changed = [r for r in result.steps if r["cells_changed"] not in ("", None)]
    if changed:
        lines.append("")
        lines.append(f"{'result':<18} {'step':<20} {'op':<11} {'cells changed':>13}")
        for row in changed:
            lines.append(f"{row['result']:<18} {row['step']:<20} {row['op']:<11} "
                         f"{row['cells_changed']:>13,}")
    skipped = sum(1 for r in result.steps if r["status"] != "run")
    lines.append(f"({skipped} steps skipped or not computed: see evaluation_steps.csv)")
    return "\n".join(lines)


class _Area(click.ParamType):
    """An area option: a number of m², or a number with a unit (``200 m2``, ``0.5 ha``)."""

    name = "area"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            m2 = float(text) if _is_number(text) else area_ha(text) * 10_000
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if m2 < 0:
            self.fail(f"expected a non-negative area, got {text!r}", param, ctx)
        return m2


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@main.command("check")
@click.argument("lines", nargs=-1, required=True)
@click.option("--min-area", type=_Area(), default="200 m2", show_default=True,
              help="Polygon parts below this are slivers (m², or with a unit: 0.5 ha, 3 亩).")
@click.option("--study-area", metavar="PATH[:LAYER]",
              help="Boundary layer; area of the lines outside it is a defect.")
@click.option("--tolerance", type=_Area(), default="0.01 m2", show_default=True,
              help="Overlaps and parts outside up to this area are ignored.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the defects to this CSV file.")
@_options
def check_cmd(lines: tuple[str, ...], min_area: float, study_area: str | None, tolerance: float,
              csv_path: Path | None, verbose: int, quiet: int) -> None:
    """Check line layers for overlaps, invalid geometry, slivers and parts outside.

    LINES are polygon layers: shapefiles, or FILE.gpkg:LAYER for one layer of a
    GeoPackage. Exit code 0 when nothing is wrong, 1 when a defect is found.
    """
    level = _setup_logging(verbose, quiet)
    try:
        report = check_layers(list(lines), min_area_m2=min_area, study_area=study_area,
                              tolerance_m2=tolerance)
        if csv_path is not None:
            report.write_csv(csv_path)
    except SanquError as exc:
        click.echo(f"sanqu: error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"sanqu: error: --csv {csv_path}: cannot write ({exc.strerror})", err=True)
        sys.exit(1)
    for note in report.notes:
        log.info("note: %s", note)
    if level >= 1 and report.defects:
        click.echo(report.table())
    if level >= 1 or not report.ok:
        click.echo(f"sanqu check: {report.summary()}")
    sys.exit(0 if report.ok else 1)
