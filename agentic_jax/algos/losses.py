"""Losses: PPO/GRPO clipped policy loss, clipped value loss, KL estimators, entropy, SFT."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

AGGREGATIONS = ("token", "sequence", "constant")
KL_ESTIMATORS = ("k1", "k2", "k3")
MASKED_LOGIT = -1e9  # finite stand-in for -inf, so no inf - inf = NaN anywhere


def _legal_or_all(legal_mask: jax.Array) -> jax.Array:
    """The legal mask as bool, with all-False rows replaced by all-True rows."""
    legal = legal_mask.astype(bool)
    return legal | ~legal.any(axis=-1, keepdims=True)


def masked_log_softmax(logits: jax.Array, legal_mask: jax.Array) -> jax.Array:
    """``log_softmax(where(legal, logits, -1e9))`` over the last axis ``[..., V]``.

    Illegal tokens get a log-prob near -1e9 (probability exactly 0, but finite).
    A row with no legal token is treated as all legal, so nothing is ever NaN.
    """
    chex.assert_equal_shape([logits, legal_mask])
    legal = _legal_or_all(legal_mask)
    return jax.nn.log_softmax(jnp.where(legal, logits, MASKED_LOGIT), axis=-1)


def token_log_prob(logits: jax.Array, legal_mask: jax.Array, tokens: jax.Array) -> jax.Array:
    """``log pi(token)`` [...] under the masked distribution of ``logits`` [..., V]."""
    chex.assert_equal_shape_prefix([logits, tokens], tokens.ndim)
    chex.assert_rank(logits, tokens.ndim + 1)
    log_probs = masked_log_softmax(logits, legal_mask)
    index = tokens[..., None].astype(jnp.int32)
    return jnp.take_along_axis(log_probs, index, axis=-1)[..., 0]


def masked_entropy(logits: jax.Array, legal_mask: jax.Array) -> jax.Array:
    """``H = -sum_{legal a} p(a) log p(a)`` of the masked categorical, shape [...].

    Illegal tokens contribute exactly 0.
    """
    log_probs = masked_log_softmax(logits, legal_mask)
    legal = _legal_or_all(legal_mask)
    return -jnp.sum(jnp.where(legal, jnp.exp(log_probs) * log_probs, 0.0), axis=-1)


def entropy_bonus(token_entropy: jax.Array, mask: jax.Array, floor: float) -> jax.Array:
    """The entropy term a loss subtracts: the token-mean entropy over ``mask``, or with
    ``floor > 0`` the token-mean of ``min(H, floor)``, so only tokens whose entropy fell
    below the floor are pushed back up and no decision collapses to certainty."""
    if floor < 0:
        raise ValueError(f"entropy floor must be >= 0, got {floor}")
    bounded = jnp.minimum(token_entropy, floor) if floor > 0 else token_entropy
    return aggregate(bounded, mask, "token")


def aggregate(
    values: jax.Array, mask: jax.Array, mode: str, max_len: int | None = None
) -> jax.Array:
    """Reduce per-token ``[B, S]`` values to a scalar over the positions where ``mask`` is set.

    - ``token``:    sum(v * m) / max(sum(m), 1)  (DAPO's token-level mean);
    - ``sequence``: mean, over sequences with any masked token, of each one's masked mean (GRPO);
    - ``constant``: sum(v * m) / (B * max_len)    (Dr.GRPO; ``max_len`` required).
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"unknown loss aggregation {mode!r}; valid: {', '.join(AGGREGATIONS)}")
    if mode == "constant" and max_len is None:
        raise ValueError("loss aggregation 'constant' (Dr.GRPO) needs max_len")
    chex.assert_rank(values, 2)
    chex.assert_equal_shape([values, mask])
    mask = mask.astype(jnp.float32)
    masked = values * mask
    if mode == "token":
        return masked.sum() / jnp.maximum(mask.sum(), 1.0)
    if mode == "sequence":
        counts = mask.sum(axis=-1)
        per_sequence = masked.sum(axis=-1) / jnp.maximum(counts, 1.0)
        has_tokens = (counts > 0).astype(jnp.float32)
        return jnp.sum(per_sequence * has_tokens) / jnp.maximum(has_tokens.sum(), 1.0)
    return masked.sum() / (values.shape[0] * max_len)


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


def kl_penalty(log_probs: jax.Array, ref_log_probs: jax.Array, estimator: str) -> jax.Array:
    """Per-token estimate of KL(pi || pi_ref) from samples of pi (Schulman's estimators).

    With ``d = logp - ref_logp``: k1 = d; k2 = 0.5 * d^2; k3 = exp(-d) + d - 1 (>= 0, unbiased).
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {estimator!r}; valid: {', '.join(KL_ESTIMATORS)}")
    chex.assert_equal_shape([log_probs, ref_log_probs])
    log_ratio = log_probs - ref_log_probs
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    return jnp.exp(-log_ratio) + log_ratio - 1.0


def sft_loss(
    logits: jax.Array, legal_mask: jax.Array, targets: jax.Array, mask: jax.Array
) -> jax.Array:
    """Masked mean NLL of ``targets`` [B, S] under ``masked_log_softmax(logits)`` [B, S, V].

    ``loss = sum(-log p(target) * m) / max(sum(m), 1)``.
    """
    chex.assert_rank(logits, 3)
    chex.assert_equal_shape([targets, mask])
    nll = -token_log_prob(logits, legal_mask, targets)
    return aggregate(nll, mask, "token")
