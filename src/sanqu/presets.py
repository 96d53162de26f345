"""Config inheritance: ``extends:``, the key-by-key merge, and named tables.

A config may start from a preset shipped with sanqu (``extends: guideline``, the
defaults of methodology.md §2 in ``sanqu/presets/guideline.yaml``) or from another
YAML file (``extends: ../regional.yaml``, relative to the config's folder; that file
may extend another). The config then overrides it key by key:

- mappings merge key by key, recursively; keys the preset lacks are added after its own;
- lists and scalars replace the preset's value whole: a list is never merged element
  by element (give the whole list again to change one entry);
- ``null`` over a mapping removes the key (e.g. a step, or a factor); over a list or
  scalar it sets the value to null;
- a mapping with ``replace: true`` replaces the preset's mapping whole instead of
  merging into it (a step rewritten from scratch keeps none of the preset's keys);
- in ``evaluation.<result>.steps`` a step may say ``before: <step>`` or
  ``after: <step>`` to take its place in the chain; without it a new step goes
  last, which is after the collapse and therefore an error.

Named tables: ``tables:`` holds decision matrices, break tables, code maps and
coefficient maps by name. Where a step expects a table it may name one instead:
a matrix's or lookup's ``table``; a reclass's or geometric mean's ``table`` (a break
table whose keys the step's own keys override); a contiguity step's ``classes``,
``actions`` and ``table``; a water-conservation factor's ``runoff_coefficients`` (a
whole table, or per class the name of an entry of ``tables.runoff_coefficients``).

Paths inside an extended file are relative to that file's folder.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

#: Folder of the presets shipped with sanqu.
PRESETS = Path(__file__).resolve().parent / "presets"

#: Keys (as paths) holding file paths, made absolute in extended files before merging.
_PATH_KEYS = (("study_area", "boundary"), ("lines", "red_line", "protected_areas"),
              ("lines", "ugb", "special_use"), ("units",))


def read_yaml(path: Path) -> Any:
    """Parse a YAML file.

    Raises
    ------
    ConfigError
        If the file is missing or is not valid YAML.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None


def preset_names() -> list[str]:
    """Names of the presets shipped with sanqu.

    Examples
    --------
    >>> "guideline" in preset_names()
    True
    """
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def _preset_path(name: str, folder: Path) -> Path:
    if "/" not in name and "\\" not in name and not name.endswith((".yaml", ".yml")):
        path = PRESETS / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"extends: unknown preset {name!r}; expected one of "
                              f"{preset_names()} or a path to a YAML file")
        return path
    path = Path(name)
    return path if path.is_absolute() else (folder / path).resolve()


def expand(data: dict[str, Any], folder: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Resolve ``extends`` (recursively) and merge the config over its preset.

    Parameters
    ----------
    data : dict
        The parsed config (it is not modified).
    folder : Path
        Folder relative paths (and ``extends`` paths) are resolved against.

    Returns
    -------
    dict
        The merged document, plain YAML values only; ``extends`` keeps the config's value.

    Raises
    ------
    ConfigError
        On an unknown preset, a cycle of ``extends``, or a bad ``before``/``after``.

    Examples
    --------
    >>> base = {"name": "x", "outputs": {"compress": "LZW", "gpkg_name": "a.gpkg"}}
    >>> merge(base, {"outputs": {"compress": "ZSTD"}})["outputs"]
    {'compress': 'ZSTD', 'gpkg_name': 'a.gpkg'}
    """
    name = data.get("extends")
    if name is None:
        return merge({}, data)
    if not isinstance(name, str):
        raise ConfigError(f"extends: expected a preset name or a file path, got {name!r}")
    path = _preset_path(name, folder)
    if path in _seen:
        raise ConfigError(f"extends: {name!r} extends itself (cycle through {path})")
    base = read_yaml(path)
    if not isinstance(base, dict):
        raise ConfigError(f"extends: {path}: expected a mapping of keys at the top level")
    _absolute_paths(base, path.parent)
    merged = merge(expand(base, path.parent, (*_seen, path)), data)
    merged["extends"] = name
    return merged


def _absolute_paths(doc: dict[str, Any], folder: Path) -> None:
    for spec in (doc.get("inputs") or {}).values():
        if isinstance(spec, dict) and isinstance(spec.get("path"), str):
            spec["path"] = str((folder / spec["path"]).resolve())
    for keys in _PATH_KEYS:
        node: Any = doc
        for k in keys:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get("path"), str):
            node["path"] = str((folder / node["path"]).resolve())
    farmland = (doc.get("lines") or {}).get("farmland")
    if isinstance(farmland, dict) and isinstance(farmland.get("unit_quotas"), str):
        farmland["unit_quotas"] = str((folder / farmland["unit_quotas"]).resolve())


def merge(base: Any, over: Any, path: tuple[str, ...] = ()) -> Any:
    """Merge ``over`` onto ``base`` by the rules in this module's docstring.

    Examples
    --------
    >>> merge({"a": {"x": 1, "y": [1, 2]}, "b": {"z": 1}}, {"a": {"y": [3]}, "b": None})
    {'a': {'x': 1, 'y': [3]}}
    >>> merge({"a": {"x": 1, "y": 2}}, {"a": {"replace": True, "y": 3}})
    {'a': {'y': 3}}
    """
    if isinstance(over, list):
        return [merge(None, v, path) for v in over]
    if not isinstance(over, dict):
        return over
    if over.get("replace") is True:
        base, over = None, {k: v for k, v in over.items() if k != "replace"}
    out = dict(base) if isinstance(base, dict) else {}
    in_steps = len(path) == 3 and path[0] == "evaluation" and path[2] == "steps"
    moves: list[tuple[str, str, str]] = []
    for key, value in over.items():
        if in_steps:
            value, move = _position(value, ".".join((*path, str(key))))
            if move:
                moves.append((key, *move))
        if value is None and isinstance(out.get(key), dict):
            del out[key]
        else:
            out[key] = merge(out.get(key), value, (*path, str(key)))
    for key, where, target in moves:
        _move(out, key, where, target, ".".join(path))
    return out


def _position(value: Any, key: str) -> tuple[Any, tuple[str, str] | None]:
    if not isinstance(value, dict) or not ({"before", "after"} & set(value)):
        return value, None
    if "before" in value and "after" in value:
        raise ConfigError(f"{key}: expected at most one of before or after")
    where = "before" if "before" in value else "after"
    return {k: v for k, v in value.items() if k != where}, (where, value[where])


def _move(steps: dict[str, Any], key: str, where: str, target: Any, parent: str) -> None:
    if target not in steps or target == key:
        raise ConfigError(f"{parent}.{key}.{where}: {target!r} is not another step of {parent}; "
                          f"expected one of {[k for k in steps if k != key]}")
    value = steps.pop(key)
    items = list(steps.items())
    at = [k for k, _ in items].index(target) + (where == "after")
    items.insert(at, (key, value))
    steps.clear()
    steps.update(items)


def resolve_tables(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Replace table names by the tables of ``tables:``.

    Returns
    -------
    doc : dict
        A copy with every table reference spelled out.
    origins : dict
        Dotted key → ``tables.<name>`` for every value that came from a named table
        (error messages name both).

    Raises
    ------
    ConfigError
        If a name is not a key of ``tables``.

    Examples
    --------
    >>> doc = {"tables": {"t": [[1, 2], [2, 2]]},
    ...        "evaluation": {"r": {"steps": {"m": {"op": "matrix", "table": "t"}}}}}
    >>> out, origins = resolve_tables(doc)
    >>> out["evaluation"]["r"]["steps"]["m"]["table"], origins
    ([[1, 2], [2, 2]], {'evaluation.r.steps.m.table': 'tables.t'})
    """
    doc = copy.deepcopy(doc)
    tables = doc.get("tables") or {}
    origins: dict[str, str] = {}
    if not isinstance(tables, dict):
        return doc, origins

    def fetch(key: str, name: str, of: dict[str, Any] = tables, label: str = "tables") -> Any:
        if name not in of:
            raise ConfigError(f"{key}: {name!r} is not a key of {label}; "
                              f"expected one of {sorted(of)}")
        origins[key] = f"{label}.{name}"
        return copy.deepcopy(of[name])

    for rname, ev in _items(doc.get("evaluation")):
        for sname, step in _items(ev.get("steps") if isinstance(ev, dict) else None):
            if not isinstance(step, dict):
                continue
            key = f"evaluation.{rname}.steps.{sname}"
            op = step.get("op")
            names = {"matrix": ("table",), "lookup": ("table",),
                     "contiguity": ("classes", "actions", "table")}.get(op, ())
            for field in names:
                if isinstance(step.get(field), str):
                    step[field] = fetch(f"{key}.{field}", step[field])
            if op in ("reclass", "geometric_mean") and isinstance(step.get("table"), str):
                name = step.pop("table")
                template = fetch(f"{key}.table", name)
                if not isinstance(template, dict):
                    raise ConfigError(f"{key}.table: tables.{name} is not a break table "
                                      "(expected breaks or intervals)")
                for field in template:
                    origins[f"{key}.{field}"] = f"tables.{name}"
                ev["steps"][sname] = {**template, **step}
    coefficients = tables.get("runoff_coefficients")
    for fname, factor in _items(doc.get("factors")):
        if not isinstance(factor, dict) or factor.get("kind") != "water_conservation":
            continue
        key = f"factors.{fname}.runoff_coefficients"
        if isinstance(factor.get("runoff_coefficients"), str):
            factor["runoff_coefficients"] = fetch(key, factor["runoff_coefficients"])
        for cls, value in _items(factor.get("runoff_coefficients")):
            if isinstance(value, str):
                factor["runoff_coefficients"][cls] = fetch(
                    f"{key}.{cls}", value, coefficients if isinstance(coefficients, dict) else {},
                    "tables.runoff_coefficients")
    return doc, origins


def _items(node: Any) -> list[tuple[Any, Any]]:
    return list(node.items()) if isinstance(node, dict) else []


def has_key(doc: Any, dotted: str) -> bool:
    """Whether ``doc`` holds the dotted key (list indices as numbers).

    Examples
    --------
    >>> has_key({"a": {"b": [0, {"c": 1}]}}, "a.b.1.c"), has_key({"a": {}}, "a.b")
    (True, False)
    """
    node = doc
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True
