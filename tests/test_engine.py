"""The evaluation engine on a small synthetic study that has every input of the preset.

Checks what only a whole run shows: factors that read factors (LS → soil conservation) get
exact halos, the cumulative-share pass and contiguity do not depend on the block size,
``sanqu.evaluate`` writes every step and counts what each changed, and ``sanqu.explain``
tells the same story as the rasters.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from _guideline import OPTIONAL, document, write_tif

import sanqu
from sanqu import Study, load_config
from sanqu.evaluate import build_evaluations
from sanqu.factors import water_conservation

N = 100

CATEGORICAL = {
    "soil_texture": 3, "desertification": 3, "rocky_desertification": 3, "salinisation": 3,
    "soil_environment": 5, "meteorological_hazard": 5, "hazard_danger": 4, "second_hazard": 5,
    "air_capacity": 5, "water_capacity": 5, "comfort": 5,
}


def _layers() -> dict[str, np.ndarray]:
    r, c = np.mgrid[0:N, 0:N].astype(np.float32)
    dem = 40 + 30 * np.sin(c / 9) * np.cos(r / 13) + 0.8 * r
    dem[:8, :8] = -9999  # a no-data corner
    out = {
        "dem": dem.astype(np.float32),
        "landuse": ((r // 20 + c // 25) % 5 + 1).astype(np.uint8),
        "precipitation": 300 + 12 * c,
        "evapotranspiration": 500 + r,
        "accumulated_temperature": 3000 + 60 * r,
        "soil_silt": (c % 10) / 10,
        "rainfall_erosivity": 50 + 8 * r,
        "soil_erodibility": np.full((N, N), 0.03, np.float32),
        "cover_management": 0.1 + (c % 5) * 0.2,
        "vegetation_cover": (r % 10) / 10,
        "drive_time": c / 18,
    }
    for i, (name, k) in enumerate(CATEGORICAL.items()):
        out[name] = ((r // 7 + c // 11 + i) % k + 1).astype(np.uint8)
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in out.items()}


@pytest.fixture(scope="module")
def study_cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    for name, data in _layers().items():
        write_tif(folder / f"{name}.tif", data, nodata=-9999 if name == "dem" else None)
    doc = document(OPTIONAL, folder)
    for name in CATEGORICAL:
        doc["inputs"][name]["kind"] = "categorical"
    doc["lines"]["farmland"]["quota_ha"] = None
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def evaluated(study_cfg: Path, tmp_path_factory: pytest.TempPathFactory) -> sanqu.EvaluationRun:
    out = tmp_path_factory.mktemp("eval") / "out"
    return sanqu.evaluate(load_config(study_cfg), out)


def test_every_step_runs_when_every_input_is_there(study_cfg: Path) -> None:
    with Study(load_config(study_cfg)) as study:
        assert study.notes == []
        statuses = {p.status for ev in study.evaluations.values() for p in ev.plan}
        assert statuses == {"run"}
        # LS reads the DEM (1 cell), soil conservation reads LS: 1 cell of halo is enough
        assert list(study.factors) == ["slope", "relief", "ls", "water_conservation",
                                       "soil_conservation"]
        assert study.waves[-1] == ["soil_conservation"]


def test_block_size_changes_nothing(study_cfg: Path) -> None:
    cfg = load_config(study_cfg)
    whole_cfg = cfg.model_copy(update={"grid": cfg.grid.model_copy(update={"block_size": 2048})})
    with Study(cfg) as small, Study(whole_cfg) as whole:
        assert small.grid.block_count(64) == 4
        a, b = small.surfaces(), whole.surfaces()
        for r in small.evaluations:
            assert small.evaluations[r].thresholds == whole.evaluations[r].thresholds
        for attr in ("eco", "agri", "urban"):
            np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr), err_msg=attr)
        one = whole.compute(whole.whole())
        for block in small.blocks():
            part = small.compute(block)
            for name in ("ls", "soil_conservation", "relief"):
                np.testing.assert_allclose(part.layers[name][part.mask],
                                           one.layers[name][block.slices][part.mask],
                                           rtol=1e-5, err_msg=name)


def test_water_conservation_by_hand(study_cfg: Path) -> None:
    layers = _layers()
    with Study(load_config(study_cfg)) as study:
        res = study.compute(study.whole(), evaluate=False)
    r, c = 50, 60  # land use code (50 // 20 + 60 // 25) % 5 + 1 = 5: grassland, α 0.0937
    assert layers["landuse"][r, c] == 5
    p, et = layers["precipitation"][r, c], layers["evapotranspiration"][r, c]
    expected = water_conservation(float(p), float(et), np.array([0.0937]))[0]
    assert res.layers["water_conservation"][r, c] == pytest.approx(expected)
    assert expected == pytest.approx(p - 0.0937 * p - et, rel=1e-6)


def test_evaluate_writes_every_step_and_the_tables(evaluated: sanqu.EvaluationRun) -> None:
    out = Path(evaluated.out)
    with rasterio.open(out / "agri_suitability.tif") as ds:
        agri = ds.read(1)
        inside = agri > 0
    study_cells = int(inside.sum())
    for result in ("eco_importance", "agri_suitability", "urban_suitability"):
        rows = [r for r in evaluated.areas if r["result"] == result]
        assert [r["level"] for r in rows] == [1, 2, 3]
        assert sum(r["cells"] for r in rows) == study_cells
        for row in evaluated.steps:
            if row["result"] == result:
                tif = out / "evaluation" / result / f"{row['step']}.tif"
                assert tif.is_file(), tif
                with rasterio.open(tif) as ds:
                    assert ds.dtypes[0] == "uint8" and ds.profile["tiled"]
                    assert ds.profile["compress"].lower() == "deflate"
    with (out / "evaluation_areas.csv").open(encoding="utf-8-sig") as fh:
        assert len(list(csv.DictReader(fh))) == 9
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    shares = manifest["evaluation"]["eco_importance"]["share_thresholds"]
    assert set(shares) == {"water_conservation_grade", "soil_conservation_grade"}


def test_cells_changed_match_the_rasters(study_cfg: Path,
                                        evaluated: sanqu.EvaluationRun) -> None:
    out = Path(evaluated.out)
    evs = build_evaluations(load_config(study_cfg))
    corrections = [r for r in evaluated.steps if r["cells_changed"] != ""]
    assert {r["op"] for r in corrections} == {"downgrade", "constrain", "contiguity"}
    assert sum(int(r["cells_changed"]) for r in corrections) > 0
    for row in corrections:
        p = next(p for p in evs[row["result"]].plan if p.name == row["step"])
        folder = out / "evaluation" / row["result"]
        with rasterio.open(folder / f"{p.name}.tif") as a, \
                rasterio.open(folder / f"{p.base}.tif") as b:
            after, before = a.read(1), b.read(1)
        assert int(np.count_nonzero(after != before)) == row["cells_changed"], row["step"]
        assert (after[after > 0] >= 1).all()
        if row["op"] == "downgrade" and p.spec.by and p.spec.by > 0:
            assert (after >= before).all(), row["step"]  # a downgrade never improves


def test_explain_agrees_with_evaluate(study_cfg: Path, evaluated: sanqu.EvaluationRun) -> None:
    cfg = load_config(study_cfg)
    out = Path(evaluated.out)
    for row, col in ((40, 30), (90, 95), (12, 70)):
        x, y = 39_500_000 + 30 * col + 15, 3_500_000 - 30 * row - 15
        ex = sanqu.explain(cfg, x, y)
        assert (ex.row, ex.col) == (row, col)
        for result, traces in ex.steps.items():
            with rasterio.open(out / f"{result}.tif") as ds:
                assert ex.levels[result] == ds.read(1)[row, col]
            for t in traces:
                if t.status == "run":
                    with rasterio.open(out / "evaluation" / result / f"{t.name}.tif") as ds:
                        assert t.value == ds.read(1)[row, col], (result, t.name)
        text = str(ex)
        assert "agri_suitability → level" in text and "with_climate" in text
        assert "× column" in text and ("patch of" in text or "in no patch group" in text)


def test_explain_outside_the_study_area(study_cfg: Path) -> None:
    cfg = load_config(study_cfg)
    with pytest.raises(sanqu.InputError, match=r"--xy .*: outside the study area"):
        sanqu.explain(cfg, 39_500_000 + 45, 3_500_000 - 45)  # the no-data corner
    with pytest.raises(sanqu.InputError, match=r"--xy 0 0: outside the study grid"):
        sanqu.explain(cfg, 0, 0)


def test_blocks_in_flight_change_nothing(study_cfg: Path) -> None:
    """Two blocks computed at once (grid.threads 2) give what one at a time gives."""
    cfg = load_config(study_cfg)

    def run(threads: int) -> tuple[sanqu.surfaces.Surfaces, dict]:
        grid = cfg.grid.model_copy(update={"block_size": 64, "threads": threads})
        stats: dict = {}
        with Study(cfg.model_copy(update={"grid": grid})) as study:
            assert study.grid.block_count(64) == 4
            stats = {r: ev.stats() for r, ev in study.evaluations.items()}
            seen: list[int] = []
            surf = study.surfaces(stats=stats, progress=seen.append)
        assert seen == [1, 2, 3, 4]  # stored in order
        return surf, stats

    (one, one_stats), (two, two_stats) = run(1), run(2)
    for attr in ("mask", "landclass", "eco", "agri", "urban", "steep", "slope_grade",
                 "near_grade", "protected", "special", "unit"):
        np.testing.assert_array_equal(getattr(one, attr), getattr(two, attr), err_msg=attr)
    for r, steps in one_stats.items():
        for step, st in steps.items():
            np.testing.assert_array_equal(st.counts, two_stats[r][step].counts,
                                          err_msg=f"{r}.{step}")
            assert st.changed == two_stats[r][step].changed, f"{r}.{step}"


def test_a_failing_block_stops_the_blocks_in_flight(study_cfg: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(study_cfg)
    grid = cfg.grid.model_copy(update={"block_size": 32, "threads": 2})
    with Study(cfg.model_copy(update={"grid": grid})) as study:
        real = study.compute
        started: list[int] = []

        def compute(block, **kw):  # noqa: ANN001, ANN003, ANN202
            started.append(block.row * 1000 + block.col)
            if len(started) == 2:
                raise ValueError("block two is broken")
            return real(block, **kw)

        monkeypatch.setattr(study, "compute", compute)
        with pytest.raises(ValueError, match="block two is broken"):
            study.surfaces()
    assert 2 <= len(started) < study.grid.block_count(32)  # the rest was not started


def test_overlapping_stages_share_the_elapsed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worked by hand on a fake clock: 10 s elapsed; read 2 s + 2 s, factors 12 s on threads."""
    from sanqu import study as study_mod

    clock = iter([0.0,    # overlapping starts
                  0.0, 2.0,   # read (block 1)
                  1.0, 3.0,   # read (block 2, beside it)
                  2.0, 8.0,   # factors (block 1)
                  3.0, 9.0,   # factors (block 2)
                  10.0])  # overlapping ends
    monkeypatch.setattr(study_mod.time, "perf_counter", lambda: next(clock))
    timer = study_mod.Timer()
    timer.seconds["align"] = 1.0
    with timer.overlapping():
        for stage in ("read", "read", "factors", "factors"):
            with timer(stage):
                pass
    # tallies read 4, factors 12 (sum 16) share the 10 s elapsed: 2.5 and 7.5
    assert dict(timer.seconds) == {"align": 1.0, "read": 2.5, "factors": 7.5}
    monkeypatch.undo()  # the real clock again
    with pytest.raises(RuntimeError, match="not reentrant"):
        with timer.overlapping(), timer.overlapping():
            pass
