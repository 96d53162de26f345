"""The background writer: jobs in order, one at a time, errors raised in the run."""

import threading
import time

import pytest

import sanqu
import sanqu.pipeline
from sanqu import OutputError, load_config
from sanqu.pipeline import Writer
from sanqu.study import Timer


def test_jobs_run_in_order_one_at_a_time_on_another_thread():
    timer = Timer()
    log: list[tuple[str, str]] = []

    def job(name: str) -> str:
        log.append((name, "start"))
        time.sleep(0.05)
        log.append((name, "end"))
        return threading.current_thread().name

    with Writer(timer) as writer:
        jobs = [writer.submit(job, n) for n in "abc"]
    assert log == [(n, e) for n in "abc" for e in ("start", "end")]
    assert all(j.result().startswith("sanqu-write") for j in jobs)
    assert timer.seconds["export"] > 0.05  # the waits are counted as export


def test_a_failing_write_fails_the_run_and_leaves_no_output(tmp_path, monkeypatch,
                                                           write_config):
    def broken(*args, **kwargs):
        raise OutputError("planning_db.gpkg: disk full")

    monkeypatch.setattr(sanqu.pipeline.planning_db, "write_built", broken)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="disk full"):
        sanqu.delineate(load_config(write_config(tmp_path / "c.yaml")), out)
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
