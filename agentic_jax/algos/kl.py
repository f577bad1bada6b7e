"""The KL penalty to a frozen reference policy: Schulman's estimators of KL(pi || pi_ref).

``kl_estimate`` is the per-token value of an estimator (what is logged). ``kl_penalty`` is the
loss term: that value, with the gradient of KL(pi || pi_ref) whichever estimator is chosen.

Why the two differ: differentiated directly as a loss, the estimators do not give the KL's
gradient. With ``d = logp - ref_logp`` and tokens sampled from pi, the exact gradient is
``E_pi[d * grad logp]``; k1 (``d``) as a loss gives ``E_pi[grad logp] = 0`` (no penalty at
all), and k3 (``exp(-d) + d - 1``) gives ``E_pi[(1 - exp(-d)) grad logp]``, the gradient of
KL(pi_ref || pi), the other direction. Only k2 (``d^2 / 2``) has ``d * grad logp``. So the
penalty is ``value + stop_gradient(d) * (logp - stop_gradient(logp))``: the estimator's value
forward, ``d * grad logp`` backward (the score-function form of the KL's gradient that the
KL-regularised policy-gradient literature recommends).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

KL_ESTIMATORS = ("k1", "k2", "k3")


def kl_estimate(log_probs: jax.Array, ref_log_probs: jax.Array, estimator: str) -> jax.Array:
    """Per-token estimate of KL(pi || pi_ref) from samples of pi.

    With ``d = logp - ref_logp``: k1 = d (unbiased); k2 = 0.5 * d^2 (biased, low variance);
    k3 = exp(-d) + d - 1 (unbiased, >= 0).
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


def kl_penalty(log_probs: jax.Array, ref_log_probs: jax.Array, estimator: str) -> jax.Array:
    """The per-token loss term: ``kl_estimate``'s value, KL(pi || pi_ref)'s gradient."""
    value = jax.lax.stop_gradient(kl_estimate(log_probs, ref_log_probs, estimator))
    log_ratio = jax.lax.stop_gradient(log_probs - ref_log_probs)
    return value + log_ratio * (log_probs - jax.lax.stop_gradient(log_probs))
