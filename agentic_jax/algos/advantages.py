"""Advantage estimators: GAE (PPO) and group-relative advantages (GRPO)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae(rewards, values, dones, last_value, gamma: float, gae_lambda: float):
    """Generalised advantage estimation over time-major ``[T, N]`` arrays.

    ``dones[t]`` is True when the episode ended at step t (no bootstrap from ``values[t+1]``);
    ``last_value`` [N] is V of the observation after the final step.

        delta_t = r_t + gamma * V_{t+1} * (1 - done_t) - V_t
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    Returns (advantages, returns = advantages + values).
    """
    chex.assert_equal_shape([rewards, values, dones])
    chex.assert_rank(last_value, values.ndim - 1)

    def body(carry, step):
        next_advantage, next_value = carry
        reward, value, done = step
        not_done = 1.0 - done.astype(jnp.float32)
        delta = reward + gamma * next_value * not_done - value
        advantage = delta + gamma * gae_lambda * not_done * next_advantage
        return (advantage, value), advantage

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(body, init, (rewards, values, dones), reverse=True)
    return advantages, advantages + values


def grpo_advantages(rewards, normalize_std: bool = True, eps: float = 1e-6):
    """Group-relative advantages for ``[B, G]`` rewards (B tasks x G samples).

    ``A = (r - mean_g r) / (std_g r + eps)`` (GRPO); without the division when
    ``normalize_std`` is False (Dr.GRPO). The std is the population std.
    """
    chex.assert_rank(rewards, 2)
    centred = rewards - rewards.mean(axis=1, keepdims=True)
    if normalize_std:
        return centred / (rewards.std(axis=1, keepdims=True) + eps)
    return centred
