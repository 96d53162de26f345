"""The ``sanqu`` command: options, the summary, and one clean line per user error."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import sanqu
from sanqu.cli import main

LAYERS = ("study_area", "eco_space", "agri_space", "urban_space", "red_line", "farmland", "ugb")

Edit = Callable[[dict[str, Any]], object]


pytestmark = pytest.mark.usefixtures("fresh_logger")


def invoke(*args: str | os.PathLike[str]) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def sanqu_script() -> str:
    found = shutil.which("sanqu")
    if found is None:
        candidate = Path(sys.prefix) / "bin" / "sanqu"
        assert candidate.is_file(), f"the sanqu console script is not installed in {sys.prefix}"
        found = str(candidate)
    return found


def leftovers(folder: Path) -> list[str]:
    """Names of hidden ``.OUT.*.partial`` folders left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def assert_user_error(result: Result, out: Path, *needles: str) -> str:
    """Exit 1, one ``sanqu: error:`` line naming every needle, no OUT, no partial folder."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("sanqu: error: "), line
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in line, f"{needle!r} not named in: {line}"
    assert not out.exists(), f"{out} was created by a failed run"
    assert leftovers(out.parent) == []
    return line


# ---------------------------------------------------------------- normal runs


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"sanqu, version {sanqu.__version__}"


def test_help_lists_delineate() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "delineate" in result.stdout


def test_delineate_default_sample_prints_area_table(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    result = invoke("delineate", "-o", out)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    stdout = result.stdout
    assert f"outputs in {out}/" in stdout
    table = stdout.splitlines()[1:]
    assert table[0].split() == ["layer", "name", "area", "(ha)", "share", "%", "polygons"]
    assert [row.split()[0] for row in table[1:len(LAYERS) + 1]] == list(LAYERS)
    # then the summary of the conflict report: overlaps, cells moved, quotas, the cap
    report = table[len(LAYERS) + 1:]
    assert [row.split(":")[0] for row in report] == [
        "overlaps resolved", "cells moved", "farmland quotas", "ugb"]
    assert "4 floors met" in report[2] and "of a cap of 242.64 ha" in report[3]
    assert "生态保护红线" in stdout and "永久基本农田" in stdout and "城镇开发边界" in stdout
    assert (out / "zones.tif").is_file() and (out / "sanqu.gpkg").is_file()
    assert leftovers(tmp_path) == []


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    result = invoke("delineate", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr == ""
    assert (out / "areas.csv").is_file()


def test_verbose_reports_config_and_timings(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    result = invoke("delineate", "-o", out, "-v")
    assert result.exit_code == 0, result.output
    assert "config: " in result.stderr and "dianbu.yaml" in result.stderr
    assert re.search(r"^time: [0-9.]+s \(align ", result.stderr, flags=re.MULTILINE)
    assert "生态保护红线" in result.stdout


def test_second_in_process_run_still_logs(tmp_path: Path) -> None:
    assert invoke("delineate", "-o", tmp_path / "A", "-q").exit_code == 0
    result = invoke("delineate", "-o", tmp_path / "B", "-v")
    assert result.exit_code == 0, result.output
    assert "config: " in result.stderr


def test_missing_output_option_is_usage_error() -> None:
    result = invoke("delineate")
    assert result.exit_code == 2
    assert "-o" in result.stderr and "Missing option" in result.stderr
    assert "Traceback" not in result.output


def test_console_script_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    proc = subprocess.run(
        [sanqu_script(), "delineate", "-o", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "生态保护红线" in proc.stdout
    assert (out / "manifest.json").is_file()


def test_console_script_user_error_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    proc = subprocess.run(
        [sanqu_script(), "delineate", str(tmp_path / "nope.yaml"), "-o", str(out)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("sanqu: error: ")
    assert "nope.yaml" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------- user errors


def test_config_file_missing(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    line = assert_user_error(
        invoke("delineate", tmp_path / "missing.yaml", "-o", out), out, "missing.yaml"
    )
    assert "not found" in line


def test_invalid_yaml(tmp_path: Path, bad_config: Callable[..., Path]) -> None:
    cfg = bad_config(text="name: x\ngrid: [dem, 1024\nstudy_area: {}\n")
    out = tmp_path / "OUT"
    line = assert_user_error(invoke("delineate", cfg, "-o", out), out, "bad.yaml")
    assert "YAML" in line and "line" in line


def test_yaml_not_a_mapping(tmp_path: Path, bad_config: Callable[..., Path]) -> None:
    cfg = bad_config(text="- just\n- a list\n")
    out = tmp_path / "OUT"
    assert_user_error(invoke("delineate", cfg, "-o", out), out, "bad.yaml")


def _steps(data: dict[str, Any], result: str) -> dict[str, Any]:
    return data["evaluation"].setdefault(result, {}).setdefault("steps", {})


def _step(data: dict[str, Any], result: str, name: str) -> dict[str, Any]:
    """A step of the sample; one only the preset defines starts empty and is merged."""
    return _steps(data, result).setdefault(name, {})


AGRI = [[1, 1, 1, 2, 5], [1, 1, 2, 3, 5], [2, 2, 3, 4, 5], [3, 4, 4, 5, 5], [5, 5, 5, 5, 5]]


def _agri_table(table: list[list[int]]) -> Edit:
    return lambda d: _step(d, "agri_suitability", "base").__setitem__("table", table)


def _weights_not_one(data: dict[str, Any]) -> None:
    step = _step(data, "urban_suitability", "base")
    del step["ahp"], step["layers"]
    step["weights"] = {"relief_200": 0.5, "location": 0.3, "water": 0.1}


def _inconsistent_ahp(data: dict[str, Any]) -> None:
    # reciprocal but cyclic judgements (land > location > water > land): CR far above 0.10
    _step(data, "urban_suitability", "base")["ahp"] = [
        [1, 9, "1/9"],
        ["1/9", 1, 9],
        [9, "1/9", 1],
    ]


def _set(*keys: str, value: object) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        node = data
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return edit


def _not_a_raster(tmp_path: Path) -> Edit:
    fake = tmp_path / "landuse_fake.tif"
    fake.write_text("this is not a GeoTIFF\n", encoding="utf-8")
    return _set("inputs", "landuse", "path", value=str(fake))


ERROR_CASES: dict[str, tuple[Callable[[Path], Edit], tuple[str, ...]]] = {
    "unknown_key": (lambda _: _set("grid", "colour", value="red"), ("grid.colour", "unknown")),
    "unknown_top_level_key": (lambda _: _set("extra", value=1), ("extra", "unknown")),
    "missing_required_key": (
        lambda _: lambda d: d["lines"].pop("farmland"),
        ("lines.farmland", "missing"),
    ),
    "matrix_wrong_rows": (
        lambda _: _agri_table(AGRI[:4]),
        ("evaluation.agri_suitability.steps.base.table", "5 x 5", "got 4 x 5"),
    ),
    "matrix_wrong_cols": (
        lambda _: _agri_table([r[:4] for r in AGRI]),
        ("evaluation.agri_suitability.steps.base.table", "5 x 5", "got 5 x 4"),
    ),
    "matrix_ragged": (
        lambda _: _agri_table([*AGRI[:2], AGRI[2][:4], *AGRI[3:]]),
        ("evaluation.agri_suitability.steps.base.table",),
    ),
    "ahp_inconsistent": (
        lambda _: _inconsistent_ahp,
        ("evaluation.urban_suitability.steps.base.ahp", "consistency ratio"),
    ),
    "ahp_wrong_size": (
        lambda _: lambda d: _step(d, "urban_suitability", "base")["ahp"].pop(),
        ("evaluation.urban_suitability.steps.base.ahp", "3 x 3"),
    ),
    "input_raster_missing": (
        lambda tmp: _set("inputs", "dem", "path", value=str(tmp / "no_dem.tif")),
        ("inputs.dem", "no_dem.tif", "not found"),
    ),
    "input_not_a_raster": (_not_a_raster, ("inputs.landuse", "landuse_fake.tif")),
    "farmland_quota_impossible": (
        lambda _: _set("lines", "farmland", "quota_ha", value=1_000_000),
        ("lines.farmland.quota_ha", "cannot be met"),
    ),
    "ugb_cap_below_built_up": (
        lambda _: lambda d: d["lines"]["ugb"].update(expansion_factor=None, cap_ha=1),
        ("lines.ugb.cap_ha", "built-up"),
    ),
    "ugb_no_cap": (
        lambda _: lambda d: d["lines"]["ugb"].update(expansion_factor=None, cap_ha=None),
        ("lines.ugb", "expansion_factor", "cap_ha"),
    ),
    "farmland_unit_quota_impossible": (
        lambda _: _set("lines", "farmland", "unit_quotas", value={"SYN02": 5000}),
        ("lines.farmland.unit_quotas", "SYN02", "shortfall 40"),
    ),
    "farmland_unit_quota_unknown_code": (
        lambda _: _set("lines", "farmland", "unit_quotas", value={"SYN09": 1}),
        ("lines.farmland.unit_quotas.SYN09", "no administrative unit"),
    ),
    "unit_quota_table_missing": (
        lambda tmp: _set("lines", "farmland", "unit_quotas", value=str(tmp / "quota.csv")),
        ("lines.farmland.unit_quotas", "quota.csv", "not found"),
    ),
    "units_code_field_missing": (
        lambda _: lambda d: d["units"].update(code_field="DM"),
        ("units.code_field", "'DM'", "XZQDM"),
    ),
    "area_with_unknown_unit": (
        lambda _: _set("lines", "red_line", "min_area_ha", value="3 acres"),
        ("lines.red_line.min_area_ha", "'3 acres'", "m2"),
    ),
    "meet_quota_without_quota": (
        lambda _: lambda d: d["lines"]["farmland"].update(
            selection="meet_quota", quota_ha=None, unit_quotas=None),
        ("lines.farmland.selection", "meet_quota needs"),
    ),
    "special_use_over_the_cap": (
        lambda _: _set("lines", "ugb", "cap_ha", value=190),
        ("lines.ugb.special_use", "exceed the cap"),
    ),
    "unknown_class_in_line": (
        lambda _: _set("lines", "farmland", "cultivated_classes", value=["paddy"]),
        ("lines.farmland.cultivated_classes", "paddy"),
    ),
    "unknown_class_in_lookup": (
        lambda _: lambda d: _steps(d, "eco_importance")["service"]["table"].update(desert=2),
        ("evaluation.eco_importance.steps.service.table", "desert"),
    ),
    "unknown_class_in_factor": (
        lambda _: _set("factors", "dist_water", "classes", value=["water", "lake"]),
        ("factors.dist_water.classes", "lake"),
    ),
    "landuse_code_in_no_class": (
        lambda _: _set("landuse", "classes", "cultivated", value=[1]),
        ("landuse.classes", "33"),
    ),
    "landuse_code_in_two_classes": (
        lambda _: _set("landuse", "classes", "forest", value=[6, 1]),
        ("landuse.classes.forest", "cultivated"),
    ),
    "unknown_input_reference": (
        lambda _: _set("grid", "reference", value="elevation"),
        ("grid.reference", "elevation"),
    ),
    "bad_literal": (
        lambda _: _set("outputs", "compress", value="JPEG"),
        ("outputs.compress", "JPEG"),
    ),
    "break_table_gap": (
        lambda _: lambda d: _step(d, "agri_suitability", "land").update(
            replace=True, op="reclass", layer="slope",
            intervals=[{"le": 2, "grade": 1}, {"gt": 6, "grade": 5}]),
        ("evaluation.agri_suitability.steps.land.intervals", "gap"),
    ),
    "break_table_overlap": (
        lambda _: lambda d: _step(d, "agri_suitability", "land").update(
            replace=True, op="reclass", layer="slope",
            intervals=[{"le": 2, "grade": 1}, {"ge": 2, "grade": 5}]),
        ("evaluation.agri_suitability.steps.land.intervals", "overlap"),
    ),
    "unknown_landuse_code_in_table": (
        lambda _: lambda d: _step(d, "eco_importance", "service")["table"].update({77: 1}),
        ("evaluation.eco_importance.steps.service.table", "land-use code 77 is in no class"),
    ),
    "matrix_wrong_size_for_levels": (
        lambda _: lambda d: _step(d, "eco_importance", "importance").update(
            table=[[1, 1, 1, 1]] * 3),
        ("evaluation.eco_importance.steps.importance.table", "3 x 3", "got 3 x 4"),
    ),
}


@pytest.fixture(scope="module")
def error_runs(
    tmp_path_factory: pytest.TempPathFactory, write_config: Callable[..., Path]
) -> Callable[[str], tuple[Result, Path]]:
    """Run each error case once (the CLI outcome is checked by two tests)."""
    cache: dict[str, tuple[Result, Path]] = {}

    def run(case: str) -> tuple[Result, Path]:
        if case not in cache:
            folder = tmp_path_factory.mktemp(case)
            cfg = write_config(folder / "bad.yaml", ERROR_CASES[case][0](folder))
            out = folder / "OUT"
            cache[case] = (invoke("delineate", cfg, "-o", out), out)
        return cache[case]

    return run


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_user_error_is_one_clean_line(
    case: str, error_runs: Callable[[str], tuple[Result, Path]]
) -> None:
    result, out = error_runs(case)
    assert_user_error(result, out)


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_user_error_names_key(case: str, error_runs: Callable[[str], tuple[Result, Path]]) -> None:
    result, out = error_runs(case)
    assert_user_error(result, out, *ERROR_CASES[case][1])


def test_weights_not_summing_to_one(tmp_path: Path, bad_config: Callable[..., Path]) -> None:
    cfg = bad_config(_weights_not_one)
    out = tmp_path / "OUT"
    assert_user_error(
        invoke("delineate", cfg, "-o", out),
        out,
        "evaluation.urban_suitability.steps.base.weights",
        "sum to 1",
        "0.9",
    )


def test_nonempty_out_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    out.mkdir()
    keep = out / "notes.txt"
    keep.write_text("mine\n", encoding="utf-8")
    before = keep.stat().st_mtime_ns
    result = invoke("delineate", "-o", out)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sanqu: error: ")
    assert "--overwrite" in lines[0] and str(out) in lines[0]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert keep.read_text(encoding="utf-8") == "mine\n"
    assert keep.stat().st_mtime_ns == before
    assert leftovers(tmp_path) == []


def test_failed_run_keeps_existing_out_with_overwrite(
    tmp_path: Path, bad_config: Callable[..., Path]
) -> None:
    """A run that fails late (quota) must not replace an existing OUT even with --overwrite."""
    out = tmp_path / "OUT"
    out.mkdir()
    (out / "old.txt").write_text("previous results\n", encoding="utf-8")
    cfg = bad_config(_set("lines", "farmland", "quota_ha", value=1_000_000))
    result = invoke("delineate", cfg, "-o", out, "--overwrite")
    assert result.exit_code == 1
    assert result.stderr.startswith("sanqu: error: lines.farmland.quota_ha")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert leftovers(tmp_path) == []


def test_failed_run_removes_parents_it_created(
    tmp_path: Path, bad_config: Callable[..., Path]
) -> None:
    out = tmp_path / "new" / "deeper" / "OUT"
    cfg = bad_config(_set("lines", "farmland", "quota_ha", value=1_000_000))
    result = invoke("delineate", cfg, "-o", out)
    assert result.exit_code == 1
    assert result.stderr.startswith("sanqu: error: lines.farmland.quota_ha")
    assert not (tmp_path / "new").exists()


def test_out_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    out.write_text("x", encoding="utf-8")
    result = invoke("delineate", "-o", out)
    assert result.exit_code == 1
    assert result.stderr.startswith("sanqu: error: -o ")
    assert len(result.stderr.splitlines()) == 1
    assert out.read_text(encoding="utf-8") == "x"
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- evaluate and explain


@pytest.fixture(scope="module")
def evaluate_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    out = tmp_path_factory.mktemp("evaluate") / "OUT"
    return invoke("evaluate", "-o", out), out


def test_evaluate_prints_the_class_area_table(evaluate_run: tuple[Result, Path]) -> None:
    result, out = evaluate_run
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith(f"evaluation in {out}/")
    assert lines[1].split() == ["result", "level", "name", "area", "(ha)", "share", "%"]
    assert [ln.split()[:3] for ln in lines[2:5]] == [
        ["eco_importance", "1", "极重要"], ["eco_importance", "2", "重要"],
        ["eco_importance", "3", "一般"]]
    assert "cells changed" in result.stdout and "not_farmable" in result.stdout
    assert "steps skipped or not computed" in result.stdout
    assert result.stderr.startswith("note: ") and "skipped" in result.stderr


def test_evaluate_writes_results_intermediates_tables(evaluate_run: tuple[Result, Path]) -> None:
    _, out = evaluate_run
    names = sorted(p.name for p in out.iterdir())
    assert names == ["agri_suitability.tif", "eco_importance.tif", "evaluation",
                     "evaluation_areas.csv", "evaluation_steps.csv", "manifest.json",
                     "urban_suitability.tif"]
    assert (out / "evaluation" / "agri_suitability" / "contiguity.tif").is_file()
    assert (out / "evaluation" / "urban_suitability" / "base.tif").is_file()
    assert not (out / "evaluation" / "agri_suitability" / "climate.tif").exists()  # skipped
    assert leftovers(out.parent) == []


def test_delineate_and_evaluate_share_the_engine(
    evaluate_run: tuple[Result, Path], demo_run: sanqu.RunResult
) -> None:
    _, out = evaluate_run
    for name in ("eco_importance", "agri_suitability", "urban_suitability"):
        assert (out / f"{name}.tif").read_bytes() == (Path(demo_run.out) / f"{name}.tif"
                                                        ).read_bytes(), name


def test_delineate_notes_skipped_steps_in_the_manifest(demo_run: sanqu.RunResult) -> None:
    import json

    manifest = json.loads((Path(demo_run.out) / "manifest.json").read_text(encoding="utf-8"))
    notes = manifest["notes"]
    assert any(n.startswith("evaluation.agri_suitability.steps.silt: skipped, needs 'soil_silt'")
               for n in notes)
    steps = manifest["evaluation"]["agri_suitability"]["steps"]
    assert steps["silt"]["status"] == "pass" and steps["land"]["status"] == "run"


def test_explain_prints_the_chain() -> None:
    result = invoke("explain", "--xy", "39541782.5", "3540073.3")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("cell row 151, col 101 ")
    assert "land use: code 33 (cultivated)" in out
    assert "agri_suitability → level 1 适宜" in out
    assert "land            reclass        slope 0.04" in out
    assert "riparian" in out and "when dist_water 94.87 ≤ 100: met → importance 3 by -1 → 2" in out
    assert "0.320×relief_200 1 + 0.558×location 1 + 0.122×water 1 = 1.000 → 1" in out


def test_explain_lonlat_finds_the_same_cell() -> None:
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(4527, 4326, always_xy=True).transform(39541782.5,
                                                                          3540073.3)
    a = invoke("explain", "--lonlat", f"{lon:.9f}", f"{lat:.9f}")
    b = invoke("explain", "--xy", "39541782.5", "3540073.3")
    assert a.exit_code == 0, a.output
    assert a.stdout.splitlines()[1:] == b.stdout.splitlines()[1:]


def test_explain_needs_exactly_one_point() -> None:
    result = invoke("explain")
    assert result.exit_code == 2 and "--xy X Y or --lonlat LON LAT" in result.stderr
    assert "Traceback" not in result.output


def test_explain_outside_the_grid_is_one_line(tmp_path: Path) -> None:
    result = invoke("explain", "--xy", "0", "0")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("sanqu: error: --xy 0 0: outside the study grid")
