"""How long a slow tool takes: a latency distribution in steps, with a cap and a timeout.

Real tool latencies are heavy-tailed: most calls answer fast and a few take far longer (a
sandbox that compiles, a page that hangs, a sub-agent that explores). A ``Latency`` draws a
call's wait, in steps, from one of three families, all traced (a sweep or a curriculum can
move them without recompiling):

- ``uniform``: an integer uniform on ``[low, high]`` (FlakyAPI's default);
- ``lognormal``: ``mean * exp(shape * z - shape**2 / 2)``, ``z`` standard normal: mean
  ``mean`` whatever the shape, the tail heavier as ``shape`` (sigma) grows;
- ``pareto``: ``x_m / u ** (1 / shape)``, ``u`` uniform on (0, 1], with ``x_m = mean * (shape -
  1) / shape``: mean ``mean`` for ``shape > 1`` (alpha), the tail heavier as it falls to 1.

A continuous draw is rounded to whole steps. Every draw is clipped to ``cap`` (and to the
tool's static ``max_latency``, which sizes the harness's result queue); a draw beyond
``timeout`` (when > 0) times out instead: the call fails after ``timeout`` steps.
``quantiles`` gives a distribution's p50/p90/p99/max over draws (``agentic-jax envcheck``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

KINDS = ("uniform", "lognormal", "pareto")
UNIFORM, LOGNORMAL, PARETO = range(len(KINDS))


@struct.dataclass
class Latency:
    """A latency distribution in steps; every field traced."""

    kind: jax.Array | int = UNIFORM  # an index of KINDS
    low: jax.Array | int = 0  # uniform: the least wait
    high: jax.Array | int = 0  # uniform: the longest wait
    mean: jax.Array | float = 0.0  # lognormal, Pareto: the mean wait before rounding
    shape: jax.Array | float = 1.0  # lognormal: sigma; Pareto: alpha (> 1 for a finite mean)
    cap: jax.Array | int = 2**30  # the longest wait drawn (then the tool's max_latency)
    timeout: jax.Array | int = 0  # > 0: a wait beyond it times out after it


def from_task_params(kind, low, high, mean, shape, bound: int, cap=2**30, timeout=0) -> Latency:
    """A ``Latency`` from (traced) task parameters: the family index clipped to ``KINDS``, the
    uniform range to ``[0, bound]``."""
    return Latency(
        kind=jnp.clip(kind, 0, len(KINDS) - 1),
        low=jnp.clip(low, 0, bound),
        high=jnp.clip(high, 0, bound),
        mean=jnp.asarray(mean, jnp.float32),
        shape=jnp.asarray(shape, jnp.float32),
        cap=jnp.asarray(cap, jnp.int32),
        timeout=jnp.asarray(timeout, jnp.int32),
    )


def kind_index(name: str) -> int:
    """The index of a distribution's name; a clear error names the valid ones."""
    if name not in KINDS:
        raise ValueError(f"unknown latency distribution {name!r}; valid: {', '.join(KINDS)}")
    return KINDS.index(name)


def continuous_draw(key: jax.Array, latency: Latency) -> jax.Array:
    """A lognormal or Pareto wait in steps (float), by ``latency.kind``."""
    mean = jnp.maximum(jnp.asarray(latency.mean, jnp.float32), 0.0)
    shape = jnp.maximum(jnp.asarray(latency.shape, jnp.float32), 1e-3)
    normal = jax.random.normal(key)
    lognormal = mean * jnp.exp(shape * normal - shape**2 / 2)
    unit = 1.0 - jax.random.uniform(key)  # (0, 1]
    scale = mean * jnp.maximum(shape - 1.0, 0.0) / shape
    pareto = scale / unit ** (1.0 / shape)
    return jnp.where(jnp.asarray(latency.kind) == LOGNORMAL, lognormal, pareto)


def draw(key: jax.Array, latency: Latency, max_latency: int) -> tuple[jax.Array, jax.Array]:
    """One call's wait (int32 steps, within ``[0, max_latency]``) and whether it timed out.

    The uniform family draws ``randint(key, low, high + 1)`` (so it matches a plain uniform
    draw from the same key)."""
    low = jnp.clip(jnp.asarray(latency.low, jnp.int32), 0, max_latency)
    high = jnp.clip(jnp.asarray(latency.high, jnp.int32), low, max_latency)
    uniform = jax.random.randint(key, (), low, high + 1)
    rounded = jnp.round(jnp.clip(continuous_draw(key, latency), 0.0, 2.0**30))
    steps = jnp.where(jnp.asarray(latency.kind) == UNIFORM, uniform, rounded.astype(jnp.int32))
    steps = jnp.minimum(steps, jnp.asarray(latency.cap, jnp.int32))
    timeout = jnp.asarray(latency.timeout, jnp.int32)
    timed_out = (timeout > 0) & (steps > timeout)
    steps = jnp.where(timed_out, timeout, steps)
    return jnp.clip(steps, 0, max_latency).astype(jnp.int32), timed_out


def quantiles(key: jax.Array, latency: Latency, max_latency: int, draws: int = 10_000) -> dict:
    """p50, p90, p99, max and mean of ``draws`` waits, and the share that timed out."""
    keys = jax.random.split(key, draws)
    steps, timed_out = jax.jit(jax.vmap(lambda k: draw(k, latency, max_latency)))(keys)
    steps = np.asarray(steps)
    found = {f"p{q}": float(np.percentile(steps, q)) for q in (50, 90, 99)}
    return found | {
        "max": float(steps.max()),
        "mean": float(steps.mean()),
        "timed_out": float(np.asarray(timed_out).mean()),
    }
