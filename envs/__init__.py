"""agentic-jax environments (installed as ``agentic_jax.envs``).

``make(env_id, **overrides) -> (env, params)``, like ``gymnax.make``. Overrides are either
static (they set array shapes, e.g. ``max_len``, ``max_entities``: changing one recompiles)
or traced (fields of ``env.default_params`` or of its ``task`` parameters, e.g.
``think_budget``, ``num_entities``: they can be vmapped and swept). Classic gymnax ids
(``CartPole-v1``, ...) are passed through to ``gymnax.make``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnax

from agentic_jax.harness import Harness, HarnessParams, TaskFamily

from .arithmetic import Arithmetic
from .kblookup import KBLookup


class EnvSpec(NamedTuple):
    family: Callable[..., TaskFamily]
    description: str


REGISTRY: dict[str, EnvSpec] = {
    "KBLookup-v0": EnvSpec(
        KBLookup,
        "answer a question about a fresh random knowledge base through a `search` tool "
        "(one or two hops)",
    ),
    "Arithmetic-v0": EnvSpec(
        Arithmetic, "integer + - * with a `calc` tool or a digit-by-digit scratchpad in <think>"
    ),
}
HARNESS_STATIC = ("max_len",)


def registered_envs() -> list[str]:
    """Our environment ids (gymnax's own ids are accepted by ``make`` too)."""
    return list(REGISTRY)


def _check_type(env_id: str, key: str, value: Any, default: Any) -> None:
    expected = type(default)
    ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
    if isinstance(value, bool) and expected is not bool:
        ok = False
    if not ok:
        raise TypeError(
            f"{env_id}: override {key}={value!r} has type {type(value).__name__}, "
            f"expected {expected.__name__}"
        )


def make(env_id: str, **overrides: Any) -> tuple[Any, Any]:
    """Build an environment and its default parameters with ``overrides`` applied."""
    if env_id not in REGISTRY:
        if env_id in gymnax.registered_envs:
            return gymnax.make(env_id, **overrides)
        raise ValueError(
            f"unknown environment id {env_id!r}; valid ids: {', '.join(REGISTRY)} "
            "(or a gymnax id such as CartPole-v1)"
        )
    spec = REGISTRY[env_id]
    signature = inspect.signature(spec.family)
    static_names = tuple(signature.parameters) + HARNESS_STATIC
    defaults = {n: p.default for n, p in signature.parameters.items()} | {"max_len": 1}
    probe = Harness(spec.family()).default_params
    harness_names = tuple(
        f.name
        for f in dataclasses.fields(HarnessParams)
        if f.name not in ("task", "max_steps_in_episode")
    )
    task_names = tuple(f.name for f in dataclasses.fields(probe.task))
    valid = static_names + harness_names + task_names
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(
            f"{env_id}: unknown override(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    for key, value in overrides.items():
        default = defaults.get(key) if key in static_names else None
        if default is None:
            default = getattr(probe.task if key in task_names else probe, key)
        _check_type(env_id, key, value, default)

    family = spec.family(**{k: v for k, v in overrides.items() if k in signature.parameters})
    env = Harness(family, max_len=overrides.get("max_len"), name=env_id)
    params = env.default_params
    params = params.replace(**{k: v for k, v in overrides.items() if k in harness_names})
    params = params.replace(
        task=params.task.replace(**{k: v for k, v in overrides.items() if k in task_names})
    )
    return env, params


__all__ = ["REGISTRY", "EnvSpec", "make", "registered_envs", "Arithmetic", "KBLookup"]
