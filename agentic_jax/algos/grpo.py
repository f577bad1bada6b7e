"""GRPO: group-relative advantages, and the loss (the shared policy objective, no critic).

Each task is sampled ``G`` times; an episode's advantage is its reward against its group's:

    A = (r - mean_group r) / (std_group r + eps)   (GRPO, normalize_std=True)
    A =  r - mean_group r                          (Dr.GRPO, normalize_std=False)

with the population std (ddof=0). Groups are explicit: ``group`` [N] names each episode's
task, so no row order is assumed. Every agent token of an episode carries its advantage.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from agentic_jax.algos.policy import (
    Coefficients,
    Evaluate,
    LossAndMetrics,
    LossSettings,
    Minibatch,
    policy_objective,
)


def grpo_advantages(
    episode_rewards: jax.Array,
    group: jax.Array,
    num_groups: int,
    normalize_std: bool = True,
    eps: float = 1e-6,
) -> jax.Array:
    """Group-relative advantages [N] of ``episode_rewards`` [N], episode i in group ``group[i]``
    (ids in ``[0, num_groups)``)."""
    chex.assert_rank([episode_rewards, group], 1)
    chex.assert_equal_shape([episode_rewards, group])
    rewards = episode_rewards.astype(jnp.float32)
    count = jax.ops.segment_sum(jnp.ones_like(rewards), group, num_groups)
    mean = jax.ops.segment_sum(rewards, group, num_groups) / jnp.maximum(count, 1.0)
    centred = rewards - mean[group]
    if not normalize_std:
        return centred
    variance = jax.ops.segment_sum(centred**2, group, num_groups) / jnp.maximum(count, 1.0)
    return centred / (jnp.sqrt(variance)[group] + eps)


def informative_groups(episode_rewards: jax.Array, group: jax.Array, num_groups: int) -> jax.Array:
    """The share of the groups present whose rewards are not all equal. Only these carry an
    advantage: a group whose episodes all earn the same reward (all solved, or all failed)
    has zero advantage everywhere, so a flat RL curve with this near 0 has nothing to learn."""
    chex.assert_equal_shape([episode_rewards, group])
    rewards = episode_rewards.astype(jnp.float32)
    high = jax.ops.segment_max(rewards, group, num_groups)
    low = jax.ops.segment_min(rewards, group, num_groups)
    present = jax.ops.segment_sum(jnp.ones_like(rewards), group, num_groups) > 0
    return jnp.sum(present & (high > low)) / jnp.maximum(jnp.sum(present), 1)


def token_advantages(trajectory: Any, num_groups: int, normalize_std: bool = True) -> jax.Array:
    """Each step's advantage [N, L]: its episode's group-relative advantage (a GRPO
    trajectory holds one episode per row, ``trajectory.group`` its task)."""
    episode_rewards = trajectory.rewards.sum(axis=1)
    per_episode = grpo_advantages(episode_rewards, trajectory.group, num_groups, normalize_std)
    return jnp.broadcast_to(per_episode[:, None], trajectory.rewards.shape)


def loss(params: Any, evaluate: Evaluate, batch: Minibatch, coefficients: Coefficients,
         settings: LossSettings) -> LossAndMetrics:  # fmt: skip
    """GRPO's loss of ``params`` on a minibatch: the policy's forward pass (``evaluate``), then
    the policy objective (``policy.policy_objective``). Returns (loss, metrics)."""
    return policy_objective(evaluate(params, batch.trajectory), batch, coefficients, settings)
