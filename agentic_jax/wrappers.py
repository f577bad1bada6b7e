"""gymnax wrappers that let a generic RL loop (PureJaxRL's ``ppo.py``, Stoix, ...) train on
agentic-jax environments without knowing about tokens:

- ``FlattenObservation``: the ``Observation`` as one float32 vector ``[2 V + 2]``: the
  one-hot token just written, the legal-token mask, the position / (max_len - 1) and the
  agent's turn. Its ``observation_space`` is a ``Box``, so gymnax's Gym wrapper converts it
  and ``contains`` holds for every observation.
- ``LegalActions``: an action that is illegal now (or outside ``[0, V)``) is replaced by a
  uniformly random legal token before the step (``info["remapped_action"]`` marks it). An MLP
  that ignores the legal mask would otherwise end every episode with its first illegal
  token (the harness counts it ``invalid``, reward 0).

Both keep the state as it is, so they stack in either order and under gymnax's own wrappers
(``LogWrapper``, ``GymnaxToGymWrapper``)::

    env, params = agentic_jax.envs.make("KBLookup-v0")
    env = LogWrapper(FlattenObservation(LegalActions(env)))
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces
from gymnax.wrappers.purerl import GymnaxWrapper

from agentic_jax import tokens as tk
from agentic_jax.rollout import sample_legal
from agentic_jax.transcript import Observation


class _Wrapper(GymnaxWrapper):
    """gymnax's wrapper base, safe to ``copy.deepcopy`` (as ``GymnaxToGymWrapper`` does): a
    copy under construction has no ``_env`` yet, and the base's attribute proxy would
    recurse looking for it."""

    def __getattr__(self, name: str):
        if name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)


def flatten_observation(obs: Observation, max_len: int) -> jax.Array:
    """``[2 V + 2]`` float32: one-hot token, legal mask, scaled position, agent's turn."""
    return jnp.concatenate(
        [
            jax.nn.one_hot(obs.token, tk.VOCAB_SIZE, dtype=jnp.float32),
            obs.legal_mask.astype(jnp.float32),
            (obs.position / max(max_len - 1, 1)).astype(jnp.float32)[None],
            obs.agent_turn.astype(jnp.float32)[None],
        ]
    )


class FlattenObservation(_Wrapper):
    """Observations as flat float32 vectors (see the module docstring)."""

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (2 * tk.VOCAB_SIZE + 2,), jnp.float32)

    def reset(self, key: jax.Array, params: Any = None):
        obs, state = self._env.reset(key, params)
        return flatten_observation(obs, self._env.max_len), state

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return (
            flatten_observation(obs, self._env.max_len),
            state,
            reward,
            terminated,
            truncated,
            info,
        )


class LegalActions(_Wrapper):
    """Illegal or out-of-range actions replaced by a random legal token (module docstring)."""

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        params = self._env.default_params if params is None else params
        key, remap_key = jax.random.split(key)
        legal = self._env.legal_mask(state, params)
        action = jnp.asarray(action, jnp.int32)
        in_range = (action >= 0) & (action < tk.VOCAB_SIZE)
        allowed = in_range & legal[jnp.clip(action, 0, tk.VOCAB_SIZE - 1)]
        chosen = jnp.where(allowed, action, sample_legal(remap_key, legal))
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, chosen, params)
        return obs, state, reward, terminated, truncated, info | {"remapped_action": ~allowed}
