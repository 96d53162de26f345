"""The benchmark's process bookkeeping: the descendants it samples are psutil's."""

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
