"""The policy objective GRPO and PPO share, and the typed values that cross into a loss.

- ``PolicyOutputs``: a policy's forward pass over a trajectory (the action log-probs, the
  entropy of each step's distribution, the value head), computed by the trainer's actor.
- ``Minibatch``: what one gradient step reads: the trajectory rows (which expose
  ``actions``, behaviour ``log_probs``, old ``values``, ``loss_mask`` and ``value_mask``), their
  advantages, and the optional returns (PPO), reference (KL) and proximal (stale) log-probs.
- ``PolicyHyperparams`` (what every policy-gradient algorithm reads) and
  ``SurrogateHyperparams`` (what the token surrogate reads besides): the declared
  hyperparameters, traced or static (``agentic_jax.algos.hyperparams``).

``policy_objective`` = corrected clipped surrogate - entropy bonus (over every agent token, or
with ``entropy_tokens="decision"`` over each episode's first only) + KL penalty. With
``mode_decision="apart"`` the surrogate is two terms: one over each episode's first agent
token (its mode decision), a mean over episodes, and one over the rest, aggregated as set
(Thinkless's decoupled GRPO: the decision is not diluted by a long answer's tokens).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
from flax import struct

from agentic_jax.algos.corrections import policy_loss
from agentic_jax.algos.hyperparams import static, traced
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
class PolicyHyperparams:
    """What every policy-gradient algorithm reads (``algo.<name>`` in a config)."""

    lr: float = traced(3e-4, "learning rate of the RL stages (a stage may set its own)", gt=0)
    max_grad_norm: float = static(1.0, "gradients are clipped to this global norm", gt=0)
    update_epochs: int = static(1, "passes over each rollout", gt=0)
    num_minibatches: int = static(1, "gradient steps per pass (must divide the batch)", gt=0)
    clip_eps_low: float = traced(0.2, "the ratio's lower clip: 1 - clip_eps_low", ge=0)
    clip_eps_high: float = traced(0.2, "the ratio's upper clip (DAPO's clip-higher)", ge=0)
    entropy_coef: float = traced(0.0, "weight of the entropy bonus", ge=0)
    entropy_floor: float = static(
        0.0, "> 0: the bonus acts only on tokens whose entropy is below this (nats)", ge=0
    )
    entropy_tokens: Literal["all", "decision"] = static(
        "all",
        "which tokens the bonus reads: all agent tokens, or each episode's first (its "
        "mode decision)",
    )
    kl_coef: float = traced(
        0.0, "weight of the KL penalty to the policy the RL stage started from", ge=0
    )
    kl_estimator: Literal["none", "k1", "k2", "k3"] = static(
        "none", "the KL penalty's estimator (agentic_jax.algos.kl); none: no KL term compiled"
    )
    monitor_penalty: float = static(
        0.0, "> 0: each episode the monitor flags loses this much reward", ge=0
    )
    monitor: Literal["action", "transcript"] = static(
        "action", "the monitor in the reward: action rules, or a trained transcript monitor"
    )
    monitor_weights: str | None = static(None, "the transcript monitor's weights (.npz)")
    credit: Literal["outcome", "subtask", "per_level"] = static(
        "outcome", "with sub-agents, each role's reward and groups (agentic_jax.algos.credit)"
    )


@struct.dataclass
class SurrogateHyperparams(PolicyHyperparams):
    """What the token-level clipped surrogate (``policy_objective``) reads besides."""

    loss_agg: Literal["token", "sequence", "constant"] = static(
        "token", "how token losses are aggregated (constant: Dr.GRPO's)"
    )
    mode_decision: Literal["joint", "apart"] = static(
        "joint", "apart: each episode's first agent token is a loss term of its own (Thinkless)"
    )
    off_policy: Literal["none", "tis", "decoupled"] = static(
        "decoupled",
        "with rollout.staleness > 0, the correction for the stale behaviour "
        "policy: none, truncated IS, or decoupled PPO (none when on-policy)",
    )
    is_cap: float = static(2.0, "truncation of the importance weights (tis, decoupled)", gt=0)


def policy_objective(
    outputs: PolicyOutputs, batch: Minibatch, hyper: SurrogateHyperparams
) -> LossAndMetrics:
    """``policy_loss - entropy_coef * entropy_bonus (+ kl_coef * KL)`` over the loss mask.

    Returns (loss, metrics): ``loss/policy``, ``loss/entropy`` (the token-mean entropy), the
    surrogate's ``loss/clip_frac`` and ``loss/approx_kl``, and ``loss/kl_ref`` with the KL.
    """
    trajectory = batch.trajectory
    mask = trajectory.loss_mask

    def surrogate(over: jax.Array, aggregation: str) -> tuple[jax.Array, dict]:
        return policy_loss(
            hyper.off_policy,
            outputs.log_probs,
            trajectory.log_probs,
            batch.proximal_log_probs,
            batch.advantages,
            over,
            hyper.clip_eps_low,
            hyper.clip_eps_high,
            hyper.is_cap,
            aggregation,
            trajectory.actions.shape[1],
        )

    if hyper.mode_decision == "apart":
        decision = first_in_row(mask)
        pg_loss, pg_stats = surrogate(mask.astype(bool) & ~decision, hyper.loss_agg)
        pg_loss = pg_loss + surrogate(decision, "token")[0]
    else:
        pg_loss, pg_stats = surrogate(mask, hyper.loss_agg)
    loss, metrics = regularised(pg_loss, outputs, batch, hyper)
    return loss, metrics | {f"loss/{name}": value for name, value in pg_stats.items()}


def regularised(
    pg_loss: jax.Array,
    outputs: PolicyOutputs,
    batch: Minibatch,
    hyper: PolicyHyperparams,
) -> LossAndMetrics:
    """A policy-gradient loss with the entropy bonus and the KL penalty every algorithm shares
    added: ``pg_loss - entropy_coef * bonus (+ kl_coef * KL)``, and their metrics."""
    mask = batch.trajectory.loss_mask
    entropy = aggregate(outputs.entropy, mask, "token")
    if hyper.entropy_tokens not in ("all", "decision"):
        raise ValueError(f"entropy_tokens {hyper.entropy_tokens!r}; valid: all, decision")
    bonus_mask = first_in_row(mask) if hyper.entropy_tokens == "decision" else mask
    bonus = entropy_bonus(outputs.entropy, bonus_mask, hyper.entropy_floor)
    loss = pg_loss - hyper.entropy_coef * bonus
    metrics = {"loss/policy": pg_loss, "loss/entropy": entropy}
    if hyper.kl_estimator != "none":
        penalty = kl_penalty(outputs.log_probs, batch.reference_log_probs, hyper.kl_estimator)
        kl = aggregate(penalty, mask, "token")
        loss = loss + hyper.kl_coef * kl
        metrics["loss/kl_ref"] = kl
    return loss, metrics
