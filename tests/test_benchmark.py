"""The benchmark's bookkeeping: the descendants it samples are psutil's; rates of short stages."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import run_benchmark  # noqa: E402


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_children_are_found_as_psutil_finds_them():
    proc = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30; true"])  # a child with its own child
    try:
        me = psutil.Process()
        for _ in range(50):  # until the shell has started its child
            expected = sorted(c.pid for c in me.children(recursive=True))
            if len(expected) >= 3:
                break
            time.sleep(0.05)
        assert proc.pid in expected and len(expected) >= 3
        assert sorted(run_benchmark._children()) == expected
        assert sorted(run_benchmark._children(psutil.Process(proc.pid))) == [
            p for p in expected if p != proc.pid]
    finally:
        for c in psutil.Process(proc.pid).children(recursive=True):
            c.kill()
        proc.kill()
        proc.wait()


def test_a_stage_of_a_few_milliseconds_gets_no_rate():
    raw = {"cells": 4_000_000, "seconds": {"read": 0.5, "write": 0.001},
           "peak_rss": {"read": 100 * run_benchmark.MB, "write": 100 * run_benchmark.MB},
           "ru_maxrss": 100 * run_benchmark.MB, "total_seconds": 2.0, "study_cells": 4_000_000,
           "block_size": 2048, "baseline_rss": 50 * run_benchmark.MB, "samples": 10,
           "hwm_exact": True, "revision": "x", "cpu_seconds": 2.0, "load_avg_1min": [0.5, 0.5]}
    stages = run_benchmark.summarise(2000, raw, 2.5)["stages"]
    assert stages["read"]["mcells_per_s"] == pytest.approx(8.0)
    assert stages["write"]["mcells_per_s"] is None
    assert "| write | 0.00 | – |" in run_benchmark.size_table(
        run_benchmark.summarise(2000, raw, 2.5))


def test_stages_running_on_two_threads_are_both_credited():
    import threading

    mem = run_benchmark.StageMemory()
    mem.on_stage("lines")
    entered, leave = threading.Event(), threading.Event()

    def block() -> None:
        mem.on_stage("factors")
        entered.set()
        leave.wait(5)
        mem.on_stage(None)

    worker = threading.Thread(target=block)
    worker.start()
    entered.wait(5)
    assert mem.current == {"lines", "factors"}
    mem.on_stage("allocate")  # a transition credits what ran until now: both stages
    assert set(mem.peak) == {"other", "lines", "factors"}
    assert mem.current == {"allocate", "factors"}
    mem.on_stage(None)
    leave.set()
    worker.join()
    assert mem.current == {"lines"}
    mem.on_stage(None)
    assert mem.current == {"other"}
