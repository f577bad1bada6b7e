"""Policy-gradient losses and their off-policy corrections, as one function.

``policy_loss(correction, ...)`` is the surrogate both GRPO and PPO minimise. Its
``correction`` says how samples from a stale behaviour policy mu (an actor some updates behind
the learner, ``rollout.staleness``) are corrected:

- ``none``: PPO's clipped ratio against mu, as if on-policy (what on-policy training uses);
- ``tis``: policy gradient with truncated importance weights ``min(pi / mu, cap)`` (IMPALA);
- ``decoupled``: PPO's clipped ratio against the proximal policy (the learner's own at the
  update's start), weighted by ``min(prox / mu, cap)`` (decoupled PPO).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from agentic_jax.algos.masked import aggregate

CORRECTIONS = ("none", "tis", "decoupled")


def clipped_policy_loss(
    log_probs: jax.Array,
    old_log_probs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    clip_eps_low: float,
    clip_eps_high: float,
    mode: str = "token",
    max_len: int | None = None,
    weights: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's clipped surrogate with asymmetric clipping (DAPO's clip-higher), ``[B, S]`` inputs.

        ratio  = exp(logp - old_logp)
        loss_t = -w_t * min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A)

    aggregated with ``aggregate(loss_t, mask, mode, max_len)``; ``w_t`` = ``weights`` (1 if
    None), e.g. decoupled PPO's behaviour weight pi_prox / pi_behaviour, with ``old_logp``
    the proximal policy's. Returns (loss, stats) with
    stats "clip_frac" (masked fraction of tokens where the clipped term was selected) and
    "approx_kl" (masked mean of (ratio - 1) - log ratio).
    """
    chex.assert_equal_shape([log_probs, old_log_probs, advantages, mask])
    log_ratio = log_probs - old_log_probs
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps_low, 1.0 + clip_eps_high) * advantages
    loss = -jnp.minimum(unclipped, clipped)
    if weights is not None:
        loss = loss * jax.lax.stop_gradient(weights)
    stats = {
        "clip_frac": aggregate((clipped < unclipped).astype(jnp.float32), mask, "token"),
        "approx_kl": aggregate((ratio - 1.0) - log_ratio, mask, "token"),
    }
    return aggregate(loss, mask, mode, max_len), stats


def truncated_is_weights(
    log_probs: jax.Array, behaviour_log_probs: jax.Array, cap: float | jax.Array
) -> jax.Array:
    """``min(pi / mu, cap)`` per token, without gradient: the truncated importance weight of
    a token sampled from ``mu`` (a stale policy) for the target ``pi``."""
    return jax.lax.stop_gradient(jnp.minimum(jnp.exp(log_probs - behaviour_log_probs), cap))


def truncated_is_policy_loss(
    log_probs: jax.Array,
    behaviour_log_probs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    cap: float | jax.Array,
    mode: str = "token",
    max_len: int | None = None,
) -> jax.Array:
    """Off-policy policy gradient with truncated importance sampling (IMPALA's policy term):

    loss_t = -min(pi / mu, cap) * A * log pi      (the weight without gradient)
    """
    chex.assert_equal_shape([log_probs, behaviour_log_probs, advantages, mask])
    weights = truncated_is_weights(log_probs, behaviour_log_probs, cap)
    return aggregate(-weights * advantages * log_probs, mask, mode, max_len)


def policy_loss(
    correction: str,
    log_probs: jax.Array,
    behaviour_log_probs: jax.Array,
    proximal_log_probs: jax.Array | None,
    advantages: jax.Array,
    mask: jax.Array,
    clip_eps_low: float | jax.Array,
    clip_eps_high: float | jax.Array,
    is_cap: float,
    mode: str = "token",
    max_len: int | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The policy-gradient loss under ``correction`` (see the module docstring), ``[B, S]``
    inputs; ``proximal_log_probs`` is needed by ``decoupled`` only. Returns (loss, stats):
    the clipped losses' ``clip_frac`` and ``approx_kl``; none for ``tis``."""
    if correction not in CORRECTIONS:
        raise ValueError(
            f"unknown off-policy correction {correction!r}; valid: {', '.join(CORRECTIONS)}"
        )
    if correction == "tis":
        loss = truncated_is_policy_loss(
            log_probs, behaviour_log_probs, advantages, mask, is_cap, mode, max_len
        )
        return loss, {}
    anchor, weights = behaviour_log_probs, None  # none: PPO's ratio against the behaviour
    if correction == "decoupled":  # the ratio against the proximal policy, weighted
        if proximal_log_probs is None:
            raise ValueError("the decoupled correction needs the proximal policy's log-probs")
        anchor = proximal_log_probs
        weights = truncated_is_weights(proximal_log_probs, behaviour_log_probs, is_cap)
    return clipped_policy_loss(
        log_probs, anchor, advantages, mask, clip_eps_low, clip_eps_high, mode, max_len, weights
    )
