"""The policy objective GRPO and PPO share, and the typed values that cross into a loss.

- ``PolicyOutputs``: a policy's forward pass over a trajectory (the action log-probs, the
  entropy of each step's distribution, the value head), computed by the trainer's actor.
- ``Minibatch``: what one gradient step reads: the trajectory rows (which expose
  ``actions``, behaviour ``log_probs``, old ``values``, ``loss_mask`` and ``value_mask``), their
  advantages, and the optional returns (PPO), reference (KL) and proximal (stale) log-probs.
- ``Coefficients`` (traced, so a sweep can vmap them) and ``LossSettings`` (static: they
  change what is compiled).

``policy_objective`` = corrected clipped surrogate - entropy bonus (over every agent token, or
with ``entropy_tokens="decision"`` over each episode's first only) + KL penalty. With
``mode_decision="apart"`` the surrogate is two terms: one over each episode's first agent
token (its mode decision), a mean over episodes, and one over the rest, aggregated as set
(Thinkless's decoupled GRPO: the decision is not diluted by a long answer's tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
from flax import struct

from agentic_jax.algos.corrections import policy_loss
from agentic_jax.algos.kl import kl_penalty
from agentic_jax.algos.masked import aggregate, entropy_bonus, first_in_row

LossAndMetrics = tuple[jax.Array, dict[str, jax.Array]]


@struct.dataclass
class PolicyOutputs:
    log_probs: jax.Array  # [N, L] log pi(action) of each step's action (masked to legal tokens)
    entropy: jax.Array  # [N, L] entropy of each step's distribution over the legal tokens
    values: jax.Array  # [N, L] the value head's estimate


Evaluate = Callable[[Any, Any], PolicyOutputs]  # (params, trajectory) -> a forward pass


@struct.dataclass
class Minibatch:
    trajectory: Any  # [N, L] rows of a token or vector trajectory
    advantages: jax.Array  # [N, L]
    returns: jax.Array | None = None  # [N, L] value targets (PPO; None for GRPO)
    reference_log_probs: jax.Array | None = None  # [N, L] the KL reference's (None: no KL)
    proximal_log_probs: jax.Array | None = None  # [N, L] the learner's at the update's start


@struct.dataclass
class Coefficients:
    """The loss's traced coefficients."""

    clip_eps_low: jax.Array
    clip_eps_high: jax.Array
    entropy_coef: jax.Array
    kl_coef: jax.Array
    vf_coef: jax.Array


@dataclass(frozen=True)
class LossSettings:
    """The loss's static choices."""

    correction: str = "none"  # corrections.CORRECTIONS; "none" when on-policy
    aggregation: str = "token"  # masked.AGGREGATIONS; "constant" is Dr.GRPO's
    mode_decision: str = "joint"  # "apart": the first agent token is a loss term of its own
    entropy_floor: float = 0.0  # > 0: the bonus acts only on tokens below this entropy
    entropy_tokens: str = "all"  # "decision": the bonus reads only each row's first agent token
    kl: bool = False  # add the KL penalty to the reference policy
    kl_estimator: str = "k3"
    is_cap: float = 2.0  # truncation of the importance weights (tis, decoupled)
    value_clip: float = 0.0  # PPO's value clipping; 0 = unclipped


def policy_objective(
    outputs: PolicyOutputs, batch: Minibatch, coefficients: Coefficients, settings: LossSettings
) -> LossAndMetrics:
    """``policy_loss - entropy_coef * entropy_bonus (+ kl_coef * KL)`` over the loss mask.

    Returns (loss, metrics): ``loss/policy``, ``loss/entropy`` (the token-mean entropy), the
    surrogate's ``loss/clip_frac`` and ``loss/approx_kl``, and ``loss/kl_ref`` with the KL.
    """
    trajectory = batch.trajectory
    mask = trajectory.loss_mask

    def surrogate(over: jax.Array, aggregation: str) -> tuple[jax.Array, dict]:
        return policy_loss(
            settings.correction, outputs.log_probs, trajectory.log_probs,
            batch.proximal_log_probs, batch.advantages, over, coefficients.clip_eps_low,
            coefficients.clip_eps_high, settings.is_cap, aggregation, trajectory.actions.shape[1],
        )  # fmt: skip

    if settings.mode_decision == "apart":
        decision = first_in_row(mask)
        pg_loss, pg_stats = surrogate(mask.astype(bool) & ~decision, settings.aggregation)
        pg_loss = pg_loss + surrogate(decision, "token")[0]
    else:
        pg_loss, pg_stats = surrogate(mask, settings.aggregation)
    loss, metrics = regularised(pg_loss, outputs, batch, coefficients, settings)
    return loss, metrics | {f"loss/{name}": value for name, value in pg_stats.items()}


def regularised(
    pg_loss: jax.Array,
    outputs: PolicyOutputs,
    batch: Minibatch,
    coefficients: Coefficients,
    settings: LossSettings,
) -> LossAndMetrics:
    """A policy-gradient loss with the entropy bonus and the KL penalty every algorithm shares
    added: ``pg_loss - entropy_coef * bonus (+ kl_coef * KL)``, and their metrics."""
    mask = batch.trajectory.loss_mask
    entropy = aggregate(outputs.entropy, mask, "token")
    if settings.entropy_tokens not in ("all", "decision"):
        raise ValueError(f"entropy_tokens {settings.entropy_tokens!r}; valid: all, decision")
    bonus_mask = first_in_row(mask) if settings.entropy_tokens == "decision" else mask
    bonus = entropy_bonus(outputs.entropy, bonus_mask, settings.entropy_floor)
    loss = pg_loss - coefficients.entropy_coef * bonus
    metrics = {"loss/policy": pg_loss, "loss/entropy": entropy}
    if settings.kl:
        penalty = kl_penalty(outputs.log_probs, batch.reference_log_probs, settings.kl_estimator)
        kl = aggregate(penalty, mask, "token")
        loss = loss + coefficients.kl_coef * kl
        metrics["loss/kl_ref"] = kl
    return loss, metrics
