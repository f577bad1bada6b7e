"""GSPO's sequence ratio and clipped sequence surrogate, by hand, and its registration."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agentic_jax.algos import ALGORITHMS
from agentic_jax.algos.gspo import sequence_ratio, sequence_surrogate


def test_sequence_ratio_is_the_length_normalised_product_of_token_ratios():
    old = jnp.log(jnp.array([[0.5, 0.5, 0.9], [0.2, 0.4, 0.4]]))
    new = jnp.log(jnp.array([[0.6, 0.3, 0.1], [0.4, 0.1, 0.4]]))
    mask = jnp.array([[1, 1, 0], [1, 1, 1]])
    expected = [math.sqrt(1.2 * 0.6), (2.0 * 0.25 * 1.0) ** (1 / 3)]  # the masked token skipped
    np.testing.assert_allclose(sequence_ratio(new, old, mask), expected, rtol=1e-6)
    np.testing.assert_allclose(sequence_ratio(new, old, jnp.zeros_like(mask)), [1.0, 1.0])


def test_sequence_surrogate_by_hand():
    # row 0: ratio exp(0.1) = 1.105, A = +1: clipped at 1 + 0.05 -> -1.05
    # row 1: ratio exp(-0.2) = 0.819, A = +2: unclipped side is the min -> -1.637
    # row 2: ratio exp(-0.2) = 0.819, A = -1: clip(0.819) = 0.95, min(-0.819, -0.95) -> 0.95
    # row 3: no agent token, not counted
    log_ratio = jnp.array([[0.1, 0.1], [-0.2, -0.2], [-0.2, -0.2], [0.0, 0.0]])
    old = jnp.zeros((4, 2))
    mask = jnp.array([[1, 1], [1, 1], [1, 1], [0, 0]])
    advantages = jnp.array([[1.0, 1.0], [2.0, 2.0], [-1.0, -1.0], [5.0, 5.0]])
    loss, stats = sequence_surrogate(log_ratio, old, advantages, mask, 0.05, 0.05)
    expected = (-1.05 - 2 * math.exp(-0.2) + 0.95) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(stats["clip_frac"]) == pytest.approx(2 / 3)


def test_the_gradient_is_the_sequence_ratio_times_the_mean_token_score():
    """Unclipped: d(-s A)/d log pi_t = -A s / |y| on each of the row's tokens."""
    log_probs = jnp.log(jnp.array([[0.5, 0.25, 0.8]]))
    mask = jnp.array([[1, 1, 0]])

    def loss(lp):
        return sequence_surrogate(lp, log_probs, jnp.full((1, 3), 2.0), mask, 10.0, 10.0)[0]

    grads = jax.grad(loss)(log_probs)  # at ratio 1
    np.testing.assert_allclose(grads, [[-1.0, -1.0, 0.0]], rtol=1e-6)


def test_gspo_is_registered_with_group_advantages():
    assert ALGORITHMS["gspo"].grouped and not ALGORITHMS["gspo"].critic
