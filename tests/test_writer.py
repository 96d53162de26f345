"""The background writer (thread or process): jobs in order, one at a time, errors raised."""

import io
import os
import pickle
import threading
import time
from functools import partial
from pathlib import Path

import _writer_jobs
import pytest

import sanqu
import sanqu.pipeline
import sanqu.writer
from sanqu import OutputError, load_config
from sanqu.config import default_config_path
from sanqu.study import Timer
from sanqu.topology import Issue, Report, TopologyError
from sanqu.writer import Writer, _answer, _Call, writer_process


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


# ------------------------------------------------------------------ the writer process


def test_process_jobs_run_in_one_other_process_and_their_arguments_are_dropped() -> None:
    timer = Timer()
    with Writer(timer, process=True) as writer:
        pids = [writer.submit(os.getpid) for _ in range(3)]
        length = writer.submit(len, "abcd")
    assert len({p.result() for p in pids}) == 1
    assert pids[0].result() != os.getpid()
    assert length.result() == 4
    call = _Call(len, ("abc",))
    assert call() == 3
    assert writer_process().run(call) == 3
    assert call.args is None and call.job is None  # dropped here once sent


def test_a_job_error_in_the_process_is_raised_where_the_run_waits() -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        with Writer(Timer(), process=True) as writer:
            writer.submit(int, "not a number")
    with Writer(Timer(), process=True) as writer:  # the process serves the next job
        assert writer.submit(int, "7").result() == 7


def test_a_writer_process_that_died_gives_a_clear_error_and_is_replaced() -> None:
    writer = Writer(Timer(), process=True)
    dead = writer_process()
    dead._proc.kill()
    dead._proc.wait()
    writer.submit(os.getpid)
    with pytest.raises(OutputError, match=r"writer process stopped \(exit code -9\)"):
        writer.wait()
    writer._pool.shutdown()
    assert writer_process() is not dead and writer_process().alive()


def test_a_large_area_is_written_by_the_process_into_the_same_files(
    demo_run: sanqu.RunResult, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(sanqu.writer, "PROCESS_CELLS", 0)  # the demo counts as large
    used = []
    monkeypatch.setattr(sanqu.writer.WriterProcess, "run",
                        lambda self, call, run=sanqu.writer.WriterProcess.run:
                        used.append(call.job.__name__) or run(self, call))
    out = tmp_path / "out"
    sanqu.delineate(load_config(default_config_path()), out)
    assert used == ["write_plain", "write", "write_built", "write_built", "write_built"]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    first = demo_run.out
    assert files == sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    for name in files:
        assert (out / name).read_bytes() == (first / name).read_bytes(), name


def test_errors_come_back_as_raised_or_as_text_when_they_cannot_be_rebuilt():
    report = Report(issues=[Issue("gap", "eco_space", "a gap", 900.0, 1.0, 2.0)])
    buf = io.BytesIO()
    _answer(buf, ("error", TopologyError("levels fail the gate", report)))
    status, err = pickle.loads(buf.getvalue())
    assert status == "error" and isinstance(err, TopologyError)
    assert str(err) == "levels fail the gate" and err.report == report

    class Local(Exception):  # not importable in the run: cannot be rebuilt there
        pass

    buf = io.BytesIO()
    _answer(buf, ("error", Local("disk on fire")))
    status, err = pickle.loads(buf.getvalue())
    assert isinstance(err, OutputError) and str(err) == "Local: disk on fire"


def test_a_sanqu_error_raised_in_the_process_is_raised_in_the_run(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # for _writer_jobs
    writer_process().terminate()  # the next process starts with that path
    with pytest.raises(TopologyError, match="levels of eco_importance") as caught:
        with Writer(Timer(), process=True) as writer:
            writer.submit(_writer_jobs.fail_gate, "eco_importance")
    assert caught.value.report.issues[0].kind == "gap"
    with Writer(Timer(), process=True) as writer:  # still serving
        assert writer.submit(os.getpid).result() != os.getpid()


def test_a_job_that_cannot_be_sent_ends_the_process_cleanly():
    with pytest.raises(OutputError, match="writer process stopped"):
        with Writer(Timer(), process=True) as writer:
            writer.submit(len, [threading.Lock()])  # locks do not pickle
    with Writer(Timer(), process=True) as writer:  # a new process, in step
        assert writer.submit(len, "ab").result() == 2


def test_a_failed_run_ends_the_write_in_hand_rather_than_waiting():
    timer = Timer()
    with pytest.raises(RuntimeError, match="gate failed"):
        with Writer(timer, process=True) as writer:
            writer.submit(time.sleep, 30)
            raise RuntimeError("gate failed")
    assert "export" not in timer.seconds  # not waited for


def test_the_run_hands_back_its_freed_heap_before_waiting_for_a_write(monkeypatch):
    trims = []
    monkeypatch.setattr(sanqu.writer, "release_heap", lambda: trims.append(1))
    with Writer(Timer()) as writer:
        writer.submit(time.sleep, 0.3)
        writer.wait()  # the write is running: the heap is trimmed first
        assert trims == [1]
        writer.submit(int, "1").result()
        writer.wait()  # done already: nothing to wait for, no trim
        assert trims == [1]


@pytest.mark.parametrize(("repairs", "order"), [
    (False, ["write", "gate"]),  # handed over first: written while checked
    (True, ["gate", "write"]),  # a gate that repairs: the repaired group is written
])
def test_a_group_is_gated_and_handed_over_in_the_order_that_keeps_both_busy(repairs, order):
    log: list[str] = []
    timer = Timer()
    with Writer(timer) as writer:
        job = sanqu.pipeline.gate_and_write(
            timer, writer, lambda: log.append("gate"),
            lambda: log.append("write") or writer.submit(int, "7"), repairs=repairs)
        assert job.result() == 7 and log == order
    assert "topology" in timer.seconds


def test_a_group_queued_behind_a_write_starts_as_soon_as_the_writer_is_free():
    """The previous group's write ends while the next group is gated: its write starts then,
    before the gate is done; the call returns once the previous write is done."""
    release, started = threading.Event(), threading.Event()
    seen: list[bool] = []

    def gate() -> None:
        release.set()  # the previous write ends while this group is checked...
        seen.append(started.wait(5))  # ...and this group's write starts before the check ends

    with Writer(Timer()) as writer:
        previous = writer.submit(release.wait, 5)
        job = sanqu.pipeline.gate_and_write(Timer(), writer, gate,
                                            lambda: writer.submit(started.set), repairs=False)
        assert previous.done() and seen == [True]
        job.result()


def test_an_error_inside_queued_waits_for_nothing():
    release = threading.Event()
    timer = Timer()
    with Writer(timer) as writer:
        writer.submit(release.wait, 5)
        with pytest.raises(RuntimeError, match="gate failed"), writer.queued():
            writer.submit(int, "1")  # queued, not waited for
            raise RuntimeError("gate failed")
        assert "export" not in timer.seconds
        release.set()


def test_a_results_units_are_chosen_after_its_gate():
    """A gate that repairs a result drops its units on the raster: the write then asks for the
    unit polygons (units_for(False)), not the codes the traced levels carried."""
    from types import SimpleNamespace

    asked: list[bool] = []

    class Submits:
        def submit(self, job, *args):
            return args

    vec = SimpleNamespace(levels={"eco_importance": []}, crs=None,
                          level_units={"eco_importance": []})
    write = partial(sanqu.pipeline._write_levels, Submits(), None, None, vec,
                    lambda on_raster: asked.append(on_raster) or "units", "eco_importance")
    vec.level_units.pop("eco_importance")  # what Vectors.gate does when it repairs
    args = write()
    assert asked == [False] and args[5] == "units"


def test_a_write_queued_behind_a_running_one_is_cancelled_when_the_gate_fails():
    release = threading.Event()
    ran: list[str] = []
    with Writer(Timer()) as writer:
        writer.submit(release.wait, 5)  # still running when the gate fails
        with pytest.raises(RuntimeError, match="gate failed"), writer.queued():
            queued = writer.submit(ran.append, "written")
            raise RuntimeError("gate failed")
        assert queued.cancelled()
        release.set()
    assert ran == []  # the failed group was never written
