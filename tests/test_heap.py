"""sanqu.heap: pages kept for reuse inside kept_pages, handed back when it ends."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest

from sanqu import heap

needs_glibc = pytest.mark.skipif(heap._libc() is None or not Path("/proc/self/status").exists(),
                                 reason="malloc parameters are glibc's (Linux)")

MB = 1 << 20
SIZE = 256 * MB


def _rss() -> int:
    """This process's resident memory in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _faults_refilling() -> int:
    """Page faults of filling a fresh SIZE-byte array after one was filled and freed."""
    a = np.ones(SIZE, dtype=np.uint8)
    del a
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    b = np.ones(SIZE, dtype=np.uint8)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del b
    return after - before


@needs_glibc
def test_freed_pages_are_reused_inside_only() -> None:
    outside = _faults_refilling()
    with heap.kept_pages() as kept:
        assert kept
        inside = _faults_refilling()
    assert outside > 0  # a fresh mapping is faulted in again (4 KB or 2 MB pages)
    assert inside * 4 < outside, (inside, outside)


@needs_glibc
def test_pages_go_back_when_the_block_ends() -> None:
    with heap.kept_pages():
        a = np.ones(SIZE, dtype=np.uint8)
        held = _rss()
        del a
        kept = _rss()
    released = _rss()
    assert kept > held - 16 * MB  # freed, but still this process's
    assert released < kept - SIZE // 2  # handed back on leaving


@needs_glibc
def test_defaults_again_after_the_block() -> None:
    with heap.kept_pages():
        pass
    a = np.ones(SIZE, dtype=np.uint8)
    held = _rss()
    del a
    assert _rss() < held - SIZE // 2  # a large block is its own mapping again, unmapped on free


def test_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_libc", lambda: None)
    with heap.kept_pages() as kept:
        assert not kept
    heap.release_heap()  # nothing to do, no error
