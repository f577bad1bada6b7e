"""PPO: generalised advantage estimation, the clipped value loss, and the loss (the shared
policy objective plus ``vf_coef`` times the value loss)."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax.algos.base import Algorithm
from agentic_jax.algos.hyperparams import static, traced
from agentic_jax.algos.masked import aggregate
from agentic_jax.algos.policy import (
    Evaluate,
    LossAndMetrics,
    Minibatch,
    SurrogateHyperparams,
    policy_objective,
)


@struct.dataclass
class PPOHyperparams(SurrogateHyperparams):
    gamma: float = traced(1.0, "discount", ge=0, le=1)
    gae_lambda: float = traced(0.95, "GAE's lambda", ge=0, le=1)
    vf_coef: float = traced(0.5, "weight of the value loss", ge=0)
    vf_clip: float = static(0.2, "the value loss's clip; 0: unclipped", ge=0)


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


def normalised_advantages(
    trajectory: Any, last_value: jax.Array, gamma: jax.Array, gae_lambda: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """GAE over a batch-major trajectory [N, L], normalised to zero mean and unit std over the
    loss mask. Returns (advantages, returns); the returns are the value targets."""
    advantages, returns = gae(
        trajectory.rewards.T,
        trajectory.values.T,
        trajectory.dones.T,
        last_value,
        gamma,
        gae_lambda,
    )
    advantages, returns = advantages.T, returns.T
    mask = trajectory.loss_mask
    mean = aggregate(advantages, mask, "token")
    std = jnp.sqrt(aggregate((advantages - mean) ** 2, mask, "token"))
    return (advantages - mean) / (std + 1e-8), returns


def clipped_value_loss(
    values: jax.Array,
    old_values: jax.Array,
    returns: jax.Array,
    mask: jax.Array,
    clip_eps: float | jax.Array | None,
) -> jax.Array:
    """PPO2 value loss, a masked token mean:

        0.5 * mean(max((v - R)^2, (v_old + clip(v - v_old, -eps, eps) - R)^2))

    With ``clip_eps`` None or <= 0, the unclipped ``0.5 * mean((v - R)^2)``.
    ``clip_eps`` may be a traced scalar.
    """
    chex.assert_equal_shape([values, old_values, returns, mask])
    squared = (values - returns) ** 2
    if clip_eps is not None:
        eps = jnp.maximum(clip_eps, 0.0)
        clipped_values = old_values + jnp.clip(values - old_values, -eps, eps)
        clipped_squared = jnp.maximum(squared, (clipped_values - returns) ** 2)
        squared = jnp.where(clip_eps > 0, clipped_squared, squared)
    return 0.5 * aggregate(squared, mask, "token")


def loss(
    params: Any, evaluate: Evaluate, batch: Minibatch, hyper: PPOHyperparams
) -> LossAndMetrics:
    """PPO's loss of ``params`` on a minibatch: the policy objective plus the clipped value
    loss over the steps of real episodes (``value_mask``). Returns (loss, metrics)."""
    outputs = evaluate(params, batch.trajectory)
    objective, metrics = policy_objective(outputs, batch, hyper)
    trajectory = batch.trajectory
    value_clip = hyper.vf_clip if hyper.vf_clip > 0 else None
    value_loss = clipped_value_loss(
        outputs.values, trajectory.values, batch.returns, trajectory.value_mask, value_clip
    )
    metrics["loss/value"] = value_loss
    return objective + hyper.vf_coef * value_loss, metrics


def advantages(trajectory: Any, last_value: jax.Array, hyper: PPOHyperparams, num_groups: int):
    """The trainer's call: normalised GAE and the value targets."""
    del num_groups
    return normalised_advantages(trajectory, last_value, hyper.gamma, hyper.gae_lambda)


ALGORITHM = Algorithm(
    name="ppo",
    hyperparams=PPOHyperparams,
    advantages=advantages,
    loss=loss,
    grouped=False,
    critic=True,
    summary="GAE on a value head, clipped policy and value losses",
)
