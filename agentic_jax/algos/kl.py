"""KL estimators (Schulman's k1, k2, k3) for the penalty to a frozen reference policy."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

KL_ESTIMATORS = ("k1", "k2", "k3")


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
