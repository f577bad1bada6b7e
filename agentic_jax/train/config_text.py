"""Config text to a plain mapping: YAML files and ``key=value`` overrides, each problem a
one-line ``ConfigError`` (``agentic_jax.train.config`` validates the mapping)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration problem, described in one line."""


def yaml_problem(error: yaml.YAMLError) -> str:
    """A parser error in one line: where, and what."""
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + str(getattr(error, "problem", None) or error).split("\n")[0]


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file's mapping; a one-line ConfigError for invalid YAML, an empty file (which
    would silently train the library defaults) or a file that is not a mapping."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {yaml_problem(error)}") from None
    if raw is None:
        raise ConfigError(
            "the file is empty: it would train the library defaults; write the keys to change "
            "(configs/default.yaml is an example), or run without a config for configs/default"
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            f"a config is a mapping of keys (algo: ..., env: ...), not a {type(raw).__name__}"
        )
    return raw


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value (e.g. algo.lr=1e-3)")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError as error:
        raise ConfigError(
            f"override {item!r}: the value is not valid YAML ({yaml_problem(error)})"
        ) from None
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    raw = yaml.safe_load(yaml.safe_dump(raw or {}))  # deep copy
    for item in overrides:
        path, value = parse_override(item)
        node = raw
        for part in path[:-1]:
            node = _child(node, part, item)
        if isinstance(node, list):
            node[_list_index(node, path[-1], item)] = value
        else:
            node[path[-1]] = value
    return raw


def _child(node: Any, part: str, item: str) -> Any:
    """The section ``part`` of ``node`` (created if missing), or a list's entry by index
    (``stages.1.updates=250``)."""
    if isinstance(node, list):
        child = node[_list_index(node, part, item)]
    else:
        child = node.setdefault(part, {})
    if not isinstance(child, dict | list):
        raise ConfigError(f"override {item!r}: {part!r} is not a section")
    return child


def _list_index(node: list, part: str, item: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(
            f"override {item!r}: {part!r} is not an index of a list of {len(node)} "
            f"(valid: 0-{len(node) - 1})"
        )
    return int(part)
