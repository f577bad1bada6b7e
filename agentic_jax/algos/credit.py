"""Credit assignment for an orchestrator and its sub-agents (``agentic_jax.delegation``).

A delegating system's GRPO batch holds ``C = 1 + S`` rows per episode, context 0 the
orchestrator's and 1 .. S its sub-agent slots (``group`` names each row's task). What each
row is rewarded with, and which rows it is compared with, is the scheme (``algo.credit``):

- ``outcome``: the system's outcome (the orchestrator's reward) broadcast to every role;
  one group per task over both levels;
- ``subtask``: a sub-agent is rewarded by its own sub-task's verifier (the environment
  knows each sub-task's answer), the orchestrator by the outcome; one group per task;
- ``per_level``: the rewards of ``subtask``, with group-relative advantages computed per
  level (M-GRPO): orchestrators against the orchestrators of the same task, sub-agents
  against the sub-agents of the same task.

Rows with no episode (a slot never used) hold no agent token; ``grpo.holds_episode`` keeps
them out of every group.
"""

from __future__ import annotations

from typing import Any

import chex
import jax.numpy as jnp

SCHEMES = ("outcome", "subtask", "per_level")


def assign_credit(trajectory: Any, scheme: str, contexts: int, num_tasks: int):
    """The trajectory with each row's reward (at its last step) and group set by ``scheme``;
    returns (trajectory, number of groups)."""
    if scheme not in SCHEMES:
        raise ValueError(f"credit scheme {scheme!r} is not one of {SCHEMES}")
    rewards = trajectory.rewards
    chex.assert_rank(rewards, 2)
    rows = rewards.shape[0]
    own = rewards.sum(axis=1).reshape(rows // contexts, contexts)
    outcome = jnp.broadcast_to(own[:, :1], own.shape)
    episode_reward = outcome if scheme == "outcome" else own
    level = jnp.minimum(jnp.arange(rows) % contexts, 1)  # 0 orchestrator, 1 sub-agent
    group, num_groups = trajectory.group, num_tasks
    if scheme == "per_level":
        group, num_groups = group * 2 + level, 2 * num_tasks
    last_step = jnp.arange(rewards.shape[1]) == rewards.shape[1] - 1
    credited = jnp.where(last_step, episode_reward.reshape(rows, 1), 0.0)
    return trajectory.replace(rewards=credited, group=group.astype(jnp.int32)), num_groups
