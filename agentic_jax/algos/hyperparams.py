"""Hyperparameters declared once: the fields of an algorithm's dataclass.

An algorithm declares its hyperparameters as a ``flax.struct`` dataclass whose fields are made
with ``traced`` or ``static`` (as Rejax does): a traced field is a leaf of the pytree, an
array in the ``TrainState``, so that one compiled train function can be vmapped over its
values (``agentic-jax sweep``); a static field is part of the pytree's structure, so that a
change of it compiles another function (a loss aggregation, an estimator's choice). Everything
else reads the declaration:

- the config schema (``train.config.AlgoConfig``) is built from the registered algorithms'
  fields, with their defaults, bounds and docs (``config_fields``);
- the trainer's ``TrainState`` carries the chosen algorithm's instance (``from_config``), and
  the algorithm's advantages and loss read their hyperparameters from it;
- a sweep vmaps the traced fields (``traced_names``) and groups settings by the static ones.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import jax.numpy as jnp
from flax import struct
from pydantic import Field


def traced(default: float, doc: str, **bounds: float) -> Any:
    """A float hyperparameter carried as a traced array (a sweep can vmap it). ``bounds``:
    pydantic's ``gt``, ``ge``, ``le`` for the config's check."""
    return struct.field(pytree_node=True, default=default, metadata={"doc": doc, "bounds": bounds})


def static(default: Any, doc: str, **bounds: float) -> Any:
    """A hyperparameter that changes what is compiled (a choice, a count, a cap)."""
    return struct.field(pytree_node=False, default=default, metadata={"doc": doc, "bounds": bounds})


def is_traced(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("pytree_node", True))


def traced_names(cls: type) -> tuple[str, ...]:
    """The traced fields of a hyperparameter class, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(cls) if is_traced(f))


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def from_config(cls: type, values: Any, **replaced: Any) -> Any:
    """An instance of ``cls`` from a config section (any object with its fields as attributes),
    traced fields as float32 arrays; ``replaced`` overrides a value."""
    kwargs = {}
    for field in dataclasses.fields(cls):
        value = replaced.get(field.name, getattr(values, field.name))
        kwargs[field.name] = jnp.float32(value) if is_traced(field) else value
    return cls(**kwargs)


def config_fields(classes: list[type]) -> list[tuple[str, Any, Any]]:
    """The union of the classes' fields as ``(name, type, pydantic Field)``, for a config
    schema. A field declared by two classes must be declared alike (same type and default)."""
    seen: dict[str, tuple[Any, dataclasses.Field]] = {}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            declared = (hints[field.name], field.default)
            if field.name in seen and seen[field.name][0] != declared:
                raise TypeError(
                    f"hyperparameter {field.name!r} is declared twice, differently: "
                    f"{seen[field.name][0]} and {declared} ({cls.__name__})"
                )
            seen.setdefault(field.name, (declared, field))
    return [
        (
            name,
            annotation,
            Field(default, description=field.metadata["doc"], **field.metadata["bounds"]),
        )
        for name, ((annotation, default), field) in seen.items()
    ]


def docs_table(classes: dict[str, type]) -> list[str]:
    """A markdown table of every hyperparameter: name, default, traced or static, which
    algorithms read it, and its doc."""
    rows: dict[str, list[str]] = {}
    declared: dict[str, dataclasses.Field] = {}
    for name, cls in classes.items():
        for field in dataclasses.fields(cls):
            rows.setdefault(field.name, []).append(name)
            declared.setdefault(field.name, field)
    lines = ["| `algo.` key | default | kind | read by | meaning |", "|---|---|---|---|---|"]
    for key, field in declared.items():
        kind = "traced" if is_traced(field) else "static"
        readers = "every algorithm" if len(rows[key]) == len(classes) else ", ".join(rows[key])
        doc = field.metadata["doc"].replace("|", "\\|")
        lines.append(f"| `{key}` | `{field.default}` | {kind} | {readers} | {doc} |")
    return lines
