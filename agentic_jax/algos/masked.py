"""Masked token distributions and reductions: the pieces every loss is built from.

A token policy's logits are masked to the legal tokens (``masked_log_softmax``); per-token
values are reduced over the loss mask (the agent's own tokens) by ``aggregate``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

AGGREGATIONS = ("token", "sequence", "constant")
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


def first_in_row(mask: jax.Array) -> jax.Array:
    """Boolean ``[B, S]``: each row's first position where ``mask`` [B, S] is set."""
    chex.assert_rank(mask, 2)
    mask = mask.astype(bool)
    return mask & (jnp.cumsum(mask, axis=1) == 1)


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
