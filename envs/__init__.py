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
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import gymnax

from agentic_jax.behaviours import behaviour_weights, check_behaviours, check_only_oracle
from agentic_jax.catalogue import DESCRIPTIONS
from agentic_jax.delegation import DelegatingHarness
from agentic_jax.harness import Harness, HarnessParams
from agentic_jax.task import TaskFamily
from agentic_jax.transcript import check_harness_params

from .arithmetic import Arithmetic
from .codesynth import CodeSynth
from .flakyapi import FlakyAPI
from .kbgather import KBGather
from .kblookup import KBLookup
from .memory import Memory
from .mixed import Mixed
from .tally import Tally
from .webnav import WebNav


class EnvSpec(NamedTuple):
    family: Callable[..., TaskFamily]
    description: str
    # Difficulty levels as traced overrides, easiest first (envcheck reports each).
    levels: tuple[dict[str, Any], ...] = ({},)


REGISTRY: dict[str, EnvSpec] = {
    "KBLookup-v0": EnvSpec(
        KBLookup,
        DESCRIPTIONS["KBLookup-v0"],
        ({"hops": 1}, {"hops": 2}),
    ),
    "KBGather-v0": EnvSpec(
        KBGather,
        DESCRIPTIONS["KBGather-v0"],
        ({"num_queried": 1}, {"num_queried": 2}, {"num_queried": 4}),
    ),
    "Arithmetic-v0": EnvSpec(
        Arithmetic,
        DESCRIPTIONS["Arithmetic-v0"],
        ({"digits": 1}, {"digits": 2}, {"digits": 3}),
    ),
    "CodeSynth-v0": EnvSpec(
        CodeSynth,
        DESCRIPTIONS["CodeSynth-v0"],
        ({"num_ops": 1}, {"num_ops": 2}, {"num_ops": 3}, {"num_ops": 4}),
    ),
    "FlakyAPI-v0": EnvSpec(
        FlakyAPI,
        DESCRIPTIONS["FlakyAPI-v0"],
        (
            {"fail_prob": 0.2, "latency_min": 1, "latency_max": 2, "backup_latency": 4},
            {"fail_prob": 0.5, "latency_min": 2, "latency_max": 4, "backup_latency": 8},
            {"fail_prob": 0.9, "latency_min": 4, "latency_max": 8, "backup_latency": 12},
        ),
    ),
    "WebNav-v0": EnvSpec(
        WebNav,
        DESCRIPTIONS["WebNav-v0"],
        ({"hops": 1}, {"hops": 2}, {"hops": 2, "num_pages": 16, "num_links": 3}),
    ),
    "Memory-v0": EnvSpec(
        Memory,
        DESCRIPTIONS["Memory-v0"],
        (
            {"num_facts": 1, "num_fillers": 0},
            {"num_facts": 2, "num_fillers": 4},
            {"num_facts": 4, "num_fillers": 8},
        ),
    ),
    "Tally-v0": EnvSpec(
        Tally,
        DESCRIPTIONS["Tally-v0"],
        ({"min_items": 1, "max_items": 2}, {"min_items": 3, "max_items": 4}),
    ),
    "Mixed-v0": EnvSpec(
        Mixed,
        DESCRIPTIONS["Mixed-v0"],
        ({},),
    ),
}
HARNESS_STATIC = ("max_len", "effort", "behaviours", "max_steps")


def registered_envs() -> list[str]:
    """Our environment ids (gymnax's own ids are accepted by ``make`` too)."""
    return list(REGISTRY)


def gymnax_ids() -> list[str]:
    """gymnax's own environment ids, which ``make`` passes through to ``gymnax.make``."""
    return [env_id for env_id in gymnax.registered_envs if env_id not in REGISTRY]


class OverrideTypeError(TypeError, ValueError):
    """An override of the wrong type: a ``TypeError``, and a ``ValueError`` so that the
    command line reports it as the one-line mistake it is."""


def _check_type(env_id: str, key: str, value: Any, default: Any) -> None:
    if isinstance(default, tuple):  # a fixed-length vector, e.g. effort_budgets
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise OverrideTypeError(
                f"{env_id}: override {key}={value!r} must be a list of {len(default)} numbers "
                f"(default {list(default)})"
            )
        for item in value:
            _check_type(env_id, key, item, default[0])
        return
    expected = type(default)
    ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
    if isinstance(value, bool) and expected is not bool:
        ok = False
    if not ok:
        raise OverrideTypeError(
            f"{env_id}: override {key}={value!r} has type {type(value).__name__}, "
            f"expected {expected.__name__}"
        )


def static_overrides(env_id: str) -> tuple[str, ...]:
    """The overrides of ``env_id`` that set array shapes (changing one builds a new env)."""
    if env_id not in REGISTRY:
        return ()
    return tuple(inspect.signature(REGISTRY[env_id].family).parameters) + HARNESS_STATIC


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
    harness_names, task_names = _checked_overrides(env_id, overrides)
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    family = spec.family(**{k: v for k, v in overrides.items() if k in signature.parameters})
    # A corpus mixture builds the behaviours in (``behaviours=True`` does so for parameters
    # that set ``behaviour_probs`` later, e.g. a pretraining stage's).
    corpus = any(w > 0 for w in overrides.get("behaviour_probs", (1.0,))[1:])
    static = {
        "max_len": overrides.get("max_len"),
        "name": env_id,
        "effort": overrides.get("effort", False),
        "behaviours": overrides.get("behaviours", corpus),
    }
    params = Harness(family, **static).default_params
    params = params.replace(**{k: v for k, v in overrides.items() if k in harness_names})
    params = params.replace(
        task=params.task.replace(**{k: v for k, v in overrides.items() if k in task_names})
    )
    env = Harness(family, **static, params=params)
    if getattr(family, "sub_agents", 0):  # an orchestrator and its sub-agent slots
        env = DelegatingHarness(env, overrides.get("max_steps"))
    elif "max_steps" in overrides:
        raise ValueError(
            f"{env_id}: max_steps bounds an episode of an orchestrator and its sub-agents; "
            "it needs sub_agents > 0 (a single transcript is bounded by max_len)"
        )
    try:
        check_harness_params(params, family)
        check_behaviours(params, family)
        if not env.behaviours:
            check_only_oracle(params)
    except ValueError as error:
        raise ValueError(f"{env_id}: {error}") from None
    return env, params


def _checked_overrides(env_id: str, overrides: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Refuse an unknown override or one of the wrong type (naming the valid ones); a
    ``behaviour_probs`` mapping becomes its weights, in place. Returns the names that are
    harness parameters and task parameters."""
    spec = REGISTRY[env_id]
    signature = inspect.signature(spec.family)
    static_names = tuple(signature.parameters) + HARNESS_STATIC
    defaults = {n: p.default for n, p in signature.parameters.items()} | {
        "max_len": 1,
        "effort": False,
        "behaviours": False,
        "max_steps": 1,
    }
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
    if isinstance(overrides.get("behaviour_probs"), Mapping):
        try:
            overrides["behaviour_probs"] = behaviour_weights(overrides["behaviour_probs"])
        except ValueError as error:
            raise ValueError(f"{env_id}: {error}") from None
    for key, value in overrides.items():
        default = defaults.get(key) if key in static_names else None
        if default is None:
            default = getattr(probe.task if key in task_names else probe, key)
        _check_type(env_id, key, value, default)
    return harness_names, task_names


def _gymnax_factory(env_id: str) -> Callable[..., Any]:
    """``gymnax.make(env_id, **overrides)``: our ``make``'s environment, whose
    ``default_params`` are the parameters the overrides built."""

    def factory(**overrides: Any) -> Harness:
        return make(env_id, **overrides)[0]

    return factory


for _env_id in REGISTRY:  # gymnax.make("KBLookup-v0", hops=2) works once this is imported
    if _env_id not in gymnax.registered_envs:
        gymnax.register(_env_id, _gymnax_factory(_env_id))


__all__ = [
    "REGISTRY",
    "EnvSpec",
    "OverrideTypeError",
    "gymnax_ids",
    "make",
    "registered_envs",
    "static_overrides",
    "Arithmetic",
    "CodeSynth",
    "FlakyAPI",
    "KBGather",
    "KBLookup",
    "Memory",
    "Mixed",
    "WebNav",
]
