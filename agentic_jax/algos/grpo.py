"""GRPO: group-relative advantages, and the loss (the shared policy objective, no critic).

Each task is sampled ``G`` times; an episode's advantage is its reward against its group's:

    A = (r - mean_group r) / (std_group r + eps)   (GRPO, normalize_std=True)
    A =  r - mean_group r                          (Dr.GRPO, normalize_std=False)

with the population std (ddof=0). Groups are explicit: ``group`` [N] names each episode's
task, so no row order is assumed. Every agent token of an episode carries its advantage, or
with ``per_mode`` only the first (the episode's mode decision: an effort level, or ``<think>``
against answering at once): the tokens after it take the advantage within the episodes of
their group that made the same decision, so what a mode costs or earns as a whole moves the
decision alone, and a mode's own tokens are judged only against that mode's other samples.
"""

from __future__ import annotations

from typing import Any, Literal

import chex
import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax import tokens as tk
from agentic_jax.algos.base import Algorithm
from agentic_jax.algos.hyperparams import static
from agentic_jax.algos.masked import first_in_row
from agentic_jax.algos.policy import (
    Evaluate,
    LossAndMetrics,
    Minibatch,
    SurrogateHyperparams,
    policy_objective,
)


@struct.dataclass
class GRPOHyperparams(SurrogateHyperparams):
    normalize_std: bool = static(True, "divide by the group's std (GRPO); false: Dr.GRPO")
    mode_advantage: Literal["shared", "per_mode"] = static(
        "shared",
        "per_mode: the mode decision takes the group's advantage, the tokens after it "
        "the advantage among the group's episodes that decided the same",
    )


def grpo_advantages(
    episode_rewards: jax.Array,
    group: jax.Array,
    num_groups: int,
    normalize_std: bool = True,
    eps: float = 1e-6,
    present: jax.Array | None = None,
) -> jax.Array:
    """Group-relative advantages [N] of ``episode_rewards`` [N], episode i in group ``group[i]``
    (ids in ``[0, num_groups)``). ``present`` [N] bool (default all): rows that hold an
    episode; the others (a sub-agent slot never used) neither count in their group's mean and
    std nor get an advantage."""
    chex.assert_rank([episode_rewards, group], 1)
    chex.assert_equal_shape([episode_rewards, group])
    rewards = episode_rewards.astype(jnp.float32)
    weight = jnp.ones_like(rewards) if present is None else present.astype(jnp.float32)
    count = jax.ops.segment_sum(weight, group, num_groups)
    mean = jax.ops.segment_sum(rewards * weight, group, num_groups) / jnp.maximum(count, 1.0)
    centred = (rewards - mean[group]) * weight
    if not normalize_std:
        return centred
    variance = jax.ops.segment_sum(centred**2, group, num_groups) / jnp.maximum(count, 1.0)
    return centred / (jnp.sqrt(variance)[group] + eps)


def token_advantages(
    trajectory: Any, num_groups: int, normalize_std: bool = True, per_mode: bool = False
) -> jax.Array:
    """Each step's advantage [N, L]: its episode's group-relative advantage (a GRPO
    trajectory holds at most one episode per row, ``trajectory.group`` its task; a row
    with no episode gets none). ``per_mode``: only the first agent token keeps it; the later
    steps take the advantage among their group's episodes whose first agent token is the same."""
    episode_rewards = trajectory.rewards.sum(axis=1)
    present = holds_episode(trajectory)
    per_episode = grpo_advantages(
        episode_rewards, trajectory.group, num_groups, normalize_std, present=present
    )
    if not per_mode:
        return jnp.broadcast_to(per_episode[:, None], trajectory.rewards.shape)
    decision = first_in_row(trajectory.loss_mask)
    mode = jnp.sum(jnp.where(decision, trajectory.actions, 0), axis=1)
    same_mode = trajectory.group * tk.VOCAB_SIZE + mode
    within_mode = grpo_advantages(
        episode_rewards, same_mode, num_groups * tk.VOCAB_SIZE, normalize_std, present=present
    )
    return jnp.where(decision, per_episode[:, None], within_mode[:, None])


def holds_episode(trajectory: Any) -> jax.Array:
    """[N] bool: the row has a step of an episode (a sub-agent slot may have none)."""
    return (trajectory.segments >= 0).any(axis=1)


def loss(
    params: Any, evaluate: Evaluate, batch: Minibatch, hyper: SurrogateHyperparams
) -> LossAndMetrics:
    """The clipped-surrogate loss of ``params`` on a minibatch: the policy's forward pass
    (``evaluate``), then the policy objective (``policy.policy_objective``)."""
    return policy_objective(evaluate(params, batch.trajectory), batch, hyper)


def advantages(
    trajectory: Any, last_value: Any, hyper: GRPOHyperparams, num_groups: int
) -> tuple[Any, None]:
    """The trainer's call: group-relative token advantages, no value targets."""
    del last_value  # no critic
    per_mode = hyper.mode_advantage == "per_mode"
    return token_advantages(trajectory, num_groups, hyper.normalize_std, per_mode), None


ALGORITHM = Algorithm(
    name="grpo",
    hyperparams=GRPOHyperparams,
    advantages=advantages,
    loss=loss,
    grouped=True,
    critic=False,
    summary="group-relative advantages, the clipped surrogate (Dr.GRPO, DAPO options)",
)
