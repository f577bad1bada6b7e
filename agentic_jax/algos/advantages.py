"""Advantage estimators: GAE (PPO) and group-relative advantages (GRPO)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    last_value: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over time-major ``[T, N]`` arrays.

    ``dones[t]`` is True when the episode ended at step t (no bootstrap from ``values[t+1]``);
    ``last_value`` [N] is V of the observation after the final step.

        delta_t = r_t + gamma * V_{t+1} * (1 - done_t) - V_t
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    Computed with a reverse ``jax.lax.scan``. Returns (advantages, returns = advantages + values).
    """
    chex.assert_equal_shape([rewards, values, dones])
    chex.assert_rank(last_value, values.ndim - 1)
    chex.assert_equal_shape([last_value, values[0]])
    rewards = rewards.astype(jnp.float32)
    values = values.astype(jnp.float32)
    not_dones = 1.0 - dones.astype(jnp.float32)

    def step_back(carry, step):
        next_advantage, next_value = carry
        reward, value, not_done = step
        delta = reward + gamma * next_value * not_done - value
        advantage = delta + gamma * gae_lambda * not_done * next_advantage
        return (advantage, value), advantage

    last_value = last_value.astype(jnp.float32)
    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(step_back, init, (rewards, values, not_dones), reverse=True)
    return advantages, advantages + values


def grpo_advantages(rewards: jax.Array, normalize_std: bool = True, eps: float = 1e-6) -> jax.Array:
    """Group-relative advantages for ``[B, G]`` rewards (B tasks x G samples each).

        A = (r - mean_g r) / (std_g r + eps)   (GRPO, normalize_std=True)
        A =  r - mean_g r                      (Dr.GRPO, normalize_std=False)

    The std is the population std (ddof=0) of each group.
    """
    chex.assert_rank(rewards, 2)
    rewards = rewards.astype(jnp.float32)
    centred = rewards - rewards.mean(axis=1, keepdims=True)
    if normalize_std:
        return centred / (rewards.std(axis=1, keepdims=True) + eps)
    return centred
