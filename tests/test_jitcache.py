"""numba's disk cache is dropped when any source of the package is newer than it."""

import os
import subprocess
import sys
import textwrap

from sanqu.jitcache import drop_stale


def test_entries_older_than_the_newest_source_are_removed(tmp_path):
    (tmp_path / "a.py").write_text("")
    (tmp_path / "b.py").write_text("")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    old, fresh = cache / "a.f-3.py311.nbi", cache / "a.g-9.py311.nbc"
    old.write_bytes(b"")
    fresh.write_bytes(b"")
    os.utime(tmp_path / "a.py", (100, 100))
    os.utime(tmp_path / "b.py", (200, 200))  # b edited after f was cached
    os.utime(old, (150, 150))
    os.utime(fresh, (250, 250))
    assert drop_stale(tmp_path) == [old]
    assert not old.exists() and fresh.exists()
    assert drop_stale(tmp_path) == []


def test_a_kernel_sees_its_callee_edited_in_another_file(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "b.py").write_text(textwrap.dedent("""
        from numba import njit

        @njit(cache=True)
        def g(x):
            return x + 1
    """))
    (package / "a.py").write_text(textwrap.dedent("""
        from numba import njit
        from .b import g

        @njit(cache=True)
        def f(x):
            return g(x) * 10
    """))
    run = [sys.executable, "-c", "import sys; from pathlib import Path; "
           "from sanqu.jitcache import drop_stale; drop_stale(Path(sys.argv[1])); "
           "from pkg.a import f; print(f(1))", str(package)]
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    assert subprocess.run(run, capture_output=True, text=True, env=env,
                          check=True).stdout.strip() == "20"
    b = package / "b.py"
    b.write_text(b.read_text().replace("x + 1", "x + 2"))
    stamp = max(p.stat().st_mtime for p in (package / "__pycache__").glob("*.nb*")) + 1
    os.utime(b, (stamp, stamp))  # newer than the cache, whatever the clock's resolution
    assert subprocess.run(run, capture_output=True, text=True, env=env,
                          check=True).stdout.strip() == "30"
