"""numba's disk cache, kept in step with the sources of the whole package.

The kernels are compiled with ``cache=True``: the machine code is kept in
``__pycache__`` and reused while the function's own source file is unchanged.
numba does not notice a change to a kernel's callees in *other* files (the gate's
patch count in ``lattice`` calls the union-find row pass of ``trace``, say), so
after such an edit a stale kernel would run. :func:`drop_stale` removes every
cache entry older than the newest source file of the package, so the kernels are
compiled afresh after any edit (in an installed package nothing is newer, and
nothing is removed).
"""

from __future__ import annotations

from pathlib import Path

#: The package's folder.
PACKAGE = Path(__file__).resolve().parent


def drop_stale(package: Path = PACKAGE) -> list[Path]:
    """Remove numba cache files (``.nbi``, ``.nbc``) older than the newest ``.py`` of ``package``.

    Returns the files removed; files that cannot be removed (a read-only install)
    are left, as numba then compiles in memory.

    Examples
    --------
    >>> drop_stale(Path("/nonexistent"))
    []
    """
    cache = package / "__pycache__"
    sources = list(package.glob("*.py"))
    if not sources or not cache.is_dir():
        return []
    newest = max(p.stat().st_mtime for p in sources)
    removed = []
    for entry in (*cache.glob("*.nbi"), *cache.glob("*.nbc")):
        try:
            if entry.stat().st_mtime < newest:
                entry.unlink()
                removed.append(entry)
        except OSError:
            continue
    return removed
