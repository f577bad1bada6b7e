"""GSPO: Group Sequence Policy Optimization (Zheng et al., Qwen 2025).

GRPO's group-relative advantages, with the importance ratio and its clipping moved from
tokens to sequences. An episode's ratio is the length-normalised product of its token ratios,

    s_i = (pi(y_i) / pi_old(y_i)) ^ (1 / |y_i|) = exp(mean_t (log pi - log pi_old)),

over its agent tokens, and the loss is the clipped surrogate per sequence, a mean over
sequences:

    L = -mean_i min(s_i A_i, clip(s_i, 1 - eps_low, 1 + eps_high) A_i).

A sequence ratio moves far less than a token's, so GSPO's clip ranges are small (the paper
uses 3e-4 and 4e-4; ``algo.clip_eps_low``/``clip_eps_high`` set them). The entropy bonus and
the KL penalty are the shared ones (``policy.regularised``).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from agentic_jax.algos.base import Algorithm
from agentic_jax.algos.grpo import token_advantages
from agentic_jax.algos.hyperparams import static
from agentic_jax.algos.policy import (
    Evaluate,
    LossAndMetrics,
    Minibatch,
    PolicyHyperparams,
    regularised,
)


@struct.dataclass
class GSPOHyperparams(PolicyHyperparams):
    normalize_std: bool = static(True, "divide by the group's std (GRPO); false: Dr.GRPO")


def sequence_ratio(log_probs: jax.Array, old_log_probs: jax.Array, mask: jax.Array) -> jax.Array:
    """[N] ``exp(mean over the row's masked tokens of (log_probs - old_log_probs))``; 1 for a
    row with no masked token."""
    chex.assert_equal_shape([log_probs, old_log_probs, mask])
    weight = mask.astype(jnp.float32)
    count = weight.sum(axis=1)
    mean_log_ratio = ((log_probs - old_log_probs) * weight).sum(axis=1) / jnp.maximum(count, 1.0)
    return jnp.exp(mean_log_ratio)


def sequence_surrogate(
    log_probs: jax.Array,
    old_log_probs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    clip_eps_low: jax.Array,
    clip_eps_high: jax.Array,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """GSPO's clipped surrogate over the rows [N, L] that hold agent tokens: (loss, stats).

    ``advantages`` [N, L] are constant along a row's agent tokens (one per sequence)."""
    weight = mask.astype(jnp.float32)
    rows = weight.sum(axis=1) > 0
    ratio = sequence_ratio(log_probs, old_log_probs, mask)
    advantage = (advantages * weight).sum(axis=1) / jnp.maximum(weight.sum(axis=1), 1.0)
    clipped = jnp.clip(ratio, 1.0 - clip_eps_low, 1.0 + clip_eps_high)
    per_row = -jnp.minimum(ratio * advantage, clipped * advantage)
    count = jnp.maximum(rows.sum(), 1)
    stats = {
        "clip_frac": jnp.sum(rows & (clipped * advantage < ratio * advantage)) / count,
        "sequence_ratio": jnp.sum(jnp.where(rows, ratio, 0.0)) / count,
    }
    return jnp.sum(jnp.where(rows, per_row, 0.0)) / count, stats


def loss(
    params: Any,
    evaluate: Evaluate,
    batch: Minibatch,
    hyper: GSPOHyperparams,
) -> LossAndMetrics:
    """GSPO's loss of ``params`` on a minibatch: the policy's forward pass, the sequence
    surrogate against the behaviour policy's log-probs, the shared regularisers."""
    outputs = evaluate(params, batch.trajectory)
    trajectory = batch.trajectory
    pg_loss, stats = sequence_surrogate(
        outputs.log_probs,
        trajectory.log_probs,
        batch.advantages,
        trajectory.loss_mask,
        hyper.clip_eps_low,
        hyper.clip_eps_high,
    )
    total, metrics = regularised(pg_loss, outputs, batch, hyper)
    return total, metrics | {f"loss/{name}": value for name, value in stats.items()}


def advantages(
    trajectory: Any, last_value: Any, hyper: GSPOHyperparams, num_groups: int
) -> tuple[Any, None]:
    """GRPO's group-relative advantages (one per episode), no value targets."""
    del last_value
    return token_advantages(trajectory, num_groups, hyper.normalize_std), None


ALGORITHM = Algorithm(
    name="gspo",
    hyperparams=GSPOHyperparams,
    advantages=advantages,
    loss=loss,
    grouped=True,
    critic=False,
    summary="GRPO's advantages, a clipped length-normalised sequence ratio",
)
