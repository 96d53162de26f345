"""Shared fixtures: one demo run on the bundled sample, GDAL tools, broken configs."""

from __future__ import annotations

import copy
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import sanqu
from sanqu import default_config_path, load_config

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CONFIG = ROOT / "configs" / "dianbu.yaml"


def require_tool(name: str, package: str = "gdal-bin") -> str:
    """Path of a command-line tool; skip the test when it is missing.

    With ``SANQU_REQUIRE_TOOLS=1`` (set by ``.ci/run``) a missing tool fails the
    test instead, so CI cannot pass by silently skipping the interoperability checks.
    """
    path = shutil.which(name)
    if path is None:
        reason = f"command-line tool {name!r} not found on PATH (install {package})"
        if os.environ.get("SANQU_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{reason}; SANQU_REQUIRE_TOOLS=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(name="require_tool", scope="session")
def require_tool_fixture() -> Callable[[str], str]:
    """The :func:`require_tool` helper as a fixture."""
    return require_tool


@pytest.fixture
def fresh_logger() -> Iterator[None]:
    """Drop the handler the CLI binds to the (per-invocation) CliRunner stderr."""
    log = logging.getLogger("sanqu")
    saved = list(log.handlers)
    yield
    for h in list(log.handlers):
        if h not in saved:
            log.removeHandler(h)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> sanqu.RunResult:
    """The bundled sample delineated once per session; ``.out`` holds the outputs."""
    out = tmp_path_factory.mktemp("demo") / "out"
    return sanqu.delineate(load_config(default_config_path()), out, overwrite=True)


def sample_dict() -> dict[str, Any]:
    """The bundled config as a plain dict, every file path made absolute."""
    data = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))

    def absolute(path: str) -> str:
        return str((SAMPLE_CONFIG.parent / path).resolve())

    lines = data["lines"]
    specs = [*data["inputs"].values(), data.get("units"), lines["red_line"].get("protected_areas"),
             lines["ugb"].get("special_use")]
    for spec in specs:
        if spec:
            spec["path"] = absolute(spec["path"])
    if isinstance(lines["farmland"].get("unit_quotas"), str):
        lines["farmland"]["unit_quotas"] = absolute(lines["farmland"]["unit_quotas"])
    return data


def write_config(path: Path, edit: Callable[[dict[str, Any]], object] | None = None) -> Path:
    """Write the sample config, edited in place by ``edit``, to ``path`` (inputs absolute)."""
    data = copy.deepcopy(sample_dict())
    if edit is not None:
        edit(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(name="write_config", scope="session")
def write_config_fixture() -> Callable[..., Path]:
    """The :func:`write_config` helper as a fixture (usable from any scope)."""
    return write_config


@pytest.fixture
def bad_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a modified copy of the sample config into ``tmp_path``; returns its path.

    Call it with a function that edits the parsed YAML in place (input paths are
    already absolute, so the copy runs from anywhere), or with ``text=`` to write
    raw text instead.
    """

    def make(
        edit: Callable[[dict[str, Any]], object] | None = None,
        *,
        text: str | None = None,
        name: str = "bad.yaml",
    ) -> Path:
        path = tmp_path / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
            return path
        return write_config(path, edit)

    return make
