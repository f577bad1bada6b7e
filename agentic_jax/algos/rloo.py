"""RLOO: REINFORCE with a leave-one-out baseline (Ahmadian et al. 2024; TRL's RLOOTrainer).

Each task is sampled ``G`` times; an episode's baseline is the mean reward of the group's
other ``G - 1`` samples, so its advantage is

    A_i = r_i - (sum_j r_j - r_i) / (G - 1) = G / (G - 1) * (r_i - mean_group r)

with no division by the group's std. Every agent token of the episode carries it, and the
loss is the clipped surrogate the other algorithms share (``policy.policy_objective``), as in
TRL. Groups are explicit (``trajectory.group``); rows that hold no episode count in no group.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from agentic_jax.algos.base import Algorithm
from agentic_jax.algos.grpo import holds_episode
from agentic_jax.algos.grpo import loss as clipped_surrogate_loss
from agentic_jax.algos.policy import SurrogateHyperparams


def leave_one_out_advantages(
    episode_rewards: jax.Array, group: jax.Array, num_groups: int, present: jax.Array
) -> jax.Array:
    """[N] each episode's reward minus the mean of the other episodes of its group (0 for a
    row with no episode, or alone in its group)."""
    chex.assert_rank([episode_rewards, group, present], 1)
    chex.assert_equal_shape([episode_rewards, group, present])
    weight = present.astype(jnp.float32)
    rewards = episode_rewards.astype(jnp.float32) * weight
    count = jax.ops.segment_sum(weight, group, num_groups)[group]
    total = jax.ops.segment_sum(rewards, group, num_groups)[group]
    others = jnp.maximum(count - 1.0, 1.0)
    return jnp.where(count > 1, rewards - (total - rewards) / others, 0.0) * weight


def advantages(trajectory: Any, last_value, hyper, num_groups: int) -> tuple[Any, None]:
    """The trainer's call: leave-one-out advantages on every agent token, no value targets."""
    del last_value, hyper
    per_episode = leave_one_out_advantages(
        trajectory.rewards.sum(axis=1), trajectory.group, num_groups, holds_episode(trajectory)
    )
    return jnp.broadcast_to(per_episode[:, None], trajectory.rewards.shape), None


ALGORITHM = Algorithm(
    name="rloo",
    hyperparams=SurrogateHyperparams,
    advantages=advantages,
    loss=clipped_surrogate_loss,
    grouped=True,
    critic=False,
    summary="REINFORCE with a leave-one-out baseline, the clipped surrogate",
)
