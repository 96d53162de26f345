"""The C heap: keep freed pages for the next allocation, or hand them back.

A raster stage allocates and frees arrays of hundreds of megabytes many times
over (a mask, a distance, a label raster per rule). glibc's ``malloc`` serves
each from a fresh ``mmap`` and unmaps it on ``free``, so every one is faulted
in and zeroed by the kernel page by page again. On a virtual machine whose
host takes freed guest memory back (free page reporting), such fresh pages
cost about 2.5 s per GB here: 12 GB of them in the lines stage at 10⁸ cells.
Inside :func:`kept_pages` the blocks come from the heap instead and go back to
it, where the next array reuses the same pages; :func:`release_heap` hands the
heap's free pages back to the system once the stages that reuse them are done.

Only glibc (Linux) has these knobs; elsewhere both are no-ops.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterator
from contextlib import contextmanager

# mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

#: glibc's defaults, restored on leaving :func:`kept_pages`.
DEFAULT_MMAP_MAX = 65536
DEFAULT_TRIM_THRESHOLD = 128 * 1024

#: The heap's top is given back only above this many free bytes while pages are kept.
KEPT_TRIM_THRESHOLD = 2**31 - 1


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, or None on another C library (looked up once)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc's own functions
    except (OSError, AttributeError):
        return None
    return libc


def release_heap() -> None:
    """Hand the heap's free memory back to the system (glibc ``malloc_trim``; else nothing).

    GEOS frees polygons into the C heap, where glibc keeps them, in pieces too
    small for the large arrays OGR or the next group allocate; trimming returns
    them, so the process does not hold the peak of every group at once.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@contextmanager
def kept_pages() -> Iterator[bool]:
    """Serve large blocks from the heap, and keep the pages freed, until the block ends.

    glibc ``mallopt``: no block is mapped on its own (``M_MMAP_MAX`` 0), and the
    heap's free top is not given back (``M_TRIM_THRESHOLD`` 2 GB). The process
    then holds its high-water mark until the block ends, when the defaults are
    set again and the free pages are handed back (:func:`release_heap`). Use it
    where the high-water mark is held anyway (the raster stages, whose peak is
    the run's), not where another process's memory adds to it.

    Threads other than the main one allocate from their own arenas, which still
    map blocks larger than an arena's heap (64 MB). Setting these parameters
    turns off glibc's dynamic mmap threshold for the rest of the process (it
    stays where it was). Blocks later served from the heap's free holes go back
    to the heap, not to the system, until the next :func:`release_heap`.

    Yields
    ------
    bool
        Whether the pages are kept (False where the C library is not glibc).

    Examples
    --------
    >>> import numpy as np
    >>> with kept_pages():
    ...     a = np.ones(1 << 20)
    ...     del a
    ...     b = np.ones(1 << 20)  # the same pages, not faulted in again
    """
    libc = _libc()
    if libc is None:
        yield False
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, KEPT_TRIM_THRESHOLD)
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        release_heap()
