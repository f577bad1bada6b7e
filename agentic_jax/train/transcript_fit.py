"""Whether a hand-set ``max_len`` fits the oracle's episodes at every difficulty a run uses.

A transcript limit below what the oracle's longest episode needs makes episodes truncate with
no reward (and SFT imitate cut-off demonstrations): another experiment than the one asked
for. The check plays the oracle on the family's default transcript length (which fits every
difficulty) and compares its longest finished episode with the configured ``max_len``.
"""

from __future__ import annotations

from functools import partial

import jax
import numpy as np

from agentic_jax.harness import Harness, HarnessParams
from agentic_jax.rollout import oracle_step, rollout_episodes

EPISODES = 64  # per difficulty: oracle episode lengths vary little (FlakyAPI's latencies)
_NEEDED: dict[tuple, int] = {}  # (env id, static overrides, parameters) -> tokens needed
_ROOMY: dict[tuple, Harness] = {}  # (env id, static overrides) -> the default-length env


@partial(jax.jit, static_argnames=("env",))
def _oracle_lengths(env: Harness, params: HarnessParams, key: jax.Array) -> jax.Array:
    final = rollout_episodes(env, params, oracle_step(env), None, key, EPISODES).env_state
    return jax.numpy.where(final.truncated, env.max_len + 1, final.length)


def oracle_length_needed(env: Harness, params: HarnessParams, cache_key: tuple) -> int:
    """The transcript length the oracle's longest episode (of ``EPISODES``) needs under
    ``params``, played on the family's default length (cached per ``cache_key``)."""
    leaves = tuple(np.asarray(leaf).tobytes() for leaf in jax.tree.leaves(params))
    key = (*cache_key, leaves)
    if key not in _NEEDED:
        if cache_key not in _ROOMY:  # one environment per cache key: one compile
            roomy = Harness(env.family, name=env.name, effort=env.effort, behaviours=env.behaviours)
            _ROOMY[cache_key] = roomy if roomy.max_len >= env.max_len else env
        lengths = _oracle_lengths(_ROOMY[cache_key], params, jax.random.PRNGKey(0))
        _NEEDED[key] = int(np.max(np.asarray(lengths)))
    return _NEEDED[key]


def check_transcript_fits(env: Harness, difficulties: dict[str, HarnessParams], cache_key) -> None:
    """Refuse a ``max_len`` too short for the oracle at any of ``difficulties`` (where -> params),
    naming where and the length needed."""
    for where, params in difficulties.items():
        needed = oracle_length_needed(env, params, cache_key)
        if needed > env.max_len:
            raise ValueError(
                f"env.overrides.max_len={env.max_len} is too short for {where}: the oracle's "
                f"longest episode there needs {needed} tokens, so episodes would be truncated "
                f"with no reward; use max_len >= {needed} (or leave it unset)"
            )
