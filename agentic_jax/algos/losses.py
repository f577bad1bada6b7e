"""Losses: PPO/GRPO clipped policy loss, clipped value loss, KL estimators, entropy, SFT."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

AGGREGATIONS = ("token", "sequence", "constant")
KL_ESTIMATORS = ("k1", "k2", "k3")
MASKED_LOGIT = -1e9


def masked_log_softmax(logits, legal_mask):
    """Log-probabilities with illegal tokens at about -1e9 (finite).

    A row with no legal token is treated as all legal, so nothing is ever NaN.
    """
    chex.assert_equal_shape([logits, legal_mask])
    legal = legal_mask | ~legal_mask.any(axis=-1, keepdims=True)
    return jax.nn.log_softmax(jnp.where(legal, logits, MASKED_LOGIT), axis=-1)


def token_log_prob(logits, legal_mask, tokens):
    """Log-probability of ``tokens`` [...] under the masked distribution of ``logits`` [..., V]."""
    log_probs = masked_log_softmax(logits, legal_mask)
    return jnp.take_along_axis(log_probs, tokens[..., None].astype(jnp.int32), axis=-1)[..., 0]


def masked_entropy(logits, legal_mask):
    """Entropy of the masked categorical; illegal tokens contribute nothing."""
    log_probs = masked_log_softmax(logits, legal_mask)
    probs = jnp.exp(log_probs)
    return -jnp.sum(jnp.where(probs > 0, probs * log_probs, 0.0), axis=-1)


def aggregate(values, mask, mode: str, max_len: int | None = None):
    """Reduce per-token ``[B, S]`` values to a scalar.

    - ``token``: sum(v * m) / sum(m) (DAPO's token-level mean);
    - ``sequence``: mean over sequences with any masked token of their masked mean (GRPO);
    - ``constant``: sum(v * m) / (B * max_len) (Dr.GRPO).
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"unknown loss aggregation {mode!r}; valid: {', '.join(AGGREGATIONS)}")
    chex.assert_equal_shape([values, mask])
    mask = mask.astype(jnp.float32)
    total = jnp.sum(values * mask)
    if mode == "token":
        return total / jnp.maximum(mask.sum(), 1.0)
    if mode == "sequence":
        counts = mask.sum(axis=-1)
        per_sequence = jnp.sum(values * mask, axis=-1) / jnp.maximum(counts, 1.0)
        has_tokens = (counts > 0).astype(jnp.float32)
        return jnp.sum(per_sequence * has_tokens) / jnp.maximum(has_tokens.sum(), 1.0)
    if max_len is None:
        raise ValueError("loss aggregation 'constant' (Dr.GRPO) needs max_len")
    return total / (values.shape[0] * max_len)


def clipped_policy_loss(
    log_probs, old_log_probs, advantages, mask, clip_eps_low, clip_eps_high,
    mode: str = "token", max_len: int | None = None,
):  # fmt: skip
    """PPO's clipped surrogate with asymmetric clipping (DAPO's clip-higher).

    ``ratio = exp(logp - old_logp)``;
    ``loss_t = -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A)``.
    Returns (aggregated loss, {"clip_frac", "approx_kl"}).
    """
    chex.assert_equal_shape([log_probs, old_log_probs, advantages, mask])
    log_ratio = log_probs - old_log_probs
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps_low, 1.0 + clip_eps_high) * advantages
    loss = -jnp.minimum(unclipped, clipped)
    stats = {
        "clip_frac": aggregate((clipped < unclipped).astype(jnp.float32), mask, "token"),
        "approx_kl": aggregate((ratio - 1.0) - log_ratio, mask, "token"),
    }
    return aggregate(loss, mask, mode, max_len), stats


def clipped_value_loss(values, old_values, returns, mask, clip_eps: float | None):
    """``0.5 * mean(max((v - R)^2, (v_old + clip(v - v_old, -eps, eps) - R)^2))`` (PPO2)."""
    chex.assert_equal_shape([values, old_values, returns, mask])
    squared = (values - returns) ** 2
    if clip_eps is not None and clip_eps > 0:
        clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
        squared = jnp.maximum(squared, (clipped - returns) ** 2)
    return 0.5 * aggregate(squared, mask, "token")


def kl_penalty(log_probs, ref_log_probs, estimator: str):
    """Per-token estimate of KL(pi || pi_ref) from samples of pi (Schulman's k1, k2, k3)."""
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {estimator!r}; valid: {', '.join(KL_ESTIMATORS)}")
    log_ratio = log_probs - ref_log_probs
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    return jnp.exp(-log_ratio) + log_ratio - 1.0


def sft_loss(logits, legal_mask, targets, mask):
    """Mean negative log-likelihood of ``targets`` over masked positions (agent tokens)."""
    chex.assert_equal_shape([targets, mask])
    nll = -token_log_prob(logits, legal_mask, targets)
    return aggregate(nll, mask, "token")
